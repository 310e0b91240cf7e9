import { expect } from "chai";
import { WorkQueue } from "../../../src/runtime/workqueue";

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
});
