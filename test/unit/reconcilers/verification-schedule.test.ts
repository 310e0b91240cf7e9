import { expect } from "chai";
import { failureBackoffMs, verificationDue, type VerificationHistory } from "../../../src/reconcilers/verification-schedule";

const now = new Date("2026-11-23T12:00:00Z");
const ago = (ms: number): string => new Date(now.getTime() - ms).toISOString();
const at = (msFromNow: number): Date => new Date(now.getTime() + msFromNow);
const HOUR = 3_600_000;

describe("verificationDue", () => {
  it("probes now when never attempted", () => {
    expect(verificationDue({}, "01", HOUR, now)).to.deep.equal({ probe: true, nextAt: now });
    // half a history counts as none
    expect(verificationDue({ lastAttemptTime: ago(1000) }, "01", HOUR, now)).to.deep.equal({ probe: true, nextAt: now });
    expect(verificationDue({ lastSucceeded: true, verifiedSerial: "01" }, "01", HOUR, now)).to.deep.equal({ probe: true, nextAt: now });
  });

  describe("after a success", () => {
    const ok = (sinceAttemptMs: number, serial = "01"): VerificationHistory => ({ lastAttemptTime: ago(sinceAttemptMs), lastSuccessTime: ago(sinceAttemptMs), lastSucceeded: true, verifiedSerial: serial });

    it("with the same serial: not before lastAttempt + interval", () => {
      expect(verificationDue(ok(1000), "01", HOUR, now)).to.deep.equal({ probe: false, nextAt: at(HOUR - 1000) });
      expect(verificationDue(ok(HOUR - 1), "01", HOUR, now)).to.deep.equal({ probe: false, nextAt: at(1) });
    });

    it("with the same serial: probes once the interval has passed", () => {
      expect(verificationDue(ok(HOUR), "01", HOUR, now)).to.deep.equal({ probe: true, nextAt: now });
      expect(verificationDue(ok(HOUR + 5000), "01", HOUR, now)).to.deep.equal({ probe: true, nextAt: now });
    });

    it("with a different serial (the certificate changed): probes now", () => {
      expect(verificationDue(ok(1000, "01"), "02", HOUR, now)).to.deep.equal({ probe: true, nextAt: now });
      expect(verificationDue({ ...ok(1000), verifiedSerial: undefined }, "01", HOUR, now)).to.deep.equal({ probe: true, nextAt: now });
    });
  });

  describe("after a failure", () => {
    it("waits the backoff from the last attempt, whatever the serial", () => {
      // never succeeded, failing for 240 s at the attempt: 60 s
      const failed: VerificationHistory = { lastAttemptTime: ago(10_000), lastSucceeded: false, failingSince: ago(250_000) };
      expect(verificationDue(failed, "01", HOUR, now)).to.deep.equal({ probe: false, nextAt: at(50_000) });
      expect(verificationDue({ ...failed, verifiedSerial: "00" }, "01", HOUR, now)).to.deep.equal({ probe: false, nextAt: at(50_000) });
    });

    it("retries once the backoff has passed", () => {
      expect(verificationDue({ lastAttemptTime: ago(60_000), lastSucceeded: false, failingSince: ago(400_000) }, "01", HOUR, now)).to.deep.equal({ probe: true, nextAt: now });
      // last success 100 s ago → backoff 25 s; the attempt was 30 s ago
      expect(verificationDue({ lastAttemptTime: ago(30_000), lastSuccessTime: ago(100_000), lastSucceeded: false }, "01", HOUR, now)).to.deep.equal({ probe: true, nextAt: now });
    });

    it("uses the short backoff right after a success went bad", () => {
      // last success 3 s before the attempt → quarter 0.75 s → minimum 1 s; attempt 0.5 s ago → next in 0.5 s
      expect(verificationDue({ lastAttemptTime: ago(500), lastSuccessTime: ago(3500), lastSucceeded: false, verifiedSerial: "01" }, "01", HOUR, now)).to.deep.equal({ probe: false, nextAt: at(500) });
      // last success 8 s before the attempt → quarter 2 s; attempt 1 s ago → next in 1 s
      expect(verificationDue({ lastAttemptTime: ago(1000), lastSuccessTime: ago(9000), lastSucceeded: false, verifiedSerial: "01" }, "01", HOUR, now)).to.deep.equal({ probe: false, nextAt: at(1000) });
    });

    it("never waits longer than the interval", () => {
      expect(verificationDue({ lastAttemptTime: ago(1000), lastSucceeded: false, failingSince: ago(HOUR) }, "01", 20_000, now)).to.deep.equal({ probe: false, nextAt: at(19_000) });
    });

    it("retries a first failure (a server still restarting) after a second, not a minute", () => {
      expect(verificationDue({ lastAttemptTime: ago(200), lastSucceeded: false }, "01", HOUR, now)).to.deep.equal({ probe: false, nextAt: at(800) });
      expect(verificationDue({ lastAttemptTime: ago(200), lastSucceeded: false, failingSince: ago(200) }, "01", HOUR, now)).to.deep.equal({ probe: false, nextAt: at(800) });
      expect(verificationDue({ lastAttemptTime: ago(1000), lastSucceeded: false, failingSince: ago(1000) }, "01", HOUR, now).probe).to.equal(true);
    });
  });
});

