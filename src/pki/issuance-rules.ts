/**
 * The rules every certificate we issue follows: random serials, back-dated notBefore, whole-second validity, and
 * the checks on common names, durations and dates that come before any signing.
 */
import { randomBytes } from "node:crypto";
import { PkiError } from "./errors";

/** notBefore is set this far in the past so a node whose clock runs a little behind accepts new certificates. */
export const CLOCK_SKEW_MS = 5 * 60 * 1000;

/**
 * A random 128-bit positive serial as 32 lower-case hex digits: the first bit is clear (DER INTEGERs are
 * signed, so the value stays positive without a sign byte) and the first byte is non-zero (so DER keeps all
 * 16 bytes and every serial has the same length). 127 bits of entropy minus the excluded zero byte.
 */
export function randomSerialNumber(): string {
  for (;;) {
    const bytes = randomBytes(16);
    bytes[0] = (bytes[0] ?? 0) & 0x7f;
    if (bytes[0] !== 0) return bytes.toString("hex");
  }
}

/** ub-common-name (RFC 5280): at most 64 characters. */
export const MAX_COMMON_NAME_LENGTH = 64;

export function checkCommonName(commonName: string, what: string): void {
  if (commonName.length === 0 || commonName.trim() !== commonName) {
    throw new PkiError("InvalidCommonName", `${what} must be non-empty and must not start or end with spaces`);
  }
  if ([...commonName].length > MAX_COMMON_NAME_LENGTH) {
    throw new PkiError("InvalidCommonName", `${what} is longer than ${MAX_COMMON_NAME_LENGTH} characters (X.509 limit)`);
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(commonName) || !commonName.isWellFormed()) {
    throw new PkiError("InvalidCommonName", `${what} contains control characters or invalid Unicode`);
  }
}

export function checkDuration(duration: number, what: string): void {
  if (!Number.isFinite(duration) || duration <= 0) {
    throw new PkiError("InvalidDuration", `${what} must be a positive number of milliseconds, got ${String(duration)}`);
  }
  // Anything over 100 years is a unit mistake (seconds given as ms ×1000 or the like).
  if (duration > 100 * 365 * 24 * 3600 * 1000) {
    throw new PkiError("InvalidDuration", `${what} of ${String(duration)} ms is over 100 years: check the unit (milliseconds)`);
  }
}

export function checkDate(date: Date, what: string): void {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) {
    throw new PkiError("InvalidArgument", `${what} is not a valid date`);
  }
}

/** X.509 validity has one-second resolution; truncate so what we return is exactly what is encoded. */
export function toSecond(ms: number): Date {
  return new Date(Math.floor(ms / 1000) * 1000);
}
