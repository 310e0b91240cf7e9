import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import winston from "winston";
import type { Reason } from "./api/reasons";

export type Logger = winston.Logger;

const reconcileScope = new AsyncLocalStorage<string>();

/** Runs one reconcile with an id of its own: every log line it writes, however deep, carries `reconcileId`. */
export function withReconcileId<T>(fn: () => Promise<T>): Promise<T> {
  return reconcileScope.run(randomUUID(), fn);
}

const withReconcileIdField = winston.format((info) => {
  const id = reconcileScope.getStore();
  if (id !== undefined) info.reconcileId = id;
  return info;
});

/**
 * JSON, one line per event. Callers pass `resource`, `namespace` and `reason` fields; key material never reaches a
 * log call (certificates are logged by serial and fingerprint only).
 */
export function createLogger(level = process.env.LOG_LEVEL ?? "info"): Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(withReconcileIdField(), winston.format.timestamp(), winston.format.errors({ stack: false }), winston.format.json()),
    defaultMeta: { component: "imaging-db-mtls-operator" },
    transports: [new winston.transports.Console({ stderrLevels: ["error", "warn", "info", "debug"] })],
  });
}

/** The fields of a log line about one thing: its `reason` is a word of the operator's vocabulary (src/api/reasons.ts). */
export interface LogFields {
  /** `<Kind>/<name>`, or `operator` for the process itself. */
  resource: string;
  namespace: string;
  reason: Reason;
  [field: string]: unknown;
}

/** What a caught error says, for an `error` log field. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A logger that drops everything: for tests and benchmarks that measure, not read. */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true });
}
