import { expect } from "chai";
import { OperatorMetrics } from "../../../src/observability/metrics";
import { TemporaryError, TerminalError } from "../../../src/runtime/errors";

describe("OperatorMetrics", () => {
  it("counts failed reconciles by kind and by the failure's reason", async () => {
    const metrics = new OperatorMetrics(() => []);
    const failing = (err: Error) => metrics.instrument("SecureDatabase", async () => Promise.reject(err))("cast/db");
    const errors = [
      new TemporaryError("Unreachable", "down"),
      new TemporaryError("Unreachable", "still down"),
      new TerminalError("InvalidSpec", "bad"),
      new Error("409 Conflict"),
    ];
    for (const err of errors) await failing(err).then(
      () => expect.fail("the error must reach the queue"),
      (e: unknown) => expect(e).to.equal(err),
    );
    await metrics.instrument("SecureDatabase", async () => ({}))("cast/db");
    const counted = await metrics.registry.getSingleMetric("imaging_mtls_reconcile_errors_total")!.get();
    const series = counted.values.map((v) => [v.labels.kind, v.labels.reason, v.value]);
    expect(series).to.have.deep.members([
      ["SecureDatabase", "Unreachable", 2],
      ["SecureDatabase", "InvalidSpec", 1],
      ["SecureDatabase", "ReconcileError", 1],
    ]);
    const runs = await metrics.registry.getSingleMetric("imaging_mtls_reconcile_total")!.get();
    expect(runs.values.map((v) => [v.labels.kind, v.value])).to.deep.equal([["SecureDatabase", 5]]);
  });
});
