import { expect } from "chai";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { SecureDatabase } from "../../src/api/types";
import { BEGIN_MARKER as MANAGED_BLOCK_BEGIN } from "../../src/postgres/managed-block";
import { secretBytes, type SecretObject } from "../../src/kube/secrets";
import { generateCA, issueServerCertificate } from "../../src/pki";
import { controlPlane } from "../support/hooks";
import { condition, getCASecret, getJson, kubectlOk, waitForCondition, type ConditionView } from "../support/kubectl-json";
import { caKeySecret } from "../support/operator";
import { OPERATOR_USER } from "../support/controlplane";
import { startOperatorInNamespace, startOperatorWithDatabase, type OperatorInNamespace, type OperatorWithDatabase } from "../support/operator-fixture";
import type { PostgresServer } from "../support/postgres";
import { waitFor } from "../support/process";
import { caFromSecret, psqlAs, strangerCA, writeClientFiles, type ClientFiles } from "../support/mtls-client";
import { SECURE_DATABASE_OPT_IN_ANNOTATION } from "../../src/api/opt-in";
import { managedLabels } from "../../src/api/types";

const WRITE_VERBS = new Set(["create", "update", "patch", "delete", "deletecollection"]);

const apply = (yaml: string) => kubectlOk(["apply", "-f", "-"], yaml);
const waitForSdb = (ns: string, name: string, type: string, predicate: (c: ConditionView) => boolean, timeoutMs?: number) => waitForCondition<SecureDatabase>("sdb", ns, name, type, predicate, timeoutMs);

