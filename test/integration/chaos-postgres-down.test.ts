/**
 * Chaos (issue 8, item 4): PostgreSQL goes down in the middle of a rotation, stays down for 25 s, and comes back on
 * the same data directory and port. The operator must wait for what it cannot verify (never promote a new CA, never
 * drop the old one from trust, never call a server certificate served while nobody could check it), say so in the
 * SecureDatabase's conditions and events, retry with a backoff rather than in a loop, keep every CA key, keep
 * running, and finish the rotation once the server is back.
 *
 * 1. CA rotation: PostgreSQL is stopped as soon as the rotation is in Overlap, before the server has loaded the new
 *    trust bundle (the "kubelet" lays server files down 2 s late), so the rotation is waiting for the server to
 *    accept a client certificate of the new CA when the server goes.
 * 2. Server certificate rotation (rotate token) asked for while PostgreSQL is down: the reload that must follow the
 *    new certificate meets a server that is not there.
 *
 * Every connection the operator (this very process) opens to the server is counted by wrapping pg's
 * Client.prototype.connect, and sorted by the operator function that opened it (verification, reload, new-CA probe,
 * login check): that is how the retries during the outage are counted, alongside the reconcile metric, the
 * operator's log lines and the status writes in the audit log.
 *
 * What the runs showed (figures printed by the test): scenario 2 behaves (Reloaded/Verified/Ready False, reason
 * Unreachable, Warning events, tries 1 s → 5 s apart, the certificate issued once; served at once when the server
 * starts, Verified a few seconds later at the next try). Scenario 1 recovers (Idle about 8 s after the server is
 * back, psql logs in) but fails on three counts, left asserted as operator bugs: while the server is down nothing
 * says so (Ready and Verified stay True from a verification cached for spec.verification.interval, no event; the
 * Overlap probe's ECONNREFUSED is dropped), the rotation's fixed 2 s requeue probes the server every 1-2 s with no
 * backoff, and Idle ("CA ... alone is trusted") is reached about 3 s before the server stops accepting a client
 * certificate of the retired CA (Finishing completes on a reload issued before the kubelet laid the bundle down).
 */
import { expect } from "chai";
import { X509Certificate } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "pg";
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, type ImagingConnection, type SecureDatabase } from "../../src/api/types";
import { silentLogger } from "../../src/log";
import type { Operator } from "../../src/operator";
import { RESOURCES } from "../../src/kube/resources";
import { RestClient } from "../../src/kube/rest";
import { secretBytes, type SecretObject } from "../../src/kube/secrets";
import { normalizeSerial } from "../../src/postgres/probe";
import { Informer, type KubeObject } from "../../src/runtime/informer";
import { recordUnhandledRejections, servedServerCertificate, sleep, startOperatorWithLog, type LogEntry } from "../support/chaos";
import { OPERATOR_USER, type ControlPlane } from "../support/controlplane";
import { databaseInCluster } from "../support/database-fixture";
import { controlPlane } from "../support/hooks";
import { CAKeyLedger, expectPhaseOrder, keyFingerprint, type SecretLike } from "../support/invariants";
import { condition, getJson, kubectlOk, waitForCondition } from "../support/kubectl-json";
import { imagingConnectionYaml } from "../support/manifests";
import { psql, startPostgres, type PostgresServer } from "../support/postgres";
import { waitFor } from "../support/process";
import type { VolumeSyncer } from "../support/volume-syncer";

/** How long PostgreSQL stays down. */
const OUTAGE_MS = 25_000;
/** From PostgreSQL answering again to everything done (generous: correctness, not speed, is tested here). */
const RECOVERY_BOUND_MS = 120_000;
/** The "kubelet" lays the server's files down this late: the server cannot have the new bundle when it is stopped. */
const SYNC_DELAY_MS = 2000;
/** What must have happened after PostgreSQL is back from the CA rotation's outage (the short phases may be missed). */
const RECOVERY_MILESTONES = ["server accepts the new CA (Overlap done)", "new server certificate served", "Verified=True on it", "connection Ready on the new CA", "phase Idle", "SecureDatabase Ready", "psql verify-full login"];
/**
 * Bounds on the retries during the outage, from the operator's own rule (src/reconcilers/verification-schedule.ts):
 * a failed check is retried after 1 s, then after a quarter of how long checks have been failing (at most 60 s). In
 * 25 s that is about a dozen tries, and once checks have failed for 16 s, none sooner than 4 s after the previous.
 */
const MAX_TRIES = 16;
const LATE_MS = 16_000;
const LATE_MIN_GAP_MS = 3500;

type EventList = { items: { type: string; reason: string; message: string; firstTimestamp?: string; lastTimestamp?: string; count?: number }[] };

interface ConnectAttempt {
  at: number;
  user: string;
  /** Which operator function opened the connection. */
  kind: "verification" | "reload" | "new-CA probe" | "login check" | "other";
}

