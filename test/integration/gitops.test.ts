/**
 * A GitOps pipeline (Argo CD, Flux) keeps re-applying the manifests as they are in Git: the SecureDatabase, the
 * ImagingConnection, the PostgreSQL ConfigMap (postgresql.conf / pg_hba.conf without the operator's managed block)
 * and the CAST Imaging workloads (without the operator's mounts). Both tools apply server-side with a field manager
 * of their own and take conflicting fields (`kubectl apply --server-side --force-conflicts`); older pipelines use
 * client-side `kubectl apply`. The operator and the pipeline must converge and never flap: what docs/gitops.md says
 * is checked here, with the audit log counting every write the operator makes.
 */
import { expect } from "chai";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import type { ImagingConnection, SecureDatabase } from "../../src/api/types";
import { BEGIN_MARKER, END_MARKER } from "../../src/postgres/managed-block";
import { secretBytes, type SecretObject } from "../../src/kube/secrets";
import { parseCertificate } from "../../src/pki";
import { OPERATOR_USER, type AuditEvent } from "../support/controlplane";
import type { DatabaseInCluster } from "../support/database-fixture";
import { controlPlane } from "../support/hooks";
import { condition, getJson, kubectlOk } from "../support/kubectl-json";
import { castImagingWorkloads, imagingConnectionYaml, plainDeployment } from "../support/manifests";
import { startOperatorWithDatabase, type OperatorWithDatabase } from "../support/operator-fixture";
import { psql, type PostgresServer } from "../support/postgres";
import { waitFor } from "../support/process";
import { caKeySecret } from "../support/operator";

type Json = Record<string, unknown>;
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [k: string]: unknown;
}
interface ManagedFieldsEntry {
  manager: string;
  operation: string;
  subresource?: string;
  fieldsV1?: Json;
}
interface LiveObject {
  metadata: { name: string; generation?: number; resourceVersion: string; annotations?: Record<string, string>; labels?: Record<string, string>; managedFields?: ManagedFieldsEntry[] };
  spec?: Json & { template?: { metadata?: { annotations?: Record<string, string> }; spec: { containers: (Json & { name: string; env?: Json[]; volumeMounts?: Json[] })[]; volumes?: (Json & { name: string })[] } } };
  data?: Record<string, string>;
}