describe("SecureDatabase end to end (real API server, real PostgreSQL)", function () {
  this.timeout(180_000);
  let env: OperatorWithDatabase;
  let ns: string;
  let pg: PostgresServer;
  let client: ClientFiles | undefined;

  before(async () => {
    env = await startOperatorWithDatabase({ name: "sdb", databases: [{ roles: ["app"] }] });
    ({ ns, pg } = env);
  });

  after(async () => {
    await env?.stop();
    await client?.cleanup();
  });

  it("secures the server: Ready, verified live with the serial it serves", async () => {
    await apply(env.db.secureDatabaseYaml());
    const sdb = await waitForSdb(ns, "db", "Ready", (c) => c.status === "True", 90_000);
    expect(condition(sdb, "Verified")?.reason).to.equal("ServingCurrentCertificate");
    expect(sdb.status?.verification?.servedSerialNumber).to.equal(sdb.status?.serverCertificate?.serialNumber);
    expect(sdb.status?.observedGeneration).to.equal(sdb.metadata.generation);
    expect(sdb.metadata.finalizers).to.include("mtls.imaging.dev/cleanup");
    // The first switch-over needed one restart (the server did not serve TLS yet); later changes reload over SQL.
    expect(env.db.syncer.restarts).to.equal(1);
  });

  it("writes the Secrets with our labels and an owner reference, the CA key in the key namespace only, and the managed blocks into the ConfigMap", async () => {
    const sdb = await getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns]);
    const labels = { "app.kubernetes.io/managed-by": "imaging-db-mtls-operator", "mtls.imaging.dev/owner": "SecureDatabase.db" };
    const serverSecret = await getJson<SecretObject>(["get", "secret", "db-server-tls", "-n", ns]);
    expect(serverSecret.type).to.equal("kubernetes.io/tls");
    expect(serverSecret.metadata.labels).to.include(labels);
    expect(serverSecret.metadata.ownerReferences?.[0]).to.include({ kind: "SecureDatabase", name: "db", uid: sdb.metadata.uid, controller: true });
    // The CA's key: in the key namespace, labelled with its database's namespace (no owner reference crosses namespaces).
    const caSecret = await getCASecret<SecretObject>(ns, "db-ca");
    expect(caSecret.type).to.equal("kubernetes.io/tls");
    expect(caSecret.metadata.labels).to.include({ ...labels, "mtls.imaging.dev/owner-namespace": ns });
    expect(caSecret.metadata.ownerReferences).to.equal(undefined);
    expect(sdb.status?.ca?.keySecret).to.equal(`${caSecret.metadata.namespace}/${caSecret.metadata.name}`);
    // The database's namespace holds no CA key at all: no Secret there has a key that matches the CA certificate.
    const caKey = secretBytes(caSecret)["tls.key"]!;
    const all = await getJson<{ items: SecretObject[] }>(["get", "secrets", "-n", ns]);
    expect(all.items.map((x) => x.metadata.name)).to.not.include("db-ca");
    expect(all.items.filter((x) => Object.values(secretBytes(x)).some((v) => v.equals(caKey))).map((x) => x.metadata.name)).to.deep.equal([]);
    const server = await getJson<SecretObject>(["get", "secret", "db-server-tls", "-n", ns]);
    expect(Object.keys(server.data ?? {}).sort()).to.deep.equal(["ca.crl", "ca.crt", "tls.crt", "tls.key"]);
    const cm = await getJson<{ data: Record<string, string> }>(["get", "configmap", "pg-config", "-n", ns]);
    expect(cm.data["postgresql.conf"]!.startsWith(env.db.originalConf)).to.equal(true);
    expect(cm.data["postgresql.conf"]).to.contain(MANAGED_BLOCK_BEGIN).and.to.contain("ssl = on");
    expect(cm.data["pg_hba.conf"]!.startsWith(MANAGED_BLOCK_BEGIN)).to.equal(true);
    expect(cm.data["pg_hba.conf"]).to.contain("cert clientcert=verify-full");
    const sts = await getJson<{ spec: { template: { spec: { volumes: { name: string; secret?: { secretName: string } }[]; containers: { name: string; env: unknown[]; volumeMounts?: { mountPath: string; subPath?: string }[] }[] } } } }>(["get", "statefulset", "css", "-n", ns]);
    const vol = sts.spec.template.spec.volumes.find((v) => v.name === "mtls-server-tls");
    expect(vol?.secret?.secretName).to.equal("db-server-tls");
    const container = sts.spec.template.spec.containers[0]!;
    expect(container.volumeMounts).to.deep.include({ name: "mtls-server-tls", mountPath: join(pg.dataDir, "tls"), readOnly: true });
    expect(container.env).to.deep.equal([{ name: "KEEP", value: "me" }, { name: "PGDATA", value: pg.dataDir }]);
    const layout = await getJson<{ status: { server: Record<string, string> } }>(["get", "sdb", "db", "-n", ns]);
    expect(layout.status.server).to.include({
      configuration: "ConfigMap",
      postgresqlConf: `${pg.dataDir}/postgresql.conf (ConfigMap pg-config, key postgresql.conf, mounted as a directory: live)`,
      hbaFile: `${pg.dataDir}/pg_hba.conf (ConfigMap pg-config, key pg_hba.conf, mounted as a directory: live)`,
    });
  });

  it("lets psql in with an issued client certificate under verify-full, and refuses every other path", async () => {
    const ca = await caFromSecret(await getCASecret<SecretObject>(ns, "db-ca"));
    client = await writeClientFiles(ca, "app", ca.certPem);
    const base = { host: "localhost", port: pg.port, user: "app" };
    const ok = await psqlAs(client, { ...base, sslmode: "verify-full", command: "SELECT client_dn || ' ' || client_serial FROM pg_stat_ssl WHERE pid = pg_backend_pid()" });
    expect(ok.stderr).to.equal("");
    expect(ok.stdout.trim()).to.equal(`/CN=app ${client.serialNumberDecimal}`);

    const noCert = await psqlAs(undefined, { ...base, sslmode: "require", command: "SELECT 1" });
    expect(noCert.code).to.not.equal(0);
    expect(noCert.stderr).to.match(/certificate|pg_hba\.conf rejects/);

    const plain = await psqlAs(client, { ...base, sslmode: "disable", command: "SELECT 1" });
    expect(plain.code).to.not.equal(0);
    expect(plain.stderr).to.contain("pg_hba.conf rejects connection");
    expect(plain.stderr).to.contain("no encryption");

    const stranger = await writeClientFiles(await strangerCA(), "app", ca.certPem);
    try {
      const other = await psqlAs(stranger, { ...base, sslmode: "verify-full", command: "SELECT 1" });
      expect(other.code).to.not.equal(0);
      expect(other.stderr).to.match(/certificate verify failed|unknown ca|alert/i);
    } finally {
      await stranger.cleanup();
    }
  });

  it("writes nothing when it reconciles an unchanged object", async () => {
    const cp = controlPlane();
    await env.operator.secureDatabaseQueue.idle();
    const since = new Date();
    // A label change is a watch event (a reconcile) that changes nothing the operator cares about.
    await cp.kubectl(["label", "sdb", "db", "-n", ns, "touched=yes"]);
    await new Promise((r) => setTimeout(r, 1500));
    await env.operator.secureDatabaseQueue.idle();
    const writes = (await cp.auditEvents(OPERATOR_USER, since)).filter((e) => WRITE_VERBS.has(e.verb));
    expect(writes.map((e) => `${e.verb} ${e.objectRef?.resource}/${e.objectRef?.name}`)).to.deep.equal([]);
  });

  it("reports a second SecureDatabase that claims the same ConfigMap, and overwrites nothing", async () => {
    // Opted in to both (else the second is refused earlier, OptInMissing): one ConfigMap still serves one database.
    await controlPlane().kubectl(["annotate", "--overwrite", "-n", ns, "configmap/pg-config", "mtls.imaging.dev/secure-database=db,db2"]);
    const before = await getJson<{ data: Record<string, string>; metadata: { resourceVersion: string } }>(["get", "configmap", "pg-config", "-n", ns]);
    await apply(env.db.secureDatabaseYaml("db2").replace("workloadRef: { kind: StatefulSet, name: css }", ""));
    const sdb = await waitForSdb(ns, "db2", "ConfigApplied", (c) => c.status === "False");
    expect(condition(sdb, "ConfigApplied")?.reason).to.equal("ConfigMapClaimed");
    expect(condition(sdb, "ConfigApplied")?.message).to.contain("SecureDatabase.db");
    expect(condition(sdb, "Ready")).to.include({ status: "False", reason: "ConfigMapClaimed" });
    const after = await getJson<{ data: Record<string, string>; metadata: { resourceVersion: string } }>(["get", "configmap", "pg-config", "-n", ns]);
    expect(after.data).to.deep.equal(before.data);
    await controlPlane().kubectl(["delete", "sdb", "db2", "-n", ns, "--wait=true", "--timeout=30s"]);
  });

  it("on delete, restores the ConfigMap byte for byte and removes the mount, leaving the server reachable as before", async () => {
    const owned = await controlPlane().kubectl(["get", "secret", "-n", ns, "-l", "mtls.imaging.dev/owner=SecureDatabase.db", "-o", "name"]);
    expect(owned.stdout.split("\n").filter(Boolean).sort()).to.include.members(["secret/db-server-tls"]);
    const caKey = caKeySecret(ns, "db-ca");
    expect((await controlPlane().kubectl(["get", "secret", caKey.name, "-n", caKey.namespace])).code).to.equal(0);
    const r = await controlPlane().kubectl(["delete", "sdb", "db", "-n", ns, "--wait=true", "--timeout=60s"]);
    expect(r.code, r.stderr).to.equal(0);
    // Its Secrets go with it: the cluster's garbage collector follows their owner reference.
    let left = "";
    await waitFor("the garbage collector to delete the Secrets of the deleted SecureDatabase", async () => {
      const g = await controlPlane().kubectl(["get", "secret", "-n", ns, "-l", "mtls.imaging.dev/owner=SecureDatabase.db", "-o", "name"]);
      left = g.stdout.trim();
      return g.code === 0 && left === "";
    }, 90_000, 500).catch((err: Error) => expect.fail(`${err.message}; still there: ${left}`));
    // No owner reference reaches the key namespace: the finalizer deleted the CA's key before letting the object go.
    const caLeft = await controlPlane().kubectl(["get", "secret", caKey.name, "-n", caKey.namespace]);
    expect(caLeft.code, `${caKey.namespace}/${caKey.name} is still there`).to.not.equal(0);
    expect(caLeft.stderr).to.contain("NotFound");
    const cm = await getJson<{ data: Record<string, string>; metadata: { labels?: Record<string, string> } }>(["get", "configmap", "pg-config", "-n", ns]);
    expect(cm.data["postgresql.conf"]).to.equal(env.db.originalConf);
    expect(cm.data["pg_hba.conf"]).to.equal(env.db.originalHba);
    expect(cm.metadata.labels?.["mtls.imaging.dev/owner"]).to.equal(undefined);
    const sts = await getJson<{ spec: { template: { spec: { volumes?: unknown[]; containers: { env: unknown[]; volumeMounts?: unknown[] }[] } } } }>(["get", "statefulset", "css", "-n", ns]);
    // The database's own volume stays; the operator's mount is gone.
    expect(sts.spec.template.spec.volumes).to.deep.equal([{ name: "config", configMap: { name: "pg-config", defaultMode: 420 } }]);
    expect(sts.spec.template.spec.containers[0]!.volumeMounts).to.deep.equal([{ name: "config", mountPath: pg.dataDir }]);
    expect(sts.spec.template.spec.containers[0]!.env).to.deep.equal([{ name: "KEEP", value: "me" }, { name: "PGDATA", value: pg.dataDir }]);
    await waitFor("the server files to be restored", async () => (await readFile(join(pg.dataDir, "pg_hba.conf"), "utf8")) === env.db.originalHba, 10_000);
    await waitFor("plain TCP to work again", async () => {
      await pg.reload();
      const plain = await psqlAs(undefined, { host: "127.0.0.1", port: pg.port, user: "app", sslmode: "disable", command: "SELECT 1" });
      return plain.code === 0;
    }, 30_000, 500);
  });
});

