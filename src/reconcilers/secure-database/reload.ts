/**
 * Step 5: the server loads what changed. Over SQL (pg_reload_conf() as the operator's identity), by a rollout of
 * the database workload, or by the admin (strategy None); then again for files the kubelet lays down late.
 */
import { createHash } from "node:crypto";
import type { ResolvedSecureDatabaseSpec } from "../../api/defaults";
import { asReason, Reason } from "../../api/reasons";
import { SECURE_DATABASE_CONDITIONS as C, type ReloadStatus, type ReloadStrategy, type SecureDatabaseStatus } from "../../api/types";
import type { ConditionInput } from "../../kube/conditions";
import { reloadServer, type ProbeOptions, type ReloadResult } from "../../postgres/probe";
import { TerminalError } from "../../runtime/errors";
import type { OperatorContext, SecureDatabaseObject } from "../context";
import { after, outcomeOf, recordEvents, resultOf, STALE_RETRY_MS, type StepOutcome, type StepResult } from "./step";
import { failedCheckRetryAt, lastCheckFailed } from "./verify";
import { restartServer, type ReloadMemory, type WorkloadState } from "./workload";

/** How long after a reload to keep reloading (every STALE_RETRY_MS) for files the kubelet lays down late. */
const SETTLE_WINDOW_MS = 30_000;
/** A reload the server refused is tried again after this long. */
const RELOAD_RETRY_MS = 30_000;

/** A digest of everything the server reads from files: when it changes, the server must reload. */
export function servedMaterialHash(parts: readonly (string | Uint8Array | undefined)[]): string {
  const h = createHash("sha256");
  for (const p of parts) {
    h.update(p === undefined ? "\u0000absent" : p);
    h.update("\u0000");
  }
  return h.digest("hex").slice(0, 32);
}

export interface ReloadInput {
  strategy: ReloadStrategy;
  desiredHash: string;
  appliedHash: string | undefined;
  lastReloadTime: Date | undefined;
  /** The last probe saw the server present an older certificate than the current one. */
  servingStale: boolean;
  now: Date;
  /** How long the kubelet may take to lay a changed Secret down before a reload is worth repeating. */
  retryAfterMs: number;
  /**
   * After a reload, the files may still be on their way (the kubelet takes seconds to a minute), and a new
   * trust bundle or CRL cannot be seen from outside the way a new server certificate can: for this long after
   * the last reload, reload again every retryAfterMs (SQL only). Absent: never.
   */
  settleWindowMs?: number;
  /** The last of those repeated reloads (kept in memory: they change nothing in status). */
  lastRepeatTime?: Date;
  /** The last live check failed (the server is down or refuses us): the check's backoff paces the retries. */
  lastCheckFailed?: boolean;
}

export type ReloadDecision =
  | { reload: false; reason: "UpToDate" | "WaitingForFiles"; retryAt?: Date }
  | { reload: true; reason: "MaterialChanged" | "StillServingStale" | "AwaitingKubelet" };

/** Inside the settle window after a reload: reload again every retryAfterMs, so late files are loaded too. */
function settling(input: ReloadInput): ReloadDecision {
  const since = input.lastReloadTime ? input.now.getTime() - input.lastReloadTime.getTime() : Infinity;
  if (input.strategy !== "SQL" || !input.settleWindowMs || since >= input.settleWindowMs || input.lastCheckFailed) {
    return { reload: false, reason: "UpToDate" };
  }
  const last = Math.max(input.lastReloadTime?.getTime() ?? 0, input.lastRepeatTime?.getTime() ?? 0);
  const due = last + input.retryAfterMs;
  if (input.now.getTime() >= due) return { reload: true, reason: "AwaitingKubelet" };
  return { reload: false, reason: "UpToDate", retryAt: new Date(Math.min(due, input.lastReloadTime!.getTime() + input.settleWindowMs)) };
}

/**
 * Reload when the served material changed, again when the server still serves stale files after a while, and
 * repeatedly for a settle window after each reload so a trust bundle or CRL the kubelet lays down late is loaded.
 */
export function decideReload(input: ReloadInput): ReloadDecision {
  if (input.desiredHash !== input.appliedHash) return { reload: true, reason: "MaterialChanged" };
  if (!input.servingStale) return settling(input);
  if (input.strategy !== "SQL") return { reload: false, reason: "WaitingForFiles" };
  const since = input.lastReloadTime ? input.now.getTime() - input.lastReloadTime.getTime() : Infinity;
  return since >= input.retryAfterMs ? { reload: true, reason: "StillServingStale" } : { reload: false, reason: "WaitingForFiles" };
}

