/**
 * Validation beyond (and in defence of) the CRD schema.
 *
 * The CRDs already reject most bad input at admission. These checks repeat the ones whose failure would be
 * dangerous if an old CRD let them through (pg_hba.conf injection, unsafe paths, bad durations) and add what a
 * schema cannot know: that a PEM certificate really parses, that the server Secret does not overwrite the CA
 * Secret, that some pg_hba.conf rule admits the operator's own login, that a connection's namespace is allowed.
 * Every function is pure and returns a list of errors; an empty list means valid.
 */
import { X509Certificate } from "node:crypto";
import { BlockList, isIPv4, isIPv6 } from "node:net";
import { isCRDDuration, parseDuration } from "./duration";
import {
  CA_MODES,
  CA_ROTATION_POLICIES,
  DATABASE_WORKLOAD_KINDS,
  ECDSA_KEY_SIZES,
  HBA_CLIENT_CERTIFICATE_MODES,
  KEY_ALGORITHMS,
  MAX_NAME_LENGTH,
  RELOAD_STRATEGIES,
  ROTATE_ANNOTATION,
  REVOCATION_REASONS,
  RSA_KEY_SIZES,
  SSL_MODES,
  STATUS_LIMITS,
  TLS_VERSIONS,
  WORKLOAD_KINDS,
  type CertificatePolicySpec,
  type HbaRule,
  type ImagingConnection,
  type PrivateKeySpec,
  type SecureDatabase,
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

// ---------------------------------------------------------------------------------------------------------------
// Building blocks (exported for the renderers and reconcilers that want the same judgement)

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const CONFIGMAP_KEY = /^[-._a-zA-Z0-9]+$/;
const SAFE_PATH = /^(\/[A-Za-z0-9._-]+)+$/;
const SERIAL_NUMBER = /^([0-9A-Fa-f]{1,40}|[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){0,19})$/;
const SHA256_FINGERPRINT = /^([0-9A-Fa-f]{64}|[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){31})$/;
/** Characters that would end a pg_hba.conf token or start a comment or quoted/escaped text. */
const HBA_UNSAFE = /[\p{Cc}\s\p{Z}#"',\\]/u;

/** An RFC 1123 subdomain (what Kubernetes calls a DNS subdomain name): lowercase, at most 253 chars, labels ≤ 63. */
export function isDNSSubdomain(s: string): boolean {
  return s.length > 0 && s.length <= 253 && DNS1123_SUBDOMAIN.test(s) && s.split(".").every((l) => l.length <= 63);
}

/** An RFC 1123 label (namespace or container name): lowercase alphanumerics and '-', at most 63 chars. */
export function isDNSLabel(s: string): boolean {
  return s.length > 0 && s.length <= 63 && DNS1123_LABEL.test(s);
}

const IPV4_MAPPED = new BlockList();
IPV4_MAPPED.addSubnet("::ffff:0:0", 96, "ipv6");

/**
 * An IPv4 or IPv6 address literal (no zone, no brackets, no prefix), judged like the API server's CEL isIP():
 * IPv4 parts with leading zeros and IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are refused.
 */
export function isIPAddress(s: string): boolean {
  if (s.includes("%")) return false;
  if (isIPv4(s)) return true;
  return isIPv6(s) && !IPV4_MAPPED.check(s, "ipv6");
}

/** An IP prefix "address/length" (host bits may be set, as PostgreSQL allows). */
export function isCIDR(s: string): boolean {
  const slash = s.indexOf("/");
  if (slash < 0) return false;
  const addr = s.slice(0, slash);
  const len = s.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(len) || !isIPAddress(addr)) return false;
  return Number(len) <= (isIPv4(addr) ? 32 : 128);
}

/**
 * Why a string cannot be a single pg_hba.conf database or user token, or undefined if it can.
 * Keywords (all, sameuser, samerole, replication) and "+group" are fine; "@file" inclusion and "/regex" are not.
 */
export function hbaTokenProblem(token: string): string | undefined {
  if (token.length === 0) return "must not be empty";
  if (HBA_UNSAFE.test(token)) return "must be a single pg_hba.conf token: whitespace, '#', quotes, commas, backslashes and control characters are not allowed";
  if (token.startsWith("@") || token.startsWith("/")) return "must not start with '@' (file inclusion) or '/' (regular expression)";
  return undefined;
}

/** Why a string cannot be a PostgreSQL role name the operator writes into certificates and hba lines, or undefined. */
export function roleNameProblem(name: string): string | undefined {
  const token = hbaTokenProblem(name);
  if (token) return token;
  if (name.startsWith("+")) return "must not start with '+' (pg_hba.conf group syntax)";
  if (Buffer.byteLength(name, "utf8") > 63) return "must be at most 63 bytes (PostgreSQL NAMEDATALEN)";
  return undefined;
}

/** Why a string cannot be the database name of a connection (also used in JDBC URLs and the CAST .ini), or undefined. */
export function databaseNameProblem(name: string): string | undefined {
  const token = hbaTokenProblem(name);
  if (token) return token;
  if (/[/?&;=]/.test(name)) return "must not contain '/', '?', '&', ';' or '=' (it goes into JDBC URLs and the CAST .ini)";
  if (Buffer.byteLength(name, "utf8") > 63) return "must be at most 63 bytes (PostgreSQL NAMEDATALEN)";
  return undefined;
}

/** Why a string cannot be an absolute directory to mount into a container or name in postgresql.conf, or undefined. */
export function absolutePathProblem(path: string): string | undefined {
  if (!SAFE_PATH.test(path)) return 'must be an absolute path of letters, digits, ".", "_", "-" and "/" (no trailing "/")';
  if (path.split("/").some((seg) => seg === "." || seg === "..")) return 'must not contain "." or ".." path segments';
  if (path.length > 512) return "must be at most 512 characters";
  return undefined;
}

/** Splits "host:port" / "[v6]:port"; undefined if malformed or the port is out of range. */
export function parseEndpoint(endpoint: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(endpoint);
  if (!m) return undefined;
  const host = m[1] ?? m[2] ?? "";
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  if (m[1] !== undefined ? !isIPv6(host) : !(isDNSSubdomain(host) || isIPv4(host))) return undefined;
  return { host, port };
}

/** Number of PEM certificate blocks in a string, and whether each parses as X.509. */
export function pemCertificateProblem(pem: string): string | undefined {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (!pem.trimStart().startsWith("-----BEGIN CERTIFICATE-----") || blocks.length === 0) {
    return "must be a PEM certificate starting with -----BEGIN CERTIFICATE-----";
  }
  if (blocks.length > 1) return `must hold exactly one certificate, found ${blocks.length}: add one allowlist entry per certificate`;
  try {
    new X509Certificate(blocks[0] ?? "");
  } catch (err) {
    return `does not parse as an X.509 certificate (${err instanceof Error ? err.message : String(err)})`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Collector

class Errors {
  readonly list: ValidationError[] = [];
  add(field: string, reason: ValidationReason, message: string): void {
    this.list.push({ field, reason, message });
  }
  oneOf(field: string, value: string | undefined, allowed: readonly string[]): void {
    if (value !== undefined && !allowed.includes(value)) {
      this.add(field, "NotSupported", `unsupported value ${JSON.stringify(value)}: supported values are ${allowed.map((a) => JSON.stringify(a)).join(", ")}`);
    }
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
function validateRotationToken(errors: Errors, annotations: Record<string, string> | undefined): void {
  const token = annotations?.[ROTATE_ANNOTATION];
  if (token !== undefined && token.length > STATUS_LIMITS.rotationToken) {
    errors.add(`metadata.annotations[${ROTATE_ANNOTATION}]`, "Invalid", `the ${ROTATE_ANNOTATION} token must be at most ${STATUS_LIMITS.rotationToken} characters (got ${token.length}): a date or a short ticket id will do`);
  }
}

const MAX_CERTIFICATE_DURATION_MS = 876_000 * 3_600_000;

/** Parses a CRD-form duration; reports and returns undefined when it is not one. */
function durationMs(errors: Errors, field: string, value: string | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (!isCRDDuration(value)) {
    errors.add(field, "Invalid", `${what} must be a Go duration in h, m, s and ms (in that order), e.g. "2160h" or "1h30m"; days are not supported (got ${JSON.stringify(value)})`);
    return undefined;
  }
  return parseDuration(value);
}

function validatePrivateKey(errors: Errors, field: string, key: PrivateKeySpec | undefined): void {
  if (!key) return;
  errors.oneOf(`${field}.algorithm`, key.algorithm, KEY_ALGORITHMS);
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
function validatePolicy(errors: Errors, field: string, label: string, policy: CertificatePolicySpec | undefined, defaultDuration: string): number | undefined {
  const p = policy ?? {};
  const duration = durationMs(errors, `${field}.duration`, p.duration ?? defaultDuration, `${label}.duration`);
  if (duration !== undefined && duration < 60_000) errors.add(`${field}.duration`, "Invalid", `${label}.duration must be at least 1m`);
  // The CRD pattern allows up to 999999h; the PKI refuses anything over 100 years as a unit mistake (checkDuration).
  if (duration !== undefined && duration > MAX_CERTIFICATE_DURATION_MS) errors.add(`${field}.duration`, "Invalid", `${label}.duration must be at most 876000h (100 years)`);
  const renewBefore = durationMs(errors, `${field}.renewBefore`, p.renewBefore, `${label}.renewBefore`);
  if (renewBefore !== undefined && renewBefore < 1000) errors.add(`${field}.renewBefore`, "Invalid", `${label}.renewBefore must be at least 1s`);
  if (p.renewBefore !== undefined && p.renewBeforePercentage !== undefined) {
    errors.add(`${field}.renewBeforePercentage`, "Forbidden", `${label}.renewBefore and ${label}.renewBeforePercentage are mutually exclusive; set at most one`);
  }
  if (renewBefore !== undefined && duration !== undefined && renewBefore >= duration) {
    errors.add(`${field}.renewBefore`, "Invalid", `${label}.renewBefore must be shorter than ${label}.duration`);
  }
  const pct = p.renewBeforePercentage;
  if (pct !== undefined) {
    if (!Number.isInteger(pct) || pct < 1 || pct > 99) {
      errors.add(`${field}.renewBeforePercentage`, "Invalid", `${label}.renewBeforePercentage must be an integer from 1 to 99`);
    } else if (duration !== undefined && (duration * pct) / 100 < 1000) {
      errors.add(`${field}.renewBeforePercentage`, "Invalid", `${label}.renewBeforePercentage gives a renewal window under 1s for a duration of ${p.duration ?? defaultDuration}`);
    }
  }
  validatePrivateKey(errors, `${field}.privateKey`, p.privateKey);
  return duration;
}

function validateNameLength(errors: Errors, kind: keyof typeof MAX_NAME_LENGTH, name: string): void {
  const max = MAX_NAME_LENGTH[kind];
  if (name.length > max) {
    errors.add("metadata.name", "TooLong", `metadata.name must be at most ${max} characters: everything the operator creates is labelled mtls.imaging.dev/owner=${kind}.<name> and label values are limited to 63 characters`);
  }
}

/** Whether a pg_hba.conf rule certainly (true), possibly (undefined: "+group", samerole) or never (false) matches. */
function ruleMatches(rule: HbaRule, user: string, database: string): boolean | undefined {
  const users = rule.users ?? ["all"];
  const databases = rule.databases ?? ["all"];
  let userMatch: boolean | undefined = users.includes("all") || users.includes(user);
  if (!userMatch && users.some((u) => u.startsWith("+"))) userMatch = undefined;
  let dbMatch: boolean | undefined = databases.includes("all") || databases.includes(database) || (databases.includes("sameuser") && database === user);
  if (!dbMatch && databases.includes("samerole")) dbMatch = undefined;
  if (userMatch === false || dbMatch === false) return false;
  return userMatch === true && dbMatch === true ? true : undefined;
}

/**
 * How the configured pg_hba.conf rules treat a certificate login of `user` to `database` (addresses aside, since
 * the client's address is unknown here): "certificate" when the first matching rule is verify-full, "password" when
 * it is verify-ca (a password is required too), "none" when no rule matches, "unknown" when group membership decides.
 */
export function hbaAdmits(rules: readonly HbaRule[] | undefined, user: string, database: string): "certificate" | "password" | "none" | "unknown" {
  for (const rule of rules ?? [{}]) {
    const m = ruleMatches(rule, user, database);
    if (m === undefined) return "unknown";
    if (m) return (rule.clientCertificate ?? "verify-full") === "verify-full" ? "certificate" : "password";
  }
  return "none";
}

// ---------------------------------------------------------------------------------------------------------------
// SecureDatabase

export function validateSecureDatabase(sdb: SecureDatabase): ValidationError[] {
  const e = new Errors();
  const spec = sdb.spec;
  validateNameLength(e, "SecureDatabase", sdb.metadata.name);
  validateRotationToken(e, sdb.metadata.annotations);

  if (!spec.host) e.add("spec.host", "Required", "host is required");
  else if (!isDNSSubdomain(spec.host) && !isIPAddress(spec.host)) {
    e.add("spec.host", "Invalid", "host must be a lowercase DNS name (RFC 1123, e.g. imaging-db.example.com) or an IP address without brackets or port: clients verify it against the server certificate (sslmode=verify-full)");
  }
  if (spec.port !== undefined && (!Number.isInteger(spec.port) || spec.port < 1 || spec.port > 65535)) {
    e.add("spec.port", "Invalid", "port must be an integer from 1 to 65535");
  }
  e.maxItems("spec.additionalDNSNames", spec.additionalDNSNames, 32);
  e.unique("spec.additionalDNSNames", spec.additionalDNSNames);
  (spec.additionalDNSNames ?? []).forEach((n, i) => {
    if (!isDNSSubdomain(n.startsWith("*.") ? n.slice(2) : n)) {
      e.add(`spec.additionalDNSNames[${i}]`, "Invalid", 'each additional DNS name must be a lowercase DNS name (RFC 1123), optionally starting with "*."');
    }
  });
  e.maxItems("spec.additionalIPAddresses", spec.additionalIPAddresses, 32);
  e.unique("spec.additionalIPAddresses", spec.additionalIPAddresses);
  (spec.additionalIPAddresses ?? []).forEach((ip, i) => {
    if (!isIPAddress(ip)) e.add(`spec.additionalIPAddresses[${i}]`, "Invalid", "each additional IP address must be an IPv4 or IPv6 address (no CIDR, no brackets)");
  });

  // CA
  const ca = spec.ca ?? {};
  const mode = ca.mode ?? "Generated";
  e.oneOf("spec.ca.mode", ca.mode, CA_MODES);
  if (mode === "Provided" && !ca.secretName) {
    e.add("spec.ca.secretName", "Required", "ca.secretName is required when ca.mode is Provided (a Secret with tls.crt and tls.key of your CA)");
  }
  e.name("spec.ca.secretName", ca.secretName, "subdomain");
  if (ca.commonName !== undefined) {
    if (ca.commonName.length === 0 || ca.commonName.length > 64) e.add("spec.ca.commonName", "Invalid", "ca.commonName must have 1 to 64 characters");
    if (/\p{Cc}/u.test(ca.commonName)) e.add("spec.ca.commonName", "Invalid", "ca.commonName must not contain control characters");
  }
  const caDuration = validatePolicy(e, "spec.ca", "ca", ca, "87600h");
  durationMs(e, "spec.ca.propagationDelay", ca.propagationDelay, "ca.propagationDelay");
  e.oneOf("spec.ca.rotationPolicy", ca.rotationPolicy, CA_ROTATION_POLICIES);

  // Server certificate
  const server = spec.serverCertificate ?? {};
  e.name("spec.serverCertificate.secretName", server.secretName, "subdomain");
  const serverDuration = validatePolicy(e, "spec.serverCertificate", "serverCertificate", server, "2160h");
  if (mode === "Generated" && caDuration !== undefined && serverDuration !== undefined && serverDuration > caDuration) {
    e.add("spec.serverCertificate.duration", "Invalid", "serverCertificate.duration must not exceed ca.duration (a certificate cannot outlive the CA that signs it)");
  }
  const caSecret = ca.secretName ?? `${sdb.metadata.name}-ca`;
  const serverSecret = server.secretName ?? `${sdb.metadata.name}-server-tls`;
  if (caSecret === serverSecret) {
    e.add("spec.serverCertificate.secretName", "Invalid", `serverCertificate.secretName and ca.secretName must name different Secrets (both are ${JSON.stringify(caSecret)}): the server certificate would overwrite the CA`);
  }

  // PostgreSQL configuration
  const pg = spec.postgres;
  if (!pg) e.add("spec.postgres", "Required", "postgres is required");
  else {
    if (!pg.configMapName) e.add("spec.postgres.configMapName", "Required", "postgres.configMapName is required");
    e.name("spec.postgres.configMapName", pg.configMapName || undefined, "subdomain");
    const confKey = pg.postgresqlConfKey ?? "postgresql.conf";
    const hbaKey = pg.hbaConfKey ?? "pg_hba.conf";
    for (const [field, key] of [["spec.postgres.postgresqlConfKey", confKey], ["spec.postgres.hbaConfKey", hbaKey]] as const) {
      if (!CONFIGMAP_KEY.test(key) || key.length > 253) e.add(field, "Invalid", `${JSON.stringify(key)} must be a ConfigMap key (letters, digits, '-', '_', '.')`);
    }
    if (confKey === hbaKey) e.add("spec.postgres.hbaConfKey", "Invalid", "postgres.postgresqlConfKey and postgres.hbaConfKey must name different keys");
    if (pg.certificateDirectory !== undefined) {
      const problem = absolutePathProblem(pg.certificateDirectory);
      if (problem) e.add("spec.postgres.certificateDirectory", "Invalid", `postgres.certificateDirectory ${problem}`);
    }
    e.oneOf("spec.postgres.minTLSVersion", pg.minTLSVersion, TLS_VERSIONS);
    const rules = pg.hba?.rules;
    if (rules !== undefined && rules.length === 0) e.add("spec.postgres.hba.rules", "Required", "postgres.hba.rules must have at least one rule");
    e.maxItems("spec.postgres.hba.rules", rules, 32);
    (rules ?? []).forEach((rule, r) => {
      const base = `spec.postgres.hba.rules[${r}]`;
      for (const [key, what] of [["databases", "database names"], ["users", "user names"]] as const) {
        const list = rule[key];
        if (list !== undefined && list.length === 0) e.add(`${base}.${key}`, "Required", `${key} must not be empty (omit it for [all])`);
        e.maxItems(`${base}.${key}`, list, 32);
        e.unique(`${base}.${key}`, list);
        (list ?? []).forEach((token, i) => {
          const problem = hbaTokenProblem(token);
          if (problem) e.add(`${base}.${key}[${i}]`, "Invalid", `${what} ${problem}`);
          else if (token.length > (key === "users" ? 64 : 63)) e.add(`${base}.${key}[${i}]`, "TooLong", `${what} must be at most 63 characters`);
        });
      }
      if (rule.addresses !== undefined && rule.addresses.length === 0) e.add(`${base}.addresses`, "Required", "addresses must not be empty (omit it for any address)");
      e.maxItems(`${base}.addresses`, rule.addresses, 32);
      e.unique(`${base}.addresses`, rule.addresses);
      (rule.addresses ?? []).forEach((a, i) => {
        if (!isCIDR(a) && !isIPAddress(a)) {
          e.add(`${base}.addresses[${i}]`, "Invalid", "addresses must be IP addresses or CIDR ranges (e.g. 10.0.0.0/8, ::/0); host names and keywords are not allowed");
        }
      });
      e.oneOf(`${base}.clientCertificate`, rule.clientCertificate, HBA_CLIENT_CERTIFICATE_MODES);
    });
  }

  // Workload, reload, verification
  if (spec.workloadRef) {
    e.oneOf("spec.workloadRef.kind", spec.workloadRef.kind, DATABASE_WORKLOAD_KINDS);
    if (!spec.workloadRef.name) e.add("spec.workloadRef.name", "Required", "workloadRef.name is required");
    e.name("spec.workloadRef.name", spec.workloadRef.name || undefined, "subdomain");
    e.name("spec.workloadRef.container", spec.workloadRef.container, "label");
  }
  const reload = spec.reload ?? {};
  e.oneOf("spec.reload.strategy", reload.strategy, RELOAD_STRATEGIES);
  const strategy = reload.strategy ?? "SQL";
  if (strategy === "RolloutRestart" && !spec.workloadRef) {
    e.add("spec.reload.strategy", "Required", "reload.strategy RolloutRestart requires workloadRef (the StatefulSet or Deployment of the database to restart)");
  }
  const adminUser = reload.adminUser ?? "postgres";
  const adminProblem = roleNameProblem(adminUser);
  if (adminProblem) e.add("spec.reload.adminUser", "Invalid", `reload.adminUser ${adminProblem}`);
  const adminDatabase = reload.database ?? "postgres";
  const dbProblem = hbaTokenProblem(adminDatabase);
  if (dbProblem) e.add("spec.reload.database", "Invalid", `reload.database ${dbProblem}`);

  const verification = spec.verification ?? {};
  const interval = durationMs(e, "spec.verification.interval", verification.interval, "verification.interval");
  if (interval !== undefined && (interval < 10_000 || interval > 86_400_000)) {
    e.add("spec.verification.interval", "Invalid", "verification.interval must be between 10s and 24h");
  }
  if (verification.endpoint !== undefined && !parseEndpoint(verification.endpoint)) {
    e.add("spec.verification.endpoint", "Invalid", "verification.endpoint must be host:port with a port from 1 to 65535 (IPv6 in brackets, e.g. [fd00::7]:5432)");
  }

  // The operator logs in with its own certificate to reload (SQL) and to verify: some rule must let it.
  const needsLogin = strategy === "SQL" || (verification.enabled ?? true);
  if (needsLogin && pg && !adminProblem && !dbProblem) {
    const admitted = hbaAdmits(pg.hba?.rules, adminUser, adminDatabase);
    if (admitted === "none") {
      e.add("spec.postgres.hba.rules", "Invalid", `no pg_hba.conf rule admits reload.adminUser ${JSON.stringify(adminUser)} on database ${JSON.stringify(adminDatabase)}: the operator logs in as that role to reload and verify; add it to a rule, or set reload.strategy and verification.enabled accordingly`);
    } else if (admitted === "password") {
      e.add("spec.postgres.hba.rules", "Invalid", `the first pg_hba.conf rule matching reload.adminUser ${JSON.stringify(adminUser)} uses clientCertificate verify-ca, which also demands a password: the operator logs in with its certificate only; put a verify-full rule for it first`);
    }
  }

  // Namespaces and trust
  e.maxItems("spec.allowedNamespaces", spec.allowedNamespaces, 64);
  e.unique("spec.allowedNamespaces", spec.allowedNamespaces);
  (spec.allowedNamespaces ?? []).forEach((ns, i) => {
    if (ns === "*") e.add(`spec.allowedNamespaces[${i}]`, "Forbidden", 'allowedNamespaces does not accept "*": list every namespace explicitly');
    else if (!isDNSLabel(ns)) e.add(`spec.allowedNamespaces[${i}]`, "Invalid", "each allowed namespace must be a namespace name (RFC 1123 label)");
  });

  const allowlist = spec.trust?.allowlist ?? [];
  e.maxItems("spec.trust.allowlist", allowlist, 32);
  e.unique("spec.trust.allowlist", allowlist.map((a) => a.name));
  allowlist.forEach((entry, i) => {
    e.name(`spec.trust.allowlist[${i}].name`, entry.name, "label");
    if (entry.certificate.length > 16384) e.add(`spec.trust.allowlist[${i}].certificate`, "TooLong", "certificate must be at most 16384 characters");
    const problem = pemCertificateProblem(entry.certificate);
    if (problem) e.add(`spec.trust.allowlist[${i}].certificate`, "Invalid", `trust.allowlist[].certificate ${problem}`);
  });

  const revocations = spec.trust?.revocations ?? [];
  e.maxItems("spec.trust.revocations", revocations, 1024);
  revocations.forEach((r, i) => {
    const base = `spec.trust.revocations[${i}]`;
    const set = [r.serialNumber, r.sha256Fingerprint, r.connectionName].filter((v) => v !== undefined).length;
    if (set !== 1) e.add(base, "Invalid", "each revocation must set exactly one of serialNumber, sha256Fingerprint or connectionName");
    if (r.connectionNamespace !== undefined && r.connectionName === undefined) {
      e.add(`${base}.connectionNamespace`, "Forbidden", "revocation connectionNamespace is only valid together with connectionName");
    }
    if (r.serialNumber !== undefined && !SERIAL_NUMBER.test(r.serialNumber)) {
      e.add(`${base}.serialNumber`, "Invalid", 'serialNumber must be hex, at most 20 bytes, e.g. "3f0a..." or "3F:0A:..."');
    }
    if (r.sha256Fingerprint !== undefined && !SHA256_FINGERPRINT.test(r.sha256Fingerprint)) {
      e.add(`${base}.sha256Fingerprint`, "Invalid", "sha256Fingerprint must be 64 hex digits, optionally with ':' between bytes");
    }
    e.name(`${base}.connectionName`, r.connectionName, "subdomain");
    e.name(`${base}.connectionNamespace`, r.connectionNamespace, "label");
    e.oneOf(`${base}.reason`, r.reason, REVOCATION_REASONS);
  });
  return e.list;
}

// ---------------------------------------------------------------------------------------------------------------
// ImagingConnection

export function validateImagingConnection(imc: ImagingConnection): ValidationError[] {
  const e = new Errors();
  const spec = imc.spec;
  validateNameLength(e, "ImagingConnection", imc.metadata.name);
  validateRotationToken(e, imc.metadata.annotations);

  if (!spec.databaseRef?.name) e.add("spec.databaseRef.name", "Required", "databaseRef.name is required");
  e.name("spec.databaseRef.name", spec.databaseRef?.name || undefined, "subdomain");
  e.name("spec.databaseRef.namespace", spec.databaseRef?.namespace, "label");

  if (!spec.user) e.add("spec.user", "Required", "user is required (the PostgreSQL role, which becomes the certificate CN)");
  else {
    const problem = roleNameProblem(spec.user);
    if (problem) e.add("spec.user", "Invalid", `user ${problem}`);
  }
  if (spec.database !== undefined) {
    const problem = databaseNameProblem(spec.database);
    if (problem) e.add("spec.database", "Invalid", `database ${problem}`);
  }
  e.oneOf("spec.sslMode", spec.sslMode, SSL_MODES);
  e.name("spec.secretName", spec.secretName, "subdomain");
  validatePolicy(e, "spec.certificate", "certificate", spec.certificate, "2160h");

  const workloads = spec.workloads ?? [];
  e.maxItems("spec.workloads", workloads, 32);
  e.unique("spec.workloads", workloads.map((w) => `${w.kind}/${w.name}`));
  workloads.forEach((w, i) => {
    const base = `spec.workloads[${i}]`;
    e.oneOf(`${base}.kind`, w.kind, WORKLOAD_KINDS);
    if (!w.name) e.add(`${base}.name`, "Required", "workloads[].name is required");
    e.name(`${base}.name`, w.name || undefined, "subdomain");
    if (w.containers !== undefined && w.containers.length === 0) e.add(`${base}.containers`, "Required", "containers must not be empty (omit it for every container)");
    e.maxItems(`${base}.containers`, w.containers, 16);
    e.unique(`${base}.containers`, w.containers);
    (w.containers ?? []).forEach((c, j) => e.name(`${base}.containers[${j}]`, c, "label"));
    if (w.mountPath !== undefined) {
      const problem = absolutePathProblem(w.mountPath);
      if (problem) e.add(`${base}.mountPath`, "Invalid", `workloads[].mountPath ${problem}`);
    }
  });
  return e.list;
}

/**
 * Checks an ImagingConnection against the SecureDatabase it references: the namespace must be allowed, the
 * connection must not be revoked, and the database's pg_hba.conf rules must be able to admit its user.
 */
export function validateConnectionAgainstDatabase(imc: ImagingConnection, sdb: SecureDatabase): ValidationError[] {
  const e = new Errors();
  const imcNamespace = imc.metadata.namespace ?? "default";
  const sdbNamespace = sdb.metadata.namespace ?? "default";
  if (imcNamespace !== sdbNamespace && !(sdb.spec.allowedNamespaces ?? []).includes(imcNamespace)) {
    e.add("spec.databaseRef", "Forbidden", `SecureDatabase ${sdbNamespace}/${sdb.metadata.name} does not list namespace ${JSON.stringify(imcNamespace)} in spec.allowedNamespaces`);
  }
  const revoked = (sdb.spec.trust?.revocations ?? []).some(
    (r) => r.connectionName === imc.metadata.name && (r.connectionNamespace ?? sdbNamespace) === imcNamespace,
  );
  if (revoked) {
    e.add("metadata.name", "Forbidden", `SecureDatabase ${sdbNamespace}/${sdb.metadata.name} revokes this connection (spec.trust.revocations[].connectionName): no certificate is issued until that entry is removed`);
  }
  const database = imc.spec.database ?? "postgres";
  if (imc.spec.user && hbaAdmits(sdb.spec.postgres?.hba?.rules, imc.spec.user, database) === "none") {
    e.add("spec.user", "Invalid", `no pg_hba.conf rule of SecureDatabase ${sdbNamespace}/${sdb.metadata.name} admits user ${JSON.stringify(imc.spec.user)} on database ${JSON.stringify(database)}: add it to spec.postgres.hba.rules there`);
  }
  return e.list;
}
