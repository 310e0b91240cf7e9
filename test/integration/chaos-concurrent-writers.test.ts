/**
 * Chaos (issue 8, item 3): another controller writes to the very objects the operator writes, at the same time.
 * While the operator secures three databases, mounts three connections into the same CAST Deployment and
 * StatefulSet, and rotates a server and a client certificate, a writer of our own (as the admin, with its own
 * field manager) edits UNRELATED parts of the same PostgreSQL ConfigMap and of the same workloads in a tight loop,
 * as a real controller would: resourceVersion-guarded updates retried on 409, merge patches, strategic merge
 * patches and server-side apply. Afterwards both sets of changes must be there, each exactly once, the rotations
 * done, and every 409 the operator got retried.
 *
 * Three databases, not one: CAST components present one identity per database instance in a workload (the .ini
 * has one [host:port] section per instance; a second connection to the same instance in the same workload is
 * refused with ConflictingInstance), so three connections in one workload need three instances.
 */
import { expect } from "chai";
import { readFile } from "node:fs/promises";
import { X509Certificate } from "node:crypto";
import { join } from "node:path";
import type { ImagingConnection, SecureDatabase } from "../../src/api/types";
import type { Operator } from "../../src/operator";
import { RESOURCES } from "../../src/kube/resources";
import { APPLY_PATCH, isApiError, MERGE_PATCH, resourcePath, RestClient } from "../../src/kube/rest";
import type { SecretObject } from "../../src/kube/secrets";
import { secretBytes } from "../../src/kube/secrets";
import { BEGIN_MARKER, END_MARKER, removeManagedBlock } from "../../src/postgres/managed-block";
import { normalizeSerial } from "../../src/postgres/probe";
import { conflictsAndRetries, keepingLogger, recordUnhandledRejections, SeededRandom, servedServerCertificate, sleep, type LogEntry } from "../support/chaos";
import { OPERATOR_USER, type ControlPlane } from "../support/controlplane";
import { condition, getJson, kubectlOk, waitForCondition } from "../support/kubectl-json";
import { startOperatorWithDatabase, type OperatorWithDatabase, type StartedDatabase } from "../support/operator-fixture";
import { psql } from "../support/postgres";
import { waitFor } from "../support/process";
import { castImagingWorkloads } from "../support/manifests";

const SEED = 20260808;
const WRITER_MS = 20_000;
const WRITER = "chaos-writer";
const STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json";
const WRITER_ANNOTATION = "chaos.imaging.example/writer";
const WRITER_LABEL = "chaos-writer";
const WRITER_ENV = "CHAOS_WRITER";
const WORK_MEM = (kb: number) => `work_mem = '${kb}kB'  # ${WRITER}`;
const WORK_MEM_LINE = new RegExp(`^work_mem = '\\d+kB'  # ${WRITER}\\n`, "gm");

type Kind = "Deployment" | "StatefulSet";
interface EnvVar {
  name: string;
  value?: string;
}
interface ContainerJson {
  name: string;
  env?: EnvVar[];
  volumeMounts?: { name: string; mountPath: string }[];
}
interface WorkloadJson {
  metadata: { name: string; annotations?: Record<string, string>; resourceVersion?: string };
  spec: { replicas?: number; template: { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> }; spec: { containers: ContainerJson[]; volumes?: { name: string }[] } } };
}
interface ConfigMapJson {
  metadata: { name: string; resourceVersion?: string; labels?: Record<string, string>; managedFields?: unknown };
  data?: Record<string, string>;
}

/** The three databases: the first one is the writer's and is rotated. */
const DATABASES = [
  { sdb: "db", role: "alpha", imc: "alpha" },
  { sdb: "db-b", role: "beta", imc: "beta" },
  { sdb: "db-c", role: "gamma", imc: "gamma" },
] as const;
const CAST: Record<Kind, { name: string; container: string }> = { Deployment: { name: "imaging-services", container: "app" }, StatefulSet: { name: "analysis-node", container: "node" } };


const connectionYaml = (ns: string, name: string, user: string, db: string) => `apiVersion: mtls.imaging.dev/v1alpha1
kind: ImagingConnection
metadata: { name: ${name}, namespace: ${ns} }
spec:
  databaseRef: { name: ${db} }
  user: ${user}
  workloads:
    - { kind: Deployment, name: imaging-services, containers: [app] }
    - { kind: StatefulSet, name: analysis-node }
`;

