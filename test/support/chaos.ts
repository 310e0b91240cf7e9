/** Helpers for the chaos tests: a seeded PRNG, a logger that keeps the operator's lines, and what a server really serves. */
import { X509Certificate } from "node:crypto";
import { Writable } from "node:stream";
import winston from "winston";
import { normalizeSerial } from "../../src/postgres/probe";
import type { Logger } from "../../src/log";
import type { AuditEvent } from "./controlplane";
import { run } from "./process";

/** mulberry32: a tiny deterministic PRNG, so a chaos run can be replayed from its seed. */
export class SeededRandom {
  private state: number;

  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
}

export interface LogEntry {
  level: string;
  message: string;
  [field: string]: unknown;
}

/**
 * A logger for the operator that keeps every line it writes, stamped with the time it was written, so a test can
 * say what the operator went through. LOG_OPERATOR=1 also prints them.
 */
export function keepingLogger(logs: LogEntry[]): Logger {
  const sink = new Writable({
    objectMode: true,
    write(info: LogEntry, _encoding, callback) {
      logs.push({ ...info, at: new Date().toISOString() });
      if (process.env.LOG_OPERATOR) console.error(JSON.stringify(info));
      callback();
    },
  });
  return winston.createLogger({ level: "debug", transports: [new winston.transports.Stream({ stream: sink })] });
}

/** Records every unhandled promise rejection of this process until disposed. */
export function recordUnhandledRejections(): { rejections: unknown[]; dispose(): void } {
  const rejections: unknown[] = [];
  const listener = (reason: unknown) => rejections.push(reason);
  process.on("unhandledRejection", listener);
  return { rejections, dispose: () => process.off("unhandledRejection", listener) };
}

export interface ServedServerCertificate {
  /** Canonical hex (normalizeSerial). */
  serialNumber: string;
  subjectAltName: string;
  issuer: string;
}

/**
 * The certificate a real PostgreSQL server presents, read with openssl's own PostgreSQL STARTTLS (no client
 * certificate is needed for the handshake: the server only checks it at authentication).
 */
export async function servedServerCertificate(host: string, port: number): Promise<ServedServerCertificate> {
  const r = await run("openssl", ["s_client", "-starttls", "postgres", "-connect", `${host}:${port}`, "-showcerts"], { input: "", timeoutMs: 15_000 });
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(r.stdout)?.[0];
  if (!pem) throw new Error(`openssl s_client -starttls postgres ${host}:${port} got no certificate: ${r.stderr.slice(-500)}`);
  const cert = new X509Certificate(pem);
  return { serialNumber: normalizeSerial(cert.serialNumber), subjectAltName: cert.subjectAltName ?? "", issuer: cert.issuer };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The object an audit event is about, as one comparable string. */
export function auditObject(e: AuditEvent): string {
  const o = e.objectRef ?? {};
  return `${o.apiGroup ?? ""}/${o.resource ?? ""}${o.subresource ? `/${o.subresource}` : ""} ${o.namespace ?? ""}/${o.name ?? ""}`;
}

const WRITES = new Set(["create", "update", "patch", "delete"]);

export interface ConflictReport {
  /** Every 409 the user got, in the order the API server answered. */
  conflicts: { object: string; verb: string; at: string }[];
  /** 409s with no later successful write to the same object. */
  unretried: { object: string; verb: string; at: string }[];
  /** 409 count per object. */
  perObject: Record<string, number>;
}

/**
 * Pairs each 409 Conflict in `events` (one user's ResponseComplete audit events, in log order) with a later
 * successful (2xx) write of the same user to the same object: a conflict that was retried.
 */
export function conflictsAndRetries(events: readonly AuditEvent[]): ConflictReport {
  const conflicts: ConflictReport["conflicts"] = [];
  const unretried: ConflictReport["unretried"] = [];
  const perObject: Record<string, number> = {};
  events.forEach((e, i) => {
    if (e.responseStatus?.code !== 409) return;
    const object = auditObject(e);
    const c = { object, verb: e.verb, at: e.requestReceivedTimestamp };
    conflicts.push(c);
    perObject[object] = (perObject[object] ?? 0) + 1;
    const retried = events.slice(i + 1).some((later) => WRITES.has(later.verb) && auditObject(later) === object && (later.responseStatus?.code ?? 0) >= 200 && (later.responseStatus?.code ?? 0) < 300);
    if (!retried) unretried.push(c);
  });
  return { conflicts, unretried, perObject };
}
