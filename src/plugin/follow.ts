/**
 * Following an object until the operator has done what a verb asked (rotate, revoke): read it again and again, judge
 * each read with the verb's pure judge, print one line each time the phase changes, stop when done or at the
 * timeout. Polling, not a watch: one GET a second is cheap, and a watch would need the plugin to handle reconnects
 * and bookmarks for a command that lasts a few minutes at most.
 */
import type { Output } from "./output";

/** Where an operation stands, as a verb's judge sees one read of the object. */
export interface Progress {
  /** A new value prints a new line; the same value again prints nothing. */
  readonly phase: string;
  /** The line printed when the phase changes (without the elapsed time). */
  readonly line: string;
  readonly done: boolean;
}

export interface FollowOptions {
  readonly timeoutMs: number;
  readonly out: Output;
  readonly intervalMs?: number;
  /** Milliseconds since some origin (injected by the unit tests). */
  readonly clock?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface Followed<T> {
  readonly done: boolean;
  readonly value: T;
  readonly progress: Progress;
  readonly elapsedMs: number;
}

/** `[  12.3s]`: the elapsed time a progress line starts with, right-aligned so the lines stay in columns. */
export function elapsedLabel(ms: number): string {
  return `[${`${(Math.max(0, ms) / 1000).toFixed(1)}s`.padStart(7)}]`;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Reads until `judge` says done or `timeoutMs` passed; always reads at least once. */
export async function follow<T>(read: () => Promise<T>, judge: (value: T) => Progress, o: FollowOptions): Promise<Followed<T>> {
  const clock = o.clock ?? (() => performance.now());
  const sleep = o.sleep ?? defaultSleep;
  const interval = o.intervalMs ?? 1000;
  const started = clock();
  let shown: string | undefined;
  for (;;) {
    const value = await read();
    const progress = judge(value);
    const elapsedMs = clock() - started;
    if (progress.phase !== shown) {
      shown = progress.phase;
      o.out.stdout(`${elapsedLabel(elapsedMs)} ${progress.line}\n`);
    }
    if (progress.done || elapsedMs >= o.timeoutMs) return { done: progress.done, value, progress, elapsedMs };
    await sleep(Math.min(interval, Math.max(1, o.timeoutMs - elapsedMs)));
  }
}
