import fc from "fast-check";
import { BEGIN_MARKER, END_MARKER } from "../../../src/postgres/managed-block";

/** Lines that look like our markers but are not exactly them: ordinary lines to the operator. */
export const NEAR_MARKERS: readonly string[] = [
  `${BEGIN_MARKER} `,
  ` ${BEGIN_MARKER}`,
  `\t${END_MARKER}`,
  `${END_MARKER}  `,
  BEGIN_MARKER.toLowerCase(),
  END_MARKER.toUpperCase(),
  `#${BEGIN_MARKER}`,
  BEGIN_MARKER.replace("mtls.imaging.dev", "mtls.imaging.de"),
  END_MARKER.replace("# ", "#"),
  `${BEGIN_MARKER}\r`,
  `${END_MARKER}\r\r`,
  `ssl = on ${BEGIN_MARKER}`,
  "# BEGIN mtls.imaging.dev managed block",
  "# END mtls.imaging.dev managed block (do not edit)",
];

const lineContent: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: "grapheme", maxLength: 30 }) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 12 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "",
      " ",
      "\t",
      "# comment",
      "ssl = off",
      "ssl_cert_file = 'x.crt'",
      "host all all 0.0.0.0/0 trust",
      "local all all peer",
      "include_dir 'conf.d'",
      "é€😀 ünïcödé",
      "\r",
      "\\",
    ),
  },
  { weight: 2, arbitrary: fc.constantFrom(...NEAR_MARKERS) },
);

/** A line content without "\n" (a "\r" may remain: it is content unless it precedes "\n"). */
export const arbLine: fc.Arbitrary<string> = lineContent.map((s) => s.replace(/\n/g, ""));

/** A whole file: random lines, random LF / CRLF terminators, maybe no final newline, maybe empty. */
export const arbText: fc.Arbitrary<string> = fc
  .record({
    lines: fc.array(fc.tuple(arbLine, fc.constantFrom("\n", "\r\n")), { maxLength: 12 }),
    finalNewline: fc.boolean(),
  })
  .map(({ lines, finalNewline }) => {
    let s = lines.map(([l, t]) => l + t).join("");
    if (!finalNewline && lines.length > 0) s = s.slice(0, -lines[lines.length - 1]![1].length);
    return s;
  });

/** A file that holds no exact marker line (random near-markers are welcome). */
export const arbBlockFreeText: fc.Arbitrary<string> = arbText.filter((t) => !t.split("\n").some((l) => l.replace(/\r$/, "") === BEGIN_MARKER || l.replace(/\r$/, "") === END_MARKER));

/** A block body: lines that are not markers and hold no "\r". */
export const arbBody: fc.Arbitrary<string> = fc
  .array(arbLine.map((l) => l.replace(/\r/g, "")).filter((l) => l !== BEGIN_MARKER && l !== END_MARKER), { maxLength: 6 })
  .chain((lines) => fc.constantFrom(lines.join("\n"), lines.join("\n") + (lines.length > 0 ? "\n" : "")));

export const arbPosition = fc.constantFrom<"append" | "prepend">("append", "prepend");
