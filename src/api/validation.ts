/**
 * The vocabulary of validation (errors named like Kubernetes' field.ErrorType), the collector the validators
 * write into, and the checks both kinds share: certificate policies, name lengths, the rotate token, and how the
 * pg_hba.conf rules treat a certificate login.
 */
import type { DecodeError } from "./decoder";
import { isCRDDuration, parseDuration } from "./duration";
import { isDNSLabel, isDNSSubdomain } from "./field-checks";
import {
  ECDSA_KEY_SIZES,
  MAX_NAME_LENGTH,
  ROTATE_ANNOTATION,
  RSA_KEY_SIZES,
  STATUS_LIMITS,
  type CertificatePolicySpec,
  type HbaRule,
  type PrivateKeySpec,
} from "./types";

/** The kinds of problems, named like Kubernetes' field.ErrorType. */
export type ValidationReason = "Required" | "Invalid" | "NotSupported" | "Duplicate" | "TooLong" | "TooMany" | "Forbidden";

export interface ValidationError {
  /** JSON path, e.g. "spec.postgres.hba.rules[0].users[1]". */
  field: string;
  reason: ValidationReason;
  /** What is wrong and what to do, for a condition message. */
  message: string;
}

/** One line per error, for a condition message or an event: "spec.host: host must be ...; spec.port: ...". */
export function formatValidationErrors(errors: readonly ValidationError[]): string {
  return errors.map((e) => `${e.field}: ${e.message}`).join("; ");
}

/** A shape problem found while decoding, as a validation error. */
export function decodeErrorToValidationError(err: DecodeError): ValidationError {
  return { field: err.path || "<root>", reason: err.reason, message: err.problem };
}

/** Collects the errors of one object. */
export class ValidationErrors {
  readonly list: ValidationError[] = [];
  add(field: string, reason: ValidationReason, message: string): void {
    this.list.push({ field, reason, message });
  }
  maxItems(field: string, list: readonly unknown[] | undefined, max: number): void {
    if (list && list.length > max) this.add(field, "TooMany", `must have at most ${max} items, has ${list.length}`);
  }
  unique(field: string, list: readonly string[] | undefined): void {
    const seen = new Set<string>();
    (list ?? []).forEach((v, i) => {
      if (seen.has(v)) this.add(`${field}[${i}]`, "Duplicate", `duplicate value ${JSON.stringify(v)}`);
      seen.add(v);
    });
  }
  name(field: string, value: string | undefined, what: "subdomain" | "label"): void {
    if (value === undefined) return;
    const ok = what === "subdomain" ? isDNSSubdomain(value) : isDNSLabel(value);
    if (!ok) {
      this.add(field, "Invalid", what === "subdomain"
        ? `${JSON.stringify(value)} must be a lowercase RFC 1123 subdomain (a Kubernetes object name)`
        : `${JSON.stringify(value)} must be a lowercase RFC 1123 label (at most 63 characters)`);
    }
  }
}

/** The rotate token is echoed in status (lastRotationToken), whose schema caps it. */
/** A label key: an optional DNS-subdomain prefix and a name of up to 63 characters; values up to 63 (may be empty). */
const LABEL_NAME = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$/;
const LABEL_PREFIX = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf("/");
  const [prefix, name] = slash < 0 ? [undefined, key] : [key.slice(0, slash), key.slice(slash + 1)];
  if (prefix !== undefined && (prefix.length > 253 || !LABEL_PREFIX.test(prefix))) return "has a prefix that is not a DNS subdomain";
  if (name.length === 0 || name.length > 63 || !LABEL_NAME.test(name)) return "is not a label name (up to 63 of [A-Za-z0-9-_.], alphanumeric at both ends)";
  return undefined;
}

/** A label selector's matchLabels: at least one label, each key and value as Kubernetes accepts them. */
export function validateMatchLabels(e: ValidationErrors, field: string, matchLabels: Record<string, string>): void {
  const labels = Object.entries(matchLabels);
  if (labels.length === 0) e.add(field, "Required", `${field.split(".").slice(-2).join(".")} must name at least one label`);
  for (const [key, value] of labels) {
    const problem = labelKeyProblem(key);
    if (problem) e.add(`${field}[${key}]`, "Invalid", `label key ${JSON.stringify(key)} ${problem}`);
    if (value.length > 63 || (value !== "" && !LABEL_NAME.test(value))) {
      e.add(`${field}[${key}]`, "Invalid", `label value ${JSON.stringify(value)} is not a label value`);
    }
  }
}

export function validateRotationToken(errors: ValidationErrors, annotations: Record<string, string> | undefined): void {
  const token = annotations?.[ROTATE_ANNOTATION];
  if (token !== undefined && token.length > STATUS_LIMITS.rotationToken) {
    errors.add(
      `metadata.annotations[${ROTATE_ANNOTATION}]`,
      "Invalid",
      `the ${ROTATE_ANNOTATION} token must be at most ${STATUS_LIMITS.rotationToken} characters (got ${token.length}): ` +
        "a date or a short ticket id will do",
    );
  }
}

export function validateNameLength(errors: ValidationErrors, kind: keyof typeof MAX_NAME_LENGTH, name: string): void {
  const max = MAX_NAME_LENGTH[kind];
  if (name.length > max) {
    errors.add(
      "metadata.name",
      "TooLong",
      `metadata.name must be at most ${max} characters: everything the operator creates is labelled ` +
        `mtls.imaging.dev/owner=${kind}.<name> and label values are limited to 63 characters`,
    );
  }
}

