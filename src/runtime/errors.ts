import type { Reason } from "../api/reasons";

/**
 * A failure that may pass by itself (the API server or the database is down, a 409, a timeout): the work queue
 * retries the key with per-key exponential backoff. Any error that is not a TerminalError is treated as temporary.
 */
export class TemporaryError extends Error {
  override readonly name = "TemporaryError";
  constructor(
    readonly reason: Reason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * A failure that retrying cannot fix (the input itself is wrong): the work queue drops the key until the object or
 * something it watches changes. The reconciler reports it in a condition and an event before throwing.
 */
export class TerminalError extends Error {
  override readonly name = "TerminalError";
  constructor(
    readonly reason: Reason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const isTerminalError = (err: unknown): err is TerminalError => err instanceof TerminalError;

/** The reason a failed reconcile is counted and logged under. */
export function failureReason(err: unknown): Reason {
  return err instanceof TemporaryError || err instanceof TerminalError ? err.reason : "ReconcileError";
}
