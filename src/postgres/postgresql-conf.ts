/**
 * postgresql.conf: the managed block's content, and what outside the block can undo it.
 *
 * Pure. PostgreSQL reads postgresql.conf top to bottom, expanding include directives in place, and the last
 * assignment of a parameter wins; so our block goes LAST and only what comes AFTER it can override it:
 * an assignment of a parameter the block sets, or an include directive (the included file may set anything).
 * Includes and assignments before the block are harmless. (postgresql.auto.conf — ALTER SYSTEM — and server
 * command-line options are read after/over this file; they are not visible here: the live probe catches them.)
 *
 * Syntax follows PostgreSQL's guc-file.l: `name = value` or `name value`, `#` comments, names
 * case-insensitive (`ID` or `ID.ID`), values unquoted or single-quoted with `''` and backslash escapes.
 */

import { END_MARKER, findManagedBlocks, splitLines, upsertManagedBlock, type UpsertResult } from "./managed-block";

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

/**
 * Renders the body of the postgresql.conf managed block. Total: every input renders to a block that parses
 * as exactly these six assignments (an odd path just names a file the server will not find).
 */
export function renderPostgresqlConfBlock(input: PostgresqlConfInput): string {
  const dir = input.certificateDirectory === "/" ? "" : input.certificateDirectory.replace(/\/+$/, "");
  const file = (name: string): string => quoteConfValue(input.certificateDirectory === "" ? name : `${dir}/${name}`);
  const body = [
    "ssl = on",
    `ssl_cert_file = ${file(SERVER_FILES.cert)}`,
    `ssl_key_file = ${file(SERVER_FILES.key)}`,
    `ssl_ca_file = ${file(SERVER_FILES.ca)}`,
    `ssl_crl_file = ${input.crl ? file(SERVER_FILES.crl) : "''"}`,
    `ssl_min_protocol_version = ${quoteConfValue(input.minTLSVersion)}`,
  ].join("\n");
  return `${body}\n`;
}

/** Renders the block and puts it last in `conf` (replacing/moving any previous one). */
export function upsertPostgresqlConf(conf: string, input: PostgresqlConfInput): UpsertResult {
  return upsertManagedBlock(conf, renderPostgresqlConfBlock(input), "append");
}

// ---------------------------------------------------------------------------------------------------------
// Parsing

export type ConfLine =
  | { readonly kind: "empty" }
  | { readonly kind: "setting"; readonly name: string; readonly value: string; readonly rawValue: string }
  | { readonly kind: "include"; readonly directive: "include" | "include_if_exists" | "include_dir"; readonly path: string }
  | { readonly kind: "invalid"; readonly problem: string };

const isLetter = (c: string): boolean => /[A-Za-z_]/.test(c) || c.charCodeAt(0) >= 0x80;
const isLetterOrDigit = (c: string): boolean => isLetter(c) || /[0-9]/.test(c);
const isUnquotedChar = (c: string): boolean => isLetterOrDigit(c) || /[-._:/+]/.test(c);

/** Undoes postgresql.conf string escapes (GUC_scanstr): '' → ', \n \t \r \b \f, \ooo octal, \x → x. */
export function unescapeConfString(inner: string): string {
  let out = "";
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i] as string;
    if (c === "'" && inner[i + 1] === "'") {
      out += "'";
      i++;
    } else if (c === "\\" && i + 1 < inner.length) {
      const n = inner[++i] as string;
      const simple: Record<string, string> = { b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
      if (simple[n] !== undefined) out += simple[n];
      else if (/[0-7]/.test(n)) {
        let oct = n;
        while (oct.length < 3 && /[0-7]/.test(inner[i + 1] ?? "")) oct += inner[++i];
        out += String.fromCharCode(parseInt(oct, 8));
      } else out += n;
    } else out += c;
  }
  return out;
}

