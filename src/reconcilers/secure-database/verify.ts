/**
 * Step 6: a live mTLS connection as the operator's identity shows which certificate the server serves, and a
 * plain-TCP startup that it admits nobody without TLS. A failed check backs off; a server that dropped the
 * managed configuration gets the remedy of step 4.
 */
import type { ResolvedSecureDatabaseSpec } from "../../api/defaults";
import { asReason, Reason } from "../../api/reasons";
import { SECURE_DATABASE_CONDITIONS as C, type DatabaseVerificationStatus, type SecureDatabaseStatus } from "../../api/types";
import type { ConditionInput } from "../../kube/conditions";
import { probePlaintext, type PlaintextProbeResult } from "../../postgres/plaintext-probe";
import { probeServer, type ProbeFailure, type ProbeOptions, type ProbeSuccess } from "../../postgres/probe";
import type { OperatorContext, SecureDatabaseObject } from "../context";
import { failureBackoffMs } from "../verification-schedule";
import { PROBE_TIMEOUT_MS } from "./operator-identity";
import { after, outcomeOf, recordEvents, resultOf, STALE_RETRY_MS, type StepOutcome, type StepResult } from "./step";
import { applyRemedy, type InsecureFinding, type ReloadMemory, type WorkloadState } from "./workload";

/** While the server still serves the previous certificate, look again this often. */
const STALE_CHECK_MS = 1000;

const failingCheck = (status: SecureDatabaseStatus | undefined) =>
  status?.conditions?.find((c) => c.type === C.Verified && c.status === "False");

/** The last live check of the server failed (it was down, or refused us); a success or a stale serial is not that. */
export function lastCheckFailed(status: SecureDatabaseStatus | undefined): boolean {
  const v = status?.verification;
  return v?.lastAttemptTime !== undefined && v.matchesCurrent === undefined && v.lastAttemptTime !== v.lastSuccessTime;
}

/** When the last live check failed and its backoff is not over yet: the time to try again; otherwise undefined. */
export function failedCheckRetryAt(
  status: SecureDatabaseStatus | undefined,
  spec: ResolvedSecureDatabaseSpec,
  now: Date,
): Date | undefined {
  const v = status?.verification;
  if (!lastCheckFailed(status) || !v?.lastAttemptTime) return undefined;
  const at = new Date(v.lastAttemptTime);
  const failingSince = failingCheck(status)?.lastTransitionTime;
  const history = { lastAttemptTime: v.lastAttemptTime, lastSuccessTime: v.lastSuccessTime, failingSince };
  const retryAt = at.getTime() + failureBackoffMs(history, spec.verification.intervalMs, at);
  return now.getTime() < retryAt ? new Date(retryAt) : undefined;
}

/** What step 6 reads: the stored status, the serial the server must serve, and what this pass did before. */
export interface VerifyObserved {
  spec: ResolvedSecureDatabaseSpec;
  status: SecureDatabaseStatus | undefined;
  currentSerial: string;
  /** Where and as whom to connect; absent when verification is off. */
  login?: { endpoint: string; user: string };
  /** The server was reloaded in this pass. */
  reloadedNow: boolean;
  /** The managed blocks were restored in this pass: the server may have restarted or reloaded without them. */
  repaired: boolean;
  /** During a CA rotation, look on every pass: each phase moves on what the server does now. */
  rotating: boolean;
}

/** A check that connects: verification is on and the operator has an identity. */
type Probing = VerifyObserved & { login: { endpoint: string; user: string } };

/** What status.verification becomes, the step's outcome, and the remedy to try (its words end the condition). */
export interface VerifyPlan {
  verification: DatabaseVerificationStatus | undefined;
  outcome: StepOutcome;
  remedy?: InsecureFinding;
}

const verified = (status: ConditionInput["status"], reason: Reason, message: string): ConditionInput[] => [
  { type: C.Verified, status, reason, message },
];
const servingCurrent = (endpoint: string, user: string, serial: string) =>
  verified("True", Reason.ServingCurrentCertificate, `mTLS connection to ${endpoint} as ${user}: the server presents serial ${serial}`);

