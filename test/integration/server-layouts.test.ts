/**
 * "Your PostgreSQL": the operator reads how the database's pod template makes the server read its configuration, and
 * refuses before writing where its configuration would not take effect or would fight the files' owner. CAST's
 * chart fixture (test/fixtures/cast-imaging-chart) is installed and upgraded with the real helm v4, which applies
 * server-side: a field the operator took would make the upgrade fail.
 */
import { expect } from "chai";
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { upsertManagedBlock } from "../../src/postgres/managed-block";
import { install, upgrade } from "../support/helm";
import { getJson, kubectlOk, waitForCondition } from "../support/kubectl-json";
import { startOperatorInNamespace, type OperatorInNamespace } from "../support/operator-fixture";
import { psql, startPostgres, type PostgresServer } from "../support/postgres";
import { waitFor } from "../support/process";

const CHART = resolve(__dirname, "..", "fixtures", "cast-imaging-chart");
const RELEASE = "castimaging-v3";
const OPERATOR_MANAGER = "imaging-db-mtls-operator";

interface ObjectJson {
  metadata: { labels?: Record<string, string>; managedFields?: { manager: string; operation: string }[] };
  data?: Record<string, string>;
  spec?: {
    template: {
      spec: {
        securityContext?: { fsGroup?: number };
        volumes?: { name: string }[];
        containers: { name: string; command?: string[]; args?: string[]; volumeMounts?: { name: string; mountPath: string }[] }[];
      };
    };
  };
  status?: { server?: Record<string, unknown>; conditions?: { type: string; status: string; reason: string; message: string }[] };
}

/** A SecureDatabase that only configures (no reload over SQL, no live check): these tests are about the files. */
const filesOnly = (ns: string, name: string, postgres: string) => `apiVersion: mtls.imaging.dev/v1alpha1
kind: SecureDatabase
metadata: { name: ${name}, namespace: ${ns} }
spec:
  host: console-postgres
  port: 2285
  postgres: ${postgres}
  workloadRef: { kind: StatefulSet, name: console-postgres }
  reload: { strategy: None }
  verification: { enabled: false }
`;

