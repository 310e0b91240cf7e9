/**
 * Step 4: the database workload mounts the server Secret (optional), and the remedy for a server that dropped the
 * managed configuration: a restart of that workload, or a reload.
 */
import { SERVER_VOLUME } from "../../api/default-values";
import type { ResolvedSecureDatabaseSpec } from "../../api/defaults";
import { Reason } from "../../api/reasons";
import { SECURE_DATABASE_CONDITIONS as C, type ReloadStrategy } from "../../api/types";
import type { ConditionInput } from "../../kube/conditions";
import { containerNames, foreignVolumeConflict, podTemplateApplyPatch, podTemplateHasPlan } from "../../imaging/pod-template";
import type { PodTemplatePlan, Workload } from "../../imaging/pod-template";
import { RESOURCES } from "../../kube/resources";
import { MERGE_PATCH } from "../../kube/rest";
import { reloadServer, type ProbeOptions } from "../../postgres/probe";
import type { OperatorContext, SecureDatabaseObject } from "../context";
import { workloadOptIn } from "./opt-in";
import { recordEvents, STALE_RETRY_MS, type PlannedEvent } from "./step";

export const CONFIG_VOLUME = "mtls-server-config";
/** The official postgres image's group (gid 999; CAST's chart uses the same in its restricted mode). */
const POSTGRES_IMAGE_GID = 999;

/** Configuration CommandLine: the container's command and the operator's pg_hba.conf ConfigMap. */
export interface CommandLinePlan {
  command: string[];
  configMapName: string;
}
/** Root-owned files of mode 0640 are what PostgreSQL accepts for its key when the group is the server's (fsGroup). */
const SERVER_KEY_MODE = 0o640;
const CONFIG_HASH_ANNOTATION = "mtls.imaging.dev/served-material";
/** Set on the database's pod template when the operator restarts the server; its value is when (RFC 3339). */
const RESTARTED_AT_ANNOTATION = "mtls.imaging.dev/restarted-at";
/** A server the operator restarted gets this long to come back before it is restarted again. */
const RESTART_INTERVAL_MS = 120_000;

/** The database workload as this pass found and left it. */
export interface WorkloadState {
  conditions: ConditionInput[];
  /** The pod template changed in this pass, so its pods are being replaced. */
  patched: boolean;
  /** When the operator last restarted the server (pod-template annotation; this pass's patch counts). */
  lastRestartAt?: Date;
  /** The workload has not opted in: it is neither patched nor restarted. */
  refused?: boolean;
}

export interface WorkloadMountPlan extends WorkloadState {
  /** The server-side apply of the pod template, when it lacks the mount. */
  apply?: object;
  events: PlannedEvent[];
}

/** Mount the server Secret where the configuration says; RolloutRestart also stamps the served material's hash. */
export function planWorkloadMount(
  workload: Workload | undefined,
  spec: ResolvedSecureDatabaseSpec,
  namespace: string,
  desiredHash: string,
  sdbName: string,
  commandLine?: CommandLinePlan,
): WorkloadMountPlan {
  const ref = spec.workloadRef;
  if (!ref) return { conditions: [], patched: false, events: [] };
  const notPatched = (reason: Reason, message: string, events: PlannedEvent[] = []): WorkloadMountPlan => ({
    conditions: [{ type: C.WorkloadPatched, status: "False", reason, message }],
    patched: false,
    events,
  });
  if (!workload) {
    const message = `${ref.kind} ${ref.name} (spec.workloadRef) does not exist in namespace ${namespace}`;
    return notPatched(Reason.WorkloadNotFound, message, [{ type: "Warning", reason: Reason.WorkloadNotFound, message }]);
  }
  // Patching and restarting a workload is its owner's decision: nothing is written to one that has not opted in.
  const optIn = workloadOptIn(workload, spec, namespace, sdbName);
  if (!optIn.ok) {
    return { ...notPatched(optIn.reason, optIn.message, [{ type: "Warning", reason: optIn.reason, message: optIn.message }]), refused: true };
  }
  const containers = containerNames(workload);
  const container = ref.container ?? containers[0];
  if (!container || !containers.includes(container)) {
    const has = containers.join(", ") || "none";
    return notPatched(Reason.ContainerNotFound, `${ref.kind} ${ref.name} has no container "${ref.container}" (it has: ${has})`);
  }
  const dir = spec.postgres.certificateDirectory;
  const secretName = spec.serverCertificate.secretName;
  const plan: PodTemplatePlan = {
    mounts: [{ volumeName: SERVER_VOLUME, source: { secretName }, defaultMode: SERVER_KEY_MODE, mountPath: dir, containers: [container] }],
    env: [],
    annotations: spec.reload.strategy === "RolloutRestart" ? { [CONFIG_HASH_ANNOTATION]: desiredHash } : {},
  };
  if (commandLine) {
    const configMapName = commandLine.configMapName;
    const mountPath = spec.postgres.configDirectory;
    plan.mounts.push({ volumeName: CONFIG_VOLUME, source: { configMapName }, defaultMode: 0o644, mountPath, containers: [container] });
    plan.commands = [{ container, command: commandLine.command }];
    // The key (0640, root) is readable by the server only through the pod's group; a chart's own fsGroup stays.
    const fsGroup = workload.spec?.template?.spec?.securityContext?.fsGroup;
    plan.fsGroup = fsGroup ?? POSTGRES_IMAGE_GID;
  }
  const conflict = foreignVolumeConflict(workload, plan);
  if (conflict) return notPatched(Reason.VolumeConflict, `${ref.kind} ${ref.name}: ${conflict}`);
  const patched = !podTemplateHasPlan(workload, plan);
  const restartedAt = Date.parse(workload.spec?.template?.metadata?.annotations?.[RESTARTED_AT_ANNOTATION] ?? "");
  const mountedAt = `${ref.kind} ${ref.name} mounts the server Secret at ${dir}`;
  const mounted = `mounted Secret ${secretName} at ${dir} in container ${container} of ${ref.kind} ${ref.name}`;
  return {
    conditions: [{ type: C.WorkloadPatched, status: "True", reason: Reason.Mounted, message: mountedAt }],
    patched,
    ...(Number.isFinite(restartedAt) ? { lastRestartAt: new Date(restartedAt) } : {}),
    ...(patched ? { apply: podTemplateApplyPatch(ref.kind, ref.name, namespace, plan) } : {}),
    events: patched ? [{ type: "Normal", reason: Reason.WorkloadPatched, message: mounted }] : [],
  };
}

