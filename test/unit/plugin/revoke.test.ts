import { expect } from "chai";
import { parse } from "yaml";
import { API_VERSION, type Revocation, type SecureDatabase } from "../../../src/api/types";
import { encodeEntry } from "../../../src/reconcilers/issued-ledger";
import { PluginError } from "../../../src/plugin/errors";
import { runPlugin } from "../../../src/plugin/main";
import { toResource } from "../../../src/plugin/resources";
import {
  renderRevocationApply,
  revocationApply,
  revocationEntry,
  revocationProblem,
  revocationProgress,
  sameRevocation,
  serialOfFingerprint,
} from "../../../src/plugin/revoke";
import { capture, condition, database, pki, type Pki } from "./fixtures";

const DB = { namespace: "cast", name: "db" };

function sdb(revocations?: Revocation[]): SecureDatabase {
  return {
    apiVersion: API_VERSION,
    kind: "SecureDatabase",
    metadata: { name: "db", namespace: "cast", resourceVersion: "42" },
    spec: { host: "db.cast.svc", postgres: { configMapName: "pg" }, ...(revocations ? { trust: { revocations } } : {}) },
  };
}

describe("kubectl mtls revoke (pure)", () => {
  let p: Pki;
  before(async () => {
    p = await pki();
  });

  it("writes entries in canonical form: a serial or fingerprint in lower-case hex, a connection with its namespace when it differs", () => {
    expect(revocationEntry({ serial: "3F:0A:01" }, "keyCompromise", DB)).to.deep.equal({ serialNumber: "3f0a01", reason: "keyCompromise" });
    expect(revocationEntry({ fingerprint: `SHA256 Fingerprint=${"AB:".repeat(31)}AB` }, "unspecified", DB)).to.deep.equal({ sha256Fingerprint: "ab".repeat(32), reason: "unspecified" });
    expect(revocationEntry({ connection: { namespace: "cast", name: "analysis" } }, "superseded", DB)).to.deep.equal({ connectionName: "analysis", reason: "superseded" });
    expect(revocationEntry({ connection: { namespace: "other", name: "analysis" } }, "superseded", DB)).to.deep.equal({ connectionName: "analysis", connectionNamespace: "other", reason: "superseded" });
    expect(() => revocationEntry({ serial: "xyz" }, "unspecified", DB)).to.throw(PluginError, /"xyz" is not a hexadecimal serial number .*\(kubectl mtls revoke --help\)/);
    expect(() => revocationEntry({ fingerprint: "abcd" }, "unspecified", DB)).to.throw(PluginError, /not a SHA-256 fingerprint/);
  });

  it("applies the whole atomic list: every entry there, as it is, plus the new one, under the resourceVersion read", () => {
    const existing: Revocation[] = [{ connectionName: "old", reason: "cessationOfOperation" }, { serialNumber: "0a0b", reason: "unspecified" }];
    const plan = revocationApply(sdb(existing), { serialNumber: "3f0a01", reason: "keyCompromise" }, true);
    expect(plan.alreadyListed).to.equal(false);
    expect(plan.body).to.deep.equal({
      apiVersion: API_VERSION,
      kind: "SecureDatabase",
      metadata: { name: "db", namespace: "cast", resourceVersion: "42" },
      spec: { trust: { revocations: [...existing, { serialNumber: "3f0a01", reason: "keyCompromise" }] } },
    });
    // Nothing but the identity and the list: the apply claims no other field.
    expect(Object.keys(plan.body.spec)).to.deep.equal(["trust"]);
    expect(Object.keys(plan.body.spec.trust)).to.deep.equal(["revocations"]);
  });

  it("adds nothing when the entry is there already, whatever its spelling or reason", () => {
    const plan = revocationApply(sdb([{ serialNumber: "3F:0A:01", reason: "unspecified" }]), { serialNumber: "3f0a01", reason: "keyCompromise" }, true);
    expect(plan.alreadyListed).to.equal(true);
    expect(plan.body.spec.trust.revocations).to.have.length(1);
    expect(sameRevocation({ connectionName: "a" }, { connectionName: "a", connectionNamespace: "cast" }, "cast")).to.equal(true);
    expect(sameRevocation({ connectionName: "a" }, { connectionName: "a", connectionNamespace: "other" }, "cast")).to.equal(false);
    expect(sameRevocation({ serialNumber: "0a" }, { sha256Fingerprint: "ab".repeat(32) }, "cast")).to.equal(false);
  });

  it("--dry-run's YAML is what to commit: no resourceVersion, an object kubectl apply --server-side takes", () => {
    const yaml = renderRevocationApply(revocationApply(sdb(), { serialNumber: "3f0a01", reason: "keyCompromise" }, false));
    expect(yaml).to.equal(`apiVersion: mtls.imaging.dev/v1alpha1
kind: SecureDatabase
metadata:
  name: db
  namespace: cast
spec:
  trust:
    revocations:
      - serialNumber: 3f0a01
        reason: keyCompromise
`);
    expect(parse(yaml)).to.have.nested.property("spec.trust.revocations[0].serialNumber", "3f0a01");
  });

  it("checks the new list with the operator's own validation", () => {
    expect(revocationProblem(sdb(), [{ serialNumber: "0a", reason: "unspecified" }])).to.equal(undefined);
    expect(revocationProblem(sdb(), [{ serialNumber: "0a", connectionName: "x" }])).to.match(/^spec\.trust\.revocations\[0\]: each revocation must set exactly one of/);
  });

  it("resolves a fingerprint to its serial through the ledger's ConfigMaps", () => {
    const fp = "cd".repeat(32);
    const shard = { "0a1b": encodeEntry({ namespace: "cast", connection: "analysis", sha256Fingerprint: fp }) };
    expect(serialOfFingerprint([undefined, { junk: "x" }, shard], fp.toUpperCase())).to.equal("0a1b");
    expect(serialOfFingerprint([shard], "ef".repeat(32))).to.equal(undefined);
  });

  it("is done once status.trust.revokedSerials lists the serial; until then names what holds it back", () => {
    const listed = toResource("SecureDatabase", database(p));
    expect(revocationProgress(p.revokedSerial, listed)).to.deep.include({ done: true, line: `the CRL lists serial ${p.revokedSerial} (CRL number 3)` });
    const waiting = toResource("SecureDatabase", database(p, { trust: { revokedSerials: [] }, conditions: [condition("Reloaded", "False", "WaitingForFiles", "files late"), condition("Ready", "False", "WaitingForFiles")] }));
    expect(revocationProgress("0a", waiting)).to.deep.include({ done: false, line: "waiting for the operator to list serial 0a in the CRL (Reloaded False WaitingForFiles: files late)" });
  });

  it("refuses a reason RFC 5280 does not list, and a serial without its database, with exit 2 before touching the cluster", async () => {
    const c = capture();
    expect(await runPlugin(["revoke", "imc/analysis", "--reason", "because"], c.out)).to.equal(2);
    expect(c.stderr).to.equal(
      'error: --reason must be one of unspecified, keyCompromise, superseded, cessationOfOperation, affiliationChanged, not "because" (kubectl mtls revoke --help)\n',
    );
    const d = capture();
    expect(await runPlugin(["revoke", "--kubeconfig", "/nonexistent/kubeconfig", "--serial", "0a"], d.out)).to.equal(2);
    expect(d.stderr).to.equal("error: --serial needs the database whose CRL lists it: add --database sdb/NAME\n");
    for (const [args, message] of [
      [["revoke"], /^error: revoke takes one of imc\/NAME, --serial S or --fingerprint F/],
      [["revoke", "imc/a", "--serial", "0a"], /^error: revoke takes one of/],
      [["revoke", "sdb/db"], /^error: revoke takes a connection \(imc\/NAME\)/],
      [["revoke", "--serial", "0a", "--connection", "--database", "db"], /^error: --connection revokes a connection/],
    ] as const) {
      const e = capture();
      expect(await runPlugin([...args, "--kubeconfig", "/nonexistent/kubeconfig"], e.out)).to.equal(2);
      expect(e.stderr).to.match(message);
    }
  });
});
