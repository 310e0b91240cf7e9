/**
 * The validation rules of a SecureDatabase beyond its shape (decoded already): see validate.ts, which applies them.
 */
import { MAX_COMMON_NAME_LENGTH } from "../pki/issuance-rules";
import { DEFAULTS } from "./default-values";
import {
  absolutePathProblem,
  databaseNameProblem,
  hbaTokenProblem,
  plainNameProblem,
  isCIDR,
  isDNSLabel,
  isDNSSubdomain,
  isIPAddress,
  parseEndpoint,
  pemCertificateProblem,
  roleNameProblem,
} from "./field-checks";
import type { HbaRule, SecureDatabase, SecureDatabaseSpec } from "./types";
import { durationMs, hbaAdmits, validateMatchLabels, validateNameLength, validatePolicy, validateRotationToken, type ValidationErrors } from "./validation";

const CONFIGMAP_KEY = /^[-._a-zA-Z0-9]+$/;
const SERIAL_NUMBER = /^([0-9A-Fa-f]{1,40}|[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){0,19})$/;
const SHA256_FINGERPRINT = /^([0-9A-Fa-f]{64}|[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){31})$/;

/** Adds every problem of a decoded SecureDatabase to `e`. */
export function secureDatabaseRules(sdb: SecureDatabase, e: ValidationErrors): void {
  identityRules(sdb, e);
  certificateRules(sdb, e);
  postgresRules(sdb.spec, e);
  operatorLoginRules(sdb.spec, e);
  trustRules(sdb.spec, e);
  accessRules(sdb.spec, e);
}

/** The name, the rotate token, and the names and addresses the server certificate carries. */
function identityRules(sdb: SecureDatabase, e: ValidationErrors): void {
  const spec = sdb.spec;
  validateNameLength(e, "SecureDatabase", sdb.metadata.name);
  validateRotationToken(e, sdb.metadata.annotations);

  if (!spec.host) e.add("spec.host", "Required", "host is required");
  else if (!isDNSSubdomain(spec.host) && !isIPAddress(spec.host)) {
    e.add(
      "spec.host",
      "Invalid",
      "host must be a lowercase DNS name (RFC 1123, e.g. imaging-db.example.com) or an IP address without brackets or port: clients " +
        "verify it against the server certificate (sslmode=verify-full)",
    );
  }
  if (spec.port !== undefined && (spec.port < 1 || spec.port > 65535)) {
    e.add("spec.port", "Invalid", "port must be an integer from 1 to 65535");
  }
  distinctItems(e, "spec.additionalDNSNames", spec.additionalDNSNames, 32, (n, at) => {
    if (!isDNSSubdomain(n.startsWith("*.") ? n.slice(2) : n)) {
      e.add(at, "Invalid", 'each additional DNS name must be a lowercase DNS name (RFC 1123), optionally starting with "*."');
    }
  });
  distinctItems(e, "spec.additionalIPAddresses", spec.additionalIPAddresses, 32, (ip, at) => {
    if (!isIPAddress(ip)) e.add(at, "Invalid", "each additional IP address must be an IPv4 or IPv6 address (no CIDR, no brackets)");
  });
  // The server certificate's CN is its first DNS name that fits, else its first IP address.
  const names = [spec.host, ...(spec.additionalDNSNames ?? [])].filter((n) => n && !isIPAddress(n));
  const addresses = [spec.host, ...(spec.additionalIPAddresses ?? [])].filter((a) => a && isIPAddress(a));
  if (spec.host && names.length > 0 && addresses.length === 0 && names.every((n) => n.length > MAX_COMMON_NAME_LENGTH)) {
    e.add(
      "spec.host",
      "Invalid",
      `host is longer than ${MAX_COMMON_NAME_LENGTH} characters, too long for the server certificate's common name: add a DNS name of at ` +
        "most 64 characters to additionalDNSNames (or an IP address to additionalIPAddresses)",
    );
  }
}

