/**
 * `kubectl mtls` as a user runs it: the compiled plugin (tsconfig.build.json, as npm run build) behind the shipped
 * launcher bin/kubectl-mtls, found by the real kubectl on PATH, against the real API server with the operator and a
 * real PostgreSQL making a SecureDatabase and an ImagingConnection Ready.
 */
import { expect } from "chai";
import { X509Certificate } from "node:crypto";
import { copyFile, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ImagingConnection, SecureDatabase } from "../../src/api/types";
import { secretBytes, type SecretObject } from "../../src/kube/secrets";
import type { StatusDetail, StatusRow } from "../../src/plugin/status";
import type { SecretInspection } from "../../src/plugin/inspect";
import { controlPlane } from "../support/hooks";
import { getJson, kubectlOk, waitForCondition } from "../support/kubectl-json";
import { installPlugin, startPluginScene, type PluginInstall } from "../support/kubectl-plugin-fixture";
import type { OperatorWithDatabase } from "../support/operator-fixture";
import { freePort, run, type RunResult } from "../support/process";

const DAY_MS = 24 * 3600 * 1000;

describe("kubectl mtls plugin (through the real kubectl, against the operator and a real PostgreSQL)", function () {
  this.timeout(400_000);
  let env: OperatorWithDatabase;
  let ns: string;
  let plugin: PluginInstall;
  let dir: string;
  let pluginDir: string;
  /** kubectl with the plugin directory on PATH and the admin kubeconfig in KUBECONFIG, as a user's shell has them. */
  let mtls: (args: string[], extraEnv?: NodeJS.ProcessEnv) => Promise<RunResult>;
  let kubectlBin: string;
  let pathEnv: string;

  before(async function () {
    this.timeout(600_000);
    plugin = await installPlugin("kubectl-mtls");
    ({ dir, pluginDir, kubectlBin, pathEnv, mtls } = plugin);
    env = await startPluginScene("plugin");
    ns = env.ns;
  });

  after(async () => {
    await env?.stop();
    await plugin?.remove();
  });

  /** What a failed command must look like: exit 2, exactly one line on stderr, nothing on stdout, no stack. */
  function expectOneLineError(r: RunResult, pattern: RegExp): void {
    expect(r.code, r.stderr).to.equal(2);
    expect(r.stdout).to.equal("");
    expect(r.stderr).to.match(/^error: [^\n]+\n$/);
    expect(r.stderr).to.match(pattern);
    expect(r.stderr).to.not.match(/\n\s+at /);
  }

  it("is found by kubectl plugin list, and answers --help", async () => {
    const list = await run(kubectlBin, ["plugin", "list"], { env: { ...process.env, PATH: pathEnv } });
    expect(list.stdout).to.contain(join(pluginDir, "kubectl-mtls"));
    const help = await mtls(["--help"]);
    expect(help.code, help.stderr).to.equal(0);
    expect(help.stdout).to.contain("Usage: kubectl mtls COMMAND").and.match(/\n {2}status\s/).and.match(/\n {2}declaration\s/).and.match(/\n {2}inspect\s/);
    for (const verb of ["status", "declaration", "inspect", "rotate", "revoke", "check", "completion"]) {
      const r = await mtls([verb, "--help"]);
      expect(r.code, `${verb} --help: ${r.stderr}`).to.equal(0);
      expect(r.stdout).to.contain(`kubectl mtls ${verb}`).and.contain("Exit codes:");
    }
  });

  it("status -A lists the database and the connection Ready, with the days left their certificates have; exit 0", async () => {
    const table = await mtls(["status", "-A"]);
    console.log(`    kubectl mtls status -A:\n${table.stdout.replace(/^/gm, "      ")}`);
    const json = await mtls(["status", "-A", "-o", "json"]);
    const rows = (JSON.parse(json.stdout) as { items: StatusRow[] }).items;
    // Other tests' namespaces may hold objects of their own: the exit code speaks for every row shown.
    expect(json.code).to.equal(rows.every((r) => r.ready === "True") ? 0 : 1);
    expect(table.code).to.equal(json.code);

    const secretCert = async (name: string) => new X509Certificate(secretBytes(await getJson<SecretObject>(["get", "secret", name, "-n", ns]))["tls.crt"]!);
    const expected = [
      { kind: "SecureDatabase", name: "db", reason: "Secured", cert: await secretCert("db-server-tls") },
      { kind: "ImagingConnection", name: "analysis", reason: "Connected", cert: await secretCert("analysis-client-tls") },
    ];
    for (const e of expected) {
      const row = rows.find((r) => r.namespace === ns && r.name === e.name && r.kind === e.kind);
      expect(row, `${e.kind} ${ns}/${e.name} in ${json.stdout}`).to.not.equal(undefined);
      expect(row).to.deep.include({ ready: "True", reason: e.reason });
      // Days left, against the certificate in the Secret read independently (a day boundary may pass between).
      const days = Math.floor((e.cert.validToDate.getTime() - Date.now()) / DAY_MS);
      expect(row!.certificate.daysLeft).to.be.within(days - 1, days);
      expect(Date.parse(row!.certificate.notAfter!)).to.equal(e.cert.validToDate.getTime());
      expect(row!.certificate.renewalTime).to.be.a("string");
      expect(row!.lastVerification).to.be.a("string");
      const line = table.stdout.split("\n").find((l) => l.startsWith(`${e.kind} `) && l.includes(` ${ns} `) && l.includes(` ${e.name} `));
      expect(line, table.stdout).to.match(new RegExp(`^${e.kind}\\s+${ns}\\s+${e.name}\\s+True\\s+${e.reason}\\s+\\S+Z\\s+${row!.certificate.daysLeft}\\s+\\S+Z\\s+\\d+[smhd] ago\\s`));
    }
    const sdb = await getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns]);
    expect(rows.find((r) => r.kind === "SecureDatabase" && r.namespace === ns)).to.deep.include({ caRotationPhase: sdb.status?.caRotation?.phase ?? null, revokedCount: 0 });

    const inNamespace = await mtls(["status", "-n", ns]);
    expect(inNamespace.code, inNamespace.stdout + inNamespace.stderr).to.equal(0);
    expect(inNamespace.stdout.trimEnd().split("\n")).to.have.length(3);
  });

  it("status sdb/db: its conditions, nothing to wait on, the server Secret's certificates decoded, its events", async () => {
    const sdb = await getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns]);
    const r = await mtls(["status", "-n", ns, "sdb/db"]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.contain(`SecureDatabase ${ns}/db\n`).and.match(/Ready:\s+True Secured/).and.contain("Waiting on:\n  nothing\n");
    for (const c of sdb.status!.conditions!) expect(r.stdout).to.match(new RegExp(`\\n {2}${c.type}\\s+${c.status}\\s+${c.reason}\\s`));
    expect(r.stdout).to.contain(`Secret ${ns}/db-server-tls\n`).and.match(new RegExp(`tls\\.crt #1\\n\\s+subject:\\s+CN=\\S+\\n\\s+SANs:\\s+\\S`));
    expect(r.stdout).to.match(new RegExp(`serial:\\s+${sdb.status!.serverCertificate!.serialNumber}\\n`));
    expect(r.stdout).to.match(/Events:\n\s+LAST SEEN\s+TYPE\s+REASON/).and.contain("ServerCertificateIssued");
    expect(r.stdout).to.not.contain("PRIVATE KEY");

    const json = await mtls(["status", "-n", ns, "sdb/db", "-o", "json"]);
    const detail = JSON.parse(json.stdout) as StatusDetail;
    const server = detail.secrets[0]!.certificates.find((c) => c.key === "tls.crt")!;
    const node = await getJson<SecretObject>(["get", "secret", "db-server-tls", "-n", ns]).then((s) => new X509Certificate(secretBytes(s)["tls.crt"]!));
    expect(server.sha256Fingerprint).to.equal(node.fingerprint256.replace(/:/g, "").toLowerCase());
    expect(server.serialNumber).to.equal(node.serialNumber.toLowerCase().replace(/^(00)+/, ""));
    expect(detail.events.map((e) => e.reason)).to.include("ServerCertificateIssued");
  });

  it("declaration --format jdbc is status.declaration.jdbcUrl; ini and env come from the same status", async () => {
    const imc = await getJson<ImagingConnection>(["get", "imc", "analysis", "-n", ns]);
    const d = imc.status!.declaration!;
    const jdbc = await mtls(["declaration", "-n", ns, "imc/analysis", "--format", "jdbc"]);
    expect(jdbc.code, jdbc.stderr).to.equal(0);
    expect(jdbc.stdout).to.equal(`${d.jdbcUrl}\n`);
    const ini = await mtls(["declaration", "-n", ns, "imc/analysis", "--format", "ini"]);
    expect(ini.stdout).to.equal(`[${d.host!.toLowerCase()}:${d.port}]\nssl=true\nsslmode=${d.sslMode}\nsslcert=${d.certificatePath}\nsslkey=${d.keyPath}\nsslrootcert=${d.rootCertificatePath}\n`);
    const json = await mtls(["declaration", "-n", ns, "imc/analysis"]);
    expect(JSON.parse(json.stdout)).to.deep.equal(d);
    const envOut = await mtls(["declaration", "-n", ns, "analysis", "--format", "env"]);
    expect(envOut.stdout).to.contain(`PGHOST=${d.host}\n`).and.contain(`PGSSLKEY=${d.keyPemPath}\n`);
    expect(envOut.stderr).to.equal("");
  });

  it("inspect secret: every key decoded, the chain to ca.crt ok, every key matching; no key or password printed", async () => {
    const secret = secretBytes(await getJson<SecretObject>(["get", "secret", "analysis-client-tls", "-n", ns]));
    const r = await mtls(["inspect", "secret", "analysis-client-tls", "-n", ns]);
    expect(r.code, r.stderr).to.equal(0);
    console.log(`    kubectl mtls inspect secret analysis-client-tls:\n${r.stdout.replace(/^/gm, "      ")}`);
    expect(r.stdout).to.match(/chain:\s+ok: tls\.crt is signed by CN=[^\n]+ \(ca\.crt\)\n/).and.match(/key matches:\s+ok: tls\.key, client\.key, client\.pem\.pk8, client\.pfx, client\.pk8 hold the private key of tls\.crt/);
    expect(r.stdout).to.contain("client.pfx: PKCS#12").and.contain("opened with the password in client.pfx.password");
    expect(r.stdout).to.not.contain(secret["client.pfx.password"]!.toString("utf8"));
    for (const line of secret["tls.key"]!.toString("utf8").split("\n").filter((l) => l.length > 20 && !l.startsWith("-----"))) expect(r.stdout).to.not.contain(line);

    const json = JSON.parse((await mtls(["inspect", "secret/db-server-tls", "-n", ns, "-o", "json"])).stdout) as SecretInspection;
    expect(json.chain.ok).to.equal(true);
    expect(json.keyMatch.ok).to.equal(true);
    expect(json.keys.find((k) => k.key === "ca.crl")!.crls).to.have.length(1);
  });

  it("an ImagingConnection naming a missing database: status exits 1 and shows DatabaseNotFound and what it waits on", async () => {
    await kubectlOk(
      ["apply", "-f", "-"],
      `apiVersion: mtls.imaging.dev/v1alpha1
kind: ImagingConnection
metadata: { name: orphan, namespace: ${ns} }
spec:
  databaseRef: { name: nope }
  user: analysis
`,
    );
    await waitForCondition("imc", ns, "orphan", "Ready", (c) => c.status === "False" && c.reason === "DatabaseNotFound", 60_000);
    const list = await mtls(["status", "-n", ns]);
    expect(list.code, list.stdout + list.stderr).to.equal(1);
    expect(list.stdout).to.match(new RegExp(`\\nImagingConnection\\s+${ns}\\s+orphan\\s+False\\s+DatabaseNotFound\\s+-\\s+-\\s+-\\s+-\\s+-\\s+-\\n`));
    const one = await mtls(["status", "-n", ns, "imc/orphan"]);
    console.log(`    kubectl mtls status imc/orphan:\n${one.stdout.replace(/^/gm, "      ")}`);
    expect(one.code).to.equal(1);
    expect(one.stdout).to.match(/Waiting on:\n {2}CertificateReady False DatabaseNotFound: [^\n]*nope/).and.contain("(DatabaseNotFound: spec.databaseRef names no SecureDatabase)");
    const decl = await mtls(["declaration", "-n", ns, "imc/orphan", "--format", "jdbc"]);
    expectOneLineError(decl, new RegExp(`^error: imagingconnection ${ns}/orphan has no status\\.declaration yet \\(Ready False DatabaseNotFound\\): see kubectl mtls status imc/orphan -n ${ns}\\n$`));
    await kubectlOk(["delete", "imc", "orphan", "-n", ns, "--wait=true"]);
  });

  it("a bad name, a missing Secret, an unknown context or an unreachable API server: exit 2 and one line saying what to do", async () => {
    expectOneLineError(await mtls(["status", "-n", ns, "imc/foo"]), new RegExp(`^error: imagingconnection ${ns}/foo not found: list them with kubectl mtls status -n ${ns}\\n$`));
    expectOneLineError(await mtls(["status", "-n", ns, "foo"]), new RegExp(`^error: no securedatabase or imagingconnection named foo in namespace ${ns}: list them with kubectl mtls status -n ${ns}\\n$`));
    expectOneLineError(await mtls(["declaration", "-n", ns, "imc/foo"]), new RegExp(`^error: imagingconnection ${ns}/foo not found`));
    expectOneLineError(await mtls(["inspect", "secret", "nope", "-n", ns]), new RegExp(`^error: secret ${ns}/nope not found: `));
    expectOneLineError(await mtls(["status", "--context", "nope"]), /^error: context "nope" is not in the kubeconfig/);
    const unreachable = join(dir, "unreachable.kubeconfig");
    const admin = await readFile(controlPlane().kubeconfigPath, "utf8");
    const port = await freePort();
    await writeFile(unreachable, admin.replace(/server: "https:\/\/[^"]+"/, `server: "https://127.0.0.1:${port}"`));
    expectOneLineError(await mtls(["status", "--kubeconfig", unreachable]), new RegExp(`^error: cannot reach the API server at https://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED.*kubectl cluster-info`));
    expectOneLineError(await mtls(["status"], { KUBECONFIG: join(dir, "absent.kubeconfig") }), /^error: cannot read the kubeconfig .*absent\.kubeconfig: ENOENT/);
  });

  it("takes --kubeconfig and --context, and the context's namespace when there is no -n", async () => {
    const copy = join(dir, "with-namespace.kubeconfig");
    await copyFile(controlPlane().kubeconfigPath, copy);
    const set = await run(kubectlBin, ["--kubeconfig", copy, "config", "set-context", "plugin-ns", "--cluster=test", "--user=admin", `--namespace=${ns}`]);
    expect(set.code, set.stderr).to.equal(0);
    const r = await mtls(["status", "--kubeconfig", copy, "--context", "plugin-ns", "-o", "json"], { KUBECONFIG: "" });
    expect(r.code, r.stderr).to.equal(0);
    const rows = (JSON.parse(r.stdout) as { items: StatusRow[] }).items;
    expect(rows.map((row) => `${row.kind}/${row.namespace}/${row.name}`).sort()).to.deep.equal([`ImagingConnection/${ns}/analysis`, `SecureDatabase/${ns}/db`]);
  });
});
