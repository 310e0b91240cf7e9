/**
 * Storm at scale against the real control plane: N SecureDatabases + M ImagingConnections applied at once to the
 * operator running as its own process (the built dist/main.js, as the image runs it, authenticated as its
 * ServiceAccount). Prints apply→Ready percentiles, the bare key-generation bound for the same keys, operator RSS
 * (idle, peak, settled), event-loop delay during the storm, API writes per object next to the design's minimum,
 * peak requests per second, and writes during an idle window.
 *
 * The storm's databases use `reload.strategy: None` and `verification.enabled: false` (no PostgreSQL server per
 * database here: one per database would measure PostgreSQL, not the operator). Their Ready then means: CA, server
 * certificate and managed blocks in place. The live reload and verification path is measured with real
 * PostgreSQL servers by `npm run bench -- securedatabase` and the rotation bench.
 *
 * After the idle window, a renewal wave (bench/renewal-wave.ts): the first SCALE_WAVE connections' certificates all
 * reach their renewal time at the same instant, and must all be renewed within 60 s.
 *
 * Knobs: SCALE_N (both counts, 1000), SCALE_SDB, SCALE_IMC, SCALE_KEY (ECDSA | RSA; ECDSA is P-256, RSA is 2048), SCALE_IDLE_S
 * (idle window, 60), SCALE_CONCURRENCY (operator --concurrency, 4), SCALE_PROFILE (directory for a CPU profile), SCALE_NODE_FLAGS,
 * SCALE_WAVE (connections in the renewal wave, default all SCALE_IMC; 0 skips the wave), SCALE_WAVE_LEAD_S (60),
 * SCALE_WAVE_SPREAD_S (0: every renewal time exactly W), SCALE_DUMP (a file: the first connection as the storm left it),
 * SCALE_APISERVER_PROFILE (a file: kube-apiserver's CPU profile of the storm, for `go tool pprof -top`) and SCALE_APISERVER_PROFILE_S.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { webcrypto } from "node:crypto";
import type { ImagingConnectionObject, SecureDatabaseObject } from "../src/reconcilers/context";
import { RestClient } from "../src/kube/rest";
import { RESOURCES } from "../src/kube/resources";
import { silentLogger } from "../src/log";
import { Informer } from "../src/runtime/informer";
import { OPERATOR_NAMESPACE, OPERATOR_USER, startControlPlane } from "../test/support/controlplane";
import { freePort, waitFor } from "../test/support/process";
import { bundleOperator, IMAGE_NODE_FLAGS } from "../scripts/bundle-operator";
import { runRenewalWave } from "./renewal-wave";
import { WRITES, apiServerAndEtcdPids, captureApiServerProfile, apiServerMsPerObject, apiServerSecondsByRequest, classify, countByVerb, cpuSeconds, eventLoopDelayMs, inBatches, peakPerSecond, percentileRow, procStatus, scrape, tenths } from "./scale-measure";
import { controlPlaneCpu, measureBareCreates } from "./bare-bound";
import type { SecretObject } from "../src/kube/secrets";
import { SECURE_DATABASE_OPT_IN_ANNOTATION } from "../src/api/opt-in";

const REPO = resolve(__dirname, "..");
/** SCALE_N sets both counts at once (the SCALE_N=10000); SCALE_SDB and SCALE_IMC each override it. */
const SCALE_N = process.env.SCALE_N ?? "1000";
const SDBS = Number(process.env.SCALE_SDB ?? SCALE_N);
const IMCS = Number(process.env.SCALE_IMC ?? SCALE_N);
const KEY = (process.env.SCALE_KEY ?? "ECDSA") === "RSA" ? "RSA" : "ECDSA";
const IDLE_S = Number(process.env.SCALE_IDLE_S ?? 60);
const CONCURRENCY = Number(process.env.SCALE_CONCURRENCY ?? 4);
const WAVE = Math.min(IMCS, Number(process.env.SCALE_WAVE ?? IMCS));
/** The roles each database grants (spec.access); connection i asks for role i mod 16. */
const ROLES = Array.from({ length: 16 }, (_, i) => `u${i}`);
const WAVE_LEAD_S = Number(process.env.SCALE_WAVE_LEAD_S ?? 60);
const WAVE_SPREAD_S = Number(process.env.SCALE_WAVE_SPREAD_S ?? 0);
/** What the design needs per new object: SecureDatabase = CA Secret, server Secret, ConfigMap patch, finalizer, one status write; ImagingConnection (no workloads) = client Secret, finalizer, one status write. */
const MINIMUM = { SecureDatabase: 5, ImagingConnection: 3 };

