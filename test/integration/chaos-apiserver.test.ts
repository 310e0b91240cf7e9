/**
 * Chaos (issue 8, item 2): the API server goes away for 30 s and comes back on the same etcd, while a database and
 * its connections are Ready. The operator (this very process) must ride it out without crashing or restarting,
 * and catch up with what changed while it was cut off: a new connection, a new server SAN, a deleted connection.
 *
 * What the runs showed (printed by the test): the operator's informers relist with backoff capped at 30 s
 * (src/runtime/informer.ts); a relist that reaches the restarting API server in the second or so before /readyz
 * is refused (403 while its RBAC authorizer is not loaded, 429 for the custom resources) and waits the full 30 s,
 * so catching up takes about 30 s after the API server is back. The bound below (60 s) allows for that.
 */
import { expect } from "chai";
import type { ImagingConnection, SecureDatabase } from "../../src/api/types";
import type { Operator } from "../../src/operator";
import type { SecretObject } from "../../src/kube/secrets";
import { secretBytes } from "../../src/kube/secrets";
import { normalizeSerial } from "../../src/postgres/probe";
import { keepingLogger, recordUnhandledRejections, servedServerCertificate, sleep, type LogEntry } from "../support/chaos";
import { OPERATOR_USER, type AuditEvent, type ControlPlane } from "../support/controlplane";
import { controlPlane } from "../support/hooks";
import { condition, getJson, kubectlOk, waitForCondition } from "../support/kubectl-json";
import { castImagingWorkloads, imagingConnectionYaml, plainDeployment } from "../support/manifests";
import type { PostgresServer } from "../support/postgres";
import { startOperatorWithDatabase, type OperatorWithDatabase } from "../support/operator-fixture";
import { waitFor } from "../support/process";
import { X509Certificate } from "node:crypto";

type Json = Record<string, unknown>;
interface WorkloadJson {
  metadata: { name: string; annotations?: Record<string, string> };
  spec: { template: { metadata?: { annotations?: Record<string, string> }; spec: { containers: (Json & { name: string; volumeMounts?: { name: string }[]; env?: { name: string }[] })[]; volumes?: { name: string }[] } } };
}

const OUTAGE_MS = 30_000;
/** From the API server answering again to all three changes done. */
const RECOVERY_BOUND_MS = 60_000;
const NEW_SAN = "db-chaos.imaging.example";


/** Is the API server answering (as the admin)? */
async function apiServerReady(cp: ControlPlane): Promise<boolean> {
  const r = await cp.kubectl(["get", "--raw", "/readyz"]);
  return r.code === 0 && r.stdout.trim() === "ok";
}

