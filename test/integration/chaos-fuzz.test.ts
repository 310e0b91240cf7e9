import { expect } from "chai";
import { Writable } from "node:stream";
import v8 from "node:v8";
import vm from "node:vm";
import winston from "winston";
import { RESOURCES } from "../../src/kube/resources";
import { ApiError, RestClient, resourcePath } from "../../src/kube/rest";
import type { Operator } from "../../src/operator";
import { generateCA } from "../../src/pki";
import { controlPlane } from "../support/hooks";
import {
  CAKeyLedger,
  condition,
  duplicatedManagedBlocks,
  collectGarbage,
  mountsMatchStatus,
  orphanedMounts,
  orphanedSecrets,
  readState,
  secretDigest,
  type ClusterState,
  type CustomObject,
} from "../support/invariants";
import { FUZZ_API_VERSION, fuzzCases, fuzzGrants, short, type FuzzCase, type FuzzContext, type Kind } from "../support/fuzz-generators";
import { startOperator } from "../support/operator";
import { freePort, waitFor } from "../support/process";
import { SECURE_DATABASE_OPT_IN_ANNOTATION } from "../../src/api/opt-in";

/**
 * Chaos item 5: 500 random and adversarial SecureDatabases and ImagingConnections, generated from one seed, applied
 * as the admin to the real API server with the operator running in this process. Each object is either refused at
 * admission (and the API server's message names the field) or ends with a clear Ready condition for its current
 * generation, and no reconcile of it keeps failing; the operator never crashes (no unhandled rejection, and a
 * control database and connection still get Ready at the end), leaves what is not its own alone (other Secrets, the
 * CA key of a database nobody fuzzed), leaves no mount behind and keeps status true to the mounts, lets every object
 * go when deleted (in two waves: what neither works nor holds a mount first, then the rest, which must not notice),
 * restores every PostgreSQL ConfigMap byte for byte, and its heap does not grow when the same 500 objects are
 * applied and deleted a second time.
 *
 * The CRDs declare no x-kubernetes-preserve-unknown-fields, so wrong types (numbers as strings, objects or arrays
 * for strings) must all be refused at admission; unknown fields are refused with fieldValidation=Strict and pruned
 * otherwise (each case picks one).
 *
 * CHAOS_SEED overrides the seed; every failure names the case index, which regenerates the same object.
 */
const SEED = Number(process.env.CHAOS_SEED ?? 20261123);
const COUNT = 500;
const HEAP_GROWTH_LIMIT = 20 * 2 ** 20;
const CAMEL_CASE = /^[A-Z][A-Za-z0-9]*$/;

interface Admission {
  accepted: boolean;
  message?: string;
  status?: number;
}

const describeCase = (c: FuzzCase): string => `#${c.index} ${c.kind} ${short(c.name)}${c.strict ? " (fieldValidation=Strict)" : ""}: ${c.mutations.map((m) => m.label).join("; ") || "no mutation"}`;
const stripIndexes = (s: string): string => s.replace(/\[\d+\]/g, "");

/** Why an object's status is not (yet) a clear answer for its current generation, or undefined. */
function unclear(o: CustomObject): string | undefined {
  const generation = o.metadata.generation;
  if (o.status?.observedGeneration !== generation) return `status.observedGeneration ${o.status?.observedGeneration} != metadata.generation ${generation}`;
  const ready = condition(o, "Ready");
  if (!ready) return "no Ready condition";
  if (!["True", "False", "Unknown"].includes(ready.status)) return `Ready status ${ready.status}`;
  if (!CAMEL_CASE.test(ready.reason)) return `Ready reason ${JSON.stringify(ready.reason)} is not CamelCase`;
  if (!ready.message?.trim()) return "Ready message is empty";
  if (ready.observedGeneration !== generation) return `Ready.observedGeneration ${ready.observedGeneration} != ${generation}`;
  for (const c of o.status?.conditions ?? []) if (!c.message?.trim() || !CAMEL_CASE.test(c.reason)) return `condition ${c.type} has reason ${JSON.stringify(c.reason)} / message ${JSON.stringify(c.message)}`;
  return undefined;
}

