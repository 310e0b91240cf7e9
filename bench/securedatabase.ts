/**
 * Apply-to-Ready latency of a SecureDatabase against the real control plane and a real PostgreSQL (median of 20),
 * and the API writes the operator makes per new SecureDatabase and per idle reconcile (from the audit log). Each
 * run starts from a server without TLS, so Ready includes the one restart of the first switch-over.
 */
import { startControlPlane, OPERATOR_USER } from "../test/support/controlplane";
import { startOperator } from "../test/support/operator";
import { startPostgres } from "../test/support/postgres";
import { waitFor } from "../test/support/process";
import { databaseInCluster } from "../test/support/database-fixture";

const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const WRITES = new Set(["create", "update", "patch", "delete"]);

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function runSecureDatabaseBench(): Promise<void> {
  const cp = await startControlPlane();
  await cp.installCRDs();
  await cp.installRBAC();
  const latencies: number[] = [];
  const writesPerNew: number[] = [];
  const writesPerIdle: number[] = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      const ns = await cp.createNamespace("bench-sdb");
      const pg = await startPostgres({ name: `bench${i}` });
      const { syncer, secureDatabaseYaml } = await databaseInCluster(cp, pg, { namespace: ns, configMapName: "pg", workloadName: "css", serverSecretName: "db-server-tls" });
      const operator = await startOperator(cp, ns);
      const since = new Date();
      const t0 = performance.now();
      await cp.kubectl(["apply", "-f", "-"], { input: secureDatabaseYaml() });
      await waitFor("Ready", async () => {
        const r = await cp.kubectl(["get", "sdb", "db", "-n", ns, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"]);
        return r.stdout === "True";
      }, 60_000, 20);
      const elapsed = performance.now() - t0;
      latencies.push(elapsed);
      await operator.secureDatabaseQueue.idle();
      writesPerNew.push((await cp.auditEvents(OPERATOR_USER, since)).filter((e) => WRITES.has(e.verb)).length);
      const idleSince = new Date();
      await cp.kubectl(["annotate", "sdb", "db", "-n", ns, "bench/resync=1"]);
      await new Promise((r) => setTimeout(r, 500));
      await operator.secureDatabaseQueue.idle();
      writesPerIdle.push((await cp.auditEvents(OPERATOR_USER, idleSince)).filter((e) => WRITES.has(e.verb)).length);
      await operator.stop();
      syncer.stop();
      await pg.stop();
    }
  } finally {
    await cp.stop();
  }
  const timed = [...latencies].sort((a, b) => a - b);
  console.log(`\nSecureDatabase apply → Ready (${RUNS} runs, real kube-apiserver ${cp.version}, PostgreSQL 15; includes the one restart of the first switch-over to TLS)`);
  console.table({
    "apply→Ready ms": { p50: Math.round(pct(timed, 50)), p95: Math.round(pct(timed, 95)), max: Math.round(timed[timed.length - 1]!), n: timed.length },
    "operator API writes per new SecureDatabase": { p50: pct([...writesPerNew].sort((a, b) => a - b), 50), p95: Math.max(...writesPerNew), max: Math.max(...writesPerNew), n: writesPerNew.length },
    "operator API writes per idle reconcile": { p50: pct([...writesPerIdle].sort((a, b) => a - b), 50), p95: Math.max(...writesPerIdle), max: Math.max(...writesPerIdle), n: writesPerIdle.length },
  });
}

if (require.main === module) {
  runSecureDatabaseBench().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
