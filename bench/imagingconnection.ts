/**
 * ImagingConnection against the real control plane and a real PostgreSQL: apply → ConnectionVerified and
 * apply → Ready latency, the API writes per connection (audit log, by kind), and how long the operator takes to
 * put the mounts back after a simulated Helm upgrade replaces the workload (median of N).
 */
import { RestClient } from "../src/kube/rest";
import { RESOURCES } from "../src/kube/resources";
import type { ImagingConnection } from "../src/api/types";
import type { Workload } from "../src/imaging/pod-template";
import { startControlPlane, OPERATOR_USER } from "../test/support/controlplane";
import { startOperator } from "../test/support/operator";
import { startPostgres } from "../test/support/postgres";
import { waitFor } from "../test/support/process";
import { databaseInCluster } from "../test/support/database-fixture";
import { ANY_CONNECTION, IMAGING_CONNECTIONS_OPT_IN_ANNOTATION } from "../src/api/opt-in";

const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const WRITES = new Set(["create", "update", "patch", "delete"]);

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const row = (values: number[]) => {
  const s = [...values].sort((a, b) => a - b);
  return { p50: Math.round(pct(s, 50)), p95: Math.round(pct(s, 95)), max: Math.round(s[s.length - 1]!), n: s.length };
};

function deployment(ns: string, name: string) {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, namespace: ns, annotations: { [IMAGING_CONNECTIONS_OPT_IN_ANNOTATION]: ANY_CONNECTION } },
    spec: { selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "app", image: "castimaging/imaging-services" }] } } },
  };
}

export async function runImagingConnectionBench(): Promise<void> {
  const cp = await startControlPlane();
  await cp.installCRDs();
  await cp.installRBAC();
  const admin = new RestClient(cp.kubeConfig);
  const verified: number[] = [];
  const ready: number[] = [];
  const remount: number[] = [];
  const writes: number[] = [];
  const byKind = new Map<string, number>();
  const pg = await startPostgres({ name: "bench-imc" });
  try {
    const ns = await cp.createNamespace("bench-imc");
    const { syncer, secureDatabaseYaml } = await databaseInCluster(cp, pg, { namespace: ns, configMapName: "pg", workloadName: "css", serverSecretName: "db-server-tls" });
    const operator = await startOperator(cp, ns);
    const roles = Array.from({ length: RUNS }, (_, i) => `u${i}`);
    const grants = Array.from({ length: Math.ceil(RUNS / 64) }, (_, g) => ({ users: roles.slice(g * 64, g * 64 + 64), mountIntoWorkloads: true }));
    await cp.kubectl(["apply", "-f", "-"], { input: secureDatabaseYaml("db", grants) });
    const condition = async (name: string, type: string) => {
      const imc = await admin.get<ImagingConnection>(RESOURCES.ImagingConnection, { namespace: ns, name });
      return imc.status?.conditions?.find((c) => c.type === type)?.status;
    };
    await waitFor("SecureDatabase Ready", async () => (await cp.kubectl(["get", "sdb", "db", "-n", ns, "-o", 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'])).stdout === "True", 60_000, 50);
    for (let i = 0; i < RUNS; i++) {
      const name = `c${i}`;
      await pg.sql(`CREATE ROLE u${i} LOGIN`);
      await admin.create(RESOURCES.Deployment, ns, deployment(ns, `w${i}`));
      await operator.workloadQueue.idle();
      const since = new Date();
      const t0 = performance.now();
      await admin.create(RESOURCES.ImagingConnection, ns, {
        apiVersion: "mtls.imaging.dev/v1alpha1",
        kind: "ImagingConnection",
        metadata: { name, namespace: ns },
        spec: { databaseRef: { name: "db" }, user: `u${i}`, workloads: [{ kind: "Deployment", name: `w${i}` }] },
      });
      let tVerified: number | undefined;
      await waitFor(
        "Ready",
        async () => {
          if (tVerified === undefined && (await condition(name, "ConnectionVerified")) === "True") tVerified = performance.now() - t0;
          return (await condition(name, "Ready")) === "True";
        },
        60_000,
        10,
      );
      ready.push(performance.now() - t0);
      verified.push(tVerified ?? performance.now() - t0);
      await Promise.all([operator.imagingConnectionQueue.idle(), operator.workloadQueue.idle()]);
      const events = (await cp.auditEvents(OPERATOR_USER, since)).filter((e) => WRITES.has(e.verb));
      writes.push(events.length);
      for (const e of events) {
        const k = `${e.verb} ${e.objectRef?.resource}${e.objectRef?.subresource ? `/${e.objectRef.subresource}` : ""}`;
        byKind.set(k, (byKind.get(k) ?? 0) + 1);
      }
      // A Helm upgrade with --force: the chart's Deployment replaces ours, without the operator's mounts.
      const live = await admin.get<Workload>(RESOURCES.Deployment, { namespace: ns, name: `w${i}` });
      const t1 = performance.now();
      await admin.replace(RESOURCES.Deployment, { namespace: ns, name: `w${i}` }, { ...deployment(ns, `w${i}`), metadata: { ...deployment(ns, `w${i}`).metadata, resourceVersion: live.metadata.resourceVersion } });
      await waitFor(
        "mounts back",
        async () => {
          const w = await admin.get<Workload>(RESOURCES.Deployment, { namespace: ns, name: `w${i}` });
          return (w.spec?.template?.spec?.volumes ?? []).some((v) => v.name === `mtls-${name}`);
        },
        30_000,
        5,
      );
      remount.push(performance.now() - t1);
    }
    await operator.stop();
    syncer.stop();
  } finally {
    await pg.stop();
    await cp.stop();
  }
  console.log(`\nImagingConnection (${RUNS} runs, real kube-apiserver ${cp.version}, PostgreSQL 15, one Deployment each)`);
  console.table({
    "apply→ConnectionVerified ms": row(verified),
    "apply→Ready ms": row(ready),
    "Helm replace→mounts back ms": row(remount),
    "operator API writes per connection": row(writes),
  });
  console.log("Writes per connection by verb and resource (average):");
  console.table(Object.fromEntries([...byKind].sort().map(([k, v]) => [k, { average: Math.round((v / RUNS) * 100) / 100 }])));
}

if (require.main === module) {
  runImagingConnectionBench().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
