/**
 * "Your PostgreSQL", live: the server started the way its packaging starts it (test/support/pod-runner.ts runs the
 * pod template's PostgreSQL with the same mounts and arguments, init containers and the image's entrypoint
 * included), the packaging installed and upgraded by the real helm v4, the operator securing it with configuration
 * CommandLine, and real psql and pgjdbc clients.
 */
import { expect } from "chai";
import { resolve } from "node:path";
import type { SecretObject } from "../../src/kube/secrets";
import { install, upgrade } from "../support/helm";
import { getCASecret, getJson, kubectlOk, waitForCondition } from "../support/kubectl-json";
import { caFromSecret, psqlAs, writeClientFiles, type ClientFiles } from "../support/mtls-client";
import { startOperatorInNamespace, type OperatorInNamespace } from "../support/operator-fixture";
import { startPodRunner, type PodRunner } from "../support/pod-runner";
import { jdbcConnect, psql } from "../support/postgres";
import { waitFor } from "../support/process";

const FIXTURES = resolve(__dirname, "..", "fixtures");
const SSL_OF_SESSION = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

interface SdbJson {
  status?: {
    server?: Record<string, unknown>;
    passwordAccess?: { users?: string[] }[];
    verification?: { lastSuccessTime?: string };
    conditions?: { type: string; status: string; reason: string; message: string }[];
  };
}

/** The SecureDatabase of README "Your PostgreSQL" for a server reached on this machine at 127.0.0.1:port. */
function secureDatabase(ns: string, name: string, host: string, port: number, workload: string, container: string, passwordRule: string, dirs = ""): string {
  return `apiVersion: mtls.imaging.dev/v1alpha1
kind: SecureDatabase
metadata: { name: ${name}, namespace: ${ns} }
spec:
  host: ${host}
  port: ${port}
  additionalIPAddresses: ["127.0.0.1"]
  postgres:
    configuration: CommandLine${dirs}
    hba:
      rules:
        - { databases: [postgres], users: [postgres] }
        ${passwordRule}
        - { databases: [all], users: [imaging_analysis] }
  workloadRef: { kind: StatefulSet, name: ${workload}, container: ${container} }
  reload: { strategy: SQL, adminUser: postgres, database: postgres }
  verification: { endpoint: "127.0.0.1:${port}", interval: 10s }
`;
}

/** What every packaging must show once secured: certificates where the rules say, passwords over TLS where they say, no plain TCP. */
async function expectSecured(
  runner: PodRunner,
  analysis: ClientFiles,
  password: { user: string; password: string; dbname: string },
  dirs = { certificates: "/etc/postgresql/tls", config: "/etc/postgresql/mtls" },
): Promise<void> {
  const base = { host: "127.0.0.1", port: runner.port };
  expect(await runner.sql("SHOW hba_file")).to.equal(`${dirs.config}/pg_hba.conf`);
  expect(await runner.sql("SHOW ssl_cert_file")).to.equal(`${dirs.certificates}/tls.crt`);
  const withCert = await psqlAs(analysis, { ...base, user: "imaging_analysis", sslmode: "verify-full", command: SSL_OF_SESSION });
  expect(withCert.stderr).to.equal("");
  expect(withCert.stdout.trim()).to.equal("t");
  const withoutCert = await psql({ ...base, user: "imaging_analysis", sslmode: "require", command: "SELECT 1" });
  expect(withoutCert.code).to.not.equal(0);
  expect(withoutCert.stderr).to.contain("connection requires a valid client certificate");
  // libpq's defaults (sslmode=prefer) and pgjdbc with a URL without SSL parameters: in by password, over TLS.
  const libpq = await psql({ ...base, ...password, command: SSL_OF_SESSION });
  expect(libpq.stderr).to.equal("");
  expect(libpq.stdout.trim()).to.equal("t");
  const jdbc = await jdbcConnect({ url: `jdbc:postgresql://127.0.0.1:${runner.port}/${password.dbname}`, user: password.user, password: password.password, query: SSL_OF_SESSION });
  expect(jdbc.stderr).to.equal("");
  expect(jdbc.stdout.trim()).to.equal("t");
  // No plain-TCP login for anyone.
  const plain = await psql({ ...base, ...password, sslmode: "disable", command: "SELECT 1" });
  expect(plain.code).to.not.equal(0);
  expect(plain.stderr).to.contain("no encryption");
}