/** What the writer owns on one workload: the last value it wrote of each. */
interface WorkloadFields {
  annotation?: string;
  label?: string;
  env?: string;
  replicas?: number;
}

/**
 * A controller of someone else's: edits its own parts of the PostgreSQL ConfigMap (its key other.conf and one
 * work_mem line it keeps, always moved to the end of postgresql.conf, after the operator's block) and of the CAST
 * workloads (an annotation, a pod-template label, an env var, replicas), choosing each edit with a seeded PRNG.
 */
class Writer {
  readonly rng = new SeededRandom(SEED);
  readonly ops: Record<string, number> = {};
  conflicts = 0;
  otherConf?: string;
  workMem?: number;
  readonly workloads: Record<Kind, WorkloadFields> = { Deployment: {}, StatefulSet: {} };
  private seq = 0;

  constructor(
    private readonly client: RestClient,
    private readonly ns: string,
    private readonly configMap: string,
  ) {}

  async runFor(ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (Date.now() < until) await this.step();
  }

  async step(): Promise<void> {
    const op = this.rng.pick(["cm-other", "cm-work-mem", "cm-work-mem", "annotation-merge", "label-merge", "replicas-merge", "env-strategic", "apply"] as const);
    const kind = this.rng.pick(["Deployment", "StatefulSet"] as const);
    const v = `v${++this.seq}`;
    const key = op.startsWith("cm-") ? op : `${op} ${kind}`;
    this.ops[key] = (this.ops[key] ?? 0) + 1;
    switch (op) {
      case "cm-other":
        return this.updateConfigMap((data) => {
          data["other.conf"] = `# ${WRITER}\nchaos_setting = ${v}\n`;
          this.otherConf = data["other.conf"];
        });
      case "cm-work-mem": {
        const kb = this.rng.int(64, 4096);
        return this.updateConfigMap((data) => {
          // Its own line only: taken out wherever it is, appended again at the very end (after the operator's block).
          const conf = (data["postgresql.conf"] ?? "").replace(WORK_MEM_LINE, "");
          data["postgresql.conf"] = `${conf}${conf === "" || conf.endsWith("\n") ? "" : "\n"}${WORK_MEM(kb)}\n`;
          this.workMem = kb;
        });
      }
      case "annotation-merge":
        this.workloads[kind].annotation = v;
        return this.patch(kind, MERGE_PATCH, { metadata: { annotations: { [WRITER_ANNOTATION]: v } } });
      case "label-merge":
        this.workloads[kind].label = v;
        return this.patch(kind, MERGE_PATCH, { spec: { template: { metadata: { labels: { [WRITER_LABEL]: v } } } } });
      case "replicas-merge": {
        const replicas = this.rng.int(1, 3);
        this.workloads[kind].replicas = replicas;
        return this.patch(kind, MERGE_PATCH, { spec: { replicas } });
      }
      case "env-strategic":
        // A JSON merge patch would replace the whole container list; a strategic merge patch merges by name.
        this.workloads[kind].env = v;
        return this.patch(kind, STRATEGIC_MERGE_PATCH, { spec: { template: { spec: { containers: [{ name: CAST[kind].container, env: [{ name: WRITER_ENV, value: v }] }] } } } });
      case "apply": {
        // Server-side apply of everything it owns (an apply that leaves a field out gives it up): one field new.
        const f = this.workloads[kind];
        const which = this.rng.pick(["annotation", "label", "env", "replicas"] as const);
        if (which === "replicas") f.replicas = this.rng.int(1, 3);
        else f[which] = v;
        return this.patch(kind, APPLY_PATCH, this.applyBody(kind), { force: true });
      }
    }
  }

  applyBody(kind: Kind): object {
    const f = this.workloads[kind];
    const spec: Record<string, unknown> = {};
    if (f.replicas !== undefined) spec.replicas = f.replicas;
    const template: Record<string, unknown> = {};
    if (f.label !== undefined) template.metadata = { labels: { [WRITER_LABEL]: f.label } };
    if (f.env !== undefined) template.spec = { containers: [{ name: CAST[kind].container, env: [{ name: WRITER_ENV, value: f.env }] }] };
    if (Object.keys(template).length > 0) spec.template = template;
    return {
      apiVersion: "apps/v1",
      kind,
      metadata: { name: CAST[kind].name, namespace: this.ns, ...(f.annotation !== undefined ? { annotations: { [WRITER_ANNOTATION]: f.annotation } } : {}) },
      ...(Object.keys(spec).length > 0 ? { spec } : {}),
    };
  }