/** The CA and the server certificate: modes, Secret names, lifetimes. */
function certificateRules(sdb: SecureDatabase, e: ValidationErrors): void {
  const spec = sdb.spec;
  const ca = spec.ca ?? {};
  const mode = ca.mode ?? "Generated";
  if (mode === "Provided" && !ca.secretName) {
    e.add(
      "spec.ca.secretName",
      "Required",
      "ca.secretName is required when ca.mode is Provided (a Secret with tls.crt and tls.key of your CA)",
    );
  }
  e.name("spec.ca.secretName", ca.secretName, "subdomain");
  if (ca.commonName !== undefined) {
    if (ca.commonName.length === 0 || ca.commonName.length > 64) {
      e.add("spec.ca.commonName", "Invalid", "ca.commonName must have 1 to 64 characters");
    }
    if (/\p{Cc}/u.test(ca.commonName)) e.add("spec.ca.commonName", "Invalid", "ca.commonName must not contain control characters");
  }
  const caDuration = validatePolicy(e, "spec.ca", "ca", ca, "87600h");
  durationMs(e, "spec.ca.propagationDelay", ca.propagationDelay, "ca.propagationDelay");

  // Server certificate
  const server = spec.serverCertificate ?? {};
  e.name("spec.serverCertificate.secretName", server.secretName, "subdomain");
  const serverDuration = validatePolicy(e, "spec.serverCertificate", "serverCertificate", server, "2160h");
  if (mode === "Generated" && caDuration !== undefined && serverDuration !== undefined && serverDuration > caDuration) {
    e.add(
      "spec.serverCertificate.duration",
      "Invalid",
      "serverCertificate.duration must not exceed ca.duration (a certificate cannot outlive the CA that signs it)",
    );
  }
  const caSecret = ca.secretName ?? `${sdb.metadata.name}-ca`;
  const serverSecret = server.secretName ?? `${sdb.metadata.name}-server-tls`;
  if (caSecret === serverSecret) {
    e.add(
      "spec.serverCertificate.secretName",
      "Invalid",
      `serverCertificate.secretName and ca.secretName must name different Secrets (both are ${JSON.stringify(caSecret)}): the server ` +
        `certificate would overwrite the CA`,
    );
  }
}

/** The ConfigMap keys, the certificate directory and the pg_hba.conf rules. */
function postgresRules(spec: SecureDatabaseSpec, e: ValidationErrors): void {
  const pg = spec.postgres;
  configurationRules(spec, e);
  e.name("spec.postgres.configMapName", pg.configMapName || undefined, "subdomain");
  const confKey = pg.postgresqlConfKey ?? "postgresql.conf";
  const hbaKey = pg.hbaConfKey ?? "pg_hba.conf";
  for (const [field, key] of [["spec.postgres.postgresqlConfKey", confKey], ["spec.postgres.hbaConfKey", hbaKey]] as const) {
    if (!CONFIGMAP_KEY.test(key) || key.length > 253) {
      e.add(field, "Invalid", `${JSON.stringify(key)} must be a ConfigMap key (letters, digits, '-', '_', '.')`);
    }
  }
  if (confKey === hbaKey) {
    e.add("spec.postgres.hbaConfKey", "Invalid", "postgres.postgresqlConfKey and postgres.hbaConfKey must name different keys");
  }
  for (const field of ["certificateDirectory", "configDirectory"] as const) {
    const path = pg[field];
    const problem = path === undefined ? undefined : absolutePathProblem(path);
    if (problem) e.add(`spec.postgres.${field}`, "Invalid", `postgres.${field} ${problem}`);
  }
  const rules = pg.hba?.rules;
  if (rules !== undefined && rules.length === 0) {
    e.add("spec.postgres.hba.rules", "Required", "postgres.hba.rules must have at least one rule");
  }
  e.maxItems("spec.postgres.hba.rules", rules, 32);
  (rules ?? []).forEach((rule, r) => {
    const base = `spec.postgres.hba.rules[${r}]`;
    for (const [key, what] of [["databases", "database names"], ["users", "user names"]] as const) {
      const list = rule[key];
      if (list !== undefined && list.length === 0) e.add(`${base}.${key}`, "Required", `${key} must not be empty (omit it for [all])`);
      distinctItems(e, `${base}.${key}`, list, 32, (token, at) => {
        const problem = hbaTokenProblem(token);
        if (problem) e.add(at, "Invalid", `${what} ${problem}`);
        else if (token.length > (key === "users" ? 64 : 63)) e.add(at, "TooLong", `${what} must be at most 63 characters`);
      });
    }
    if (rule.clientCertificate === "none") passwordRuleRules(rule, base, e);
    if (rule.addresses !== undefined && rule.addresses.length === 0) {
      e.add(`${base}.addresses`, "Required", "addresses must not be empty (omit it for any address)");
    }
    distinctItems(e, `${base}.addresses`, rule.addresses, 32, (a, at) => {
      if (!isCIDR(a) && !isIPAddress(a)) {
        e.add(
          at,
          "Invalid",
          "addresses must be IP addresses or CIDR ranges (e.g. 10.0.0.0/8, ::/0); host names and keywords are not allowed",
        );
      }
    });
  });
}

