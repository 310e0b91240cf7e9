/**
 * Rotations under load against the real control plane and a real PostgreSQL: a client opens a new mTLS
 * connection every 100 ms and holds one open, through (i) a server leaf rotation and (ii) a client leaf rotation,
 * both triggered with the mtls.imaging.dev/rotate annotation. Prints, per rotation, the connections attempted and
 * failed and the time from the trigger to the first connection that saw the new serial.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ImagingConnection, SecureDatabase } from "../src/api/types";
import { RESOURCES } from "../src/kube/resources";
import { RestClient } from "../src/kube/rest";
import { startControlPlane } from "../test/support/controlplane";
import { databaseInCluster } from "../test/support/database-fixture";
import { startMtlsLoad, type Attempt } from "../test/support/mtls-load";
import { startOperator } from "../test/support/operator";
import { startPostgres } from "../test/support/postgres";
import { waitFor } from "../test/support/process";
import { startVolumeSyncer } from "../test/support/volume-syncer";

const ROUNDS = Number(process.env.BENCH_RUNS ?? 5);

interface Row {
  rotations: number;
  "connections attempted": number;
  "connections failed": number;
  "long-lived queries": number;
  "long-lived failures": number;
  "trigger→new serial ms (p50)": number;
  "trigger→new serial ms (max)": number;
}

export async function runRotationBench(): Promise<void> {
  const cp = await startControlPlane();
  await cp.installCRDs();
  await cp.installRBAC();
  const admin = new RestClient(cp.kubeConfig);
  const pg = await startPostgres({ name: "bench-rot" });
  const dir = await mkdtemp(join(tmpdir(), "bench-rot-"));
  const rows: Record<string, Row> = {};
  try {
    await pg.sql("CREATE ROLE app LOGIN");
    const ns = await cp.createNamespace("bench-rot");
    const db = await databaseInCluster(cp, pg, { namespace: ns, configMapName: "pg", workloadName: "css", serverSecretName: "db-server-tls" });
    const clientSyncer = await startVolumeSyncer({ kubeConfig: cp.kubeConfig, namespace: ns, volumes: [{ kind: "Secret", name: "app-client-tls", dir, ownedByServer: false }] });
    const operator = await startOperator(cp, ns);
    await cp.kubectl(["apply", "-f", "-"], { input: db.secureDatabaseYaml() });
    await admin.create(RESOURCES.ImagingConnection, ns, { apiVersion: "mtls.imaging.dev/v1alpha1", kind: "ImagingConnection", metadata: { name: "app", namespace: ns }, spec: { databaseRef: { name: "db" }, user: "app" } });
    const ready = async () => (await admin.get<ImagingConnection>(RESOURCES.ImagingConnection, { namespace: ns, name: "app" })).status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
    await waitFor("connection Ready", ready, 90_000, 100);
    await waitFor("client files", async () => clientSyncer.writes > 0, 10_000);
    const load = await startMtlsLoad({ dir, host: "localhost", port: pg.port, user: "app" });
    await new Promise((r) => setTimeout(r, 1000));

    const rotate = async (label: string, kind: "SecureDatabase" | "ImagingConnection", name: string, seen: (a: Attempt) => string | undefined, current: () => Promise<string>) => {
      const times: number[] = [];
      const startAttempts = load.attempts.length;
      const startQueries = load.longLived.queries;
      const startLongFailures = load.longLived.failures.length;
      for (let i = 0; i < ROUNDS; i++) {
        const old = await current();
        const t0 = Date.now();
        await admin.patch(RESOURCES[kind], { namespace: ns, name }, { metadata: { annotations: { "mtls.imaging.dev/rotate": `${label}-${i}` } } }, "application/merge-patch+json");
        let fresh = old;
        await waitFor(`${label} ${i}`, async () => {
          fresh = await current();
          return fresh !== old && load.attempts.some((a) => a.at >= t0 && a.ok && seen(a) === fresh);
        }, 60_000, 20);
        times.push(Math.min(...load.attempts.filter((a) => a.at >= t0 && a.ok && seen(a) === fresh).map((a) => a.at)) - t0);
        await new Promise((r) => setTimeout(r, 1000));
      }
      const window = load.attempts.slice(startAttempts);
      const sorted = [...times].sort((a, b) => a - b);
      rows[label] = {
        rotations: ROUNDS,
        "connections attempted": window.length,
        "connections failed": window.filter((a) => !a.ok).length,
        "long-lived queries": load.longLived.queries - startQueries,
        "long-lived failures": load.longLived.failures.length - startLongFailures,
        "trigger→new serial ms (p50)": sorted[Math.floor(sorted.length / 2)]!,
        "trigger→new serial ms (max)": sorted[sorted.length - 1]!,
      };
    };
    await rotate("(i) server leaf", "SecureDatabase", "db", (a) => a.servedSerial, async () => (await admin.get<SecureDatabase>(RESOURCES.SecureDatabase, { namespace: ns, name: "db" })).status?.serverCertificate?.serialNumber ?? "");
    await rotate("(ii) client leaf", "ImagingConnection", "app", (a) => a.clientSerial, async () => (await admin.get<ImagingConnection>(RESOURCES.ImagingConnection, { namespace: ns, name: "app" })).status?.certificate?.serialNumber ?? "");
    await load.stop();
    await operator.stop();
    clientSyncer.stop();
    db.syncer.stop();
  } finally {
    await rm(dir, { recursive: true, force: true });
    await pg.stop();
    await cp.stop();
  }
  console.log(`\nRotations under load (${ROUNDS} of each; a new mTLS connection every 100 ms plus one long-lived connection; real kube-apiserver ${cp.version}, PostgreSQL 15; files swapped atomically as the kubelet does)`);
  console.table(rows);
}

if (require.main === module) {
  runRotationBench().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
