import * as k8s from "@kubernetes/client-node";
import { parseArgs } from "node:util";
import { createLogger } from "./log";
import { startHealthServer } from "./observability/http";
import { Operator } from "./operator";

const HELP = `imaging-db-mtls-operator: puts CAST Imaging's PostgreSQL connections on mutual TLS and keeps them there.

Usage: node dist/main.js [options]

  --kubeconfig PATH     kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, or the in-cluster ServiceAccount)
  --namespace NAME      watch only this namespace (default: $WATCH_NAMESPACE, or every namespace)
  --concurrency N       reconciles at once per kind (default: $CONCURRENCY or 4)
  --log-level LEVEL     error, warn, info or debug (default: $LOG_LEVEL or info)
  --health-port PORT    serve /healthz, /readyz and /metrics on this port (default: $HEALTH_PORT or 8080; 0: off)
  --help                show this help
`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      kubeconfig: { type: "string" },
      namespace: { type: "string" },
      concurrency: { type: "string" },
      "log-level": { type: "string" },
      "health-port": { type: "string" },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const log = createLogger(values["log-level"] ?? process.env.LOG_LEVEL ?? "info");
  const concurrency = Number(values.concurrency ?? process.env.CONCURRENCY ?? 4);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
    throw new Error(`--concurrency must be a whole number from 1 to 64, got "${values.concurrency ?? process.env.CONCURRENCY}"`);
  }
  const healthPort = Number(values["health-port"] ?? process.env.HEALTH_PORT ?? 8080);
  if (!Number.isInteger(healthPort) || healthPort < 0 || healthPort > 65535) {
    throw new Error(`--health-port must be a port number from 0 to 65535 (0: off), got "${values["health-port"] ?? process.env.HEALTH_PORT}"`);
  }
  const kubeConfig = new k8s.KubeConfig();
  const kubeconfigPath = values.kubeconfig ?? process.env.KUBECONFIG;
  if (kubeconfigPath) kubeConfig.loadFromFile(kubeconfigPath);
  else kubeConfig.loadFromDefault();

  const namespace = values.namespace ?? process.env.WATCH_NAMESPACE ?? undefined;
  const operator = new Operator({ kubeConfig, log, namespace: namespace || undefined, concurrency });
  const health = healthPort > 0 ? await startHealthServer({ host: "0.0.0.0", port: healthPort, ready: () => operator.hasSynced(), metrics: operator.metrics }) : undefined;
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info("shutting down", { reason: signal, resource: "operator", namespace: namespace ?? "" });
    void Promise.all([operator.stop(), health?.close()]).then(() => process.exit(0));
    setTimeout(() => process.exit(1), 15_000).unref();
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  log.info("starting", { reason: "Starting", resource: "operator", namespace: namespace ?? "", server: kubeConfig.getCurrentCluster()?.server, concurrency, healthPort });
  await operator.start();
}

main().catch((err: unknown) => {
  console.error(JSON.stringify({ level: "error", message: "operator failed to start", reason: "StartupFailed", error: err instanceof Error ? err.message : String(err) }));
  process.exit(1);
});
