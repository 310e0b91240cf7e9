/**
 * The CAST connection `.ini` (named by CASTCONNECTIONEXTRAPARAMETERS): one section per secure instance.
 *
 * Pure: entries in, deterministic bytes out.
 *
 * Sections are `[host:port]`, the host in lower case, as CAST documents; the keys are the libpq / PostgreSQL
 * JDBC parameter names, which CAST's documentation does not confirm (the README carries the caveat):
 *
 *   [db.example.com:5432]
 *   ssl=true
 *   sslmode=verify-full
 *   sslcert=/etc/cast-imaging/mtls/analysis/client.crt
 *   sslkey=/etc/cast-imaging/mtls/analysis/client.pk8
 *   sslrootcert=/etc/cast-imaging/mtls/analysis/root.crt
 *
 * Format decisions:
 * - Sections sorted by name (code-unit order); keys in the fixed order above; `key=value` without spaces;
 *   LF line ends; one blank line between sections; a final LF; no comment header (the comment syntax CAST's
 *   parser accepts is not documented).
 * - Host names are lower-cased in the section name (DNS names are case-insensitive). An IPv6 host is written
 *   bracketed, as in a URL authority (`[[2001:db8::1]:5432]`), the only unambiguous `host:port` for it; prefer
 *   a DNS name, since a parser that ends the section name at the first `]` would not find it.
 * - Values are written raw (ini has no portable escaping), so anything that could end a line, open or close a
 *   section, split a key from its value, or start a comment is refused rather than escaped.
 */
import { isIP } from "node:net";
import { fail, ok, type Result } from "../api/result";

/** The variable that tells a CAST component where its .ini is. */
export const CAST_INI_ENV = "CASTCONNECTIONEXTRAPARAMETERS";

export type CastSslMode = "verify-full" | "verify-ca";

export interface CastIniEntry {
  host: string;
  port: number;
  sslMode: CastSslMode;
  /** client.crt (PEM). */
  certificatePath: string;
  /** client.pk8: the PKCS#8 DER key the Java components' PostgreSQL JDBC driver requires (it rejects PEM). */
  keyPath: string;
  /** root.crt: the roots that verify the server. */
  rootCertificatePath: string;
}

/** The section name of an instance: `host:port`, IPv6 bracketed. */
export function castIniSectionName(host: string, port: number): string {
  const h = host.toLowerCase();
  return isIP(h) === 6 ? `[${h}]:${port}` : `${h}:${port}`;
}

const SSL_MODES: readonly string[] = ["verify-full", "verify-ca"];

/** Why a value cannot be written raw into the .ini, or undefined if it can. */
function unsafeValue(value: string): string | undefined {
  if (value.length === 0) return "must not be empty";
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\u2028\u2029\u0085]/.test(value)) return "must not contain line breaks or control characters";
  if (/[[\]=]/.test(value)) return "must not contain '[', ']' or '='";
  if (value.trim() !== value) return "must not start or end with whitespace";
  if (value.startsWith(";") || value.startsWith("#")) return "must not start with ';' or '#' (a comment)";
  return undefined;
}

function lines(e: CastIniEntry): string[] {
  return [
    "ssl=true",
    `sslmode=${e.sslMode}`,
    `sslcert=${e.certificatePath}`,
    `sslkey=${e.keyPath}`,
    `sslrootcert=${e.rootCertificatePath}`,
  ];
}

function checkEntry(e: CastIniEntry, index: number): Result<string> {
  const where = `entry ${index} (${JSON.stringify(e.host)}:${String(e.port)})`;
  if (!Number.isInteger(e.port) || e.port < 1 || e.port > 65535) {
    return fail("InvalidPort", `${where}: port must be an integer in 1..65535`);
  }
  if (!SSL_MODES.includes(e.sslMode)) {
    return fail("InvalidSSLMode", `${where}: sslMode must be verify-full or verify-ca, not ${JSON.stringify(e.sslMode)}`);
  }
  const hostProblem = unsafeValue(e.host) ?? (e.host.includes(":") && isIP(e.host) !== 6 ? "must not contain ':' unless it is an IPv6 address" : undefined);
  if (hostProblem) return fail("UnsafeIniValue", `${where}: host ${hostProblem}`);
  for (const [field, value] of [["certificatePath", e.certificatePath], ["keyPath", e.keyPath], ["rootCertificatePath", e.rootCertificatePath]] as const) {
    const problem = unsafeValue(value);
    if (problem) return fail("UnsafeIniValue", `${where}: ${field} ${problem}`);
  }
  return ok(castIniSectionName(e.host, e.port));
}

/**
 * Renders the .ini. Identical entries for one instance collapse into one section; two entries for the same
 * `host:port` with different settings are refused (a component can present one identity per instance).
 */
export function renderCastIni(entries: readonly CastIniEntry[]): Result<string> {
  const sections = new Map<string, string[]>();
  for (const [i, e] of entries.entries()) {
    const checked = checkEntry(e, i);
    if (!checked.ok) return checked;
    const name = checked.value;
    const body = lines(e);
    const previous = sections.get(name);
    if (previous && previous.join("\n") !== body.join("\n")) {
      return fail(
        "ConflictingInstance",
        `two connections declare instance ${name} with different settings (${previous.join(", ")} vs ${body.join(", ")}): one client ` +
          `identity per instance and workload`,
      );
    }
    sections.set(name, body);
  }
  const names = [...sections.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return ok(names.map((n) => `[${n}]\n${(sections.get(n) ?? []).join("\n")}\n`).join("\n"));
}
