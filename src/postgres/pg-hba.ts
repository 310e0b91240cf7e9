/**
 * pg_hba.conf: the managed block's content.
 *
 * Pure. PostgreSQL uses the FIRST record matching (connection type, database, user, client address), so the
 * block goes FIRST and ends with catch-all rejects: whatever an admin writes after it can never be reached by
 * a TCP client. The invariants of the rendering: no line lets a TCP client in without TLS, and every line that
 * admits one demands either a client certificate issued by the trusted CA (ssl_ca_file), not revoked
 * (ssl_crl_file), or, for a password rule only, the role's password.
 *
 *   hostssl <dbs> <users> <address> cert clientcert=verify-full          per rule and address (verify-full)
 *   hostssl <dbs> <users> <address> scram-sha-256 clientcert=verify-ca   per rule and address (verify-ca)
 *   hostssl <dbs> <users> <address> scram-sha-256                        per rule and address (none: password rule)
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
 *
 * Password rules (clientCertificate "none"): some clients get no certificate (CAST Imaging's chart gives Keycloak a
 * JDBC URL without SSL parameters, its psql init containers libpq's defaults, its authentication service a
 * password; pgjdbc and libpq default to sslmode=prefer, so they try TLS first). A password rule admits NAMED roles
 * on NAMED databases with the role's SCRAM password, still only over TLS: the record is `hostssl`, the `hostnossl`
 * rejects stay, so there is never a plain-TCP path. It may not name `all`, a `+group` or a database keyword, and
 * takes no verifyCaMethod.
 *
 * PostgreSQL chooses the record before it knows whether the client holds a certificate: for one (database, user,
 * address) the FIRST matching rule decides for every client, with a certificate or without. Hence, for the same
 * (database, user, address):
 *  - a password rule also lets a client that holds a certificate in by password: its certificate (still checked
 *    against the CA by TLS when sent) no longer authenticates it; a certificate rule for that pair AFTER the
 *    password rule never applies;
 *  - a certificate rule BEFORE the password rule makes the password rule unreachable: a client without a
 *    certificate is refused ("connection requires a valid client certificate").
 * The rendering keeps the user's rule order; findPasswordRuleOverlaps reports both cases.
 */

import { isIP } from "node:net";
import type { Refusal } from "../api/result";

export type ClientCertificateMode = "verify-full" | "verify-ca" | "none";
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

/** The method of a password rule's records: the role's SCRAM password, no client certificate asked for. */
const PASSWORD_METHOD = "scram-sha-256";

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
    } else if (rule.clientCertificate === "none") {
      if (rule.verifyCaMethod !== undefined) {
        return fail('verifyCaMethod only applies to clientCertificate "verify-ca": a password rule (clientCertificate "none") always uses scram-sha-256');
      }
      const problem = passwordRuleProblem(rule);
      if (problem) return fail(problem);
      method = PASSWORD_METHOD;
    } else {
      return fail(`clientCertificate must be "verify-full", "verify-ca" or "none", not ${JSON.stringify(rule.clientCertificate)}`);
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

// ---------------------------------------------------------------------------------------------------------------
// Password rules (clientCertificate "none")

/** Why a password rule cannot be rendered: it must name its roles and databases, never a keyword or a group. */
export function passwordRuleProblem(rule: Pick<HbaRule, "users" | "databases">): string | undefined {
  if (!Array.isArray(rule.users) || !Array.isArray(rule.databases)) return undefined;
  const user = rule.users.find((u) => USER_KEYWORDS.has(u) || (typeof u === "string" && u.startsWith("+")));
  if (user !== undefined) {
    return `a password rule (clientCertificate "none") must name its users: ${JSON.stringify(user)} would admit roles nobody listed`;
  }
  const db = rule.databases.find((d) => DATABASE_KEYWORDS.has(d));
  if (db !== undefined) {
    return `a password rule (clientCertificate "none") must name its databases: ${JSON.stringify(db)} is a pg_hba.conf keyword`;
  }
  return undefined;
}

/** Whether a record of the managed block is one a password rule renders (hostssl … scram-sha-256, no clientcert). */
export function isPasswordRecord(line: string): boolean {
  const fields = line.trim().split(/\s+/);
  return fields[0] === "hostssl" && fields[fields.length - 1] === PASSWORD_METHOD && fields.length === 5;
}

/** One (database, user, address) a password rule names. */
export interface HbaTarget {
  readonly database: string;
  readonly user: string;
  /** The address as rendered (a bare IP with its full-length mask); for an overlap, the narrower of the two. */
  readonly address: string;
}

/** An overlap lists at most this many targets (and counts them all): 32 rules of 32 names and addresses are many. */
export const MAX_OVERLAP_TARGETS = 100;

export interface PasswordRuleOverlap {
  /**
   * PasswordRuleUnreachable: earlier rules (`otherRules`) match `targets` first, so the password rule never applies
   * to them. CertificateRuleUnreachable: the password rule matches `targets` first, so the later certificate rule
   * `otherRules[0]`, which names those users, never applies to them.
   */
  readonly kind: "PasswordRuleUnreachable" | "CertificateRuleUnreachable";
  /** Index of the password rule in the rule list. */
  readonly passwordRule: number;
  readonly otherRules: readonly number[];
  /** The first MAX_OVERLAP_TARGETS of them. */
  readonly targets: readonly HbaTarget[];
  readonly targetCount: number;
  /** PasswordRuleUnreachable: the password rule applies to nothing at all (always false for the other kind). */
  readonly complete: boolean;
  /** What happens, in the words of `name` (e.g. "spec.postgres.hba.rules[1]"). */
  readonly message: string;
}

/** A client address range: `all`, a CIDR (as a number and a prefix length), or a token only equal to itself. */
type AddressRange =
  | { kind: "all"; token: string }
  | { kind: "cidr"; token: string; family: 4 | 6; bits: bigint; prefix: number }
  | { kind: "other"; token: string };

/** The 128 bits of an IPv6 address (:: and a trailing dotted IPv4 part included); isIP has checked the syntax. */
function ipv6Bits(ip: string): bigint {
  let text = ip;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split("::") as [string, string | undefined];
  const words = (part: string | undefined) => (part ? part.split(":") : []);
  const left = words(head);
  const right = words(tail);
  const all = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right];
  return all.reduce((acc, w) => (acc << 16n) | BigInt(parseInt(w, 16)), 0n);
}

