import { createHash } from "node:crypto";
import type { ReloadStrategy } from "../api/types";

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
  if (input.strategy !== "SQL" || !input.settleWindowMs || since >= input.settleWindowMs || input.lastCheckFailed) return { reload: false, reason: "UpToDate" };
  const last = Math.max(input.lastReloadTime?.getTime() ?? 0, input.lastRepeatTime?.getTime() ?? 0);
  const due = last + input.retryAfterMs;
  return input.now.getTime() >= due ? { reload: true, reason: "AwaitingKubelet" } : { reload: false, reason: "UpToDate", retryAt: new Date(Math.min(due, input.lastReloadTime!.getTime() + input.settleWindowMs)) };
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

/** What the live checks found that the managed configuration forbids. */
export type InsecureFinding = "ServerNotServingTLS" | "PlaintextAccepted";

export interface RemedyInput {
  finding: InsecureFinding;
  strategy: ReloadStrategy;
  hasWorkload: boolean;
  /** When the operator last asked the database workload to restart (its pod-template annotation). */
  lastRestartAt: Date | undefined;
  /** When the operator last reloaded the server for such a finding. */
  lastReloadAt: Date | undefined;
  now: Date;
  /** A restart takes a while to show: asking again sooner would only restart a server that is coming up. */
  restartIntervalMs: number;
  reloadIntervalMs: number;
}

export type Remedy = { action: "Restart" | "Reload" } | { action: "Wait"; until: Date } | { action: "Manual"; why: string };

/**
 * How to get a server that has dropped the managed configuration (it restarted or reloaded while the blocks were
 * missing from its ConfigMap, which is back now) to load it again. Without TLS it cannot be reloaded over mTLS,
 * only restarted; with TLS but a plain-TCP path, a reload loads the restored pg_hba.conf.
 */
export function decideRemedy(input: RemedyInput): Remedy {
  if (input.strategy === "None") return { action: "Manual", why: "reload.strategy is None: reload or restart the server yourself" };
  const restart = input.finding === "ServerNotServingTLS" || input.strategy === "RolloutRestart";
  if (restart && !input.hasWorkload) return { action: "Manual", why: "there is no spec.workloadRef to restart: restart the server yourself" };
  const last = restart ? input.lastRestartAt : input.lastReloadAt;
  const due = last ? last.getTime() + (restart ? input.restartIntervalMs : input.reloadIntervalMs) : 0;
  if (input.now.getTime() < due) return { action: "Wait", until: new Date(due) };
  return { action: restart ? "Restart" : "Reload" };
}
