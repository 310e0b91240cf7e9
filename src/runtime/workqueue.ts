import type { Reason } from "../api/reasons";
import { failureReason, isTerminalError } from "./errors";

export interface ReconcileResult {
  /** Run this key again after this long (e.g. until the next certificate renewal); undefined = only on change. */
  requeueAfterMs?: number;
}

export interface WorkQueueOptions {
  concurrency: number;
  /** First retry delay after a failed reconcile; doubles per consecutive failure of the same key. */
  baseBackoffMs: number;
  maxBackoffMs: number;
  onError?: (key: string, failure: ReconcileFailure) => void;
  /** Collect keys but run nothing until resume() (a standby replica waiting for leadership). */
  paused?: boolean;
}

/** A failed reconcile as the queue handles it. */
export interface ReconcileFailure {
  err: unknown;
  reason: Reason;
  /** The backoff retry; undefined for a TerminalError, whose key waits for a change (the next add()). */
  retryInMs: number | undefined;
}

/** Longest timer Node accepts; later requeues are re-armed when it fires. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * A work queue keyed by object key, as client-go's: a key is queued at most once, never processed by two workers at
 * once (a change during processing marks it dirty and it runs again right after), failures back off per key, and
 * timed requeues keep only the earliest time per key. A TerminalError is not retried: the key runs again on its
 * next add() (a change of its object or of something it watches), or at a timed requeue it already had.
 */
export class WorkQueue {
  /** Waiting keys in arrival order (a Set iterates in insertion order): taking the oldest is O(1), as an array's shift is not. */
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private active = 0;
  private shuttingDown = false;
  private pumpScheduled = false;
  private paused: boolean;
  private idleWaiters: (() => void)[] = [];
  retries = 0;

  constructor(
    private readonly process: (key: string) => Promise<ReconcileResult>,
    private readonly opts: WorkQueueOptions,
  ) {
    this.paused = opts.paused ?? false;
  }

  /** Starts running the keys collected while paused. */
  resume(): void {
    this.paused = false;
    this.schedulePump();
  }

  get depth(): number {
    return this.queued.size;
  }

  get inFlight(): number {
    return this.active;
  }

  /** Keys whose last run failed (waiting for their backoff retry, or retried already and failing again). */
  get retrying(): number {
    return this.failures.size;
  }

  add(key: string): void {
    if (this.shuttingDown) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.schedulePump();
  }

  /** Adds made in one tick collapse into one run: workers start on the next turn of the event loop. */
  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** Adds the key after delayMs, unless an earlier timed add for it is already pending. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + delayMs;
    const existing = this.timers.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      const left = at - Date.now();
      if (left > 0) this.addAfter(key, left);
      else this.add(key);
    }, Math.min(delayMs, MAX_TIMER_MS));
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  /** Forgets a key's timers and failure count (its object is gone). */
  forget(key: string): void {
    const t = this.timers.get(key);
    if (t) clearTimeout(t.timer);
    this.timers.delete(key);
    this.failures.delete(key);
  }

  /** Resolves when nothing is queued or running: for tests and graceful shutdown. */
  idle(): Promise<void> {
    if (this.queued.size === 0 && this.active === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    for (const t of this.timers.values()) clearTimeout(t.timer);
    this.timers.clear();
    this.queued.clear();
    await this.idle();
  }

  private pump(): void {
    if (this.paused) return;
    while (this.active < this.opts.concurrency && this.queued.size > 0) {
      const key = this.queued.values().next().value!;
      this.queued.delete(key);
      this.processing.add(key);
      this.active++;
      void this.run(key);
    }
    if (this.queued.size === 0 && this.active === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private fail(key: string, err: unknown): void {
    const reason = failureReason(err);
    if (isTerminalError(err)) {
      // Retrying cannot help; the next run starts its backoff afresh.
      this.failures.delete(key);
      this.opts.onError?.(key, { err, reason, retryInMs: undefined });
      return;
    }
    const n = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, n);
    const delay = Math.min(this.opts.baseBackoffMs * 2 ** (n - 1), this.opts.maxBackoffMs);
    this.retries++;
    this.opts.onError?.(key, { err, reason, retryInMs: delay });
    this.addAfter(key, delay);
  }

  private async run(key: string): Promise<void> {
    try {
      const result = await this.process(key);
      this.failures.delete(key);
      if (result.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs);
    } catch (err) {
      this.fail(key, err);
    } finally {
      this.processing.delete(key);
      this.active--;
      if (this.dirty.delete(key)) this.add(key);
      // Through the event loop, not straight on: reconciles that need no I/O would otherwise run back to back in
      // microtasks and starve health probes and watch events.
      this.schedulePump();
    }
  }
}
