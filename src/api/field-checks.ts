/**
 * Checks of single values the CRDs hold: Kubernetes names, IP addresses and CIDRs, pg_hba.conf tokens, role and
 * database names, absolute paths, endpoints, PEM certificates. Pure; each problem function returns why a value is
 * refused, or undefined. Used by validation and by the renderers and reconcilers that want the same judgement.
 */
import { X509Certificate } from "node:crypto";
import { BlockList, isIPv4, isIPv6 } from "node:net";

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SAFE_PATH = /^(\/[A-Za-z0-9._-]+)+$/;
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
  if (HBA_UNSAFE.test(token)) {
    return "must be a single pg_hba.conf token: whitespace, '#', quotes, commas, backslashes and control characters are not allowed";
  }
  if (token.startsWith("@") || token.startsWith("/")) {
    return "must not start with '@' (file inclusion) or '/' (regular expression)";
  }
  return undefined;
}

/** Letters, digits, '_', '.' and '-', starting with a letter or '_': safe unquoted in pg_hba.conf, URLs, .ini and shells. */
const PLAIN_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/**
 * Why a role or database name a connection may be issued is not a plain name, or undefined. Other names are
 * refused rather than quoted: docs/security.md shows the escape (a plain-named login role that is a member of it).
 */
export function plainNameProblem(name: string): string | undefined {
  if (PLAIN_NAME.test(name)) return undefined;
  return "must be a plain name: letters, digits, '_', '.' and '-', starting with a letter or '_' (for other names see docs/security.md)";
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
  if (/[/?&;=]/.test(name)) {
    return "must not contain '/', '?', '&', ';' or '=' (it goes into JDBC URLs and the CAST .ini)";
  }
  if (Buffer.byteLength(name, "utf8") > 63) return "must be at most 63 bytes (PostgreSQL NAMEDATALEN)";
  return undefined;
}

/** Why a string cannot be an absolute directory to mount into a container or name in postgresql.conf, or undefined. */
export function absolutePathProblem(path: string): string | undefined {
  if (!SAFE_PATH.test(path)) {
    return 'must be an absolute path of letters, digits, ".", "_", "-" and "/" (no trailing "/")';
  }
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
  if (blocks.length > 1) {
    return `must hold exactly one certificate, found ${blocks.length}: add one allowlist entry per certificate`;
  }
  try {
    new X509Certificate(blocks[0] ?? "");
  } catch (err) {
    return `does not parse as an X.509 certificate (${err instanceof Error ? err.message : String(err)})`;
  }
  return undefined;
}