describe("SecureDatabase bad input", function () {
  this.timeout(120_000);
  let env: OperatorInNamespace;
  let ns: string;
  before(async () => {
    env = await startOperatorInNamespace({ name: "sdb-bad" });
    ns = env.ns;
  });
  after(async () => env?.stop());

  const base = (name: string, extra: string) => `apiVersion: mtls.imaging.dev/v1alpha1
kind: SecureDatabase
metadata: { name: ${name} }
spec:
  host: db.example.internal
  postgres: { configMapName: missing-config }
${extra}`;

  it("names a missing ConfigMap", async () => {
    await apply(base("no-config", "").replace("{ name: no-config }", `{ name: no-config, namespace: ${ns} }`));
    const sdb = await waitForSdb(ns, "no-config", "ConfigApplied", (c) => c.status === "False");
    expect(condition(sdb, "ConfigApplied")).to.include({ reason: "ConfigMapNotFound" });
    expect(condition(sdb, "ConfigApplied")?.message).to.contain("missing-config");
    expect(condition(sdb, "Ready")).to.include({ status: "False", reason: "ConfigMapNotFound" });
  });

  it("names a missing key in the ConfigMap", async () => {
    await apply(JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "half", namespace: ns, annotations: { [SECURE_DATABASE_OPT_IN_ANNOTATION]: "half-config" } }, data: { "postgresql.conf": "port = 5432\n" } }));
    await apply(base("half-config", "").replace("{ name: half-config }", `{ name: half-config, namespace: ${ns} }`).replace("missing-config", "half"));
    const sdb = await waitForSdb(ns, "half-config", "ConfigApplied", (c) => c.status === "False");
    expect(condition(sdb, "ConfigApplied")).to.include({ reason: "ConfigKeyMissing" });
    expect(condition(sdb, "ConfigApplied")?.message).to.contain('"pg_hba.conf"');
  });

  it("puts its block back last when someone appends a conflicting setting after it, keeping their line", async () => {
    await apply(JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "edited", namespace: ns, annotations: { [SECURE_DATABASE_OPT_IN_ANNOTATION]: "edited" } }, data: { "postgresql.conf": "port = 5432\n", "pg_hba.conf": "local all all trust\n" } }));
    await apply(base("edited", "").replace("{ name: edited }", `{ name: edited, namespace: ${ns} }`).replace("missing-config", "edited"));
    await waitForSdb(ns, "edited", "ConfigApplied", (c) => c.status === "True");
    const cm = await getJson<{ data: Record<string, string> }>(["get", "configmap", "edited", "-n", ns]);
    const edited = `${cm.data["postgresql.conf"]}ssl = off\n`;
    await apply(JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "edited", namespace: ns, annotations: { [SECURE_DATABASE_OPT_IN_ANNOTATION]: "edited" } }, data: { ...cm.data, "postgresql.conf": edited } }));
    await waitFor("the block to be last again", async () => {
      const now = await getJson<{ data: Record<string, string> }>(["get", "configmap", "edited", "-n", ns]);
      const conf = now.data["postgresql.conf"]!;
      return conf !== edited && conf.trimEnd().endsWith("# END mtls.imaging.dev managed block");
    }, 30_000, 200);
    const healed = (await getJson<{ data: Record<string, string> }>(["get", "configmap", "edited", "-n", ns])).data["postgresql.conf"]!;
    expect(healed.startsWith("port = 5432\nssl = off\n")).to.equal(true);
    expect(healed.match(/BEGIN mtls\.imaging\.dev/g)).to.have.length(1);
  });

  it("names a database workload that does not exist", async () => {
    await apply(JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "wl", namespace: ns, annotations: { [SECURE_DATABASE_OPT_IN_ANNOTATION]: "no-workload" } }, data: { "postgresql.conf": "", "pg_hba.conf": "" } }));
    await apply(base("no-workload", "  workloadRef: { kind: StatefulSet, name: ghost-db }").replace("{ name: no-workload }", `{ name: no-workload, namespace: ${ns} }`).replace("missing-config", "wl"));
    const sdb = await waitForSdb(ns, "no-workload", "WorkloadPatched", (c) => c.status === "False");
    expect(condition(sdb, "WorkloadPatched")).to.include({ reason: "WorkloadNotFound" });
    expect(condition(sdb, "WorkloadPatched")?.message).to.contain("StatefulSet ghost-db");
  });

  it("names a missing brought CA Secret and issues nothing", async () => {
    await apply(base("brought", "  ca: { mode: Provided, secretName: my-ca }").replace("{ name: brought }", `{ name: brought, namespace: ${ns} }`));
    const sdb = await waitForSdb(ns, "brought", "CAReady", (c) => c.status === "False");
    expect(condition(sdb, "CAReady")).to.include({ reason: "CASecretNotFound" });
    expect(condition(sdb, "CAReady")?.message).to.contain("my-ca");
    const secrets = await getJson<{ items: unknown[] }>(["get", "secrets", "-n", ns, "-l", "mtls.imaging.dev/owner=SecureDatabase.brought"]);
    expect(secrets.items).to.have.length(0);
  });

  it("rejects a brought CA that is not a CA, without touching it", async () => {
    const ca = await generateCA({ commonName: "x", duration: 3600_000, now: new Date() });
    const leaf = await issueServerCertificate(ca, { dnsNames: ["leaf.example"], duration: 3600_000, now: new Date() });
    await apply(JSON.stringify({ apiVersion: "v1", kind: "Secret", type: "kubernetes.io/tls", metadata: { name: "leaf-as-ca", namespace: ns, annotations: { [SECURE_DATABASE_OPT_IN_ANNOTATION]: "notaca" } }, data: { "tls.crt": Buffer.from(leaf.certPem).toString("base64"), "tls.key": Buffer.from(leaf.keyPkcs8Pem).toString("base64") } }));
    await apply(base("notaca", "  ca: { mode: Provided, secretName: leaf-as-ca }").replace("{ name: notaca }", `{ name: notaca, namespace: ${ns} }`));
    const sdb = await waitForSdb(ns, "notaca", "CAReady", (c) => c.status === "False");
    expect(condition(sdb, "CAReady")?.reason).to.equal("NotACA");
    expect(condition(sdb, "CAReady")?.message).to.contain("leaf-as-ca");
    expect(condition(sdb, "CAReady")?.message).to.not.contain("PRIVATE KEY");
  });
});

