/**
 * The pod runner (test/support/pod-runner.ts): a workload's PostgreSQL container, read from the real API server, run
 * as a real PostgreSQL process with its volumes at their container paths, its arguments and its environment. A
 * hand-written StatefulSet, then CAST's chart fixture installed and upgraded by the real helm.
 */
import { expect } from "chai";
import { X509Certificate } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { resolve } from "node:path";
import { install, upgrade } from "../support/helm";
import { controlPlane } from "../support/hooks";
import { kubectlOk } from "../support/kubectl-json";
import { startPodRunner, type PodRunner } from "../support/pod-runner";
import { cleanPgEnv } from "../support/postgres";
import { run, waitFor, type RunResult } from "../support/process";

const CHART = resolve(__dirname, "..", "fixtures", "cast-imaging-chart");
const RELEASE = "castimaging-v3";

/** psql over TCP from this machine, as a client on the network would reach the pod. */
function tcpPsql(port: number, user: string, password: string, sslmode: string, command: string): Promise<RunResult> {
  const conninfo = `host=127.0.0.1 port=${port} user=${user} dbname=postgres sslmode=${sslmode}`;
  return run("psql", ["-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-c", command], { env: cleanPgEnv({ PGPASSWORD: password }), timeoutMs: 30_000 });
}

/** What this machine has at the paths the runner mounts over inside its namespaces. */
function hostView(): Record<string, string[] | boolean> {
  const list = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir).sort() : []);
  return {
    etcPostgresql: list("/etc/postgresql"),
    varLibPostgresql: list("/var/lib/postgresql"),
    usrSharePostgresql: list("/usr/share/postgresql"),
    opt: list("/opt"),
    initdbD: existsSync("/docker-entrypoint-initdb.d"),
    podRunnerDir: existsSync("/.pod-runner"),
  };
}

/**
 * PostgreSQL with its configuration in a ConfigMap mounted as a directory, a claim for the data, a Secret's item
 * readable through fsGroup only; `viaShell` starts it through `sh -c 'exec docker-entrypoint.sh "$@" …'` instead.
 */
const handWritten = (workMem: string, viaShell = false) => `apiVersion: v1
kind: ConfigMap
metadata: { name: pg-config }
data:
  postgresql.conf: |
    listen_addresses = '*'
    max_connections = 20
    shared_buffers = 16MB
    work_mem = '${workMem}'
  pg_hba.conf: |
    local all all               trust
    host  all all 127.0.0.1/32  scram-sha-256
---
apiVersion: v1
kind: Secret
metadata: { name: pg-password }
stringData: { password: hand-written-secret }
---
apiVersion: apps/v1
kind: StatefulSet
metadata: { name: db }
spec:
  serviceName: db
  replicas: 1
  selector: { matchLabels: { app: db } }
  template:
    metadata:
      labels: { app: db }
    spec:
      securityContext: { fsGroup: 999, fsGroupChangePolicy: OnRootMismatch }
      containers:
        - name: postgres
          image: postgres:15${viaShell ? `
          command: [sh, -c, 'exec docker-entrypoint.sh "$@" -c statement_timeout=7s', sh]` : ""}
          args: [-c, config_file=/etc/postgresql/postgresql.conf, -c, hba_file=/etc/postgresql/pg_hba.conf]
          env:
            - name: POSTGRES_PASSWORD
              valueFrom: { secretKeyRef: { name: pg-password, key: password } }
          volumeMounts:
            - { name: config, mountPath: /etc/postgresql }
            - { name: data, mountPath: /var/lib/postgresql/data }
            - { name: secret, mountPath: /var/lib/postgresql/secret }
      volumes:
        - name: config
          configMap: { name: pg-config }
        - name: secret
          secret: { secretName: pg-password, defaultMode: 0400, items: [{ key: password, path: sub/pw }] }
  volumeClaimTemplates:
    - metadata: { name: data }
      spec: { accessModes: [ReadWriteOnce], resources: { requests: { storage: 1Gi } } }
`;

