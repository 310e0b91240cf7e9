/**
 * `kubectl mtls` installed as a user has it, for the plugin's end-to-end tests: the package as npm run build leaves
 * it (dist/ from tsconfig.build.json, bin/kubectl-mtls and bin/kubectl_complete-mtls, the dependencies), an
 * executable kubectl-mtls and kubectl_complete-mtls on PATH, kubectl itself on PATH (the plugin runs it for
 * port-forward and completion), and the admin kubeconfig in KUBECONFIG.
 */
import { expect } from "chai";
import { chmod, copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import type { ImagingConnection } from "../../src/api/types";
import { controlPlane } from "./hooks";
import { kubectlOk, waitForCondition } from "./kubectl-json";
import { imagingConnectionYaml } from "./manifests";
import { startOperatorWithDatabase, type OperatorWithDatabase } from "./operator-fixture";
import { run, type RunResult } from "./process";

const REPO = resolve(__dirname, "..", "..");
const LAUNCHERS = ["kubectl-mtls", "kubectl_complete-mtls"] as const;

export interface PluginInstall {
  /** A scratch directory of the test's own (removed by remove()). */
  readonly dir: string;
  /** The directory on PATH holding the plugin's executables. */
  readonly pluginDir: string;
  readonly kubectlBin: string;
  /** PATH with the plugin, Node 24 and kubectl first. */
  readonly pathEnv: string;
  /** `kubectl ARGS…` as the user's shell runs it (kubectl finds the plugin on PATH). */
  kubectl(args: string[], extraEnv?: NodeJS.ProcessEnv): Promise<RunResult>;
  /** `kubectl mtls ARGS…`. */
  mtls(args: string[], extraEnv?: NodeJS.ProcessEnv): Promise<RunResult>;
  remove(): Promise<void>;
}

export async function installPlugin(name: string): Promise<PluginInstall> {
  const dir = await mkdtemp(join(tmpdir(), `${name}-`));
  const pkg = join(dir, "pkg");
  const tsc = await run(process.execPath, [join(REPO, "node_modules", "typescript", "bin", "tsc"), "-p", join(REPO, "tsconfig.build.json"), "--outDir", join(pkg, "dist")], { cwd: REPO, timeoutMs: 300_000 });
  expect(tsc.code, `tsc -p tsconfig.build.json: ${tsc.stdout}${tsc.stderr}`).to.equal(0);
  await mkdir(join(pkg, "bin"));
  await symlink(join(REPO, "node_modules"), join(pkg, "node_modules"));
  const pluginDir = join(dir, "path");
  await mkdir(pluginDir);
  for (const launcher of LAUNCHERS) {
    await copyFile(join(REPO, "bin", launcher), join(pkg, "bin", launcher));
    await chmod(join(pkg, "bin", launcher), 0o755);
    // What kubectl discovers: an executable on PATH that execs the launcher.
    await writeFile(join(pluginDir, launcher), `#!/bin/sh\nexec "${join(pkg, "bin", launcher)}" "$@"\n`, { mode: 0o755 });
  }
  const cp = controlPlane();
  const kubectlBin = cp.binaries.kubectl;
  // The launchers' #!/usr/bin/env node finds the suite's Node 24 first; the plugin finds this kubectl.
  const pathEnv = [pluginDir, dirname(process.execPath), dirname(kubectlBin), process.env.PATH ?? ""].join(delimiter);
  const kubectl = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) =>
    run(kubectlBin, args, { env: { ...process.env, PATH: pathEnv, KUBECONFIG: cp.kubeconfigPath, ...extraEnv }, timeoutMs: 300_000 });
  return {
    dir,
    pluginDir,
    kubectlBin,
    pathEnv,
    kubectl,
    mtls: (args, extraEnv) => kubectl(["mtls", ...args], extraEnv),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/**
 * What the plugin's tests look at: the operator, a database granting the role `analysis`, and the Ready connection
 * `analysis` to it. `patch` goes into the SecureDatabase's spec as its test needs.
 */
export async function startPluginScene(name: string, patch?: object): Promise<OperatorWithDatabase> {
  const env = await startOperatorWithDatabase({
    name,
    databases: [{ roles: ["analysis"] }],
    secureDatabase: { access: [{ users: ["analysis"] }], ...(patch ? { patch } : {}) },
  });
  await kubectlOk(["apply", "-f", "-"], imagingConnectionYaml(env.ns, "analysis", "analysis"));
  await waitForCondition<ImagingConnection>("imc", env.ns, "analysis", "Ready", (c) => c.status === "True", 120_000);
  return env;
}