function addressRange(address: string): AddressRange | undefined {
  const t = hbaAddressToken(address);
  if (!t.ok) return undefined;
  if (t.token === "all") return { kind: "all", token: t.token };
  const slash = t.token.indexOf("/");
  const ip = slash < 0 ? "" : t.token.slice(0, slash);
  const family = isIP(ip);
  if (family === 0) return { kind: "other", token: t.token };
  const bits = family === 4 ? ip.split(".").reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n) : ipv6Bits(ip);
  return { kind: "cidr", token: t.token, family: family === 4 ? 4 : 6, bits, prefix: Number(t.token.slice(slash + 1)) };
}

/**
 * Whether every client address `inner` matches also matches `outer`. Only what is certain: a host name or
 * samehost/samenet contains only itself. IPv4 and IPv6 ranges never overlap (PostgreSQL compares them apart).
 */
function containsRange(outer: AddressRange, inner: AddressRange): boolean {
  if (outer.kind === "all") return true;
  if (outer.kind === "cidr" && inner.kind === "cidr") {
    if (outer.family !== inner.family || outer.prefix > inner.prefix) return false;
    const shift = BigInt((outer.family === 4 ? 32 : 128) - outer.prefix);
    return outer.bits >> shift === inner.bits >> shift;
  }
  return outer.token === inner.token;
}

/** The addresses both match (CIDR ranges either nest or are disjoint): the narrower one, or none. */
function intersection(a: AddressRange, b: AddressRange): AddressRange | undefined {
  if (containsRange(a, b)) return b;
  if (containsRange(b, a)) return a;
  return undefined;
}

interface PreparedRule {
  readonly rule: HbaRule;
  readonly users: ReadonlySet<string>;
  readonly databases: ReadonlySet<string>;
  readonly addresses: readonly AddressRange[];
}

/** Whether `rule` matches this user on this database for certain (a +group or samerole depends on membership). */
function matchesPair(r: PreparedRule, database: string, user: string): boolean {
  const userMatch = r.users.has("all") || r.users.has(user);
  const dbMatch = r.databases.has("all") || r.databases.has(database) || (r.databases.has("sameuser") && database === user);
  return userMatch && dbMatch;
}

