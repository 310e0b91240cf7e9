import { expect } from "chai";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { asReason, isReason, Reason, REASON_DESCRIPTIONS } from "../../../src/api/reasons";
import { IMAGING_CONNECTION_CONDITIONS, SECURE_DATABASE_CONDITIONS } from "../../../src/api/types";
import type { CRLReason, PkiErrorReason, RenewalReason } from "../../../src/pki";
import type { ReloadFailureReason } from "../../../src/postgres/probe";

// The lower layers keep their own reason types: the typecheck fails when one of them leaves the vocabulary.
type Within<T extends Reason> = T;
export type LowerLayerReasons = Within<PkiErrorReason | RenewalReason | CRLReason | ReloadFailureReason>;

const RUNBOOK = readFileSync(join(__dirname, "..", "..", "..", "docs", "runbook.md"), "utf8");
const CHAPTER = "## Causes and fixes by condition reason";

/** The `###` headings of the runbook's chapter on reasons. */
function reasonHeadings(markdown: string): string[] {
  const start = markdown.indexOf(`\n${CHAPTER}\n`);
  if (start < 0) return [];
  const end = markdown.indexOf("\n## ", start + 1);
  const chapter = markdown.slice(start, end < 0 ? undefined : end);
  return [...chapter.matchAll(/^### (.+)$/gm)].map((m) => m[1]!);
}

/** The words of a heading that look like names: CamelCase (several capitals and a lowercase letter) or a reason. */
function namesIn(heading: string): string[] {
  return (heading.match(/\b[A-Za-z][A-Za-z0-9]*\b/g) ?? []).filter((w) => isReason(w) || /^(?=.*[a-z])(?:.*[A-Z]){2}/.test(w));
}

/** Names a heading may carry that are not reasons: the condition a group of reasons appears on, a resource kind. */
const OTHER_NAMES = new Set<string>([
  ...Object.values(SECURE_DATABASE_CONDITIONS),
  ...Object.values(IMAGING_CONNECTION_CONDITIONS),
  "ConfigMap",
]);

describe("reasons", () => {
  const headings = reasonHeadings(RUNBOOK);

  it("has a one-line meaning for each reason", () => {
    for (const [reason, meaning] of Object.entries(REASON_DESCRIPTIONS)) {
      expect(meaning, reason).to.match(/^\S.*\S$/);
      expect(meaning, reason).to.not.include("\n");
    }
  });

  it("names each reason as a constant of itself", () => {
    for (const reason of Object.keys(REASON_DESCRIPTIONS)) expect(Reason[reason as Reason]).to.equal(reason);
  });

  it("reads a reason back from status, anything else as Unknown", () => {
    const cases: [string, Reason][] = [
      ["Secured", "Secured"],
      ["LeaseExpired", "LeaseExpired"],
      ["secured", "Unknown"],
      ["toString", "Unknown"],
      ["", "Unknown"],
    ];
    for (const [input, expected] of cases) expect(asReason(input), input).to.equal(expected);
  });

  describe("in docs/runbook.md", () => {
    it(`has a chapter "${CHAPTER.slice(3)}" with ### headings`, () => {
      expect(headings).to.not.be.empty;
    });

    it("names every reason in a ### heading of that chapter", () => {
      const named = new Set(headings.flatMap(namesIn));
      const missing = Object.keys(REASON_DESCRIPTIONS).filter((r) => !named.has(r));
      expect(missing, "reasons without a runbook heading").to.deep.equal([]);
    });

    it("names in those headings only reasons of the catalogue (or the condition or kind they belong to)", () => {
      const notReasons = (h: string) => namesIn(h).filter((w) => !isReason(w) && !OTHER_NAMES.has(w));
      const unknown = headings.flatMap((h) => notReasons(h).map((w) => `${w} (in "${h}")`));
      expect(unknown, "names that are not reasons").to.deep.equal([]);
    });

    it("the checks find what they look for", () => {
      const sample = [
        "# T",
        "## Other",
        "### Ignored",
        CHAPTER,
        "### Unreachable, Timeout",
        "### NotAReason and CA reasons",
        "## Next",
        "### Secured",
      ].join("\n");
      expect(reasonHeadings(sample)).to.deep.equal(["Unreachable, Timeout", "NotAReason and CA reasons"]);
      expect(reasonHeadings(sample).flatMap(namesIn)).to.deep.equal(["Unreachable", "Timeout", "NotAReason"]);
    });
  });
});
