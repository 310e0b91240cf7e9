/**
 * The one delimited block the operator owns inside a configuration file (postgresql.conf, pg_hba.conf).
 *
 * Pure string functions. The contract, for every text `x` that holds no managed block:
 *
 *   removeManagedBlock(upsertManagedBlock(x, body, pos)) === x          (byte for byte, any x)
 *   upsertManagedBlock(upsertManagedBlock(x, ...), ...) === upsertManagedBlock(x, ...)
 *
 * How that holds without storing anything besides the block: the block owns its marker lines, the lines
 * between them, and EXACTLY ONE adjacent line terminator — the one after the END marker when there is one,
 * otherwise the one just before the BEGIN marker. Insertion adds exactly that one terminator:
 *
 *   prepend:                          BEGIN…END⏎ + x
 *   append, x empty or ends in "\n":  x + BEGIN…END⏎
 *   append, x has no final newline:   x + ⏎BEGIN…END      (the file keeps having no final newline)
 *
 * so removal takes back the very terminator insertion added. ⏎ is the block's own line ending: the
 * terminator of its BEGIN line, chosen on insertion from the file's first line ending (CRLF files get a
 * CRLF block). Bytes outside the block are never touched. Markers only count when a whole line equals
 * them exactly (a CRLF terminator is not part of the line); anything else is an ordinary line.
 *
 * A text with two BEGIN markers, an END before its BEGIN, or a BEGIN without END was hand-edited: we report
 * `ManagedBlockCorrupt` and change nothing rather than guess which lines are ours.
 */

import type { Refusal } from "../api/result";

export const BEGIN_MARKER = "# BEGIN mtls.imaging.dev managed block (do not edit)";
export const END_MARKER = "# END mtls.imaging.dev managed block";

export type BlockPosition = "append" | "prepend";
export type LineEnding = "\n" | "\r\n";

export type ManagedBlockCorrupt = Refusal<"ManagedBlockCorrupt">;
export type InvalidBlockBody = Refusal<"InvalidBlockBody">;

/** One line of a text: offsets of its content and of its terminator. */
export interface TextLine {
  /** 1-based line number. */
  readonly number: number;
  /** Offset of the first character of the line. */
  readonly start: number;
  /** Offset just past the content (before "\r\n" or "\n"). */
  readonly contentEnd: number;
  /** Offset just past the terminator (=== contentEnd for an unterminated last line). */
  readonly end: number;
  readonly content: string;
  readonly terminator: "" | LineEnding;
}

export interface MarkerLine {
  readonly kind: "begin" | "end";
  readonly line: number;
  readonly offset: number;
}

export interface ManagedBlock {
  /** [start, end): every character the block owns, including its one adjacent line terminator. */
  readonly start: number;
  readonly end: number;
  /** 1-based line numbers of the markers. */
  readonly beginLine: number;
  readonly endLine: number;
  /** The lines between the markers, each with its terminator removed. */
  readonly bodyLines: readonly string[];
  /** The block's line ending (its BEGIN line's terminator). */
  readonly eol: LineEnding;
}

export type ManagedBlockScan =
  | { readonly ok: true; readonly block: ManagedBlock | undefined; readonly markers: readonly MarkerLine[] }
  | (ManagedBlockCorrupt & { readonly markers: readonly MarkerLine[] });

/** The new text, or why the file cannot be changed safely. */
export type RemoveResult = string | ManagedBlockCorrupt;
export type UpsertResult = string | ManagedBlockCorrupt | InvalidBlockBody;

/** Narrows a result of this module (or of the renderers) to its error value. */
export function isConfigError<T>(r: string | T): r is T {
  return typeof r !== "string";
}

/** Splits a text into lines; a final empty string after the last "\n" is not a line. */
export function splitLines(text: string): TextLine[] {
  const lines: TextLine[] = [];
  let start = 0;
  let number = 1;
  while (start < text.length) {
    const nl = text.indexOf("\n", start);
    if (nl === -1) {
      lines.push({ number, start, contentEnd: text.length, end: text.length, content: text.slice(start), terminator: "" });
      break;
    }
    const crlf = nl > start && text.charCodeAt(nl - 1) === 13;
    const contentEnd = crlf ? nl - 1 : nl;
    lines.push({ number, start, contentEnd, end: nl + 1, content: text.slice(start, contentEnd), terminator: crlf ? "\r\n" : "\n" });
    start = nl + 1;
    number++;
  }
  return lines;
}

/** The line ending a new block in this text should use: that of the text's first line, LF by default. */
export function detectLineEnding(text: string): LineEnding {
  const nl = text.indexOf("\n");
  return nl > 0 && text.charCodeAt(nl - 1) === 13 ? "\r\n" : "\n";
}

