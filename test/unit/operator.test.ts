import { expect } from "chai";
import { connectionsAffected, connectionsReadSecretChange } from "../../src/operator";
import type { SecretCacheObject, SecureDatabaseObject } from "../../src/reconcilers/context";

describe("which SecureDatabase changes wake its connections", () => {
  const db = (status: SecureDatabaseObject["status"], generation = 1): SecureDatabaseObject =>
    ({ apiVersion: "mtls.imaging.dev/v1alpha1", kind: "SecureDatabase", metadata: { name: "db", namespace: "cast", generation, resourceVersion: "1" }, spec: { host: "db" }, status }) as SecureDatabaseObject;
  const ready = (reason: string) => [{ type: "Ready", status: "True" as const, reason, message: "m", lastTransitionTime: "2026-12-03T00:00:00Z" }];

  it("a new, deleted or edited database, and every status change they read: Ready, CA, rotation, trust", () => {
    const before = db({ conditions: ready("Secured"), caRotation: { phase: "Idle" } });
    expect(connectionsAffected("add", before, undefined)).to.equal(true);
    expect(connectionsAffected("delete", before, undefined)).to.equal(true);
    expect(connectionsAffected("update", db(before.status, 2), before)).to.equal(true);
    expect(connectionsAffected("update", db({ ...before.status, conditions: ready("Verifying") }), before)).to.equal(true);
    expect(connectionsAffected("update", db({ ...before.status, caRotation: { phase: "Overlap" } }), before)).to.equal(true);
    expect(connectionsAffected("update", db({ ...before.status, trust: { revokedSerials: ["0a"] } }), before)).to.equal(true);
  });

  it("not its finalizers, labels or annotations, which no connection reads", () => {
    const before = db({ conditions: ready("Secured") });
    const after = db(before.status);
    after.metadata = { ...after.metadata, finalizers: ["mtls.imaging.dev/cleanup"], labels: { team: "a" }, annotations: { note: "x" } };
    expect(connectionsAffected("update", after, before)).to.equal(false);
    expect(connectionsAffected("update", { ...after, metadata: { ...after.metadata, deletionTimestamp: "2026-12-04T00:00:00Z" as unknown as SecureDatabaseObject["metadata"]["deletionTimestamp"] } }, before)).to.equal(true);
  });

  it("not a new record of the database's live check", () => {
    const before = db({ conditions: ready("Secured"), verification: { lastSuccessTime: "2026-12-03T00:00:00Z" } });
    const after = db({ ...before.status, verification: { lastSuccessTime: "2026-12-03T00:05:00Z" } });
    expect(connectionsAffected("update", after, before)).to.equal(false);
  });
});

describe("which changes of a database's Secrets wake its connections", () => {
  const secret = (data: Record<string, string>): SecretCacheObject => ({ apiVersion: "v1", kind: "Secret", metadata: { name: "db-server-tls", namespace: "cast", resourceVersion: "1" }, data }) as SecretCacheObject;
  const acknowledged = { metadata: { name: "db", namespace: "cast" }, spec: { host: "db" }, status: { ca: { fingerprintSHA256: "ab" } } } as unknown as SecureDatabaseObject;
  const settingUp = { ...acknowledged, status: {} } as SecureDatabaseObject;
  const before = secret({ "tls.crt": "c1", "tls.key": "k1", "ca.crt": "b1", "ca.crl": "r1" });

  it("a new trust bundle, CA certificate or key, and a Secret created or deleted", () => {
    expect(connectionsReadSecretChange("update", secret({ ...before.data, "ca.crt": "b2" }), before, acknowledged)).to.equal(true);
    expect(connectionsReadSecretChange("update", secret({ ...before.data, "tls.crt": "c2" }), before, acknowledged)).to.equal(true);
    expect(connectionsReadSecretChange("update", secret({ ...before.data, "tls.key": "k2" }), before, acknowledged)).to.equal(true);
    expect(connectionsReadSecretChange("add", before, undefined, acknowledged)).to.equal(true);
    expect(connectionsReadSecretChange("delete", before, undefined, acknowledged)).to.equal(true);
  });

  it("not a new CRL, nor anything before the database has acknowledged a CA (its status write wakes them then)", () => {
    expect(connectionsReadSecretChange("update", secret({ ...before.data, "ca.crl": "r2" }), before, acknowledged)).to.equal(false);
    expect(connectionsReadSecretChange("add", before, undefined, settingUp)).to.equal(false);
    expect(connectionsReadSecretChange("update", secret({ ...before.data, "ca.crt": "b2" }), before, undefined)).to.equal(false);
  });
});
