/**
 * What the PostgreSQL-down scenarios share (chaos, issue 8, item 4): a real PostgreSQL server behind a SecureDatabase
 * `db` and an ImagingConnection `app`, the operator in this process with its log lines kept, every version of every
 * Secret it manages fed to a CA key ledger, and every connection the operator opens to the server counted.
 *
 * The connections are counted by wrapping pg's Client.prototype.connect and sorted by the operator function that
 * opened them (verification, reload, new-CA probe, login check): that is how the retries during an outage are
 * counted, alongside the reconcile metric, the operator's log lines and the status writes in the audit log.
 */
import { expect } from "chai";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "pg";
import { OWNER_NAMESPACE_LABEL, type ImagingConnection, type SecureDatabase } from "../../src/api/types";
import { silentLogger } from "../../src/log";
import type { Operator } from "../../src/operator";
import { RESOURCES } from "../../src/kube/resources";
import { RestClient } from "../../src/kube/rest";
import { secretBytes, type SecretObject } from "../../src/kube/secrets";
import { Informer, type KubeObject } from "../../src/runtime/informer";
import { keepingLogger, servedServerCertificate, type LogEntry } from "./chaos";
import { OPERATOR_USER } from "./controlplane";
import { controlPlane } from "./hooks";
import { asDatabaseCASecret, CAKeyLedger, keyFingerprint, type SecretLike } from "./invariants";
import { getJson, kubectlOk, waitForCondition } from "./kubectl-json";
import { imagingConnectionYaml } from "./manifests";
import { caKeySecret, TEST_KEY_NAMESPACE } from "./operator";
import { startOperatorWithDatabase } from "./operator-fixture";
import { psql } from "./postgres";
import { waitFor } from "./process";

export const OUTAGE_MS = 25_000;
/** From PostgreSQL answering again to everything done (generous: correctness, not speed, is tested here). */
export const RECOVERY_BOUND_MS = 120_000;
/** The "kubelet" lays the server's files down this late: the server cannot have the new bundle when it is stopped. */
const SYNC_DELAY_MS = 2000;
/**
 * Bounds on the retries during the outage, from the operator's own rule (src/reconcilers/verification-schedule.ts):
 * a failed check is retried after 1 s, then after a quarter of how long checks have been failing (at most 60 s). In
 * 25 s that is about a dozen tries, and once checks have failed for 16 s, none sooner than 4 s after the previous.
 */
const MAX_TRIES = 16;
const LATE_MS = 16_000;
const LATE_MIN_GAP_MS = 3500;

interface EventList {
  items: { type: string; reason: string; message: string; firstTimestamp?: string; lastTimestamp?: string; count?: number }[];
}

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
/** How many of each: `{ "verification": 3, "reload": 1 }`. */
const tally = (keys: readonly string[]) => keys.reduce<Record<string, number>>((acc, k) => ({ ...acc, [k]: (acc[k] ?? 0) + 1 }), {});
const countBy = (attempts: readonly ConnectAttempt[]) => tally(attempts.map((a) => a.kind));
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
  const late = times.slice(1).flatMap((t, i) => {
    const gap = t - times[i]!;
    return times[i]! >= LATE_MS && gap < LATE_MIN_GAP_MS ? [`+${t} ms, ${gap} ms after the previous one`] : [];
  });
  if (late.length > 0) {
    problems.push(`tries ${LATE_MS / 1000} s into the outage closer together than ${LATE_MIN_GAP_MS} ms: ${late.join("; ")}`);
  }
  return problems;
}