describe("pod runner: a workload's PostgreSQL container as a real process (real API server, real PostgreSQL, real helm)", function () {
  this.timeout(240_000);
  const runners: PodRunner[] = [];
  const namespaces: string[] = [];
  const before = hostView();

  afterEach(async function () {
    this.timeout(120_000);
    // Every process stopped and every temp dir removed, whatever the test did.
    await Promise.allSettled(runners.splice(0).map((r) => r.stop()));
  });

  after(async function () {
    this.timeout(60_000);
    for (const ns of namespaces) await controlPlane().kubectl(["delete", "namespace", ns, "--wait=false"]);
  });

  async function namespace(prefix: string): Promise<string> {
    const ns = await controlPlane().createNamespace(prefix);
    namespaces.push(ns);
    return ns;
  }

  async function runner(ns: string, kind: "StatefulSet" | "Deployment", name: string): Promise<PodRunner> {
    const r = await startPodRunner({ kubeConfig: controlPlane().kubeConfig, namespace: ns, workload: { kind, name } });
    runners.push(r);
    return r;
  }

  it("a hand-written StatefulSet: ConfigMap at /etc/postgresql, live ConfigMap change + reload, restart on a template change, the claim kept", async () => {
    const ns = await namespace("pod-runner");
    await kubectlOk(["apply", "-n", ns, "-f", "-"], handWritten("4MB"));
    const pg = await runner(ns, "StatefulSet", "db");
    await pg.ready(90_000);
    expect(pg.starts).to.equal(1);

    expect(await pg.sql("SHOW hba_file")).to.equal("/etc/postgresql/pg_hba.conf");
    expect(await pg.sql("SHOW config_file")).to.equal("/etc/postgresql/postgresql.conf");
    expect(await pg.sql("SHOW data_directory")).to.equal("/var/lib/postgresql/data");
    expect(await pg.sql("SHOW work_mem")).to.equal("4MB");
    // The image's user 999 is this machine's postgres user; the entrypoint dropped to it from root.
    const uid = (await run("id", ["-u", "postgres"])).stdout.trim();
    expect(await pg.sql("SELECT pg_read_file('/proc/self/status')")).to.match(new RegExp(`^Uid:\\s+${uid}\\s`, "m"));
    // initdb took the password from the Secret (secretKeyRef), and TCP on the runner's port asks for it.
    const good = await tcpPsql(pg.port, "postgres", "hand-written-secret", "disable", "SELECT current_user");
    expect(good.stdout.trim(), good.stderr).to.equal("postgres");
    const bad = await tcpPsql(pg.port, "postgres", "wrong", "disable", "SELECT 1");
    expect(bad.code).to.not.equal(0);
    expect(bad.stderr).to.match(/password authentication failed/);
    expect(await pg.readContainerFile("/etc/postgresql/pg_hba.conf")).to.match(/host\s+all all 127\.0\.0\.1\/32\s+scram-sha-256/);
    // Nothing of this machine changed at the paths mounted over inside the namespace.
    expect(hostView()).to.deep.equal(before);
    // The Secret's item, mode 0400: root-owned, group fsGroup (999: postgres), so the server reads it through its group.
    expect(await pg.sql("SELECT pg_read_file('/var/lib/postgresql/secret/sub/pw')")).to.equal("hand-written-secret");
    await pg.sql("CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)");

    // The kubelet lays a changed ConfigMap down in place; the server reads it on reload.
    await kubectlOk(["apply", "-n", ns, "-f", "-"], handWritten("8MB"));
    await waitFor("the changed ConfigMap in the container", async () => (await pg.readContainerFile("/etc/postgresql/postgresql.conf")).includes("work_mem = '8MB'"), 20_000, 200);
    expect(await pg.sql("SHOW work_mem"), "not before a reload").to.equal("4MB");
    await pg.sql("SELECT pg_reload_conf()");
    await waitFor("work_mem 8MB after pg_reload_conf()", async () => (await pg.sql("SHOW work_mem")) === "8MB", 10_000, 100);
    expect(pg.starts, "a ConfigMap change restarts nothing").to.equal(1);

    // A template change is a new pod: a fresh start on the same claim (no initdb), the same port. This one goes
    // through `sh -c`, which finds the entrypoint on the container's PATH and adds an argument.
    await kubectlOk(["apply", "-n", ns, "-f", "-"], handWritten("8MB", true));
    await waitFor("a new pod", async () => pg.starts === 2, 30_000, 100);
    await pg.ready(90_000);
    expect(await pg.sql("SELECT x FROM kept")).to.equal("42");
    expect(await pg.sql("SHOW work_mem")).to.equal("8MB");
    expect(await pg.sql("SHOW statement_timeout")).to.equal("7s");
    expect(await pg.sql("SHOW hba_file")).to.equal("/etc/postgresql/pg_hba.conf");
    expect(await pg.log()).to.include("Skipping initialization");
  });

  it("a missing ConfigMap, then a failing init container, keep the pod from starting, and ready() says why", async () => {
    const ns = await namespace("pod-runner-broken");
    const sts = (spec: string) => `apiVersion: apps/v1
kind: StatefulSet
metadata: { name: broken }
spec:
  serviceName: broken
  selector: { matchLabels: { app: broken } }
  template:
    metadata: { labels: { app: broken } }
    spec:
${spec}`;
    await kubectlOk(["apply", "-n", ns, "-f", "-"], sts(`      containers:
        - name: postgres
          image: postgres:15
          volumeMounts: [{ name: conf, mountPath: /etc/postgresql }]
      volumes:
        - { name: conf, configMap: { name: does-not-exist } }`));
    const pg = await runner(ns, "StatefulSet", "broken");
    let err = await pg.ready(20_000).then(() => undefined, (e: Error) => e);
    expect(err?.message).to.match(/cannot start: MountVolume\.SetUp failed for volume "conf" : configmap "does-not-exist" not found/);

    await kubectlOk(["apply", "-n", ns, "-f", "-"], sts(`      initContainers:
        - name: refuses
          image: postgres:15
          command: [bash, -c, 'echo "no certificate for $HOSTNAME" >&2; exit 3']
      containers:
        - name: postgres
          image: postgres:15`));
    await waitFor("a new pod", async () => pg.starts === 2, 30_000, 100);
    err = await pg.ready(20_000).then(() => undefined, (e: Error) => e);
    expect(err?.message).to.match(/init container "refuses" exited with code 3:\s+no certificate for broken-0/);
  });

  it("CAST's chart fixture under the real helm: console-postgres from the chart's sample without TLS, then CastStorageService.ssl=true with the init container's certificate", async () => {
    const ns = await namespace("pod-runner-cast");
    const kubeconfig = controlPlane().kubeconfigPath;
    const installed = await install(RELEASE, CHART, ns, kubeconfig);
    expect(installed.code, installed.stderr).to.equal(0);
    const pg = await runner(ns, "StatefulSet", "console-postgres");
    await pg.ready(150_000);

    // postgresql.conf came from the subPath-mounted sample (initdb copied it), pg_hba.conf is initdb's plus the image's line.
    expect(await pg.sql("SHOW max_locks_per_transaction")).to.equal("4096");
    expect(await pg.sql("SHOW config_file")).to.equal("/var/lib/postgresql/data/postgresql.conf");
    expect(await pg.sql("SHOW ssl")).to.equal("off");
    expect(await pg.readContainerFile("/var/lib/postgresql/data/pg_hba.conf")).to.match(/host all all all scram-sha-256\n$/);
    // The chart's init-db.sh (sourced by the entrypoint) created the roles and keycloak's database.
    expect(await pg.sql("SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolname IN ('operator', 'guest')")).to.equal("guest,operator");
    expect(await pg.sql("SELECT datname FROM pg_database WHERE datname = 'keycloak'")).to.equal("keycloak");
    const noTls = await tcpPsql(pg.port, "operator", "fixture-operator", "require", "SELECT 1");
    expect(noTls.code).to.not.equal(0);
    expect(noTls.stderr).to.match(/server does not support SSL/);

    const upgraded = await upgrade(RELEASE, CHART, ns, kubeconfig, { reuseValues: true, set: { "CastStorageService.ssl": true } });
    expect(upgraded.code, upgraded.stderr).to.equal(0);
    await waitFor("a new console-postgres pod", async () => pg.starts === 2, 30_000, 100);
    await pg.ready(150_000);

    expect(await pg.sql("SHOW ssl")).to.equal("on");
    expect(await pg.sql("SHOW hba_file")).to.equal("/etc/postgresql/pg_hba.conf");
    expect(await pg.sql("SHOW ssl_cert_file")).to.equal("/var/lib/postgresql/ssl/server.crt");
    // The certificate the server presents is the one the init container generated into the emptyDir.
    const s = await run("openssl", ["s_client", "-starttls", "postgres", "-connect", `127.0.0.1:${pg.port}`], { input: "", timeoutMs: 30_000 });
    const served = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(s.stdout)?.[0];
    expect(served, `openssl s_client: ${s.stderr}`).to.be.a("string");
    const cert = new X509Certificate(served!);
    expect(cert.subject).to.equal("CN=console-postgres");
    const onDisk = new X509Certificate(await pg.readContainerFile("/var/lib/postgresql/ssl/server.crt"));
    expect(cert.fingerprint256).to.equal(onDisk.fingerprint256);
    // The chart's pg_hba.conf: passwords over TLS only.
    const tls = await tcpPsql(pg.port, "operator", "fixture-operator", "require", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
    expect(tls.stdout.trim(), tls.stderr).to.equal("t");
    const plain = await tcpPsql(pg.port, "operator", "fixture-operator", "disable", "SELECT 1");
    expect(plain.code).to.not.equal(0);
    expect(plain.stderr).to.match(/no pg_hba\.conf entry/);
    // A new pod: fresh emptyDir for the data, so the entrypoint ran init-db.sh again.
    expect(await pg.sql("SELECT count(*) FROM pg_roles WHERE rolname = 'operator'")).to.equal("1");

    // The subPath-mounted pg_hba.conf is a copy made at pod start; the Secret mounted as a directory follows changes.
    await kubectlOk(["patch", "configmap", "console-v3-pghbaconf", "-n", ns, "--type=merge", "-p", JSON.stringify({ data: { "pg_hba.conf": "local all all trust\n# changed\n" } })]);
    await kubectlOk(["patch", "secret", "imaging-pwd-sec", "-n", ns, "--type=merge", "-p", JSON.stringify({ stringData: { "guest-db-password": "changed-guest" } })]);
    await waitFor("the changed Secret under /opt/secrets", async () => (await pg.readContainerFile("/opt/secrets/guest-db-password")) === "changed-guest", 20_000, 200);
    expect(await pg.readContainerFile("/etc/postgresql/pg_hba.conf")).to.not.include("# changed");
    expect(pg.starts).to.equal(2);
    expect(hostView()).to.deep.equal(before);
  });
});
