/**
 * Measuring the operator process from outside, shared by the scale bench's phases (storm, renewal wave): /proc
 * figures, its Prometheus endpoint, and the API server's audit log of its requests.
 */
import { spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { cpus } from "node:os";
import type { AuditEvent } from "../test/support/controlplane";

export const WRITES = new Set(["create", "update", "patch", "delete"]);

/** The p-th percentile of an ascending list (NaN when empty). */
export const pct = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

/** p50 / p95 / p99 / max of a list of milliseconds, rounded: one bench table row. */
export function percentileRow(values: readonly number[]): { p50: number; p95: number; p99: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: Math.round(pct(sorted, 50)), p95: Math.round(pct(sorted, 95)), p99: Math.round(pct(sorted, 99)), max: Math.round(sorted.at(-1) ?? NaN) };
}

/** Rounds to one decimal. */
export const tenths = (x: number): number => Math.round(x * 10) / 10;

export async function procStatus(pid: number): Promise<{ rssMiB: number; peakMiB: number }> {
  const text = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(/\d+/.exec(text.split("\n").find((l) => l.startsWith(field)) ?? "")?.[0] ?? NaN);
  return { rssMiB: Math.round(kb("VmRSS:") / 1024), peakMiB: Math.round(kb("VmHWM:") / 1024) };
}

/** CPU seconds (user + system) a process has used so far. */
export async function cpuSeconds(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU seconds the whole machine has been busy (all cores: everything but idle and iowait). */
export async function machineBusySeconds(): Promise<number> {
  const [, ...jiffies] = (await readFile("/proc/stat", "utf8")).split("\n")[0]!.trim().split(/\s+/).map(Number);
  const total = jiffies.slice(0, 8).reduce((x, y) => x + y, 0);
  return (total - jiffies[3]! - jiffies[4]!) / 100;
}

/** Processes whose command line mentions `text` (e.g. the control plane's directory: its kube-apiserver and etcd). */
export async function pidsMentioning(text: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    if (cmdline.includes(text)) pids.push(Number(entry));
  }
  return pids;
}

/** The kube-apiserver and etcd processes of the control plane whose files live in `dir`. */
export async function apiServerAndEtcdPids(dir: string): Promise<number[]> {
  const out: number[] = [];
  for (const pid of await pidsMentioning(dir)) {
    const argv0 = (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).split("\0")[0] ?? "";
    if (/(^|\/)(kube-apiserver|etcd)$/.test(argv0)) out.push(pid);
  }
  return out;
}

/** Where the machine's CPU goes: the operator, the control plane, this bench process, and everything else. */
export interface CpuShares {
  operator: number;
  controlPlane: number;
  bench: number;
  machine: number;
}

export async function cpuShares(operatorPid: number, controlPlanePids: readonly number[]): Promise<CpuShares> {
  const own = process.cpuUsage();
  const controlPlane = await Promise.all(controlPlanePids.map((pid) => cpuSeconds(pid).catch(() => 0)));
  return { operator: await cpuSeconds(operatorPid), controlPlane: controlPlane.reduce((x, y) => x + y, 0), bench: (own.user + own.system) / 1e6, machine: await machineBusySeconds() };
}

/** "operator a / kube-apiserver+etcd b / bench c / other d (machine busy e of f core-seconds)" between two snapshots. */
export function describeCpu(from: CpuShares, to: CpuShares, wallSeconds: number): string {
  const d = (k: keyof CpuShares) => to[k] - from[k];
  const other = d("machine") - d("operator") - d("controlPlane") - d("bench");
  return `operator ${tenths(d("operator"))} / kube-apiserver+etcd ${tenths(d("controlPlane"))} / bench ${tenths(d("bench"))} / other processes ${tenths(Math.max(0, other))}; machine busy ${tenths(d("machine"))} of ${tenths(wallSeconds * cpus().length)}`;
}

/** The operator's /metrics as "name{labels}" → value. Each scrape also resets prom-client's event-loop delay histogram. */
export async function scrape(port: number): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split("\n")) if (line && !line.startsWith("#")) out.set(line.slice(0, line.lastIndexOf(" ")), Number(line.slice(line.lastIndexOf(" ") + 1)));
  return out;
}

