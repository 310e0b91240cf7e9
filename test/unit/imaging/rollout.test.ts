import { expect } from "chai";
import type { Workload, WorkloadRolloutStatus } from "../../../src/imaging/pod-template";
import { rolloutState } from "../../../src/imaging/rollout";

/** A workload at `generation` wanting `replicas` (undefined: the API's default of 1) with the controller's status. */
function workload(generation: number, replicas: number | undefined, status: WorkloadRolloutStatus | undefined): Workload {
  return { metadata: { name: "w", generation }, spec: replicas === undefined ? {} : { replicas }, ...(status ? { status } : {}) };
}

const deadline = (message?: string) => ({
  type: "Progressing",
  status: "False",
  reason: "ProgressDeadlineExceeded",
  ...(message ? { message } : {}),
});

describe("rolloutState: Deployment (what kubectl rollout status waits for)", () => {
  const done: WorkloadRolloutStatus = {
    observedGeneration: 3,
    replicas: 2,
    updatedReplicas: 2,
    readyReplicas: 2,
    availableReplicas: 2,
    conditions: [{ type: "Progressing", status: "True", reason: "NewReplicaSetAvailable" }, { type: "Available", status: "True" }],
  };

  it("Complete when observed, all updated, no old pods and all available", () => {
    expect(rolloutState("Deployment", workload(3, 2, done))).to.deep.equal({ state: "Complete" });
  });

  it("Progressing while the controller has not seen the generation (also with no status at all)", () => {
    expect(rolloutState("Deployment", workload(4, 2, done))).to.deep.equal({
      state: "Progressing",
      message: "the Deployment controller has not yet seen generation 4",
    });
    expect(rolloutState("Deployment", workload(1, 2, undefined)).state).to.equal("Progressing");
  });

  it("Progressing with fewer updated pods than wanted", () => {
    expect(rolloutState("Deployment", workload(3, 2, { ...done, updatedReplicas: 1, replicas: 3 }))).to.deep.equal({
      state: "Progressing",
      message: "1 of 2 pods updated",
    });
  });

  it("Progressing while old pods are still terminating", () => {
    expect(rolloutState("Deployment", workload(3, 2, { ...done, replicas: 3 }))).to.deep.equal({
      state: "Progressing",
      message: "1 old pod(s) still terminating",
    });
  });

  it("Progressing while updated pods are not yet available", () => {
    expect(rolloutState("Deployment", workload(3, 2, { ...done, availableReplicas: 1, readyReplicas: 1 }))).to.deep.equal({
      state: "Progressing",
      message: "1 of 2 updated pods available",
    });
  });

  it("Stalled once the progress deadline is exceeded, with the controller's message or a default", () => {
    const stalled = { ...done, updatedReplicas: 1, availableReplicas: 1, conditions: [deadline('ReplicaSet "w-7d4" has timed out progressing.')] };
    expect(rolloutState("Deployment", workload(3, 2, stalled))).to.deep.equal({
      state: "Stalled",
      message: 'rollout stalled: ReplicaSet "w-7d4" has timed out progressing.',
    });
    expect(rolloutState("Deployment", workload(3, 2, { ...stalled, conditions: [deadline()] }))).to.deep.equal({
      state: "Stalled",
      message: "rollout stalled: progress deadline exceeded",
    });
  });

  it("a stale deadline condition does not stall a generation the controller has not seen yet", () => {
    expect(rolloutState("Deployment", workload(4, 2, { ...done, conditions: [deadline("old")] })).state).to.equal("Progressing");
  });

  it("only ProgressDeadlineExceeded stalls (a False Progressing of another reason does not)", () => {
    const other = { ...done, conditions: [{ type: "Progressing", status: "False", reason: "SomethingElse" }] };
    expect(rolloutState("Deployment", workload(3, 2, other))).to.deep.equal({ state: "Complete" });
    const unknown = { ...done, conditions: [{ type: "Progressing", status: "Unknown", reason: "ProgressDeadlineExceeded" }] };
    expect(rolloutState("Deployment", workload(3, 2, unknown))).to.deep.equal({ state: "Complete" });
  });

  it("replicas 0: Complete once observed and the old pods are gone", () => {
    expect(rolloutState("Deployment", workload(2, 0, { observedGeneration: 2 }))).to.deep.equal({ state: "Complete" });
    expect(rolloutState("Deployment", workload(2, 0, { observedGeneration: 2, replicas: 1 }))).to.deep.equal({
      state: "Progressing",
      message: "1 old pod(s) still terminating",
    });
  });

  it("no spec.replicas means the API's default of 1", () => {
    expect(rolloutState("Deployment", workload(1, undefined, { observedGeneration: 1 }))).to.deep.equal({
      state: "Progressing",
      message: "0 of 1 pods updated",
    });
  });
});

describe("rolloutState: StatefulSet", () => {
  const done: WorkloadRolloutStatus = {
    observedGeneration: 5,
    replicas: 2,
    updatedReplicas: 2,
    readyReplicas: 2,
    availableReplicas: 2,
    currentRevision: "console-analysis-node-core-7f9c",
    updateRevision: "console-analysis-node-core-7f9c",
  };

  it("Complete when observed, at one revision and all pods ready", () => {
    expect(rolloutState("StatefulSet", workload(5, 2, done))).to.deep.equal({ state: "Complete" });
  });

  it("Progressing while the controller has not seen the generation", () => {
    expect(rolloutState("StatefulSet", workload(6, 2, done))).to.deep.equal({
      state: "Progressing",
      message: "the StatefulSet controller has not yet seen generation 6",
    });
  });

  it("Progressing while current and update revisions differ, naming the new revision", () => {
    const rolling = { ...done, updatedReplicas: 1, updateRevision: "console-analysis-node-core-5b2d" };
    expect(rolloutState("StatefulSet", workload(5, 2, rolling))).to.deep.equal({
      state: "Progressing",
      message: "1 of 2 pods at revision console-analysis-node-core-5b2d",
    });
  });

  it("Progressing while fewer pods are ready than wanted", () => {
    expect(rolloutState("StatefulSet", workload(5, 2, { ...done, readyReplicas: 1 }))).to.deep.equal({
      state: "Progressing",
      message: "1 of 2 pods ready",
    });
  });

  it("replicas 0: Complete once observed", () => {
    expect(rolloutState("StatefulSet", workload(2, 0, { observedGeneration: 2, currentRevision: "r1", updateRevision: "r1" }))).to.deep.equal({
      state: "Complete",
    });
  });

  it("never Stalled: StatefulSets have no progress deadline, a Deployment's condition shape changes nothing", () => {
    const odd = { ...done, readyReplicas: 1, conditions: [deadline("not a StatefulSet condition")] };
    expect(rolloutState("StatefulSet", workload(5, 2, odd))).to.deep.equal({ state: "Progressing", message: "1 of 2 pods ready" });
  });
});
