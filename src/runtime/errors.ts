import type { Reason } from "../api/reasons";

/** A reconcile failure with the reason it is counted, logged and reported under. */
abstract class ReconcileFailure extends Error {
  constructor(
    readonly reason: Reason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * A failure that may pass by itself (the API server or the database is down, a 409, a timeout): the work queue
 * retries the key with per-key exponential backoff. Any error that is not a TerminalError is treated as temporary.
 */
export class TemporaryError extends ReconcileFailure {
  override readonly name = "TemporaryError";
}

/**
 * A failure that retrying cannot fix (the input itself is wrong): the work queue drops the key until the object or
 * something it watches changes. The reconciler reports it in a condition and an event before throwing.
 */
export class TerminalError extends ReconcileFailure {
  override readonly name = "TerminalError";
}

export const isTerminalError = (err: unknown): err is TerminalError => err instanceof TerminalError;

/** The reason a failed reconcile is counted and logged under. */
export function failureReason(err: unknown): Reason {
  return err instanceof ReconcileFailure ? err.reason : "ReconcileError";
}
