import { expect } from "chai";
import { CRD_DURATION_PATTERN, DurationError, formatDuration, isCRDDuration, parseDuration } from "../../../src/api/duration";

describe("api/duration", () => {
  describe("parseDuration", () => {
    const cases: [string, number][] = [
      ["2160h", 2160 * 3_600_000],
      ["87600h", 87600 * 3_600_000],
      ["720h", 720 * 3_600_000],
      ["5m", 300_000],
      ["90s", 90_000],
      ["250ms", 250],
      ["1h30m", 5_400_000],
      ["1h30m15s", 5_415_000],
      ["1m500ms", 60_500],
      ["1.5h", 5_400_000],
      [".5s", 500],
      ["1.s", 1000],
      ["30m1h", 5_400_000], // Go accepts any order
      ["1500us", 1.5],
      ["1500µs", 1.5],
      ["2000000ns", 2],
      ["0", 0],
      ["0s", 0],
      ["+5s", 5000],
      ["-5s", -5000],
    ];
    for (const [input, ms] of cases) {
      it(`parses ${JSON.stringify(input)} as ${ms} ms`, () => {
        expect(parseDuration(input)).to.be.closeTo(ms, 1e-9);
      });
    }

    const bad: [string, RegExp][] = [
      ["", /empty/],
      ["10d", /days are not supported/],
      ["5", /missing unit/],
      ["1h 30m", /unknown unit or character/],
      ["h", /unknown unit|missing number/],
      [".h", /missing number/],
      ["1H", /unknown unit/],
      ["-", /empty/],
      ["1y", /unknown unit/],
      ["3000000h", /out of range/],
    ];
    for (const [input, message] of bad) {
      it(`rejects ${JSON.stringify(input)}`, () => {
        expect(() => parseDuration(input)).to.throw(DurationError, message);
      });
    }

    it("names the input in the error", () => {
      expect(() => parseDuration("10d")).to.throw('invalid duration "10d"');
    });
  });

  describe("isCRDDuration (the form the CRDs accept)", () => {
    for (const ok of ["2160h", "1h30m", "90s", "250ms", "1m500ms", "1h1m1s1ms", "999999h", "0s"]) {
      it(`accepts ${ok}`, () => expect(isCRDDuration(ok)).to.equal(true));
    }
    for (const bad of ["", "h", "1.5h", "30m1h", "1h1h", "1000000h", "10d", "-1h", "1us", " 1h", "1h "]) {
      it(`rejects ${JSON.stringify(bad)}`, () => expect(isCRDDuration(bad)).to.equal(false));
    }
    it("every CRD-form duration parses, and the largest stays within Go's range", () => {
      expect(parseDuration("999999h999999m999999s999999ms")).to.be.below(9_223_372_036_854);
      expect(CRD_DURATION_PATTERN.test("999999h999999m999999s999999ms")).to.equal(true);
    });
  });

  describe("formatDuration", () => {
    const cases: [number, string][] = [
      [0, "0s"],
      [720 * 3_600_000, "720h"],
      [5_400_000, "1h30m"],
      [20_000, "20s"],
      [60_500, "1m500ms"],
      [-5000, "-5s"],
      [1.4, "1ms"],
    ];
    for (const [ms, text] of cases) {
      it(`formats ${ms} ms as ${text}`, () => expect(formatDuration(ms)).to.equal(text));
    }
    it("round-trips through parseDuration", () => {
      for (const ms of [1, 999, 61_001, 3_600_000, 7_777_777_000]) expect(parseDuration(formatDuration(ms))).to.equal(ms);
    });
  });
});
