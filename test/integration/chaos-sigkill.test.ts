import { expect } from "chai";
import fc from "fast-check";
import { spawn, type ChildProcess } from "node:child_process";
import { createPrivateKey } from "node:crypto";
import { createWriteStream, type WriteStream } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { OWNER_NAMESPACE_LABEL } from "../../src/api/types";
import { silentLogger } from "../../src/log";
import { RESOURCES } from "../../src/kube/resources";
import { RestClient, resourcePath } from "../../src/kube/rest";
import { secretBytes, type SecretObject } from "../../src/kube/secrets";
import { Informer, type KubeObject } from "../../src/runtime/informer";
import { controlPlane } from "../support/hooks";
import {
  asDatabaseCASecret,
  CAKeyLedger,
  duplicatedManagedBlocks,
  collectGarbage,
  keyFingerprint,
  mountsMatchStatus,
  notReady,
  orphanedMounts,
  orphanedSecrets,
  readState,
  trustMismatches,
  type ClusterState,
  type SecretLike,
} from "../support/invariants";
import { startDatabase, type StartedDatabase } from "../support/operator-fixture";
import { psql, type PostgresServer } from "../support/postgres";
import { caKeySecret, TEST_KEY_NAMESPACE, TEST_OPERATOR_FLAGS } from "../support/operator";
import { freePort, waitFor } from "../support/process";
import { bundleOperator } from "../../scripts/bundle-operator";
import { SECURE_DATABASE_OPT_IN_ANNOTATION } from "../../src/api/opt-in";

/**
 * Chaos item 1: the operator as its own process (src/main.ts, compiled once with the build's tsconfig so a restart
 * takes about a second instead of tsx's several), SIGKILLed 50 times at seeded-random moments and restarted at once:
 * 30 times during two storms of SecureDatabases and ImagingConnections (created; then re-issued, moved between
 * workloads, re-keyed and partly deleted), 20 times during two CA rotations of a SecureDatabase in front of a real
 * PostgreSQL. A fifth of the kills land during start-up (list and watch), the rest at a random moment after the
 * process reports ready, while it reconciles (every start re-reconciles every object). After every kill the safety
 * invariants hold (no CA key lost or replaced unasked, no client that does not trust its server's CA or is not
 * trusted by it, no orphaned Secret, no duplicated managed block); at the end of every run everything converges:
 * all Ready, no orphaned mount, status true to the mounts, the rotation Idle on the new CA, and the real PostgreSQL
 * accepts client certificates from the final state.
 *
 * CHAOS_SEED overrides the seed of the kill schedule.
 */
const REPO = resolve(__dirname, "..", "..");
const SEED = Number(process.env.CHAOS_SEED ?? 20261123);
const STORM_SIZE = 30;
const API = "mtls.imaging.dev/v1alpha1";
/**
 * Where the operator is built to (one file, as the image runs it): a tool cache under node_modules (ignored by git
 * and eslint), one directory per test process, removed after.
 */
const BUILD_DIR = join(REPO, "node_modules", ".cache", `chaos-sigkill-operator-${process.pid}`);

/** When to kill: `early` at `ms` after the start, otherwise `ms` after the process reports ready. */
interface KillMoment {
  early: boolean;
  ms: number;
}
const killMoments = (seed: number, n: number, maxAfterReady: number): KillMoment[] =>
  fc.sample(
    fc.oneof({ arbitrary: fc.record({ early: fc.constant(true), ms: fc.integer({ min: 100, max: 1500 }) }), weight: 1 }, { arbitrary: fc.record({ early: fc.constant(false), ms: fc.integer({ min: 0, max: maxAfterReady }) }), weight: 4 }),
    { seed, numRuns: n },
  );

interface Run {
  name: string;
  kills: number;
  moments: KillMoment[];
  /** Safety violations seen after a kill, and at the end. */
  violations: string[];
  killedBeforeReady: number;
  /** caRotation.phase seen right after each kill (rotation runs). */
  phases: string[];
  convergedMs?: number;
}

