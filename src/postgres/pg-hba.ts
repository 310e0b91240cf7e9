/**
 * pg_hba.conf: the managed block's content.
 *
 * Pure. PostgreSQL uses the FIRST record matching (connection type, database, user, client address), so the
 * block goes FIRST and ends with catch-all rejects: whatever an admin writes after it can never be reached by
 * a TCP client. The invariant of the rendering: no line lets a TCP client in without a client certificate
 * issued by the trusted CA (ssl_ca_file), not revoked (ssl_crl_file).
 *
 *   hostssl <dbs> <users> <address> cert clientcert=verify-full          per rule and address (verify-full)
 *   hostssl <dbs> <users> <address> scram-sha-256 clientcert=verify-ca   per rule and address (verify-ca)
 *   hostnossl all,replication all 0.0.0.0/0 reject                       plain TCP and GSS-encrypted TCP
 *   hostnossl all,replication all ::/0 reject
 *   hostssl   all,replication all 0.0.0.0/0 reject                       TLS clients no rule above admitted
 *   hostssl   all,replication all ::/0 reject
 *
 * `all` does not match replication connections, hence `all,replication` in the rejects (initdb's default
 * file admits `host replication all 127.0.0.1/32 trust`). `local` (unix-socket) records are not TCP and are left
 * alone.
 *
 * verify-ca: PostgreSQL refuses `cert clientcert=verify-ca` ("clientcert can only be set to "verify-full" when
 * using "cert" authentication") and, on reload, keeps the previous pg_hba.conf entirely. The `cert` method always
 * verifies the chain AND maps the certificate's CN to the role. verify-ca therefore renders a non-cert method plus
 * `clientcert=verify-ca`: the TLS layer requires a client certificate that chains to the CA (any CN), and the
 * method authenticates the role: `scram-sha-256` (default: certificate AND the role's password) or, by explicit
 * choice, `trust` (ANY certificate from the CA may log in as ANY role listed in the rule — the certificate is a
 * bearer token for the whole rule).
 */

import { isIP } from "node:net";
import type { Refusal } from "../api/result";

export type ClientCertificateMode = "verify-full" | "verify-ca";
export type VerifyCaMethod = "scram-sha-256" | "trust";

export interface HbaRule {
  /** Database names, or the keywords all, sameuser, samerole, samegroup, replication. */
  readonly databases: readonly string[];
  /** Role names, the keyword all, or +group for members of a role. */
  readonly users: readonly string[];
  /** CIDR (a bare IP becomes /32 or /128), host name (.suffix matches a domain), or all, samehost, samenet. */
  readonly addresses: readonly string[];
  readonly clientCertificate: ClientCertificateMode;
  /** Only with clientCertificate "verify-ca": how the role authenticates (default "scram-sha-256"). */
  readonly verifyCaMethod?: VerifyCaMethod;
}

export type InvalidHbaRule = Refusal<"InvalidHbaRule">;

/** The block body, or why the rules cannot be rendered safely. */
export type HbaRenderResult = string | InvalidHbaRule;

const DATABASE_KEYWORDS = new Set(["all", "sameuser", "samerole", "samegroup", "replication"]);
const USER_KEYWORDS = new Set(["all"]);
const ADDRESS_KEYWORDS = new Set(["all", "samehost", "samenet"]);
/** Every word with a special meaning somewhere in a record: a literal name equal to one is quoted. */
const ALL_KEYWORDS = new Set([...DATABASE_KEYWORDS, ...USER_KEYWORDS, ...ADDRESS_KEYWORDS]);
/** A name that needs no quoting. */
const PLAIN = /^[A-Za-z0-9_][A-Za-z0-9_.$-]*$/;
/** PostgreSQL identifiers are at most NAMEDATALEN-1 = 63 bytes. */
const MAX_NAME_BYTES = 63;

/** The catch-all records that end the block. */
export const HBA_REJECT_LINES: readonly string[] = [
  "hostnossl all,replication all 0.0.0.0/0 reject",
  "hostnossl all,replication all ::/0 reject",
  "hostssl all,replication all 0.0.0.0/0 reject",
  "hostssl all,replication all ::/0 reject",
];

type TokenResult = { ok: true; token: string } | { ok: false; message: string };

/**
 * A literal database or role name as a pg_hba token: quoted unless plain. pg_hba has no escape for `"`,
 * and control characters (newline!) would split the record, so such names are refused, never rendered.
 */
export function hbaNameToken(name: string, what: string): TokenResult {
  if (typeof name !== "string" || name === "") return { ok: false, message: `${what} must be a non-empty string` };
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return { ok: false, message: `${what} ${JSON.stringify(name)} contains a control character` };
  if (name.includes('"')) {
    return { ok: false, message: `${what} ${JSON.stringify(name)} contains a double quote, which pg_hba.conf cannot express` };
  }
  if (Buffer.byteLength(name, "utf8") > MAX_NAME_BYTES) {
    return { ok: false, message: `${what} ${JSON.stringify(name)} is longer than ${MAX_NAME_BYTES} bytes` };
  }
  if (PLAIN.test(name) && !ALL_KEYWORDS.has(name.toLowerCase())) return { ok: true, token: name };
  return { ok: true, token: `"${name}"` };
}