describe("Your PostgreSQL: CAST's console-postgres, refused before writing (real helm v4)", function () {
  this.timeout(240_000);
  let env: OperatorInNamespace;
  let ns: string;
  const get = (what: string, name: string) => getJson<ObjectJson>(["get", what, name, "-n", ns]);
  const helmUpgrade = async (set: Record<string, string | boolean>) => {
    const r = await upgrade(RELEASE, CHART, ns, env.cp.kubeconfigPath, { reuseValues: true, set });
    expect(r.code, `helm upgrade: ${r.stderr}`).to.equal(0);
  };
  const untouched = async (configMap: string) => {
    const cm = await get("configmap", configMap);
    expect((cm.metadata.managedFields ?? []).map((f) => f.manager)).to.not.include(OPERATOR_MANAGER);
    expect(cm.metadata.labels?.["mtls.imaging.dev/owner"]).to.equal(undefined);
    const sts = await get("statefulset", "console-postgres");
    expect((sts.spec!.template.spec.volumes ?? []).map((v) => v.name)).to.not.include("mtls-server-tls");
    expect(sts.spec!.template.spec.containers[0]!.command).to.equal(undefined);
  };

  before(async () => {
    env = await startOperatorInNamespace({ name: "layouts" });
    ns = env.ns;
    const r = await install(RELEASE, CHART, ns, env.cp.kubeconfigPath, { set: { "CastStorageService.ssl": true } });
    if (r.code !== 0) throw new Error(`helm install: ${r.stderr}`);
  });
  after(async () => env?.stop());

  it("the chart's own ConfigMap: ConfigOwnedByApplier, nothing written, a Warning event, and helm upgrade keeps succeeding", async () => {
    await kubectlOk(["apply", "-f", "-"], filesOnly(ns, "owned", "{ configMapName: console-v3-pghbaconf, postgresqlConfKey: pg_hba.conf, hbaConfKey: pg_hba.conf.unused }"));
    const sdb = await waitForCondition<ObjectJson>("sdb", ns, "owned", "ConfigApplied", (c) => c.reason === "ConfigOwnedByApplier");
    const applied = sdb.status!.conditions!.find((c) => c.type === "ConfigApplied")!;
    expect(applied.message).to.include("ConfigMap console-v3-pghbaconf is applied by Helm release castimaging-v3").and.include("nothing was written");
    expect(sdb.status!.server).to.include({ configuration: "ConfigMap", owner: `Helm release ${RELEASE} (namespace ${ns})` });
    const ready = sdb.status!.conditions!.find((c) => c.type === "Ready")!;
    expect(ready).to.include({ status: "False", reason: "ConfigOwnedByApplier" });
    const events = await getJson<{ items: { reason: string; type: string }[] }>(["get", "events", "-n", ns, "--field-selector", "involvedObject.name=owned"]);
    expect(events.items.filter((e) => e.reason === "ConfigOwnedByApplier").map((e) => e.type)).to.deep.equal(["Warning"]);
    await untouched("console-v3-pghbaconf");
    await helmUpgrade({ "InitUtilImage.tag": "1.2.12" });
    await kubectlOk(["delete", "sdb", "owned", "-n", ns, "--wait=true"]);
  });

  it("blocks an older operator wrote into the chart's ConfigMap broke helm upgrade: taken back out, and the upgrade succeeds again", async () => {
    // What the issue saw: the operator's block in console-v3-pghbaconf, under its field manager.
    const before = (await get("configmap", "console-v3-pghbaconf")).data!["pg_hba.conf"]!;
    const block = upsertManagedBlock(before, "hostssl all all 0.0.0.0/0 cert clientcert=verify-full\n", "prepend");
    if (typeof block !== "string") throw new Error(block.message);
    const claimed = { metadata: { labels: { "mtls.imaging.dev/owner": "SecureDatabase.older" } }, data: { "pg_hba.conf": block } };
    await kubectlOk(["patch", "configmap", "console-v3-pghbaconf", "-n", ns, "--type=merge", `--field-manager=${OPERATOR_MANAGER}`, "-p", JSON.stringify(claimed)]);
    const failed = await upgrade(RELEASE, CHART, ns, env.cp.kubeconfigPath, { reuseValues: true });
    expect(failed.code).to.not.equal(0);
    expect(failed.stderr).to.include(`conflict with "${OPERATOR_MANAGER}"`);

    await kubectlOk(["apply", "-f", "-"], filesOnly(ns, "older", "{ configMapName: console-v3-pghbaconf, postgresqlConfKey: unused.conf, hbaConfKey: pg_hba.conf }"));
    await waitForCondition<ObjectJson>("sdb", ns, "older", "ConfigApplied", (c) => c.reason === "ConfigOwnedByApplier");
    await waitFor("the block taken out of the chart's ConfigMap", async () => (await get("configmap", "console-v3-pghbaconf")).data!["pg_hba.conf"] === before, 30_000);
    expect((await get("configmap", "console-v3-pghbaconf")).metadata.labels?.["mtls.imaging.dev/owner"]).to.equal(undefined);
    const again = await upgrade(RELEASE, CHART, ns, env.cp.kubeconfigPath, { reuseValues: true });
    expect(again.code, again.stderr).to.equal(0);
    await kubectlOk(["delete", "sdb", "older", "-n", ns, "--wait=true"]);
  });

  it("a ConfigMap of the user's own with CastStorageService.ssl=true: the chart's -c settings outrank it (SettingOverriddenByArgs)", async () => {
    await kubectlOk(["create", "configmap", "pg-own", "-n", ns, "--from-literal=postgresql.conf=max_connections = 100", "--from-literal=pg_hba.conf=local all all trust"]);
    await kubectlOk(["apply", "-f", "-"], filesOnly(ns, "args", "{ configMapName: pg-own }"));
    const sdb = await waitForCondition<ObjectJson>("sdb", ns, "args", "ConfigApplied", (c) => c.reason === "SettingOverriddenByArgs");
    const message = sdb.status!.conditions!.find((c) => c.type === "ConfigApplied")!.message;
    expect(message).to.include("-c ssl_cert_file=/var/lib/postgresql/ssl/server.crt").and.include("on container console-postgres outranks postgresql.conf");
    expect(sdb.status!.server!.hbaFile).to.equal("/etc/postgresql/pg_hba.conf (ConfigMap console-v3-pghbaconf, key pg_hba.conf, subPath: copied at pod start)");
    expect(sdb.status!.server!.commandLineSettings).to.include("-c hba_file=/etc/postgresql/pg_hba.conf");
    expect((await get("configmap", "pg-own")).data).to.deep.equal({ "postgresql.conf": "max_connections = 100", "pg_hba.conf": "local all all trust" });
    await untouched("pg-own");
    await kubectlOk(["delete", "sdb", "args", "-n", ns, "--wait=true"]);
  });

  it("with CastStorageService.ssl=false: postgresql.conf is initdb's template only (ConfigNotLive)", async () => {
    await helmUpgrade({ "CastStorageService.ssl": false });
    await kubectlOk(["apply", "-f", "-"], filesOnly(ns, "sample", "{ configMapName: pg-own }"));
    const sdb = await waitForCondition<ObjectJson>("sdb", ns, "sample", "ConfigApplied", (c) => c.reason === "ConfigNotLive");
    const message = sdb.status!.conditions!.find((c) => c.type === "ConfigApplied")!.message;
    expect(message).to.include("the server reads postgresql.conf from /var/lib/postgresql/data/postgresql.conf (volume db-data");
    expect(message).to.include("spec.postgres.configuration: CommandLine");
    await untouched("pg-own");
    await helmUpgrade({ "CastStorageService.ssl": true });
    await kubectlOk(["delete", "sdb", "sample", "-n", ns, "--wait=true"]);
  });
});

