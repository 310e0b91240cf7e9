/**
 * `kubectl port-forward` for `kubectl mtls check --port-forward`: which Service (or pod) a declared host names, and a
 * child kubectl forwarding a free local port to it until stopped. The decision whether a host is a Service of a
 * namespace is the operator's (reach.ts); this only reads the names back out of it.
 */
import { spawn } from "node:child_process";
import { isServiceOf } from "../reconcilers/secure-database/reach";
import { PluginError } from "./errors";
import { firstLine } from "./kube";

export interface ForwardTarget {
  readonly namespace: string;
  /** `service/NAME`, or `pod/NAME` for `<pod>.<svc>.<ns>.svc`. */
  readonly resource: string;
}

/** The Service (or pod) behind `<svc>.<ns>[.svc[.<cluster domain>]]` or `<pod>.<svc>.<ns>.svc…`; undefined for any other host. */
export function forwardTarget(host: string): ForwardTarget | undefined {
  const labels = host.toLowerCase().replace(/\.$/, "").split(".");
  for (const at of [1, 2]) {
    const namespace = labels[at];
    // The pod form only with its .svc: `a.b.c` is far more often an outside name than pod a of Service b in c.
    if (at === 2 && labels[3] !== "svc") continue;
    if (namespace && labels.indexOf(namespace, 1) === at && isServiceOf(host.replace(/\.$/, ""), namespace)) {
      return { namespace, resource: `${at === 1 ? "service" : "pod"}/${labels[0]}` };
    }
  }
  return undefined;
}

/** kubectl's arguments: the same kubeconfig and context, loopback only, a local port kubectl picks. */
export function portForwardArgs(target: ForwardTarget, remotePort: number, kube: { kubeconfig?: string | undefined; context?: string | undefined }): string[] {
  return [
    ...(kube.kubeconfig ? ["--kubeconfig", kube.kubeconfig] : []),
    ...(kube.context ? ["--context", kube.context] : []),
    "port-forward",
    "--namespace",
    target.namespace,
    "--address",
    "127.0.0.1",
    target.resource,
    `:${remotePort}`,
  ];
}

/** The local port in kubectl's "Forwarding from 127.0.0.1:PORT -> REMOTE" line, or undefined. */
export function forwardedPort(output: string): number | undefined {
  const m = /Forwarding from 127\.0\.0\.1:(\d+) ->/.exec(output);
  return m ? Number(m[1]) : undefined;
}

export interface PortForward {
  readonly localPort: number;
  stop(): void;
}

/** Starts `kubectl port-forward` and resolves once it listens; a kubectl that exits or stays silent is a PluginError. */
export function startPortForward(kubectl: string, args: readonly string[], timeoutMs = 15_000): Promise<PortForward> {
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    let settled = false;
    const child = spawn(kubectl, args, { stdio: ["ignore", "pipe", "pipe"] });
    const stop = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    };
    const fail = (message: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stop();
      reject(new PluginError(message));
    };
    const timer = setTimeout(() => fail(`kubectl port-forward did not start listening within ${timeoutMs / 1000}s${err ? `: ${firstLine(err)}` : ""}`), timeoutMs);
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString("utf8");
      const port = forwardedPort(out);
      if (port !== undefined && !settled) {
        settled = true;
        clearTimeout(timer);
        resolve({ localPort: port, stop });
      }
    });
    child.stderr.on("data", (chunk: Buffer) => void (err += chunk.toString("utf8")));
    child.on("error", (e) => fail(`cannot run ${kubectl} port-forward: ${firstLine(e)}: put kubectl on PATH (or set KUBECTL)`));
    child.on("exit", (code) => fail(`kubectl port-forward exited (${code ?? "signal"})${err ? `: ${firstLine(err.trim())}` : ""}`));
  });
}
