import { expect } from "chai";
import { connectionsAffected } from "../../src/operator";
import type { SecureDatabaseObject } from "../../src/reconcilers/context";

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

  it("not a new record of the database's live check", () => {
    const before = db({ conditions: ready("Secured"), verification: { lastSuccessTime: "2026-12-03T00:00:00Z" } });
    const after = db({ ...before.status, verification: { lastSuccessTime: "2026-12-03T00:05:00Z" } });
    expect(connectionsAffected("update", after, before)).to.equal(false);
  });
});