/** Which operator code path opened a connection, from the synchronous stack at Client.connect. */
function classify(stack: string): ConnectAttempt["kind"] {
  if (/\breloadServer\b/.test(stack)) return "reload";
  if (/\bserverReady\b/.test(stack)) return "new-CA probe";
  if (/imagingconnection\.ts/.test(stack)) return "login check";
  if (/SecureDatabaseReconciler\.verify\b/.test(stack)) return "verification";
  return "other";
}

/** Records every pg client connection this process opens to `port` (the operator runs in this process). */
function countConnections(port: number): { attempts: ConnectAttempt[]; dispose(): void } {
  const attempts: ConnectAttempt[] = [];
  const proto = Client.prototype as unknown as { connect: (this: Client, ...args: unknown[]) => unknown };
  const original = proto.connect;
  proto.connect = function (this: Client, ...args: unknown[]) {
    if (this.port === port) {
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = 40;
      const stack = new Error().stack ?? "";
      Error.stackTraceLimit = limit;
      attempts.push({ at: Date.now(), user: this.user ?? "", kind: classify(stack) });
    }
    return original.apply(this, args);
  };
  return { attempts, dispose: () => (proto.connect = original) };
}

const between = (attempts: readonly ConnectAttempt[], from: number, to: number) => attempts.filter((a) => a.at >= from && a.at < to);
const countBy = (attempts: readonly ConnectAttempt[]) => attempts.reduce<Record<string, number>>((acc, a) => ({ ...acc, [a.kind]: (acc[a.kind] ?? 0) + 1 }), {});
const gaps = (times: readonly number[]) => times.slice(1).map((t, i) => t - times[i]!);

/**
 * The reconcile passes that tried the server, as times after `from`: connection attempts less than 300 ms apart
 * (a reload and a check in one pass, or two passes back to back) count as one try.
 */
function tries(attempts: readonly ConnectAttempt[], from: number): number[] {
  const out: number[] = [];
  let last = -Infinity;
  for (const a of attempts) {
    if (a.at - last >= 300) out.push(a.at - from);
    last = a.at;
  }
  return out;
}

/** Tries more than the operator's own failure backoff allows, in words (empty: it backed off). */
function backoffProblems(times: readonly number[]): string[] {
  const problems: string[] = [];
  if (times.length > MAX_TRIES) problems.push(`${times.length} tries in the outage, more than ${MAX_TRIES}`);
  const late = times.slice(1).flatMap((t, i) => (times[i]! >= LATE_MS && t - times[i]! < LATE_MIN_GAP_MS ? [`+${t} ms, ${t - times[i]!} ms after the previous one`] : []));
  if (late.length > 0) problems.push(`tries ${LATE_MS / 1000} s into the outage closer together than ${LATE_MIN_GAP_MS} ms: ${late.join("; ")}`);
  return problems;
}

