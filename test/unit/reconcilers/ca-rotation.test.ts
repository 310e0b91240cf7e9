import { expect } from "chai";
import { derivePhase, nextRotationStep, unfinishedPromotion, type RotationFacts } from "../../../src/reconcilers/secure-database/ca-rotation-plan";

const HOUR = 3600_000;
const now = new Date("2026-11-23T12:00:00Z");
const ago = (ms: number) => new Date(now.getTime() - ms);
const facts = (f: Partial<RotationFacts>): RotationFacts => ({ phase: "Overlap", now, delayMs: 60_000, server: true, clients: { ready: 2, total: 2, waiting: [] }, ...f });

describe("CA rotation: the phase, from the Secrets", () => {
  it("Idle with the CA alone; Overlap with a different -next; Reissuing while -previous exists", () => {
    expect(derivePhase({ current: "a" }, undefined)).to.equal("Idle");
    expect(derivePhase({ current: "a" }, "Idle")).to.equal("Idle");
    expect(derivePhase({ current: "a", next: "b" }, undefined)).to.equal("Overlap");
    expect(derivePhase({ current: "b", previous: "a" }, "Overlap")).to.equal("Reissuing");
    expect(derivePhase({ current: "b", next: "b", previous: "a" }, "Overlap")).to.equal("Reissuing");
  });

  it("Finishing once -previous is gone after Reissuing (also when that status write was lost and redone)", () => {
    expect(derivePhase({ current: "b" }, "Reissuing")).to.equal("Finishing");
    expect(derivePhase({ current: "b" }, "Finishing")).to.equal("Finishing");
  });

  it("finishes a promotion a crash interrupted, in order", () => {
    expect(unfinishedPromotion({ current: "a", next: "b", previous: "a" })).to.deep.equal(["replaceCurrent", "deleteNext"]);
    expect(unfinishedPromotion({ current: "b", next: "b", previous: "a" })).to.deep.equal(["deleteNext"]);
    expect(unfinishedPromotion({ current: "a", next: "b" })).to.deep.equal([]);
    expect(unfinishedPromotion({ current: "b", previous: "a" })).to.deep.equal([]);
  });
});

describe("CA rotation: the next step", () => {
  it("Idle starts only with a trigger", () => {
    expect(nextRotationStep(facts({ phase: "Idle" })).action).to.equal("none");
    expect(nextRotationStep(facts({ phase: "Idle", trigger: "asked" }))).to.deep.equal({ action: "start", message: "starting a CA rotation: asked" });
  });

  it("Overlap waits for the server and for every client, saying who it waits for", () => {
    const step = nextRotationStep(facts({ server: false, clients: { ready: 1, total: 3, waiting: ["cast/a", "cast/b"] } }));
    expect(step.action).to.equal("none");
    expect(step.message).to.equal(
      "Overlap: waiting for the server to accept a client certificate from the new CA (it must load the new trust bundle and CRL) and 2 of 3 client Secret(s) to hold the new CA in its trust bundle (cast/a, cast/b)",
    );
    expect(step.readySince).to.equal(undefined);
    expect(step.requeueAt).to.deep.equal(new Date(now.getTime() + 2000));
  });

  it("then waits propagationDelay from the moment all were ready, and only then promotes", () => {
    const first = nextRotationStep(facts({}));
    expect(first).to.deep.include({ action: "none", readySince: now, requeueAt: new Date(now.getTime() + 60_000) });
    expect(first.message).to.contain("waiting until 2026-11-23T12:01:00.000Z (propagationDelay 60 s)");
    expect(nextRotationStep(facts({ readySince: ago(59_000) })).action).to.equal("none");
    expect(nextRotationStep(facts({ readySince: ago(60_000) }))).to.deep.include({ action: "promote", readySince: ago(60_000) });
  });

  it("Reissuing retires the old CA once the server and every client hold leaves of the new one, after the delay", () => {
    expect(nextRotationStep(facts({ phase: "Reissuing", server: false, readySince: ago(HOUR) })).message).to.contain("the server to serve a certificate from the new CA");
    expect(nextRotationStep(facts({ phase: "Reissuing", readySince: ago(60_000) })).action).to.equal("retire");
  });

  it("with no client at all, the server alone decides", () => {
    expect(nextRotationStep(facts({ clients: { ready: 0, total: 0, waiting: [] }, readySince: ago(60_000) })).action).to.equal("promote");
  });

  it("Finishing completes once the server verified, and the kubelet had its propagationDelay to lay the bundle without the old CA down", () => {
    expect(nextRotationStep(facts({ phase: "Finishing", server: false, readySince: ago(HOUR) })).action).to.equal("none");
    const first = nextRotationStep(facts({ phase: "Finishing" }));
    expect(first).to.deep.include({ action: "none", readySince: now, requeueAt: new Date(now.getTime() + 60_000) });
    expect(first.message).to.contain("waiting until 2026-11-23T12:01:00.000Z (propagationDelay 60 s) for the kubelet to lay them down");
    expect(nextRotationStep(facts({ phase: "Finishing", readySince: ago(59_000) })).action).to.equal("none");
    expect(nextRotationStep(facts({ phase: "Finishing", readySince: ago(60_000) }))).to.deep.include({ action: "complete", readySince: ago(60_000) });
  });
});

