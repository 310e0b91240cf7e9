/** The operator's command line: flags and environment variables to a checked configuration, pure. */
import { parseArgs } from "node:util";
import { DEFAULTS } from "./api/defaults";
import { DurationError, parseDuration } from "./api/duration";
import { allowanceEntryProblem } from "./reconcilers/secure-database/reach";
import { validateTimings, type LeaderElectionConfig } from "./runtime/leader-election";

export const HELP = `imaging-db-mtls-operator: puts CAST Imaging's PostgreSQL connections on mutual TLS and keeps them there.

Usage: node dist/main.js [options]

  --kubeconfig PATH                  kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, or the in-cluster ServiceAccount)
  --namespace NS[,NS...]             watch only these namespaces (default: $WATCH_NAMESPACE, or every namespace)
  --concurrency N                    reconciles at once per kind (default: $CONCURRENCY or 4)
  --allowed-endpoints LIST           hosts, *.suffixes, IPs and CIDRs the operator may dial besides Services of each database's
                                     namespace (default: $ALLOWED_ENDPOINTS or none)
  --ca-key-namespace NS              where every database's CA keys live, out of tenants' reach (default: $CA_KEY_NAMESPACE,
                                     $POD_NAMESPACE, or the in-cluster ServiceAccount's: the operator's own namespace)
  --mount-path-prefix PATH           connections may mount identities only under this directory (default: $MOUNT_PATH_PREFIX or /etc/cast-imaging/)
  --log-level LEVEL                  error, warn, info or debug (default: $LOG_LEVEL or info)
  --health-port PORT                 serve /healthz, /readyz and /metrics on this port (default: $HEALTH_PORT or 8080; 0: off)
  --leader-elect                     run as one of several replicas: only the holder of a Lease reconciles (default: $LEADER_ELECT=true)
  --leader-election-namespace NS     namespace of the Lease (default: $POD_NAMESPACE, or the in-cluster ServiceAccount's)
  --leader-election-id NAME          name of the Lease (default: imaging-db-mtls-operator)
  --lease-duration DURATION          how long a standby waits for an unrenewed lease before taking over (default: 15s)
  --renew-deadline DURATION          how long the leader retries renewing before it stops (default: 10s)
  --retry-period DURATION            how often to try to acquire or renew the lease (default: 2s)
  --help                             show this help

Durations are written like 15s, 1m30s or 500ms.
`;

export interface OperatorConfig {
  help: boolean;
  kubeconfig?: string;
  /** Undefined: every namespace. */
  namespaces?: string[];
  concurrency: number;
  /** What the operator may dial besides Services of a database's namespace (checked entries). */
  allowedEndpoints: string[];
  /** spec.workloads[].mountPath must lie under it (ends with "/"). */
  mountPathPrefix: string;
  /** Where every database's CA keys live. */
  caKeyNamespace: string;
  logLevel: string;
  healthPort: number;
  leaderElection?: LeaderElectionConfig;
}

export interface CliEnvironment {
  env: Record<string, string | undefined>;
  /** Names this replica in the Lease. */
  identity: string;
  /** The namespace of the in-cluster ServiceAccount, when there is one. */
  inClusterNamespace?: string;
}

/** A usage error: the message says which flag and what is accepted. */
export class UsageError extends Error {}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const LOG_LEVELS = ["error", "warn", "info", "debug"];

function wholeNumber(flag: string, raw: string, min: number, max: number, what: string): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || n < min || n > max) throw new UsageError(`${flag} must be ${what}, got "${raw}"`);
  return n;
}

function duration(flag: string, raw: string): number {
  let ms = 0;
  try {
    ms = parseDuration(raw);
  } catch (err) {
    if (!(err instanceof DurationError)) throw err;
  }
  if (!(ms > 0)) throw new UsageError(`${flag} must be a positive duration such as 15s or 500ms, got "${raw}"`);
  return ms;
}

function namespaceList(raw: string | undefined): string[] | undefined {
  if (raw === undefined || raw.trim() === "") return undefined;
  const list = [...new Set(raw.split(",").map((s) => s.trim()).filter((s) => s !== ""))];
  for (const ns of list) {
    if (!DNS_LABEL.test(ns)) {
      throw new UsageError(`--namespace / WATCH_NAMESPACE: "${ns}" is not a namespace name (lowercase letters, digits and '-', at most 63)`);
    }
  }
  return list.length > 0 ? list : undefined;
}

function allowedEndpoints(raw: string): string[] {
  const entries = [...new Set(raw.split(",").map((s) => s.trim()).filter((s) => s !== ""))];
  for (const entry of entries) {
    const problem = allowanceEntryProblem(entry);
    if (problem) throw new UsageError(`--allowed-endpoints / ALLOWED_ENDPOINTS: "${entry}" ${problem}`);
  }
  return entries;
}

