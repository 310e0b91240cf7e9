import { expect } from "chai";
import fc from "fast-check";
import {
  BEGIN_MARKER,
  END_MARKER,
  detectLineEnding,
  findManagedBlocks,
  isConfigError,
  removeManagedBlock,
  splitLines,
  upsertManagedBlock,
  type ManagedBlock,
} from "../../../src/postgres/managed-block";
import { NEAR_MARKERS, arbBlockFreeText, arbBody, arbPosition, arbText } from "./arbitraries";

const RUNS = { numRuns: Number(process.env.FC_RUNS ?? 500) };

function str(r: unknown): string {
  if (typeof r !== "string") throw new Error(`expected a text, got ${JSON.stringify(r)}`);
  return r;
}

function block(text: string): ManagedBlock {
  const scan = findManagedBlocks(text);
  if (!scan.ok || scan.block === undefined) throw new Error(`expected one block in ${JSON.stringify(text)}: ${JSON.stringify(scan)}`);
  return scan.block;
}

function bodyLines(body: string): string[] {
  if (body === "") return [];
  const lines = body.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  return lines;
}

describe("postgres/managed-block", () => {
  describe("examples", () => {
    it("appends to an empty file, and removal gives the empty file back", () => {
      const out = str(upsertManagedBlock("", "ssl = on\n", "append"));
      expect(out).to.equal(`${BEGIN_MARKER}\nssl = on\n${END_MARKER}\n`);
      expect(removeManagedBlock(out)).to.equal("");
    });

    it("appends after a file without final newline by adding the separator, and keeps it without final newline", () => {
      const out = str(upsertManagedBlock("a = 1", "ssl = on", "append"));
      expect(out).to.equal(`a = 1\n${BEGIN_MARKER}\nssl = on\n${END_MARKER}`);
      expect(removeManagedBlock(out)).to.equal("a = 1");
    });

    it("appends after a file with final newline without a blank line", () => {
      const out = str(upsertManagedBlock("a = 1\n", "ssl = on\n", "append"));
      expect(out).to.equal(`a = 1\n${BEGIN_MARKER}\nssl = on\n${END_MARKER}\n`);
      expect(removeManagedBlock(out)).to.equal("a = 1\n");
    });

    it("prepends, with the block's own newline", () => {
      const out = str(upsertManagedBlock("local all all peer", "hostssl x", "prepend"));
      expect(out).to.equal(`${BEGIN_MARKER}\nhostssl x\n${END_MARKER}\nlocal all all peer`);
      expect(removeManagedBlock(out)).to.equal("local all all peer");
    });

    it("writes a CRLF block into a CRLF file", () => {
      const out = str(upsertManagedBlock("a = 1\r\nb = 2\r\n", "ssl = on\n", "append"));
      expect(out).to.equal(`a = 1\r\nb = 2\r\n${BEGIN_MARKER}\r\nssl = on\r\n${END_MARKER}\r\n`);
      expect(detectLineEnding("a\r\nb\n")).to.equal("\r\n");
      expect(detectLineEnding("a\nb\r\n")).to.equal("\n");
      expect(removeManagedBlock(out)).to.equal("a = 1\r\nb = 2\r\n");
    });

    it("moves an existing block to the required position and replaces its body", () => {
      const x = `a = 1\n${BEGIN_MARKER}\nold\n${END_MARKER}\nb = 2\n`;
      expect(upsertManagedBlock(x, "new\n", "append")).to.equal(`a = 1\nb = 2\n${BEGIN_MARKER}\nnew\n${END_MARKER}\n`);
      expect(upsertManagedBlock(x, "new\n", "prepend")).to.equal(`${BEGIN_MARKER}\nnew\n${END_MARKER}\na = 1\nb = 2\n`);
    });

    it("removes a hand-placed block in the middle of a file without joining lines", () => {
      expect(removeManagedBlock(`a\n${BEGIN_MARKER}\nx\n${END_MARKER}\nb\n`)).to.equal("a\nb\n");
      expect(removeManagedBlock(`a\n${BEGIN_MARKER}\n${END_MARKER}\r\nb`)).to.equal("a\nb");
    });

    it("renders an empty body as just the two markers", () => {
      expect(upsertManagedBlock("", "", "prepend")).to.equal(`${BEGIN_MARKER}\n${END_MARKER}\n`);
    });

    it("returns the text unchanged when there is no block to remove", () => {
      expect(removeManagedBlock("a\r\nb")).to.equal("a\r\nb");
      expect(removeManagedBlock("")).to.equal("");
    });

    it("treats near-markers as ordinary lines", () => {
      // "marker\r" followed by "\n" IS the marker (a CRLF line), so it is not among the near-markers here.
      for (const near of NEAR_MARKERS.filter((n) => !/^[^\r]*\r$/.test(n))) {
        const text = `a\n${near}\nb\n`;
        const scan = findManagedBlocks(text);
        expect(scan.ok, near).to.equal(true);
        expect(scan.ok && scan.block, near).to.equal(undefined);
        expect(removeManagedBlock(upsertManagedBlock(text, "x", "append") as string), near).to.equal(text);
      }
    });

    it("refuses a body that would contain a marker or a carriage return", () => {
      const r1 = upsertManagedBlock("", `a\n${END_MARKER}\nb`, "append");
      expect(isConfigError(r1) && r1.reason).to.equal("InvalidBlockBody");
      const r2 = upsertManagedBlock("", "a\rb", "append");
      expect(isConfigError(r2) && r2.reason).to.equal("InvalidBlockBody");
    });

    it("reports positions and body of a block", () => {
      const text = `x\r\n${BEGIN_MARKER}\r\none\r\ntwo\r\n${END_MARKER}\r\ny`;
      const b = block(text);
      expect(b).to.deep.include({ beginLine: 2, endLine: 5, eol: "\r\n", start: 3 });
      expect(b.bodyLines).to.deep.equal(["one", "two"]);
      expect(text.slice(b.start, b.end)).to.equal(`${BEGIN_MARKER}\r\none\r\ntwo\r\n${END_MARKER}\r\n`);
    });
  });

  describe("corrupt blocks (hand-edited) are reported, never guessed at", () => {
    const cases: Record<string, string> = {
      "two BEGIN markers": `${BEGIN_MARKER}\na\n${BEGIN_MARKER}\nb\n${END_MARKER}\n`,
      "two complete blocks": `${BEGIN_MARKER}\na\n${END_MARKER}\n${BEGIN_MARKER}\nb\n${END_MARKER}\n`,
      "two END markers": `${BEGIN_MARKER}\na\n${END_MARKER}\n${END_MARKER}\n`,
      "an unterminated block": `a\n${BEGIN_MARKER}\nssl = on\n`,
      "an END without BEGIN": `a\n${END_MARKER}\n`,
      "END before BEGIN": `${END_MARKER}\na\n${BEGIN_MARKER}\n`,
      "an unterminated block in a CRLF file": `a\r\n${BEGIN_MARKER}\r\nssl = on`,
      // Appending our block would add the "\n" that turns this last line into a marker.
      "a marker with a stray CR as the unterminated last line": `a\n${BEGIN_MARKER}\r`,
    };
    for (const [what, text] of Object.entries(cases)) {
      it(`detects ${what}`, () => {
        const scan = findManagedBlocks(text);
        expect(scan.ok).to.equal(false);
        if (scan.ok) return;
        expect(scan.reason).to.equal("ManagedBlockCorrupt");
        expect(scan.message).to.match(/line/);
        expect(scan.markers.length).to.be.greaterThan(0);
        const removed = removeManagedBlock(text);
        expect(isConfigError(removed) && removed.reason).to.equal("ManagedBlockCorrupt");
        const upserted = upsertManagedBlock(text, "x", "append");
        expect(isConfigError(upserted) && upserted.reason).to.equal("ManagedBlockCorrupt");
      });
    }

    it("detects any extra marker inserted into a file with a block (property)", () => {
      fc.assert(
        fc.property(arbBlockFreeText, arbBody, arbPosition, fc.constantFrom(BEGIN_MARKER, END_MARKER), fc.nat(), (x, body, pos, marker, at) => {
          const u = str(upsertManagedBlock(x, body, pos));
          const lines = u.split("\n");
          lines.splice(at % (lines.length + 1), 0, marker);
          const scan = findManagedBlocks(lines.join("\n"));
          expect(scan.ok).to.equal(false);
          expect(!scan.ok && scan.reason).to.equal("ManagedBlockCorrupt");
        }),
        RUNS,
      );
    });
  });

  describe("properties over random files (CRLF, no final newline, unicode, near-markers)", () => {
    it("remove(upsert(x)) === x, byte for byte, for every block-free x", () => {
      fc.assert(
        fc.property(arbBlockFreeText, arbBody, arbPosition, (x, body, pos) => {
          expect(removeManagedBlock(str(upsertManagedBlock(x, body, pos)))).to.equal(x);
        }),
        RUNS,
      );
    });

    it("upsert is idempotent: upsert(upsert(x)) === upsert(x)", () => {
      fc.assert(
        fc.property(arbBlockFreeText, arbBody, arbPosition, (x, body, pos) => {
          const once = str(upsertManagedBlock(x, body, pos));
          expect(upsertManagedBlock(once, body, pos)).to.equal(once);
        }),
        RUNS,
      );
    });

    it("keeps every byte outside the block, and puts the block last (append) or first (prepend)", () => {
      fc.assert(
        fc.property(arbBlockFreeText, arbBody, arbPosition, (x, body, pos) => {
          const u = str(upsertManagedBlock(x, body, pos));
          const b = block(u);
          expect(u.slice(0, b.start) + u.slice(b.end)).to.equal(x);
          if (pos === "append") expect(b.end).to.equal(u.length);
          else expect(b.start).to.equal(0);
          // Nothing but the block's own lines after it (append) / before it (prepend).
          const lines = splitLines(u);
          if (pos === "append") expect(lines[lines.length - 1]?.content).to.equal(END_MARKER);
          else expect(lines[0]?.content).to.equal(BEGIN_MARKER);
          expect(b.bodyLines).to.deep.equal(bodyLines(body));
          expect(b.eol).to.equal(detectLineEnding(x));
        }),
        RUNS,
      );
    });

    it("a block anywhere (hand-moved, admin lines around it) is replaced and moved; other bytes stay", () => {
      fc.assert(
        fc.property(arbBlockFreeText, arbBlockFreeText, arbBody, arbBody, arbPosition, (pre, post, oldBody, newBody, pos) => {
          // Build "pre + block + post" the way an admin edit could leave it.
          const withBlock = str(upsertManagedBlock(pre, oldBody, "append"));
          const sep = withBlock.endsWith("\n") || withBlock === "" ? "" : "\n";
          const x = withBlock + sep + post;
          const scan = findManagedBlocks(x);
          expect(scan.ok).to.equal(true);
          const rest = str(removeManagedBlock(x));
          const u = str(upsertManagedBlock(x, newBody, pos));
          expect(removeManagedBlock(u)).to.equal(rest);
          expect(upsertManagedBlock(u, newBody, pos)).to.equal(u);
          const b = block(u);
          if (pos === "append") expect(b.end).to.equal(u.length);
          else expect(b.start).to.equal(0);
          expect(b.bodyLines).to.deep.equal(bodyLines(newBody));
        }),
        RUNS,
      );
    });

    it("adversarial token soup (markers, lone CR, LF, CRLF glued together): upsert/remove agree whenever the scan is clean", () => {
      const soup = fc
        .array(fc.constantFrom(BEGIN_MARKER, END_MARKER, "\r", "\n", "\r\n", "a", " ", "#"), { maxLength: 14 })
        .map((parts) => parts.join(""));
      fc.assert(
        fc.property(soup, arbBody, arbPosition, (x, body, pos) => {
          const scan = findManagedBlocks(x);
          const u = upsertManagedBlock(x, body, pos);
          if (!scan.ok) {
            expect(isConfigError(u)).to.equal(true);
            return;
          }
          const rest = str(removeManagedBlock(x));
          expect(findManagedBlocks(rest)).to.deep.include({ ok: true, block: undefined });
          expect(removeManagedBlock(str(u))).to.equal(rest);
          expect(upsertManagedBlock(str(u), body, pos)).to.equal(u);
        }),
        RUNS,
      );
    });

    it("scanning never throws, and a successful scan's block span is well-formed", () => {
      fc.assert(
        fc.property(arbText, (x) => {
          const scan = findManagedBlocks(x);
          if (!scan.ok || !scan.block) return;
          const span = x.slice(scan.block.start, scan.block.end);
          expect(span).to.contain(BEGIN_MARKER);
          expect(span).to.contain(END_MARKER);
        }),
        RUNS,
      );
    });
  });
});