/** What step 5 reads: the stored status, the material to serve, the pass's memory and whether it can log in. */
export interface ReloadObserved {
  spec: ResolvedSecureDatabaseSpec;
  status: SecureDatabaseStatus | undefined;
  desiredHash: string;
  lastRepeatedReload: Date | undefined;
  canLogIn: boolean;
}

export type ReloadPlan =
  /** Nothing to do now: report. */
  | { action: "report"; outcome: StepOutcome }
  /** The rollout the pod-template hash started counts as the reload. */
  | { action: "rollout"; reload: ReloadStatus; outcome: StepOutcome }
  /** Same files as far as we know; the kubelet may only now have laid them down. Not worth a status write. */
  | { action: "repeat"; outcome: StepOutcome }
  | { action: "reload"; why: string };

export function planReload(o: ReloadObserved, now: Date): ReloadPlan {
  const { spec, status } = o;
  const strategy = spec.reload.strategy;
  const decision = decideReload({
    strategy,
    desiredHash: o.desiredHash,
    appliedHash: status?.reload?.appliedHash,
    lastReloadTime: status?.reload?.lastReloadTime ? new Date(status.reload.lastReloadTime) : undefined,
    servingStale: status?.verification?.matchesCurrent === false,
    now,
    retryAfterMs: STALE_RETRY_MS,
    settleWindowMs: Math.max(SETTLE_WINDOW_MS, spec.ca.propagationDelayMs),
    lastRepeatTime: o.lastRepeatedReload,
    lastCheckFailed: lastCheckFailed(status),
  });
  const report = (conditions: ConditionInput[], requeueAt?: Date): ReloadPlan => ({
    action: "report",
    outcome: outcomeOf(conditions, requeueAt),
  });
  const loadedMessage = status?.reload?.message ?? "the server has loaded the current files";
  // Nothing new to load: keep saying how the current files got loaded, so a quiet reconcile writes nothing.
  const earlier = status?.conditions?.find((c) => c.type === C.Reloaded && c.status === "True");
  const unchanged: ConditionInput[] = [
    earlier
      ? { type: C.Reloaded, status: "True", reason: asReason(earlier.reason), message: earlier.message }
      : { type: C.Reloaded, status: "True", reason: Reason.UpToDate, message: loadedMessage },
  ];
  if (!decision.reload) {
    if (decision.reason === "UpToDate") return report(unchanged, decision.retryAt);
    return report([{ type: C.Reloaded, status: "True", reason: decision.reason, message: loadedMessage }]);
  }
  if (strategy === "None") {
    // Unknown, not False: whether the admin has reloaded is for the live verification to tell (Verified).
    const message =
      "reload.strategy is None: reload the server yourself (SELECT pg_reload_conf(), or restart it) " +
      "once the kubelet has updated the files; " +
      "Verified shows whether it serves the current certificate";
    return report([{ type: C.Reloaded, status: "Unknown", reason: Reason.ManualReloadRequired, message }]);
  }
  const workload = `${spec.workloadRef?.kind} ${spec.workloadRef?.name}`;
  if (strategy === "RolloutRestart") {
    const message = `rollout of ${workload} requested`;
    const event = `restarting ${workload} so the server loads the new certificate and configuration`;
    return {
      action: "rollout",
      reload: { strategy, appliedHash: o.desiredHash, lastReloadTime: now.toISOString(), message },
      outcome: {
        conditions: [{ type: C.Reloaded, status: "True", reason: Reason.RolloutRequested, message }],
        events: [{ type: "Normal", reason: Reason.RolloutRequested, message: event }],
      },
    };
  }
  if (!o.canLogIn) {
    throw new TerminalError(Reason.ReloadFailed, "reload.strategy SQL without the operator's client identity (needsOperatorIdentity)");
  }
  // A server that failed its last check (down, or refusing us) is asked again on that check's backoff, not on
  // every pass that something else woke.
  const waitForServer = failedCheckRetryAt(status, spec, now);
  if (waitForServer) {
    const failed = status?.conditions?.find((c) => c.type === C.Reloaded && c.status === "False");
    const message = failed?.message ?? "the server failed its last check; reloading once it answers again";
    const reason = failed ? asReason(failed.reason) : Reason.WaitingForServer;
    return report([{ type: C.Reloaded, status: "False", reason, message }], waitForServer);
  }
  if (decision.reason === "AwaitingKubelet") return { action: "repeat", outcome: outcomeOf(unchanged, after(now, STALE_RETRY_MS)) };
  return { action: "reload", why: decision.reason };
}

