import { expect } from "chai";
import { createServer, type AddressInfo } from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseCommandLine } from "../../../src/plugin/command";
import { PluginError } from "../../../src/plugin/errors";
import { resolveNamespace } from "../../../src/plugin/kube";
import { runPlugin, VERBS } from "../../../src/plugin/main";
import { parse } from "yaml";
import { age, daysUntil, renderDocument, renderTable } from "../../../src/plugin/output";
import { capture, NOW } from "./fixtures";

/** A loopback port nothing listens on (it was free a moment ago). */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

describe("kubectl mtls command line", () => {
  describe("parseCommandLine", () => {
    it("finds the verb after common flags too, and parses the verb's own flags", () => {
      const a = parseCommandLine(["-n", "cast", "status", "-A", "-o", "json"], VERBS);
      expect(a.kind).to.equal("run");
      if (a.kind !== "run") return;
      expect(a.verb.name).to.equal("status");
      expect(a.invocation.flags).to.deep.include({ namespace: "cast", "all-namespaces": true, output: "json" });
      const b = parseCommandLine(["--kubeconfig=/k", "declaration", "imc/x", "--format", "jdbc"], VERBS);
      expect(b.kind === "run" && b.invocation.positionals).to.deep.equal(["imc/x"]);
      expect(b.kind === "run" && b.invocation.flags).to.deep.include({ kubeconfig: "/k", format: "jdbc" });
    });

    it("answers help for no verb, --help, help VERB and VERB --help", () => {
      expect(parseCommandLine([], VERBS)).to.deep.equal({ kind: "help" });
      expect(parseCommandLine(["--help"], VERBS)).to.deep.equal({ kind: "help" });
      expect(parseCommandLine(["help", "inspect"], VERBS)).to.deep.include({ kind: "help" }).and.have.nested.property("verb.name", "inspect");
      expect(parseCommandLine(["status", "-h"], VERBS)).to.have.nested.property("verb.name", "status");
    });

    it("refuses an unknown verb or flag, pointing at the help", () => {
      expect(() => parseCommandLine(["renew"], VERBS)).to.throw(PluginError, 'unknown command "renew": the commands are status, declaration, inspect, rotate, revoke, check, completion (kubectl mtls --help)');
      expect(() => parseCommandLine(["status", "--format", "ini"], VERBS)).to.throw(PluginError, /Unknown option '--format'.*: see kubectl mtls status --help$/);
    });
  });

  describe("runPlugin", () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), "kubectl-mtls-"));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it("prints the plugin's help, listing every verb, and each verb's with the common flags; exit 0", async () => {
      const c = capture();
      expect(await runPlugin(["--help"], c.out, NOW)).to.equal(0);
      for (const v of VERBS) expect(c.stdout).to.contain(`  ${v.name}`);
      const s = capture();
      expect(await runPlugin(["status", "--help"], s.out, NOW)).to.equal(0);
      expect(s.stdout).to.contain("Exit codes: 0 everything shown is Ready, 1 something is not, 2 the command failed.").and.contain("--kubeconfig PATH");
    });

    it("turns a usage error into one line on stderr and exit code 2, before touching any kubeconfig", async () => {
      for (const argv of [["declaration"], ["declaration", "sdb/db"], ["inspect", "pod", "x"], ["status", "a", "b"], ["status", "-o", "wide"], ["status", "-A", "imc/x"]]) {
        const c = capture();
        expect(await runPlugin([...argv, "--kubeconfig", join(dir, "absent")], c.out, NOW), argv.join(" ")).to.equal(2);
        expect(c.stderr, argv.join(" ")).to.match(/^error: [^\n]+\n$/);
        expect(c.stdout).to.equal("");
      }
    });

    it("says in one line when the kubeconfig is missing, unreadable, or lacks the context", async () => {
      const saved = process.env.KUBECONFIG;
      process.env.KUBECONFIG = join(dir, "absent");
      const missing = capture();
      try {
        expect(await runPlugin(["status"], missing.out, NOW)).to.equal(2);
      } finally {
        if (saved === undefined) delete process.env.KUBECONFIG;
        else process.env.KUBECONFIG = saved;
      }
      expect(missing.stderr).to.match(/^error: cannot read the kubeconfig \/\S+absent: ENOENT[^\n]*\n$/);
      const path = join(dir, "kubeconfig");
      const port = await closedPort();
      writeFileSync(path, `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:${port}'}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n`);
      const context = capture();
      expect(await runPlugin(["status", "--kubeconfig", path, "--context", "prod"], context.out, NOW)).to.equal(2);
      expect(context.stderr).to.equal('error: context "prod" is not in the kubeconfig: list them with kubectl config get-contexts\n');
      const unreachable = capture();
      expect(await runPlugin(["status", "--kubeconfig", path], unreachable.out, NOW)).to.equal(2);
      expect(unreachable.stderr).to.match(/^error: cannot reach the API server at https:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED.*: check the kubeconfig's cluster \(kubectl cluster-info\)\n$/);
    });
  });

  it("resolves the namespace as kubectl does: -n, else the context's, else default", () => {
    expect(resolveNamespace("a", "b")).to.equal("a");
    expect(resolveNamespace(undefined, "b")).to.equal("b");
    expect(resolveNamespace(undefined, undefined)).to.equal("default");
  });

  describe("output helpers", () => {
    it("pads columns and shows absent cells as '-'", () => {
      expect(renderTable(["name", "days left"], [["db", 3], ["a-long-name", undefined]])).to.equal("NAME          DAYS LEFT\ndb            3\na-long-name   -\n");
    });

    it("writes documents as JSON or YAML that read back the same, nulls kept", () => {
      const doc = { items: [{ name: "db", ready: "True", daysLeft: 3, message: null }] };
      expect(JSON.parse(renderDocument(doc, "json"))).to.deep.equal(doc);
      expect(parse(renderDocument(doc, "yaml"))).to.deep.equal(doc);
    });

    it("counts whole days left (negative once past) and ages like kubectl", () => {
      expect(daysUntil("2026-03-11T11:59:59Z", NOW)).to.equal(9);
      expect(daysUntil("2026-02-28T12:00:00Z", NOW)).to.equal(-1);
      expect(daysUntil(undefined, NOW)).to.equal(undefined);
      expect(["2026-03-01T11:59:15Z", "2026-03-01T11:30:00Z", "2026-03-01T06:00:00Z", "2026-02-20T12:00:00Z"].map((t) => age(t, NOW))).to.deep.equal(["45s", "30m", "6h", "9d"]);
    });
  });
});
