/**
 * Step 3, the workloads: the workload reconciler patches them (workload-reconciler.ts); here the connection reads
 * how far it got for each workload it serves (listed, or found in its CAST Imaging release), and says so in
 * WorkloadsPatched and status.workloads: mounted, delivered through the chart's Secret, restarting, or left alone.
 */
import type { ResolvedImagingConnectionSpec } from "../../api/defaults";
import { asReason, Reason } from "../../api/reasons";
import { IMAGING_CONNECTION_CONDITIONS as C, type WorkloadStatus } from "../../api/types";
import type { ConsumerTurn } from "../../imaging/restart-order";
import { castIniPath, workloadHasExactly } from "../../imaging/workload-plan";
import type { ConditionInput } from "../../kube/conditions";
import type { ImagingConnectionObject, OperatorContext } from "../context";
import { chartTurns, consumerTurn, type WorkloadTarget } from "./chart-delivery";
import { CHART_MATERIAL_ANNOTATION } from "../../imaging/chart-contract";
import { connectionWorkloadOptIn } from "./opt-in";
import { recordEvents, type PlannedEvent } from "./planned-event";
import { iniConfigMapConflict, readIniConfigMap } from "./workload-reconciler";
import type { TargetProblem } from "./target";
import { workloadView, type WorkloadView } from "./workload-view";

export interface WorkloadState {
  status: WorkloadStatus;
  problem?: { reason: Reason; message: string };
}

/** One served workload as observed: its target, and what its delivery needs to be judged. */
export interface ObservedTarget {
  target: WorkloadTarget;
  /** Mount delivery: what the workload carries. */
  view?: WorkloadView;
  /** Mount delivery: why its CAST .ini ConfigMap cannot be written (a same-named ConfigMap not the operator's). */
  iniConflict?: string;
  /** ChartSecret delivery: its turn for the chart Secret's current material (undefined: the Secret is not filled). */
  turn?: ConsumerTurn;
}

export interface WorkloadsObserved {
  connection: string;
  namespace: string;
  spec: ResolvedImagingConnectionSpec;
  targets: readonly ObservedTarget[];
  /** Why the chart's Secret is not filled by this connection, if it is not. */
  chartProblem?: { reason: Reason; message: string };
  /** Why the connection is not mountable (it does not resolve), if it is not. */
  unmountedFor?: TargetProblem;
}

/**
 * Each served workload's state, WorkloadsPatched, and an event per workload problem. A connection that does not
 * resolve has already said why in its own event: its workloads' problems are not repeated as events.
 */
export function planWorkloads(observed: WorkloadsObserved): {
  statuses: WorkloadStatus[];
  condition: ConditionInput;
  events: PlannedEvent[];
} {
  const states = observed.targets.map((t) => workloadState(observed, t));
  const events: PlannedEvent[] = observed.unmountedFor
    ? []
    : states.flatMap((s) => (s.problem ? [{ type: "Warning" as const, reason: s.problem.reason, message: s.problem.message }] : []));
  const condition = workloadsCondition(states, observed.spec.castImaging ? releaseWords(observed) : undefined);
  return { statuses: states.map((s) => s.status), condition, events };
}

const releaseWords = (o: WorkloadsObserved): string => {
  const target = o.spec.castImaging!;
  return "release" in target ? `release ${target.release}` : `selector ${JSON.stringify(target.matchLabels)}`;
};

function workloadState(observed: WorkloadsObserved, t: ObservedTarget): WorkloadState {
  const { target } = t;
  const base: WorkloadStatus = {
    kind: target.kind,
    name: target.name,
    delivery: target.delivery.delivery,
    ...(target.component ? { component: target.component } : {}),
    ...(target.delivery.delivery === "Mount" && target.entry ? { mountPath: target.entry.mountPath } : {}),
  };
  if (!target.workload) {
    const message = `${target.kind} ${target.name} does not exist in namespace ${observed.namespace}`;
    return { status: { ...base, state: "NotFound", message }, problem: { reason: Reason.WorkloadNotFound, message } };
  }
  const delivery = target.delivery;
  if (delivery.delivery === "None") return { status: { ...base, state: "LeftAlone", message: delivery.why } };
  if (delivery.delivery === "Mount") return mountState(observed, base, t.view!, t.iniConflict);
  if ("refused" in delivery) {
    return { status: { ...base, state: "Conflict", message: delivery.refused.message }, problem: delivery.refused };
  }
  const chartBase = { ...base, mountPath: delivery.contract.filesDir };
  const carried = target.workload.spec?.template?.metadata?.annotations?.[CHART_MATERIAL_ANNOTATION] !== undefined;
  const release = target.listed ? undefined : observed.spec.castImaging;
  const optIn = connectionWorkloadOptIn(target.kind, target.workload, observed.connection, carried, release);
  if (!optIn.ok) return { status: { ...chartBase, state: "Conflict", message: optIn.message }, problem: optIn };
  if (observed.chartProblem) {
    return { status: { ...chartBase, state: "Conflict", message: observed.chartProblem.message }, problem: observed.chartProblem };
  }
  if (observed.unmountedFor || !t.turn) {
    const message = observed.unmountedFor
      ? `Secret ${observed.spec.chartSecretName} is not filled while the connection has no certificate (${observed.unmountedFor.reason})`
      : `waiting for Secret ${observed.spec.chartSecretName} of CAST's chart to be filled`;
    return { status: { ...chartBase, state: "Pending", message } };
  }
  const turn = t.turn;
  if (turn.state === "Restarting" && turn.stalled) {
    return { status: { ...chartBase, state: "Restarting", message: turn.message }, problem: { reason: Reason.RolloutStalled, message: `${target.kind} ${target.name}: ${turn.message}` } };
  }
  const message =
    turn.state === "Delivered"
      ? `Secret ${observed.spec.chartSecretName} holds the current material and ${turn.message}; the files are in ${delivery.contract.filesDir}`
      : turn.message;
  return { status: { ...chartBase, state: turn.state, message } };
}