/**
 * Which configuration applies and what it needs: ConfigMap names the server's ConfigMap; CommandLine changes the
 * database workload's command, so it needs workloadRef; External has neither (the DBA applies the lines).
 */
function configurationRules(spec: SecureDatabaseSpec, e: ValidationErrors): void {
  const pg = spec.postgres;
  const configuration = pg.configuration ?? (pg.configMapName ? "ConfigMap" : undefined);
  if (configuration === undefined) {
    e.add(
      "spec.postgres.configuration",
      "Required",
      "postgres.configuration is required without postgres.configMapName: ConfigMap (with configMapName), " +
        "CommandLine (with workloadRef) or External (a server the operator cannot configure)",
    );
  } else if (configuration === "ConfigMap" && !pg.configMapName) {
    e.add("spec.postgres.configMapName", "Required", "postgres.configMapName is required with configuration ConfigMap");
  } else if (configuration !== "ConfigMap" && pg.configMapName) {
    e.add("spec.postgres.configMapName", "Forbidden", `postgres.configMapName is only for configuration ConfigMap (this one is ${configuration})`);
  }
  if (configuration === "CommandLine" && !spec.workloadRef) {
    e.add(
      "spec.workloadRef",
      "Required",
      "postgres.configuration CommandLine requires workloadRef: the settings go on the database container's command line",
    );
  }
  if (configuration === "External" && spec.workloadRef) {
    e.add("spec.workloadRef", "Forbidden", "postgres.configuration External is a server outside the cluster: it has no workloadRef");
  }
  if (configuration !== "CommandLine") {
    for (const field of ["configDirectory", "entrypoint"] as const) {
      if (pg[field] !== undefined) e.add(`spec.postgres.${field}`, "Forbidden", `postgres.${field} is only for configuration CommandLine`);
    }
  }
  if (pg.entrypoint !== undefined && !/^[A-Za-z0-9_./-]{1,256}$/.test(pg.entrypoint)) {
    e.add("spec.postgres.entrypoint", "Invalid", 'postgres.entrypoint must be a program name or path of letters, digits, ".", "_", "-" and "/"');
  }
}

/** What a password rule (clientCertificate none) may not say: it admits named roles on named databases only. */
const PASSWORD_RULE_DATABASE_KEYWORDS = new Set(["all", "replication", "sameuser", "samerole", "samegroup"]);