/** Ready, verified after `since` (a restart the operator did not cause is caught by the periodic live check). */
async function verifiedAfter(ns: string, name: string, since: Date): Promise<SdbJson> {
  let last: SdbJson | undefined;
  await waitFor(`SecureDatabase ${name} verified again`, async () => {
    last = await getJson<SdbJson>(["get", "sdb", name, "-n", ns]);
    const ready = last.status?.conditions?.find((c) => c.type === "Ready");
    const success = Date.parse(last.status?.verification?.lastSuccessTime ?? "");
    return ready?.status === "True" && success >= since.getTime() - 1000;
  }, 120_000, 1000).catch((err: Error) => {
    throw new Error(`${err.message}; last conditions: ${JSON.stringify(last?.status?.conditions)}`);
  });
  return last!;
}

describe("Your PostgreSQL, live: CAST's console-postgres secured with configuration CommandLine (real helm v4, real PostgreSQL)", function () {
  this.timeout(400_000);
  let env: OperatorInNamespace;
  let runner: PodRunner | undefined;
  let analysis: ClientFiles | undefined;
  const chart = resolve(FIXTURES, "cast-imaging-chart");
  const password = { user: "operator", password: "fixture-operator", dbname: "keycloak" };

  before(async () => {
    env = await startOperatorInNamespace({ name: "cast-pg" });
    const r = await install("castimaging-v3", chart, env.ns, env.cp.kubeconfigPath, { set: { "CastStorageService.ssl": true } });
    if (r.code !== 0) throw new Error(`helm install: ${r.stderr}`);
    runner = await startPodRunner({ kubeConfig: env.cp.kubeConfig, namespace: env.ns, workload: { kind: "StatefulSet", name: "console-postgres" } });
    await runner.ready(120_000);
    await runner.sql("CREATE ROLE imaging_analysis LOGIN");
  });
  after(async () => {
    await analysis?.cleanup();
    await runner?.stop();
    await env?.stop();
  });

  it("ends serving the operator's certificate: certificates required for the roles the rules name, the chart's operator by password over TLS, no plain TCP", async () => {
    const ns = env.ns;
    const rule = "- { databases: [postgres, keycloak], users: [operator], clientCertificate: none }";
    await kubectlOk(["annotate", "statefulset/console-postgres", "-n", ns, "mtls.imaging.dev/command-line=console-postgres"]);
    await kubectlOk(["apply", "-f", "-"], secureDatabase(ns, "console-postgres", "console-postgres", runner!.port, "console-postgres", "console-postgres", rule));
    const sdb = await waitForCondition<SdbJson>("sdb", ns, "console-postgres", "Ready", (c) => c.status === "True", 180_000);
    expect(sdb.status!.server).to.include({ configuration: "CommandLine", configMapName: "console-postgres-server-config" });
    expect(sdb.status!.server!.message).to.include("CAST's bundled instance");
    expect(sdb.status!.passwordAccess?.[0]?.users).to.deep.equal(["operator"]);
    const events = await getJson<{ items: { reason: string; type: string }[] }>(["get", "events", "-n", ns, "--field-selector", "involvedObject.name=console-postgres"]);
    expect(events.items.filter((e) => e.reason === "PasswordOverTLS").map((e) => e.type)).to.include("Warning");
    const ca = await caFromSecret(await getCASecret<SecretObject>(ns, "console-postgres-ca"));
    analysis = await writeClientFiles(ca, "imaging_analysis", ca.certPem);
    await expectSecured(runner!, analysis, password);
  });

  it("keeps it through helm upgrades that re-render the server (CastStorageService.ssl off, then on with RestrictedSecurityMode), without --force-conflicts", async () => {
    const ns = env.ns;
    for (const set of [{ "CastStorageService.ssl": false }, { "CastStorageService.ssl": true, RestrictedSecurityMode: true }] as Record<string, boolean>[]) {
      const starts = runner!.starts;
      const since = new Date();
      const r = await upgrade("castimaging-v3", chart, ns, env.cp.kubeconfigPath, { reuseValues: true, set });
      expect(r.code, `helm upgrade ${JSON.stringify(set)}: ${r.stderr}`).to.equal(0);
      await waitFor("the pod to restart with the upgraded template", async () => runner!.starts > starts, 60_000);
      await runner!.ready(120_000);
      await verifiedAfter(ns, "console-postgres", since);
      await expectSecured(runner!, analysis!, password);
    }
  });
});

