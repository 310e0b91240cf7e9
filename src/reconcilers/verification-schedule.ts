/**
 * When to open the next live mTLS connection: the same rule for the server check (SecureDatabase) and the login
 * check (ImagingConnection), so neither hammers a database that is down nor lets a good result go stale.
 */

export interface VerificationHistory {
  lastAttemptTime?: string;
  lastSuccessTime?: string;
  /** Whether the last attempt succeeded (undefined: never attempted). */
  lastSucceeded?: boolean;
  /** The certificate serial the last success was about. */
  verifiedSerial?: string;
  /** Since when checks have been failing (the condition's lastTransitionTime), for a check that never succeeded. */
  failingSince?: string;
}

/**
 * After a failure: `minMs` (1 s by default), growing with how long checks had been failing at the last attempt (a
 * quarter of it, from the last success, else from when they started failing), at most 60 s and the interval. Measured at the
 * attempt, not at `now`, so the retry time does not move; a first failure (a server still restarting) is
 * retried after a second, a long outage about once a minute.
 */
export function failureBackoffMs(history: VerificationHistory, intervalMs: number, now: Date, minMs = 1000): number {
  const at = history.lastAttemptTime ? new Date(history.lastAttemptTime).getTime() : now.getTime();
  const since = history.lastSuccessTime ?? history.failingSince;
  const failingFor = since ? Math.max(0, at - new Date(since).getTime()) : 0;
  return Math.min(intervalMs, Math.max(minMs, Math.min(failingFor / 4, 60_000)));
}

/**
 * Probe now, or when next. A success stays good until the interval passes or the certificate changes; a failure
 * is retried after the backoff, whatever else triggered the reconcile (a status write, a Secret event).
 */
export function verificationDue(
  history: VerificationHistory,
  currentSerial: string,
  intervalMs: number,
  now: Date,
  minBackoffMs?: number,
): { probe: boolean; nextAt: Date } {
  if (!history.lastAttemptTime || history.lastSucceeded === undefined) return { probe: true, nextAt: now };
  const last = new Date(history.lastAttemptTime).getTime();
  if (history.lastSucceeded) {
    if (history.verifiedSerial !== currentSerial) return { probe: true, nextAt: now };
    const due = last + intervalMs;
    return due <= now.getTime() ? { probe: true, nextAt: now } : { probe: false, nextAt: new Date(due) };
  }
  const due = last + failureBackoffMs(history, intervalMs, now, minBackoffMs);
  return due <= now.getTime() ? { probe: true, nextAt: now } : { probe: false, nextAt: new Date(due) };
}
