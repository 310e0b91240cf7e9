import { expect } from "chai";
import { X509Certificate } from "node:crypto";
import { caSecretData, issueClientCertificate } from "../../../src/pki";
import { inspectExitCode, inspectSecretData, renderInspection, type SecretInspection } from "../../../src/plugin/inspect";
import { renderDocument } from "../../../src/plugin/output";
import { DAY, NOW, pki, type Pki } from "./fixtures";

/** Every secret byte string of a payload that must never appear in output: keys (PEM body lines, DER) and the password. */
function secrets(p: Pki, data: Record<string, Buffer>): string[] {
  const pemLines = ["tls.key", "client.key", "client.pem.pk8"].flatMap((k) => (data[k]?.toString("utf8").split("\n") ?? []).filter((l) => l.length > 20 && !l.startsWith("-----")));
  return [...pemLines, data["client.pk8"]?.toString("base64").slice(0, 40) ?? "", p.password].filter((s) => s !== "");
}

function expectNoSecrets(p: Pki, data: Record<string, Buffer>, inspection: SecretInspection): void {
  const outputs = [renderInspection("Secret cast/x", inspection), renderDocument(inspection, "json"), renderDocument(inspection, "yaml")];
  for (const out of outputs) for (const s of secrets(p, data)) expect(out.includes(s), `output contains secret material ${s.slice(0, 12)}…`).to.equal(false);
}

describe("kubectl mtls inspect secret (pure)", () => {
  let p: Pki;
  before(async () => {
    p = await pki();
  });

  it("decodes every key of a client Secret: PEM, PKCS#8 DER, PKCS#12 with its sibling password; chain and keys check out", async () => {
    const inspection = await inspectSecretData(p.clientSecret, NOW);
    const byKey = Object.fromEntries(inspection.keys.map((k) => [k.key, k]));
    expect(Object.keys(byKey)).to.deep.equal(["tls.crt", "tls.key", "ca.crt", "client.crt", "client.key", "client.pem.pk8", "client.pfx", "client.pfx.password", "client.pk8", "root.crt"]);
    expect(byKey["tls.crt"]!.certificates.map((c) => c.subject)).to.deep.equal(["CN=analysis"]);
    expect(byKey["tls.crt"]!.certificates[0]!.sha256Fingerprint).to.equal(new X509Certificate(p.client.certPem).fingerprint256.replace(/:/g, "").toLowerCase());
    expect(byKey["tls.key"]!.privateKeys).to.deep.equal([{ format: "PKCS#8 PEM", keyType: "ECDSA P-256", matchesCertificate: true }]);
    expect(byKey["client.pk8"]).to.deep.include({ format: "PKCS#8 DER" });
    expect(byKey["client.pk8"]!.privateKeys[0]!.matchesCertificate).to.equal(true);
    const pfx = byKey["client.pfx"]!;
    expect(pfx).to.deep.include({ format: "PKCS#12", note: "opened with the password in client.pfx.password", problem: null });
    expect(pfx.privateKeys).to.deep.equal([{ format: "PKCS#12 key bag", keyType: "ECDSA P-256", matchesCertificate: true }]);
    expect(pfx.certificates.map((c) => c.subject)).to.deep.equal(["CN=analysis", "CN=db CA"]);
    expect(byKey["client.pfx.password"]).to.deep.include({ format: "password", note: "the password of client.pfx, not shown" });
    expect(inspection.certificate).to.deep.equal({ key: "tls.crt", subject: "CN=analysis", serialNumber: p.client.serialNumber });
    expect(inspection.chain).to.deep.equal({ ok: true, message: "tls.crt is signed by CN=db CA (ca.crt)" });
    expect(inspection.keyMatch).to.deep.equal({ ok: true, message: "tls.key, client.key, client.pem.pk8, client.pfx, client.pk8 hold the private key of tls.crt" });
    expect(inspectExitCode(inspection)).to.equal(0);
    expectNoSecrets(p, p.clientSecret, inspection);
  });

  it("reads the server Secret's CRL: issuer, number, updates, the revoked serials", async () => {
    const inspection = await inspectSecretData(p.serverSecret, NOW);
    const crl = inspection.keys.find((k) => k.key === "ca.crl")!;
    expect(crl.crls).to.deep.equal([{ issuer: "CN=db CA", crlNumber: 3, thisUpdate: "2026-03-01T12:00:00Z", nextUpdate: "2026-03-02T12:00:00Z", revokedSerials: [p.revokedSerial] }]);
    expect(inspection.chain.ok).to.equal(true);
    expect(inspection.keyMatch.ok).to.equal(true);
    expect(renderInspection("Secret cast/db-server-tls", inspection)).to.contain(`CRL of CN=db CA: number 3, this update 2026-03-01T12:00:00Z, next update 2026-03-02T12:00:00Z, 1 revoked (${p.revokedSerial})`);
  });

  it("fails the key check when a key belongs to another certificate, and names the key; exit code 1", async () => {
    const other = await issueClientCertificate(p.ca, { user: "analysis", duration: 30 * DAY, now: NOW });
    const data = { ...p.clientSecret, "client.pk8": Buffer.from(other.keyPkcs8Der) };
    const inspection = await inspectSecretData(data, NOW);
    expect(inspection.keyMatch).to.deep.equal({ ok: false, message: "client.pk8 holds a key that does not belong to tls.crt" });
    expect(inspectExitCode(inspection)).to.equal(1);
    expect(renderInspection("Secret cast/x", inspection)).to.match(/key matches:\s+FAILED: client\.pk8 holds/).and.to.contain("private key (PKCS#8 DER): ECDSA P-256, does NOT match tls.crt");
  });

  it("fails the chain check when ca.crt is another CA's", async () => {
    const data = { ...p.clientSecret, "ca.crt": Buffer.from(p.otherCA.certPem) };
    const inspection = await inspectSecretData(data, NOW);
    expect(inspection.chain).to.deep.equal({ ok: false, message: "tls.crt (issuer CN=db CA) is not signed by any certificate of ca.crt" });
    expect(inspectExitCode(inspection)).to.equal(1);
  });

  it("reports a PKCS#12 its password does not open, without failing the rest", async () => {
    const data = { ...p.clientSecret, "client.pfx.password": Buffer.from("wrong") };
    const pfx = (await inspectSecretData(data, NOW)).keys.find((k) => k.key === "client.pfx")!;
    expect(pfx.problem).to.match(/integrity check failed: wrong password/);
    expect(pfx.privateKeys).to.deep.equal([]);
  });

  it("checks a CA Secret against itself, and has nothing to check in a Secret without certificates", async () => {
    const ca = await inspectSecretData(caSecretData(p.ca), NOW);
    expect(ca.chain.ok).to.equal(true);
    expect(ca.keyMatch.ok).to.equal(true);
    const opaque = await inspectSecretData({ "sslconfig.ini": Buffer.from("[db:5432]\nssl=true\n"), blob: Buffer.from([0x00, 0x01, 0x02]), empty: Buffer.alloc(0) }, NOW);
    expect(opaque.keys.map((k) => `${k.key}: ${k.format}`)).to.deep.equal(["blob: binary", "empty: empty", "sslconfig.ini: text"]);
    expect(opaque.chain).to.deep.equal({ ok: null, message: "no certificate in the Secret" });
    expect(opaque.keyMatch).to.deep.equal({ ok: null, message: "no private key in the Secret" });
    expect(inspectExitCode(opaque)).to.equal(0);
    expect(renderInspection("Secret cast/x", opaque)).to.not.contain("ssl=true");
  });
});
