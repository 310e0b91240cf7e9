import { expect } from "chai";
import type { SecureDatabase } from "../../src/api/types";
import { OPERATOR_USER } from "../support/controlplane";
import { controlPlane } from "../support/hooks";
import { condition, getJson, kubectlOk, waitForCondition } from "../support/kubectl-json";
import { startOperatorWithDatabase, type OperatorWithDatabase } from "../support/operator-fixture";
import type { PostgresServer } from "../support/postgres";

const WRITE_VERBS = new Set(["create", "update", "patch", "delete", "deletecollection"]);

/** What the operator does when the live server misbehaves: it says so precisely, backs off, and recovers. */
describe("SecureDatabase against a misbehaving server (real API server, real PostgreSQL)", function () {
  this.timeout(180_000);
  let env: OperatorWithDatabase;
  let ns: string;
  let pg: PostgresServer;

  before(async () => {
    env = await startOperatorWithDatabase({
      name: "faults",
      databases: [{ roles: ["app"] }],
      // Verified often (the shortest interval allowed), so an outage shows quickly.
      secureDatabase: { patch: { spec: { verification: { interval: "10s" } } } },
    });
    ({ ns, pg } = env);
  });

  after(async () => env?.stop());

  it("a database that goes down: Verified False (Unreachable) with a bounded number of retries, Ready again once it is back", async () => {
    await pg.halt();
    const down = await waitForCondition<SecureDatabase>("sdb", ns, "db", "Verified", (c) => c.status === "False", 30_000);
    expect(condition(down, "Verified")).to.include({ reason: "Unreachable" });
    expect(condition(down, "Verified")?.message).to.match(/ECONNREFUSED/);
    expect(condition(down, "Ready")).to.include({ status: "False", reason: "Unreachable" });
    // Backing off: over 12 s of outage, a handful of probes (each a status write), not a loop.
    const since = new Date();
    await new Promise((r) => setTimeout(r, 12_000));
    const writes = (await controlPlane().auditEvents(OPERATOR_USER, since)).filter((e) => WRITE_VERBS.has(e.verb) && e.objectRef?.resource === "securedatabases");
    expect(writes.length).to.be.within(1, 10);
    await pg.start();
    const back = await waitForCondition<SecureDatabase>("sdb", ns, "db", "Ready", (c) => c.status === "True", 60_000);
    expect(condition(back, "Verified")).to.include({ status: "True", reason: "ServingCurrentCertificate" });
  });

  it("an admin user that may not reload the server: Reloaded False (ReloadNotPermitted) in the server's words, with what to do", async () => {
    await kubectlOk(["patch", "sdb", "db", "-n", ns, "--type=merge", "-p", JSON.stringify({ spec: { reload: { adminUser: "app" } } })]);
    // A new server certificate is material to reload.
    await kubectlOk(["annotate", "sdb", "db", "-n", ns, "mtls.imaging.dev/rotate=needs-reload"]);
    const refused = await waitForCondition<SecureDatabase>("sdb", ns, "db", "Reloaded", (c) => c.status === "False", 30_000);
    expect(condition(refused, "Reloaded")).to.include({ reason: "ReloadNotPermitted" });
    expect(condition(refused, "Reloaded")?.message).to.contain("permission denied for function pg_reload_conf").and.to.contain("grant app the right to run pg_reload_conf()");
    expect(condition(refused, "Ready")?.status).to.equal("False");
    const events = await getJson<{ items: { reason: string; type: string }[] }>(["get", "events", "-n", ns, "--field-selector", "involvedObject.name=db,reason=ReloadNotPermitted"]);
    expect(events.items[0]).to.include({ type: "Warning" });
    // Granting the right (here: back to the superuser) lets the operator finish: the server serves the new certificate.
    await kubectlOk(["patch", "sdb", "db", "-n", ns, "--type=merge", "-p", JSON.stringify({ spec: { reload: { adminUser: "postgres" } } })]);
    const fixed = await waitForCondition<SecureDatabase>("sdb", ns, "db", "Ready", (c) => c.status === "True", 60_000);
    expect(fixed.status?.verification?.servedSerialNumber).to.equal(fixed.status?.serverCertificate?.serialNumber);
    expect(fixed.status?.serverCertificate?.lastRotationToken).to.equal("needs-reload");
  });
});