const MAX_CERTIFICATE_DURATION_MS = 876_000 * 3_600_000;

/** Parses a CRD-form duration; reports and returns undefined when it is not one. */
export function durationMs(errors: ValidationErrors, field: string, value: string | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (!isCRDDuration(value)) {
    errors.add(
      field,
      "Invalid",
      `${what} must be a Go duration in h, m, s and ms (in that order), e.g. "2160h" or "1h30m"; ` +
        `days are not supported (got ${JSON.stringify(value)})`,
    );
    return undefined;
  }
  return parseDuration(value);
}

function validatePrivateKey(errors: ValidationErrors, field: string, key: PrivateKeySpec | undefined): void {
  if (!key) return;
  const algorithm = key.algorithm ?? "ECDSA";
  if (key.size === undefined) return;
  if (algorithm === "ECDSA" && !(ECDSA_KEY_SIZES as readonly number[]).includes(key.size)) {
    errors.add(`${field}.size`, "NotSupported", "ECDSA key size must be 256 (P-256) or 384 (P-384)");
  }
  if (algorithm === "RSA" && !(RSA_KEY_SIZES as readonly number[]).includes(key.size)) {
    errors.add(`${field}.size`, "NotSupported", "RSA key size must be 2048, 3072 or 4096");
  }
}

/** Checks duration / renewBefore / renewBeforePercentage / privateKey; returns the duration in ms when valid. */
export function validatePolicy(
  errors: ValidationErrors,
  field: string,
  label: string,
  policy: CertificatePolicySpec | undefined,
  defaultDuration: string,
): number | undefined {
  const p = policy ?? {};
  const duration = durationMs(errors, `${field}.duration`, p.duration ?? defaultDuration, `${label}.duration`);
  if (duration !== undefined && duration < 60_000) errors.add(`${field}.duration`, "Invalid", `${label}.duration must be at least 1m`);
  // The CRD pattern allows up to 999999h; the PKI refuses anything over 100 years as a unit mistake (checkDuration).
  if (duration !== undefined && duration > MAX_CERTIFICATE_DURATION_MS) {
    errors.add(`${field}.duration`, "Invalid", `${label}.duration must be at most 876000h (100 years)`);
  }
  const renewBefore = durationMs(errors, `${field}.renewBefore`, p.renewBefore, `${label}.renewBefore`);
  if (renewBefore !== undefined && renewBefore < 1000) {
    errors.add(`${field}.renewBefore`, "Invalid", `${label}.renewBefore must be at least 1s`);
  }
  if (p.renewBefore !== undefined && p.renewBeforePercentage !== undefined) {
    errors.add(
      `${field}.renewBeforePercentage`,
      "Forbidden",
      `${label}.renewBefore and ${label}.renewBeforePercentage are mutually exclusive; set at most one`,
    );
  }
  if (renewBefore !== undefined && duration !== undefined && renewBefore >= duration) {
    errors.add(`${field}.renewBefore`, "Invalid", `${label}.renewBefore must be shorter than ${label}.duration`);
  }
  const pct = p.renewBeforePercentage;
  if (pct !== undefined) {
    if (pct < 1 || pct > 99) {
      errors.add(`${field}.renewBeforePercentage`, "Invalid", `${label}.renewBeforePercentage must be an integer from 1 to 99`);
    } else if (duration !== undefined && (duration * pct) / 100 < 1000) {
      errors.add(
        `${field}.renewBeforePercentage`,
        "Invalid",
        `${label}.renewBeforePercentage gives a renewal window under 1s for a duration of ${p.duration ?? defaultDuration}`,
      );
    }
  }
  validatePrivateKey(errors, `${field}.privateKey`, p.privateKey);
  return duration;
}

/** Whether a pg_hba.conf rule certainly (true), possibly (undefined: "+group", samerole) or never (false) matches. */
function ruleMatches(rule: HbaRule, user: string, database: string): boolean | undefined {
  const users = rule.users ?? ["all"];
  const databases = rule.databases ?? ["all"];
  let userMatch: boolean | undefined = users.includes("all") || users.includes(user);
  if (!userMatch && users.some((u) => u.startsWith("+"))) userMatch = undefined;
  let dbMatch: boolean | undefined =
    databases.includes("all") || databases.includes(database) || (databases.includes("sameuser") && database === user);
  if (!dbMatch && databases.includes("samerole")) dbMatch = undefined;
  if (userMatch === false || dbMatch === false) return false;
  return userMatch === true && dbMatch === true ? true : undefined;
}

/**
 * How the configured pg_hba.conf rules treat a certificate login of `user` to `database` (addresses aside, since
 * the client's address is unknown here): "certificate" when the first matching rule is verify-full, "password" when
 * it is verify-ca (a password is required too), "passwordOnly" when it is a password rule (clientCertificate none:
 * the certificate does not authenticate), "none" when no rule matches, "unknown" when group membership decides.
 */
export function hbaAdmits(
  rules: readonly HbaRule[] | undefined,
  user: string,
  database: string,
): "certificate" | "password" | "passwordOnly" | "none" | "unknown" {
  for (const rule of rules ?? [{}]) {
    const m = ruleMatches(rule, user, database);
    if (m === undefined) return "unknown";
    if (!m) continue;
    const mode = rule.clientCertificate ?? "verify-full";
    return mode === "verify-full" ? "certificate" : mode === "verify-ca" ? "password" : "passwordOnly";
  }
  return "none";
}