/** Argo CD's field manager for server-side apply (Flux's is kustomize-controller: same mechanics). */
const PIPELINE = "argocd-controller";
const WRITE_VERBS = new Set(["create", "update", "patch", "delete", "deletecollection"]);
const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";
const ROUNDS = 3;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const canonical = (v: unknown): string =>
  JSON.stringify(v, (_k, x: unknown) => (x && typeof x === "object" && !Array.isArray(x) ? Object.fromEntries(Object.entries(x as Json).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x));
const count = (text: string, needle: string): number => text.split(needle).length - 1;
/** The paths of `written` whose value `stored` does not have (stored may have more: defaults). */
function missingFrom(written: unknown, stored: unknown, path = "spec"): string[] {
  if (Array.isArray(written)) {
    if (!Array.isArray(stored) || stored.length !== written.length) return [path];
    return written.flatMap((w, i) => missingFrom(w, stored[i], `${path}[${i}]`));
  }
  if (written && typeof written === "object") {
    if (!stored || typeof stored !== "object" || Array.isArray(stored)) return [path];
    return Object.entries(written as Json).flatMap(([k, v]) => missingFrom(v, (stored as Json)[k], `${path}.${k}`));
  }
  return written === stored ? [] : [path];
}


describe("GitOps: a pipeline re-applying the original manifests converges with the operator, never flaps", function () {
  this.timeout(240_000);
  let ns: string;
  let env: OperatorWithDatabase;
  let pg: PostgresServer;
  let db: DatabaseInCluster;
  /** What is in Git. */
  let sdbManifest: Manifest;
  let imcManifest: Manifest;
  let configMapManifest: Manifest;
  let databaseStatefulSet: Manifest;
  let cast: Manifest[];
  /** The CRs' spec as the API server stores the manifest (its CRD defaults filled in), before the operator saw them. */
  let storedSpec: { sdb: Json; imc: Json };
  /** What the operator wrote into the ConfigMap once it reached Ready. */
  let securedData: Record<string, string>;
  const figures: string[] = [];

  const kubectl = (args: string[], input?: string) => kubectlOk(args, input);
  const list = (items: Manifest[]) => JSON.stringify({ apiVersion: "v1", kind: "List", items });
  /** Argo CD with ServerSideApply=true, Flux: server-side apply under the pipeline's own field manager, taking conflicts. */
  const serverSideApply = (items: Manifest[]) => kubectl(["apply", "--server-side", "--force-conflicts", `--field-manager=${PIPELINE}`, "-f", "-"], list(items));
  /** An older pipeline: client-side `kubectl apply` (three-way merge against the last-applied annotation). */
  const clientSideApply = (items: Manifest[]) => kubectl(["apply", "-f", "-"], list(items));

  const get = (kind: string, name: string, managedFields = false) => getJson<LiveObject>(["get", kind, name, "-n", ns, ...(managedFields ? ["--show-managed-fields"] : [])]);
  const sdb = () => getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns]);
  const imc = () => getJson<ImagingConnection>(["get", "imc", "analysis", "-n", ns]);

  /** Every write of the operator in this namespace since a moment, as "verb resource[/sub] name". */
  const operatorWrites = async (since: Date): Promise<AuditEvent[]> =>
    (await controlPlane().auditEvents(OPERATOR_USER, since)).filter((e) => WRITE_VERBS.has(e.verb) && e.objectRef?.namespace === ns);
  /** Every write in this namespace since a moment, by whom: what a failed expectation prints. */
  const trail = async (since: Date): Promise<string> => {
    const lines = (await readFile(controlPlane().auditLogPath, "utf8")).split("\n").filter((l) => l.includes(`"namespace":"${ns}"`));
    return lines
      .map((l) => JSON.parse(l) as AuditEvent & { userAgent?: string })
      .filter((e) => e.stage === "ResponseComplete" && WRITE_VERBS.has(e.verb) && new Date(e.requestReceivedTimestamp) >= since)
      .map((e) => `\n  ${e.requestReceivedTimestamp} ${e.user.username === OPERATOR_USER ? "operator" : e.user.username} ${describeWrite(e)} -> ${e.responseStatus?.code}`)
      .join("");
  };
  const describeWrite = (e: AuditEvent) => `${e.verb} ${e.objectRef?.resource}${e.objectRef?.subresource ? `/${e.objectRef.subresource}` : ""} ${e.objectRef?.name ?? ""}`.trim();
  /** Waits until the operator has been quiet for quietMs (at least minMs after `since`), then returns its writes. */
  const settle = async (since: Date, minMs = 4000, quietMs = 2500): Promise<string[]> => {
    let writes: AuditEvent[] = [];
    await waitFor(
      "the operator to go quiet",
      async () => {
        writes = await operatorWrites(since);
        const last = Math.max(since.getTime(), ...writes.map((w) => new Date(w.requestReceivedTimestamp).getTime()));
        return Date.now() - since.getTime() >= minMs && Date.now() - last >= quietMs;
      },
      60_000,
      250,
    );
    return writes.map(describeWrite);
  };

  /** Everything a round must leave alone: the CRs' generation and spec, every certificate, every workload. */
  const snapshot = async () => {
    const [s, c] = [await sdb(), await imc()];
    const secret = async (name: string, at = { namespace: ns, name }) => {
      const live = await getJson<SecretObject & { metadata: { resourceVersion: string } }>(["get", "secret", at.name, "-n", at.namespace]);
      return { resourceVersion: live.metadata.resourceVersion, serial: parseCertificate(secretBytes(live)["tls.crt"]!).serialNumber };
    };
    const workload = async (kind: string, name: string) => {
      const w = await get(kind, name);
      return { generation: w.metadata.generation, template: canonical(w.spec?.template) };
    };
    return {
      sdb: { generation: s.metadata.generation, spec: canonical(s.spec) },
      imc: { generation: c.metadata.generation, spec: canonical(c.spec) },
      serials: { ca: s.status?.ca?.serialNumber, server: s.status?.serverCertificate?.serialNumber, client: c.status?.certificate?.serialNumber },
      secrets: {
        ca: await secret("db-ca", caKeySecret(ns, "db-ca")),
        server: await secret("db-server-tls"),
        client: await secret("analysis-client-tls"),
      },
      workloads: {
        css: await workload("statefulset", "css"),
        imagingServices: await workload("deployment", "imaging-services"),
        analysisNode: await workload("statefulset", "analysis-node"),
        imagingViewer: await workload("deployment", "imaging-viewer"),
      },
    };
  };
  let baseline: Awaited<ReturnType<typeof snapshot>>;

  /** The operator never mutates a spec, re-issues nothing, rolls nothing out: everything as it was at Ready. */
  const expectUntouched = async (round: string, workloads: "exact" | "asPipelineAlone" = "exact") => {
    const now = await snapshot();
    expect(now.sdb, `${round}: SecureDatabase generation and spec`).to.deep.equal({ generation: 1, spec: canonical(storedSpec.sdb) });
    expect(now.imc, `${round}: ImagingConnection generation and spec`).to.deep.equal({ generation: 1, spec: canonical(storedSpec.imc) });
    expect(now.serials, `${round}: serials in status`).to.deep.equal(baseline.serials);
    expect(now.secrets, `${round}: the certificate Secrets (serial and resourceVersion)`).to.deep.equal(baseline.secrets);
    if (workloads === "asPipelineAlone") {
      // kubectl rewrote its last-applied annotation, and a Deployment's generation counts annotation changes (the
      // apps registry copies them to the ReplicaSet): the Deployment the operator mounts into may move exactly as
      // far as the one nobody but the pipeline touches, its pod template not at all. StatefulSets do not move.
      const delta = (k: "imagingServices" | "imagingViewer") => now.workloads[k].generation! - baseline.workloads[k].generation!;
      expect(delta("imagingServices"), `${round}: Deployment generation moved beyond what the pipeline alone does`).to.equal(delta("imagingViewer"));
      expect(delta("imagingViewer")).to.be.at.most(1);
      baseline = { ...baseline, workloads: { ...baseline.workloads, imagingServices: now.workloads.imagingServices, imagingViewer: now.workloads.imagingViewer } };
    }
    expect(now.workloads, `${round}: workload generation and pod template`).to.deep.equal(baseline.workloads);
    const [s, c] = [await sdb(), await imc()];
    // The finalizers the operator added (metadata, not in the manifests) survive every apply.
    expect([s.metadata.finalizers, c.metadata.finalizers], `${round}: finalizers`).to.deep.equal([["mtls.imaging.dev/cleanup"], ["mtls.imaging.dev/cleanup"]]);
    expect(condition(s, "Ready")?.status, `${round}: SecureDatabase Ready`).to.equal("True");
    expect(condition(c, "Ready")?.status, `${round}: ImagingConnection Ready`).to.equal("True");
    expect(s.status?.verification?.servedSerialNumber, `${round}: the server serves the current certificate`).to.equal(baseline.serials.server);
  };

  /** The server still accepts nothing but certificate-authenticated TLS (what the operator's pg_hba.conf block says). */
  const expectStillSecured = async (round: string) => {
    const plain = await psql({ host: "127.0.0.1", port: pg.port, user: "postgres", sslmode: "disable", command: "SELECT 1" });
    expect(plain.code, `${round}: a plain TCP login must be refused`).to.not.equal(0);
    expect(plain.stderr).to.contain("pg_hba.conf rejects connection");
  };

  /** What is in Git, and what the API server stores for it, read before the operator runs. */
  const readManifests = async () => {
    const fromLastApplied = async (kind: string, name: string) => JSON.parse((await get(kind, name)).metadata.annotations![LAST_APPLIED]!) as Manifest;
    configMapManifest = await fromLastApplied("configmap", "pg-config");
    databaseStatefulSet = await fromLastApplied("statefulset", "css");
    expect(configMapManifest.data).to.deep.equal({ "postgresql.conf": db.originalConf, "pg_hba.conf": db.originalHba });
    // The CAST workloads as in Git, and one no connection targets: what the pipeline alone does to a Deployment, for comparison.
    cast = [...Object.values(castImagingWorkloads(ns)), plainDeployment(ns, "imaging-viewer", "viewer")];
    // A quiet database: verification every hour and a short CA propagation delay, so the repeated reloads after
    // the switch-over (max(30 s, propagationDelay)) are over before the rounds and no periodic probe falls inside one.
    sdbManifest = parseYaml(`${db.secureDatabaseYaml("db", [{ users: ["analysis"], mountIntoWorkloads: true }]).replace(`verification: { endpoint: "127.0.0.1:${pg.port}" }`, `verification: { endpoint: "127.0.0.1:${pg.port}", interval: 1h }`)}  ca: { propagationDelay: 2s }\n`) as Manifest;
    expect((sdbManifest.spec as { verification: Json }).verification).to.deep.equal({ endpoint: `127.0.0.1:${pg.port}`, interval: "1h" });
    imcManifest = parseYaml(
      imagingConnectionYaml(ns, "analysis", "analysis", `  workloads:
    - { kind: Deployment, name: imaging-services, containers: [app] }
    - { kind: StatefulSet, name: analysis-node }
`),
    ) as Manifest;
    // The spec the API server stores for these manifests (CRD defaults filled in), before any operator saw them.
    const dryRun = JSON.parse(await kubectl(["apply", "--server-side", `--field-manager=${PIPELINE}`, "--dry-run=server", "-o", "json", "-f", "-"], list([sdbManifest, imcManifest]))) as { items: { spec: Json }[] };
    storedSpec = { sdb: dryRun.items[0]!.spec, imc: dryRun.items[1]!.spec };
    // Every field of the manifests is stored as written; the rest is the CRDs' defaults.
    expect(missingFrom(sdbManifest.spec, storedSpec.sdb), "SecureDatabase fields stored otherwise than written").to.deep.equal([]);
    expect(missingFrom(imcManifest.spec, storedSpec.imc), "ImagingConnection fields stored otherwise than written").to.deep.equal([]);
  };

  before(async () => {
    env = await startOperatorWithDatabase({
      name: "gitops",
      databases: [{ roles: ["analysis"] }],
      // The database as it was before anyone secured it: its ConfigMap and StatefulSet (applied by the fixture with
      // kubectl apply, whose last-applied annotation is exactly the manifest), and the "kubelet".
      beforeOperator: async (started) => {
        ({ ns, pg, db } = started);
        await readManifests();
      },
    });
    // The pipeline's first sync: everything in Git, server-side, under its own field manager.
    await serverSideApply([configMapManifest, databaseStatefulSet, ...cast, sdbManifest, imcManifest]);
    await waitFor("SecureDatabase db Ready", async () => condition(await sdb(), "Ready")?.status === "True", 90_000, 250);
    await waitFor("ImagingConnection analysis Ready", async () => condition(await imc(), "Ready")?.status === "True", 90_000, 250);
    // Past the settle window of repeated reloads after the last reload (30 s, propagationDelay is 2 s), and quiet.
    const lastReload = new Date((await sdb()).status!.reload!.lastReloadTime!).getTime();
    await sleep(Math.max(0, lastReload + 31_000 - Date.now()));
    await settle(new Date(Date.now() - 1000), 1000, 3000);
    securedData = (await get("configmap", "pg-config")).data!;
    baseline = await snapshot();
  });

  after(async () => {
    if (figures.length) console.log(`\n      Operator writes per pipeline round:\n${figures.map((f) => `        ${f}`).join("\n")}\n`);
    await env?.stop();
  });

  it("after the first sync: Ready, the CRs' spec and generation as the manifests, the operator's fields under its own field managers", async () => {
    await expectUntouched("first sync");
    await expectStillSecured("first sync");
    expect(count(securedData["postgresql.conf"]!, BEGIN_MARKER)).to.equal(1);
    expect(count(securedData["pg_hba.conf"]!, BEGIN_MARKER)).to.equal(1);
    // What the operator added to the workloads is owned by its field managers, not by the pipeline's.
    const owned = (o: LiveObject, manager: string) => JSON.stringify(o.metadata.managedFields?.find((m) => m.manager === manager && m.operation === "Apply")?.fieldsV1 ?? {});
    const css = await get("statefulset", "css", true);
    expect(owned(css, "imaging-db-mtls-operator")).to.contain('k:{\\"name\\":\\"mtls-server-tls\\"}');
    expect(owned(css, PIPELINE)).to.not.contain("mtls-server-tls");
    for (const [kind, name] of [["deployment", "imaging-services"], ["statefulset", "analysis-node"]] as const) {
      const w = await get(kind, name, true);
      const ours = owned(w, "imaging-db-mtls-operator-connections");
      for (const field of ['k:{\\"name\\":\\"mtls-analysis\\"}', 'k:{\\"name\\":\\"cast-imaging-mtls-ini\\"}', 'k:{\\"name\\":\\"CASTCONNECTIONEXTRAPARAMETERS\\"}', 'k:{\\"mountPath\\":\\"/etc/cast-imaging/mtls/analysis\\"}']) {
        expect(ours, `${kind} ${name}: ${field} owned by imaging-db-mtls-operator-connections`).to.contain(field);
        expect(owned(w, PIPELINE), `${kind} ${name}: ${field} not owned by ${PIPELINE}`).to.not.contain(field);
      }
      expect(w.spec?.template?.spec.volumes?.map((v) => v.name)).to.include.members(["mtls-analysis", "cast-imaging-mtls-ini"]);
    }
    // The PostgreSQL ConfigMap is written by merge patch: the operator owns the two file keys it changed (and its
    // claim label) through an Update entry, which a forced apply of the pipeline can take back.
    const cm = await get("configmap", "pg-config", true);
    const cmOwner = cm.metadata.managedFields?.find((m) => m.manager === "imaging-db-mtls-operator");
    expect(cmOwner?.operation).to.equal("Update");
    expect(JSON.stringify(cmOwner?.fieldsV1)).to.contain('"f:postgresql.conf"').and.to.contain('"f:pg_hba.conf"').and.to.contain('"f:mtls.imaging.dev/owner"');
  });

  it(`${ROUNDS} server-side apply rounds of the CRs and the workloads: no spec change, no re-issue, no rollout, zero operator writes`, async () => {
    for (let round = 1; round <= ROUNDS; round++) {
      const since = new Date();
      await serverSideApply([sdbManifest, imcManifest, databaseStatefulSet, ...cast]);
      const writes = await settle(since);
      figures.push(`SSA of the CRs and workloads, round ${round}: ${writes.length} ${JSON.stringify(writes)}`);
      expect(writes, `operator writes after SSA round ${round}`).to.deep.equal([]);
      await expectUntouched(`SSA round ${round}`);
    }
    // The pipeline owns what it applies, the operator what it added: both entries are there, side by side.
    const dep = await get("deployment", "imaging-services", true);
    expect(dep.metadata.managedFields?.filter((m) => m.operation === "Apply").map((m) => m.manager).sort()).to.deep.equal([PIPELINE, "imaging-db-mtls-operator-connections"]);
    await expectStillSecured("after the SSA rounds");
  });

  it("client-side kubectl apply rounds of the CRs and the workloads (older pipelines): the strategic merge keeps the operator's entries, no pod template changes, zero operator writes", async () => {
    for (let round = 1; round <= 2; round++) {
      const since = new Date();
      const before = baseline.workloads;
      await clientSideApply([sdbManifest, imcManifest, databaseStatefulSet, ...cast]);
      const writes = await settle(since);
      figures.push(`client-side apply of the CRs and workloads, round ${round}: ${writes.length} ${JSON.stringify(writes)}`);
      expect(writes, `operator writes after client-side apply round ${round}: ${await trail(since)}`).to.deep.equal([]);
      if (round === 1) {
        // The first adds kubectl's last-applied annotation to the objects the pipeline created server-side: both
        // Deployments, the one the operator mounts into and the one nobody else touches, go up by exactly one.
        await expectUntouched(`client-side apply round ${round}`, "asPipelineAlone");
        const now = (await snapshot()).workloads;
        expect(now.imagingServices.generation).to.equal(before.imagingServices.generation! + 1);
        expect(now.imagingViewer.generation).to.equal(before.imagingViewer.generation! + 1);
        expect((await get("deployment", "imaging-services")).metadata.annotations?.[LAST_APPLIED]).to.be.a("string");
      } else {
        // The second is a no-op: the three-way merge finds nothing to change.
        await expectUntouched(`client-side apply round ${round}`);
      }
    }
  });

  it(`${ROUNDS} server-side apply rounds of the original ConfigMap (the managed blocks dropped): the operator restores exactly its blocks each round, in a bounded number of writes`, async () => {
    for (let round = 1; round <= ROUNDS; round++) {
      const since = new Date();
      const applied = JSON.parse(await kubectl(["apply", "--server-side", "--force-conflicts", `--field-manager=${PIPELINE}`, "-o", "json", "-f", "-"], JSON.stringify(configMapManifest))) as LiveObject;
      // The pipeline's apply did drop the blocks (the operator's Update ownership of the keys does not protect them).
      expect(applied.data).to.deep.equal(configMapManifest.data);
      await waitFor("the managed blocks back", async () => canonical((await get("configmap", "pg-config")).data) === canonical(securedData), 20_000, 100);
      const writes = await settle(since);
      figures.push(`SSA of the original ConfigMap, round ${round}: ${writes.length} ${JSON.stringify(writes)}`);
      const cm = await get("configmap", "pg-config");
      const data = cm.data!;
      // The operator's claim label, which the manifest does not carry, was never touched by the pipeline.
      expect(cm.metadata.labels?.["mtls.imaging.dev/owner"]).to.equal("SecureDatabase.db");
      for (const key of ["postgresql.conf", "pg_hba.conf"]) {
        expect(count(data[key]!, BEGIN_MARKER), `${key}: one managed block`).to.equal(1);
        expect(count(data[key]!, END_MARKER), `${key}: one managed block`).to.equal(1);
      }
      expect(data).to.deep.equal(securedData);
      // One merge patch of the ConfigMap, the status (it records the ConfigMap's resourceVersion), and in the first
      // round an event (the same event again is not repeated for 10 minutes). Nothing else: no Secret, no workload.
      expect(writes.filter((w) => w !== "create events").sort(), `operator writes after ConfigMap round ${round}`).to.deep.equal(["patch configmaps pg-config", "patch securedatabases/status db"]);
      expect(writes.length).to.be.at.most(3);
      // The "kubelet" has laid the restored files down again (the server was never reloaded in between).
      await waitFor("the restored files on disk", async () => (await readFile(join(pg.dataDir, "pg_hba.conf"), "utf8")) === securedData["pg_hba.conf"] && (await readFile(join(pg.dataDir, "postgresql.conf"), "utf8")) === securedData["postgresql.conf"], 10_000, 100);
      await expectUntouched(`ConfigMap SSA round ${round}`);
      await expectStillSecured(`ConfigMap SSA round ${round}`);
    }
  });

  it("a client-side apply round of the original ConfigMap converges the same way", async () => {
    const since = new Date();
    await clientSideApply([configMapManifest]);
    await waitFor("the managed blocks back", async () => canonical((await get("configmap", "pg-config")).data) === canonical(securedData), 20_000, 100);
    const writes = await settle(since);
    figures.push(`client-side apply of the original ConfigMap: ${writes.length} ${JSON.stringify(writes)}`);
    expect(writes.filter((w) => w !== "create events").sort()).to.deep.equal(["patch configmaps pg-config", "patch securedatabases/status db"]);
    await expectUntouched("ConfigMap client-side apply");
    await expectStillSecured("ConfigMap client-side apply");
  });

  /**
   * Full syncs of a pipeline configured as docs/gitops.md says. The first one after the change of configuration
   * may change the ConfigMap's metadata (managedFields, and kubectl's client-side-apply migration after the
   * client-side rounds above): the operator then writes only its status, which records the ConfigMap's
   * resourceVersion. From then on the pipeline's apply changes nothing and the operator writes nothing: a fixpoint.
   */
  const fixpoint = async (label: string, configMap: () => Promise<Manifest | undefined>) => {
    for (let round = 1; round <= ROUNDS; round++) {
      const cmBefore = (await get("configmap", "pg-config")).metadata.resourceVersion;
      const since = new Date();
      const cm = await configMap();
      await serverSideApply([...(cm ? [cm] : []), databaseStatefulSet, ...cast, sdbManifest, imcManifest]);
      const writes = await settle(since);
      figures.push(`${label}, round ${round}: ${writes.length} ${JSON.stringify(writes)}`);
      const live = await get("configmap", "pg-config");
      expect(live.data, `${label} ${round}: the ConfigMap keeps the operator's blocks`).to.deep.equal(securedData);
      if (round === 1) {
        expect(writes.filter((w) => w !== "patch securedatabases/status db"), `${label} ${round}: ${await trail(since)}`).to.deep.equal([]);
        expect(writes.length, `${label} ${round}: ${await trail(since)}`).to.be.at.most(3);
      } else {
        expect(writes, `operator writes, ${label} ${round}: ${await trail(since)}`).to.deep.equal([]);
        expect(live.metadata.resourceVersion, `${label} ${round}: the pipeline's apply is a no-op`).to.equal(cmBefore);
      }
      expect((await sdb()).status?.configMap?.resourceVersion).to.equal(live.metadata.resourceVersion);
      await expectUntouched(`${label} ${round}`, round === 1 ? "asPipelineAlone" : "exact");
    }
  };

  it(`configured as docs/gitops.md says for Argo CD (RespectIgnoreDifferences: the file keys applied as they are live): ${ROUNDS} full syncs reach a fixpoint, zero operator writes`, async () => {
    // What Argo CD does with ignoreDifferences on /data/postgresql.conf and /data/pg_hba.conf and
    // RespectIgnoreDifferences=true: the ignored fields of the desired state take their live values before the apply.
    await fixpoint("Argo CD sync, file keys as live", async () => {
      const live = (await get("configmap", "pg-config")).data!;
      return { ...configMapManifest, data: { ...(configMapManifest.data as Record<string, string>), "postgresql.conf": live["postgresql.conf"]!, "pg_hba.conf": live["pg_hba.conf"]! } };
    });
  });

  it(`configured as docs/gitops.md says for Flux (the ConfigMap applied without its file keys; ssa: IfNotPresent): ${ROUNDS} full syncs reach a fixpoint, zero operator writes`, async () => {
    // Without the keys the pipeline only gives up its own claim on them: the operator's merge patch still owns
    // them, so server-side apply keeps them.
    await fixpoint("sync with the ConfigMap's file keys left out", async () => ({ apiVersion: configMapManifest.apiVersion, kind: configMapManifest.kind, metadata: configMapManifest.metadata }));
    // kustomize.toolkit.fluxcd.io/ssa: IfNotPresent: an existing ConfigMap is not applied at all.
    await fixpoint("sync with the ConfigMap left alone (ssa: IfNotPresent)", async () => undefined);
  });
});
