import { expect } from "chai";
import { mergePatchOf, type Json } from "../../../src/kube/merge-patch";

/** RFC 7386 section 2, applied as the API server applies a merge patch. */
function applyMergePatch(target: Json, patch: Json): Json {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return patch;
  const out: { [key: string]: Json } = typeof target === "object" && target !== null && !Array.isArray(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k] ?? null, v);
  }
  return out;
}

describe("mergePatchOf: a status write that carries only what changed", () => {
  const before = {
    observedGeneration: 3,
    conditions: [{ type: "Ready", status: "True", reason: "Connected" }],
    certificate: { serialNumber: "01", notAfter: "2027-01-01T00:00:00Z", renewalTime: "2026-12-01T00:00:00Z" },
    verification: { lastSuccessTime: "2026-11-01T00:00:00Z" },
  };

  it("equal documents: an empty patch (nothing to write)", () => {
    expect(mergePatchOf(before, structuredClone(before))).to.deep.equal({});
  });

  it("a changed field deep inside: that field alone; a changed array: the array whole; a removed field: null", () => {
    const after = {
      observedGeneration: 3,
      conditions: [{ type: "Ready", status: "False", reason: "Unreachable" }],
      certificate: { serialNumber: "02", notAfter: "2027-01-01T00:00:00Z" },
    };
    const patch = mergePatchOf(before, after);
    expect(patch).to.deep.equal({
      conditions: [{ type: "Ready", status: "False", reason: "Unreachable" }],
      certificate: { serialNumber: "02", renewalTime: null },
      verification: null,
    });
    expect(applyMergePatch(before, patch)).to.deep.equal(after);
  });

  it("from nothing: the whole document; key order does not make a difference", () => {
    expect(mergePatchOf({}, before)).to.deep.equal(before);
    expect(mergePatchOf({ a: { x: 1, y: 2 } }, { a: { y: 2, x: 1 } })).to.deep.equal({});
  });

  it("an object replaced by a scalar and back, arrays of different length: applied, it gives the target", () => {
    const pairs: [Record<string, Json>, Record<string, Json>][] = [
      [{ a: { b: 1 } }, { a: 5 }],
      [{ a: 5 }, { a: { b: 1 } }],
      [{ a: [1, 2, 3] }, { a: [1, 2] }],
      [{ a: [{ x: 1 }] }, { a: [{ x: 1, y: null }] }],
    ];
    for (const [from, to] of pairs) expect(applyMergePatch(from, mergePatchOf(from, to))).to.deep.equal(to);
  });
});