/** Runs an expectation, keeping its failure instead of stopping: the recovery still runs and is measured. */
function softly(problems: string[], what: string, check: () => void): void {
  try {
    check();
  } catch (err) {
    problems.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

const logsBetween = (logs: readonly LogEntry[], from: number, to: number, message: string) =>
  logs.filter((l) => l.message.startsWith(message) && Date.parse(String(l.at)) >= from && Date.parse(String(l.at)) < to);


describe("chaos: PostgreSQL is down for 25 s during a rotation, then back (real API server, real PostgreSQL)", function () {
  this.timeout(300_000);
  let cp: ControlPlane;
  let ns: string;
  let admin: RestClient;
  let pg: PostgresServer;
  let syncer: VolumeSyncer;
  let operator: Operator;
  let logs: LogEntry[];
  let secretsInformer: Informer<SecretLike & KubeObject> | undefined;
  let connections: ReturnType<typeof countConnections> | undefined;
  const ledger = new CAKeyLedger();

  const sdbNow = () => admin.get<SecureDatabase>(RESOURCES.SecureDatabase, { namespace: ns, name: "db" });
  const imcNow = () => admin.get<ImagingConnection>(RESOURCES.ImagingConnection, { namespace: ns, name: "app" });
  const secretNow = (name: string) => admin.getOptional<SecretObject>(RESOURCES.Secret, { namespace: ns, name });
  const keyOf = async (name: string) => {
    const s = await secretNow(name);
    return s ? keyFingerprint(secretBytes(s)["tls.key"]) : "absent";
  };
  const reconcileCounts = async () => {
    const runs = await operator.metrics.registry.getSingleMetric("imaging_mtls_reconcile_total")?.get();
    const errors = await operator.metrics.registry.getSingleMetric("imaging_mtls_reconcile_errors_total")?.get();
    const of = (m: typeof runs, kind: string) => m?.values.find((v) => v.labels.kind === kind)?.value ?? 0;
    return { runs: of(runs, "SecureDatabase"), errors: of(errors, "SecureDatabase") };
  };
  const events = async (): Promise<EventList["items"]> => (await getJson<EventList>(["get", "events", "-n", ns, "--field-selector", "involvedObject.name=db"])).items;
  /** Events are stamped in whole seconds. */
  const eventSince = (e: EventList["items"][number], t: number) => Date.parse(e.lastTimestamp ?? e.firstTimestamp ?? "") >= Math.floor(t / 1000) * 1000;
  /** The operator's status writes to the SecureDatabase between two times (audit log). */
  const statusWrites = async (from: number, to: number) =>
    (await cp.auditEvents(OPERATOR_USER, new Date(from))).filter((e) => e.objectRef?.resource === "securedatabases" && e.objectRef.subresource === "status" && e.verb === "patch" && new Date(e.requestReceivedTimestamp).getTime() < to).length;
  const served = async () => (await servedServerCertificate("127.0.0.1", pg.port).catch(() => undefined))?.serialNumber;

  /** psql, sslmode=verify-full, with a client Secret's files (the root certificate from `rootFrom` when given). */
  const psqlWith = async (data: Record<string, Buffer>, user: string, rootFrom?: Record<string, Buffer>) => {
    const dir = await mkdtemp(join(tmpdir(), "pgdown-client-"));
    try {
      await writeFile(join(dir, "tls.crt"), data["tls.crt"]!, { mode: 0o600 });
      await writeFile(join(dir, "tls.key"), data["tls.key"]!, { mode: 0o600 });
      await writeFile(join(dir, "ca.crt"), (rootFrom ?? data)["ca.crt"]!, { mode: 0o600 });
      return await psql({ host: "localhost", port: pg.port, user, sslmode: "verify-full", sslcert: join(dir, "tls.crt"), sslkey: join(dir, "tls.key"), sslrootcert: join(dir, "ca.crt"), command: "SELECT current_user" });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
  const clientFiles = async () => secretBytes((await secretNow("app-client-tls"))!);

  /**
   * Brings PostgreSQL back if a failed test left it down, and waits until the "kubelet" has laid down everything it
   * saw (it works through changes one at a time, each SYNC_DELAY_MS late, and restarts the server for a changed
   * pod template): a restart it still owes must not race the test's own stop.
   */
  const ensureUp = async () => {
    if (pg && !(await pg.isRunning())) await pg.start();
    let seen = -1;
    let quietSince = Date.now();
    await waitFor(
      "the volume syncer to be idle",
      async () => {
        const now = syncer.writes + syncer.restarts;
        if (now !== seen) [seen, quietSince] = [now, Date.now()];
        return Date.now() - quietSince >= 2 * SYNC_DELAY_MS + 1000;
      },
      120_000,
      100,
    );
    if (!(await pg.isRunning())) await pg.start();
  };

  /** What the operator did against the down server, printed; the tries (reconcile passes that connected) returned. */
  const reportOutage = async (haltedAt: number, restartAt: number, before: { runs: number; errors: number }) => {
    const after = await reconcileCounts();
    const during = between(connections!.attempts, haltedAt, restartAt);
    const ours = during.filter((a) => a.user === "postgres");
    const times = tries(ours, haltedAt);
    const warned = logsBetween(logs, haltedAt, restartAt, "event").filter((l) => l.level === "warn");
    console.log(
      `      outage ${restartAt - haltedAt} ms: the SecureDatabase reconciler opened ${ours.length} connections ${JSON.stringify(countBy(ours))} in ${times.length} tries, ` +
        `others ${during.length - ours.length} ${JSON.stringify(countBy(during.filter((a) => a.user !== "postgres")))}; ` +
        `reconciles ${after.runs - before.runs} (failed ${after.errors - before.errors}); status writes ${await statusWrites(haltedAt, restartAt)}; ` +
        `log lines: ${logsBetween(logs, haltedAt, restartAt, "repeated reload failed").length} "repeated reload failed", warning events ${JSON.stringify(warned.reduce<Record<string, number>>((acc, l) => ({ ...acc, [String(l.reason)]: (acc[String(l.reason)] ?? 0) + 1 }), {}))}`,
    );
    console.log(`      tries at (ms after the stop): ${times.join(", ")}; gaps ${gaps(times).join(", ")}`);
    return { times, errors: after.errors - before.errors, warned };
  };

  /** The end of a scenario: no key lost, the same operator with its caches synced, nothing rejected unhandled, no problem noted. */
  const expectSettled = (problems: string[], theOperator: Operator, recorder: { rejections: unknown[] }) => {
    expect(ledger.violations, ledger.violations.join("\n")).to.deep.equal([]);
    expect(operator).to.equal(theOperator);
    expect(operator.hasSynced()).to.equal(true);
    expect(recorder.rejections.map(String)).to.deep.equal([]);
    expect(problems, problems.join("\n")).to.deep.equal([]);
  };

  /** The end of every outage: the operator backed off, no reconcile threw, it is the same operator; then PostgreSQL is back. */
  const endOutage = async (problems: string[], outage: { times: number[]; errors: number }, theOperator: Operator) => {
    softly(problems, "retries against the down server", () => expect(backoffProblems(outage.times)).to.deep.equal([]));
    expect(outage.times.length, "the operator never tried the server while it was down").to.be.greaterThan(0);
    expect(outage.errors, "reconciles that failed (threw) while the server was down").to.equal(0);
    expect(operator).to.equal(theOperator);
    await pg.start();
    const backAt = Date.now();
    const done: Record<string, number> = {};
    const mark = (what: string) => {
      done[what] ??= Date.now() - backAt;
    };
    return { backAt, done, mark };
  };

  before(async function () {
    this.timeout(180_000);
    cp = controlPlane();
    ns = await cp.createNamespace("chaos-pgdown");
    admin = new RestClient(cp.kubeConfig);
    pg = await startPostgres({ name: "chaos-pgdown" });
    await pg.sql("CREATE ROLE app LOGIN");
    const db = await databaseInCluster(cp, pg, { namespace: ns, configMapName: "pg-config", workloadName: "css", serverSecretName: "db-server-tls", syncDelayMs: SYNC_DELAY_MS });
    syncer = db.syncer;
    // Every version of every Secret the operator manages goes through the CA key ledger.
    secretsInformer = new Informer<SecretLike & KubeObject>(admin, { type: RESOURCES.Secret, namespaces: [ns], labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}` }, silentLogger());
    secretsInformer.on((event, obj) => ledger.observe(obj, event === "delete"));
    secretsInformer.start();
    await secretsInformer.synced;
    ledger.track(`${ns}/db-ca`);
    ({ operator, logs } = await startOperatorWithLog(cp, ns));
    await kubectlOk(["apply", "-f", "-"], db.secureDatabaseYaml());
    await kubectlOk(["patch", "sdb", "db", "-n", ns, "--type=merge", "-p", JSON.stringify({ spec: { ca: { propagationDelay: "2s" } } })]);
    await waitForCondition<SecureDatabase>("sdb", ns, "db", "Ready", (c) => c.status === "True", 90_000);
    await kubectlOk(["apply", "-f", "-"], imagingConnectionYaml(ns, "app", "app"));
    await waitForCondition<ImagingConnection>("imc", ns, "app", "Ready", (c) => c.status === "True", 60_000);
    // Mounting the server Secret changed the StatefulSet's pod template: the "kubelet" restarts the server once.
    await waitFor("the server restarted for the mounted server Secret", async () => syncer.restarts >= 1, 60_000);
    await ensureUp();
    expect((await psqlWith(await clientFiles(), "app")).stdout.trim()).to.equal("app");
    connections = countConnections(pg.port);
  });

  after(async function () {
    this.timeout(60_000);
    connections?.dispose();
    await operator?.stop();
    secretsInformer?.stop();
    syncer?.stop();
    // The "kubelet" may still lay down a change it saw a moment ago: let it, before the data directory goes.
    await sleep(SYNC_DELAY_MS + 500);
    await pg?.stop();
  });

  it("1. CA rotation with PostgreSQL stopped in Overlap for 25 s: stays in Overlap with every key, reports the unreachable server, backs off; finishes once the server is back", async () => {
    await ensureUp();
    const recorder = recordUnhandledRejections();
    const theOperator = operator;
    const problems: string[] = [];
    try {
      const before = await sdbNow();
      const oldCA = before.status!.ca!.serialNumber!;
      const oldServer = before.status!.serverCertificate!.serialNumber!;
      const caKeyBefore = await keyOf("db-ca");
      const oldClient = await clientFiles();
      const metricsBefore = await reconcileCounts();
      ledger.expectRotation(`${ns}/db-ca`);

      // 1. Start the rotation; stop PostgreSQL the moment it is in Overlap.
      const triggeredAt = Date.now();
      await kubectlOk(["annotate", "sdb", "db", "-n", ns, "mtls.imaging.dev/rotate-ca=pgdown-1"]);
      let atHalt: SecureDatabase | undefined;
      await waitFor(
        "the CA rotation to reach Overlap",
        async () => {
          atHalt = await sdbNow();
          return atHalt.status?.caRotation?.phase === "Overlap";
        },
        30_000,
        25,
      );
      const haltAt = Date.now();
      await pg.halt();
      const haltedAt = Date.now();
      const nextKey = await keyOf("db-ca-next");
      console.log(`      Overlap seen ${haltAt - triggeredAt} ms after the rotate-ca annotation; PostgreSQL stopped in ${haltedAt - haltAt} ms (caRotation.readyTime then: ${atHalt?.status?.caRotation?.readyTime ?? "unset"})`);
      // The scenario: the server has never accepted a certificate of the new CA when it goes.
      expect(atHalt?.status?.caRotation?.readyTime, "the server was verified with the new bundle before it was stopped: the scenario did not happen").to.equal(undefined);
      expect(nextKey).to.not.equal("absent");

      // 2. The outage: the rotation must not move, no key may change, the operator keeps running.
      const phasesDuring = new Set<string>();
      let samples = 0;
      while (Date.now() - haltedAt < OUTAGE_MS) {
        const at = `+${Date.now() - haltedAt} ms`;
        const s = await sdbNow();
        samples++;
        const rot = s.status?.caRotation;
        phasesDuring.add(rot?.phase ?? "Idle");
        if (rot?.phase !== "Overlap") problems.push(`phase ${rot?.phase} at ${at}, although the server could not have been verified with the new bundle`);
        if (rot?.readyTime) problems.push(`caRotation.readyTime ${rot.readyTime} recorded at ${at} although the server is down`);
        if (s.status?.ca?.serialNumber !== oldCA) problems.push(`status.ca is serial ${s.status?.ca?.serialNumber}, not the old ${oldCA}, at ${at}: promoted without the server`);
        const [ca, next, previous] = await Promise.all([keyOf("db-ca"), keyOf("db-ca-next"), keyOf("db-ca-previous")]);
        if (ca !== caKeyBefore) problems.push(`db-ca key ${caKeyBefore} → ${ca} at ${at}`);
        if (next !== nextKey) problems.push(`db-ca-next key ${nextKey} → ${next} at ${at}`);
        if (previous !== "absent") problems.push(`db-ca-previous exists at ${at} (a promotion began)`);
        if (!operator.hasSynced()) problems.push(`operator caches not synced at ${at}`);
        await sleep(250);
      }
      const restartAt = Date.now();
      const down = await sdbNow();
      const outage = await reportOutage(haltedAt, restartAt, metricsBefore);
      const verified = condition(down, "Verified");
      const rotating = condition(down, "CARotating");
      const ready = condition(down, "Ready");
      console.log(`      reported at the end of the outage: Ready ${ready?.status} ${ready?.reason}; Verified ${verified?.status} ${verified?.reason} "${verified?.message}"; CARotating ${rotating?.status} ${rotating?.reason} "${rotating?.message}"`);
      expect(samples).to.be.greaterThan(20);
      expect([...phasesDuring]).to.deep.equal(["Overlap"]);
      // What the rotation says it waits for.
      expect(rotating).to.include({ status: "True", reason: "Overlap" });
      expect(rotating?.message).to.match(/^Overlap: waiting for the server to accept a client certificate from the new CA/);
      expect(down.status?.caRotation?.message).to.equal(rotating?.message);
      // That the server is unreachable: a condition (with reason Unreachable and the refused connection), Ready not
      // True, and a Warning event, as for a server that goes down outside a rotation (database-faults.test.ts).
      softly(problems, "a condition saying the server is unreachable", () =>
        expect(down.status?.conditions?.filter((c) => c.reason === "Unreachable" || /ECONNREFUSED/.test(c.message)), JSON.stringify(down.status?.conditions?.map((c) => `${c.type}=${c.status} ${c.reason}`))).to.not.be.empty,
      );
      softly(problems, "Ready while the server is down", () => expect(ready?.status, `Ready ${ready?.status} ${ready?.reason}: ${ready?.message}`).to.not.equal("True"));
      // (The operator records an identical event once in 10 min and logs every one: the log says it was recorded now.)
      const warnedEvents = (await events()).filter((e) => e.type === "Warning" && /ECONNREFUSED/.test(e.message));
      softly(problems, "a Warning event naming the refused connection", () => expect(warnedEvents.map((e) => `${e.reason}: ${e.message}`)).to.not.be.empty);
      softly(problems, "a Warning event naming the refused connection recorded during the outage (log)", () => expect(outage.warned.filter((l) => /ECONNREFUSED/.test(l.message))).to.not.be.empty);
      // Retries: bounded, backing off; no reconcile failed; the same operator, running.
      // 3. PostgreSQL back, on the same data directory and port.
      const { backAt, done, mark } = await endOutage(problems, outage, theOperator);
      const phases: string[] = ["Overlap"];
      let last: SecureDatabase | undefined;
      let lastImc: ImagingConnection | undefined;
      let lastLogin = "";
      const recovered = await waitFor(
        "the rotation to finish and everything to work again",
        async () => {
          last = await sdbNow();
          lastImc = await imcNow();
          const s = last.status;
          const phase = s?.caRotation?.phase ?? "Idle";
          if (phases.at(-1) !== phase) phases.push(phase);
          if (s?.caRotation?.readyTime || phase !== "Overlap") mark("server accepts the new CA (Overlap done)");
          if (phase !== "Overlap") mark(`phase ${phase}`);
          const newCA = s?.ca?.serialNumber !== oldCA;
          const serial = s?.serverCertificate?.serialNumber;
          const reissued = newCA && serial !== undefined && serial !== oldServer;
          if (reissued && (await served()) === serial) mark("new server certificate served");
          if (reissued && condition(last, "Verified")?.status === "True" && s?.verification?.servedSerialNumber === serial) mark("Verified=True on it");
          const imcReady = newCA && condition(lastImc, "Ready")?.status === "True" && lastImc.status?.certificate?.issuerFingerprintSHA256 === s?.ca?.fingerprintSHA256;
          if (imcReady) mark("connection Ready on the new CA");
          if (phase === "Idle" && condition(last, "Ready")?.status === "True") mark("SecureDatabase Ready");
          if (phase === "Idle" && imcReady && done["psql verify-full login"] === undefined) {
            const r = await psqlWith(await clientFiles(), "app");
            lastLogin = r.stderr.trim();
            if (r.code === 0 && r.stdout.trim() === "app") mark("psql verify-full login");
          }
          return phase === "Idle" && RECOVERY_MILESTONES.every((m) => done[m] !== undefined);
        },
        RECOVERY_BOUND_MS,
        200,
      ).then(
        () => true,
        (err: Error) => {
          problems.push(`${err.message}; done: ${JSON.stringify(done)}; phases: ${phases.join(" → ")}; last login: ${lastLogin}; caRotation: ${JSON.stringify(last?.status?.caRotation)}; conditions: ${JSON.stringify(last?.status?.conditions)}`);
          return false;
        },
      );
      console.log(`      PostgreSQL back (pg_ctl start) in ${backAt - restartAt} ms; after it answered: ${Object.entries(done).map(([k, v]) => `${k} +${v} ms`).join("; ")}`);

      // 4. The end state: the new CA alone, everything re-issued from it and served, the old CA's key gone.
      if (recovered) {
        const after = last!;
        const newCA = after.status!.ca!.serialNumber!;
        softly(problems, "phases", () => expectPhaseOrder(phases));
        softly(problems, "caRotation", () => expect(after.status?.caRotation).to.include({ phase: "Idle", oldCASerial: oldCA, newCASerial: newCA }));
        const all = await events();
        softly(problems, "rotation events", () => expect(all.map((e) => e.reason)).to.include.members(["CARotationStarted", "CARotationPromoted", "CARotationRetiredOldCA", "CARotationCompleted"]));
        softly(problems, "promotion only after the server was back", () => expect(all.filter((e) => e.reason === "CARotationPromoted").every((e) => eventSince(e, backAt))).to.equal(true));
        for (const gone of ["db-ca-next", "db-ca-previous"]) {
          const left = await secretNow(gone);
          softly(problems, `${gone} deleted`, () => expect(left).to.equal(undefined));
        }
        const caData = secretBytes((await secretNow("db-ca"))!);
        const server = secretBytes((await secretNow("db-server-tls"))!);
        softly(problems, "server trust bundle", () => expect(server["ca.crt"]!.toString().match(/BEGIN CERTIFICATE/g)).to.have.length(1));
        softly(problems, "server certificate signed by the new CA", () => expect(new X509Certificate(server["tls.crt"]!).verify(new X509Certificate(caData["tls.crt"]!).publicKey)).to.equal(true));
        const servedNow = await served();
        softly(problems, "served certificate", () => expect(servedNow).to.equal(after.status?.serverCertificate?.serialNumber).and.to.not.equal(oldServer));
        softly(problems, "Verified", () => expect(condition(after, "Verified")).to.include({ status: "True", reason: "ServingCurrentCertificate" }));
        softly(problems, "verification.servedSerialNumber", () => expect(after.status?.verification?.servedSerialNumber).to.equal(servedNow));
        // The final client Secret logs in; a client certificate of the retired CA no longer does.
        const login = await psqlWith(await clientFiles(), "app");
        softly(problems, "psql with the final client Secret", () => expect(login.code, login.stderr).to.equal(0));
        // Idle means the server has loaded the bundle without the old CA (ca-rotation.ts): a client certificate of the
        // retired CA must be refused from then on. If it is not, how long until it is.
        const idleAt = backAt + done["phase Idle"]!;
        const oldLogin = await psqlWith(oldClient, "app", await clientFiles());
        const checkedAt = Date.now();
        let refusedAfter: number | undefined;
        await waitFor("the server to refuse the retired CA", async () => (await psqlWith(oldClient, "app", await clientFiles())).code !== 0, 45_000, 250).then(
          () => (refusedAfter = Date.now() - idleAt),
          () => undefined,
        );
        console.log(
          `      a client certificate of the retired CA, ${checkedAt - idleAt} ms after Idle was seen: ${oldLogin.code === 0 ? "still logs in" : `refused (${oldLogin.stderr.trim().split("\n").pop()})`}; ` +
            `refused from ${refusedAfter === undefined ? "never (45 s)" : `${refusedAfter} ms after Idle`}`,
        );
        softly(problems, "psql with the client certificate of the retired CA once the rotation is Idle", () => expect(oldLogin.code, "still logs in: the server has not loaded the bundle without the old CA").to.not.equal(0));
        softly(problems, "the retired CA refused in the end", () => expect(refusedAfter, "never refused").to.not.equal(undefined));
        // Exactly one new CA key, the one announced in db-ca-next; nothing lost.
        const keys = ledger.history(`${ns}/db-ca`);
        softly(problems, "CA keys", () => expect(keys.keys.slice(keys.keys.indexOf(caKeyBefore))).to.deep.equal([caKeyBefore, nextKey]));
        softly(problems, "pending rotations", () => expect(keys.pending).to.equal(0));
        softly(problems, "db-ca key", () => expect(keyFingerprint(caData["tls.key"])).to.equal(nextKey));
      }
      expectSettled(problems, theOperator, recorder);
    } finally {
      recorder.dispose();
      await ensureUp();
    }
  });

  it("2. server certificate rotation asked for while PostgreSQL is down: issued once, reload Unreachable (reported, backing off), never called served; served and Verified once the server is back", async () => {
    await ensureUp();
    // A failed first scenario may still be settling: start from a database that is Ready and Idle.
    await waitFor(
      "the database Ready and Idle",
      async () => {
        const s = await sdbNow();
        return condition(s, "Ready")?.status === "True" && (s.status?.caRotation?.phase ?? "Idle") === "Idle";
      },
      90_000,
      250,
    );
    const recorder = recordUnhandledRejections();
    const theOperator = operator;
    const problems: string[] = [];
    try {
      const before = await sdbNow();
      const oldServer = before.status!.serverCertificate!.serialNumber!;
      const caKeyBefore = await keyOf("db-ca");
      const metricsBefore = await reconcileCounts();

      // 1. PostgreSQL goes; the rotation is asked for at once, so the reload that must follow the new certificate
      //    meets a server that is not there.
      const haltAt = Date.now();
      await pg.halt();
      const haltedAt = Date.now();
      await kubectlOk(["annotate", "sdb", "db", "-n", ns, "mtls.imaging.dev/rotate=pgdown-server-1"]);
      const annotatedAt = Date.now();

      // 2. The outage.
      const statusSerials = new Set<string>();
      const secretSerials = new Set<string>();
      let issuedAfter: number | undefined;
      while (Date.now() - haltedAt < OUTAGE_MS) {
        const at = `+${Date.now() - haltedAt} ms`;
        const s = await sdbNow();
        const serial = s.status?.serverCertificate?.serialNumber;
        if (serial && serial !== oldServer) {
          statusSerials.add(serial);
          issuedAfter ??= Date.now() - annotatedAt;
        }
        const secret = await secretNow("db-server-tls");
        const secretSerial = secret ? normalizeSerial(new X509Certificate(secretBytes(secret)["tls.crt"]!).serialNumber) : "absent";
        if (secretSerial !== oldServer) secretSerials.add(secretSerial);
        const v = condition(s, "Verified");
        if (v?.status === "True" && serial !== oldServer) problems.push(`Verified True at ${at} for serial ${serial} while the server is down: ${v.message}`);
        if (serial && serial !== oldServer && s.status?.verification?.servedSerialNumber === serial) problems.push(`status.verification says serial ${serial} is served at ${at}, but the server is down`);
        if ((await keyOf("db-ca")) !== caKeyBefore) problems.push(`db-ca key changed at ${at}`);
        if ((s.status?.caRotation?.phase ?? "Idle") !== "Idle") problems.push(`a CA rotation (${s.status?.caRotation?.phase}) started at ${at}`);
        if (!operator.hasSynced()) problems.push(`operator caches not synced at ${at}`);
        await sleep(250);
      }
      const restartAt = Date.now();
      const down = await sdbNow();
      const lastSuccess = before.status?.verification?.lastSuccessTime;
      console.log(
        `      PostgreSQL stopped in ${haltedAt - haltAt} ms (last successful verification ${lastSuccess ? `${haltAt - Date.parse(lastSuccess)} ms before` : "never"}); ` +
          `the new server certificate was in status ${issuedAfter ?? "never"} ms after the rotate annotation`,
      );
      const outage = await reportOutage(haltedAt, restartAt, metricsBefore);
      const newServer = down.status!.serverCertificate!.serialNumber!;
      const reloaded = condition(down, "Reloaded");
      const verified = condition(down, "Verified");
      const ready = condition(down, "Ready");
      console.log(`      reported at the end of the outage: Ready ${ready?.status} ${ready?.reason}; Reloaded ${reloaded?.status} ${reloaded?.reason} "${reloaded?.message}"; Verified ${verified?.status} ${verified?.reason} "${verified?.message}"`);
      // Issued exactly once for the token, never said to be served while nobody could check.
      expect(newServer).to.not.equal(oldServer);
      expect([...statusSerials]).to.deep.equal([newServer]);
      expect([...secretSerials]).to.deep.equal([newServer]);
      expect(down.status?.serverCertificate?.lastRotationToken).to.equal("pgdown-server-1");
      expect(down.status?.verification?.servedSerialNumber).to.not.equal(newServer);
      // Reported: the reload and the check, both Unreachable with the refused connection, Ready False, Warning events.
      softly(problems, "Reloaded", () => expect(reloaded).to.include({ status: "False", reason: "Unreachable" }));
      softly(problems, "Reloaded message", () => expect(reloaded?.message).to.match(/^could not reload the server: .*ECONNREFUSED/));
      softly(problems, "Verified", () => expect(verified).to.include({ status: "False", reason: "Unreachable" }));
      softly(problems, "Verified message", () => expect(verified?.message).to.match(/ECONNREFUSED/));
      softly(problems, "Ready", () => expect(ready).to.include({ status: "False", reason: "Unreachable" }));
      const all = await events();
      // (The operator records an identical event once in 10 min and logs every one: the log says it was recorded now.)
      softly(problems, "Warning event for the failed reload", () => expect(all.filter((e) => e.type === "Warning" && e.reason === "Unreachable" && /could not reload the server: .*ECONNREFUSED/.test(e.message))).to.not.be.empty);
      softly(problems, "Warning events during the outage (log)", () => expect(outage.warned.map((l) => l.reason)).to.include.members(["Unreachable", "VerificationFailed"]));
      softly(problems, "ServerCertificateIssued events for the new serial", () => expect(all.filter((e) => e.reason === "ServerCertificateIssued" && e.message.includes(newServer))).to.have.length(1));
      // 3. PostgreSQL back.
      const { backAt, done, mark } = await endOutage(problems, outage, theOperator);
      let last: SecureDatabase | undefined;
      const recovered = await waitFor(
        "the new server certificate served and verified, the connection Ready",
        async () => {
          last = await sdbNow();
          const imc = await imcNow();
          if ((await served()) === newServer) mark("new server certificate served");
          if (condition(last, "Reloaded")?.status === "True") mark("Reloaded=True");
          if (condition(last, "Verified")?.status === "True" && last.status?.verification?.servedSerialNumber === newServer) mark("Verified=True on it");
          if (condition(last, "Ready")?.status === "True") mark("SecureDatabase Ready");
          if (condition(imc, "Ready")?.status === "True" && condition(imc, "ConnectionVerified")?.status === "True") mark("connection Ready");
          if (done["connection Ready"] !== undefined && done["psql verify-full login"] === undefined) {
            const r = await psqlWith(await clientFiles(), "app");
            if (r.code === 0 && r.stdout.trim() === "app") mark("psql verify-full login");
          }
          return Object.keys(done).length >= 6;
        },
        RECOVERY_BOUND_MS,
        200,
      ).then(
        () => true,
        (err: Error) => {
          problems.push(`${err.message}; done: ${JSON.stringify(done)}; conditions: ${JSON.stringify(last?.status?.conditions)}; verification: ${JSON.stringify(last?.status?.verification)}`);
          return false;
        },
      );
      console.log(`      PostgreSQL back (pg_ctl start) in ${backAt - restartAt} ms; after it answered: ${Object.entries(done).map(([k, v]) => `${k} +${v} ms`).join("; ")}`);

      if (recovered) {
        const after = last!;
        softly(problems, "not re-issued again after the outage", () => expect(after.status?.serverCertificate?.serialNumber).to.equal(newServer));
        softly(problems, "Verified", () => expect(condition(after, "Verified")).to.include({ status: "True", reason: "ServingCurrentCertificate" }));
        const servedNow = await served();
        softly(problems, "served certificate", () => expect(servedNow).to.equal(newServer));
        const secret = (await secretNow("db-server-tls"))!;
        softly(problems, "rotation token on the Secret", () => expect(secret.metadata.annotations?.["mtls.imaging.dev/rotation-token"]).to.equal("pgdown-server-1"));
        const issuedEvents = (await events()).filter((e) => e.reason === "ServerCertificateIssued" && eventSince(e, haltAt));
        softly(problems, "one ServerCertificateIssued since the stop", () => expect(issuedEvents.map((e) => e.message)).to.have.length(1));
        const login = await psqlWith(await clientFiles(), "app");
        softly(problems, "psql with the client Secret", () => expect(login.code, login.stderr).to.equal(0));
        const caKey = await keyOf("db-ca");
        softly(problems, "db-ca key", () => expect(caKey).to.equal(caKeyBefore));
      }
      expectSettled(problems, theOperator, recorder);
    } finally {
      recorder.dispose();
      await ensureUp();
    }
  });
});
