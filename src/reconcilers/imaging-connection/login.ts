/**
 * Step 5, ConnectionVerified: log in as the user with the issued certificate (verify-full) and report success or
 * the server's own words; retried with backoff, re-checked at the database's interval and after a new certificate.
 */
import type { ResolvedImagingConnectionSpec } from "../../api/defaults";
import { asReason, Reason } from "../../api/reasons";
import { IMAGING_CONNECTION_CONDITIONS as C, type ConnectionVerificationStatus } from "../../api/types";
import { parseEndpoint } from "../../api/validate";
import type { ConditionInput } from "../../kube/conditions";
import type { IssuedCertificate } from "../../pki";
import { probeServer, type ProbeOptions, type ProbeResult } from "../../postgres/probe";
import type { ImagingConnectionObject, OperatorContext } from "../context";
import { verificationDue } from "../verification-schedule";
import { recordEvents, type PlannedEvent } from "./planned-event";
import type { ConnectionTarget } from "./target";

const PROBE_TIMEOUT_MS = 10_000;
/** A refused login (a missing role, an hba rule) does not fix itself within a second: retry no sooner than this. */
const LOGIN_RETRY_MIN_MS = 5000;

export interface LoginObserved {
  imc: ImagingConnectionObject;
  spec: ResolvedImagingConnectionSpec;
  target: ConnectionTarget;
  /** The certificate the client Secret holds. */
  issued: IssuedCertificate;
  trustBundle: string;
}

/** What step 5 reports: its condition, status.verification and when to look again. */
export interface LoginOutcome {
  condition: ConditionInput;
  verification: ConnectionVerificationStatus | undefined;
  requeueAt?: number;
  events: PlannedEvent[];
}

/** Report without logging in (disabled, database not Ready, not due), or the login to try. */
export function planLogin(observed: LoginObserved, now: Date): LoginOutcome | { probe: ProbeOptions } {
  const { imc, spec, target, issued } = observed;
  const previous = imc.status?.verification;
  if (!spec.verification.enabled) {
    const message = "spec.verification.enabled is false";
    const condition: ConditionInput = { type: C.ConnectionVerified, status: "Unknown", reason: Reason.VerificationDisabled, message };
    return { condition, verification: undefined, events: [] };
  }
  const { sdb, db } = target;
  const dbReady = sdb.status?.conditions?.find((c) => c.type === "Ready");
  if (dbReady?.status !== "True") {
    const message =
      `SecureDatabase ${sdb.metadata.namespace}/${sdb.metadata.name} is not Ready yet (${dbReady?.reason ?? "no status"}): ` +
      "logging in is tried once it is";
    const condition: ConditionInput = { type: C.ConnectionVerified, status: "Unknown", reason: Reason.WaitingForDatabase, message };
    return { condition, verification: previous, events: [] };
  }
  const lastOk = lastLoginSucceeded(previous);
  const history = {
    lastAttemptTime: previous?.lastAttemptTime,
    lastSuccessTime: previous?.lastSuccessTime,
    lastSucceeded: previous?.lastAttemptTime ? lastOk : undefined,
    verifiedSerial: previous?.serialNumber,
    failingSince: failingSince(imc),
  };
  const due = verificationDue(history, issued.serialNumber, db.verification.intervalMs, now, LOGIN_RETRY_MIN_MS);
  if (due.probe) {
    const { endpoint } = loginTarget(observed);
    const { trustBundle } = observed;
    return {
      probe: {
        host: endpoint.host,
        port: endpoint.port,
        servername: db.verification.serverName,
        database: spec.database,
        user: spec.user,
        ca: trustBundle,
        cert: issued.chainPem,
        key: issued.keyPkcs8Pem,
        timeoutMs: PROBE_TIMEOUT_MS,
      },
    };
  }
  // Not due: report the last attempt as it was (it is in status.verification), whatever said the condition since.
  const earlier = imc.status?.conditions?.find((c) => c.type === C.ConnectionVerified && c.status === "False");
  const { where } = loginTarget(observed);
  const next = `next login as ${where} at ${due.nextAt.toISOString()}`;
  const condition: ConditionInput =
    lastOk && previous?.serialNumber === issued.serialNumber
      ? { type: C.ConnectionVerified, status: "True", reason: Reason.LoggedIn, message: previous.message ?? `logged in as ${where}` }
      : earlier
        ? { type: C.ConnectionVerified, status: "False", reason: asReason(earlier.reason), message: earlier.message }
        : { type: C.ConnectionVerified, status: "Unknown", reason: Reason.Pending, message: next };
  return { condition, verification: previous, requeueAt: due.nextAt.getTime(), events: [] };
}

