/**
 * The main job, end to end on this machine: a real kube-apiserver + etcd, a real PostgreSQL, the operator (built
 * dist/main.js, running as its own ServiceAccount identity under the shipped RBAC), and the samples from
 * deploy/samples adapted to a local server. Prints `kubectl get sdb` and a verified psql connection; Ctrl-C stops all.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parse, stringify } from "yaml";
import { startControlPlane, type ControlPlane } from "../test/support/controlplane";
import { startPostgres, type PostgresServer } from "../test/support/postgres";
import { waitFor } from "../test/support/process";
import type { VolumeSyncer } from "../test/support/volume-syncer";
import { databaseInCluster } from "../test/support/database-fixture";
import { caFromSecret, psqlAs, writeClientFiles } from "../test/support/mtls-client";
import type { SecretObject } from "../src/kube/secrets";
import type { SecureDatabase } from "../src/api/types";

const REPO = resolve(__dirname, "..");
const NS = "cast-imaging";
const say = (msg: string) => process.stdout.write(`\n==> ${msg}\n`);

async function kubectlOk(cp: ControlPlane, args: string[], input?: string): Promise<string> {
  const r = await cp.kubectl(args, { input });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

async function main(): Promise<void> {
  let cp: ControlPlane | undefined;
  let pg: PostgresServer | undefined;
  let syncer: VolumeSyncer | undefined;
  let operator: ChildProcess | undefined;
  const cleanup = async () => {
    operator?.kill("SIGTERM");
    syncer?.stop();
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
    operator = spawn(process.execPath, [join(REPO, "dist/main.js"), "--kubeconfig", cp.operatorKubeconfigPath, "--namespace", NS], { stdio: ["ignore", "inherit", "inherit"] });
    const started = Date.now();
    await kubectlOk(cp, ["apply", "-f", "-"], stringify(sample));
    await waitFor("the SecureDatabase to be Ready", async () => {
      const out = await cp!.kubectl(["get", "sdb", name, "-n", NS, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"]);
      return out.stdout === "True";
    }, 120_000, 250);
    say(`Ready after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    process.stdout.write(await kubectlOk(cp, ["get", "sdb", "-n", NS, "-o", "wide"]));

    say("connecting with psql as \"operator\", using a client certificate from the SecureDatabase's CA (sslmode=verify-full)");
    const ca = await caFromSecret(JSON.parse(await kubectlOk(cp, ["get", "secret", `${name}-ca`, "-n", NS, "-o", "json"])) as SecretObject);
    const client = await writeClientFiles(ca, "operator", ca.certPem);
    const r = await psqlAs(client, { host: "localhost", port: pg.port, user: "operator", sslmode: "verify-full", command: "SELECT 'connected as ' || current_user || ' over ' || version || ' with ' || cipher || ', client certificate ' || client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()" });
    process.stdout.write(r.code === 0 ? `    ${r.stdout.trim()}\n` : `    psql failed: ${r.stderr}\n`);
    const plain = await psqlAs(undefined, { host: "127.0.0.1", port: pg.port, user: "operator", sslmode: "disable", command: "SELECT 1" });
    process.stdout.write(`    without TLS: ${plain.stderr.trim().split("\n").pop()}\n`);
    await client.cleanup();

    if (process.env.DEMO_EXIT || !process.stdin.isTTY) {
      say("done (non-interactive: stopping)");
      await cleanup();
      process.exit(r.code === 0 ? 0 : 1);
    }
    say(`running; try: kubectl --kubeconfig ${cp.kubeconfigPath} describe sdb -n ${NS} ${name}   (Ctrl-C stops everything)`);
  } catch (err) {
    process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    await cleanup();
    process.exit(1);
  }
}

void main();