/** Distinct targets, up to MAX_OVERLAP_TARGETS of them listed, all of them counted. */
class Targets {
  readonly list: HbaTarget[] = [];
  private readonly seen = new Set<string>();
  get count(): number {
    return this.seen.size;
  }
  add(t: HbaTarget): void {
    const key = `${t.database}\u0000${t.user}\u0000${t.address}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    if (this.list.length < MAX_OVERLAP_TARGETS) this.list.push(t);
  }
}

const MAX_LISTED = 5;

function describeTargets(targets: Targets): string {
  const listed = targets.list.slice(0, MAX_LISTED).map((t) => `user ${t.user} on database ${t.database} from ${t.address}`);
  const more = targets.count > MAX_LISTED ? ` and ${targets.count - MAX_LISTED} more` : "";
  return `${listed.join(", ")}${more}`;
}

function listNames(indexes: readonly number[], name: (i: number) => string): string {
  const names = indexes.map(name);
  return names.length <= 1 ? names.join("") : `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}

/**
 * Where a password rule and another rule claim the same (database, user, address), which PostgreSQL cannot tell
 * apart by certificate (see the header): a password rule that earlier rules leave unreachable, wholly or in part,
 * and a later certificate rule naming a user the password rule already admits by password. Only certain overlaps:
 * a +group, samerole or a host name is not resolved. Rules that cannot be rendered are skipped (renderHbaBlock
 * refuses them).
 */
export function findPasswordRuleOverlaps(
  rules: readonly HbaRule[],
  name: (index: number) => string = (i) => `rule ${i + 1}`,
): PasswordRuleOverlap[] {
  const prepared: PreparedRule[] = rules.map((rule) => ({
    rule,
    users: new Set(Array.isArray(rule.users) ? rule.users : []),
    databases: new Set(Array.isArray(rule.databases) ? rule.databases : []),
    addresses: (Array.isArray(rule.addresses) ? rule.addresses : []).map(addressRange).filter((a) => a !== undefined),
  }));
  const overlaps: PasswordRuleOverlap[] = [];
  prepared.forEach((p, pi) => {
    if (p.rule.clientCertificate !== "none" || passwordRuleProblem(p.rule) !== undefined) return;
    const addresses = [...new Map(p.addresses.map((a) => [a.token, a])).values()];
    // Which earlier rule covers which of its addresses, computed once rather than per (database, user).
    const covers = prepared.slice(0, pi).map((e) => addresses.map((a) => e.addresses.some((ea) => containsRange(ea, a))));
    const taken = new Targets();
    const takenBy = new Set<number>();
    const free: { database: string; user: string; free: boolean[] }[] = [];
    let freeCount = 0;
    for (const user of p.users) {
      for (const database of p.databases) {
        const earlier = covers.flatMap((_, ei) => (matchesPair(prepared[ei]!, database, user) ? [ei] : []));
        const freeHere = addresses.map((a, ai) => {
          const first = earlier.find((ei) => covers[ei]![ai]);
          if (first === undefined) return true;
          taken.add({ database, user, address: a.token });
          takenBy.add(first);
          return false;
        });
        freeCount += freeHere.filter(Boolean).length;
        free.push({ database, user, free: freeHere });
      }
    }
    if (taken.count > 0) {
      const complete = freeCount === 0;
      const earlier = [...takenBy].sort((a, b) => a - b);
      const verb = earlier.length === 1 ? "matches" : "match";
      const message = complete
        ? `${name(pi)} (password) never applies: ${listNames(earlier, name)} before it ${verb} every user, database and address it names first`
        : `${name(pi)} (password) never applies for ${describeTargets(taken)}: ${listNames(earlier, name)} before it ${verb} first`;
      overlaps.push({
        kind: "PasswordRuleUnreachable",
        passwordRule: pi,
        otherRules: earlier,
        targets: taken.list,
        targetCount: taken.count,
        complete,
        message,
      });
    }
    prepared.forEach((c, ci) => {
      if (ci <= pi || c.rule.clientCertificate === "none") return;
      // The narrower range of each pair of addresses that overlap, per address of the password rule.
      const both = addresses.map((a) => [...new Set(c.addresses.map((ca) => intersection(a, ca)?.token).filter((t) => t !== undefined))]);
      const shadowed = new Targets();
      for (const f of free) {
        // Only a user the certificate rule names itself: a later "all" is the usual catch-all, not a conflict.
        if (!c.users.has(f.user) || !matchesPair(c, f.database, f.user)) continue;
        f.free.forEach((isFree, ai) => {
          if (isFree) for (const address of both[ai]!) shadowed.add({ database: f.database, user: f.user, address });
        });
      }
      if (shadowed.count === 0) return;
      const message =
        `${name(ci)} (certificate) never applies for ${describeTargets(shadowed)}: ${name(pi)} (password) before it matches ` +
        "first, so a client with a certificate is asked for the password";
      overlaps.push({
        kind: "CertificateRuleUnreachable",
        passwordRule: pi,
        otherRules: [ci],
        targets: shadowed.list,
        targetCount: shadowed.count,
        complete: false,
        message,
      });
    });
  });
  return overlaps;
}