describe("failureBackoffMs", () => {
  it("is at least 1 s", () => {
    expect(failureBackoffMs({ lastSuccessTime: ago(0) }, HOUR, now)).to.equal(1000);
    expect(failureBackoffMs({ lastSuccessTime: ago(4000) }, HOUR, now)).to.equal(1000);
    expect(failureBackoffMs({ lastSuccessTime: ago(8000) }, HOUR, now)).to.equal(2000);
    expect(failureBackoffMs({ lastSuccessTime: ago(20_000) }, HOUR, now)).to.equal(5000);
  });

  it("grows as a quarter of the time since the last success", () => {
    expect(failureBackoffMs({ lastSuccessTime: ago(20_004) }, HOUR, now)).to.equal(5001);
    expect(failureBackoffMs({ lastSuccessTime: ago(100_000) }, HOUR, now)).to.equal(25_000);
    expect(failureBackoffMs({ lastSuccessTime: ago(200_000) }, HOUR, now)).to.equal(50_000);
  });

  it("is capped at 60 s", () => {
    expect(failureBackoffMs({ lastSuccessTime: ago(240_000) }, HOUR, now)).to.equal(60_000);
    expect(failureBackoffMs({ lastSuccessTime: ago(24 * HOUR) }, HOUR, now)).to.equal(60_000);
  });

  it("is capped at the interval, even below the 1 s minimum", () => {
    expect(failureBackoffMs({ lastSuccessTime: ago(100_000) }, 10_000, now)).to.equal(10_000);
    expect(failureBackoffMs({ lastSuccessTime: ago(0) }, 500, now)).to.equal(500);
  });

  it("when it never succeeded, grows from when it started failing; 1 s when that is unknown", () => {
    expect(failureBackoffMs({}, HOUR, now)).to.equal(1000);
    expect(failureBackoffMs({ lastAttemptTime: ago(1000), lastSucceeded: false }, HOUR, now)).to.equal(1000);
    expect(failureBackoffMs({ lastAttemptTime: ago(1000), failingSince: ago(101_000) }, HOUR, now)).to.equal(25_000);
    expect(failureBackoffMs({ lastAttemptTime: ago(1000), failingSince: ago(HOUR) }, HOUR, now)).to.equal(60_000);
    expect(failureBackoffMs({ failingSince: ago(HOUR) }, 30_000, now)).to.equal(30_000);
  });

  it("prefers the last success over failingSince", () => {
    expect(failureBackoffMs({ lastAttemptTime: ago(0), lastSuccessTime: ago(20_000), failingSince: ago(HOUR) }, HOUR, now)).to.equal(5000);
  });

  it("measures the outage up to the last attempt, so the retry time holds still as time passes", () => {
    const history = { lastAttemptTime: ago(1000), lastSuccessTime: ago(100_000), lastSucceeded: false };
    expect(failureBackoffMs(history, HOUR, now)).to.equal(24_750);
    expect(failureBackoffMs(history, HOUR, new Date(now.getTime() + 20_000))).to.equal(24_750);
    const first = verificationDue(history, "ab", HOUR, now);
    expect(first).to.deep.equal({ probe: false, nextAt: new Date(now.getTime() - 1000 + 24_750) });
    expect(verificationDue(history, "ab", HOUR, first.nextAt).probe).to.equal(true);
  });
});

describe("failureBackoffMs with a larger minimum (login checks)", () => {
  const now = new Date("2026-11-23T12:00:00Z");
  it("never retries sooner than the minimum, and still grows and caps the same way", () => {
    expect(failureBackoffMs({ lastAttemptTime: now.toISOString() }, 3_600_000, now, 5000)).to.equal(5000);
    expect(failureBackoffMs({ lastAttemptTime: now.toISOString(), failingSince: new Date(now.getTime() - 100_000).toISOString() }, 3_600_000, now, 5000)).to.equal(25_000);
    expect(verificationDue({ lastAttemptTime: new Date(now.getTime() - 1000).toISOString(), lastSucceeded: false }, "01", 3_600_000, now, 5000)).to.deep.equal({ probe: false, nextAt: new Date(now.getTime() + 4000) });
  });
});