/** The heap after forcing full collections (gc is exposed at runtime: mocha's --expose-gc cannot be set per file). */
async function settledHeap(): Promise<number> {
  v8.setFlagsFromString("--expose-gc");
  const gc = vm.runInNewContext("gc") as () => void;
  for (let k = 0; k < 4; k++) {
    gc();
    await new Promise((r) => setTimeout(r, 100));
  }
  return process.memoryUsage().heapUsed;
}

const MiB = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

/** The CAST workloads opt in to every connection of the namespace (docs/security.md, "Opt-in"). */
const OPT_IN = { "mtls.imaging.dev/imaging-connections": "*" };

/**
 * The opt-in of a ConfigMap or brought CA Secret, as its owner would write it: every SecureDatabase generated to use
 * it (and the fixed ones), so that the fuzz judges the objects rather than stopping at OptInMissing.
 */
function optInFor(cases: readonly FuzzCase[], uses: (spec: Record<string, unknown>) => boolean, fixed: string[] = []): Record<string, string> {
  const names = cases.filter((c) => c.kind === "SecureDatabase" && uses(((c.body as { spec?: Record<string, unknown> }).spec ?? {}))).map((c) => c.name);
  return { [SECURE_DATABASE_OPT_IN_ANNOTATION]: [...new Set([...fixed, ...names])].join(",") };
}
const namesConfigMap = (name: string) => (spec: Record<string, unknown>) => (spec.postgres as { configMapName?: unknown } | undefined)?.configMapName === name;

