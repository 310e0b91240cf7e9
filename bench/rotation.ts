/**
 * Rotations under load against the real control plane and a real PostgreSQL: a client opens a new mTLS
 * connection every 100 ms and holds one open, through (i) a server leaf rotation and (ii) a client leaf rotation
 * (the mtls.imaging.dev/rotate annotation), (iii) a full CA rotation (mtls.imaging.dev/rotate-ca, propagationDelay
 * 2s) and (iv) the revocation of another identity. Prints the connections attempted and failed and the time from
 * the trigger to the first connection that saw the new serial (for (iv): to the first refusal of the revoked one).
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ImagingConnection, SecureDatabase } from "../src/api/types";
import { RESOURCES } from "../src/kube/resources";
import { RestClient } from "../src/kube/rest";
import { probeServer } from "../src/postgres/probe";
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
    for (let i = 0; i < ROUNDS; i++) await pg.sql(`CREATE ROLE victim${i} LOGIN`);
    const ns = await cp.createNamespace("bench-rot");
    const db = await databaseInCluster(cp, pg, { namespace: ns, configMapName: "pg", workloadName: "css", serverSecretName: "db-server-tls" });
    const victimDirs = await Promise.all(Array.from({ length: ROUNDS }, (_, i) => mkdtemp(join(tmpdir(), `bench-victim${i}-`))));
    const clientSyncer = await startVolumeSyncer({
      kubeConfig: cp.kubeConfig,
      namespace: ns,
      volumes: [{ kind: "Secret", name: "app-client-tls", dir, ownedByServer: false }, ...victimDirs.map((d, i) => ({ kind: "Secret" as const, name: `victim${i}-client-tls`, dir: d, ownedByServer: false }))],
    });
    const operator = await startOperator(cp, ns);
    await cp.kubectl(["apply", "-f", "-"], { input: db.secureDatabaseYaml("db", [{ users: ["app", ...Array.from({ length: ROUNDS }, (_, i) => `victim${i}`)] }]) });
    await admin.create(RESOURCES.ImagingConnection, ns, { apiVersion: "mtls.imaging.dev/v1alpha1", kind: "ImagingConnection", metadata: { name: "app", namespace: ns }, spec: { databaseRef: { name: "db" }, user: "app" } });
    const ready = async () => (await admin.get<ImagingConnection>(RESOURCES.ImagingConnection, { namespace: ns, name: "app" })).status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
    await waitFor("connection Ready", ready, 90_000, 100);
    await waitFor("client files", async () => clientSyncer.writes > 0, 10_000);
    const load = await startMtlsLoad({ dir, host: "localhost", port: pg.port, user: "app" });
    await new Promise((r) => setTimeout(r, 1000));

    const rotate = async (label: string, kind: "SecureDatabase" | "ImagingConnection", name: string, seen: (a: Attempt) => string | undefined, current: () => Promise<string>, annotation = "mtls.imaging.dev/rotate") => {
      const times: number[] = [];
      const startAttempts = load.attempts.length;
      const startQueries = load.longLived.queries;
      const startLongFailures = load.longLived.failures.length;
      for (let i = 0; i < ROUNDS; i++) {
        const old = await current();
        const t0 = Date.now();
        await admin.patch(RESOURCES[kind], { namespace: ns, name }, { metadata: { annotations: { [annotation]: `r${i}` } } }, "application/merge-patch+json");
        let fresh = old;
        await waitFor(`${label} ${i}`, async () => {
          fresh = await current();
          return fresh !== "" && fresh !== old && load.attempts.some((a) => a.at >= t0 && a.ok && seen(a) === fresh);
        }, 120_000, 20);
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
    await admin.patch(RESOURCES.SecureDatabase, { namespace: ns, name: "db" }, { spec: { ca: { propagationDelay: "2s" } } }, "application/merge-patch+json");
    await rotate("(iii) CA, full overlap rotation", "SecureDatabase", "db", (a) => a.servedSerial, async () => {
      const sdb = await admin.get<SecureDatabase>(RESOURCES.SecureDatabase, { namespace: ns, name: "db" });
      // Done when the rotation is back to Idle; the server serial then is the one issued by the new CA.
      return sdb.status?.caRotation?.phase === "Idle" ? (sdb.status.serverCertificate?.serialNumber ?? "") : "";
    }, "mtls.imaging.dev/rotate-ca");

    // (iv) Revocations of other identities, each with its own client files.
    const revokeTimes: number[] = [];
    const startAttempts = load.attempts.length;
    for (let i = 0; i < ROUNDS; i++) {
      const victim = `victim${i}`;
      await admin.create(RESOURCES.ImagingConnection, ns, { apiVersion: "mtls.imaging.dev/v1alpha1", kind: "ImagingConnection", metadata: { name: victim, namespace: ns }, spec: { databaseRef: { name: "db" }, user: victim } });
      await waitFor(`${victim} files`, async () => (await readFile(join(victimDirs[i]!, "client.crt"), "utf8").catch(() => "")).length > 0, 60_000, 50);
      const asVictim = async () => {
        const files = { cert: await readFile(join(victimDirs[i]!, "client.crt"), "utf8"), key: await readFile(join(victimDirs[i]!, "client.key"), "utf8"), ca: await readFile(join(victimDirs[i]!, "root.crt"), "utf8") };
        return probeServer({ host: "localhost", port: pg.port, servername: "localhost", database: "postgres", user: victim, ...files, timeoutMs: 5000 });
      };
      await waitFor(`${victim} logs in`, async () => (await asVictim()).ok, 30_000, 50);
      const sdb = await admin.get<SecureDatabase>(RESOURCES.SecureDatabase, { namespace: ns, name: "db" });
      const revocations = [...(sdb.spec.trust?.revocations ?? []), { connectionName: victim, reason: "keyCompromise" as const }];
      const t0 = Date.now();
      await admin.patch(RESOURCES.SecureDatabase, { namespace: ns, name: "db" }, { spec: { trust: { revocations } } }, "application/merge-patch+json");
      await waitFor(`${victim} refused`, async () => !(await asVictim()).ok, 60_000, 20);
      revokeTimes.push(Date.now() - t0);
    }
    const window = load.attempts.slice(startAttempts);
    const sortedRevoke = [...revokeTimes].sort((a, b) => a - b);
    rows["(iv) revoke another identity"] = {
      rotations: ROUNDS,
      "connections attempted": window.length,
      "connections failed": window.filter((a) => !a.ok).length,
      "long-lived queries": NaN,
      "long-lived failures": NaN,
      "trigger→new serial ms (p50)": sortedRevoke[Math.floor(sortedRevoke.length / 2)]!,
      "trigger→new serial ms (max)": sortedRevoke[sortedRevoke.length - 1]!,
    };
    await load.stop();
    await Promise.all(victimDirs.map((d) => rm(d, { recursive: true, force: true })));
    await operator.stop();
    clientSyncer.stop();
    db.syncer.stop();
  } finally {
    await rm(dir, { recursive: true, force: true });
    await pg.stop();
    await cp.stop();
  }
  console.log(`\nRotations under load (${ROUNDS} of each; a new mTLS connection every 100 ms plus one long-lived connection; real kube-apiserver ${cp.version}, PostgreSQL 15; files swapped atomically as the kubelet does)`);
  console.log("(iv): the times are trigger → first refusal of the revoked identity; the connections are those of the identity that stays.");
  console.table(rows);
}

if (require.main === module) {
  runRotationBench().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
