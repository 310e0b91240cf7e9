/**
 * postgresql.conf: the managed block's content.
 *
 * Pure. PostgreSQL reads postgresql.conf top to bottom, expanding include directives in place, and the last
 * assignment of a parameter wins; so our block goes LAST and only what comes AFTER it can override it:
 * an assignment of a parameter the block sets, or an include directive (the included file may set anything).
 * Includes and assignments before the block are harmless. (postgresql.auto.conf — ALTER SYSTEM — and server
 * command-line options are read after/over this file; they are not visible here: the live probe catches them.)
 */

export type TLSVersion = "TLSv1.2" | "TLSv1.3";

export interface PostgresqlConfInput {
  /** Directory holding tls.crt, tls.key, ca.crt, ca.crl as the server sees it (absolute, or relative to the data directory). */
  readonly certificateDirectory: string;
  readonly minTLSVersion: TLSVersion;
  /** Whether ca.crl is present and must be enforced. Without it `ssl_crl_file` is set empty (no CRL). */
  readonly crl: boolean;
}

/** File names inside the certificate directory (the Secret layout of the server certificate). */
export const SERVER_FILES = { cert: "tls.crt", key: "tls.key", ca: "ca.crt", crl: "ca.crl" } as const;

const CONTROL_ESCAPES: Record<string, string> = { "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/**
 * Quotes a postgresql.conf string value so that it reads back as exactly `value` (guc-file.l's GUC_scanstr):
 * `\` and `'` escaped, control characters written as escapes, so no value can end the line or the string.
 */
export function quoteConfValue(value: string): string {
  const escaped = value
    .replace(/\\/g, "\\\\")
    .replace(/'/g, "''")
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f]/g, (c) => CONTROL_ESCAPES[c] ?? `\\${c.charCodeAt(0).toString(8).padStart(3, "0")}`);
  return `'${escaped}'`;
}

/** The settings that make the server serve TLS with the operator's files, as (name, value) pairs, in order. */
export function tlsSettings(input: PostgresqlConfInput): [string, string][] {
  const dir = input.certificateDirectory === "/" ? "" : input.certificateDirectory.replace(/\/+$/, "");
  const file = (name: string): string => (input.certificateDirectory === "" ? name : `${dir}/${name}`);
  return [
    ["ssl", "on"],
    ["ssl_cert_file", file(SERVER_FILES.cert)],
    ["ssl_key_file", file(SERVER_FILES.key)],
    ["ssl_ca_file", file(SERVER_FILES.ca)],
    ["ssl_crl_file", input.crl ? file(SERVER_FILES.crl) : ""],
    ["ssl_min_protocol_version", input.minTLSVersion],
  ];
}

/**
 * Renders the body of the postgresql.conf managed block. Total: every input renders to a block that parses
 * as exactly these six assignments (an odd path just names a file the server will not find).
 */
export function renderPostgresqlConfBlock(input: PostgresqlConfInput): string {
  const body = tlsSettings(input).map(([name, value]) => (name === "ssl" ? `ssl = ${value}` : `${name} = ${quoteConfValue(value)}`));
  return `${body.join("\n")}\n`;
}