/** The same keys, generated as the operator does (WebCrypto on the libuv pool), with nothing else to do. */
async function bareKeygenMs(count: number): Promise<number> {
  const params = KEY === "RSA" ? { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" } : { name: "ECDSA", namedCurve: "P-256" };
  const t0 = performance.now();
  let next = 0;
  // As many at once as the operator's workers could ask for; the libuv pool bounds the real parallelism.
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next++ < count) await webcrypto.subtle.generateKey(params, true, ["sign", "verify"]);
    }),
  );
  return performance.now() - t0;
}

function startOperatorProcess(kubeconfig: string, port: number, logPath: string): ChildProcess {
  // SCALE_PROFILE=<dir>: a V8 CPU profile of the operator, written when it exits.
  const profile = process.env.SCALE_PROFILE ? ["--cpu-prof", "--cpu-prof-dir", process.env.SCALE_PROFILE] : [];
  // The V8 flags of the image's ENTRYPOINT, then SCALE_NODE_FLAGS: flags to measure (e.g. "--heap-growing-percent=0"
  // for V8's default), after the shipped ones so they win.
  const extra = (process.env.SCALE_NODE_FLAGS ?? "").split(" ").filter(Boolean);
  const child = spawn(process.execPath, [...profile, ...IMAGE_NODE_FLAGS, ...extra, join(REPO, "dist", "main.js"), "--kubeconfig", kubeconfig, "--health-port", String(port), "--concurrency", String(CONCURRENCY), "--log-level", "warn", "--ca-key-namespace", OPERATOR_NAMESPACE], { stdio: ["ignore", "pipe", "pipe"] });
  const log = createWriteStream(logPath);
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  return child;
}