function mountPathPrefix(raw: string): string {
  const prefix = raw.endsWith("/") ? raw : `${raw}/`;
  if (!/^(\/[A-Za-z0-9._-]+)+\/$/.test(prefix) || prefix.split("/").some((p) => p === "." || p === "..")) {
    throw new UsageError(`--mount-path-prefix / MOUNT_PATH_PREFIX must be an absolute directory below / (e.g. /etc/cast-imaging/), got "${raw}"`);
  }
  return prefix;
}

function caKeyNamespace(raw: string | undefined): string {
  if (!raw) {
    throw new UsageError(
      "--ca-key-namespace: no namespace for the CA keys: pass --ca-key-namespace or set POD_NAMESPACE " +
        "(a namespace where tenants cannot read Secrets, e.g. the operator's own)",
    );
  }
  if (!DNS_LABEL.test(raw)) throw new UsageError(`--ca-key-namespace / CA_KEY_NAMESPACE: "${raw}" is not a namespace name (lowercase letters, digits and '-', at most 63)`);
  return raw;
}

export function parseCommandLine(argv: string[], { env, identity, inClusterNamespace }: CliEnvironment): OperatorConfig {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        kubeconfig: { type: "string" },
        namespace: { type: "string" },
        concurrency: { type: "string" },
        "mount-path-prefix": { type: "string" },
        "ca-key-namespace": { type: "string" },
        "allowed-endpoints": { type: "string" },
        "log-level": { type: "string" },
        "health-port": { type: "string" },
        "leader-elect": { type: "boolean" },
        "leader-election-namespace": { type: "string" },
        "leader-election-id": { type: "string" },
        "lease-duration": { type: "string" },
        "renew-deadline": { type: "string" },
        "retry-period": { type: "string" },
        help: { type: "boolean" },
      },
    }));
  } catch (err) {
    throw new UsageError(`${err instanceof Error ? err.message : String(err)} (see --help)`);
  }
  const logLevel = values["log-level"] ?? env.LOG_LEVEL ?? "info";
  if (!LOG_LEVELS.includes(logLevel)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(", ")}, got "${logLevel}"`);
  const config: OperatorConfig = {
    help: values.help ?? false,
    kubeconfig: values.kubeconfig ?? (env.KUBECONFIG || undefined),
    namespaces: namespaceList(values.namespace ?? env.WATCH_NAMESPACE),
    concurrency: wholeNumber("--concurrency", values.concurrency ?? env.CONCURRENCY ?? "4", 1, 64, "a whole number from 1 to 64"),
    allowedEndpoints: allowedEndpoints(values["allowed-endpoints"] ?? env.ALLOWED_ENDPOINTS ?? ""),
    mountPathPrefix: mountPathPrefix(values["mount-path-prefix"] ?? env.MOUNT_PATH_PREFIX ?? DEFAULTS.mountPathPrefix),
    // --help needs no key namespace (nothing runs).
    caKeyNamespace: values.help ? "" : caKeyNamespace(values["ca-key-namespace"] ?? (env.CA_KEY_NAMESPACE || env.POD_NAMESPACE || inClusterNamespace)),
    logLevel,
    healthPort: wholeNumber("--health-port", values["health-port"] ?? env.HEALTH_PORT ?? "8080", 0, 65535, "a port number from 0 to 65535 (0: off)"),
  };
  const elect = values["leader-elect"] ?? env.LEADER_ELECT === "true";
  if (!elect) return config;
  const namespace = values["leader-election-namespace"] ?? (env.POD_NAMESPACE || inClusterNamespace);
  if (!namespace) throw new UsageError("--leader-elect needs the Lease's namespace: pass --leader-election-namespace or set POD_NAMESPACE");
  const name = values["leader-election-id"] ?? "imaging-db-mtls-operator";
  if (!DNS_LABEL.test(name)) throw new UsageError(`--leader-election-id must be a DNS label, got "${name}"`);
  const leaseDurationMs = duration("--lease-duration", values["lease-duration"] ?? "15s");
  const renewDeadlineMs = duration("--renew-deadline", values["renew-deadline"] ?? "10s");
  const retryPeriodMs = duration("--retry-period", values["retry-period"] ?? "2s");
  const problem = validateTimings({ leaseDurationMs, renewDeadlineMs, retryPeriodMs });
  // A leader must give up before a standby may take over, and a Lease counts in whole seconds.
  if (problem) throw new UsageError(`--lease-duration, --renew-deadline, --retry-period: ${problem}`);
  config.leaderElection = { namespace, name, identity, leaseDurationMs, renewDeadlineMs, retryPeriodMs };
  return config;
}