export interface ReloadResultPlan {
  reload?: ReloadStatus;
  outcome: StepOutcome;
  /** The server did not serve TLS: restart its workload once, for this reason (unless the mount's rollout does). */
  restart?: string;
  /** This pass's mount already rolls the pods: that counts as the restart. */
  rolloutCounts?: boolean;
}

/** What a reload over SQL gave: the server loaded the files, needs one restart to serve TLS at all, or refused. */
export function planReloadResult(
  result: ReloadResult,
  o: ReloadObserved,
  why: string,
  workloadPatched: boolean,
  now: Date,
): ReloadResultPlan {
  const { spec } = o;
  const strategy = spec.reload.strategy;
  const reloaded = (message: string) => ({ strategy, appliedHash: o.desiredHash, lastReloadTime: now.toISOString(), message });
  const user = spec.reload.adminUser;
  if (result.ok) {
    const message = `pg_reload_conf() as ${user} at ${now.toISOString()}`;
    return {
      reload: reloaded(message),
      outcome: {
        conditions: [{ type: C.Reloaded, status: "True", reason: Reason.Reloaded, message }],
        events: [{ type: "Normal", reason: Reason.Reloaded, message: `reloaded the server over mTLS as ${user} (${why})` }],
      },
    };
  }
  const ref = spec.workloadRef;
  if (result.reason === "ServerNotServingTLS" && ref) {
    // First switch-over: a server without TLS cannot be reached over mTLS, so restart it once.
    const message = workloadPatched
      ? `the server did not serve TLS yet; ${ref.kind} ${ref.name} is restarting with the server Secret mounted`
      : `the server did not serve TLS yet; restarted ${ref.kind} ${ref.name} once`;
    return {
      reload: reloaded(message),
      outcome: { conditions: [{ type: C.Reloaded, status: "True", reason: Reason.RolloutRequested, message }], events: [] },
      // Mounting the server Secret just now already rolls the pods: a second restart would only add downtime.
      ...(workloadPatched
        ? { rolloutCounts: true }
        : { restart: "the server did not serve TLS yet, so it could not be reloaded over mTLS" }),
    };
  }
  const hint =
    result.reason === "ServerNotServingTLS"
      ? "; the server does not serve TLS yet, so it cannot be reloaded over mTLS: " +
        "restart it once (or set spec.workloadRef, or reload.strategy: RolloutRestart)"
      : result.reason === "ReloadNotPermitted"
        ? `; grant ${user} the right to run pg_reload_conf() or set spec.reload.adminUser to a superuser`
        : "";
  const message = `could not reload the server: ${result.message}${hint}`;
  return {
    outcome: {
      conditions: [{ type: C.Reloaded, status: "False", reason: result.reason, message }],
      events: [{ type: "Warning", reason: result.reason, message }],
      requeueAt: after(now, RELOAD_RETRY_MS),
    },
  };
}

export type ReloadStepResult = StepResult & { reload?: ReloadStatus; reloaded?: boolean };

export async function ensureReload(
  ctx: OperatorContext,
  sdb: SecureDatabaseObject,
  o: ReloadObserved & { probe: ProbeOptions | undefined },
  workload: WorkloadState,
  memory: ReloadMemory,
  now: Date,
): Promise<ReloadStepResult> {
  const plan = planReload(o, now);
  if (plan.action === "report") return resultOf(plan.outcome);
  if (plan.action === "rollout") {
    await recordEvents(ctx, sdb, plan.outcome.events);
    return { ...resultOf(plan.outcome), reload: plan.reload, reloaded: true };
  }
  const probe = o.probe!;
  if (plan.action === "repeat") {
    memory.lastRepeatedReload = now;
    const result = await reloadServer(probe);
    if (!result.ok) {
      const { reason, message } = result;
      const resource = `SecureDatabase/${sdb.metadata.name}`;
      ctx.log.warn("repeated reload failed", { resource, namespace: sdb.metadata.namespace, reason, message });
    }
    return resultOf(plan.outcome);
  }
  const done = planReloadResult(await reloadServer(probe), o, plan.why, workload.patched, now);
  if (done.rolloutCounts) workload.lastRestartAt = now;
  if (done.restart) await restartServer(ctx, sdb, o.spec, workload, now, done.restart);
  await recordEvents(ctx, sdb, done.outcome.events);
  return { ...resultOf(done.outcome), ...(done.reload ? { reload: done.reload, reloaded: true } : {}) };
}