describe("Your PostgreSQL: CAST's console-postgres with configuration CommandLine, through helm upgrades (real helm v4)", function () {
  this.timeout(240_000);
  let env: OperatorInNamespace;
  let ns: string;
  const sts = async () => (await getJson<ObjectJson>(["get", "statefulset", "console-postgres", "-n", ns])) as Required<Pick<ObjectJson, "spec">>;

  before(async () => {
    env = await startOperatorInNamespace({ name: "cmdline" });
    ns = env.ns;
    const r = await install(RELEASE, CHART, ns, env.cp.kubeconfigPath, { set: { "CastStorageService.ssl": true } });
    if (r.code !== 0) throw new Error(`helm install: ${r.stderr}`);
  });
  after(async () => env?.stop());

  it("a namespace user who may write SecureDatabases but not the StatefulSet cannot change its command (kubectl --as)", async () => {
    const rbac = [
      { apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: { name: "tenant", namespace: ns }, rules: [
        { apiGroups: ["mtls.imaging.dev"], resources: ["securedatabases"], verbs: ["get", "list", "create", "update", "patch", "delete"] },
        { apiGroups: ["apps"], resources: ["statefulsets"], verbs: ["get", "list"] },
      ] },
      { apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", metadata: { name: "tenant", namespace: ns }, subjects: [{ kind: "User", name: "tenant", apiGroup: "rbac.authorization.k8s.io" }], roleRef: { kind: "Role", name: "tenant", apiGroup: "rbac.authorization.k8s.io" } },
    ];
    for (const o of rbac) await kubectlOk(["apply", "-f", "-"], JSON.stringify(o));
    const asTenant = (args: string[], input?: string) => env.cp.kubectl([...args, "--as", "tenant"], input === undefined ? {} : { input });
    expect((await asTenant(["annotate", "statefulset/console-postgres", "-n", ns, "mtls.imaging.dev/command-line=sneaky"])).code).to.not.equal(0);
    const created = await asTenant(["apply", "-f", "-"], filesOnly(ns, "sneaky", "{ configuration: CommandLine, entrypoint: /bin/sh }"));
    expect(created.code, created.stderr).to.equal(0);
    const sdb = await waitForCondition<ObjectJson>("sdb", ns, "sneaky", "ConfigApplied", (c) => c.reason === "CommandLineNotAllowed");
    expect(sdb.status!.conditions!.find((c) => c.type === "ConfigApplied")!.message).to.include(`kubectl annotate statefulset/console-postgres mtls.imaging.dev/command-line=sneaky`);
    const live = await sts();
    expect(live.spec.template.spec.containers[0]!.command).to.equal(undefined);
    expect((live.spec.template.spec.volumes ?? []).map((v) => v.name)).to.not.include("mtls-server-tls");
    expect((await kubectlOk(["get", "configmap", "-n", ns, "-o", "name"]))).to.not.include("sneaky-server-config");
    expect((await asTenant(["delete", "sdb", "sneaky", "-n", ns, "--wait=true"])).code).to.equal(0);
  });

  it("puts the settings after the chart's arguments, mounts its pg_hba.conf, and every helm upgrade (ssl off and on again) succeeds and keeps them", async () => {
    // The workload's owner allows it; helm upgrades leave an annotation the chart does not render alone.
    await kubectlOk(["annotate", "statefulset/console-postgres", "-n", ns, "mtls.imaging.dev/command-line=css"]);
    await kubectlOk(["apply", "-f", "-"], filesOnly(ns, "css", "{ configuration: CommandLine }"));
    const sdb = await waitForCondition<ObjectJson>("sdb", ns, "css", "ConfigApplied", (c) => c.reason === "CommandLineApplied");
    expect(sdb.status!.server).to.include({ configuration: "CommandLine", configMapName: "css-server-config", owner: `Helm release ${RELEASE} (namespace ${ns})` });
    expect(sdb.status!.server!.message).to.include("overriding -c ssl=on -c ssl_cert_file=/var/lib/postgresql/ssl/server.crt");
    const cm = await getJson<ObjectJson>(["get", "configmap", "css-server-config", "-n", ns]);
    expect(cm.data!["pg_hba.conf"]).to.include("hostssl all all 0.0.0.0/0 cert clientcert=verify-full").and.include("hostnossl all,replication all 0.0.0.0/0 reject");
    const check = async (args: string[] | undefined) => {
      const live = await sts();
      const c = live.spec.template.spec.containers.find((x) => x.name === "console-postgres")!;
      expect(c.command![0]).to.equal("/bin/sh");
      expect(c.command![2]).to.include('exec docker-entrypoint.sh "$@" -c ssl=on -c ssl_cert_file=/etc/postgresql/tls/tls.crt')
        .and.include("-c hba_file=/etc/postgresql/mtls/pg_hba.conf");
      expect(c.args).to.deep.equal(args);
      expect(c.volumeMounts).to.deep.include({ name: "mtls-server-config", mountPath: "/etc/postgresql/mtls", readOnly: true });
      expect(live.spec.template.spec.securityContext?.fsGroup).to.equal(999);
    };
    const chartArgs = (await sts()).spec.template.spec.containers[0]!.args;
    expect(chartArgs).to.include("hba_file=/etc/postgresql/pg_hba.conf");
    await check(chartArgs);
    const upgrades: Record<string, string | boolean>[] = [{ "InitUtilImage.tag": "1.2.12" }, { "CastStorageService.ssl": false }, { "CastStorageService.ssl": true, RestrictedSecurityMode: true }];
    for (const set of upgrades) {
      const r = await upgrade(RELEASE, CHART, ns, env.cp.kubeconfigPath, { reuseValues: true, set });
      expect(r.code, `helm upgrade ${JSON.stringify(set)}: ${r.stderr}`).to.equal(0);
      await check(set["CastStorageService.ssl"] === false ? undefined : chartArgs);
      const annotations = (await getJson<{ metadata: { annotations?: Record<string, string> } }>(["get", "statefulset", "console-postgres", "-n", ns])).metadata.annotations;
      expect(annotations?.["mtls.imaging.dev/command-line"]).to.equal("css");
    }
  });
});

describe("Your PostgreSQL: a server outside the cluster (configuration External, real PostgreSQL)", function () {
  this.timeout(180_000);
  let env: OperatorInNamespace;
  let pg: PostgresServer;

  before(async () => {
    env = await startOperatorInNamespace({ name: "external" });
    pg = await startPostgres({ name: "external" });
  });
  after(async () => {
    await env?.stop();
    await pg?.stop();
  });

  it("publishes the lines and the files for the DBA, waits without blocking Ready on them, and is verified live once the DBA applied them", async () => {
    const ns = env.ns;
    const dir = `${pg.dataDir}/tls`;
    await kubectlOk(["apply", "-f", "-"], `apiVersion: mtls.imaging.dev/v1alpha1
kind: SecureDatabase
metadata: { name: ext, namespace: ${ns} }
spec:
  host: localhost
  port: ${pg.port}
  additionalIPAddresses: ["127.0.0.1"]
  postgres: { configuration: External, certificateDirectory: ${dir} }
  reload: { strategy: None }
  verification: { endpoint: "127.0.0.1:${pg.port}", interval: 10s }
`);
    const waiting = await waitForCondition<ObjectJson>("sdb", ns, "ext", "ConfigApplied", (c) => c.reason === "ConfigPublished");
    expect(waiting.status!.conditions!.find((c) => c.type === "ConfigApplied")!.status).to.equal("Unknown");
    expect(waiting.status!.server).to.include({ configuration: "External", configMapName: "ext-server-config" });
    // Not Ready while the server does not serve the material: the live check says so, not the published lines.
    expect(waiting.status!.conditions!.find((c) => c.type === "Ready")!.status).to.equal("False");

    // The DBA's part: the files of the server Secret, and the published lines into the server's own files.
    const lines = (await getJson<ObjectJson>(["get", "configmap", "ext-server-config", "-n", ns])).data!;
    expect(lines["postgresql.conf"]).to.include(`ssl_cert_file = '${dir}/tls.crt'`).and.include(`ssl_crl_file = '${dir}/ca.crl'`);
    const secret = await getJson<{ data: Record<string, string> }>(["get", "secret", "ext-server-tls", "-n", ns]);
    for (const key of ["tls.crt", "tls.key", "ca.crt", "ca.crl"]) await pg.writeFile(`tls/${key}`, Buffer.from(secret.data[key]!, "base64"), 0o600);
    const conf = await readFile(`${pg.dataDir}/postgresql.conf`, "utf8");
    const hba = await readFile(`${pg.dataDir}/pg_hba.conf`, "utf8");
    await pg.setConfig({ postgresqlConf: `${conf}\n${lines["postgresql.conf"]}`, pgHba: `${lines["pg_hba.conf"]}\n${hba}` });
    await pg.reload();

    const ready = await waitForCondition<ObjectJson>("sdb", ns, "ext", "Ready", (c) => c.status === "True", 60_000);
    expect(ready.status!.conditions!.find((c) => c.type === "Verified")).to.include({ status: "True" });
    const plain = await psql({ host: "127.0.0.1", port: pg.port, user: "postgres", sslmode: "disable", command: "SELECT 1" });
    expect(plain.code).to.not.equal(0);
  });
});