describe("chaos: the API server is down for 30 s and comes back on the same etcd (real PostgreSQL)", function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let ns: string;
  let env: OperatorWithDatabase;
  let pg: PostgresServer;
  let operator: Operator;
  const logs: LogEntry[] = [];
  /** True from the moment we stop the API server until it answers again: after() must bring it back. */
  let apiServerDown = false;
  let serialBefore = "";
  let operatorStartedAt = new Date();

  before(async () => {
    cp = controlPlane();
    env = await startOperatorWithDatabase({
      name: "chaos-api",
      databases: [{ roles: ["analysis", "viewer", "dash"] }],
      beforeOperator: async ({ ns }) => {
        for (const w of [...Object.values(castImagingWorkloads(ns)), plainDeployment(ns, "dashboards", "dashboards")]) await kubectlOk(["apply", "-f", "-"], JSON.stringify(w));
        operatorStartedAt = new Date();
      },
      operator: { log: keepingLogger(logs) },
      // Every connection of this test mounts its identity into a workload.
      secureDatabase: { access: [{ users: ["analysis", "viewer", "dash"], mountIntoWorkloads: true }] },
    });
    ({ ns, pg, operator } = env);
    await kubectlOk(["apply", "-f", "-"], imagingConnectionYaml(ns, "first", "analysis", "  workloads:\n    - { kind: Deployment, name: imaging-services, containers: [app] }\n"));
    await kubectlOk(["apply", "-f", "-"], imagingConnectionYaml(ns, "doomed", "viewer", "  workloads:\n    - { kind: StatefulSet, name: analysis-node }\n"));
    await waitForCondition<ImagingConnection>("imc", ns, "first", "Ready", (c) => c.status === "True", 60_000);
    await waitForCondition<ImagingConnection>("imc", ns, "doomed", "Ready", (c) => c.status === "True", 60_000);
  });

  after(async function () {
    this.timeout(150_000);
    // The API server is shared by the whole run: never leave it down, whatever happened above.
    if (apiServerDown) {
      await cp.startApiServer();
      apiServerDown = false;
    }
    await waitFor("kube-apiserver /readyz", () => apiServerReady(cp), 60_000, 250);
    await env?.stop();
  });

  it("rides out the outage in-process and catches up on a new connection, a new SAN and a deletion made while it was cut off", async () => {
    const recorder = recordUnhandledRejections();
    const theOperator = operator;
    const sdbBefore = await getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns]);
    serialBefore = sdbBefore.status!.serverCertificate!.serialNumber!;
    const stsBefore = await getJson<WorkloadJson>(["get", "statefulset", "analysis-node", "-n", ns]);
    expect(stsBefore.spec.template.spec.volumes?.map((v) => v.name)).to.include("mtls-doomed");
    const synced: boolean[] = [];
    try {
      // 1. The outage.
      apiServerDown = true;
      const stopAt = Date.now();
      await cp.stopApiServer();
      const stoppedAt = Date.now();
      while (Date.now() - stoppedAt < OUTAGE_MS) {
        synced.push(operator.hasSynced());
        await sleep(1000);
      }
      expect(theOperator.hasSynced(), "informers during the outage").to.equal(true);

      // 2. Back, and straight away (before the operator has had a chance to reconnect) three changes as the admin.
      const restartAt = Date.now();
      await cp.startApiServer();
      apiServerDown = false;
      const backAt = Date.now();
      const since = new Date(backAt);
      await Promise.all([
        kubectlOk(["apply", "-f", "-"], imagingConnectionYaml(ns, "fresh", "dash", "  workloads:\n    - { kind: Deployment, name: dashboards }\n")),
        kubectlOk(["patch", "sdb", "db", "-n", ns, "--type=merge", "-p", JSON.stringify({ spec: { additionalDNSNames: [NEW_SAN] } })]),
        kubectlOk(["delete", "imc", "doomed", "-n", ns, "--wait=false"]),
      ]);
      const changedAt = Date.now();
      const operatorRequestsBeforeChanges = (await cp.auditEvents(OPERATOR_USER, since)).length;

      // 3. Catching up, each change timed from the moment the API server answered again.
      const done: Record<string, number> = {};
      const timed = (what: string, check: () => Promise<boolean>) =>
        waitFor(what, check, RECOVERY_BOUND_MS - (Date.now() - backAt), 250).then(() => {
          done[what] = Date.now() - backAt;
        });
      let lastSdb: SecureDatabase | undefined;
      const results = await Promise.allSettled([
        timed("new connection Ready", async () => condition(await getJson<ImagingConnection>(["get", "imc", "fresh", "-n", ns]), "Ready")?.status === "True"),
        timed("server certificate with the new SAN, served and Verified", async () => {
          lastSdb = await getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns]);
          const s = lastSdb.status;
          return (
            (s?.serverCertificate?.dnsNames ?? []).includes(NEW_SAN) &&
            s?.verification?.servedSerialNumber === s?.serverCertificate?.serialNumber &&
            condition(lastSdb, "Verified")?.status === "True" &&
            condition(lastSdb, "Ready")?.status === "True"
          );
        }),
        timed("deleted connection finalized and unmounted", async () => {
          const gone = (await cp.kubectl(["get", "imc", "doomed", "-n", ns])).code !== 0;
          const sts = await getJson<WorkloadJson>(["get", "statefulset", "analysis-node", "-n", ns]);
          return gone && !(sts.spec.template.spec.volumes ?? []).some((v) => v.name === "mtls-doomed");
        }),
      ]);
      const firstOperatorRequest = (await cp.auditEvents(OPERATOR_USER, since))[0];
      const reconnectMs = firstOperatorRequest ? new Date(firstOperatorRequest.requestReceivedTimestamp).getTime() - backAt : undefined;
      const watchErrors = logs.filter((l) => l.reason === "WatchError" && new Date(String(l.at)).getTime() >= stopAt);
      const retryDelays = watchErrors.map((l) => Number(l.retryInMs));
      console.log(
        `      API server: stopped in ${stoppedAt - stopAt} ms, down ${restartAt - stoppedAt} ms, restart to /readyz ${backAt - restartAt} ms; ` +
          `3 changes made ${changedAt - backAt} ms after it was back (operator requests since /readyz by then: ${operatorRequestsBeforeChanges})`,
      );
      console.log(
        `      operator: first request after /readyz at ${reconnectMs ?? "none"} ms; ${watchErrors.length} watch interruptions logged, ` +
          `relist delays ${Math.min(...retryDelays)}..${Math.max(...retryDelays)} ms; reconcile retries so far: SecureDatabase ${operator.secureDatabaseQueue.retries}, ImagingConnection ${operator.imagingConnectionQueue.retries}, Workload ${operator.workloadQueue.retries}`,
      );
      const firstListAfter = async (user: string) => {
        const firsts = new Map<string, number>();
        for (const e of await cp.auditEvents(user, new Date(restartAt))) {
          if ((e.responseStatus?.code ?? 0) >= 300) continue;
          const r = e.objectRef?.resource ?? "?";
          const k = `${e.verb} ${r}`;
          if ((e.verb === "list" || e.verb === "watch") && !firsts.has(k)) firsts.set(k, new Date(e.requestReceivedTimestamp).getTime() - backAt);
        }
        return [...firsts].map(([r, ms]) => `${r} ${ms} ms`).join(", ");
      };
      console.log(`      first successful list/watch per resource after the restart (ms after /readyz): operator: ${await firstListAfter(OPERATOR_USER)}; the test's volume syncer (admin): ${await firstListAfter("admin")}`);
      const refused = (await cp.auditEvents(OPERATOR_USER, new Date(restartAt))).filter((e) => (e.responseStatus?.code ?? 0) >= 400);
      console.log(`      operator requests answered >= 400 since the restart (ms after /readyz): ${refused.map((e) => `${e.verb} ${e.objectRef?.resource} ${e.responseStatus?.code} at ${new Date(e.requestReceivedTimestamp).getTime() - backAt} ms${e.responseStatus?.code === 403 && new Date(e.requestReceivedTimestamp).getTime() < backAt ? " (before /readyz)" : ""}`).join(", ") || "none"}`);
      console.log(`      recovery (API server back -> change done): ${Object.entries(done).map(([k, v]) => `${k} ${v} ms`).join("; ")}; all three: ${Math.max(...Object.values(done))} ms`);
      // Every collection the operator listed before the outage is listed again: no informer is left behind (a relist
      // refused by a server still loading its RBAC authorizer is retried, not abandoned).
      const listedResources = (events: AuditEvent[]) => new Set(events.filter((e) => e.verb === "list" && (e.responseStatus?.code ?? 0) < 300).map((e) => e.objectRef?.resource ?? "?"));
      const listedBefore = listedResources((await cp.auditEvents(OPERATOR_USER, operatorStartedAt)).filter((e) => new Date(e.requestReceivedTimestamp).getTime() < stopAt));
      expect(listedBefore.size, "collections the operator listed before the outage").to.be.greaterThan(3);
      let notRelisted: string[] = [];
      await waitFor(
        "every informer relisted after the restart",
        async () => {
          const listedAfter = listedResources(await cp.auditEvents(OPERATOR_USER, new Date(restartAt)));
          notRelisted = [...listedBefore].filter((r) => !listedAfter.has(r));
          return notRelisted.length === 0;
        },
        RECOVERY_BOUND_MS,
        500,
      ).catch(() => expect(notRelisted, "collections never listed again after the restart").to.deep.equal([]));
      const failed = results.flatMap((r) => (r.status === "rejected" ? [String(r.reason)] : []));
      expect(failed, `not caught up within ${RECOVERY_BOUND_MS} ms; last SecureDatabase status: ${JSON.stringify(lastSdb?.status?.conditions)}`).to.deep.equal([]);

      // 4. Still the same operator, in this process, with its caches synced; nothing rejected unhandled.
      expect(operator).to.equal(theOperator);
      expect(synced.length).to.be.greaterThan(20);
      expect(synced.every((s) => s)).to.equal(true);
      expect(operator.hasSynced()).to.equal(true);
      expect(recorder.rejections.map(String)).to.deep.equal([]);
    } finally {
      recorder.dispose();
      if (apiServerDown) {
        await cp.startApiServer();
        apiServerDown = false;
      }
    }
  });

  it("the new connection got its Secret and its mount", async () => {
    const imc = await getJson<ImagingConnection>(["get", "imc", "fresh", "-n", ns]);
    expect(condition(imc, "ConnectionVerified")).to.include({ status: "True", reason: "LoggedIn" });
    expect(imc.status?.workloads?.map((w) => [w.kind, w.name, w.state])).to.deep.equal([["Deployment", "dashboards", "Patched"]]);
    const secret = await getJson<SecretObject>(["get", "secret", "fresh-client-tls", "-n", ns]);
    expect(secret.metadata.labels?.["mtls.imaging.dev/owner"]).to.equal("ImagingConnection.fresh");
    const dep = await getJson<WorkloadJson>(["get", "deployment", "dashboards", "-n", ns]);
    expect(dep.spec.template.spec.volumes?.filter((v) => v.name === "mtls-fresh")).to.have.length(1);
  });

  it("the server certificate carries the new SAN, and the real server serves exactly that certificate", async () => {
    const sdb = await getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns]);
    const data = secretBytes(await getJson<SecretObject>(["get", "secret", "db-server-tls", "-n", ns]));
    const cert = new X509Certificate(data["tls.crt"]!);
    expect(cert.subjectAltName).to.contain(`DNS:${NEW_SAN}`);
    expect(normalizeSerial(cert.serialNumber)).to.equal(sdb.status?.serverCertificate?.serialNumber);
    expect(sdb.status?.serverCertificate?.serialNumber).to.not.equal(serialBefore);
    const served = await servedServerCertificate("127.0.0.1", pg.port);
    expect(served.serialNumber).to.equal(sdb.status?.serverCertificate?.serialNumber);
    expect(served.subjectAltName).to.contain(`DNS:${NEW_SAN}`);
    expect(condition(sdb, "Verified")).to.include({ status: "True", reason: "ServingCurrentCertificate" });
  });

  it("the deleted connection's finalizer took its volume, mount and .ini out of the StatefulSet; the other connection is untouched", async () => {
    const sts = await getJson<WorkloadJson>(["get", "statefulset", "analysis-node", "-n", ns]);
    expect(sts.spec.template.spec.volumes ?? []).to.deep.equal([]);
    expect(sts.spec.template.spec.containers[0]!.volumeMounts ?? []).to.deep.equal([]);
    // Exactly the chart's own env is left.
    expect(sts.spec.template.spec.containers[0]!.env ?? []).to.deep.equal(castImagingWorkloads(ns).statefulSet.spec.template.spec.containers[0]!.env);
    expect(sts.spec.template.metadata?.annotations?.["mtls.imaging.dev/connections"]).to.equal(undefined);
    expect((await cp.kubectl(["get", "configmap", "cast-mtls-ini-statefulset-analysis-node", "-n", ns])).code).to.not.equal(0);
    const first = await getJson<ImagingConnection>(["get", "imc", "first", "-n", ns]);
    expect(condition(first, "Ready")?.status).to.equal("True");
    const dep = await getJson<WorkloadJson>(["get", "deployment", "imaging-services", "-n", ns]);
    // The chart's own volume, then the first connection's.
    expect(dep.spec.template.spec.volumes?.map((v) => v.name)).to.deep.equal(["config", "mtls-first", "cast-imaging-mtls-ini"]);
  });
});