  private async patch(kind: Kind, contentType: string, body: object, opts: { force?: boolean } = {}): Promise<void> {
    const query: Record<string, string | boolean> = { fieldManager: WRITER };
    if (opts.force) query.force = true;
    await this.client.request("PATCH", resourcePath(RESOURCES[kind], { namespace: this.ns, name: CAST[kind].name }), { body, contentType, query });
  }

  /** GET, change, PUT with the resourceVersion read: on 409 read again and redo, as a controller does. */
  private async updateConfigMap(change: (data: Record<string, string>) => void): Promise<void> {
    const path = resourcePath(RESOURCES.ConfigMap, { namespace: this.ns, name: this.configMap });
    for (let attempt = 0; attempt < 100; attempt++) {
      const cm = await this.client.request<ConfigMapJson>("GET", path);
      delete cm.metadata.managedFields;
      cm.data ??= {};
      change(cm.data);
      try {
        await this.client.request("PUT", path, { body: cm, query: { fieldManager: WRITER } });
        return;
      } catch (err) {
        if (!isApiError(err, 409)) throw err;
        this.conflicts++;
      }
    }
    throw new Error(`the writer could not update ConfigMap ${this.configMap} in 100 attempts`);
  }
}

const count = (text: string, line: string): number => text.split("\n").filter((l) => l === line).length;

