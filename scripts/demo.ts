/**
 * The main job, end to end on this machine: a real kube-apiserver + etcd + kube-controller-manager, a real
 * PostgreSQL, the operator (built dist/main.js, running as its own ServiceAccount identity under the shipped RBAC),
 * and the samples from deploy/samples adapted to a local server: a SecureDatabase, CAST Imaging installed with
 * (the fixture of) CAST's Helm chart by a real helm v4 with EnablePostgresSSL=true, and one ImagingConnection
 * naming the release. A kubelet stand-in starts the pods and plays the chart's init containers (they copy the
 * chart's Secret at pod start). Prints `kubectl get sdb,imc`, what the operator found and served, what to declare in
 * CAST Imaging, and a JDBC and a psql connection made with the files where a CAST pod reads them; Ctrl-C stops all.
 */
import "reflect-metadata";
import { spawn, type ChildProcess } from "node:child_process";
import { readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { parse, stringify } from "yaml";
import { OPERATOR_NAMESPACE, startControlPlane, type ControlPlane } from "../test/support/controlplane";
import { jdbcConnect, psql, startPostgres, type PostgresServer } from "../test/support/postgres";
import { freePort, waitFor } from "../test/support/process";
import type { VolumeSyncer } from "../test/support/volume-syncer";
import { databaseInCluster } from "../test/support/database-fixture";
import { install } from "../test/support/helm";
import { startKubeletStandIn, type KubeletStandIn } from "../test/support/kubelet-standin";
import { psqlAs } from "../test/support/mtls-client";
import type { ImagingConnection, SecureDatabase } from "../src/api/types";

const REPO = resolve(__dirname, "..");
const NS = "cast-imaging";
const RELEASE = "castimaging-v3";
const say = (msg: string) => process.stdout.write(`\n==> ${msg}\n`);

async function kubectlOk(cp: ControlPlane, args: string[], input?: string): Promise<string> {
  const r = await cp.kubectl(args, { input });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

function waitReady(cp: ControlPlane, resource: "sdb" | "imc", name: string): Promise<void> {
  return waitFor(`${resource} ${name} to be Ready`, async () => {
    const out = await cp.kubectl(["get", resource, name, "-n", NS, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"]);
    return out.stdout === "True";
  }, 120_000, 250);
}

async function main(): Promise<void> {
  let cp: ControlPlane | undefined;
  let pg: PostgresServer | undefined;
  let syncer: VolumeSyncer | undefined;
  let standin: KubeletStandIn | undefined;
  let operator: ChildProcess | undefined;
  const cleanup = async () => {
    operator?.kill("SIGTERM");
    syncer?.stop();
    await standin?.stop();
    await pg?.stop();
    await cp?.stop();
  };
  process.on("SIGINT", () => {
    say("stopping");
    void cleanup().then(() => process.exit(0));
  });

  try {
    say("starting kube-apiserver + etcd (built from the Go module proxy; cached after the first run)");
    cp = await startControlPlane();
    await cp.installCRDs();
    await cp.installRBAC();
    await kubectlOk(cp, ["create", "namespace", NS]);
    process.stdout.write(`    ${cp.server} (Kubernetes ${cp.version}); admin kubeconfig: ${cp.kubeconfigPath}\n`);

    say("starting PostgreSQL 15 on a free loopback port");
    pg = await startPostgres({ name: "demo" });
    await pg.sql("CREATE ROLE operator LOGIN");
    process.stdout.write(`    127.0.0.1:${pg.port}, data in ${pg.dataDir}\n`);

    say("applying deploy/samples: the PostgreSQL ConfigMap, its StatefulSet, and the SecureDatabase (adapted to this machine)");
    const sample = parse(await readFile(join(REPO, "deploy/samples/securedatabase-generated-ca.yaml"), "utf8")) as SecureDatabase;
    const name = sample.metadata.name;
    const configMapName = sample.spec.postgres.configMapName;
    sample.metadata.namespace = NS;
    sample.spec.host = "localhost";
    sample.spec.port = pg.port;
    sample.spec.additionalDNSNames = [];
    sample.spec.additionalIPAddresses = ["127.0.0.1"];
    sample.spec.postgres.certificateDirectory = join(pg.dataDir, "tls");
    for (const rule of sample.spec.postgres.hba?.rules ?? []) rule.addresses = ["127.0.0.1/32"];
    sample.spec.verification = { ...sample.spec.verification, endpoint: `127.0.0.1:${pg.port}` };
    const workload = sample.spec.workloadRef!;
    const db = await databaseInCluster(cp, pg, { namespace: NS, configMapName: configMapName!, workloadName: workload.name, container: workload.container, serverSecretName: `${name}-server-tls`, secureDatabases: name });
    syncer = db.syncer;

    say("starting the operator (node dist/main.js) as system:serviceaccount:imaging-db-mtls-operator:imaging-db-mtls-operator");
    const healthPort = await freePort();
    operator = spawn(process.execPath, [join(REPO, "dist/main.js"), "--kubeconfig", cp.operatorKubeconfigPath, "--namespace", NS, "--health-port", String(healthPort), "--allowed-endpoints", "127.0.0.1,localhost", "--ca-key-namespace", OPERATOR_NAMESPACE], { stdio: ["ignore", "inherit", "inherit"] });
    const started = Date.now();
    await kubectlOk(cp, ["apply", "-f", "-"], stringify(sample));
    await waitReady(cp, "sdb", name);
    say(`Ready after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    process.stdout.write(await kubectlOk(cp, ["get", "sdb", "-n", NS, "-o", "wide"]));
    const keySecret = await kubectlOk(cp, ["get", "sdb", name, "-n", NS, "-o", "jsonpath={.status.ca.keySecret}"]);
    process.stdout.write(`    the CA's private key is in Secret ${keySecret} (the operator's namespace), not in ${NS}\n`);

    say(`installing CAST Imaging with (the fixture of) CAST's Helm chart: helm install ${RELEASE} --set EnablePostgresSSL=true`);
    standin = await startKubeletStandIn({ kubeConfig: cp.kubeConfig, namespace: NS, startDelayMs: 300 });
    const installed = await install(RELEASE, join(REPO, "test/fixtures/cast-imaging-chart"), NS, cp.kubeconfigPath, {
      set: { EnablePostgresSSL: true, "CastStorageService.enable": false, "CustomPostgres.enable": true, "CustomPostgres.host": "localhost", "CustomPostgres.port": pg.port },
    });
    if (installed.code !== 0) throw new Error(`helm install: ${installed.stderr}`);
    process.stdout.write(`    ${installed.stdout.split("\n").filter((l) => /^(NAME|STATUS|REVISION):/.test(l)).join(", ")}\n`);

    const connection = parse(await readFile(join(REPO, "deploy/samples/imagingconnection-cast-chart.yaml"), "utf8")) as ImagingConnection;
    connection.metadata.namespace = NS;
    const imcName = connection.metadata.name;
    // The release's owner lets the connection in (docs/security.md, "Opt-in"); Helm's next upgrade keeps it.
    const optIn = ["annotate", "-n", NS, "deployment,statefulset", "-l", "imaging.service", `mtls.imaging.dev/imaging-connections=${imcName}`];
    say(`opting the release's workloads in: kubectl ${optIn.join(" ")}`);
    await kubectlOk(cp, optIn);

    say("applying deploy/samples/imagingconnection-cast-chart.yaml: one ImagingConnection naming the release");
    const connStarted = Date.now();
    await kubectlOk(cp, ["apply", "-f", "-"], stringify(connection));
    const wired = ["console-control-panel", "viewer-etl", "console-analysis-node-core"];
    let imc: ImagingConnection | undefined;
    await waitFor("the chart's components to start with the certificate", async () => {
      imc = JSON.parse(await kubectlOk(cp!, ["get", "imc", imcName, "-n", NS, "-o", "json"])) as ImagingConnection;
      const ready = imc.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
      return ready && wired.every((n) => imc!.status?.workloads?.some((w) => w.name === n && w.state === "Delivered"));
    }, 180_000, 300);
    say(`Ready after ${((Date.now() - connStarted) / 1000).toFixed(1)} s: Secret ssl-certs filled, each wired component restarted once, login verified`);
    process.stdout.write(await kubectlOk(cp, ["get", "sdb,imc", "-n", NS]));
    say("what the operator found in the release (status.workloads)");
    for (const w of imc!.status?.workloads ?? []) {
      process.stdout.write(`    ${`${w.kind}/${w.name}`.padEnd(42)} ${String(w.delivery).padEnd(12)} ${String(w.state).padEnd(10)} ${w.message}\n`);
    }
    const declaration = imc!.status!.declaration!;
    say("what to declare in CAST Imaging (status.declaration)");
    process.stdout.write(`${JSON.stringify(declaration, null, 2)}\n`);
    say("sslconfig.ini in Secret ssl-certs (CASTCONNECTIONEXTRAPARAMETERS=/etc/ssl/certs-postgres/sslconfig.ini)");
    process.stdout.write(await kubectlOk(cp, ["get", "secret", "ssl-certs", "-n", NS, "-o", "jsonpath={.data.sslconfig\\.ini}"]).then((b64) => Buffer.from(b64, "base64").toString()));

    say("connecting with the files where console-control-panel's pod reads them (copied by its init container): JDBC (PKCS#8 DER key) and psql (PEM key), verify-full");
    const files = await standin.currentFilesDir("Deployment", "console-control-panel", "postgres-ssl-files");
    const inPod = (p: string) => p.replace(dirname(declaration.certificatePath!), files);
    const query = "SELECT 'connected as ' || current_user || ' over ' || version || ', client certificate serial ' || client_serial FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    const url = declaration.jdbcUrl!.replaceAll(dirname(declaration.certificatePath!), files);
    const jdbc = await jdbcConnect({ url, user: declaration.user!, sslcert: inPod(declaration.certificatePath!), sslkey: inPod(declaration.keyPath!), sslrootcert: inPod(declaration.rootCertificatePath!), sslmode: "verify-full", query });
    process.stdout.write(jdbc.code === 0 ? `    JDBC ${url}\n      ${jdbc.stdout.trim()}\n` : `    JDBC failed: ${jdbc.stderr}\n`);
    const r = await psql({ host: "localhost", port: pg.port, user: declaration.user!, sslmode: "verify-full", sslcert: join(files, "client.crt"), sslkey: join(files, "client-key.pem"), sslrootcert: join(files, "root.crt"), command: query });
    process.stdout.write(r.code === 0 ? `    psql: ${r.stdout.trim()}\n` : `    psql failed: ${r.stderr}\n`);
    const plain = await psqlAs(undefined, { host: "127.0.0.1", port: pg.port, user: declaration.user!, sslmode: "disable", command: "SELECT 1" });
    process.stdout.write(`    without TLS: ${plain.stderr.trim().split("\n").pop()}\n`);
    const ok = jdbc.code === 0 && r.code === 0 && plain.code !== 0;

    say(`what Prometheus scrapes (http://127.0.0.1:${healthPort}/metrics): certificate expiry, as Unix time`);
    const metrics = await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text();
    process.stdout.write(`${metrics.split("\n").filter((l) => l.startsWith("imaging_mtls_certificate_expiry_timestamp_seconds{")).map((l) => `    ${l}`).join("\n")}\n`);

    if (process.env.DEMO_EXIT || !process.stdin.isTTY) {
      say("done (non-interactive: stopping)");
      await cleanup();
      process.exit(ok ? 0 : 1);
    }
    say(`running; try: kubectl --kubeconfig ${cp.kubeconfigPath} describe imc -n ${NS} ${imcName}   (Ctrl-C stops everything)`);
  } catch (err) {
    process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    await cleanup();
    process.exit(1);
  }
}

void main();
