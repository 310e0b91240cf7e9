/**
 * Test-only companions of src/postgres: whole-file upserts and the audits of what outside the managed block can
 * undo it (records before the pg_hba.conf block, assignments and includes after the postgresql.conf block). The
 * operator only renders the blocks; the tests use these to check the rendered files as PostgreSQL reads them.
 */
import { END_MARKER, findManagedBlocks, splitLines, upsertManagedBlock, type UpsertResult } from "../../src/postgres/managed-block";
import { renderHbaBlock, type HbaRule, type InvalidHbaRule } from "../../src/postgres/pg-hba";
import { renderPostgresqlConfBlock, type PostgresqlConfInput } from "../../src/postgres/postgresql-conf";

/** Renders the block and puts it first in `hba` (replacing/moving any previous one). */
export function upsertHba(hba: string, rules: readonly HbaRule[]): UpsertResult | InvalidHbaRule {
  const body = renderHbaBlock(rules);
  if (typeof body !== "string") return body;
  return upsertManagedBlock(hba, body, "prepend");
}

/** Renders the block and puts it last in `conf` (replacing/moving any previous one). */
export function upsertPostgresqlConf(conf: string, input: PostgresqlConfInput): UpsertResult {
  return upsertManagedBlock(conf, renderPostgresqlConfBlock(input), "append");
}

// ---------------------------------------------------------------------------------------------------------
// pg_hba.conf audit

export type HbaFindingReason = "HbaLineBeforeManagedBlock" | "ManagedBlockMissing" | "ManagedBlockCorrupt";

export interface HbaFinding {
  readonly reason: HbaFindingReason;
  readonly message: string;
  readonly line?: number;
}

/** The record type of a logical line: its first token, or undefined for a blank/comment line. */
function firstToken(logicalLine: string): string | undefined {
  const m = /^[ \t\r]*([^ \t\r#,]+)/.exec(logicalLine);
  return m?.[1];
}

/**
 * Informational: records that PostgreSQL consults BEFORE the managed block (they win over it), other than
 * `local` (unix socket) records; include directives count too (PostgreSQL 16+). Also reports a missing or
 * corrupt block. Lines after the block are unreachable for TCP and not reported.
 */
export function auditHba(text: string): HbaFinding[] {
  const scan = findManagedBlocks(text);
  if (!scan.ok) return [{ reason: scan.reason, message: scan.message }];
  if (scan.block === undefined) {
    const message =
      "pg_hba.conf has no managed block: its own records decide which TCP clients get in, with or without a client certificate";
    return [{ reason: "ManagedBlockMissing", message }];
  }
  const beginLine = scan.block.beginLine;
  const findings: HbaFinding[] = [];
  let logical = "";
  let logicalStart = 0;
  const record = (): void => {
    const type = firstToken(logical);
    if (type !== undefined && type !== "local") {
      findings.push({
        reason: "HbaLineBeforeManagedBlock",
        line: logicalStart,
        message:
          `pg_hba.conf line ${logicalStart} (${logical.trim()}) comes before the managed block (line ${beginLine}) and is matched ` +
          "first: it can admit TCP clients without a client certificate",
      });
    }
    logical = "";
  };
  for (const l of splitLines(text)) {
    if (l.number >= beginLine) break;
    if (logical === "") logicalStart = l.number;
    // PostgreSQL 14+: a backslash at the end of a line continues the record on the next line.
    if (l.content.endsWith("\\")) {
      logical += l.content.slice(0, -1);
      continue;
    }
    logical += l.content;
    record();
  }
  // A record continued into the BEGIN marker line still starts before the block.
  if (logical !== "") record();
  return findings;
}

// ---------------------------------------------------------------------------------------------------------
// postgresql.conf parsing: PostgreSQL's guc-file.l syntax, `name = value` or `name value`, `#` comments, names
// case-insensitive (`ID` or `ID.ID`), values unquoted or single-quoted with `''` and backslash escapes.

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
  if (lower === "include" || lower === "include_if_exists" || lower === "include_dir") {
    return { kind: "include", directive: lower, path: value };
  }
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
        message:
          `postgresql.conf line ${l.number} (${l.content.trim()}) comes after the managed block (which ends at line ${block.endLine}, ` +
          `"${END_MARKER}"): the included file may override its ssl settings (the last assignment wins); ` +
          "move the directive above the block",
      });
    } else if (p.kind === "setting" && ours.has(p.name)) {
      findings.push({
        reason: "SettingOverridden",
        line: l.number,
        message:
          `postgresql.conf line ${l.number} (${l.content.trim()}) sets ${p.name} after the managed block (which ends at line ` +
          `${block.endLine}) and overrides the operator's value (the last assignment wins); remove the line or move it above the block`,
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