function databaseToken(db: string): TokenResult {
  if (DATABASE_KEYWORDS.has(db)) return { ok: true, token: db };
  return hbaNameToken(db, "database");
}

function userToken(user: string): TokenResult {
  if (USER_KEYWORDS.has(user)) return { ok: true, token: user };
  if (typeof user === "string" && user.startsWith("+")) {
    // PostgreSQL only honours an UNQUOTED +group, so the group name must be plain.
    const group = user.slice(1);
    if (!PLAIN.test(group) || Buffer.byteLength(group, "utf8") > MAX_NAME_BYTES) {
      return { ok: false, message: `group ${JSON.stringify(user)}: after "+" a group name must match ${PLAIN.source} (at most ${MAX_NAME_BYTES} bytes)` };
    }
    return { ok: true, token: user };
  }
  return hbaNameToken(user, "user");
}

const HOSTNAME_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
const HOSTNAME = new RegExp(`^\\.?${HOSTNAME_LABEL}(?:\\.${HOSTNAME_LABEL})*$`);

/** An address column: CIDR (bare IPs get a full-length mask), host name, or keyword. */
export function hbaAddressToken(address: string): TokenResult {
  if (typeof address !== "string" || address === "") return { ok: false, message: "address must be a non-empty string" };
  if (ADDRESS_KEYWORDS.has(address)) return { ok: true, token: address };
  const slash = address.indexOf("/");
  const ip = slash === -1 ? address : address.slice(0, slash);
  const family = isIP(ip);
  if (family !== 0) {
    const max = family === 4 ? 32 : 128;
    if (slash === -1) return { ok: true, token: `${ip}/${max}` };
    const prefix = address.slice(slash + 1);
    if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max) {
      return { ok: false, message: `address ${JSON.stringify(address)}: the CIDR prefix must be an integer from 0 to ${max}` };
    }
    return { ok: true, token: `${ip}/${Number(prefix)}` };
  }
  if (slash === -1 && address.length <= 253 && HOSTNAME.test(address) && !/^[0-9.]+$/.test(address)) return { ok: true, token: address };
  return { ok: false, message: `address ${JSON.stringify(address)} is neither an IP address/CIDR, a host name, nor all/samehost/samenet` };
}

function list(values: readonly string[], what: string, one: (v: string) => TokenResult): TokenResult {
  if (!Array.isArray(values) || values.length === 0) return { ok: false, message: `${what} must list at least one entry` };
  const tokens: string[] = [];
  for (const v of values) {
    const t = one(v);
    if (!t.ok) return t;
    if (!tokens.includes(t.token)) tokens.push(t.token);
  }
  return { ok: true, token: tokens.join(",") };
}

/** Renders the body of the pg_hba.conf managed block; any unsafe token refuses the whole rendering. */
export function renderHbaBlock(rules: readonly HbaRule[]): HbaRenderResult {
  const lines: string[] = [];
  for (const [i, rule] of rules.entries()) {
    const fail = (message: string): InvalidHbaRule => ({ ok: false, reason: "InvalidHbaRule", message: `rule ${i + 1}: ${message}` });
    const dbs = list(rule.databases, "databases", databaseToken);
    if (!dbs.ok) return fail(dbs.message);
    const users = list(rule.users, "users", userToken);
    if (!users.ok) return fail(users.message);
    let method: string;
    if (rule.clientCertificate === "verify-full") {
      if (rule.verifyCaMethod !== undefined) return fail('verifyCaMethod only applies to clientCertificate "verify-ca"');
      method = "cert clientcert=verify-full";
    } else if (rule.clientCertificate === "verify-ca") {
      const m = rule.verifyCaMethod ?? "scram-sha-256";
      if (m !== "scram-sha-256" && m !== "trust") {
        return fail(`verifyCaMethod must be "scram-sha-256" or "trust", not ${JSON.stringify(m)}`);
      }
      method = `${m} clientcert=verify-ca`;
    } else {
      return fail(`clientCertificate must be "verify-full" or "verify-ca", not ${JSON.stringify(rule.clientCertificate)}`);
    }
    if (!Array.isArray(rule.addresses) || rule.addresses.length === 0) return fail("addresses must list at least one entry");
    const seen = new Set<string>();
    for (const a of rule.addresses) {
      const addr = hbaAddressToken(a);
      if (!addr.ok) return fail(addr.message);
      if (seen.has(addr.token)) continue;
      seen.add(addr.token);
      lines.push(`hostssl ${dbs.token} ${users.token} ${addr.token} ${method}`);
    }
  }
  lines.push(...HBA_REJECT_LINES);
  return `${lines.join("\n")}\n`;
}
