/** Output helpers of the plugin, pure: kubectl-style tables, JSON / YAML documents, and the time formats. */
import { stringify } from "yaml";

/** Where a verb writes: stdout for the answer, stderr for notes (kept apart so `-o json` stays parseable). */
export interface Output {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** What absent reads as in a table. */
export const ABSENT = "-";

export const DAY_MS = 24 * 3600 * 1000;

export type Cell = string | number | undefined;

/** A kubectl-style table: upper-case headers, columns padded to their widest cell, three spaces apart, "-" for absent. */
export function renderTable(headers: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const text = [headers.map((h) => h.toUpperCase()), ...rows.map((r) => headers.map((_, i) => cellText(r[i])))];
  const widths = headers.map((_, i) => Math.max(...text.map((r) => (r[i] ?? "").length)));
  return text.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join("   ").trimEnd()).join("\n") + "\n";
}

function cellText(cell: Cell): string {
  if (cell === undefined || cell === "") return ABSENT;
  return String(cell).replace(/\s*\n\s*/g, " ");
}

export const OUTPUT_FORMATS = ["table", "json", "yaml"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** A document as JSON (2-space indent) or YAML, with a final newline. */
export function renderDocument(value: unknown, format: "json" | "yaml"): string {
  return format === "json" ? `${JSON.stringify(value, null, 2)}\n` : stringify(value, { lineWidth: 0 });
}

/** Whole days from `now` until `time` (negative once past), rounded down; undefined without a time. */
export function daysUntil(time: string | undefined, now: Date): number | undefined {
  const at = time === undefined ? NaN : Date.parse(time);
  return Number.isFinite(at) ? Math.floor((at - now.getTime()) / DAY_MS) : undefined;
}

/** kubectl's age format: 45s, 12m, 3h, 5d (the largest unit); undefined without a time. */
export function age(time: string | undefined, now: Date): string | undefined {
  const at = time === undefined ? NaN : Date.parse(time);
  if (!Number.isFinite(at)) return undefined;
  const s = Math.max(0, Math.floor((now.getTime() - at) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 2 * 3600) return `${Math.floor(s / 60)}m`;
  if (s < 2 * 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** A timestamp in RFC 3339 to the second, as status writes them. */
export function timestamp(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** "label: value" lines with the values aligned, absent values as "-". */
export function renderFields(fields: readonly (readonly [string, Cell])[], indent = "  "): string {
  const width = Math.max(0, ...fields.map(([k]) => k.length + 1));
  return fields.map(([k, v]) => `${indent}${`${k}:`.padEnd(width)}  ${cellText(v)}`).join("\n") + "\n";
}