function mountState(observed: WorkloadsObserved, base: WorkloadStatus, view: WorkloadView, iniConflict?: string): WorkloadState {
  const { connection, spec, unmountedFor } = observed;
  const refused = view.admission.refused.get(connection);
  if (refused) {
    const state = refused.reason === Reason.ContainerNotFound || refused.reason === Reason.NoContainers ? "NotFound" : "Conflict";
    return { status: { ...base, state, message: refused.message }, problem: refused };
  }
  if (iniConflict) return { status: { ...base, state: "Conflict", message: iniConflict }, problem: { reason: Reason.NameConflict, message: iniConflict } };
  if (unmountedFor) {
    const message = `not mounted while the connection has no certificate (${unmountedFor.reason}); mounted again once it has`;
    return { status: { ...base, state: "Pending", message }, problem: { reason: unmountedFor.reason, message: unmountedFor.message } };
  }
  if (view.workload && view.admission.admitted.includes(connection) && workloadHasExactly(view.workload, view.admission.plan)) {
    const message = `mounts Secret ${spec.secretName} at ${base.mountPath} and the CAST .ini at ${castIniPath(view.workload)}`;
    return { status: { ...base, state: "Patched", message } };
  }
  return { status: { ...base, state: "Pending", message: "waiting for the operator to patch the pod template" } };
}

const DONE: ReadonlySet<string | undefined> = new Set(["Patched", "Delivered", "LeftAlone"]);

/**
 * WorkloadsPatched: True when every served workload has the certificate the way it reads it (left-alone ones do
 * not count); otherwise the first that does not, and why.
 */
export function workloadsCondition(
  workloads: readonly { status: WorkloadStatus; problem?: { reason: Reason } }[],
  release?: string,
): ConditionInput {
  if (workloads.length === 0) {
    if (release) {
      const message = `${release} has no Deployment or StatefulSet with CAST's imaging.service label in this namespace (yet)`;
      return { type: C.WorkloadsPatched, status: "False", reason: Reason.WorkloadNotFound, message };
    }
    const message = "spec.workloads is empty: mount the client Secret yourself (status.declaration gives the file names)";
    return { type: C.WorkloadsPatched, status: "True", reason: Reason.NoWorkloads, message };
  }
  const blocking = workloads.find((w) => !DONE.has(w.status.state));
  if (!blocking) {
    const names = (state: string) => workloads.filter((w) => w.status.state === state).map((w) => `${w.status.kind} ${w.status.name}`);
    const parts = [
      names("Patched").length > 0 ? `${names("Patched").join(", ")} mount${names("Patched").length === 1 ? "s" : ""} the client Secret and the CAST .ini` : "",
      names("Delivered").length > 0 ? `${names("Delivered").join(", ")} started with the material of CAST's chart Secret` : "",
      names("LeftAlone").length > 0 ? `${names("LeftAlone").join(", ")} left alone (see status.workloads)` : "",
    ].filter((p) => p);
    const reason = names("Patched").length > 0 || names("Delivered").length === 0 ? Reason.Patched : Reason.Delivered;
    return { type: C.WorkloadsPatched, status: "True", reason, message: parts.join("; ") };
  }
  const reason = blocking.problem?.reason ?? asReason(String(blocking.status.state));
  const { kind, name, message, state } = blocking.status;
  return { type: C.WorkloadsPatched, status: "False", reason, message: `${kind} ${name}: ${message ?? state}` };
}

/**
 * Whether the workload's .ini ConfigMap name is taken by someone else. Read from the API server only while this
 * connection is admitted there, not patched yet, and the cache has no ConfigMap of ours under that name.
 */
async function observeIniConflict(ctx: OperatorContext, view: WorkloadView, connection: string): Promise<string | undefined> {
  if (!view.workload || !view.admission.admitted.includes(connection)) return undefined;
  const cached = ctx.cache.configMaps.get(view.namespace, view.iniConfigMapName);
  if (cached || workloadHasExactly(view.workload, view.admission.plan)) return iniConfigMapConflict(cached, view.kind, view.name);
  return iniConfigMapConflict(await readIniConfigMap(ctx, view.namespace, view.iniConfigMapName), view.kind, view.name);
}

/** Reads the served workloads from the caches, records their problems, and returns their status and condition. */
export async function reportWorkloads(
  ctx: OperatorContext,
  imc: ImagingConnectionObject,
  spec: ResolvedImagingConnectionSpec,
  targets: readonly WorkloadTarget[],
  problems: { unmountedFor?: TargetProblem; chartProblem?: { reason: Reason; message: string } } = {},
): Promise<{ statuses: WorkloadStatus[]; condition: ConditionInput }> {
  const namespace = imc.metadata.namespace!;
  const chart = chartTurns(ctx, namespace, spec.chartSecretName);
  const observed = await Promise.all(targets.map(async (target): Promise<ObservedTarget> => {
    if (target.delivery.delivery === "Mount") {
      const view = workloadView(ctx, target.kind, namespace, target.name);
      const iniConflict = await observeIniConflict(ctx, view, imc.metadata.name);
      return { target, view, ...(iniConflict ? { iniConflict } : {}) };
    }
    const turn = chart ? consumerTurn(chart.turns, target.kind, target.name) : undefined;
    return { target, ...(turn ? { turn } : {}) };
  }));
  const plan = planWorkloads({ connection: imc.metadata.name, namespace, spec, targets: observed, ...problems });
  await recordEvents(ctx, imc, plan.events);
  return { statuses: plan.statuses, condition: plan.condition };
}