/** Probe now, or report what the last check found (a failure on its backoff; a recent success nothing changed). */
export function planVerify(o: VerifyObserved, now: Date): VerifyPlan | "probe" {
  const previous = o.status?.verification;
  if (!o.spec.verification.enabled || !o.login) {
    const conditions = verified("Unknown", Reason.VerificationDisabled, "spec.verification.enabled is false");
    return { verification: undefined, outcome: outcomeOf(conditions) };
  }
  // A failed check is retried on its backoff, whatever else woke this reconcile (a rotation step, a Secret event).
  const failing = failingCheck(o.status);
  const retryAt = o.reloadedNow || o.repaired ? undefined : failedCheckRetryAt(o.status, o.spec, now);
  if (failing && retryAt) {
    return { verification: previous, outcome: outcomeOf(verified("False", asReason(failing.reason), failing.message), retryAt) };
  }
  const dueAt = previous?.lastAttemptTime ? new Date(previous.lastAttemptTime).getTime() + o.spec.verification.intervalMs : 0;
  const changed = o.reloadedNow || o.repaired || o.rotating;
  if (!changed && previous?.matchesCurrent === true && previous.servedSerialNumber === o.currentSerial && now.getTime() < dueAt) {
    // Verified recently and nothing changed since: probing again now would only churn status.
    const conditions = servingCurrent(`${previous.endpoint}`, o.login.user, o.currentSerial);
    return { verification: previous, outcome: outcomeOf(conditions, new Date(dueAt)) };
  }
  return "probe";
}

/** The mTLS connection failed: back off against a server that is down (1 s, then a quarter of the outage). */
export function planProbeFailure(result: ProbeFailure, o: Probing, now: Date): VerifyPlan {
  const previous = o.status?.verification;
  const { endpoint, user } = o.login;
  const failingSince = failingCheck(o.status)?.lastTransitionTime;
  const history = { lastAttemptTime: now.toISOString(), lastSuccessTime: previous?.lastSuccessTime, failingSince };
  const delay = failureBackoffMs(history, o.spec.verification.intervalMs, now);
  const failed = `mTLS connection to ${endpoint} failed: ${result.message}`;
  const event = { type: "Warning" as const, reason: Reason.VerificationFailed, message: failed };
  // A server that served TLS before and no longer does started or reloaded without the managed configuration.
  // (Before its first success, the switch-over's own restart is still under way: see the reload step.)
  const remedy = result.reason === "ServerNotServingTLS" && !o.reloadedNow && previous?.lastSuccessTime;
  return {
    verification: { ...previous, endpoint, lastAttemptTime: now.toISOString(), matchesCurrent: undefined, message: result.message },
    outcome: outcomeOf(
      verified("False", result.reason, `mTLS connection to ${endpoint} as ${user} failed: ${result.message}`),
      after(now, delay),
      previous?.message !== result.message ? [event] : [],
    ),
    ...(remedy ? { remedy: "ServerNotServingTLS" as const } : {}),
  };
}

/** The server answered: it serves the current certificate (then plain TCP is checked), or still the previous one. */
export function planServedCertificate(
  result: ProbeSuccess,
  o: Probing,
  now: Date,
): VerifyPlan | { verification: DatabaseVerificationStatus; checkPlaintext: true } {
  const previous = o.status?.verification;
  const { endpoint } = o.login;
  const matches = result.servedSerialNumber === o.currentSerial;
  const verification: DatabaseVerificationStatus = {
    endpoint,
    servedSerialNumber: result.servedSerialNumber,
    matchesCurrent: matches,
    lastAttemptTime: now.toISOString(),
    lastSuccessTime: matches ? now.toISOString() : previous?.lastSuccessTime,
    message: matches ? `serves serial ${o.currentSerial}` : `serves serial ${result.servedSerialNumber}, expected ${o.currentSerial}`,
  };
  if (matches) return { verification, checkPlaintext: true };
  const message =
    `the server at ${endpoint} still presents serial ${result.servedSerialNumber}, not the current ${o.currentSerial}: ` +
    "waiting for the kubelet to update the mounted Secret and for the reload";
  return { verification, outcome: outcomeOf(verified("False", Reason.ServingPreviousCertificate, message), after(now, STALE_CHECK_MS)) };
}

