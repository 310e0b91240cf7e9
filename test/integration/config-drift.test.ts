/**
 * A server that loaded its configuration while the managed blocks were missing from its ConfigMap (a pipeline
 * re-applied the original, and the server restarted or reloaded before the operator put the blocks back) serves
 * plain TCP again. Putting the blocks back in the ConfigMap is not enough: the operator must see it over the wire
 * and get the server to load them again, with a restart when TLS is off (it cannot be reloaded over mTLS then)
 * and a reload when only pg_hba.conf was dropped. The operator is stopped while the server drifts, so that the
 * server really loads the stripped files (a running operator restores the ConfigMap within milliseconds).
 */
import { expect } from "chai";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { SecureDatabase } from "../../src/api/types";
import type { DatabaseInCluster } from "../support/database-fixture";
import { condition, getJson, kubectlOk, waitForCondition } from "../support/kubectl-json";
import { startOperatorWithDatabase, type OperatorWithDatabase } from "../support/operator-fixture";
import { psql, type PostgresServer } from "../support/postgres";
import { waitFor } from "../support/process";

/** SETTLE_WINDOW_MS in src/reconcilers/secure-database/reload.ts. */
const SETTLE_WINDOW_MS = 30_000;

interface ConfigMapJson {
  data: Record<string, string>;
}
interface StatefulSetJson {
  spec: { template: { metadata?: { annotations?: Record<string, string> } } };
}
interface EventList {
  items: { reason: string; message: string; type: string }[];
}

