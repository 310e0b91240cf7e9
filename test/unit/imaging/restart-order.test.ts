import { expect } from "chai";
import fc from "fast-check";
import { restartTurns, type Consumer, type ConsumerTurn } from "../../../src/imaging/restart-order";
import type { RolloutState } from "../../../src/imaging/rollout";

const CP = "Deployment console-control-panel";
const ETL = "Deployment viewer-etl";
const AN = "StatefulSet console-analysis-node-core";
const NEW = "a1b2c3d4e5f60718";
const OLD = "0000111122223333";

const complete: RolloutState = { state: "Complete" };
const progressing = (message = "1 of 2 pods updated"): RolloutState => ({ state: "Progressing", message });
const stalled = (message = "rollout stalled: progress deadline exceeded"): RolloutState => ({ state: "Stalled", message });
const consumer = (id: string, material: string | undefined, rollout: RolloutState = complete): Consumer =>
  material === undefined ? { id, rollout } : { id, material, rollout };

function turns(consumers: Consumer[], desired = NEW): Record<string, ConsumerTurn> {
  return Object.fromEntries(restartTurns(consumers, desired));
}

const restartingNow = (t: Record<string, ConsumerTurn>) => Object.keys(t).filter((id) => t[id]!.state === "Restarting" && (t[id] as { restartNow: boolean }).restartNow);