/** Runs an expectation, keeping its failure instead of stopping: the recovery still runs and is measured. */
export function softly(problems: string[], what: string, check: () => void): void {
  try {
    check();
  } catch (err) {
    problems.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

const logsBetween = (logs: readonly LogEntry[], from: number, to: number, message: string) =>
  logs.filter((l) => l.message.startsWith(message) && Date.parse(String(l.at)) >= from && Date.parse(String(l.at)) < to);



export type PostgresOutageTestbed = Awaited<ReturnType<typeof startPostgresOutageTestbed>>;

/**
 * The database `db` (its "kubelet" SYNC_DELAY_MS late, CA propagation delay 2 s) and the connection `app` Ready,
 * the server restarted once for the mounted server Secret, a verify-full login checked; from then on every
 * connection the operator opens to the server is counted.
 */
export async function startPostgresOutageTestbed(name: string) {
  const admin = new RestClient(controlPlane().kubeConfig);
  const logs: LogEntry[] = [];
  const ledger = new CAKeyLedger();
  let secretsInformer: Informer<SecretLike & KubeObject> | undefined;
  let connections: ReturnType<typeof countConnections> | undefined;
  const env = await startOperatorWithDatabase({
    name,
    databases: [{ roles: ["app"], syncDelayMs: SYNC_DELAY_MS }],
    beforeOperator: async ({ ns }) => {
      // Every version of every CA Secret the operator keeps for this namespace goes through the CA key ledger.
      const watch = { type: RESOURCES.Secret, namespaces: [TEST_KEY_NAMESPACE], labelSelector: `${OWNER_NAMESPACE_LABEL}=${ns}` };
      secretsInformer = new Informer<SecretLike & KubeObject>(admin, watch, silentLogger());
      secretsInformer.on((event, obj) => ledger.observe(asDatabaseCASecret(obj), event === "delete"));
      secretsInformer.start();
      await secretsInformer.synced;
      ledger.track(`${ns}/db-ca`);
    },
    operator: { log: keepingLogger(logs) },
    secureDatabase: { access: [{ users: ["app"] }], patch: { spec: { ca: { propagationDelay: "2s" } } } },
  });
  const { cp, ns, pg } = env;
  const syncer = env.db.syncer;
  const stop = async () => {
    connections?.dispose();
    await env.stop();
    secretsInformer?.stop();
  };

  const sdbNow = () => admin.get<SecureDatabase>(RESOURCES.SecureDatabase, { namespace: ns, name: "db" });
  const imcNow = () => admin.get<ImagingConnection>(RESOURCES.ImagingConnection, { namespace: ns, name: "app" });
  const secretNow = (name: string) => admin.getOptional<SecretObject>(RESOURCES.Secret, { namespace: ns, name });
  /** A CA Secret of the database (`db-ca`, `db-ca-next`, `db-ca-previous`), where the operator keeps it. */
  const caSecretNow = (name: string) => admin.getOptional<SecretObject>(RESOURCES.Secret, caKeySecret(ns, name));
  const keyOf = async (name: string) => {
    const s = await caSecretNow(name);
    return s ? keyFingerprint(secretBytes(s)["tls.key"]) : "absent";
  };
  const reconcileCounts = async () => {
    const runs = await env.operator.metrics.registry.getSingleMetric("imaging_mtls_reconcile_total")?.get();
    const errors = await env.operator.metrics.registry.getSingleMetric("imaging_mtls_reconcile_errors_total")?.get();
    // Summed over every other label: the error counter is also per reason.
    const of = (m: typeof runs, kind: string) =>
      (m?.values ?? []).filter((v) => v.labels.kind === kind).reduce((sum, v) => sum + v.value, 0);
    return { runs: of(runs, "SecureDatabase"), errors: of(errors, "SecureDatabase") };
  };
  const events = async (): Promise<EventList["items"]> =>
    (await getJson<EventList>(["get", "events", "-n", ns, "--field-selector", "involvedObject.name=db"])).items;
  /** Events are stamped in whole seconds. */
  const eventSince = (e: EventList["items"][number], t: number) =>
    Date.parse(e.lastTimestamp ?? e.firstTimestamp ?? "") >= Math.floor(t / 1000) * 1000;
  /** The operator's status writes to the SecureDatabase between two times (audit log). */
  const statusWrites = async (from: number, to: number) =>
    (await cp.auditEvents(OPERATOR_USER, new Date(from))).filter(
      (e) =>
        e.objectRef?.resource === "securedatabases" &&
        e.objectRef.subresource === "status" &&
        e.verb === "patch" &&
        new Date(e.requestReceivedTimestamp).getTime() < to,
    ).length;
  const served = async () => (await servedServerCertificate("127.0.0.1", pg.port).catch(() => undefined))?.serialNumber;

  /** psql, sslmode=verify-full, with a client Secret's files (the root certificate from `rootFrom` when given). */
  const psqlWith = async (data: Record<string, Buffer>, user: string, rootFrom?: Record<string, Buffer>) => {
    const dir = await mkdtemp(join(tmpdir(), "pgdown-client-"));
    try {
      await writeFile(join(dir, "tls.crt"), data["tls.crt"]!, { mode: 0o600 });
      await writeFile(join(dir, "tls.key"), data["tls.key"]!, { mode: 0o600 });
      await writeFile(join(dir, "ca.crt"), (rootFrom ?? data)["ca.crt"]!, { mode: 0o600 });
      const files = { sslcert: join(dir, "tls.crt"), sslkey: join(dir, "tls.key"), sslrootcert: join(dir, "ca.crt") };
      return await psql({ host: "localhost", port: pg.port, user, sslmode: "verify-full", ...files, command: "SELECT current_user" });
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

  /**
   * What the operator did against the down server, printed; the tries (reconcile passes that connected) returned.
   * Warnings count from `haltAt`, when the stop began: a try during `pg_ctl stop` is already refused, and the
   * reconciler records the same failure once, so its event may predate `haltedAt`.
   */
  const reportOutage = async (haltAt: number, haltedAt: number, restartAt: number, before: { runs: number; errors: number }) => {
    const after = await reconcileCounts();
    const during = between(connections!.attempts, haltedAt, restartAt);
    const ours = during.filter((a) => a.user === "postgres");
    const times = tries(ours, haltedAt);
    const warned = logsBetween(logs, haltAt, restartAt, "event").filter((l) => l.level === "warn");
    console.log(
      `      outage ${restartAt - haltedAt} ms: ` +
        `the SecureDatabase reconciler opened ${ours.length} connections ${JSON.stringify(countBy(ours))} in ${times.length} tries, ` +
        `others ${during.length - ours.length} ${JSON.stringify(countBy(during.filter((a) => a.user !== "postgres")))}; ` +
        `reconciles ${after.runs - before.runs} (failed ${after.errors - before.errors}); ` +
        `status writes ${await statusWrites(haltedAt, restartAt)}; ` +
        `log lines: ${logsBetween(logs, haltedAt, restartAt, "repeated reload failed").length} "repeated reload failed", ` +
        `warning events ${JSON.stringify(tally(warned.map((l) => String(l.reason))))}`,
    );
    console.log(`      tries at (ms after the stop): ${times.join(", ")}; gaps ${gaps(times).join(", ")}`);
    return { times, errors: after.errors - before.errors, warned };
  };

  /** The end of a scenario: no key lost, the same operator with its caches synced, nothing rejected unhandled, no problem noted. */
  const expectSettled = (problems: string[], theOperator: Operator, recorder: { rejections: unknown[] }) => {
    expect(ledger.violations, ledger.violations.join("\n")).to.deep.equal([]);
    expect(env.operator).to.equal(theOperator);
    expect(env.operator.hasSynced()).to.equal(true);
    expect(recorder.rejections.map(String)).to.deep.equal([]);
    expect(problems, problems.join("\n")).to.deep.equal([]);
  };

  /** The end of every outage: the operator backed off, no reconcile threw, it is the same operator; then PostgreSQL is back. */
  const endOutage = async (problems: string[], outage: { times: number[]; errors: number }, theOperator: Operator) => {
    softly(problems, "retries against the down server", () => expect(backoffProblems(outage.times)).to.deep.equal([]));
    expect(outage.times.length, "the operator never tried the server while it was down").to.be.greaterThan(0);
    expect(outage.errors, "reconciles that failed (threw) while the server was down").to.equal(0);
    expect(env.operator).to.equal(theOperator);
    await pg.start();
    const backAt = Date.now();
    const done: Record<string, number> = {};
    const mark = (what: string) => {
      done[what] ??= Date.now() - backAt;
    };
    return { backAt, done, mark };
  };

  try {
    await kubectlOk(["apply", "-f", "-"], imagingConnectionYaml(ns, "app", "app"));
    await waitForCondition<ImagingConnection>("imc", ns, "app", "Ready", (c) => c.status === "True", 60_000);
    // Mounting the server Secret changed the StatefulSet's pod template: the "kubelet" restarts the server once.
    await waitFor("the server restarted for the mounted server Secret", async () => syncer.restarts >= 1, 60_000);
    await ensureUp();
    expect((await psqlWith(await clientFiles(), "app")).stdout.trim()).to.equal("app");
    connections = countConnections(pg.port);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    ns,
    pg,
    get operator(): Operator {
      return env.operator;
    },
    logs,
    ledger,
    sdbNow,
    imcNow,
    secretNow,
    caSecretNow,
    keyOf,
    reconcileCounts,
    events,
    eventSince,
    served,
    psqlWith,
    clientFiles,
    ensureUp,
    reportOutage,
    expectSettled,
    endOutage,
    stop,
  };
}

/**
 * Starts the testbed before the tests of the calling describe and stops it after them; the testbed, once started.
 */
export function usePostgresOutageTestbed(name: string): () => PostgresOutageTestbed {
  let testbed: PostgresOutageTestbed | undefined;
  before(async function () {
    this.timeout(180_000);
    testbed = await startPostgresOutageTestbed(name);
  });
  after(async function () {
    this.timeout(60_000);
    await testbed?.stop();
  });
  return () => {
    if (!testbed) throw new Error("the PostgreSQL outage testbed did not start");
    return testbed;
  };
}