/** Parses one line of postgresql.conf (without its terminator). */
export function parseConfLine(line: string): ConfLine {
  let i = 0;
  const skipSpace = (): void => {
    while (i < line.length && /[ \t\r\f\v]/.test(line[i] as string)) i++;
  };
  skipSpace();
  if (i >= line.length || line[i] === "#") return { kind: "empty" };
  if (!isLetter(line[i] as string)) return { kind: "invalid", problem: "a line must start with a parameter name" };
  let name = "";
  while (i < line.length && (isLetterOrDigit(line[i] as string) || line[i] === ".")) name += line[i++];
  skipSpace();
  if (line[i] === "=") {
    i++;
    skipSpace();
  }
  let value: string;
  let rawValue: string;
  if (line[i] === "'") {
    const start = i++;
    let closed = false;
    while (i < line.length) {
      const c = line[i];
      if (c === "\\") i += 2;
      else if (c === "'" && line[i + 1] === "'") i += 2;
      else if (c === "'") {
        i++;
        closed = true;
        break;
      } else i++;
    }
    if (!closed) return { kind: "invalid", problem: "unterminated quoted string" };
    rawValue = line.slice(start, i);
    value = unescapeConfString(rawValue.slice(1, -1));
  } else {
    const start = i;
    while (i < line.length && isUnquotedChar(line[i] as string)) i++;
    if (i === start) return { kind: "invalid", problem: `parameter ${name} has no value` };
    rawValue = value = line.slice(start, i);
  }
  skipSpace();
  if (i < line.length && line[i] !== "#") return { kind: "invalid", problem: "unexpected text after the value" };
  const lower = name.toLowerCase();
  if (lower === "include" || lower === "include_if_exists" || lower === "include_dir") return { kind: "include", directive: lower, path: value };
  return { kind: "setting", name: lower, value, rawValue };
}

// ---------------------------------------------------------------------------------------------------------
// Overrides

export type ConfFindingReason = "SettingOverridden" | "IncludeAfterManagedBlock" | "ManagedBlockCorrupt";

export interface ConfFinding {
  readonly reason: ConfFindingReason;
  readonly message: string;
  /** 1-based line in the file (undefined for ManagedBlockCorrupt). */
  readonly line?: number;
}

/**
 * Everything after the managed block that can override it: include directives (reason
 * `IncludeAfterManagedBlock`) and assignments of parameters the block sets (`SettingOverridden`).
 * A corrupt block yields one `ManagedBlockCorrupt` finding; no block yields none (nothing to override).
 */
export function findOverrides(conf: string): ConfFinding[] {
  const scan = findManagedBlocks(conf);
  if (!scan.ok) return [{ reason: scan.reason, message: scan.message }];
  const block = scan.block;
  if (block === undefined) return [];
  const ours = new Set<string>();
  for (const l of block.bodyLines) {
    const p = parseConfLine(l);
    if (p.kind === "setting") ours.add(p.name);
  }
  const findings: ConfFinding[] = [];
  for (const l of splitLines(conf)) {
    if (l.number <= block.endLine) continue;
    const p = parseConfLine(l.content);
    if (p.kind === "include") {
      findings.push({
        reason: "IncludeAfterManagedBlock",
        line: l.number,
        message: `postgresql.conf line ${l.number} (${l.content.trim()}) comes after the managed block (which ends at line ${block.endLine}, "${END_MARKER}"): the included file may override its ssl settings (the last assignment wins); move the directive above the block`,
      });
    } else if (p.kind === "setting" && ours.has(p.name)) {
      findings.push({
        reason: "SettingOverridden",
        line: l.number,
        message: `postgresql.conf line ${l.number} (${l.content.trim()}) sets ${p.name} after the managed block (which ends at line ${block.endLine}) and overrides the operator's value (the last assignment wins); remove the line or move it above the block`,
      });
    }
  }
  return findings;
}

/** Only the include directives after the managed block (see findOverrides). */
export function findOverridingIncludes(conf: string): ConfFinding[] {
  return findOverrides(conf).filter((f) => f.reason !== "SettingOverridden");
}

/** Only the assignments after the managed block that override one of its settings (see findOverrides). */
export function findOverridingSettings(conf: string): ConfFinding[] {
  return findOverrides(conf).filter((f) => f.reason !== "IncludeAfterManagedBlock");
}