/** What a login's result means: the condition, status.verification, an event when it changed, the next check. */
export function planLoginResult(observed: LoginObserved, result: ProbeResult, now: Date): LoginOutcome {
  const { imc, target, issued } = observed;
  const previous = imc.status?.verification;
  const { where } = loginTarget(observed);
  const intervalMs = target.db.verification.intervalMs;
  if (!result.ok) {
    const message = `login as ${where} with certificate serial ${issued.serialNumber} failed: ${result.message}`;
    const events: PlannedEvent[] = previous?.message !== result.message ? [{ type: "Warning", reason: result.reason, message }] : [];
    const history = {
      lastAttemptTime: now.toISOString(),
      lastSuccessTime: previous?.lastSuccessTime,
      lastSucceeded: false,
      failingSince: failingSince(imc),
    };
    const retry = verificationDue(history, issued.serialNumber, intervalMs, now, LOGIN_RETRY_MIN_MS);
    return {
      condition: { type: C.ConnectionVerified, status: "False", reason: result.reason, message },
      verification: { ...previous, lastAttemptTime: now.toISOString(), message: result.message },
      requeueAt: retry.nextAt.getTime(),
      events,
    };
  }
  const message = `logged in as ${where} over mTLS (verify-full) with certificate serial ${issued.serialNumber}`;
  const changed = previous?.serialNumber !== issued.serialNumber || !lastLoginSucceeded(previous);
  return {
    condition: { type: C.ConnectionVerified, status: "True", reason: Reason.LoggedIn, message },
    verification: { serialNumber: issued.serialNumber, lastAttemptTime: now.toISOString(), lastSuccessTime: now.toISOString(), message },
    requeueAt: now.getTime() + intervalMs,
    events: changed ? [{ type: "Normal", reason: Reason.ConnectionVerified, message }] : [],
  };
}

/** Logs in when due, records what changed, and returns what step 5 reports. */
export async function verifyLogin(ctx: OperatorContext, observed: LoginObserved, now: Date): Promise<LoginOutcome> {
  const plan = planLogin(observed, now);
  const outcome = "probe" in plan ? planLoginResult(observed, await probeServer(plan.probe), now) : plan;
  await recordEvents(ctx, observed.imc, outcome.events);
  return outcome;
}

function loginTarget({ spec, target }: LoginObserved): { endpoint: { host: string; port: number }; where: string } {
  const { db } = target;
  const endpoint = parseEndpoint(db.verification.endpoint) ?? { host: db.host, port: db.port };
  return { endpoint, where: `${spec.user}@${endpoint.host}:${endpoint.port}/${spec.database}` };
}

function lastLoginSucceeded(previous: ConnectionVerificationStatus | undefined): boolean {
  return previous?.lastAttemptTime !== undefined && previous.lastAttemptTime === previous.lastSuccessTime;
}

/** When the login check started failing (its condition's transition), if it is failing. */
function failingSince(imc: ImagingConnectionObject): string | undefined {
  const c = imc.status?.conditions?.find((x) => x.type === C.ConnectionVerified);
  return c?.status === "False" ? c.lastTransitionTime : undefined;
}
