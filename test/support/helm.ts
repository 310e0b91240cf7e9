/**
 * The real helm (v4.3.2, built by test/helm/build.sh) for tests. Helm v4 installs and upgrades with server-side
 * apply under the field manager "helm": the wrappers keep that default, because the point of running the real helm
 * is to prove that a user's `helm upgrade` still succeeds beside the operator. No `--wait`: pods stay Pending on a
 * control plane without a kubelet, so readiness is never awaited.
 */
import { rmSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { run, type RunResult } from "./process";

const REPO = resolve(__dirname, "..", "..");
const BUILD = join(REPO, "test", "helm", "build.sh");
/** A cold build takes about three minutes on two cores; leave room for a busy machine. */
const BUILD_TIMEOUT_MS = 20 * 60_000;
const HELM_TIMEOUT_MS = 120_000;

let binary: Promise<string> | undefined;
let homes: Promise<string> | undefined;

/** The path of the helm binary (HELM_BIN overrides), built once per process when the cache is cold. */
export function helmBinary(): Promise<string> {
  binary ??= locate().catch((err: unknown) => {
    binary = undefined; // a later caller may retry (e.g. after the build's cause is fixed)
    throw err;
  });
  return binary;
}

async function locate(): Promise<string> {
  if (process.env.HELM_BIN) return process.env.HELM_BIN;
  const r = await run("bash", [BUILD], { timeoutMs: BUILD_TIMEOUT_MS });
  const path = r.stdout.trim().split("\n").pop() ?? "";
  if (r.code !== 0 || !path) {
    throw new Error(
      `the real helm is missing and could not be built: run \`bash test/helm/build.sh\` (needs Go and the Go module proxy; ` +
        `scripts/setup.sh does it) or point HELM_BIN at a helm v4 binary. build.sh said: ${r.stderr.slice(-2000)}`,
    );
  }
  return path;
}

/** Helm's cache, config and data homes in one temp dir per process, so tests never read or write the user's ~/. */
function helmHomes(): Promise<string> {
  homes ??= mkdtemp(join(tmpdir(), "helm-home-")).then((dir) => {
    // An exit handler cannot await: removed synchronously, best effort.
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
    return dir;
  });
  return homes;
}

export interface HelmTarget {
  kubeconfig: string;
  namespace?: string;
}

/** Runs helm against a cluster; never throws on a non-zero exit (callers assert on what helm said). */
export async function helm(args: readonly string[], target: HelmTarget): Promise<RunResult> {
  const [bin, home] = await Promise.all([helmBinary(), helmHomes()]);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HELM_CACHE_HOME: join(home, "cache"),
    HELM_CONFIG_HOME: join(home, "config"),
    HELM_DATA_HOME: join(home, "data"),
    KUBECONFIG: target.kubeconfig,
  };
  const scope = ["--kubeconfig", target.kubeconfig, ...(target.namespace ? ["--namespace", target.namespace] : [])];
  return run(bin, [...args, ...scope], { env, timeoutMs: HELM_TIMEOUT_MS });
}

/** Like helm, but a non-zero exit is an error carrying what helm printed. */
export async function helmOk(args: readonly string[], target: HelmTarget): Promise<string> {
  const r = await helm(args, target);
  if (r.code !== 0) throw new Error(`helm ${args.join(" ")} exited ${r.code}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** Values as `--set key=value` pairs (helm's own parsing: "true" is a boolean, "2285" a number). */
export type HelmSet = Readonly<Record<string, string | number | boolean>>;

function setArgs(set: HelmSet | undefined): string[] {
  return Object.entries(set ?? {}).flatMap(([k, v]) => ["--set", `${k}=${String(v)}`]);
}

export interface InstallOptions {
  set?: HelmSet;
  /** Values files, in order (later ones win, as with helm's own -f). */
  valuesFiles?: readonly string[];
}

/** `helm install <release> <chartDir>` in a namespace that already exists; resolves to helm's RunResult. */
export function install(release: string, chartDir: string, namespace: string, kubeconfig: string, opts: InstallOptions = {}): Promise<RunResult> {
  const files = (opts.valuesFiles ?? []).flatMap((f) => ["-f", f]);
  return helm(["install", release, chartDir, ...files, ...setArgs(opts.set)], { kubeconfig, namespace });
}

export interface UpgradeOptions extends InstallOptions {
  /** `--reuse-values`: the previous release's values, with `set` merged over them (what a user types most). */
  reuseValues?: boolean;
}

/** `helm upgrade <release> <chartDir>`; resolves to helm's RunResult (a conflict is a non-zero exit, not a throw). */
export function upgrade(release: string, chartDir: string, namespace: string, kubeconfig: string, opts: UpgradeOptions = {}): Promise<RunResult> {
  const files = (opts.valuesFiles ?? []).flatMap((f) => ["-f", f]);
  const reuse = opts.reuseValues ? ["--reuse-values"] : [];
  return helm(["upgrade", release, chartDir, ...reuse, ...files, ...setArgs(opts.set)], { kubeconfig, namespace });
}

/** `helm uninstall <release>`, without waiting for deletions to finish (no kubelet runs the pods' shutdown). */
export function uninstall(release: string, namespace: string, kubeconfig: string): Promise<RunResult> {
  return helm(["uninstall", release], { kubeconfig, namespace });
}

