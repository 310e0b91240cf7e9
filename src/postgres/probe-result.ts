/**
 * What a probe or a reload yields: the result shapes, the canonical serial number, and how an error from `pg`,
 * Node or the server maps to a CamelCase reason. Failures are values; messages never contain key material.
 */
import { DatabaseError } from "pg";
import type { Refusal } from "../api/result";

export type ProbeFailureReason =
  | "ClientCredentialsInvalid"
  | "Unreachable"
  | "Timeout"
  | "ServerNotServingTLS"
  | "TLSHandshakeFailed"
  | "ServerCertificateUntrusted"
  | "ServerCertificateExpired"
  | "HostnameMismatch"
  | "ClientCertificateRejected"
  | "HbaRejected"
  | "AuthenticationRejected"
  | "PasswordRequired"
  | "RoleMissing"
  | "DatabaseMissing"
  | "PermissionDenied"
  | "TooManyConnections"
  | "ServerNotReady"
  | "ConnectionLost"
  | "ServerError";

/** The message holds, for server refusals, the server's exact words, e.g. `FATAL: role "x" does not exist`. */
export interface ProbeFailure extends Refusal<ProbeFailureReason> {
  /** SQLSTATE, when the server answered with an error. */
  readonly sqlState?: string;
  /** The certificate the server served, when the TLS handshake got that far (normalised serial). */
  readonly servedSerialNumber?: string;
}

export interface ServedCertificate {
  /** Lower-case hex, no separators, leading zero BYTES removed (so 0x00ab… → "ab…", 0x0a1b → "0a1b"). */
  readonly servedSerialNumber: string;
  /** Lower-case hex SHA-256 of the certificate's DER, no separators. */
  readonly servedFingerprintSha256: string;
  readonly servedSubject: string;
  readonly servedNotAfter: string;
}

export interface ProbeSuccess extends ServedCertificate {
  readonly ok: true;
  /** From the start of the TCP connection to the answer of SELECT 1. */
  readonly latencyMs: number;
}

export type ProbeResult = ProbeSuccess | ProbeFailure;

export type ReloadFailureReason = ProbeFailureReason | "ReloadNotPermitted" | "ConfigurationInvalid" | "ReloadFailed";

export interface ReloadFailure extends Refusal<ReloadFailureReason> {
  readonly sqlState?: string;
}

export interface ReloadSuccess {
  readonly ok: true;
  /** Whether the role could read pg_file_settings and pg_hba_file_rules to check the files before reloading. */
  readonly configChecked: boolean;
}

export type ReloadResult = ReloadSuccess | ReloadFailure;

/**
 * Canonical serial number: lower-case hex without separators, leading zero bytes removed (one byte kept).
 * Same rule as the PKI core's normalizeSerialNumber, so serials compare as strings. `openssl x509 -serial`
 * (0A1B…), Node (0A1B…), @peculiar/x509 (000a1b… with a DER sign byte) all normalise to the same string.
 */
export function normalizeSerial(serial: string): string {
  let hex = serial.trim().replace(/^0x/i, "").replace(/[:\s-]/g, "").toLowerCase();
  if (hex.length % 2 === 1) hex = `0${hex}`;
  while (hex.length > 2 && hex.startsWith("00")) hex = hex.slice(2);
  return hex;
}

/** Removes anything that looks like PEM material from a message, whatever a library put into it. */
export function redact(message: string, secrets: readonly string[] = []): string {
  let out = message.replace(/-----BEGIN [A-Z0-9 ]+-----[\s\S]*?(-----END [A-Z0-9 ]+-----|$)/g, "[redacted PEM]");
  for (const s of secrets) if (s.length >= 16) out = out.split(s).join("[redacted]");
  return out;
}

export function probeFailure(
  reason: ProbeFailureReason,
  message: string,
  extra: { sqlState?: string; servedSerialNumber?: string } = {},
): ProbeFailure {
  return { ok: false, reason, message, ...extra };
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

const UNTRUSTED_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_SIGNATURE_FAILURE",
  "UNABLE_TO_DECRYPT_CERT_SIGNATURE",
  "UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY",
  "CERT_NOT_YET_VALID",
  "CERT_REVOKED",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "INVALID_CA",
  "INVALID_PURPOSE",
  "PATH_LENGTH_EXCEEDED",
  "CERT_CHAIN_TOO_LONG",
  "ERROR_IN_CERT_NOT_BEFORE_FIELD",
  "ERROR_IN_CERT_NOT_AFTER_FIELD",
]);
const UNREACHABLE_CODES = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN", "EAI_NONAME", "EADDRNOTAVAIL"]);

