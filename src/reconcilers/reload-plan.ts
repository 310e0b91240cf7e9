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
}

export type ReloadDecision = { reload: false; reason: "UpToDate" | "WaitingForFiles" } | { reload: true; reason: "MaterialChanged" | "StillServingStale" };

/** Reload when the served material changed, or again when the server still serves stale files after a while. */
export function decideReload(input: ReloadInput): ReloadDecision {
  if (input.desiredHash !== input.appliedHash) return { reload: true, reason: "MaterialChanged" };
  if (!input.servingStale) return { reload: false, reason: "UpToDate" };
  if (input.strategy !== "SQL") return { reload: false, reason: "WaitingForFiles" };
  const since = input.lastReloadTime ? input.now.getTime() - input.lastReloadTime.getTime() : Infinity;
  return since >= input.retryAfterMs ? { reload: true, reason: "StillServingStale" } : { reload: false, reason: "WaitingForFiles" };
}
