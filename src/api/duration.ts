/** Go duration strings ("2160h", "1h30m", "1.5s", "250ms") as used by the CRDs' lifetime and interval fields. */

export class DurationError extends Error {
  constructor(
    readonly input: string,
    reason: string,
  ) {
    super(`invalid duration ${JSON.stringify(input)}: ${reason}`);
    this.name = "DurationError";
  }
}

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3, // U+00B5 micro sign
  "μs": 1e-3, // U+03BC Greek small letter mu
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * The stricter form the CRDs accept: whole numbers of h, m, s and ms, each at most once, in that order
 * (e.g. "2160h", "1h30m", "90s", "1m500ms"). At most 6 digits per component keeps every value far below the
 * ~292-year limit of Go's and CEL's durations.
 */
export const CRD_DURATION_PATTERN = /^([0-9]{1,6}h)?([0-9]{1,6}m)?([0-9]{1,6}s)?([0-9]{1,6}ms)?$/;

/** Whether a string is a duration the CRDs accept (see CRD_DURATION_PATTERN); the empty string is not. */
export function isCRDDuration(s: string): boolean {
  return s.length >= 2 && CRD_DURATION_PATTERN.test(s);
}

const COMPONENT = /^([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)/;

/**
 * Parses a Go duration (time.ParseDuration syntax: an optional sign, then one or more decimal numbers each with a
 * unit among ns, us/µs, ms, s, m, h; or a bare "0") into milliseconds. Sub-millisecond parts are kept as fractions.
 * Throws DurationError on anything else (e.g. "10d", "5", "1h 30m", "").
 */
export function parseDuration(input: string): number {
  let s = input;
  let sign = 1;
  if (s.startsWith("-") || s.startsWith("+")) {
    if (s.startsWith("-")) sign = -1;
    s = s.slice(1);
  }
  if (s === "0") return 0;
  if (s === "") throw new DurationError(input, "empty");
  let total = 0;
  while (s.length > 0) {
    const m = COMPONENT.exec(s);
    if (!m) {
      const unitless = /^[0-9.]+$/.test(s);
      throw new DurationError(
        input,
        unitless ? `missing unit after "${s}" (use h, m, s or ms)` : `unknown unit or character at "${s}" (use h, m, s or ms; days are not supported)`,
      );
    }
    const [whole, number = "", unit = ""] = m;
    if (number === "" || number === ".") throw new DurationError(input, `missing number before "${unit}"`);
    total += Number(number) * (UNIT_MS[unit] ?? Number.NaN);
    s = s.slice(whole.length);
  }
  if (!Number.isFinite(total)) throw new DurationError(input, "out of range");
  // Go durations are int64 nanoseconds: about 292 years.
  if (total > 9_223_372_036_854) throw new DurationError(input, "out of range (more than about 292 years)");
  return sign * total;
}

/** Formats milliseconds compactly in the CRDs' form: "2160h", "1h30m", "20s", "1m500ms", "0s". Rounds to whole ms. */
export function formatDuration(ms: number): string {
  let rest = Math.round(Math.abs(ms));
  if (rest === 0) return "0s";
  const parts: string[] = [];
  for (const [unit, size] of [["h", 3_600_000], ["m", 60_000], ["s", 1000], ["ms", 1]] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) parts.push(`${n}${unit}`);
    rest -= n * size;
  }
  return (ms < 0 ? "-" : "") + parts.join("");
}