/** TLS alerts about the client certificate: unknown CA, revoked, expired, missing… */
const CLIENT_CERTIFICATE_ALERT = new RegExp(
  "^ERR_SSL_(SSLV3|TLSV1|TLSV13|SSL/TLS)_ALERT_(UNKNOWN_CA|BAD_CERTIFICATE|" +
    "CERTIFICATE_(REVOKED|EXPIRED|UNKNOWN|REQUIRED|UNOBTAINABLE)|UNSUPPORTED_CERTIFICATE|ACCESS_DENIED|DECRYPT_ERROR)$",
);

/** Maps what `pg` / Node / the server said to a reason; the message keeps their words. */
export function classifyError(err: unknown, served: ServedCertificate | undefined, secrets: readonly string[] = []): ProbeFailure {
  const extra = served ? { servedSerialNumber: served.servedSerialNumber } : {};
  const msg = redact(errorMessage(err), secrets);
  if (err instanceof DatabaseError) {
    const sqlState = err.code;
    const words = `${err.severity ?? "ERROR"}: ${msg}`;
    const full = err.detail ? `${words} (DETAIL: ${redact(err.detail, secrets)})` : words;
    const withState = { ...extra, ...(sqlState ? { sqlState } : {}) };
    switch (sqlState) {
      case "28000":
        if (/^role ".*" does not exist$/.test(err.message)) return probeFailure("RoleMissing", full, withState);
        if (/pg_hba\.conf/.test(err.message)) return probeFailure("HbaRejected", full, withState);
        return probeFailure("AuthenticationRejected", full, withState);
      case "28P01":
        return probeFailure("AuthenticationRejected", full, withState);
      case "3D000":
        return probeFailure("DatabaseMissing", full, withState);
      case "42501":
        return probeFailure("PermissionDenied", full, withState);
      case "53300":
        return probeFailure("TooManyConnections", full, withState);
      case "57P01":
      case "57P02":
      case "57P03":
        return probeFailure("ServerNotReady", full, withState);
      default:
        return probeFailure("ServerError", full, withState);
    }
  }
  const code = (err as { code?: unknown } | null)?.code;
  // OpenSSL errors carry their reason alone ("ssl/tls alert certificate revoked") besides a noisy message.
  const sslReason = (err as { reason?: unknown } | null)?.reason;
  const tlsWords = typeof sslReason === "string" && sslReason !== "" ? sslReason : msg.trim();
  if (typeof code === "string") {
    if (UNREACHABLE_CODES.has(code)) return probeFailure("Unreachable", msg, extra);
    if (code === "ETIMEDOUT") return probeFailure("Timeout", msg, extra);
    if (code === "ERR_TLS_CERT_ALTNAME_INVALID") return probeFailure("HostnameMismatch", msg, extra);
    if (code === "CERT_HAS_EXPIRED") return probeFailure("ServerCertificateExpired", `the server certificate has expired (${msg})`, extra);
    if (UNTRUSTED_CODES.has(code)) {
      const message = `the server certificate is not trusted by the trust bundle: ${msg} (${code})`;
      return probeFailure("ServerCertificateUntrusted", message, extra);
    }
    // Alerts the server sends about OUR certificate (unknown CA, revoked, expired, missing…).
    if (CLIENT_CERTIFICATE_ALERT.test(code)) {
      return probeFailure("ClientCertificateRejected", `the server rejected the client certificate: ${tlsWords} (${code})`, extra);
    }
    if (code.startsWith("ERR_SSL_") || code === "EPROTO" || code.startsWith("ERR_TLS_")) {
      return probeFailure("TLSHandshakeFailed", `${tlsWords} (${code})`, extra);
    }
    if (code === "ECONNRESET" || code === "EPIPE") return probeFailure("ConnectionLost", msg, extra);
  }
  if (msg === "The server does not support SSL connections") {
    return probeFailure(
      "ServerNotServingTLS",
      "the server answered the SSL request with N: it does not serve TLS (ssl = off, or the configuration is not loaded yet)",
      extra,
    );
  }
  if (msg === "There was an error establishing an SSL connection") return probeFailure("TLSHandshakeFailed", msg, extra);
  if (/client password must be a string|password authentication|SASL/i.test(msg)) {
    return probeFailure("PasswordRequired", `the server asked for a password: ${msg}`, extra);
  }
  if (/Connection terminated/i.test(msg)) return probeFailure("ConnectionLost", msg, extra);
  return probeFailure("ServerError", msg, extra);
}