describe("a server that dropped the managed configuration is brought back (real API server, real PostgreSQL)", function () {
  this.timeout(180_000);
  let env: OperatorWithDatabase;
  let ns: string;
  let pg: PostgresServer;
  let db: DatabaseInCluster;
  let securedData: Record<string, string>;

  const plainTcp = () => psql({ host: "127.0.0.1", port: pg.port, user: "postgres", sslmode: "disable", command: "SELECT 1" });
  const configMap = () => getJson<ConfigMapJson>(["get", "configmap", "pg-config", "-n", ns]);
  const onDisk = async (key: string) => readFile(join(pg.dataDir, key), "utf8");
  const events = async (reason: string) => (await getJson<EventList>(["get", "events", "-n", ns, "--field-selector", `involvedObject.name=db,reason=${reason}`])).items;

  /** With the operator stopped: the ConfigMap loses the given blocks, the "kubelet" lays the files down, then `load`. */
  async function drift(keys: string[], load: () => Promise<void>): Promise<void> {
    await env.stopOperator();
    const stripped = { ...securedData };
    // What a pipeline re-applying the original ConfigMap does: the files as they were before the operator.
    for (const key of keys) stripped[key] = key === "pg_hba.conf" ? db.originalHba : db.originalConf;
    await kubectlOk(["patch", "configmap", "pg-config", "-n", ns, "--type=merge", "-p", JSON.stringify({ data: stripped })]);
    await waitFor("the stripped files on disk", async () => (await Promise.all(keys.map(async (k) => (await onDisk(k)) === stripped[k]))).every(Boolean), 10_000, 100);
    await load();
  }

  before(async () => {
    env = await startOperatorWithDatabase({
      name: "drift",
      beforeOperator: async (started) => {
        ({ ns, pg, db } = started);
        // Before the operator: the server's own configuration lets anyone in over plain TCP (initdb's trust rule).
        expect((await plainTcp()).code, "plain TCP before securing").to.equal(0);
      },
      // A short CA propagation delay keeps the settle window after a reload at its 30 s floor (see below).
      secureDatabase: { extraSpec: "  ca: { propagationDelay: 1s }\n" },
    });
    securedData = (await configMap()).data;
    const refused = await plainTcp();
    expect(refused.code, "plain TCP once secured").to.not.equal(0);
    expect(refused.stderr).to.match(/no encryption/);
  });

  after(async () => env?.stop());

  it("restarted while the blocks were missing (TLS off, plain TCP open): the operator restores the ConfigMap, sees it over the wire and restarts the server", async () => {
    const restartsBefore = db.syncer.restarts;
    await drift(["postgresql.conf", "pg_hba.conf"], () => pg.restart());
    // The hole, as a client sees it: plain TCP works again.
    expect((await plainTcp()).code, "plain TCP after the drift").to.equal(0);

    const back = Date.now();
    await env.startOperator();
    await waitFor("the managed blocks back in the ConfigMap", async () => JSON.stringify((await configMap()).data) === JSON.stringify(securedData), 20_000, 100);
    const sdb = await waitForCondition<SecureDatabase>("sdb", ns, "db", "Verified", (c) => c.status === "True", 90_000);
    const securedIn = Date.now() - back;
    expect(condition(sdb, "Ready")?.status).to.equal("True");

    // Restarted by the operator: the pod-template annotation it stamps, and the "kubelet" restarted the server.
    const sts = await getJson<StatefulSetJson>(["get", "statefulset", "css", "-n", ns]);
    const stamped = sts.spec.template.metadata?.annotations?.["mtls.imaging.dev/restarted-at"];
    expect(stamped, "restart annotation").to.be.a("string");
    expect(Date.parse(stamped!)).to.be.at.least(back - 1000);
    expect(db.syncer.restarts - restartsBefore, "restarts by the operator (the test's own pg.restart() is not counted)").to.equal(1);
    expect((await events("RolloutRequested")).map((e) => e.message).join("\n")).to.contain("the server no longer serves TLS");

    const refused = await plainTcp();
    expect(refused.code, "plain TCP after the operator's restart").to.not.equal(0);
    expect(refused.stderr).to.match(/no encryption/);
    console.log(`      TLS back and plain TCP refused ${securedIn} ms after the operator started again`);
  });

  it("reloaded while only the pg_hba.conf block was missing (TLS on, plain TCP open): the operator finds the plain path and reloads", async () => {
    const restartsBefore = db.syncer.restarts;
    await drift(["pg_hba.conf"], () => pg.reload());
    await waitFor("plain TCP open after the reload", async () => (await plainTcp()).code === 0, 10_000, 200);
    // For a while after its last reload (30 s here) the operator reloads again every few seconds for files the
    // kubelet lays down late, which would close the hole unseen: start it after that window, so only the plain-TCP
    // check can.
    const lastReload = Date.parse((await getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns])).status?.reload?.lastReloadTime ?? "");
    const settled = lastReload + SETTLE_WINDOW_MS + 1000 - Date.now();
    if (settled > 0) await new Promise((r) => setTimeout(r, settled));

    const back = Date.now();
    await env.startOperator();
    await waitFor("the managed block back in the ConfigMap", async () => JSON.stringify((await configMap()).data) === JSON.stringify(securedData), 20_000, 100);
    await waitFor("plain TCP refused again", async () => (await plainTcp()).code !== 0, 60_000, 250);
    const closedIn = Date.now() - back;
    const sdb = await waitForCondition<SecureDatabase>("sdb", ns, "db", "Verified", (c) => c.status === "True", 60_000);
    expect(condition(sdb, "Ready")?.status).to.equal("True");

    // Seen and said: a Warning naming the plain path; fixed with a reload, not a restart.
    const warnings = await events("PlaintextAccepted");
    expect(warnings.map((e) => e.type)).to.include("Warning");
    expect(warnings[0]!.message).to.contain("over plain TCP");
    expect(warnings[0]!.message).to.contain("reloaded it over mTLS");
    expect(db.syncer.restarts, "no restart for a reload's worth of drift").to.equal(restartsBefore);
    const refused = await plainTcp();
    expect(refused.stderr).to.match(/no encryption/);
    console.log(`      plain TCP closed ${closedIn} ms after the operator started again`);
  });
});
