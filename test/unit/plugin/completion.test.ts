import { expect } from "chai";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parse } from "yaml";
import { complete, completionRequest, completionScript, namesFromOutput, renderCandidates } from "../../../src/plugin/completion";
import { runPlugin, VERBS } from "../../../src/plugin/main";
import { capture } from "./fixtures";

const REPO = join(__dirname, "..", "..", "..");
const NAMES = VERBS.map((v) => v.name);

describe("kubectl mtls completion", () => {
  describe("completionRequest (which candidates the current word takes)", () => {
    it("a verb first, after common flags too; `help` takes a verb", () => {
      expect(completionRequest([""], VERBS)).to.deep.equal({ words: [...NAMES, "help"] });
      expect(completionRequest(["-n", "cast", "ro"], VERBS)).to.deep.equal({ words: [...NAMES, "help"] });
      expect(completionRequest(["help", ""], VERBS)).to.deep.equal({ words: NAMES });
      expect(NAMES).to.include.members(["status", "declaration", "inspect", "rotate", "revoke", "check", "completion"]);
    });

    it("the verb's flags and the common ones for a word starting with -", () => {
      const r = completionRequest(["rotate", "--"], VERBS);
      expect("words" in r && r.words).to.include.members(["--ca", "--timeout", "--no-wait", "--namespace", "-n", "--kubeconfig", "--context", "--help"]);
      expect("words" in r && r.words).to.not.include("--serial");
    });

    it("object names of the kinds a verb takes, in the namespace and kubeconfig of the command line", () => {
      expect(completionRequest(["rotate", ""], VERBS)).to.deep.equal({ kinds: ["sdb", "imc"], namespace: undefined, kube: { kubeconfig: undefined, context: undefined } });
      expect(completionRequest(["-n", "cast", "--context=prod", "check", "imc/a"], VERBS)).to.deep.equal({ kinds: ["imc"], namespace: "cast", kube: { kubeconfig: undefined, context: "prod" } });
      expect(completionRequest(["revoke", "--database", ""], VERBS)).to.deep.include({ kinds: ["sdb"] });
      expect(completionRequest(["status", "-n", ""], VERBS)).to.deep.include({ namespaces: true });
    });

    it("fixed words: reasons, output formats, shells; nothing for a free value", () => {
      expect(completionRequest(["revoke", "imc/a", "--reason", ""], VERBS)).to.deep.equal({ words: ["unspecified", "keyCompromise", "superseded", "cessationOfOperation", "affiliationChanged"] });
      expect(completionRequest(["completion", ""], VERBS)).to.deep.equal({ words: ["bash", "zsh"] });
      expect(completionRequest(["rotate", "--timeout", ""], VERBS)).to.deep.equal({ words: [] });
      expect(completionRequest(["inspect", ""], VERBS)).to.deep.equal({ words: ["secret"] });
      expect(completionRequest(["declaration", "imc/a", "--format", ""], VERBS)).to.deep.equal({ words: ["json", "ini", "jdbc", "env"] });
    });
  });

  it("answers in Cobra's format: the candidates that start with the current word, then :4 (no file names)", async () => {
    expect(renderCandidates(["rotate", "revoke", "status"], "r")).to.equal("rotate\nrevoke\n:4\n");
    expect(await complete(["re"], VERBS)).to.equal("revoke\n:4\n");
    expect(await complete([], VERBS)).to.equal(`${[...NAMES, "help"].join("\n")}\n:4\n`);
    expect(namesFromOutput("securedatabase.mtls.imaging.dev/db\nsecuredatabase.mtls.imaging.dev/other\n")).to.deep.equal(["db", "other"]);
    const c = capture();
    expect(await runPlugin(["__complete", "revoke", "imc/x", "--reason", "k"], c.out)).to.equal(0);
    expect(c.stdout).to.equal("keyCompromise\n:4\n");
  });

  it("prints bash and zsh scripts that hold every verb and ask the plugin for the rest; another shell is exit 2", async () => {
    for (const shell of ["bash", "zsh"] as const) {
      const script = completionScript(shell, VERBS);
      expect(script).to.contain(NAMES.join(" ")).and.contain("kubectl-mtls __complete");
      const c = capture();
      expect(await runPlugin(["completion", shell], c.out)).to.equal(0);
      expect(c.stdout).to.equal(script);
    }
    expect(completionScript("bash", VERBS)).to.contain("complete -F _kubectl_mtls kubectl-mtls");
    expect(completionScript("zsh", VERBS)).to.match(/^#compdef kubectl-mtls\n/);
    const c = capture();
    expect(await runPlugin(["completion", "fish"], c.out)).to.equal(2);
    expect(c.stderr).to.equal("error: completion takes one shell, bash or zsh: kubectl mtls completion bash\n");
  });

  it("ships kubectl_complete-mtls next to kubectl-mtls, in package.json's bin", async () => {
    const pkg = JSON.parse(await readFile(join(REPO, "package.json"), "utf8")) as { bin: Record<string, string> };
    expect(pkg.bin).to.deep.include({ "kubectl-mtls": "bin/kubectl-mtls", "kubectl_complete-mtls": "bin/kubectl_complete-mtls" });
    expect(await readFile(join(REPO, "bin", "kubectl_complete-mtls"), "utf8")).to.match(/^#!\/usr\/bin\/env node\n/).and.contain('require("../dist/plugin/main.js").completeMain()');
  });
});

describe("deploy/krew/mtls.yaml", () => {
  interface Platform {
    selector: { matchLabels: { os: string; arch: string } };
    uri: string;
    sha256: string;
    bin: string;
    files: { from: string; to: string }[];
  }
  interface Manifest {
    apiVersion: string;
    kind: string;
    metadata: { name: string };
    spec: { version: string; shortDescription: string; description: string; homepage: string; platforms: Platform[] };
  }

  it("describes the plugin mtls: its verbs, and kubectl-mtls for linux and darwin on amd64 and arm64", async () => {
    const m = parse(await readFile(join(REPO, "deploy", "krew", "mtls.yaml"), "utf8")) as Manifest;
    expect(m.apiVersion).to.equal("krew.googlecontainertools.github.com/v1alpha2");
    expect(m.kind).to.equal("Plugin");
    expect(m.metadata.name).to.equal("mtls");
    expect(m.spec.shortDescription).to.be.a("string").and.have.length.within(10, 60);
    expect(m.spec.version).to.match(/^v\d+\.\d+\.\d+$/);
    for (const verb of NAMES) expect(m.spec.description, verb).to.match(new RegExp(`\\n\\s+${verb}\\s`));
    const platforms = m.spec.platforms.map((p) => `${p.selector.matchLabels.os}/${p.selector.matchLabels.arch}`);
    expect(platforms.sort()).to.deep.equal(["darwin/amd64", "darwin/arm64", "linux/amd64", "linux/arm64"]);
    for (const p of m.spec.platforms) {
      expect(p.bin).to.equal("kubectl-mtls");
      expect(p.files.map((f) => f.from)).to.include.members(["kubectl-mtls", "kubectl_complete-mtls"]);
      expect(p.uri).to.equal(`https://github.com/<org>/imaging-db-mtls-operator/releases/download/${m.spec.version}/kubectl-mtls.tar.gz`);
      expect(p.sha256).to.match(/^[0-9a-f]{64}$/);
    }
  });
});
