import winston from "winston";

export type Logger = winston.Logger;

/**
 * JSON, one line per event. Callers pass `resource`, `namespace` and `reason` fields; key material never reaches a
 * log call (certificates are logged by serial and fingerprint only).
 */
export function createLogger(level = process.env.LOG_LEVEL ?? "info"): Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.errors({ stack: false }), winston.format.json()),
    defaultMeta: { component: "imaging-db-mtls-operator" },
    transports: [new winston.transports.Console({ stderrLevels: ["error", "warn", "info", "debug"] })],
  });
}

/** A logger that drops everything: for tests and benchmarks that measure, not read. */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true });
}