describe("Chaos: 500 fuzzed SecureDatabases and ImagingConnections against the real API server (seeded)", function () {
  this.timeout(300_000);
  let ns: string;
  let admin: RestClient;
  let operator: Operator;
  let cases: FuzzCase[];
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => rejections.push(reason);
  /** Last error the operator logged per resource ("SecureDatabase/f12"), and how many. */
  const operatorErrors = new Map<string, { count: number; last: string }>();
  const originalConfigMaps = new Map<string, Record<string, string>>();
  const weirdConfigMaps = new Set<string>();
  const untouchable = new Map<string, string>();
  const ledger = new CAKeyLedger();
  const admissions: Admission[][] = [];
  const heap: Record<string, number> = {};
  const t0 = Date.now();

  const apply = async (c: FuzzCase): Promise<Admission> => {
    const type = RESOURCES[c.kind];
    try {
      await admin.request("POST", resourcePath(type, { namespace: ns }), { body: c.body, query: { fieldValidation: c.strict ? "Strict" : "Warn", fieldManager: "chaos-fuzz" } });
      return { accepted: true };
    } catch (err) {
      if (err instanceof ApiError) return { accepted: false, status: err.status, message: err.message };
      throw err;
    }
  };

  const inBatches = async <T>(items: readonly T[], width: number, fn: (item: T) => Promise<void>): Promise<void> => {
    let next = 0;
    await Promise.all(Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }));
  };

  const state = (): Promise<ClusterState> => readState(admin, ns);
  const operatorIdle = (): boolean => [operator.secureDatabaseQueue, operator.imagingConnectionQueue, operator.workloadQueue].every((q) => q.depth === 0 && q.inFlight === 0);
  /** Just the custom objects: cheap enough to poll every second while the operator works. */
  const customObjects = async (): Promise<Record<Kind, CustomObject[]>> => {
    const [SecureDatabase, ImagingConnection] = await Promise.all([admin.list<CustomObject>(RESOURCES.SecureDatabase, ns), admin.list<CustomObject>(RESOURCES.ImagingConnection, ns)]);
    return { SecureDatabase: SecureDatabase.items, ImagingConnection: ImagingConnection.items };
  };
  /** Creates a fixture as the test (RestClient.create would write as the operator's field manager). */
  const create = (type: (typeof RESOURCES)[keyof typeof RESOURCES], body: object) => admin.request("POST", resourcePath(type, { namespace: ns }), { body, query: { fieldManager: "chaos-fuzz" } });

  /** Polls until every accepted case has a clear status, or nothing changed for `stallMs`; what is left unclear. */
  const converge = async (accepted: FuzzCase[], deadlineMs: number, stallMs: number): Promise<Map<FuzzCase, string>> => {
    const start = Date.now();
    let lastKey = "";
    let lastChange = Date.now();
    for (;;) {
      const byKind = await customObjects();
      const open = new Map<FuzzCase, string>();
      for (const c of accepted) {
        const o = byKind[c.kind].find((x) => x.metadata.name === c.name);
        const why = o ? unclear(o) : "the object is gone";
        if (why) open.set(c, why);
      }
      const key = [...open.entries()].map(([c, w]) => `${c.index}:${w}`).join("|");
      if (key !== lastKey) {
        lastKey = key;
        lastChange = Date.now();
      }
      // Stalled means: nothing changed for stallMs and the operator has nothing queued or running.
      if (open.size === 0 || (Date.now() - lastChange > stallMs && operatorIdle()) || Date.now() - start > deadlineMs) return open;
      await new Promise((r) => setTimeout(r, 1000));
    }
  };

  /** Deletes the cases' objects and waits for them to be gone; those still there (with finalizers) after all. */
  const deleteAndWait = async (list: FuzzCase[], deadlineMs: number): Promise<string[]> => {
    await inBatches(list, 16, async (c) => admin.delete(RESOURCES[c.kind], { namespace: ns, name: c.name }));
    const start = Date.now();
    let lastKey = "";
    let lastChange = Date.now();
    for (;;) {
      const byKind = await customObjects();
      const stuck: string[] = [];
      for (const c of list) {
        const o = byKind[c.kind].find((x) => x.metadata.name === c.name);
        if (o) stuck.push(`${describeCase(c)} still exists (deletionTimestamp ${o.metadata.deletionTimestamp}, finalizers ${JSON.stringify(o.metadata.finalizers)}, Ready ${short(condition(o, "Ready")?.reason)}); operator: ${operatorErrors.get(`${c.kind}/${c.name}`)?.last ?? "no error logged"}`);
      }
      if (stuck.join() !== lastKey) {
        lastKey = stuck.join();
        lastChange = Date.now();
      }
      if (stuck.length === 0 || Date.now() - start > deadlineMs || (Date.now() - lastChange > 20_000 && operatorIdle())) return stuck;
      await new Promise((r) => setTimeout(r, 1000));
    }
  };

  /** Until the operator has nothing to do (its queues idle twice, a second apart). */
  const quiet = async (): Promise<void> => {
    for (let k = 0; k < 2; k++) {
      await new Promise((r) => setTimeout(r, 1000));
      await Promise.all([operator.secureDatabaseQueue.idle(), operator.imagingConnectionQueue.idle(), operator.workloadQueue.idle()]);
    }
  };

  /**
   * An untouchable Secret: base-db's CA where the operator keeps CA keys (its name in the namespace is free: a fuzzed
   * database may take it), the others in the namespace.
   */
  const untouchableNow = (s: ClusterState, name: string) => (name === "base-db-ca" ? s.caSecrets : s.secrets).find((x) => x.metadata.name === name);

  /** Untouchable Secrets unchanged and the base database's CA key never replaced. */
  const safety = async (): Promise<string[]> => {
    const s = await state();
    ledger.observeState(s);
    const out = [...ledger.violations];
    for (const [name, digest] of untouchable) {
      const now = secretDigest(untouchableNow(s, name));
      if (now !== digest) {
        const x = untouchableNow(s, name);
        out.push(`Secret ${name}, which no fuzzed object owns, changed (digest ${digest} → ${now}; labels now ${JSON.stringify(x?.metadata.labels)}, keys ${Object.keys(x?.data ?? {}).join(",")})`);
      }
    }
    return out;
  };

  /** A violation naming an object, with the fuzz case behind it and its Ready condition now. */
  const explain = (violation: string, s: ClusterState): string => {
    const m = /^(SecureDatabase|ImagingConnection) (\S+) /.exec(violation);
    const c = m && cases.find((x) => x.kind === m[1] && x.name === m[2]);
    if (!c) return violation;
    const o = (c.kind === "SecureDatabase" ? s.secureDatabases : s.imagingConnections).find((x) => x.metadata.name === c.name);
    const ready = condition(o, "Ready");
    return `${violation} [${describeCase(c)}; now Ready=${ready?.status} ${ready?.reason}: ${short(ready?.message)}]`;
  };

  const operatorErrorsFor = (list: string[]): string[] => list.map((r) => `${r}: ${operatorErrors.get(r)?.count ?? 0} reconcile error(s), last: ${operatorErrors.get(r)?.last ?? "-"}`);

  const runBatch = async (batch: number): Promise<{ accepted: FuzzCase[]; holding: Set<FuzzCase>; unclear: string[]; misnamed: string[]; reasons: Map<string, number> }> => {
    // Per-object PostgreSQL ConfigMaps as the user had them (back to these bytes after each deletion).
    await inBatches(cases.filter((c) => c.configMap), 16, async (c) => {
      const existing = await admin.getOptional<{ data?: Record<string, string> }>(RESOURCES.ConfigMap, { namespace: ns, name: c.configMap! });
      if (!existing) await create(RESOURCES.ConfigMap, { metadata: { name: c.configMap, annotations: optInFor(cases, namesConfigMap(c.configMap!)) }, data: originalConfigMaps.get(c.configMap!) });
    });
    const results: Admission[] = new Array(cases.length);
    const tApply = Date.now();
    await inBatches(cases, 8, async (c) => {
      results[c.index] = await apply(c);
    });
    admissions[batch] = results;
    const accepted = cases.filter((c) => results[c.index]!.accepted);
    const misnamed: string[] = [];
    const byField = new Map<string, { count: number; example: string }>();
    for (const c of cases) {
      const r = results[c.index]!;
      if (r.accepted) continue;
      const message = stripIndexes(r.message ?? "");
      const named = c.mutations.flatMap((m) => m.names).find((n) => message.includes(n));
      if (!named) misnamed.push(`${describeCase(c)} → ${r.status} ${short(r.message?.slice(0, 400))}`);
      const field = named ?? "(no mutated field named)";
      const entry = byField.get(field) ?? { count: 0, example: (r.message ?? "").replace(/^POST \S+: /, "").slice(0, 150) };
      entry.count++;
      byField.set(field, entry);
    }
    const appliedMs = Date.now() - tApply;
    const open = await converge(accepted, 150_000, 12_000);
    const s = await state();
    const reasons = new Map<string, number>();
    for (const c of accepted) {
      const o = (c.kind === "SecureDatabase" ? s.secureDatabases : s.imagingConnections).find((x) => x.metadata.name === c.name);
      const ready = condition(o, "Ready");
      const k = `${c.kind} Ready=${ready?.status ?? "-"} ${ready?.reason ?? "(no status)"}`;
      reasons.set(k, (reasons.get(k) ?? 0) + 1);
    }
    console.log(`      batch ${batch + 1}: applied ${cases.length} in ${appliedMs} ms: ${cases.length - accepted.length} rejected at admission, ${accepted.length} accepted (${accepted.filter((c) => c.kind === "SecureDatabase").length} SecureDatabases, ${accepted.filter((c) => c.kind === "ImagingConnection").length} ImagingConnections); statuses settled ${Date.now() - tApply} ms after the first apply`);
    if (batch === 0) {
      console.log("        refused at admission, by the mutated field the API server named (one example message each):");
      for (const [field, e] of [...byField.entries()].sort((a, b) => b[1].count - a[1].count)) console.log(`        ${String(e.count).padStart(3)} × ${field}: ${JSON.stringify(e.example)}`);
      console.log("        reconciled, by Ready condition:");
    }
    for (const [k, n] of [...reasons.entries()].sort()) console.log(`        ${String(n).padStart(3)} × ${k}`);
    const unclearList = [...open.entries()].map(([c, why]) => `${describeCase(c)}: ${why}; operator: ${operatorErrors.get(`${c.kind}/${c.name}`)?.last ?? "no error logged"}`);
    // What works or holds a mount: these survive the first deletion wave, which must not disturb them.
    const holding = new Set(
      accepted.filter((c) => {
        const o = (c.kind === "SecureDatabase" ? s.secureDatabases : s.imagingConnections).find((x) => x.metadata.name === c.name);
        const workloads = Array.isArray(o?.status?.workloads) ? (o.status.workloads as { state?: string }[]) : [];
        return condition(o, "Ready")?.status === "True" || condition(o, "WorkloadPatched")?.status === "True" || workloads.some((w) => w.state === "Patched");
      }),
    );
    return { accepted, holding, unclear: unclearList, misnamed, reasons };
  };

  let batch1: Awaited<ReturnType<typeof runBatch>>;

  before(async function () {
    this.timeout(120_000);
    process.on("unhandledRejection", onRejection);
    const cp = controlPlane();
    ns = await cp.createNamespace("fuzz");
    const otherNs = await cp.createNamespace("fuzz-other");
    admin = new RestClient(cp.kubeConfig);
    const closedPort = await freePort();
    const [valid, other, provided] = await Promise.all([
      generateCA({ commonName: "allowlisted CA", duration: 24 * 3600_000, now: new Date() }),
      generateCA({ commonName: "another allowlisted CA", duration: 24 * 3600_000, now: new Date() }),
      generateCA({ commonName: "brought CA", duration: 24 * 3600_000, now: new Date() }),
    ]);
    const ctx: FuzzContext = { ns, otherNs, closedPort, validCertPem: valid.certPem, otherCertPem: other.certPem };
    const tGen = Date.now();
    cases = fuzzCases(ctx, { seed: SEED, count: COUNT });
    console.log(`      generated ${cases.length} cases from seed ${SEED} in ${Date.now() - tGen} ms (${cases.filter((c) => c.kind === "SecureDatabase").length} SecureDatabases, ${cases.filter((c) => c.mutations.length === 0).length} unmutated)`);

    // What the objects refer to: ConfigMaps (plain, shared, adversarial), Secrets that are not theirs, workloads.
    const conf = "listen_addresses = '*'\nmax_connections = 100\n";
    const hba = "local all all trust\nhost all all 0.0.0.0/0 scram-sha-256\n";
    for (const c of cases) if (c.configMap) originalConfigMaps.set(c.configMap, { "postgresql.conf": conf, "pg_hba.conf": hba });
    const BEGIN = "# BEGIN mtls.imaging.dev managed block (do not edit)";
    const END = "# END mtls.imaging.dev managed block";
    const weirdData: Record<string, string>[] = [
      { "postgresql.conf": `${conf}${BEGIN}\nssl = off\n${END}\n`, "pg_hba.conf": hba },
      { "postgresql.conf": `${conf}${BEGIN}\nssl = on\n${END}\n${BEGIN}\nssl = off\n${END}\n`, "pg_hba.conf": hba },
      { "postgresql.conf": `${conf}${BEGIN}\nssl = on\n`, "pg_hba.conf": `${END}\n${hba}` },
      { "postgresql.conf": conf.replace(/\n/g, "\r\n"), "pg_hba.conf": `\uFEFF${hba}\u0000\n` },
      { "postgresql.conf": `${conf}${"# padding\n".repeat(90_000)}`, "pg_hba.conf": hba },
      {},
      { "postgresql.conf": "include 'other.conf'\nssl = on # mine\n\u202Eevil = 1\n", "pg_hba.conf": "hostssl all all 0.0.0.0/0 trust\n" },
    ];
    for (const [k, data] of weirdData.entries()) {
      await create(RESOURCES.ConfigMap, { metadata: { name: `pg-weird-${k}`, annotations: optInFor(cases, namesConfigMap(`pg-weird-${k}`)) }, data });
      weirdConfigMaps.add(`pg-weird-${k}`);
    }
    await create(RESOURCES.ConfigMap, { metadata: { name: "pg-shared", annotations: optInFor(cases, namesConfigMap("pg-shared"), ["base-db"]) }, data: { "postgresql.conf": conf, "pg_hba.conf": hba } });
    await create(RESOURCES.ConfigMap, { metadata: { name: "pg-control", annotations: optInFor(cases, namesConfigMap("pg-control"), ["control-db"]) }, data: { "postgresql.conf": conf, "pg_hba.conf": hba } });
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    await create(RESOURCES.Secret, { metadata: { name: "foreign-opaque" }, data: { hello: b64("world") } });
    await create(RESOURCES.Secret, { metadata: { name: "foreign-tls" }, type: "kubernetes.io/tls", data: { "tls.crt": b64(other.certPem), "tls.key": b64(other.keyPkcs8Pem) } });
    const bringsProvidedCA = (spec: Record<string, unknown>) => (spec.ca as { secretName?: unknown } | undefined)?.secretName === "provided-ca";
    await create(RESOURCES.Secret, { metadata: { name: "provided-ca", annotations: optInFor(cases, bringsProvidedCA) }, type: "kubernetes.io/tls", data: { "tls.crt": b64(provided.certPem), "tls.key": b64(provided.keyPkcs8Pem) } });
    await create(RESOURCES.Secret, { metadata: { name: "garbage-ca" }, type: "kubernetes.io/tls", data: { "tls.crt": b64("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"), "tls.key": b64("\u0000garbage") } });
    const template = (app: string, containers: object[], volumes: object[] = []) => ({ metadata: { labels: { app } }, spec: { containers, volumes } });
    await create(RESOURCES.Deployment, { metadata: { name: "cast-app", annotations: OPT_IN }, spec: { selector: { matchLabels: { app: "cast-app" } }, template: template("cast-app", [{ name: "app", image: "cast/imaging-services" }, { name: "sidecar", image: "busybox" }]) } });
    await create(RESOURCES.Deployment, {
      metadata: { name: "foreign-vol", annotations: OPT_IN },
      spec: {
        selector: { matchLabels: { app: "foreign-vol" } },
        template: template("foreign-vol", [{ name: "app", image: "x", env: [{ name: "PGSSLMODE", value: "disable" }, { name: "CASTCONNECTIONEXTRAPARAMETERS", value: "/mine.ini" }], volumeMounts: [{ name: "cast-imaging-mtls-ini", mountPath: "/etc/cast-imaging/mtls-ini" }] }], [{ name: "cast-imaging-mtls-ini", configMap: { name: "theirs" } }]),
      },
    });
    await create(RESOURCES.StatefulSet, { metadata: { name: "analysis-node", annotations: OPT_IN }, spec: { serviceName: "analysis-node", selector: { matchLabels: { app: "analysis-node" } }, template: template("analysis-node", [{ name: "analysis-node", image: "cast/analysis-node" }]) } });
    await create(RESOURCES.StatefulSet, { metadata: { name: "pg-sts" }, spec: { serviceName: "pg-sts", selector: { matchLabels: { app: "pg-sts" } }, template: template("pg-sts", [{ name: "postgres", image: "postgres:15" }]) } });

    // The operator in this process, with its error lines kept for the report.
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString("utf8").split("\n")) {
          if (!line.trim()) continue;
          try {
            const entry = JSON.parse(line) as { level?: string; message?: string; resource?: string; error?: string; reason?: string };
            if (entry.level !== "error" || !entry.resource) continue;
            const e = operatorErrors.get(entry.resource) ?? { count: 0, last: "" };
            e.count++;
            e.last = `${entry.message}: ${(entry.error ?? entry.reason ?? "").slice(0, 600)}`;
            operatorErrors.set(entry.resource, e);
          } catch {
            // not one of the operator's JSON lines
          }
        }
        done();
      },
    });
    const log = winston.createLogger({ level: "error", format: winston.format.json(), transports: [new winston.transports.Stream({ stream: sink })] });
    operator = await startOperator(cp, ns, { log });

    // A database and a connection that are not fuzzed: their CA key and mounts must survive everything. Deleting a
    // fuzzed connection that base-db issued to would (rightly) put its serial into base-db's CRL
    // (revocation-ledger.test.ts proves that); here base-db's Secrets must stay byte for byte, so it does not.
    await create(RESOURCES.SecureDatabase, {
      apiVersion: FUZZ_API_VERSION,
      kind: "SecureDatabase",
      metadata: { name: "base-db" },
      spec: { host: "127.0.0.1", port: closedPort, postgres: { configMapName: "pg-shared" }, reload: { strategy: "None" }, verification: { enabled: false }, trust: { revokeOnDelete: false },
        // base-conn, and exactly the fuzzed connections generated against base-db (their mutations are judged).
        access: [{ users: ["base"], mountIntoWorkloads: true }, ...fuzzGrants(cases, "base-db")] },
    });
    await create(RESOURCES.ImagingConnection, { apiVersion: FUZZ_API_VERSION, kind: "ImagingConnection", metadata: { name: "base-conn" }, spec: { databaseRef: { name: "base-db" }, user: "base", verification: { enabled: false }, workloads: [{ kind: "Deployment", name: "cast-app" }] } });
    await waitFor("base-db and base-conn Ready", async () => {
      const s = await state();
      return [...s.secureDatabases, ...s.imagingConnections].every((o) => condition(o, "Ready")?.status === "True") && s.imagingConnections.length === 1;
    }, 60_000, 200);
    const s = await state();
    ledger.track(`${ns}/base-db-ca`);
    ledger.observeState(s);
    for (const name of ["foreign-opaque", "foreign-tls", "provided-ca", "garbage-ca", "base-db-ca", "base-db-server-tls", "base-db-operator-client-tls", "base-conn-client-tls"]) {
      untouchable.set(name, secretDigest(untouchableNow(s, name)));
    }
    expect(untouchable.get("base-db-ca"), "base-db's CA, where the operator keeps it").to.not.equal("absent");
    heap.start = await settledHeap();
  });

  after(async () => {
    process.off("unhandledRejection", onRejection);
    await operator?.stop();
    console.log(`      chaos-fuzz total ${Math.round((Date.now() - t0) / 1000)} s`);
  });

  it("batch 1: every object is refused at admission naming the field, or ends with a clear Ready condition for its generation", async () => {
    batch1 = await runBatch(0);
    const retrying = { SecureDatabase: operator.secureDatabaseQueue.retrying, ImagingConnection: operator.imagingConnectionQueue.retrying, Workload: operator.workloadQueue.retrying };
    console.log(`      keys failing in the operator's queues: ${JSON.stringify(retrying)}`);
    const failing = [...operatorErrors.keys()].filter((r) => batch1.accepted.some((c) => `${c.kind}/${c.name}` === r));
    expect(batch1.misnamed, `refusals that do not name a mutated field (seed ${SEED}):\n${batch1.misnamed.join("\n")}`).to.deep.equal([]);
    expect(batch1.unclear, `objects without a clear status for their generation (seed ${SEED}):\n${batch1.unclear.join("\n")}`).to.deep.equal([]);
    expect(retrying, `reconciles still failing (seed ${SEED}):\n${operatorErrorsFor(failing).join("\n")}`).to.deep.equal({ SecureDatabase: 0, ImagingConnection: 0, Workload: 0 });
  });

  it("batch 1: nothing the fuzzed objects do not own is touched; no orphan, no duplicated managed block; status matches the mounts", async () => {
    const s = await state();
    const violations = [...(await safety()), ...orphanedSecrets(s), ...orphanedMounts(s), ...duplicatedManagedBlocks(s, weirdConfigMaps), ...mountsMatchStatus(s)].map((v) => explain(v, s));
    expect(violations, `seed ${SEED}:\n${violations.join("\n")}`).to.deep.equal([]);
  });

  it("batch 1: deleting in two waves (first the objects that neither work nor hold a mount, then the others) lets every object go, leaves the survivors' mounts in place and their statuses true, and restores each ConfigMap byte for byte", async () => {
    const accepted = batch1.accepted;
    const wave1 = accepted.filter((c) => !batch1.holding.has(c));
    const wave2 = accepted.filter((c) => batch1.holding.has(c));
    const stuck1 = await deleteAndWait(wave1, 90_000);
    await quiet();
    const mid = await state();
    // Deleting a refused or broken object must not disturb a working one, and survivors' statuses must say what is so.
    const afterWave1 = [...mountsMatchStatus(mid), ...orphanedMounts(mid), ...(await safety())];
    for (const c of wave2) {
      const o = (c.kind === "SecureDatabase" ? mid.secureDatabases : mid.imagingConnections).find((x) => x.metadata.name === c.name);
      const why = o ? unclear(o) : "gone";
      if (why) afterWave1.push(`${describeCase(c)}: ${why}`);
    }
    const stuck2 = await deleteAndWait(wave2, 90_000);
    const collected = await collectGarbage(admin, state);
    const s = await state();
    const restored: string[] = [];
    for (const [name, data] of originalConfigMaps) {
      const cm = s.configMaps.find((x) => x.metadata.name === name);
      if (!cm) restored.push(`ConfigMap ${name} is gone`);
      else if (JSON.stringify(Object.entries(cm.data ?? {}).sort()) !== JSON.stringify(Object.entries(data).sort())) restored.push(`ConfigMap ${name} was not restored: ${short(cm.data)}`);
      else if (cm.metadata.labels?.["mtls.imaging.dev/owner"]) restored.push(`ConfigMap ${name} still claimed by ${cm.metadata.labels["mtls.imaging.dev/owner"]}`);
    }
    console.log(`      deleted ${wave1.length} + ${wave2.length} objects; ${collected} Secrets of deleted owners were still waiting for the garbage collector, which deleted them`);
    expect(stuck1, `stuck in deletion (wave 1):\n${stuck1.join("\n")}`).to.deep.equal([]);
    expect(stuck2, `stuck in deletion (wave 2):\n${stuck2.join("\n")}`).to.deep.equal([]);
    expect(afterWave1.map((v) => explain(v, mid)), `after deleting the ${wave1.length} objects that neither worked nor held a mount, seed ${SEED}:\n${afterWave1.map((v) => explain(v, mid)).join("\n")}`).to.deep.equal([]);
    const end = [...restored, ...orphanedMounts(s), ...(await safety())];
    expect(end, end.join("\n")).to.deep.equal([]);
  });

  it("batch 2: the same 500 objects again get the same admissions and clear statuses, are deleted again, and the heap does not grow", async () => {
    await quiet();
    heap.afterBatch1 = await settledHeap();
    const batch2 = await runBatch(1);
    const differing = cases.filter((c) => admissions[0]![c.index]!.accepted !== admissions[1]![c.index]!.accepted).map(describeCase);
    const stuck = await deleteAndWait(batch2.accepted, 120_000);
    await collectGarbage(admin, state);
    await quiet();
    heap.afterBatch2 = await settledHeap();
    const growth = heap.afterBatch2 - heap.afterBatch1;
    console.log(`      heap used after forced GC: before batch 1 ${MiB(heap.start!)}, after batch 1 ${MiB(heap.afterBatch1)}, after batch 2 ${MiB(heap.afterBatch2)}: growth over the second batch ${MiB(growth)} (limit ${MiB(HEAP_GROWTH_LIMIT)})`);
    expect(differing, "admission decided differently the second time").to.deep.equal([]);
    expect(batch2.misnamed, batch2.misnamed.join("\n")).to.deep.equal([]);
    expect(batch2.unclear, `batch 2, objects without a clear status (seed ${SEED}):\n${batch2.unclear.join("\n")}`).to.deep.equal([]);
    expect(stuck, `batch 2, stuck in deletion:\n${stuck.join("\n")}`).to.deep.equal([]);
    expect(growth, "heap growth over the second batch (bytes)").to.be.below(HEAP_GROWTH_LIMIT);
  });

  it("the operator never crashed: no unhandled rejection, caches synced, and it still reconciles a control database and connection", async () => {
    expect(operator.hasSynced()).to.equal(true);
    await create(RESOURCES.SecureDatabase, { apiVersion: FUZZ_API_VERSION, kind: "SecureDatabase", metadata: { name: "control-db" }, spec: { host: "control.fuzz.svc", postgres: { configMapName: "pg-control" }, reload: { strategy: "None" }, verification: { enabled: false }, access: [{ users: ["control"], mountIntoWorkloads: true }] } });
    await create(RESOURCES.ImagingConnection, { apiVersion: FUZZ_API_VERSION, kind: "ImagingConnection", metadata: { name: "control-conn" }, spec: { databaseRef: { name: "control-db" }, user: "control", verification: { enabled: false }, workloads: [{ kind: "StatefulSet", name: "analysis-node" }] } });
    const t = Date.now();
    await waitFor("control-db and control-conn Ready", async () => {
      const s = await state();
      const db = s.secureDatabases.find((o) => o.metadata.name === "control-db");
      const conn = s.imagingConnections.find((o) => o.metadata.name === "control-conn");
      return condition(db, "Ready")?.status === "True" && condition(conn, "Ready")?.status === "True";
    }, 30_000, 200);
    console.log(`      control database + connection Ready ${Date.now() - t} ms after apply; unhandled rejections: ${rejections.length}`);
    expect(rejections.map(String), "unhandled rejections").to.deep.equal([]);
  });

  it("at the end: the Secrets no fuzzed object owns are as they were, the base database's CA key never changed, no operator mount is left behind", async () => {
    const s = await state();
    const violations = [...orphanedMounts(s), ...(await safety()), ...ledger.finalViolations()];
    expect(violations, violations.join("\n")).to.deep.equal([]);
  });
});