/** Event-loop delay (ms, one decimal) since the previous scrape: q is "p50", "p90", "p99", "max", "mean" or "min". */
export function eventLoopDelayMs(metrics: Map<string, number>, q: "p50" | "p90" | "p99" | "max" | "mean" | "min"): number {
  return tenths((metrics.get(`imaging_mtls_operator_nodejs_eventloop_lag_${q}_seconds`) ?? NaN) * 1000);
}

/** Runs fn(0) … fn(count − 1) with at most inFlight calls at once. */
export async function inBatches(count: number, inFlight: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(inFlight, count) }, async () => {
      while (next < count) await fn(next++);
    }),
  );
}

/** Which of the bench's objects a request was about, by the naming convention: db-N / pg-N, c-N (and their Secrets and Events). */
export function classify(e: AuditEvent): "SecureDatabase" | "ImagingConnection" | undefined {
  const name = e.objectRef?.name ?? "";
  if (/^(db|pg)-\d+/.test(name)) return "SecureDatabase";
  if (/^c-\d+/.test(name)) return "ImagingConnection";
  return undefined;
}

export const auditTime = (e: AuditEvent): number => new Date(e.requestReceivedTimestamp).getTime();

/** The most requests received in one wall-clock second. */
export function peakPerSecond(events: readonly AuditEvent[]): number {
  const perSecond = new Map<number, number>();
  for (const e of events) {
    const s = Math.floor(auditTime(e) / 1000);
    perSecond.set(s, (perSecond.get(s) ?? 0) + 1);
  }
  return Math.max(0, ...perSecond.values());
}

/** "verb resource[/subresource]" → count, sorted by key: for a by-verb table. */
export function countByVerb(events: readonly AuditEvent[]): Record<string, number> {
  const byVerb = new Map<string, number>();
  for (const e of events) {
    const k = `${e.verb} ${e.objectRef?.resource}${e.objectRef?.subresource ? `/${e.objectRef.subresource}` : ""}`;
    byVerb.set(k, (byVerb.get(k) ?? 0) + 1);
  }
  return Object.fromEntries([...byVerb].sort());
}

/**
 * Seconds the API server spent serving requests, by "verb resource[/subresource]", from its own
 * apiserver_request_duration_seconds histogram (`kubectl get --raw /metrics`): which writes cost it the most.
 */
export function apiServerSecondsByRequest(metricsText: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of metricsText.split("\n")) {
    if (!line.startsWith("apiserver_request_duration_seconds_sum{")) continue;
    const label = (name: string) => new RegExp(`[{,]${name}="([^"]*)"`).exec(line)?.[1] ?? "";
    const key = `${label("verb")} ${label("resource")}${label("subresource") ? `/${label("subresource")}` : ""}`;
    out.set(key, (out.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1)));
  }
  return out;
}

/** The difference of two apiServerSecondsByRequest readings, as ms per object, the heaviest first (watches left out). */
export function apiServerMsPerObject(before: Map<string, number>, after: Map<string, number>, objects: number): Record<string, number> {
  const rows = [...after]
    .map(([k, v]) => [k, ((v - (before.get(k) ?? 0)) * 1000) / objects] as const)
    .filter(([k, ms]) => ms >= 0.05 && !k.startsWith("WATCH"))
    .sort((a, b) => b[1] - a[1]);
  return Object.fromEntries(rows.map(([k, ms]) => [k, tenths(ms)]));
}


/**
 * A CPU profile of kube-apiserver (its /debug/pprof, on by default) over the next `seconds`, written to `path` for
 * `go tool pprof -top <path>`: where the API server's time per object goes.
 */
export function captureApiServerProfile(kubectl: string, kubeconfig: string, path: string, seconds: number): Promise<void> {
  const out = createWriteStream(path);
  const child = spawn(kubectl, ["--kubeconfig", kubeconfig, "get", "--raw", `/debug/pprof/profile?seconds=${seconds}`], { stdio: ["ignore", "pipe", "inherit"] });
  child.stdout.pipe(out);
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? out.end(resolve) : reject(new Error(`kubectl get --raw /debug/pprof/profile exited ${code}`))));
  });
}
