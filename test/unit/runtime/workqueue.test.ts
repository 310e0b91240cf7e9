import { expect } from "chai";
import { TemporaryError, TerminalError } from "../../../src/runtime/errors";
import { WorkQueue, type ReconcileFailure } from "../../../src/runtime/workqueue";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("WorkQueue", () => {
  it("processes a key queued many times once", async () => {
    const seen: string[] = [];
    const q = new WorkQueue(async (k) => (seen.push(k), {}), { concurrency: 2, baseBackoffMs: 10, maxBackoffMs: 100 });
    for (let i = 0; i < 5; i++) q.add("a");
    q.add("b");
    await q.idle();
    expect(seen.sort()).to.deep.equal(["a", "b"]);
  });

  it("runs keys in the order they arrived, a re-added waiting key keeping its place (20,000 keys)", async () => {
    const seen: string[] = [];
    const q = new WorkQueue(async (k) => (seen.push(k), {}), { concurrency: 1, baseBackoffMs: 10, maxBackoffMs: 100, paused: true });
    const keys = Array.from({ length: 20_000 }, (_, i) => `k${i}`);
    for (const k of keys) q.add(k);
    q.add("k0");
    expect(q.depth).to.equal(20_000);
    q.resume();
    await q.idle();
    expect(seen).to.deep.equal(keys);
  });

  it("never runs one key on two workers, and reruns a key changed while it ran", async () => {
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const q = new WorkQueue(
      async () => {
        running++;
        runs++;
        maxRunning = Math.max(maxRunning, running);
        await sleep(20);
        running--;
        return {};
      },
      { concurrency: 4, baseBackoffMs: 10, maxBackoffMs: 100 },
    );
    q.add("a");
    await sleep(5);
    q.add("a");
    q.add("a");
    await sleep(100);
    await q.idle();
    expect(maxRunning).to.equal(1);
    expect(runs).to.equal(2);
  });

  it("bounds concurrency across keys", async () => {
    let running = 0;
    let maxRunning = 0;
    const q = new WorkQueue(
      async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await sleep(10);
        running--;
        return {};
      },
      { concurrency: 3, baseBackoffMs: 10, maxBackoffMs: 100 },
    );
    for (let i = 0; i < 20; i++) q.add(`k${i}`);
    await q.idle();
    expect(maxRunning).to.equal(3);
  });

  it("backs off exponentially per key after failures and resets on success", async () => {
    const times: number[] = [];
    const q = new WorkQueue(
      async () => {
        times.push(Date.now());
        if (times.length < 4) throw new Error("transient");
        return {};
      },
      { concurrency: 1, baseBackoffMs: 20, maxBackoffMs: 1000 },
    );
    q.add("a");
    await sleep(400);
    expect(times).to.have.length(4);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(gaps[0]).to.be.at.least(18);
    expect(gaps[1]).to.be.at.least(38);
    expect(gaps[2]).to.be.at.least(78);
    expect(q.retries).to.equal(3);
  });

  it("requeues at the requested time, keeping the earliest", async () => {
    const times: number[] = [];
    const start = Date.now();
    const q = new WorkQueue(async () => (times.push(Date.now() - start), {}), { concurrency: 1, baseBackoffMs: 10, maxBackoffMs: 100 });
    q.addAfter("a", 200);
    q.addAfter("a", 50);
    q.addAfter("a", 300);
    await sleep(350);
    expect(times).to.have.length(1);
    expect(times[0]).to.be.within(45, 190);
  });

  it("stops taking work on shutdown", async () => {
    let runs = 0;
    const q = new WorkQueue(async () => (runs++, { requeueAfterMs: 10 }), { concurrency: 1, baseBackoffMs: 10, maxBackoffMs: 100 });
    q.add("a");
    await q.shutdown();
    const after = runs;
    await sleep(50);
    expect(runs).to.equal(after);
  });

  it("collects keys while paused (a standby) and runs each once on resume", async () => {
    const seen: string[] = [];
    const q = new WorkQueue(async (k) => (seen.push(k), {}), { concurrency: 2, baseBackoffMs: 10, maxBackoffMs: 100, paused: true });
    q.add("a");
    q.add("b");
    q.add("a");
    await sleep(30);
    expect(seen).to.deep.equal([]);
    expect(q.depth).to.equal(2);
    q.resume();
    await q.idle();
    expect(seen.sort()).to.deep.equal(["a", "b"]);
  });

  describe("failures by kind", () => {
    const failing = (errors: Error[]) => {
      const runs: number[] = [];
      const failures: ReconcileFailure[] = [];
      const start = Date.now();
      const q = new WorkQueue(
        async () => {
          runs.push(Date.now() - start);
          const err = errors[runs.length - 1];
          if (err) throw err;
          return {};
        },
        { concurrency: 1, baseBackoffMs: 20, maxBackoffMs: 1000, onError: (_key, failure) => failures.push(failure) },
      );
      return { q, runs, failures };
    };

    it("retries a TemporaryError with backoff and reports its reason", async () => {
      const { q, runs, failures } = failing([new TemporaryError("Unreachable", "ECONNREFUSED"), new TemporaryError("Timeout", "none")]);
      q.add("a");
      await sleep(250);
      expect(runs).to.have.length(3);
      expect(runs[2]! - runs[1]!).to.be.at.least(38);
      expect(failures.map((f) => [f.reason, f.retryInMs])).to.deep.equal([
        ["Unreachable", 20],
        ["Timeout", 40],
      ]);
      expect(q.retries).to.equal(2);
      expect(q.retrying).to.equal(0);
    });

    it("retries a plain error with backoff under the reason ReconcileError", async () => {
      const { q, runs, failures } = failing([new Error("boom")]);
      q.add("a");
      await sleep(150);
      expect(runs).to.have.length(2);
      expect(failures.map((f) => [f.reason, f.retryInMs, (f.err as Error).message])).to.deep.equal([["ReconcileError", 20, "boom"]]);
    });

    it("does not retry a TerminalError: the key waits for its next add()", async () => {
      const { q, runs, failures } = failing([new TerminalError("InvalidSpec", "spec.port: must be a TCP port")]);
      q.add("a");
      await sleep(100);
      expect(runs).to.have.length(1);
      expect(failures.map((f) => [f.reason, f.retryInMs])).to.deep.equal([["InvalidSpec", undefined]]);
      expect(q.retries).to.equal(0);
      expect(q.retrying).to.equal(0);
      q.add("a");
      await q.idle();
      expect(runs).to.have.length(2);
    });

    it("keeps a timed requeue the key had before a TerminalError", async () => {
      const { q, runs } = failing([new TerminalError("InvalidSpec", "bad")]);
      q.addAfter("a", 60);
      q.add("a");
      await sleep(120);
      expect(runs).to.have.length(2);
      expect(runs[1]).to.be.at.least(55);
    });

    it("runs a key changed during a reconcile that ends in a TerminalError again", async () => {
      let runs = 0;
      let started!: () => void;
      const running = new Promise<void>((r) => (started = r));
      const q = new WorkQueue(
        async () => {
          runs++;
          started();
          await sleep(20);
          if (runs === 1) throw new TerminalError("InvalidSpec", "bad");
          return {};
        },
        { concurrency: 1, baseBackoffMs: 1000, maxBackoffMs: 1000 },
      );
      q.add("a");
      await running;
      q.add("a");
      await sleep(100);
      await q.idle();
      expect(runs).to.equal(2);
    });

    it("starts the backoff afresh after a TerminalError", async () => {
      const errors = [new TemporaryError("Unreachable", "down"), new TerminalError("InvalidSpec", "bad"), new Error("again")];
      const { q, failures } = failing(errors);
      q.add("a");
      await sleep(100);
      q.add("a");
      await sleep(100);
      expect(failures.map((f) => [f.reason, f.retryInMs])).to.deep.equal([
        ["Unreachable", 20],
        ["InvalidSpec", undefined],
        ["ReconcileError", 20],
      ]);
    });
  });
});
