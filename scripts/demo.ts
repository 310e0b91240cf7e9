/**
 * The main job, end to end on this machine: a real kube-apiserver + etcd, a real PostgreSQL, the operator (built
 * dist/main.js, running as its own ServiceAccount identity under the shipped RBAC), and the samples from
 * deploy/samples adapted to a local server: a SecureDatabase, CAST Imaging's workloads, and an ImagingConnection.
 * Prints `kubectl get sdb,imc`, what to declare in CAST Imaging, and a JDBC and a psql connection made with the
 * files the operator mounted; Ctrl-C stops all.
 */
import "reflect-metadata";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parse, stringify } from "yaml";
import { startControlPlane, type ControlPlane } from "../test/support/controlplane";
import { jdbcConnect, psql, startPostgres, type PostgresServer } from "../test/support/postgres";
import { freePort, waitFor } from "../test/support/process";
import { startVolumeSyncer, type VolumeSyncer } from "../test/support/volume-syncer";
import { databaseInCluster } from "../test/support/database-fixture";
import { psqlAs } from "../test/support/mtls-client";
import type { ImagingConnection, SecureDatabase } from "../src/api/types";

const REPO = resolve(__dirname, "..");
const NS = "cast-imaging";
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
  let clientSyncer: VolumeSyncer | undefined;
  let clientDir: string | undefined;
  let operator: ChildProcess | undefined;
  const cleanup = async () => {
    operator?.kill("SIGTERM");
    syncer?.stop();
    clientSyncer?.stop();
    if (clientDir) await rm(clientDir, { recursive: true, force: true });
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
    const db = await databaseInCluster(cp, pg, { namespace: NS, configMapName, workloadName: workload.name, container: workload.container, serverSecretName: `${name}-server-tls` });
    syncer = db.syncer;

    say("starting the operator (node dist/main.js) as system:serviceaccount:imaging-db-mtls-operator:imaging-db-mtls-operator");
    const healthPort = await freePort();
    operator = spawn(process.execPath, [join(REPO, "dist/main.js"), "--kubeconfig", cp.operatorKubeconfigPath, "--namespace", NS, "--health-port", String(healthPort)], { stdio: ["ignore", "inherit", "inherit"] });
    const started = Date.now();
    await kubectlOk(cp, ["apply", "-f", "-"], stringify(sample));
    await waitReady(cp, "sdb", name);
    say(`Ready after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    process.stdout.write(await kubectlOk(cp, ["get", "sdb", "-n", NS, "-o", "wide"]));

    say("applying CAST Imaging's workloads (imaging-services, analysis-node) and the ImagingConnection sample");
    for (const [kind, wname] of [["Deployment", "imaging-services"], ["StatefulSet", "analysis-node"]] as const) {
      const spec = { selector: { matchLabels: { app: wname } }, template: { metadata: { labels: { app: wname } }, spec: { containers: [{ name: wname, image: `castimaging/${wname}:3.4.1` }] } } };
      await kubectlOk(cp, ["apply", "-f", "-"], JSON.stringify({ apiVersion: "apps/v1", kind, metadata: { name: wname, namespace: NS }, spec: kind === "StatefulSet" ? { ...spec, serviceName: wname } : spec }));
    }
    const connection = parse(await readFile(join(REPO, "deploy/samples/imagingconnection.yaml"), "utf8")) as ImagingConnection;
    connection.metadata.namespace = NS;
    const imcName = connection.metadata.name;
    const secretName = connection.spec.secretName ?? `${imcName}-client-tls`;
    // The "kubelet" of a CAST Imaging pod: lays the mounted Secret down in a local folder.
    const files = await mkdtemp(join(tmpdir(), "demo-client-"));
    clientDir = files;
    clientSyncer = await startVolumeSyncer({ kubeConfig: cp.kubeConfig, namespace: NS, volumes: [{ kind: "Secret", name: secretName, dir: files, ownedByServer: false }] });
    const connStarted = Date.now();
    await kubectlOk(cp, ["apply", "-f", "-"], stringify(connection));
    await waitReady(cp, "imc", imcName);
    say(`ImagingConnection Ready (certificate issued, workloads patched, login verified) after ${((Date.now() - connStarted) / 1000).toFixed(1)} s`);
    process.stdout.write(await kubectlOk(cp, ["get", "sdb,imc", "-n", NS]));
    const imc = JSON.parse(await kubectlOk(cp, ["get", "imc", imcName, "-n", NS, "-o", "json"])) as ImagingConnection;
    const declaration = imc.status!.declaration!;
    say("what to declare in CAST Imaging (status.declaration)");
    process.stdout.write(`${JSON.stringify(declaration, null, 2)}\n`);
    say("the CAST .ini mounted into imaging-services (CASTCONNECTIONEXTRAPARAMETERS)");
    process.stdout.write(await kubectlOk(cp, ["get", "configmap", "cast-mtls-ini-deployment-imaging-services", "-n", NS, "-o", "jsonpath={.data.cast-connections\\.ini}"]));

    say("connecting with the mounted files, as CAST's components would: JDBC (PKCS#8 DER key) and psql (PEM key), verify-full");
    const query = "SELECT 'connected as ' || current_user || ' over ' || version || ', client certificate serial ' || client_serial FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    await waitFor("the client files", async () => (await readFile(join(files, "client.pk8")).catch(() => undefined)) !== undefined, 10_000);
    const url = declaration.jdbcUrl!.replaceAll(dirname(declaration.certificatePath!), files);
    const jdbc = await jdbcConnect({ url, user: declaration.user!, sslcert: join(files, "client.crt"), sslkey: join(files, "client.pk8"), sslrootcert: join(files, "root.crt"), sslmode: "verify-full", query });
    process.stdout.write(jdbc.code === 0 ? `    JDBC ${url}\n      ${jdbc.stdout.trim()}\n` : `    JDBC failed: ${jdbc.stderr}\n`);
    const r = await psql({ host: "localhost", port: pg.port, user: declaration.user!, sslmode: "verify-full", sslcert: join(files, "client.crt"), sslkey: join(files, "client.key"), sslrootcert: join(files, "root.crt"), command: query });
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