/** A password rule lets a role in without a certificate: it must say exactly which roles, on which databases. */
function passwordRuleRules(rule: HbaRule, base: string, e: ValidationErrors): void {
  const why = 'clientCertificate "none" admits a password instead of a client certificate, so';
  if (rule.users === undefined) {
    e.add(`${base}.users`, "Required", `${why} users must name the roles it admits (omitted, it would mean all)`);
  }
  (rule.users ?? []).forEach((u, i) => {
    if (u === "all") {
      e.add(`${base}.users[${i}]`, "Forbidden", `${why} users must name roles, not "all" (which an omitted users list defaults to)`);
    } else if (u.startsWith("+")) {
      e.add(`${base}.users[${i}]`, "Forbidden", `${why} users must name roles, not the group ${JSON.stringify(u)} (whoever joins it later would get in)`);
    }
  });
  if (rule.databases === undefined) {
    e.add(`${base}.databases`, "Required", `${why} databases must name the databases it admits to (omitted, it would mean all)`);
  }
  (rule.databases ?? []).forEach((d, i) => {
    if (PASSWORD_RULE_DATABASE_KEYWORDS.has(d)) {
      e.add(
        `${base}.databases[${i}]`,
        "Forbidden",
        `${why} databases must name databases, not the keyword ${JSON.stringify(d)}` + (d === "all" ? " (which an omitted databases list defaults to)" : ""),
      );
    }
  });
}

/** The workload, the reload and the verification, and that some pg_hba.conf rule admits the operator's login. */
function operatorLoginRules(spec: SecureDatabaseSpec, e: ValidationErrors): void {
  const pg = spec.postgres;
  const reload = spec.reload ?? {};
  const strategy = reload.strategy ?? "SQL";
  if (spec.workloadRef) {
    if (!spec.workloadRef.name) e.add("spec.workloadRef.name", "Required", "workloadRef.name is required");
    e.name("spec.workloadRef.name", spec.workloadRef.name || undefined, "subdomain");
    e.name("spec.workloadRef.container", spec.workloadRef.container, "label");
  } else if (strategy === "RolloutRestart") {
    e.add(
      "spec.reload.strategy",
      "Required",
      "reload.strategy RolloutRestart requires workloadRef (the StatefulSet or Deployment of the database to restart)",
    );
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
    e.add(
      "spec.verification.endpoint",
      "Invalid",
      "verification.endpoint must be host:port with a port from 1 to 65535 (IPv6 in brackets, e.g. [fd00::7]:5432)",
    );
  }

  // The operator logs in with its own certificate to reload (SQL) and to verify: some rule must let it.
  const needsLogin = strategy === "SQL" || (verification.enabled ?? true);
  if (needsLogin && !adminProblem && !dbProblem) {
    const admitted = hbaAdmits(pg.hba?.rules, adminUser, adminDatabase);
    if (admitted === "none") {
      e.add(
        "spec.postgres.hba.rules",
        "Invalid",
        `no pg_hba.conf rule admits reload.adminUser ${JSON.stringify(adminUser)} on database ${JSON.stringify(adminDatabase)}: the ` +
          `operator logs in as that role to reload and verify; add it to a rule, or set reload.strategy and verification.enabled ` +
          `accordingly`,
      );
    } else if (admitted === "passwordOnly") {
      e.add(
        "spec.postgres.hba.rules",
        "Invalid",
        `the first pg_hba.conf rule matching reload.adminUser ${JSON.stringify(adminUser)} is a password rule (clientCertificate none): ` +
          `the operator logs in with its certificate only; put a verify-full rule for it first`,
      );
    } else if (admitted === "password") {
      e.add(
        "spec.postgres.hba.rules",
        "Invalid",
        `the first pg_hba.conf rule matching reload.adminUser ${JSON.stringify(adminUser)} uses clientCertificate verify-ca, which ` +
          `also demands a password: the operator logs in with its certificate only; put a verify-full rule for it first`,
      );
    }
  }
}

