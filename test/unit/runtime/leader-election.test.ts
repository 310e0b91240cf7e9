import { expect } from "chai";
import { leaderLeaseSpec, leaseAction, microTime, observe, validateTimings, type Lease } from "../../../src/runtime/leader-election";

const lease = (holder: string, renewTime = "2026-11-23T10:00:00.000000Z", leaseDurationSeconds = 15): Lease => ({
  metadata: { name: "imaging-db-mtls-operator", namespace: "ops", resourceVersion: "7" },
  spec: { holderIdentity: holder, leaseDurationSeconds, renewTime, acquireTime: renewTime, leaseTransitions: 2 },
});

describe("leader election decisions", () => {
  it("creates a missing lease", () => {
    expect(leaseAction(undefined, "me", undefined, 0)).to.deep.equal({ action: "create" });
  });

  it("renews its own lease", () => {
    const l = lease("me");
    expect(leaseAction(l, "me", observe(undefined, l, 0), 0)).to.deep.equal({ action: "renew" });
  });

  it("takes over a released lease at once", () => {
    const l = lease("");
    expect(leaseAction(l, "me", observe(undefined, l, 0), 0)).to.deep.equal({ action: "acquire", reason: "Released" });
  });

  it("waits for another holder's lease to go unrenewed for its whole duration on our own clock", () => {
    const l = lease("other");
    const seen = observe(undefined, l, 1_000);
    expect(leaseAction(l, "me", seen, 1_000)).to.deep.equal({ action: "wait", holder: "other", expiresInMs: 15_000 });
    expect(leaseAction(l, "me", observe(seen, l, 15_999), 15_999)).to.deep.equal({ action: "wait", holder: "other", expiresInMs: 1 });
    expect(leaseAction(l, "me", observe(seen, l, 16_000), 16_000)).to.deep.equal({ action: "acquire", reason: "Expired" });
  });

  it("restarts the wait whenever the holder renews, whatever the holder's clock says", () => {
    // The holder's renewTime is far in the past by our clock (skew): only the change counts.
    const first = lease("other", "2001-01-01T00:00:00.000000Z");
    const seen = observe(undefined, first, 1_000);
    const renewed = lease("other", "2001-01-01T00:00:02.000000Z");
    const reseen = observe(seen, renewed, 14_000);
    expect(reseen?.observedAtMs).to.equal(14_000);
    expect(leaseAction(renewed, "me", reseen, 20_000)).to.deep.include({ action: "wait" });
    expect(observe(reseen, renewed, 25_000)).to.equal(reseen);
  });

  it("writes a lease that names us, keeps acquireTime on renewal and counts transitions on takeover", () => {
    const now = new Date("2026-11-23T10:00:05.123Z");
    const renewed = leaderLeaseSpec(lease("me").spec, "me", 15, now);
    expect(renewed).to.deep.equal({ holderIdentity: "me", leaseDurationSeconds: 15, acquireTime: "2026-11-23T10:00:00.000000Z", renewTime: "2026-11-23T10:00:05.123000Z", leaseTransitions: 2 });
    const taken = leaderLeaseSpec(lease("other").spec, "me", 15, now);
    expect(taken.acquireTime).to.equal("2026-11-23T10:00:05.123000Z");
    expect(taken.leaseTransitions).to.equal(3);
    expect(leaderLeaseSpec(undefined, "me", 15, now).leaseTransitions).to.equal(0);
  });

  it("writes MicroTime with six fractional digits", () => {
    expect(microTime(new Date("2026-11-23T10:00:00.007Z"))).to.equal("2026-11-23T10:00:00.007000Z");
  });

  it("refuses timings where a standby could take over before the leader gives up", () => {
    expect(validateTimings({ leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 })).to.equal(undefined);
    expect(validateTimings({ leaseDurationMs: 10_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 })).to.match(/lease duration must be longer than the renew deadline/);
    expect(validateTimings({ leaseDurationMs: 15_000, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 })).to.match(/renew deadline must be longer than the retry period/);
    expect(validateTimings({ leaseDurationMs: 15_500, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 })).to.match(/whole seconds/);
  });
});
