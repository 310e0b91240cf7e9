import "reflect-metadata";
import * as k8s from "@kubernetes/client-node";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import type { Reason } from "./api/reasons";
import { HELP, parseCommandLine, UsageError } from "./cli";
import { RestClient } from "./kube/rest";
import { createLogger, errorMessage, type LogFields } from "./log";
import { startHealthServer } from "./observability/http";
import { Operator } from "./operator";
import { LeaderElector } from "./runtime/leader-election";

const SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

function inClusterNamespace(): string | undefined {
  try {
    return readFileSync(SERVICE_ACCOUNT_NAMESPACE, "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const identity = `${process.env.POD_NAME || hostname()}_${randomBytes(4).toString("hex")}`;
  const config = parseCommandLine(process.argv.slice(2), { env: process.env, identity, inClusterNamespace: inClusterNamespace() });
  if (config.help) {
    process.stdout.write(HELP);
    return;
  }
  const log = createLogger(config.logLevel);
  const kubeConfig = new k8s.KubeConfig();
  if (config.kubeconfig) kubeConfig.loadFromFile(config.kubeconfig);
  else kubeConfig.loadFromDefault();

  const election = config.leaderElection;
  const now = () => new Date();
  const { namespaces, concurrency, mountPathPrefix, allowedEndpoints, caKeyNamespace } = config;
  const operator = new Operator({ kubeConfig, log, namespaces, concurrency, mountPathPrefix, allowedEndpoints, caKeyNamespace, standby: election !== undefined, now });
  const elector = election
    ? new LeaderElector({
        ...election,
        client: new RestClient(kubeConfig),
        log,
        now,
        onStartedLeading: () => operator.startReconciling(),
        // Another replica may already be reconciling: stop at once, as controller-runtime does; the kubelet restarts us.
        onStoppedLeading: () => process.exit(1),
      })
    : undefined;
  // Ready: caches synced, and a leader is reconciling (a synced standby is ready to take over).
  const ready = () => operator.hasSynced() && (!elector?.isLeader || operator.reconciling);
  const health = config.healthPort > 0 ? await startHealthServer({ host: "0.0.0.0", port: config.healthPort, ready, metrics: operator.metrics }) : undefined;
  const scope = config.namespaces?.join(",") ?? "";
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info("shutting down", { reason: "ShuttingDown", signal, resource: "operator", namespace: scope } satisfies LogFields);
    // Finish the reconciles in flight, then hand the lease over so a standby takes over at its next retry.
    void operator
      .stop()
      .then(() => Promise.all([elector?.release(), health?.close()]))
      .then(() => process.exit(0));
    setTimeout(() => process.exit(1), 15_000).unref();
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  log.info("starting", {
    reason: "Starting",
    resource: "operator",
    namespace: scope,
    server: kubeConfig.getCurrentCluster()?.server,
    concurrency: config.concurrency,
    healthPort: config.healthPort,
    leaderElection: election ? `${election.namespace}/${election.name} as ${election.identity}` : "off",
  } satisfies LogFields);
  elector?.start();
  await operator.start();
}

main().catch((err: unknown) => {
  const usage = err instanceof UsageError;
  const reason: Reason = usage ? "InvalidArguments" : "StartupFailed";
  // No logger yet (the command line names its level): the same JSON shape by hand.
  const message = usage ? "invalid command line" : "operator failed to start";
  console.error(JSON.stringify({ level: "error", message, reason, error: errorMessage(err) }));
  process.exit(usage ? 2 : 1);
});