/** The namespaces that may connect, the allowlist and the revocations. */
function trustRules(spec: SecureDatabaseSpec, e: ValidationErrors): void {
  distinctItems(e, "spec.allowedNamespaces", spec.allowedNamespaces, 64, (ns, at) => {
    if (ns === "*") e.add(at, "Forbidden", 'allowedNamespaces does not accept "*": list every namespace explicitly');
    else if (!isDNSLabel(ns)) e.add(at, "Invalid", "each allowed namespace must be a namespace name (RFC 1123 label)");
  });

  const allowlist = spec.trust?.allowlist ?? [];
  e.maxItems("spec.trust.allowlist", allowlist, 32);
  e.unique("spec.trust.allowlist", allowlist.map((a) => a.name));
  allowlist.forEach((entry, i) => {
    e.name(`spec.trust.allowlist[${i}].name`, entry.name, "label");
    if (entry.certificate.length > 16384) {
      e.add(`spec.trust.allowlist[${i}].certificate`, "TooLong", "certificate must be at most 16384 characters");
    }
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
  });
}

/** pg_hba.conf keywords: in a grant they would read as "every role" or "every database". */
const HBA_KEYWORDS = new Set(["all", "sameuser", "samerole", "replication"]);

/** The grants: names only (no keyword, no group), never the role the operator logs in with. */
function accessRules(spec: SecureDatabaseSpec, e: ValidationErrors): void {
  const grants = spec.access ?? [];
  e.maxItems("spec.access", grants, 32);
  const adminUser = spec.reload?.adminUser ?? DEFAULTS.reloadAdminUser;
  grants.forEach((grant, i) => {
    const base = `spec.access[${i}]`;
    distinctItems(e, `${base}.namespaces`, grant.namespaces, 64, (ns, at) => {
      if (!isDNSLabel(ns)) e.add(at, "Invalid", "each namespace of a grant must be a namespace name (RFC 1123 label)");
    });
    if (grant.namespaces !== undefined && grant.namespaces.length === 0) {
      e.add(`${base}.namespaces`, "Required", "access[].namespaces must not be empty (omit it for this database's namespace)");
    }
    if (grant.namespaceSelector) validateMatchLabels(e, `${base}.namespaceSelector.matchLabels`, grant.namespaceSelector.matchLabels);
    if (grant.users.length === 0) e.add(`${base}.users`, "Required", "access[].users must name at least one role");
    distinctItems(e, `${base}.users`, grant.users, 64, (user, at) => {
      const problem = roleNameProblem(user) ?? (HBA_KEYWORDS.has(user) ? "must be a role name, not a pg_hba.conf keyword" : plainNameProblem(user));
      if (problem) e.add(at, "Invalid", `access[].users ${problem}`);
      else if (user === adminUser) {
        e.add(at, "Forbidden", `access[].users must not name ${JSON.stringify(user)}, the role the operator reloads and verifies with (reload.adminUser): it is never issued`);
      }
    });
    distinctItems(e, `${base}.databases`, grant.databases, 64, (db, at) => {
      const problem =
        databaseNameProblem(db) ?? (HBA_KEYWORDS.has(db) ? "must be a database name, not a pg_hba.conf keyword (omit databases for any)" : plainNameProblem(db));
      if (problem) e.add(at, "Invalid", `access[].databases ${problem}`);
    });
    const max = durationMs(e, `${base}.maxDuration`, grant.maxDuration, "access[].maxDuration");
    if (max !== undefined && max < 60_000) e.add(`${base}.maxDuration`, "Invalid", "access[].maxDuration must be at least 1m");
  });
}

/**
 * A list field of at most `max` distinct items: reports the excess and the duplicates, then hands each item to
 * `check` with its path (`field[i]`).
 */
function distinctItems(
  e: ValidationErrors,
  field: string,
  list: readonly string[] | undefined,
  max: number,
  check: (item: string, at: string) => void,
): void {
  e.maxItems(field, list, max);
  e.unique(field, list);
  (list ?? []).forEach((item, i) => check(item, `${field}[${i}]`));
}
