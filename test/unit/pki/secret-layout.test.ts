import { expect } from "chai";
import {
  SECRET_KEYS,
  buildTrustBundle,
  caSecretData,
  clientSecretData,
  issueClientCertificate,
  issueCRL,
  issueServerCertificate,
  loadCA,
  secretDataEqual,
  serverSecretData,
} from "../../../src/pki/index";
import { parsePkcs12 } from "../../support/pki";
import { DAY, openssl, sharedCA, tempDir } from "./helpers";

describe("pki/secret-layout", () => {
  it("server Secret: tls.crt, tls.key (PKCS#8 PEM), ca.crt, ca.crl", async () => {
    const ca = await sharedCA();
    const issued = await issueServerCertificate(ca, { dnsNames: ["db"], duration: DAY, now: new Date() });
    const bundle = buildTrustBundle([ca.certPem]);
    const crl = await issueCRL(ca, { revoked: [], crlNumber: 1, thisUpdate: new Date(), nextUpdate: new Date(Date.now() + DAY) });
    const data = serverSecretData({ issued, trustBundlePem: bundle, crlPem: crl });
    expect(Object.keys(data).sort()).to.deep.equal(["ca.crl", "ca.crt", "tls.crt", "tls.key"]);
    expect(data["tls.crt"]?.toString()).to.equal(issued.chainPem);
    expect(data["tls.key"]?.toString()).to.match(/^-----BEGIN PRIVATE KEY-----/);
    expect(data["ca.crt"]?.toString()).to.equal(bundle);
    expect(data["ca.crl"]?.toString()).to.equal(crl);
  });

  it("client Secret: every file CAST documents, each in the right format (openssl cross-check)", async () => {
    const ca = await sharedCA();
    const issued = await issueClientCertificate(ca, { user: "app", duration: DAY, now: new Date() });
    const bundle = buildTrustBundle([ca.certPem]);
    const data = await clientSecretData({ issued, trustBundlePem: bundle });
    expect(Object.keys(data).sort()).to.deep.equal(
      ["ca.crt", "client.crt", "client.key", "client.pem.pk8", "client.pfx", "client.pfx.password", "client.pk8", "root.crt", "tls.crt", "tls.key"].sort(),
    );
    expect(Object.values(SECRET_KEYS)).to.include.members(Object.keys(data));
    const password = data["client.pfx.password"]?.toString() ?? "";
    expect(password).to.match(/^[A-Za-z0-9_-]{32}$/);
    expect(data["client.key"]?.toString()).to.equal(issued.keyPkcs8Pem);
    expect(data["client.pem.pk8"]?.toString()).to.equal(issued.keyPkcs8Pem);
    expect(data["client.pk8"]?.equals(issued.keyPkcs8Der)).to.equal(true);
    expect(data["root.crt"]?.toString()).to.equal(bundle);
    expect(data["client.crt"]?.toString()).to.equal(issued.chainPem);
    const t = tempDir();
    try {
      const der = openssl(["pkey", "-inform", "DER", "-in", t.file("client.pk8", data["client.pk8"] ?? Buffer.alloc(0)), "-noout"]);
      expect(der.code, der.stderr).to.equal(0);
      const v = openssl(["verify", "-CAfile", t.file("root.crt", data["root.crt"] ?? ""), t.file("client.crt", data["client.crt"] ?? "")]);
      expect(v.code, v.stderr).to.equal(0);
      const p12 = openssl(["pkcs12", "-in", t.file("client.pfx", data["client.pfx"] ?? Buffer.alloc(0)), "-passin", `pass:${password}`, "-nodes"]);
      expect(p12.code, p12.stderr).to.equal(0);
      expect(p12.stdout).to.contain("BEGIN PRIVATE KEY").and.to.contain(ca.certPem.trim());
    } finally {
      t.cleanup();
    }
  });

  it("keeps the previous password and PKCS#12 bytes when nothing changed, rebuilds when something did", async () => {
    const ca = await sharedCA();
    const issued = await issueClientCertificate(ca, { user: "app", duration: DAY, now: new Date() });
    const bundle = buildTrustBundle([ca.certPem]);
    const first = await clientSecretData({ issued, trustBundlePem: bundle });
    const again = await clientSecretData({ issued, trustBundlePem: bundle, previous: first });
    expect(secretDataEqual(first, again)).to.equal(true);

    const other = await sharedCA({ algorithm: "ECDSA", size: 384 });
    const widened = await clientSecretData({ issued, trustBundlePem: buildTrustBundle([ca.certPem, other.certPem]), previous: first });
    expect(secretDataEqual(first, widened)).to.equal(false);
    expect(widened["client.pfx.password"]?.equals(first["client.pfx.password"] ?? Buffer.alloc(0))).to.equal(true);
    expect(widened["client.pfx"]?.equals(first["client.pfx"] ?? Buffer.alloc(0))).to.equal(false);
    // The PKCS#12 holds the issuer chain only, not every trusted CA.
    const parsed = await parsePkcs12(widened["client.pfx"] ?? Buffer.alloc(0), widened["client.pfx.password"]?.toString() ?? "");
    expect(parsed.certificatePems).to.deep.equal([issued.certPem, ca.certPem]);

    const explicit = await clientSecretData({ issued, trustBundlePem: bundle, pfxPassword: "chosen", previous: first });
    expect(explicit["client.pfx.password"]?.toString()).to.equal("chosen");
    expect(explicit["client.pfx"]?.equals(first["client.pfx"] ?? Buffer.alloc(0))).to.equal(false);
  });

  it("CA Secret: tls.crt, tls.key, ca.crt, and loadCA reads it back", async () => {
    const ca = await sharedCA();
    const data = caSecretData(ca);
    expect(Object.keys(data).sort()).to.deep.equal(["ca.crt", "tls.crt", "tls.key"]);
    const back = await loadCA(data["tls.crt"] ?? "", data["tls.key"] ?? "", new Date());
    expect(back.facts.fingerprintSha256).to.equal(ca.facts.fingerprintSha256);
  });

  it("secretDataEqual compares keys and bytes", () => {
    expect(secretDataEqual({ a: Buffer.from("x") }, { a: Buffer.from("x") })).to.equal(true);
    expect(secretDataEqual({ a: Buffer.from("x") }, { a: Buffer.from("y") })).to.equal(false);
    expect(secretDataEqual({ a: Buffer.from("x") }, { a: Buffer.from("x"), b: Buffer.from("") })).to.equal(false);
    expect(secretDataEqual({ a: new Uint8Array([1, 2]) }, { a: Buffer.from([1, 2]) })).to.equal(true);
  });
});