describe("SecureDatabase: the operator's own client identity exists only while it is needed", function () {
  this.timeout(120_000);
  let env: OperatorInNamespace;
  let ns: string;
  before(async () => {
    env = await startOperatorInNamespace({ name: "sdb-identity" });
    ns = env.ns;
    await apply(JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "quiet-config", namespace: ns, annotations: { [SECURE_DATABASE_OPT_IN_ANNOTATION]: "quiet" } }, data: { "postgresql.conf": "port = 5432\n", "pg_hba.conf": "local all all peer\n" } }));
  });
  after(async () => env?.stop());

  const quiet = (strategy: string) => `apiVersion: mtls.imaging.dev/v1alpha1
kind: SecureDatabase
metadata: { name: quiet, namespace: ${ns} }
spec:
  host: 127.0.0.1
  port: 1
  postgres: { configMapName: quiet-config }
  reload: { strategy: ${strategy}, adminUser: postgres }
  verification: { enabled: false }
`;
  const identity = async () => {
    const r = await kubectlOk(["get", "secret", "-n", ns, "-o", "json"]);
    return (JSON.parse(r) as { items: SecretObject[] }).items.find((s) => s.metadata.name === "quiet-operator-client-tls");
  };

  it("no SQL reload and no verification: no Secret for the admin role", async () => {
    await apply(quiet("None"));
    const sdb = await waitForSdb(ns, "quiet", "ConfigApplied", (c) => c.status === "True");
    expect(condition(sdb, "ServerCertificateReady")?.status).to.equal("True");
    expect(await identity()).to.equal(undefined);
  });

  it("SQL reloads: the identity logs in from memory, never lands in a Secret; an older operator's Secret of it is deleted", async () => {
    // What an older operator left: the identity in a Secret of the database's namespace, labelled as the database's.
    const legacy = { apiVersion: "v1", kind: "Secret", type: "kubernetes.io/tls", metadata: { name: "quiet-operator-client-tls", namespace: ns, labels: managedLabels("SecureDatabase", "quiet") }, data: { "tls.crt": "", "tls.key": "" } };
    await apply(JSON.stringify(legacy));
    await apply(quiet("SQL"));
    // The server at 127.0.0.1:1 does not exist: the SQL reload was tried (with an identity), fails, and says so.
    const sdb = await waitForSdb(ns, "quiet", "Reloaded", (c) => c.status === "False");
    expect(condition(sdb, "Reloaded")?.message).to.match(/127\.0\.0\.1:1|ECONNREFUSED|connect/);
    await waitFor("the older operator's identity Secret deleted", async () => (await identity()) === undefined, 30_000, 250);
    const all = await kubectlOk(["get", "secret", "-n", ns, "-o", "json"]);
    expect((JSON.parse(all) as { items: SecretObject[] }).items.map((s) => s.metadata.name).filter((n) => n.includes("operator"))).to.deep.equal([]);
  });
});