function corrupt(markers: readonly MarkerLine[], message: string): ManagedBlockCorrupt & { markers: readonly MarkerLine[] } {
  return {
    ok: false,
    reason: "ManagedBlockCorrupt",
    message: `${message}; the operator changes nothing in this file until exactly one "${BEGIN_MARKER}" … "${END_MARKER}" pair (or none) remains`,
    markers,
  };
}

/** Finds the managed block, or explains why the markers do not form exactly zero or one well-formed block. */
export function findManagedBlocks(text: string): ManagedBlockScan {
  const lines = splitLines(text);
  const markers: MarkerLine[] = [];
  for (const l of lines) {
    if (l.content === BEGIN_MARKER) markers.push({ kind: "begin", line: l.number, offset: l.start });
    else if (l.content === END_MARKER) markers.push({ kind: "end", line: l.number, offset: l.start });
  }
  // "marker\r" as the unterminated last line becomes a marker as soon as a newline follows it (the block we
  // would append starts with one): ambiguous, so it counts as a hand-edited marker.
  const last = lines[lines.length - 1];
  if (last !== undefined && last.terminator === "" && (last.content === `${BEGIN_MARKER}\r` || last.content === `${END_MARKER}\r`)) {
    markers.push({ kind: last.content.startsWith(BEGIN_MARKER) ? "begin" : "end", line: last.number, offset: last.start });
    return corrupt(
      markers,
      `line ${last.number}, the last line, is a managed-block marker followed by a stray carriage return and no newline`,
    );
  }
  if (markers.length === 0) return { ok: true, block: undefined, markers };

  const begins = markers.filter((m) => m.kind === "begin");
  const ends = markers.filter((m) => m.kind === "end");
  const where = (ms: readonly MarkerLine[]): string => ms.map((m) => m.line).join(", ");
  if (begins.length > 1) {
    return corrupt(markers, `the managed block's BEGIN marker appears ${begins.length} times (lines ${where(begins)})`);
  }
  if (ends.length > 1) return corrupt(markers, `the managed block's END marker appears ${ends.length} times (lines ${where(ends)})`);
  const begin = begins[0];
  const end = ends[0];
  if (begin === undefined) return corrupt(markers, `the managed block's END marker (line ${where(ends)}) has no BEGIN marker`);
  if (end === undefined) return corrupt(markers, `the managed block starting at line ${begin.line} is not terminated (no END marker)`);
  if (end.line < begin.line) {
    return corrupt(markers, `the managed block's END marker (line ${end.line}) comes before its BEGIN marker (line ${begin.line})`);
  }

  const beginL = lines[begin.line - 1];
  const endL = lines[end.line - 1];
  /* c8 ignore next */
  if (beginL === undefined || endL === undefined) throw new Error("unreachable: marker line out of range");
  // BEGIN always has a terminator here: END is on a later line.
  const eol: LineEnding = beginL.terminator === "\r\n" ? "\r\n" : "\n";
  let start = beginL.start;
  let stop = endL.contentEnd;
  if (endL.terminator !== "") stop = endL.end;
  else if (start >= eol.length && text.slice(start - eol.length, start) === eol) start -= eol.length;
  const bodyLines = lines.slice(begin.line, end.line - 1).map((l) => l.content);
  return { ok: true, block: { start, end: stop, beginLine: begin.line, endLine: end.line, bodyLines, eol }, markers };
}

/** The text with exactly the managed block (and its one line terminator) removed; unchanged without a block. */
export function removeManagedBlock(text: string): RemoveResult {
  const scan = findManagedBlocks(text);
  if (!scan.ok) return { ok: false, reason: scan.reason, message: scan.message };
  if (scan.block === undefined) return text;
  return text.slice(0, scan.block.start) + text.slice(scan.block.end);
}

/** Splits a block body into lines; a trailing newline does not make an extra empty line. */
function bodyToLines(body: string): string[] {
  if (body === "") return [];
  const lines = body.split(/\r?\n/);
  if (lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/**
 * Puts the managed block with `blockBody` at `position` (first or last in the file), replacing and moving any
 * existing block. Idempotent; bytes outside the block are preserved.
 */
export function upsertManagedBlock(text: string, blockBody: string, position: BlockPosition): UpsertResult {
  const lines = bodyToLines(blockBody);
  for (const [i, l] of lines.entries()) {
    if (l.includes("\r")) return { ok: false, reason: "InvalidBlockBody", message: `block body line ${i + 1} contains a carriage return` };
    if (l === BEGIN_MARKER || l === END_MARKER) {
      return { ok: false, reason: "InvalidBlockBody", message: `block body line ${i + 1} is a managed-block marker` };
    }
  }
  const rest = removeManagedBlock(text);
  if (typeof rest !== "string") return rest;
  const eol = detectLineEnding(rest);
  const block = [BEGIN_MARKER, ...lines, END_MARKER].join(eol);
  if (position === "prepend") return block + eol + rest;
  if (rest === "" || rest.endsWith("\n")) return rest + block + eol;
  return rest + eol + block;
}