describe("chaos: a concurrent writer edits the same ConfigMap and workloads while the operator works (real PostgreSQL)", function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let ns: string;
  let env: OperatorWithDatabase;
  let dbs: readonly StartedDatabase[];
  let clientDir: string;
  let operator: Operator;
  const logs: LogEntry[] = [];
  let writer: Writer;
  let writerStartedAt: Date;
  let originalSidecar: ContainerJson;
  const serverToken = "chaos-server-1";
  const clientToken = "chaos-client-1";
  const rotatedFrom: { server?: string; client?: string } = {};

  before(async () => {
    env = await startOperatorWithDatabase({
      name: "chaos-cw",
      databases: DATABASES.map((d, i) => ({
        roles: [d.role],
        configMapName: `pg-config-${i}`,
        workloadName: `css-${i}`,
        serverSecretName: `${d.sdb}-server-tls`,
        secureDatabases: d.sdb,
      })),
      clientSecrets: ["alpha-client-tls"],
      beforeOperator: async ({ ns }) => {
        for (const w of Object.values(castImagingWorkloads(ns))) await kubectlOk(["apply", "-f", "-"], JSON.stringify(w));
        const deployment = await getJson<WorkloadJson>(["get", "deployment", "imaging-services", "-n", ns]);
        originalSidecar = deployment.spec.template.spec.containers.find((c) => c.name === "sidecar")!;
      },
      operator: { log: keepingLogger(logs) },
    });
    ({ cp, ns, databases: dbs, operator } = env);
    clientDir = env.clientDirs["alpha-client-tls"]!;
    writer = new Writer(new RestClient(cp.kubeConfig), ns, dbs[0]!.configMapName);
  });

  after(async () => {
    await env?.stop();
  });

  it("the operator secures, mounts and rotates while the writer edits the same objects for 20 s", async () => {
    const recorder = recordUnhandledRejections();
    try {
      writerStartedAt = new Date();
      const t = () => `${((Date.now() - writerStartedAt.getTime()) / 1000).toFixed(1)} s`;
      const writing = writer.runFor(WRITER_MS);
      const timeline: string[] = [];
      const work = (async () => {
        for (const [i, d] of DATABASES.entries()) {
          await kubectlOk(["apply", "-f", "-"], dbs[i]!.secureDatabaseYaml(d.sdb, [{ users: [d.role], mountIntoWorkloads: true }]));
          await kubectlOk(["apply", "-f", "-"], connectionYaml(ns, d.imc, d.role, d.sdb));
        }
        timeline.push(`created 3 SecureDatabases and 3 ImagingConnections by ${t()}`);
        const db = await waitForCondition<SecureDatabase>("sdb", ns, "db", "Ready", (c) => c.status === "True", 60_000);
        const alpha = await waitForCondition<ImagingConnection>("imc", ns, "alpha", "Ready", (c) => c.status === "True", 60_000);
        timeline.push(`db and alpha Ready at ${t()}`);
        rotatedFrom.server = db.status!.serverCertificate!.serialNumber!;
        rotatedFrom.client = alpha.status!.certificate!.serialNumber!;
        await kubectlOk(["annotate", "sdb", "db", "-n", ns, `mtls.imaging.dev/rotate=${serverToken}`]);
        timeline.push(`server rotation requested at ${t()}`);
        await kubectlOk(["annotate", "imc", "alpha", "-n", ns, `mtls.imaging.dev/rotate=${clientToken}`]);
        timeline.push(`client rotation requested at ${t()}`);
        await waitFor(
          "server rotation served",
          async () => {
            const s = (await getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns])).status;
            return s?.serverCertificate?.lastRotationToken === serverToken && s.verification?.servedSerialNumber === s.serverCertificate.serialNumber;
          },
          60_000,
          100,
        );
        timeline.push(`rotated server certificate served at ${t()}`);
        await waitFor(
          "client rotation done",
          async () => {
            const imc = await getJson<ImagingConnection>(["get", "imc", "alpha", "-n", ns]);
            return imc.status?.certificate?.lastRotationToken === clientToken && condition(imc, "Ready")?.status === "True";
          },
          60_000,
          100,
        );
        timeline.push(`rotated client certificate Ready at ${t()}`);
      })();
      await Promise.all([writing, work]);
      timeline.push(`writer stopped at ${t()}`);

      // Converged: both rotations done and served, every database and connection Ready.
      await waitFor(
        "rotations done and everything Ready",
        async () => {
          const db = await getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns]);
          const alpha = await getJson<ImagingConnection>(["get", "imc", "alpha", "-n", ns]);
          const s = db.status;
          if (s?.serverCertificate?.lastRotationToken !== serverToken || s.verification?.servedSerialNumber !== s.serverCertificate.serialNumber) return false;
          if (condition(db, "Ready")?.status !== "True" || alpha.status?.certificate?.lastRotationToken !== clientToken) return false;
          for (const d of DATABASES) {
            if (condition(await getJson<SecureDatabase>(["get", "sdb", d.sdb, "-n", ns]), "Ready")?.status !== "True") return false;
            if (condition(await getJson<ImagingConnection>(["get", "imc", d.imc, "-n", ns]), "Ready")?.status !== "True") return false;
          }
          return true;
        },
        60_000,
        250,
      );
      timeline.push(`all converged at ${t()}`);
      console.log(`      timeline: ${timeline.join("; ")}`);
      console.log(`      writer (seed ${SEED}): ${Object.values(writer.ops).reduce((a, b) => a + b, 0)} edits (${Object.entries(writer.ops).map(([k, n]) => `${k} ${n}`).join(", ")}), ${writer.conflicts} of its ConfigMap updates got 409 and were redone`);
      expect(recorder.rejections.map(String)).to.deep.equal([]);
    } finally {
      recorder.dispose();
    }
  });

  it("keeps every change of the writer: its last value of every key and field it owns", async () => {
    const cm = await getJson<ConfigMapJson>(["get", "configmap", dbs[0]!.configMapName, "-n", ns]);
    expect(writer.otherConf, "the writer edited other.conf").to.be.a("string");
    expect(writer.workMem, "the writer edited work_mem").to.be.a("number");
    expect(cm.data?.["other.conf"]).to.equal(writer.otherConf);
    const conf = cm.data!["postgresql.conf"]!;
    expect(conf.match(WORK_MEM_LINE), "the writer's work_mem line, once, with its last value").to.deep.equal([`${WORK_MEM(writer.workMem!)}\n`]);
    for (const kind of ["Deployment", "StatefulSet"] as const) {
      const f = writer.workloads[kind];
      const w = await getJson<WorkloadJson>(["get", kind.toLowerCase(), CAST[kind].name, "-n", ns]);
      if (f.annotation !== undefined) expect(w.metadata.annotations?.[WRITER_ANNOTATION], `${kind} annotation`).to.equal(f.annotation);
      if (f.label !== undefined) expect(w.spec.template.metadata?.labels?.[WRITER_LABEL], `${kind} template label`).to.equal(f.label);
      if (f.replicas !== undefined) expect(w.spec.replicas, `${kind} replicas`).to.equal(f.replicas);
      const env = w.spec.template.spec.containers.find((c) => c.name === CAST[kind].container)!.env ?? [];
      if (f.env !== undefined) expect(env.filter((e) => e.name === WRITER_ENV), `${kind} env`).to.deep.equal([{ name: WRITER_ENV, value: f.env }]);
      expect(Object.values(f).filter((x) => x !== undefined).length, `the writer edited every field of the ${kind}`).to.equal(4);
    }
    // The chart's own fields are still there too.
    const dep = await getJson<WorkloadJson>(["get", "deployment", "imaging-services", "-n", ns]);
    expect(dep.metadata.annotations?.["meta.helm.sh/release-name"]).to.equal("castimaging");
    expect(dep.spec.template.spec.containers.find((c) => c.name === "app")!.env?.find((e) => e.name === "JAVA_OPTS")).to.deep.equal({ name: "JAVA_OPTS", value: "-Xmx2g" });
    expect(dep.spec.template.spec.containers.find((c) => c.name === "sidecar")).to.deep.equal(originalSidecar);
  });

  it("keeps every change of the operator, each exactly once: the managed blocks, and the volumes, mounts and env of all 3 connections", async () => {
    const db = dbs[0]!;
    const cm = await getJson<ConfigMapJson>(["get", "configmap", db.configMapName, "-n", ns]);
    const conf = cm.data!["postgresql.conf"]!;
    const hba = cm.data!["pg_hba.conf"]!;
    for (const [name, text] of [["postgresql.conf", conf], ["pg_hba.conf", hba]] as const) {
      expect(count(text, BEGIN_MARKER), `${name} BEGIN markers`).to.equal(1);
      expect(count(text, END_MARKER), `${name} END markers`).to.equal(1);
    }
    // Outside our blocks, exactly the server's own files plus the writer's one line.
    expect(removeManagedBlock(conf)).to.equal(`${db.originalConf}${WORK_MEM(writer.workMem!)}\n`);
    expect(removeManagedBlock(hba)).to.equal(db.originalHba);
    expect(conf.trimEnd().endsWith(END_MARKER), "our block is last in postgresql.conf (last assignment wins)").to.equal(true);
    expect(hba.startsWith(BEGIN_MARKER), "our block is first in pg_hba.conf (first match wins)").to.equal(true);
    expect(cm.metadata.labels?.["mtls.imaging.dev/owner"]).to.equal("SecureDatabase.db");

    for (const kind of ["Deployment", "StatefulSet"] as const) {
      const w = await getJson<WorkloadJson>(["get", kind.toLowerCase(), CAST[kind].name, "-n", ns]);
      // Exactly the chart's own volume (the Deployment's config) and ours.
      const chart = kind === "Deployment" ? { volumes: ["config"], mounts: ["config /opt/config"] } : { volumes: [], mounts: [] };
      const volumes = (w.spec.template.spec.volumes ?? []).map((v) => v.name).sort();
      expect(volumes, `${kind} volumes`).to.deep.equal(["cast-imaging-mtls-ini", ...chart.volumes, "mtls-alpha", "mtls-beta", "mtls-gamma"]);
      const c = w.spec.template.spec.containers.find((x) => x.name === CAST[kind].container)!;
      expect((c.volumeMounts ?? []).map((m) => `${m.name} ${m.mountPath}`).sort(), `${kind} mounts`).to.deep.equal([
        "cast-imaging-mtls-ini /etc/cast-imaging/mtls-ini",
        ...chart.mounts,
        "mtls-alpha /etc/cast-imaging/mtls/alpha",
        "mtls-beta /etc/cast-imaging/mtls/beta",
        "mtls-gamma /etc/cast-imaging/mtls/gamma",
      ]);
      expect((c.env ?? []).filter((e) => e.name === "CASTCONNECTIONEXTRAPARAMETERS"), `${kind} env`).to.deep.equal([{ name: "CASTCONNECTIONEXTRAPARAMETERS", value: "/etc/cast-imaging/mtls-ini/cast-connections.ini" }]);
      expect(w.spec.template.metadata?.annotations?.["mtls.imaging.dev/connections"], `${kind} plan digest`).to.be.a("string");
    }
    for (const d of DATABASES) {
      const imc = await getJson<ImagingConnection>(["get", "imc", d.imc, "-n", ns]);
      expect(imc.status?.workloads?.map((w) => [w.kind, w.name, w.state]), d.imc).to.deep.equal([
        ["Deployment", "imaging-services", "Patched"],
        ["StatefulSet", "analysis-node", "Patched"],
      ]);
    }
  });

  it("rotated the server certificate: the database is Ready and the real server serves the new certificate", async () => {
    const sdb = await getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns]);
    const serial = sdb.status!.serverCertificate!.serialNumber!;
    expect(serial).to.not.equal(rotatedFrom.server);
    expect(sdb.status?.serverCertificate?.lastRotationToken).to.equal(serverToken);
    expect(condition(sdb, "Ready")).to.include({ status: "True", reason: "Secured" });
    expect(condition(sdb, "Verified")).to.include({ status: "True", reason: "ServingCurrentCertificate" });
    const secret = await getJson<SecretObject>(["get", "secret", "db-server-tls", "-n", ns]);
    expect(secret.metadata.annotations?.["mtls.imaging.dev/rotation-token"]).to.equal(serverToken);
    expect(normalizeSerial(new X509Certificate(secretBytes(secret)["tls.crt"]!).serialNumber)).to.equal(serial);
    expect((await servedServerCertificate("127.0.0.1", dbs[0]!.pg.port)).serialNumber).to.equal(serial);
  });

  it("rotated the client certificate: it is in its Secret, the connection is Ready, and psql logs in with the mounted files", async () => {
    const imc = await getJson<ImagingConnection>(["get", "imc", "alpha", "-n", ns]);
    const serial = imc.status!.certificate!.serialNumber!;
    expect(serial).to.not.equal(rotatedFrom.client);
    expect(imc.status?.certificate?.lastRotationToken).to.equal(clientToken);
    expect(condition(imc, "Ready")).to.include({ status: "True", reason: "Connected" });
    const secret = await getJson<SecretObject>(["get", "secret", "alpha-client-tls", "-n", ns]);
    expect(secret.metadata.annotations?.["mtls.imaging.dev/rotation-token"]).to.equal(clientToken);
    expect(normalizeSerial(new X509Certificate(secretBytes(secret)["client.crt"]!).serialNumber)).to.equal(serial);
    // The "kubelet" has laid the rotated files down where the CAST pod reads them.
    await waitFor(
      "rotated client files laid down",
      async () => normalizeSerial(new X509Certificate(await readFile(join(clientDir, "client.crt"))).serialNumber) === serial,
      15_000,
      200,
    );
    const query = "SELECT current_user || ' ' || client_serial || ' ' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    const r = await psql({ host: "localhost", port: dbs[0]!.pg.port, user: "alpha", sslmode: "verify-full", sslcert: join(clientDir, "client.crt"), sslkey: join(clientDir, "client.key"), sslrootcert: join(clientDir, "root.crt"), command: query });
    expect(r.stderr.trim(), r.stderr).to.equal("");
    expect(r.stdout.trim()).to.equal(`alpha ${BigInt(`0x${serial}`).toString()} true`);
  });

  it("retried every 409 the operator got: each is followed by a successful write of the same object", async () => {
    // The audit log is written as requests complete; give the last ones a moment.
    await sleep(500);
    const events = await cp.auditEvents(OPERATOR_USER, writerStartedAt);
    const report = conflictsAndRetries(events);
    const writes = events.filter((e) => ["create", "update", "patch", "delete"].includes(e.verb) && (e.responseStatus?.code ?? 0) < 300);
    console.log(
      `      operator since the writer started: ${events.length} requests, ${writes.length} successful writes, ${report.conflicts.length} answered 409 ` +
        `(${Object.entries(report.perObject).map(([o, n]) => `${o}: ${n}`).join(", ") || "none"}), ${report.conflicts.length - report.unretried.length} of them followed by a successful write of the same object`,
    );
    const failed = logs.filter((l) => l.message === "reconcile failed");
    console.log(
      `      operator reconciles that failed and were retried by the work queue: ${failed.length}${failed.length ? ` (${[...new Set(failed.map((l) => `${l.resource}: ${String(l.error).replace(/\/namespaces\/[^/]+/, "").slice(0, 120)}`))].join("; ")})` : ""}; ` +
        `queue retries: SecureDatabase ${operator.secureDatabaseQueue.retries}, ImagingConnection ${operator.imagingConnectionQueue.retries}, Workload ${operator.workloadQueue.retries}`,
    );
    expect(report.unretried, "409s never followed by a successful write of the same object").to.deep.equal([]);
    expect(operator.secureDatabaseQueue.retrying + operator.imagingConnectionQueue.retrying + operator.workloadQueue.retrying, "keys still failing").to.equal(0);
  });
});