describe("Your PostgreSQL, live: a chart that mounts its configuration from a ConfigMap (real helm v4, real PostgreSQL)", function () {
  this.timeout(300_000);
  let env: OperatorInNamespace;
  let runner: PodRunner | undefined;
  let analysis: ClientFiles | undefined;
  const chart = resolve(FIXTURES, "postgres-configmap-chart");
  const password = { user: "keycloak_user", password: "keycloak-pw", dbname: "keycloak" };

  before(async () => {
    env = await startOperatorInNamespace({ name: "cm-pg" });
    const r = await install("pg", chart, env.ns, env.cp.kubeconfigPath);
    if (r.code !== 0) throw new Error(`helm install: ${r.stderr}`);
    runner = await startPodRunner({ kubeConfig: env.cp.kubeConfig, namespace: env.ns, workload: { kind: "StatefulSet", name: "pg" } });
    await runner.ready(120_000);
    await runner.sql("CREATE ROLE imaging_analysis LOGIN");
    await runner.sql(`CREATE ROLE keycloak_user LOGIN PASSWORD '${password.password}'`);
    await runner.sql("CREATE DATABASE keycloak OWNER keycloak_user");
  });
  after(async () => {
    await analysis?.cleanup();
    await runner?.stop();
    await env?.stop();
  });

  it("configuration ConfigMap on the chart's ConfigMap is refused before writing; CommandLine secures it and helm upgrade keeps succeeding", async () => {
    const ns = env.ns;
    const rule = "- { databases: [keycloak], users: [keycloak_user], clientCertificate: none }";
    const asConfigMap = secureDatabase(ns, "pg", "pg", runner!.port, "pg", "postgres", rule)
      .replace("configuration: CommandLine", "configMapName: pg-config");
    await kubectlOk(["apply", "-f", "-"], asConfigMap);
    await waitForCondition<SdbJson>("sdb", ns, "pg", "ConfigApplied", (c) => c.reason === "ConfigOwnedByApplier");
    await kubectlOk(["delete", "sdb", "pg", "-n", ns, "--wait=true"]);

    // The chart mounts its ConfigMap at /etc/postgresql, read-only: the operator's mounts cannot go inside it.
    await kubectlOk(["annotate", "statefulset/pg", "-n", ns, "mtls.imaging.dev/command-line=pg"]);
    await kubectlOk(["apply", "-f", "-"], secureDatabase(ns, "pg", "pg", runner!.port, "pg", "postgres", rule));
    const inside = await waitForCondition<SdbJson>("sdb", ns, "pg", "ConfigApplied", (c) => c.reason === "MountPathInsideVolume");
    expect(inside.status!.conditions!.find((c) => c.type === "ConfigApplied")!.message).to.include("lies inside the ConfigMap pg-config");
    const dirs = { certificates: "/etc/postgresql-mtls/tls", config: "/etc/postgresql-mtls/config" };
    const moved = `\n    certificateDirectory: ${dirs.certificates}\n    configDirectory: ${dirs.config}`;
    await kubectlOk(["apply", "-f", "-"], secureDatabase(ns, "pg", "pg", runner!.port, "pg", "postgres", rule, moved));
    const sdb = await waitForCondition<SdbJson>("sdb", ns, "pg", "Ready", (c) => c.status === "True", 180_000);
    expect(sdb.status!.server!.postgresqlConf).to.equal("/etc/postgresql/postgresql.conf (ConfigMap pg-config, key postgresql.conf, mounted as a directory: live)");
    const ca = await caFromSecret(await getCASecret<SecretObject>(ns, "pg-ca"));
    analysis = await writeClientFiles(ca, "imaging_analysis", ca.certPem);
    await expectSecured(runner!, analysis, password, dirs);

    // The owner changes its own setting: the upgrade succeeds, the server reads it, the mTLS configuration stays.
    const since = new Date();
    const r = await upgrade("pg", chart, ns, env.cp.kubeconfigPath, { reuseValues: true, set: { workMem: "8MB" } });
    expect(r.code, `helm upgrade: ${r.stderr}`).to.equal(0);
    await waitFor("the chart's new setting to be live", async () => {
      await runner!.sql("SELECT pg_reload_conf()").catch(() => "");
      return (await runner!.sql("SHOW work_mem").catch(() => "")) === "8MB";
    }, 60_000);
    await verifiedAfter(ns, "pg", since);
    await expectSecured(runner!, analysis, password, dirs);
  });
});