interface OperatorProcess {
  child: ChildProcess;
  port: number;
  startedAt: number;
  readyAt?: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  tail: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sameData = (a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean =>
  JSON.stringify(Object.entries(a ?? {}).sort(([x], [y]) => x.localeCompare(y))) === JSON.stringify(Object.entries(b ?? {}).sort(([x], [y]) => x.localeCompare(y)));

describe("Chaos: SIGKILL the operator process 50 times during storms and CA rotations (seeded)", function () {
  this.timeout(300_000);
  /** The namespace the operator watches in the current run (storms and rotations each have their own). */
  let ns: string;
  let stormNs: string;
  let rotationNs: string;
  let admin: RestClient;
  let db: StartedDatabase | undefined;
  let pg: PostgresServer;
  let secretsInformer: Informer<SecretLike & KubeObject> | undefined;
  let current: OperatorProcess | undefined;
  let log: WriteStream;
  let starts = 0;
  const crashes: string[] = [];
  const ledger = new CAKeyLedger();
  const runs: Run[] = [];
  const originalConfigMaps = new Map<string, Record<string, string>>();
  const t0 = Date.now();
  // Storm kills come soon after ready (a storm is queued at each start); rotation kills later (a rotation only
  // moves while the operator is up, and each phase should see kills).
  const stormMoments = killMoments(SEED, 30, 1500);
  const rotationMoments = killMoments(SEED + 1, 20, 3000);

  const create = (type: (typeof RESOURCES)[keyof typeof RESOURCES], body: object) => admin.request("POST", resourcePath(type, { namespace: ns }), { body, query: { fieldManager: "chaos-sigkill" } });
  const mergePatch = (type: (typeof RESOURCES)[keyof typeof RESOURCES], name: string, body: object) =>
    admin.request("PATCH", resourcePath(type, { namespace: ns, name }), { body, contentType: "application/merge-patch+json", query: { fieldManager: "chaos-sigkill" } });
  const inParallel = async <T>(items: readonly T[], width: number, fn: (item: T) => Promise<unknown>): Promise<void> => {
    let next = 0;
    await Promise.all(Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }));
  };
  const state = (): Promise<ClusterState> => readState(admin, ns);

  const startOperatorProcess = async (): Promise<OperatorProcess> => {
    const port = await freePort();
    // Node's on-disk compile cache makes each restart cheaper.
    const env: NodeJS.ProcessEnv = { ...process.env, NODE_COMPILE_CACHE: join(BUILD_DIR, ".compile-cache") };
    delete env.LEADER_ELECT;
    const n = ++starts;
    const child = spawn(process.execPath, [join(BUILD_DIR, "main.js"), "--kubeconfig", controlPlane().operatorKubeconfigPath, "--namespace", ns, "--health-port", String(port), "--log-level", "info", ...TEST_OPERATOR_FLAGS], {
      cwd: REPO,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const proc: OperatorProcess = { child, port, startedAt: Date.now(), tail: [], exited: new Promise((r) => child.once("exit", (code, signal) => r({ code, signal }))) };
    log.write(`\n=== start #${n} pid ${child.pid} at ${new Date().toISOString()} ===\n`);
    const keep = (d: Buffer) => {
      log.write(d);
      proc.tail.push(d.toString("utf8"));
      if (proc.tail.length > 20) proc.tail.shift();
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    // Note when it became ready, to tell kills during start-up from kills during reconciles.
    void (async () => {
      while (child.exitCode === null && child.signalCode === null && proc.readyAt === undefined) {
        const ok = (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200;
        if (ok) proc.readyAt = Date.now();
        else await sleep(100);
      }
    })();
    return proc;
  };

  const killCurrent = async (): Promise<OperatorProcess> => {
    const proc = current!;
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
      crashes.push(`operator pid ${proc.child.pid} exited on its own (code ${proc.child.exitCode}, signal ${proc.child.signalCode}): ${proc.tail.join("").slice(-1500)}`);
    }
    proc.child.kill("SIGKILL");
    await proc.exited;
    return proc;
  };

  /** What must hold at every moment, whatever the operator was doing when it died (deleted owners' Secrets wait for the GC). */
  const safety = async (): Promise<string[]> => {
    const s = await state();
    ledger.observeState(s);
    return [...ledger.violations.splice(0), ...orphanedSecrets(s, { pendingGc: true }), ...duplicatedManagedBlocks(s), ...trustMismatches(s)];
  };

  /** What must hold once the operator has settled (after a garbage collection). */
  const settled = async (extra: (s: ClusterState) => string[] = () => []): Promise<string[]> => {
    await collectGarbage(admin, state);
    const s = await state();
    return [...notReady(s), ...orphanedMounts(s), ...mountsMatchStatus(s), ...duplicatedManagedBlocks(s), ...trustMismatches(s), ...orphanedSecrets(s), ...extra(s)];
  };

  /**
   * One SIGKILL per moment, each followed at once by a restart and, while the new process starts, a check of the
   * safety invariants; `during` starts the work the kills interrupt. Then waits (at most 2 min) until `done` and the
   * settled invariants hold, and reports how long that took after the last restart.
   */
  const chaosRun = async (name: string, moments: KillMoment[], during: () => Promise<void>, done: (s: ClusterState) => string[], onKill?: (run: Run) => Promise<void>): Promise<Run> => {
    const run: Run = { name, kills: 0, moments, violations: [], killedBeforeReady: 0, phases: [] };
    runs.push(run);
    const work = during();
    let check: Promise<void> = Promise.resolve();
    for (const moment of moments) {
      const proc = current!;
      if (moment.early) await sleep(Math.max(0, proc.startedAt + moment.ms - Date.now()));
      else {
        await waitFor("the operator to report ready", async () => proc.readyAt !== undefined || proc.child.exitCode !== null, 30_000, 20).catch(() => undefined);
        await sleep(moment.ms);
      }
      const killed = await killCurrent();
      run.kills++;
      if (killed.readyAt === undefined) run.killedBeforeReady++;
      current = await startOperatorProcess();
      // The check of what the dead process left runs while the next one starts.
      await check;
      const k = run.kills;
      check = (async () => {
        await onKill?.(run);
        for (const v of await safety()) run.violations.push(`after kill ${k} (${moment.early ? `${moment.ms} ms after start` : `${moment.ms} ms after ready`}): ${v}`);
      })();
    }
    await check;
    await work;
    const lastStart = current!.startedAt;
    let last: string[] = [];
    await waitFor(
      `${name} to converge`,
      async () => {
        last = await settled(done);
        return last.length === 0;
      },
      120_000,
      500,
    ).catch(() => undefined);
    run.convergedMs = last.length === 0 ? Date.now() - lastStart : undefined;
    run.violations.push(...last.map((v) => `not converged: ${v}`));
    for (const v of await safety()) run.violations.push(`at the end: ${v}`);
    console.log(`      ${name}: ${run.kills} kills (${run.killedBeforeReady} before /readyz)${run.phases.length ? `, CA rotation phase right after each kill: ${run.phases.join(" ")}` : ""}; ${run.convergedMs === undefined ? "did NOT converge" : `converged ${run.convergedMs} ms after the last restart`}; ${run.violations.length} violation(s)`);
    return run;
  };

  const sdbBody = (k: number, extra: object = {}) => ({
    apiVersion: API,
    kind: "SecureDatabase",
    metadata: { name: `db-${k}` },
    // Its one connection, app-<k> as u<k>, mounts into a CAST Deployment in some rounds.
    spec: { host: `db-${k}.chaos.svc`, postgres: { configMapName: `pg-${k}` }, reload: { strategy: "None" }, verification: { enabled: false }, access: [{ users: [`u${k}`], mountIntoWorkloads: true }], ...extra },
  });
  const imcWorkloads = (k: number, round: number): object[] => {
    if (round === 1) return k % 2 === 0 ? [{ kind: "Deployment", name: `cast-${k % 3}` }] : [];
    if (round === 2) return k % 2 === 0 ? [{ kind: "Deployment", name: `cast-${(k + 1) % 3}` }] : [{ kind: "Deployment", name: `cast-${k % 3}` }];
    return k % 3 === 0 ? [] : [{ kind: "Deployment", name: `cast-${k % 3}` }];
  };
  const imcBody = (k: number) => ({ apiVersion: API, kind: "ImagingConnection", metadata: { name: `app-${k}` }, spec: { databaseRef: { name: `db-${k}` }, user: `u${k}`, verification: { enabled: false }, workloads: imcWorkloads(k, 1) } });

  /** The real PostgreSQL accepts the connection `name`'s client certificate as it is in its Secret now. */
  const mtlsLogin = async (connection: string, user: string): Promise<string[]> => {
    const dir = await mkdtemp(join(tmpdir(), "chaos-client-"));
    try {
      const data = secretBytes(await admin.get<SecretObject>(RESOURCES.Secret, { namespace: rotationNs, name: `${connection}-client-tls` }));
      await writeFile(join(dir, "tls.crt"), data["tls.crt"]!, { mode: 0o600 });
      await writeFile(join(dir, "tls.key"), data["tls.key"]!, { mode: 0o600 });
      await writeFile(join(dir, "ca.crt"), data["ca.crt"]!, { mode: 0o600 });
      const r = await psql({ host: "localhost", port: pg.port, user, sslmode: "verify-full", sslcert: join(dir, "tls.crt"), sslkey: join(dir, "tls.key"), sslrootcert: join(dir, "ca.crt"), command: "SELECT current_user" });
      return r.code === 0 && r.stdout.trim() === user ? [] : [`psql as ${user} with ${connection}-client-tls failed: ${r.stderr.trim() || r.stdout.trim()}`];
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };

  /** Ends the current operator gracefully (not one of the kills) and starts one watching `namespace`. */
  const switchTo = async (namespace: string): Promise<void> => {
    if (ns === namespace && current) return;
    if (current) {
      current.child.kill("SIGTERM");
      await current.exited;
    }
    ns = namespace;
    current = await startOperatorProcess();
  };

  before(async function () {
    this.timeout(240_000);
    const cp = controlPlane();
    // Storms and rotations in namespaces of their own, each run's operator watching only its namespace, so every
    // restart during a rotation resyncs the rotation and not sixty other objects.
    stormNs = await cp.createNamespace("sigkill");
    rotationNs = await cp.createNamespace("sigkill-rot");
    ns = rotationNs;
    admin = new RestClient(cp.kubeConfig);
    log = createWriteStream(join(cp.dir, `operator-chaos-sigkill-${stormNs}.log`));
    // Build while PostgreSQL starts: the real server behind the SecureDatabase that gets rotated, its "kubelet"
    // a second late, and its users.
    const tBuild = Date.now();
    const build = (async () => {
      await mkdir(BUILD_DIR, { recursive: true });
      await bundleOperator(join(BUILD_DIR, "main.js"));
      console.log(`      built the operator (esbuild, as npm run build) in ${Date.now() - tBuild} ms`);
    })();
    db = await startDatabase(cp, rotationNs, "sigkill", {
      roles: ["app", "app2"],
      configMapName: "pgdb-config",
      serverSecretName: "pgdb-server-tls",
      syncDelayMs: 1000,
      secureDatabases: "pgdb",
    });
    pg = db.pg;
    const deployment = (name: string) => ({
      metadata: { name, annotations: { "mtls.imaging.dev/imaging-connections": "*" } },
      spec: { selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "imaging", image: "cast/imaging-services" }, { name: "sidecar", image: "busybox" }] } } },
    });
    await create(RESOURCES.Deployment, deployment("cast-rot"));

    // Storm fixtures: one PostgreSQL ConfigMap per database, three CAST Deployments to mount into.
    ns = stormNs;
    const conf = "listen_addresses = '*'\nmax_connections = 100\n";
    const hba = "local all all trust\nhost all all 0.0.0.0/0 scram-sha-256\n";
    for (let k = 0; k < STORM_SIZE; k++) originalConfigMaps.set(`pg-${k}`, { "postgresql.conf": conf, "pg_hba.conf": hba });
    // Each opts in to its own database (pg-k → db-k).
    await inParallel([...originalConfigMaps], 8, ([name, data]) =>
      create(RESOURCES.ConfigMap, { metadata: { name, annotations: { [SECURE_DATABASE_OPT_IN_ANNOTATION]: name.replace(/^pg-/, "db-") } }, data }),
    );
    for (let d = 0; d < 3; d++) await create(RESOURCES.Deployment, deployment(`cast-${d}`));

    // Every version of every Secret the operator manages goes through the CA key ledger.
    const caSecretsOf = `${OWNER_NAMESPACE_LABEL} in (${stormNs},${rotationNs})`;
    secretsInformer = new Informer<SecretLike & KubeObject>(admin, { type: RESOURCES.Secret, namespaces: [TEST_KEY_NAMESPACE], labelSelector: caSecretsOf }, silentLogger());
    secretsInformer.on((event, obj) => ledger.observe(asDatabaseCASecret(obj), event === "delete"));
    secretsInformer.start();
    await secretsInformer.synced;
    ledger.track(`${rotationNs}/pgdb-ca`);
    for (let k = 0; k < STORM_SIZE; k++) ledger.track(`${stormNs}/db-${k}-ca`);

    // The rotated database and its two connections, Ready before any kill.
    await build;
    ns = rotationNs;
    current = await startOperatorProcess();
    await create(RESOURCES.SecureDatabase, { apiVersion: API, kind: "SecureDatabase", metadata: { name: "pgdb" }, spec: { ...sdbSpecFromYaml(db.secureDatabaseYaml("pgdb", [{ users: ["app"], mountIntoWorkloads: true }, { users: ["app2"] }])), ca: { propagationDelay: "1s" } } });
    await create(RESOURCES.ImagingConnection, { apiVersion: API, kind: "ImagingConnection", metadata: { name: "pgconn" }, spec: { databaseRef: { name: "pgdb" }, user: "app", workloads: [{ kind: "Deployment", name: "cast-rot" }] } });
    await create(RESOURCES.ImagingConnection, { apiVersion: API, kind: "ImagingConnection", metadata: { name: "pgconn2" }, spec: { databaseRef: { name: "pgdb" }, user: "app2" } });
    await waitFor("pgdb, pgconn and pgconn2 Ready", async () => (await state()).secureDatabases.length === 1 && notReady(await state()).length === 0, 120_000, 300);
    console.log(`      setup done in ${Date.now() - t0} ms (operator start to /readyz: ${current.readyAt ? current.readyAt - current.startedAt : "?"} ms)`);
  });

  after(async () => {
    if (current) {
      current.child.kill("SIGKILL");
      await current.exited;
    }
    secretsInformer?.stop();
    await db?.stop();
    log?.end();
    await rm(BUILD_DIR, { recursive: true, force: true });
    const total = runs.reduce((n, r) => n + r.kills, 0);
    console.log(`      chaos-sigkill: ${total} kills in ${runs.length} runs, ${runs.reduce((n, r) => n + r.violations.length, 0)} invariant violations, ${crashes.length} crashes; total ${Math.round((Date.now() - t0) / 1000)} s`);
  });

  it("storm 1 (create 30 SecureDatabases + 30 ImagingConnections), 15 kills: safe after each, then all Ready with no orphan", async () => {
    await switchTo(stormNs);
    const run = await chaosRun(
      "storm 1 (create)",
      stormMoments.slice(0, 15),
      async () => {
        const bodies = Array.from({ length: STORM_SIZE }, (_, k) => [sdbBody(k), imcBody(k)] as const).flat();
        await inParallel(bodies, 8, (b) => create(b.kind === "SecureDatabase" ? RESOURCES.SecureDatabase : RESOURCES.ImagingConnection, b));
      },
      () => [],
    );
    expect(crashes).to.deep.equal([]);
    expect(run.violations, run.violations.join("\n")).to.deep.equal([]);
  });

  it("storm 2 (every certificate re-issued by annotation and re-keyed to P-384, every connection moved or added to a workload or dropped from it, 5 databases and 5 connections deleted), 15 kills", async () => {
    const deleted = [25, 26, 27, 28, 29];
    const run = await chaosRun(
      "storm 2 (re-issue, re-key, move, delete)",
      stormMoments.slice(15, 30),
      async () => {
        for (const k of deleted) ledger.forget(`${stormNs}/db-${k}-ca`);
        await inParallel(Array.from({ length: STORM_SIZE }, (_, k) => k), 8, async (k) => {
          if (deleted.includes(k)) {
            await admin.delete(RESOURCES.ImagingConnection, { namespace: ns, name: `app-${k}` });
            await admin.delete(RESOURCES.SecureDatabase, { namespace: ns, name: `db-${k}` });
            return;
          }
          await mergePatch(RESOURCES.SecureDatabase, `db-${k}`, { metadata: { annotations: { "mtls.imaging.dev/rotate": "storm-2" } }, spec: { serverCertificate: { privateKey: { algorithm: "ECDSA", size: 384 } } } });
          await mergePatch(RESOURCES.ImagingConnection, `app-${k}`, { metadata: { annotations: { "mtls.imaging.dev/rotate": "storm-2" } }, spec: { workloads: imcWorkloads(k, k % 3 === 0 ? 3 : 2) } });
        });
      },
      (s) => {
        const out: string[] = [];
        for (const k of deleted) {
          if (s.secureDatabases.some((o) => o.metadata.name === `db-${k}`) || s.imagingConnections.some((o) => o.metadata.name === `app-${k}`)) out.push(`db-${k} / app-${k} still there (finalizers)`);
          const cm = s.configMaps.find((x) => x.metadata.name === `pg-${k}`);
          if (!sameData(cm?.data, originalConfigMaps.get(`pg-${k}`)) || cm?.metadata.labels?.["mtls.imaging.dev/owner"]) out.push(`ConfigMap pg-${k} not restored after its SecureDatabase was deleted: ${JSON.stringify(cm?.data).slice(0, 300)}`);
        }
        for (const o of s.secureDatabases.filter((x) => x.metadata.name.startsWith("db-"))) {
          if ((o.status as { serverCertificate?: { lastRotationToken?: string } } | undefined)?.serverCertificate?.lastRotationToken !== "storm-2") out.push(`${o.metadata.name}: server certificate not re-issued for storm-2`);
          if (!s.secrets.some((x) => x.metadata.name === `${o.metadata.name}-server-tls` && keyIsP384(x))) out.push(`${o.metadata.name}: server key not re-issued as P-384`);
        }
        for (const o of s.imagingConnections.filter((x) => x.metadata.name.startsWith("app-"))) {
          if ((o.status as { certificate?: { lastRotationToken?: string } } | undefined)?.certificate?.lastRotationToken !== "storm-2") out.push(`${o.metadata.name}: client certificate not re-issued for storm-2`);
        }
        return out;
      },
    );
    expect(crashes).to.deep.equal([]);
    expect(run.violations, run.violations.join("\n")).to.deep.equal([]);
  });

  for (const r of [1, 2]) {
    it(`CA rotations ${r}: rotate-ca on the real PostgreSQL's SecureDatabase (propagationDelay 1s), again each time one completes, 10 kills: each rotation changes the CA key exactly once, to its new CA; Idle at the end; PostgreSQL accepts the final client certificates`, async () => {
      await switchTo(rotationNs);
      type RotatingStatus = { ca?: { serialNumber?: string }; caRotation?: { phase?: string; newCASerial?: string; oldCASerial?: string } };
      const statusOf = async () => (await admin.get<{ status?: RotatingStatus }>(RESOURCES.SecureDatabase, { namespace: ns, name: "pgdb" })).status;
      const keyBefore = ledger.current(`${rotationNs}/pgdb-ca`);
      let triggered = 0;
      let serialAtTrigger: string | undefined;
      const trigger = async () => {
        serialAtTrigger = (await statusOf())?.ca?.serialNumber;
        triggered++;
        ledger.expectRotation(`${rotationNs}/pgdb-ca`);
        await mergePatch(RESOURCES.SecureDatabase, "pgdb", { metadata: { annotations: { "mtls.imaging.dev/rotate-ca": `chaos-${r}-${triggered}` } } });
      };
      const finished = (st: RotatingStatus | undefined) => st?.caRotation?.phase === "Idle" && st.ca?.serialNumber !== serialAtTrigger && st.caRotation.newCASerial === st.ca?.serialNumber;
      const moments = rotationMoments.slice((r - 1) * 10, r * 10);
      const run = await chaosRun(
        `CA rotations ${r}`,
        moments,
        trigger,
        (s) => {
          const st = s.secureDatabases.find((o) => o.metadata.name === "pgdb")?.status as RotatingStatus | undefined;
          const out: string[] = [];
          if (!finished(st)) out.push(`pgdb rotation ${triggered} not finished on a new CA: ${JSON.stringify(st?.caRotation)}, CA serial ${st?.ca?.serialNumber} (was ${serialAtTrigger})`);
          for (const gone of ["pgdb-ca-next", "pgdb-ca-previous"]) if (s.caSecrets.some((x) => x.metadata.name === gone)) out.push(`${gone} still exists`);
          return out;
        },
        async (run) => {
          const st = await statusOf();
          run.phases.push(st?.caRotation?.phase ?? "Idle");
          // Keep the kills inside rotations: once one completes, ask for the next.
          if (finished(st) && run.kills < moments.length) {
            run.phases.push("|");
            await trigger();
          }
        },
      );
      const logins = [...(await mtlsLogin("pgconn", "app")), ...(await mtlsLogin("pgconn2", "app2"))];
      const keys = ledger.history(`${rotationNs}/pgdb-ca`);
      const caKey = keyFingerprint(secretBytes(await admin.get<SecretObject>(RESOURCES.Secret, caKeySecret(ns, "pgdb-ca")))["tls.key"]);
      console.log(`      ${triggered} rotation(s) triggered; pgdb-ca key: ${keys.keys.join(" → ")} (rotations still pending ${keys.pending}); mTLS logins with the final client certificates: ${logins.length === 0 ? "ok" : logins.join("; ")}`);
      expect(crashes).to.deep.equal([]);
      expect(run.violations, run.violations.join("\n")).to.deep.equal([]);
      expect(keys.pending).to.equal(0);
      expect(keys.keys.slice(keys.keys.indexOf(keyBefore!))).to.have.length(triggered + 1);
      expect(caKey).to.equal(keys.keys.at(-1));
      expect(logins).to.deep.equal([]);
    });
  }

  it("in all: 50 kills, no crash, no invariant violation, every CA key accounted for", () => {
    const final = ledger.finalViolations();
    for (const r of runs) console.log(`      ${r.name}: ${r.kills} kills, ${r.violations.length} violations, converged ${r.convergedMs ?? "never"} ms after the last restart`);
    expect(runs.reduce((n, r) => n + r.kills, 0)).to.equal(50);
    expect(crashes).to.deep.equal([]);
    expect(final, final.join("\n")).to.deep.equal([]);
  });
});

/** The spec of the fixture's SecureDatabase manifest (flow-style YAML of a few lines), as an object. */
function sdbSpecFromYaml(yaml: string): Record<string, unknown> {
  return (parseYaml(yaml) as { spec: Record<string, unknown> }).spec;
}

function keyIsP384(secret: SecretLike): boolean {
  try {
    const key = createPrivateKey(Buffer.from(secret.data?.["tls.key"] ?? "", "base64"));
    return key.asymmetricKeyDetails?.namedCurve === "secp384r1";
  } catch {
    return false;
  }
}