export async function ensureWorkloadMount(
  ctx: OperatorContext,
  sdb: SecureDatabaseObject,
  spec: ResolvedSecureDatabaseSpec,
  workload: Workload | undefined,
  desiredHash: string,
  commandLine?: CommandLinePlan,
): Promise<WorkloadState> {
  const ref = spec.workloadRef;
  const namespace = sdb.metadata.namespace!;
  const { apply, events, ...state } = planWorkloadMount(workload, spec, namespace, desiredHash, sdb.metadata.name, commandLine);
  if (ref && apply) await ctx.client.apply(RESOURCES[ref.kind], { namespace, name: ref.name }, apply);
  await recordEvents(ctx, sdb, events);
  return state;
}

/** Restarts the database's pods (a rollout, as `kubectl rollout restart` does) by stamping the pod template. */
export async function restartServer(
  ctx: OperatorContext,
  sdb: SecureDatabaseObject,
  spec: ResolvedSecureDatabaseSpec,
  workload: WorkloadState,
  now: Date,
  why: string,
): Promise<void> {
  const ref = spec.workloadRef!;
  if (workload.refused) return;
  const stamp = { spec: { template: { metadata: { annotations: { [RESTARTED_AT_ANNOTATION]: now.toISOString() } } } } };
  await ctx.client.patch(RESOURCES[ref.kind], { namespace: sdb.metadata.namespace!, name: ref.name }, stamp, MERGE_PATCH);
  workload.lastRestartAt = now;
  await ctx.events.record(sdb, "Normal", Reason.RolloutRequested, `restarting ${ref.kind} ${ref.name}: ${why}`);
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
  if (restart && !input.hasWorkload) {
    return { action: "Manual", why: "there is no spec.workloadRef to restart: restart the server yourself" };
  }
  const last = restart ? input.lastRestartAt : input.lastReloadAt;
  const due = last ? last.getTime() + (restart ? input.restartIntervalMs : input.reloadIntervalMs) : 0;
  if (input.now.getTime() < due) return { action: "Wait", until: new Date(due) };
  return { action: restart ? "Restart" : "Reload" };
}

/** What the reconciler remembers of one database between passes (kept in memory: none of it belongs in status). */
export interface ReloadMemory {
  /** When the server was last reloaded again inside its settle window (see decideReload). */
  lastRepeatedReload?: Date;
  /** When the server was last reloaded because it accepted plain TCP (see decideRemedy). */
  lastRemedyReload?: Date;
}

/**
 * Gets a server that has dropped the managed configuration to load it again, no more often than a restart or
 * reload can show. Returns what was done, for the Verified message.
 */
export async function applyRemedy(
  ctx: OperatorContext,
  sdb: SecureDatabaseObject,
  spec: ResolvedSecureDatabaseSpec,
  finding: InsecureFinding,
  probe: ProbeOptions,
  workload: WorkloadState,
  memory: ReloadMemory,
  now: Date,
): Promise<string> {
  const decision = decideRemedy({
    finding,
    strategy: spec.reload.strategy,
    hasWorkload: spec.workloadRef !== undefined && !workload.refused,
    lastRestartAt: workload.lastRestartAt,
    lastReloadAt: memory.lastRemedyReload,
    now,
    restartIntervalMs: RESTART_INTERVAL_MS,
    reloadIntervalMs: STALE_RETRY_MS,
  });
  const ref = spec.workloadRef;
  switch (decision.action) {
    case "Manual":
      return decision.why;
    case "Wait": {
      const restarting = ref && (finding === "ServerNotServingTLS" || spec.reload.strategy === "RolloutRestart");
      const what = restarting ? `restart of ${ref.kind} ${ref.name}` : "reload";
      return `waiting for the ${what} requested earlier (checking again, next remedy not before ${decision.until.toISOString()})`;
    }
    case "Restart": {
      const why =
        finding === "ServerNotServingTLS"
          ? "the server no longer serves TLS (it started without the managed configuration)"
          : "the server accepts connections without TLS";
      await restartServer(ctx, sdb, spec, workload, now, why);
      return `restarting ${ref!.kind} ${ref!.name} so it loads the managed configuration again`;
    }
    case "Reload": {
      memory.lastRemedyReload = now;
      const result = await reloadServer(probe);
      return result.ok ? "reloaded it over mTLS so it loads the managed pg_hba.conf again" : `could not reload it: ${result.message}`;
    }
  }
}