/** Serving TLS is not enough: the managed pg_hba.conf also leaves no way in over plain TCP. */
export function planPlaintextResult(
  plaintext: PlaintextProbeResult,
  o: Probing,
  verification: DatabaseVerificationStatus,
  now: Date,
): VerifyPlan {
  const { endpoint, user } = o.login;
  const serial = o.currentSerial;
  if (plaintext.verdict === "Accepted") {
    const message =
      `the server at ${endpoint} serves serial ${serial} over mTLS, but ${plaintext.message} (as ${user}): ` +
      "it has not loaded the managed pg_hba.conf";
    return {
      verification: { ...verification, matchesCurrent: undefined, message: `accepts plain TCP: ${plaintext.message}` },
      outcome: outcomeOf(verified("False", Reason.PlaintextAccepted, message), after(now, STALE_RETRY_MS), [
        { type: "Warning", reason: Reason.PlaintextAccepted, message },
      ]),
      remedy: "PlaintextAccepted",
    };
  }
  const previous = o.status?.verification;
  const message = `the server at ${endpoint} serves certificate serial ${serial} and accepted the operator's client certificate`;
  const news = previous?.matchesCurrent !== true || previous.servedSerialNumber !== serial;
  const events = news ? [{ type: "Normal" as const, reason: Reason.Verified, message }] : [];
  return { verification, outcome: outcomeOf(servingCurrent(endpoint, user, serial), after(now, o.spec.verification.intervalMs), events) };
}

/** The remedy's words end every message of the outcome. */
export function withRemedy(outcome: StepOutcome, remedy: string | undefined): StepOutcome {
  if (remedy === undefined) return outcome;
  return {
    ...outcome,
    conditions: outcome.conditions.map((c) => ({ ...c, message: `${c.message}; ${remedy}` })),
    events: outcome.events.map((e) => ({ ...e, message: `${e.message}; ${remedy}` })),
  };
}

export type VerifyStepResult = StepResult & { verification: DatabaseVerificationStatus | undefined };

/** Probes over mTLS with the operator's identity (`probe`; absent: nothing to verify with) when the plan says so. */
export async function ensureVerified(
  ctx: OperatorContext,
  sdb: SecureDatabaseObject,
  observed: Omit<VerifyObserved, "login">,
  probe: ProbeOptions | undefined,
  workload: WorkloadState,
  memory: ReloadMemory,
  now: Date,
): Promise<VerifyStepResult> {
  const login = probe && { endpoint: `${probe.host}:${probe.port}`, user: probe.user };
  const first = planVerify({ ...observed, ...(login ? { login } : {}) }, now);
  if (first !== "probe") return { verification: first.verification, ...resultOf(first.outcome) };
  const args = probe!;
  const o: Probing = { ...observed, login: login! };
  const remedy = (finding: InsecureFinding) => applyRemedy(ctx, sdb, o.spec, finding, args, workload, memory, now);
  const result = await probeServer(args);
  if (!result.ok) {
    const plan = planProbeFailure(result, o, now);
    await recordEvents(ctx, sdb, plan.outcome.events);
    const outcome = withRemedy({ ...plan.outcome, events: [] }, plan.remedy && (await remedy(plan.remedy)));
    return { verification: plan.verification, ...resultOf(outcome) };
  }
  const served = planServedCertificate(result, o, now);
  if (!("checkPlaintext" in served)) return { verification: served.verification, ...resultOf(served.outcome) };
  const { host, port, user, database } = args;
  const plaintext = await probePlaintext({ host, port, user, database, timeoutMs: PROBE_TIMEOUT_MS });
  const plan = planPlaintextResult(plaintext, o, served.verification, now);
  const outcome = withRemedy(plan.outcome, plan.remedy && (await remedy(plan.remedy)));
  await recordEvents(ctx, sdb, outcome.events);
  return { verification: plan.verification, ...resultOf(outcome) };
}
