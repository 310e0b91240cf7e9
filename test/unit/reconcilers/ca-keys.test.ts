import { expect } from "chai";
import { caKeyLabels, caKeyLocation, isOwnCAKey, planLegacyMove } from "../../../src/reconcilers/ca-keys";
import type { SecretObject } from "../../../src/kube/secrets";

const SECRET_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

describe("ca-keys: where a database's CA Secrets live", () => {
  it("a CA Secret of namespace cast is <key namespace>/cast.<name>", () => {
    expect(caKeyLocation("imaging-db-mtls-operator", "cast", "db-ca")).to.deep.equal({ namespace: "imaging-db-mtls-operator", name: "cast.db-ca" });
  });

  it("two databases of different namespaces never share one, whatever their names (namespaces have no dots)", () => {
    const a = caKeyLocation("k", "a-b", "c-ca");
    const b = caKeyLocation("k", "a", "b-c-ca");
    expect(a.name).to.not.equal(b.name);
  });

  it("a name too long for a Secret is cut and hashed: still unique, still a valid Secret name", () => {
    const ns = "n".repeat(63);
    const long = `${"x".repeat(180)}.${"y".repeat(8)}-ca`;
    const other = `${"x".repeat(180)}.${"y".repeat(8)}-cb`;
    const at = caKeyLocation("k", ns, long);
    expect(at.name.length).to.be.at.most(253);
    expect(at.name).to.match(SECRET_NAME);
    expect(at.name).to.not.equal(caKeyLocation("k", ns, other).name);
    // A cut that would end in "." or "-" drops them rather than make an invalid name.
    const dotted = caKeyLocation("k", ns, `${"x".repeat(176)}.-.-.-.-${"z".repeat(20)}`);
    expect(dotted.name).to.match(SECRET_NAME);
  });

  it("is this database's only with both labels: the same database name in another namespace is someone else", () => {
    const secret = (labels: Record<string, string>): SecretObject => ({ metadata: { name: "cast.db-ca", labels } });
    expect(isOwnCAKey(secret(caKeyLabels("cast", "db")), "cast", "db")).to.equal(true);
    expect(isOwnCAKey(secret(caKeyLabels("other", "db")), "cast", "db")).to.equal(false);
    expect(isOwnCAKey(secret({ "mtls.imaging.dev/owner": "SecureDatabase.db" }), "cast", "db")).to.equal(false);
    expect(isOwnCAKey(undefined, "cast", "db")).to.equal(false);
  });
});

describe("planLegacyMove: a CA Secret an older operator kept in the database's namespace", () => {
  const at = { namespace: "keys", name: "cast.db-ca" };
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const secret = (labels: Record<string, string>, crt: string, key: string, namespace = "cast"): SecretObject => ({
    metadata: { name: "db-ca", namespace, labels },
    data: { "tls.crt": b64(crt), "tls.key": b64(key) },
  });
  const legacy = secret({ "mtls.imaging.dev/owner": "SecureDatabase.db" }, "CERT", "KEY");

  it("nothing there, or not this database's: nothing to move", () => {
    expect(planLegacyMove(undefined, undefined, "db", at)).to.deep.equal({ action: "none" });
    expect(planLegacyMove(secret({ "mtls.imaging.dev/owner": "SecureDatabase.other" }, "C", "K"), undefined, "db", at)).to.deep.equal({ action: "none" });
    expect(planLegacyMove(secret({}, "C", "K"), undefined, "db", at)).to.deep.equal({ action: "none" });
  });

  it("not in the key namespace yet: copy it", () => {
    expect(planLegacyMove(legacy, undefined, "db", at)).to.deep.equal({ action: "copy" });
  });

  it("already copied with the same certificate and key (a crash after the copy): delete the old one", () => {
    const moved = secret(caKeyLabels("cast", "db"), "CERT", "KEY", "keys");
    expect(planLegacyMove(legacy, moved, "db", at)).to.deep.equal({ action: "deleteLegacy" });
  });

  it("another CA in the key namespace: never delete a key that may be the only copy, say so", () => {
    const moved = secret(caKeyLabels("cast", "db"), "CERT", "OTHER KEY", "keys");
    const plan = planLegacyMove(legacy, moved, "db", at);
    expect(plan.action).to.equal("keep");
    expect(plan.action === "keep" && plan.message).to.contain("Secret db-ca in namespace cast holds another CA than keys/cast.db-ca").and.contain("left as it is");
  });
});