describe("restartTurns", () => {
  it("no consumers, no turns", () => {
    expect(restartTurns([], NEW).size).to.equal(0);
  });

  it("first time (no annotation anywhere): exactly the first by id restarts now, the others wait for it", () => {
    const t = turns([consumer(AN, undefined), consumer(ETL, undefined), consumer(CP, undefined)]);
    expect(t).to.deep.equal({
      [CP]: { state: "Restarting", message: "restarting (1 of 3) so its pods copy the new material", restartNow: true, stalled: false },
      [ETL]: { state: "WaitingForRestart", message: `waits (2 of 3) for ${CP} to finish rolling out` },
      [AN]: { state: "WaitingForRestart", message: `waits (3 of 3) for ${CP} to finish rolling out` },
    });
  });

  it("the one restarted for the desired material, still rolling out: Restarting, not again; everybody else waits on it", () => {
    const t = turns([consumer(CP, NEW, progressing("1 of 2 updated pods available")), consumer(ETL, OLD), consumer(AN, OLD)]);
    expect(t[CP]).to.deep.equal({
      state: "Restarting",
      message: "restarted (1 of 3): 1 of 2 updated pods available",
      restartNow: false,
      stalled: false,
    });
    expect(t[ETL]).to.deep.equal({ state: "WaitingForRestart", message: `waits (2 of 3) for ${CP} to finish rolling out` });
    expect(t[AN]).to.deep.equal({ state: "WaitingForRestart", message: `waits (3 of 3) for ${CP} to finish rolling out` });
  });

  it("once its rollout is complete it is Delivered and the next one restarts", () => {
    const t = turns([consumer(CP, NEW), consumer(ETL, OLD), consumer(AN, OLD)]);
    expect(t[CP]).to.deep.equal({ state: "Delivered", message: `its pods started with the current material (${NEW})` });
    expect(restartingNow(t)).to.deep.equal([ETL]);
    expect(t[AN]!.state).to.equal("WaitingForRestart");
    expect(t[AN]!.message).to.contain(ETL);
  });

  it("all delivered: nobody restarts", () => {
    const t = turns([consumer(CP, NEW), consumer(ETL, NEW), consumer(AN, NEW)]);
    expect(Object.values(t).map((x) => x.state)).to.deep.equal(["Delivered", "Delivered", "Delivered"]);
  });

  it("a rollout of somebody else's (a helm upgrade, a later consumer) holds everybody back", () => {
    const t = turns([consumer(CP, OLD), consumer(ETL, NEW), consumer(AN, NEW, progressing("1 of 2 pods ready"))]);
    expect(restartingNow(t)).to.deep.equal([]);
    expect(t[CP]).to.deep.equal({ state: "WaitingForRestart", message: `waits (1 of 3) for ${AN} to finish rolling out` });
    expect(t[ETL]!.state).to.equal("Delivered");
    expect(t[AN]).to.deep.include({ state: "Restarting", restartNow: false });
  });

  it("a consumer that is itself behind and not complete waits for its own rollout", () => {
    const t = turns([consumer(CP, NEW), consumer(ETL, OLD, progressing("0 of 1 pods updated")), consumer(AN, OLD)]);
    expect(t[ETL]).to.deep.equal({ state: "WaitingForRestart", message: "waits (2 of 3) for its own rollout to finish (0 of 1 pods updated)" });
    expect(t[AN]).to.deep.equal({ state: "WaitingForRestart", message: `waits (3 of 3) for ${ETL} to finish rolling out` });
    expect(restartingNow(t)).to.deep.equal([]);
  });

  it("an earlier consumer waiting on a later one's rollout names that one", () => {
    const t = turns([consumer(CP, OLD), consumer(ETL, OLD, progressing())]);
    expect(t[CP]!.message).to.equal(`waits (1 of 2) for ${ETL} to finish rolling out`);
    expect(t[ETL]!.message).to.contain("its own rollout");
  });

  it("flags a stalled restart, and keeps the others waiting on it", () => {
    const t = turns([consumer(CP, NEW, stalled('rollout stalled: ReplicaSet "x" has timed out progressing.')), consumer(ETL, OLD)]);
    expect(t[CP]).to.deep.equal({
      state: "Restarting",
      message: 'restarted (1 of 2): rollout stalled: ReplicaSet "x" has timed out progressing.',
      restartNow: false,
      stalled: true,
    });
    expect(t[ETL]!.state).to.equal("WaitingForRestart");
  });

  it("orders by id (code units), whatever the input order", () => {
    const cs = [consumer(AN, undefined), consumer(ETL, undefined), consumer(CP, undefined), consumer("Deployment Zeta", undefined)];
    const first = turns(cs);
    expect(turns([...cs].reverse())).to.deep.equal(first);
    expect(turns([cs[1]!, cs[3]!, cs[0]!, cs[2]!])).to.deep.equal(first);
    // "Deployment Zeta" < "Deployment console-…" (upper case first): it restarts first.
    expect(restartingNow(first)).to.deep.equal(["Deployment Zeta"]);
    expect([...restartTurns(cs, NEW).keys()]).to.deep.equal(["Deployment Zeta", CP, ETL, AN]);
  });

  describe("properties over random consumers (fast-check, fixed seed)", () => {
    const ids = [CP, ETL, AN, "Deployment a", "Deployment b", "StatefulSet s", "StatefulSet t", "Deployment Z"];
    const arbRollout: fc.Arbitrary<RolloutState> = fc.oneof(
      fc.constant(complete),
      fc.constant(complete),
      fc.string({ maxLength: 8 }).map((m) => progressing(m)),
      fc.string({ maxLength: 8 }).map((m) => stalled(m)),
    );
    const arbConsumers = fc.uniqueArray(
      fc.record({ id: fc.constantFrom(...ids), material: fc.constantFrom(undefined, OLD, NEW), rollout: arbRollout }),
      { selector: (c) => c.id, maxLength: ids.length },
    ).map((cs) => cs.map((c) => consumer(c.id, c.material, c.rollout)));
    const RUNS = { seed: 20260517, numRuns: 2000 };

    it("never two restart now, and one restarts only when every rollout is complete and every earlier consumer has the material", () => {
      fc.assert(
        fc.property(arbConsumers, (cs) => {
          const t = turns(cs);
          const now = restartingNow(t);
          expect(now.length).to.be.at.most(1);
          for (const id of now) {
            const c = cs.find((x) => x.id === id)!;
            expect(c.material).to.not.equal(NEW);
            expect(cs.every((x) => x.rollout.state === "Complete")).to.equal(true);
            expect(cs.filter((x) => x.id < id).every((x) => x.material === NEW)).to.equal(true);
          }
        }),
        RUNS,
      );
    });

    it("makes progress: with every rollout complete, the first consumer without the material restarts", () => {
      fc.assert(
        fc.property(arbConsumers, (cs) => {
          const t = turns(cs);
          const behind = cs.filter((c) => c.material !== NEW).map((c) => c.id).sort();
          if (cs.every((c) => c.rollout.state === "Complete") && behind.length > 0) expect(restartingNow(t)).to.deep.equal([behind[0]]);
          else expect(restartingNow(t)).to.deep.equal([]);
        }),
        RUNS,
      );
    });

    it("one turn per consumer, its state read from its material and rollout; waits name who they wait for", () => {
      fc.assert(
        fc.property(arbConsumers, (cs) => {
          const t = turns(cs);
          expect(Object.keys(t).sort()).to.deep.equal(cs.map((c) => c.id).sort());
          const rolling = cs.filter((c) => c.rollout.state !== "Complete").map((c) => c.id);
          for (const c of cs) {
            const turn = t[c.id]!;
            if (c.material === NEW) {
              if (c.rollout.state === "Complete") expect(turn.state).to.equal("Delivered");
              else expect(turn).to.deep.include({ state: "Restarting", restartNow: false, stalled: c.rollout.state === "Stalled" });
            } else if (turn.state === "WaitingForRestart") {
              const named = [...rolling, ...restartingNow(t)].some((id) => turn.message.includes(`for ${id} to finish`));
              expect(named || turn.message.includes("its own rollout"), turn.message).to.equal(true);
            } else {
              expect(turn).to.deep.include({ state: "Restarting", restartNow: true, stalled: false });
            }
          }
        }),
        RUNS,
      );
    });

    it("does not depend on the order of the input", () => {
      fc.assert(
        fc.property(arbConsumers, fc.infiniteStream(fc.nat()), (cs, noise) => {
          const shuffled = cs.map((c) => ({ c, k: noise.next().value })).sort((a, b) => a.k - b.k).map((x) => x.c);
          expect(turns(shuffled)).to.deep.equal(turns(cs));
        }),
        RUNS,
      );
    });

    it("driven to the end (restart, roll out, repeat), delivers everyone, one restart at a time", () => {
      fc.assert(
        fc.property(arbConsumers, (initial) => {
          // Settle rollouts first: a restart's pods come up, whatever was in flight finishes.
          let cs: Consumer[] = initial.map((c) => ({ ...c, rollout: complete }));
          for (let step = 0; step <= ids.length; step++) {
            const now = restartingNow(turns(cs));
            if (now.length === 0) break;
            expect(now).to.have.length(1);
            // The operator stamps the material: the controller starts rolling out, nobody else may restart meanwhile.
            cs = cs.map((c) => (c.id === now[0] ? { ...c, material: NEW, rollout: progressing() } : c));
            expect(restartingNow(turns(cs))).to.deep.equal([]);
            cs = cs.map((c) => ({ ...c, rollout: complete }));
          }
          expect(Object.values(turns(cs)).every((x) => x.state === "Delivered")).to.equal(true);
        }),
        RUNS,
      );
    });
  });
});
