import { expect } from "chai";
import { setCondition } from "../../../src/kube/conditions";
import { encodeSecretData, secretHasData } from "../../../src/kube/secrets";

describe("setCondition", () => {
  const t1 = new Date("2026-11-23T12:00:00Z");
  const t2 = new Date("2026-11-23T13:00:00Z");
  it("keeps lastTransitionTime while the status holds, moves it when the status changes", () => {
    const a = setCondition([], { type: "Ready", status: "False", reason: "Pending", message: "m" }, 1, t1);
    const b = setCondition(a, { type: "Ready", status: "False", reason: "Unreachable", message: "n" }, 2, t2);
    expect(b[0]).to.deep.equal({
      type: "Ready",
      status: "False",
      reason: "Unreachable",
      message: "n",
      lastTransitionTime: "2026-11-23T12:00:00Z",
      observedGeneration: 2,
    });
    const c = setCondition(b, { type: "Ready", status: "True", reason: "Secured", message: "o" }, 2, t2);
    expect(c[0]?.lastTransitionTime).to.equal("2026-11-23T13:00:00Z");
  });
  it("keeps the other conditions, sorted by type", () => {
    const a = setCondition([], { type: "Verified", status: "True", reason: "Verified", message: "" }, 1, t1);
    const b = setCondition(a, { type: "CAReady", status: "True", reason: "CAGenerated", message: "" }, 1, t1);
    expect(b.map((c) => c.type)).to.deep.equal(["CAReady", "Verified"]);
  });
});

describe("Secret data", () => {
  it("compares what is stored with what we would write, key order aside", () => {
    const data = { b: Buffer.from("2"), a: Buffer.from("1") };
    expect(secretHasData({ metadata: { name: "s" }, data: encodeSecretData(data) }, { a: Buffer.from("1"), b: Buffer.from("2") })).to.equal(true);
    expect(secretHasData({ metadata: { name: "s" }, data: { ...encodeSecretData(data), extra: "eA==" } }, data)).to.equal(false);
    expect(secretHasData(undefined, data)).to.equal(false);
  });
});