export async function runScaleBench(): Promise<void> {
  await bundleOperator(join(REPO, "dist", "main.js"));
  const cp = await startControlPlane();
  await cp.installCRDs();
  await cp.installRBAC();
  const admin = new RestClient(cp.kubeConfig);
  const ns = await cp.createNamespace("scale");
  const port = await freePort();
  let operator = startOperatorProcess(cp.operatorKubeconfigPath, port, join(cp.dir, "operator-scale.log"));
  const pid = operator.pid!;
  try {
    await waitFor("operator ready", async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200, 60_000, 100);
    await new Promise((r) => setTimeout(r, 5_000));
    const idleEmpty = await procStatus(pid);

    // The databases' PostgreSQL ConfigMaps exist before the storm, as they would in a cluster.
    const conf = "listen_addresses = '*'\nmax_connections = 100\n";
    const hba = "local all all trust\nhost all all 0.0.0.0/0 scram-sha-256\n";
    await inBatches(SDBS, 32, (i) => admin.create(RESOURCES.ConfigMap, ns, { apiVersion: "v1", kind: "ConfigMap", metadata: { name: `pg-${i}`, namespace: ns, annotations: { [SECURE_DATABASE_OPT_IN_ANNOTATION]: `db-${i}` } }, data: { "postgresql.conf": conf, "pg_hba.conf": hba } }));

    const appliedAt = new Map<string, number>();
    const readyAt = new Map<string, number>();
    const watch = <T extends SecureDatabaseObject | ImagingConnectionObject>(type: typeof RESOURCES.SecureDatabase | typeof RESOURCES.ImagingConnection) => {
      const inf = new Informer<T>(admin, { type, namespaces: [ns] }, silentLogger());
      inf.on((_e, obj) => {
        const key = `${type.kind}/${obj.metadata.name}`;
        if (!readyAt.has(key) && obj.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")) readyAt.set(key, performance.now());
      });
      inf.start();
      return inf;
    };
    const informers = [watch<SecureDatabaseObject>(RESOURCES.SecureDatabase), watch<ImagingConnectionObject>(RESOURCES.ImagingConnection)];
    await Promise.all(informers.map((i) => i.synced));

    const since = new Date();
    const controlPlanePids = await apiServerAndEtcdPids(cp.dir);
    if (controlPlanePids.length !== 2) throw new Error(`expected kube-apiserver and etcd under ${cp.dir}, found pids ${controlPlanePids.join(", ")}`);
    const controlPlaneBefore = await controlPlaneCpu(controlPlanePids);
    const apiServerTime = async () => apiServerSecondsByRequest((await cp.kubectl(["get", "--raw", "/metrics"])).stdout);
    const requestsBefore = await apiServerTime();
    const cpuBefore = await cpuSeconds(pid);
    const t0 = performance.now();
    const privateKey = KEY === "RSA" ? { algorithm: "RSA", size: 2048 } : { algorithm: "ECDSA", size: 256 };
    const sdb = (i: number) => ({
      apiVersion: "mtls.imaging.dev/v1alpha1",
      kind: "SecureDatabase",
      metadata: { name: `db-${i}`, namespace: ns },
      spec: {
        host: `db-${i}.${ns}.svc`,
        ca: { privateKey },
        serverCertificate: { privateKey },
        postgres: { configMapName: `pg-${i}` },
        reload: { strategy: "None" },
        verification: { enabled: false },
        access: [{ users: ROLES }],
      },
    });
    const imc = (i: number) => ({
      apiVersion: "mtls.imaging.dev/v1alpha1",
      kind: "ImagingConnection",
      metadata: { name: `c-${i}`, namespace: ns },
      spec: { databaseRef: { name: `db-${i % SDBS}` }, user: ROLES[i % ROLES.length]!, certificate: { privateKey }, verification: { enabled: false } },
    });
    // Databases and connections interleaved, 64 requests in flight: "applied at once", as a GitOps sync does.
    const total = SDBS + IMCS;
    const jobs: { type: typeof RESOURCES.SecureDatabase | typeof RESOURCES.ImagingConnection; body: ReturnType<typeof sdb> | ReturnType<typeof imc>; key: string }[] = [];
    for (let i = 0; i < Math.max(SDBS, IMCS); i++) {
      if (i < SDBS) jobs.push({ type: RESOURCES.SecureDatabase, body: sdb(i), key: `SecureDatabase/db-${i}` });
      if (i < IMCS) jobs.push({ type: RESOURCES.ImagingConnection, body: imc(i), key: `ImagingConnection/c-${i}` });
    }
    // SCALE_APISERVER_PROFILE=<file>: kube-apiserver's CPU profile over the storm's first SCALE_APISERVER_PROFILE_S seconds (12).
    const apiServerProfile = process.env.SCALE_APISERVER_PROFILE
      ? captureApiServerProfile(cp.binaries.kubectl, cp.kubeconfigPath, process.env.SCALE_APISERVER_PROFILE, Number(process.env.SCALE_APISERVER_PROFILE_S ?? 12))
      : undefined;
    await inBatches(jobs.length, 64, async (j) => {
      const job = jobs[j]!;
      appliedAt.set(job.key, performance.now());
      await admin.create(job.type, ns, job.body);
    });
    const appliedMs = performance.now() - t0;
    let peak = idleEmpty;
    await waitFor(
      "every object Ready",
      async () => {
        peak = await procStatus(pid);
        return readyAt.size >= total;
      },
      Math.max(20 * 60_000, total * 120),
      250,
    );
    const allReadyMs = performance.now() - t0;
    await apiServerProfile;
    const operatorCpu = (await cpuSeconds(pid)) - cpuBefore;
    const stormControlPlaneCpu = (await controlPlaneCpu(controlPlanePids)) - controlPlaneBefore;
    const requestsAfter = await apiServerTime();
    const storm = await scrape(port);
    const latencies = [...appliedAt].map(([k, t]) => (readyAt.get(k) ?? NaN) - t);
    const stormEvents = await cp.auditEvents(OPERATOR_USER, since);

    // SCALE_DUMP=<file>: the first connection as the storm left it (the status request kinds are measured on it).
    if (process.env.SCALE_DUMP && IMCS > 0) await writeFile(process.env.SCALE_DUMP, JSON.stringify(await admin.get(RESOURCES.ImagingConnection, { namespace: ns, name: "c-0" }), null, 2));
    const settled = await procStatus(pid);
    // SCALE_HEAPSNAPSHOT=1: a heap snapshot of the operator after the storm (needs NODE_OPTIONS=--heapsnapshot-signal=SIGUSR2).
    if (process.env.SCALE_HEAPSNAPSHOT) process.kill(pid, "SIGUSR2");
    const idleSince = new Date();
    await new Promise((r) => setTimeout(r, IDLE_S * 1000));
    const idleWrites = (await cp.auditEvents(OPERATOR_USER, idleSince)).filter((e) => WRITES.has(e.verb));
    const afterIdle = await procStatus(pid);
    for (const i of informers) i.stop();

    const keys = SDBS * 2 + IMCS;
    const bare = await bareKeygenMs(keys);
    // The bare bound: as many Secret creates as objects in the storm, each the size of a client Secret it wrote.
    const template = await admin.get<SecretObject>(RESOURCES.Secret, { namespace: ns, name: IMCS > 0 ? "c-0-client-tls" : "db-0-server-tls" });
    const bound = await measureBareCreates({ admin, namespace: await cp.createNamespace("bare"), template, count: total, inFlight: 64, controlPlanePids });

    const writes = stormEvents.filter((e) => WRITES.has(e.verb));
    const perKind = (kind: "SecureDatabase" | "ImagingConnection", n: number, events = true) =>
      Math.round((writes.filter((e) => classify(e) === kind && (events || e.objectRef?.resource !== "events")).length / Math.max(1, n)) * 100) / 100;

    console.log(`\nStorm: ${SDBS} SecureDatabases + ${IMCS} ImagingConnections, ${KEY === "RSA" ? "RSA-2048" : "ECDSA P-256"}, operator --concurrency ${CONCURRENCY} (real kube-apiserver ${cp.version}, ${(await import("node:os")).cpus().length} cores)`);
    console.table({
      "apply→Ready ms": percentileRow(latencies),
    });
    console.table({
      "all applied (s)": Math.round(appliedMs / 100) / 10,
      "all Ready (s)": Math.round(allReadyMs / 100) / 10,
      [`bare keygen, ${keys} keys (s)`]: Math.round(bare / 100) / 10,
      "all Ready / bare keygen": Math.round((allReadyMs / bare) * 100) / 100,
      "operator CPU during storm (s)": Math.round(operatorCpu * 10) / 10,
      "event-loop delay p99 (ms)": eventLoopDelayMs(storm, "p99"),
      "event-loop delay max (ms)": eventLoopDelayMs(storm, "max"),
      "RSS idle, 0 objects (MiB)": idleEmpty.rssMiB,
      "heap used / committed after storm (MiB)": `${Math.round((storm.get("imaging_mtls_operator_nodejs_heap_size_used_bytes") ?? NaN) / 2 ** 20)} / ${Math.round((storm.get("imaging_mtls_operator_nodejs_heap_size_total_bytes") ?? NaN) / 2 ** 20)}`,
      "external memory after storm (MiB)": Math.round((storm.get("imaging_mtls_operator_nodejs_external_memory_bytes") ?? NaN) / 2 ** 20),
      "RSS peak during storm (MiB)": Math.max(peak.peakMiB, settled.peakMiB),
      "RSS settled after storm (MiB)": settled.rssMiB,
      [`RSS after ${IDLE_S} s idle (MiB)`]: afterIdle.rssMiB,
      "writes per SecureDatabase": perKind("SecureDatabase", SDBS),
      "  design minimum": MINIMUM.SecureDatabase,
      "  of which not Events": perKind("SecureDatabase", SDBS, false),
      "writes per ImagingConnection": perKind("ImagingConnection", IMCS),
      "  design minimum ": MINIMUM.ImagingConnection,
      "  of which not Events ": perKind("ImagingConnection", IMCS, false),
      "reconciles per SecureDatabase / ImagingConnection": `${tenths((storm.get('imaging_mtls_reconcile_total{kind="SecureDatabase"}') ?? 0) / Math.max(1, SDBS))} / ${tenths((storm.get('imaging_mtls_reconcile_total{kind="ImagingConnection"}') ?? 0) / Math.max(1, IMCS))}`,
      "peak operator requests/s": peakPerSecond(stormEvents),
      [`writes in ${IDLE_S} s idle`]: idleWrites.length,
    });
    const sorted = [...latencies].sort((a, b) => a - b);
    const [p50, p99] = [sorted[Math.floor(sorted.length * 0.5)]!, sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!];
    console.log(`\nThe bare bound, same run: ${bound.count} Secret creates of ${bound.bytes} bytes of data each (a client Secret of the storm), 64 in flight, nothing reconciling them`);
    console.table({
      "bare: all created (s)": tenths(bound.wallMs / 1000),
      "bare: create latency p50 / p99 (ms)": `${bound.latencyMs.p50} / ${bound.latencyMs.p99}`,
      "bare: kube-apiserver+etcd CPU per create (ms)": tenths((bound.controlPlaneCpuS * 1000) / bound.count),
      "storm: kube-apiserver+etcd CPU per object (ms)": tenths((stormControlPlaneCpu * 1000) / total),
      "storm: operator CPU per object (ms)": tenths((operatorCpu * 1000) / total),
      "ratio: all Ready / all created bare (target ≤ 5)": Math.round((allReadyMs / bound.wallMs) * 100) / 100,
      "ratio: apiserver+etcd CPU per object / per bare create (target ≤ 3)": Math.round((stormControlPlaneCpu / bound.controlPlaneCpuS) * 100) / 100,
      "ratio: apply→Ready p99 / p50 (target ≤ 2)": Math.round((p99 / p50) * 100) / 100,
    });
    // Latency summed (queueing included, so a saturated server inflates every row), not CPU: it ranks the requests.
    console.log("API server time per request kind during the storm (everyone's requests incl. the bench's creates; summed latency, watches left out), ms per object:");
    console.table(apiServerMsPerObject(requestsBefore, requestsAfter, total));
    console.log("Operator writes during the storm, by verb and resource:");
    console.table(countByVerb(writes));

    if (WAVE > 0) {
      const names = Array.from({ length: WAVE }, (_, i) => `c-${i}`);
      await runRenewalWave({ cp, admin, namespace: ns, pid, metricsPort: port, names, leadS: WAVE_LEAD_S, spreadS: WAVE_SPREAD_S });
    }

    // A restart with everything in place: the relist, then one reconcile of every object, which should write nothing.
    await stopProcess(operator);
    const restartPort = await freePort();
    const restartedAt = new Date();
    const r0 = performance.now();
    operator = startOperatorProcess(cp.operatorKubeconfigPath, restartPort, join(cp.dir, "operator-restart.log"));
    const restartPid = operator.pid!;
    await waitFor("restarted operator ready", async () => (await fetch(`http://127.0.0.1:${restartPort}/readyz`).catch(() => undefined))?.status === 200, 20 * 60_000, 100);
    const syncedMs = performance.now() - r0;
    const synced = await procStatus(restartPid);
    const reconciled = (m: Map<string, number>) => (m.get('imaging_mtls_reconcile_total{kind="SecureDatabase"}') ?? 0) + (m.get('imaging_mtls_reconcile_total{kind="ImagingConnection"}') ?? 0);
    await waitFor("every object reconciled after the restart", async () => reconciled(await scrape(restartPort)) >= total, 20 * 60_000, 250);
    const caughtUpMs = performance.now() - r0;
    const restartCpu = await cpuSeconds(restartPid);
    const caughtUp = await procStatus(restartPid);
    const restartWrites = (await cp.auditEvents(OPERATOR_USER, restartedAt)).filter((e) => WRITES.has(e.verb) && e.objectRef?.resource !== "leases");
    console.log(`\nA restart with the ${total} objects in place (list of every watched kind, then one reconcile of each):`);
    console.table({
      "process start → caches synced, /readyz 200 (s)": tenths(syncedMs / 1000),
      "→ every object reconciled once (s)": tenths(caughtUpMs / 1000),
      "operator CPU until then (s)": tenths(restartCpu),
      "RSS when synced / when caught up (MiB)": `${synced.rssMiB} / ${caughtUp.rssMiB}`,
      "writes (none expected)": restartWrites.length,
    });
  } finally {
    await stopProcess(operator);
    await cp.stop();
  }
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}

if (require.main === module) {
  runScaleBench().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
