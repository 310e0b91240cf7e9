/**
 * `kubectl mtls` day 2, as a user runs it through the real kubectl against the real API server, the operator and a
 * real PostgreSQL: rotate (a client certificate, the server certificate, the CA), revoke (dry run, then by
 * server-side apply as kubectl-mtls, and PostgreSQL refusing the old certificate), check (a login with the
 * connection's own Secret, and a revoked one refused), and completion (the script, and kubectl's own plugin
 * completion through kubectl_complete-mtls).
 */
import { expect } from "chai";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import type { ImagingConnection, SecureDatabase } from "../../src/api/types";
import { secretBytes, type SecretObject } from "../../src/kube/secrets";
import { parseCertificates } from "../../src/pki";
import type { CheckResult } from "../../src/plugin/check";
import { getJson, kubectlOk, waitForCondition } from "../support/kubectl-json";
import { installPlugin, startPluginScene, type PluginInstall } from "../support/kubectl-plugin-fixture";
import type { OperatorWithDatabase } from "../support/operator-fixture";
import { psql } from "../support/postgres";
import { waitFor, type RunResult } from "../support/process";

describe("kubectl mtls day 2: rotate, revoke, check, completion (real kubectl, operator, PostgreSQL)", function () {
  this.timeout(400_000);
  let env: OperatorWithDatabase;
  let ns: string;
  let plugin: PluginInstall;
  let mtls: PluginInstall["mtls"];

  before(async function () {
    this.timeout(600_000);
    plugin = await installPlugin("kubectl-mtls-day2");
    mtls = plugin.mtls;
    // A short propagation delay keeps the CA rotation's three phases to seconds.
    env = await startPluginScene("plugin-day2", { spec: { ca: { propagationDelay: "2s" } } });
    ns = env.ns;
  });

  after(async () => {
    await env?.stop();
    await plugin?.remove();
  });

  const show = (title: string, r: RunResult) => console.log(`    ${title} (exit ${r.code}):\n${`${r.stdout}${r.stderr}`.replace(/^/gm, "      ")}`);
  const imc = () => getJson<ImagingConnection>(["get", "imc", "analysis", "-n", ns]);
  const sdb = () => getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns]);

  /** The connection's Secret as files psql reads (mode 0600), copied away so a re-issue cannot take them. */
  async function clientFiles(): Promise<{ dir: string; serial: string; data: Record<string, string> }> {
    const secret = await getJson<SecretObject>(["get", "secret", "analysis-client-tls", "-n", ns]);
    const data = secretBytes(secret);
    const dir = await mkdtemp(join(tmpdir(), "day2-client-"));
    await writeFile(join(dir, "client.crt"), data["tls.crt"]!, { mode: 0o600 });
    await writeFile(join(dir, "client.key"), data["tls.key"]!, { mode: 0o600 });
    await writeFile(join(dir, "root.crt"), data["root.crt"]!, { mode: 0o600 });
    return { dir, serial: parseCertificates(data["tls.crt"]!)[0]!.serialNumber, data: secret.data ?? {} };
  }

  const login = (dir: string) =>
    psql({
      host: "localhost",
      port: env.pg.port,
      user: "analysis",
      sslmode: "verify-full",
      sslcert: join(dir, "client.crt"),
      sslkey: join(dir, "client.key"),
      sslrootcert: join(dir, "root.crt"),
      command: "SELECT current_user",
    });

  it("check imc/analysis logs in with the connection's own Secret: current_user analysis, ssl true, its serial; exit 0", async () => {
    const r = await mtls(["check", "-n", ns, "imc/analysis"]);
    show("kubectl mtls check imc/analysis", r);
    expect(r.code, r.stderr).to.equal(0);
    const status = (await imc()).status!;
    expect(r.stdout).to.match(/current_user:\s+analysis\n/).and.match(/ssl:\s+true \(TLSv1\.[23], /);
    expect(r.stdout).to.contain(`client_serial:   ${status.certificate!.serialNumber} (the connection's current certificate)`);
    const json = JSON.parse((await mtls(["check", "-n", ns, "imc/analysis", "-o", "json"])).stdout) as CheckResult;
    expect(json).to.deep.include({ currentUser: "analysis", ssl: true, serverName: "localhost", clientSerialMatchesStatus: true });
    expect(json.serverCertificate.serialNumber).to.equal((await sdb()).status!.serverCertificate!.serialNumber);
    expect(json.serverVersion).to.match(/^PostgreSQL \d+/);

    const noForward = await mtls(["check", "-n", ns, "imc/analysis", "--port-forward"]);
    expect(noForward.code).to.equal(2);
    expect(noForward.stderr).to.equal("error: localhost names no Service (<svc>.<ns>.svc): --port-forward cannot tell where to forward; use --host/--port instead\n");
  });

  it("rotate imc/analysis: a new client certificate, Ready, a line per phase; exit 0", async () => {
    const before = (await imc()).status!.certificate!.serialNumber;
    const r = await mtls(["rotate", "-n", ns, "imc/analysis"]);
    show("kubectl mtls rotate imc/analysis", r);
    expect(r.code, r.stderr).to.equal(0);
    const after = await imc();
    const serial = after.status!.certificate!.serialNumber!;
    expect(serial).to.not.equal(before);
    expect(after.status!.conditions!.find((c) => c.type === "Ready")!.status).to.equal("True");
    const token = after.metadata.annotations!["mtls.imaging.dev/rotate"]!;
    expect(after.status!.certificate!.lastRotationToken).to.equal(token);
    expect(r.stdout).to.match(new RegExp(`^imagingconnection ${ns}/analysis annotated mtls\\.imaging\\.dev/rotate=${token}\\n`));
    expect(r.stdout).to.match(new RegExp(`\\[\\s*\\d+\\.\\ds\\] client certificate serial ${serial} \\(was ${before}\\) is in use: Ready True Connected\\n$`));
  });

  it("rotate sdb/db: the server serves the new server certificate; exit 0", async () => {
    const before = (await sdb()).status!;
    const r = await mtls(["rotate", "-n", ns, "sdb/db"]);
    show("kubectl mtls rotate sdb/db", r);
    expect(r.code, r.stderr).to.equal(0);
    const after = (await sdb()).status!;
    expect(after.serverCertificate!.serialNumber).to.not.equal(before.serverCertificate!.serialNumber);
    expect(after.verification!.servedSerialNumber).to.equal(after.serverCertificate!.serialNumber).and.not.equal(before.verification!.servedSerialNumber);
    expect(r.stdout).to.contain(`the server serves the new certificate, serial ${after.serverCertificate!.serialNumber}`);
  });

  it("rotate sdb/db --ca: Overlap, Reissuing, Finishing, back to Idle with a new CA serial; exit 0", async () => {
    const before = (await sdb()).status!.ca!.serialNumber;
    const r = await mtls(["rotate", "-n", ns, "sdb/db", "--ca", "--timeout", "4m"]);
    show("kubectl mtls rotate sdb/db --ca", r);
    expect(r.code, r.stderr).to.equal(0);
    const after = (await sdb()).status!;
    expect(after.ca!.serialNumber).to.not.equal(before);
    expect(after.caRotation?.phase ?? "Idle").to.equal("Idle");
    expect(r.stdout).to.match(/CA rotation Overlap: /).and.match(/CA rotation Reissuing: /).and.match(/CA rotation Finishing: /);
    expect(r.stdout).to.contain(`the CA is rotated: serial ${after.ca!.serialNumber} (was ${before}), rotation Idle`);
    await waitForCondition("imc", ns, "analysis", "Ready", (c) => c.status === "True", 120_000);
  });

  it("a timeout exits 1 and says what it waited for (the operator stopped: no condition can say why)", async () => {
    await env.stopOperator();
    try {
      const r = await mtls(["rotate", "-n", ns, "imc/analysis", "--timeout", "3s"]);
      show("kubectl mtls rotate imc/analysis --timeout 3s (operator stopped)", r);
      expect(r.code).to.equal(1);
      expect(r.stderr).to.match(/^timed out after 3s: rotation "[^"]+" requested: waiting for the operator to issue a new client certificate; (held back by \S+ \S+ \S+: .+|no condition says why: is the operator running and watching this namespace\?)\n$/);
    } finally {
      await env.startOperator();
    }
    await waitForCondition("imc", ns, "analysis", "Ready", (c) => c.status === "True", 120_000);
  });

  it("revoke imc/analysis --dry-run prints the apply as YAML and changes nothing", async () => {
    const before = await sdb();
    const r = await mtls(["revoke", "-n", ns, "imc/analysis", "--reason", "keyCompromise", "--dry-run"]);
    show("kubectl mtls revoke imc/analysis --dry-run", r);
    expect(r.code, r.stderr).to.equal(0);
    const serial = (await imc()).status!.certificate!.serialNumber!;
    expect(r.stdout).to.equal(
      `apiVersion: mtls.imaging.dev/v1alpha1\nkind: SecureDatabase\nmetadata:\n  name: db\n  namespace: ${ns}\nspec:\n  trust:\n    revocations:\n      - serialNumber: ${serial}\n        reason: keyCompromise\n`,
    );
    expect(r.stderr).to.match(/^dry run: nothing changed/);
    expect((await sdb()).metadata.resourceVersion).to.equal(before.metadata.resourceVersion);
    const bad = await mtls(["revoke", "-n", ns, "imc/analysis", "--reason", "because"]);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.match(/^error: --reason must be one of unspecified, keyCompromise, superseded, cessationOfOperation, affiliationChanged, not "because"/);
  });

  it("revoke imc/analysis: the CRL lists the serial, managedFields name kubectl-mtls, PostgreSQL refuses the old certificate, check of it exits 1", async () => {
    const old = await clientFiles();
    try {
      const ok = await login(old.dir);
      expect(ok.code, ok.stderr).to.equal(0);
      const r = await mtls(["revoke", "-n", ns, "imc/analysis", "--reason", "keyCompromise"]);
      show("kubectl mtls revoke imc/analysis", r);
      expect(r.code, r.stderr).to.equal(0);
      const db = await getJson<SecureDatabase & { metadata: { managedFields?: { manager: string; operation: string; fieldsV1?: object }[] } }>(["get", "sdb", "db", "-n", ns, "--show-managed-fields"]);
      expect(db.status!.trust!.revokedSerials).to.include(old.serial);
      expect(db.spec.trust!.revocations).to.deep.include({ serialNumber: old.serial, reason: "keyCompromise" });
      const mine = db.metadata.managedFields!.find((f) => f.manager === "kubectl-mtls" && f.operation === "Apply");
      expect(mine, JSON.stringify(db.metadata.managedFields)).to.not.equal(undefined);
      expect(JSON.stringify(mine!.fieldsV1)).to.contain('"f:revocations"');

      // The server loads the CRL with its next reload: the old certificate is refused from then on.
      let last: RunResult | undefined;
      await waitFor("PostgreSQL refuses the revoked certificate", async () => (last = await login(old.dir)).code !== 0, 60_000, 500);
      expect(last!.stderr).to.match(/certificate revoked/i);
      // The operator gives the connection a new key at once; it logs in.
      await waitFor("a new certificate", async () => (await imc()).status?.certificate?.serialNumber !== old.serial, 60_000, 500);
      await waitForCondition("imc", ns, "analysis", "Ready", (c) => c.status === "True", 120_000);

      // The Secret put back to the revoked certificate (the operator stopped, so it stays): check is refused.
      await env.stopOperator();
      try {
        const secret = await getJson<SecretObject>(["get", "secret", "analysis-client-tls", "-n", ns]);
        await kubectlOk(["replace", "-f", "-"], JSON.stringify({ ...secret, data: old.data }));
        const refused = await mtls(["check", "-n", ns, "imc/analysis"]);
        show("kubectl mtls check imc/analysis (a revoked certificate)", refused);
        expect(refused.code, refused.stderr).to.equal(1);
        expect(refused.stdout).to.match(new RegExp(`refused the login as analysis with certificate serial ${old.serial}\\n`));
        expect(refused.stdout).to.match(/server said:\s+.*certificate revoked/i).and.contain("reason:       ClientCertificateRejected: the server refused the client certificate");
        expect(refused.stdout).to.contain(`likely fix:   serial ${old.serial} is revoked by securedatabase ${ns}/db (status.trust.revokedSerials)`);
      } finally {
        await env.startOperator();
      }
      await waitFor("the revoked Secret re-issued", async () => (await imc()).status?.certificate?.serialNumber !== old.serial, 60_000, 500);
      await waitForCondition("imc", ns, "analysis", "Ready", (c) => c.status === "True", 120_000);
      const again = await mtls(["check", "-n", ns, "imc/analysis"]);
      expect(again.code, again.stdout + again.stderr).to.equal(0);
    } finally {
      await rm(old.dir, { recursive: true, force: true });
    }
  });

  it("revoke --serial with the list owned by another manager: refused with the way out; --force-conflicts keeps every entry", async () => {
    const entries = (await sdb()).spec.trust!.revocations!;
    const theirs = { serialNumber: "0a0b0c", reason: "superseded" };
    await kubectlOk(["patch", "sdb", "db", "-n", ns, "--type=merge", "-p", JSON.stringify({ spec: { trust: { revocations: [...entries, theirs] } } })]);
    const refused = await mtls(["revoke", "-n", ns, "--serial", "0D:0E:0F", "--database", "sdb/db"]);
    show("kubectl mtls revoke --serial 0D:0E:0F --database sdb/db (the list is kubectl-patch's)", refused);
    expect(refused.code).to.equal(2);
    expect(refused.stderr).to.match(/^error: securedatabase \S+ refused the apply: Apply failed with 1 conflict: conflict with "kubectl-patch".*\.spec\.trust\.revocations: .*--force-conflicts\n$/);
    const forced = await mtls(["revoke", "-n", ns, "--serial", "0D:0E:0F", "--database", "sdb/db", "--force-conflicts"]);
    show("kubectl mtls revoke --serial 0D:0E:0F --database sdb/db --force-conflicts", forced);
    expect(forced.code, forced.stderr).to.equal(0);
    const after = await sdb();
    expect(after.spec.trust!.revocations).to.deep.equal([...entries, theirs, { serialNumber: "0d0e0f", reason: "unspecified" }]);
    expect(after.status!.trust!.revokedSerials).to.include("0d0e0f");
  });

  it("completion: the scripts hold the verbs; kubectl mtls <TAB> completes verbs and names through kubectl_complete-mtls", async () => {
    const bash = await mtls(["completion", "bash"]);
    expect(bash.code, bash.stderr).to.equal(0);
    for (const verb of ["status", "declaration", "inspect", "rotate", "revoke", "check", "completion"]) expect(bash.stdout).to.contain(verb);
    expect(bash.stdout).to.contain("complete -F _kubectl_mtls kubectl-mtls");
    const zsh = await mtls(["completion", "zsh"]);
    expect(zsh.stdout).to.match(/^#compdef kubectl-mtls\n/);

    // kubectl's own completion entry point, as bash's and zsh's kubectl completion call it.
    const verbs = await plugin.kubectl(["__complete", "mtls", "r"]);
    console.log(`    kubectl __complete mtls r:\n${verbs.stdout.replace(/^/gm, "      ")}`);
    expect(verbs.stdout.split("\n")).to.include.members(["rotate", "revoke"]);
    const names = await plugin.kubectl(["__complete", "mtls", "-n", ns, "rotate", ""]);
    console.log(`    kubectl __complete mtls -n NS rotate "":\n${names.stdout.replace(/^/gm, "      ")}`);
    expect(names.stdout.split("\n")).to.include.members(["sdb/db", "imc/analysis"]);
    const reasons = await plugin.kubectl(["__complete", "mtls", "revoke", "imc/analysis", "--reason", "key"]);
    expect(reasons.stdout.split("\n")).to.include("keyCompromise");
  });
});
