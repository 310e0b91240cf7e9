/**
 * Step 3, the workloads: the workload reconciler patches them (workload-reconciler.ts); here the connection reads
 * how far it got for each workload it lists, and says so in WorkloadsPatched and status.workloads.
 */
import type { ResolvedImagingConnectionSpec } from "../../api/defaults";
import { asReason, Reason } from "../../api/reasons";
import { IMAGING_CONNECTION_CONDITIONS as C, type WorkloadStatus } from "../../api/types";
import { inMount } from "../../imaging/declaration";
import { CAST_INI_DIR, CAST_INI_FILE, workloadHasExactly } from "../../imaging/workload-plan";
import type { ConditionInput } from "../../kube/conditions";
import type { ImagingConnectionObject, OperatorContext } from "../context";
import { recordEvents, type PlannedEvent } from "./planned-event";
import type { TargetProblem } from "./target";
import { workloadView, type WorkloadView } from "./workload-view";

export interface WorkloadState {
  status: WorkloadStatus;
  problem?: { reason: Reason; message: string };
}

export interface WorkloadsObserved {
  connection: string;
  namespace: string;
  spec: ResolvedImagingConnectionSpec;
  /** One view per entry of spec.workloads, in the same order. */
  views: readonly WorkloadView[];
  /** Why the connection is not mountable (it does not resolve), if it is not. */
  unmountedFor?: TargetProblem;
}

/**
 * Each listed workload's state, WorkloadsPatched, and an event per workload problem. A connection that does not
 * resolve has already said why in its own event: its workloads' problems are not repeated as events.
 */
export function planWorkloads(observed: WorkloadsObserved): {
  statuses: WorkloadStatus[];
  condition: ConditionInput;
  events: PlannedEvent[];
} {
  const states = observed.spec.workloads.map((w, i) => workloadState(observed, w, observed.views[i]!));
  const events: PlannedEvent[] = observed.unmountedFor
    ? []
    : states.flatMap((s) => (s.problem ? [{ type: "Warning" as const, reason: s.problem.reason, message: s.problem.message }] : []));
  return { statuses: states.map((s) => s.status), condition: workloadsCondition(states), events };
}

type ListedWorkload = ResolvedImagingConnectionSpec["workloads"][number];

function workloadState(observed: WorkloadsObserved, w: ListedWorkload, view: WorkloadView): WorkloadState {
  const { connection, namespace, spec, unmountedFor } = observed;
  const base = { kind: w.kind, name: w.name, mountPath: w.mountPath };
  if (!view.workload) {
    const message = `${w.kind} ${w.name} does not exist in namespace ${namespace}`;
    return { status: { ...base, state: "NotFound", message }, problem: { reason: Reason.WorkloadNotFound, message } };
  }
  const refused = view.admission.refused.get(connection);
  if (refused) {
    const state = refused.reason === Reason.ContainerNotFound || refused.reason === Reason.NoContainers ? "NotFound" : "Conflict";
    return { status: { ...base, state, message: refused.message }, problem: refused };
  }
  if (unmountedFor) {
    const message = `not mounted while the connection has no certificate (${unmountedFor.reason}); mounted again once it has`;
    return { status: { ...base, state: "Pending", message }, problem: { reason: unmountedFor.reason, message: unmountedFor.message } };
  }
  if (view.admission.admitted.includes(connection) && workloadHasExactly(view.workload, view.admission.plan)) {
    const message = `mounts Secret ${spec.secretName} at ${w.mountPath} and the CAST .ini at ${inMount(CAST_INI_DIR, CAST_INI_FILE)}`;
    return { status: { ...base, state: "Patched", message } };
  }
  return { status: { ...base, state: "Pending", message: "waiting for the operator to patch the pod template" } };
}

/** WorkloadsPatched: True when every listed workload mounts the Secret; otherwise the first that does not, and why. */
export function workloadsCondition(workloads: readonly { status: WorkloadStatus; problem?: { reason: Reason } }[]): ConditionInput {
  if (workloads.length === 0) {
    const message = "spec.workloads is empty: mount the client Secret yourself (status.declaration gives the file names)";
    return { type: C.WorkloadsPatched, status: "True", reason: Reason.NoWorkloads, message };
  }
  const blocking = workloads.find((w) => w.status.state !== "Patched");
  if (!blocking) {
    const names = workloads.map((w) => `${w.status.kind} ${w.status.name}`).join(", ");
    const message = `${names} mount${workloads.length === 1 ? "s" : ""} the client Secret and the CAST .ini`;
    return { type: C.WorkloadsPatched, status: "True", reason: Reason.Patched, message };
  }
  const reason = blocking.problem?.reason ?? asReason(String(blocking.status.state));
  const { kind, name, message, state } = blocking.status;
  return { type: C.WorkloadsPatched, status: "False", reason, message: `${kind} ${name}: ${message ?? state}` };
}

/** Reads the listed workloads from the caches, records their problems, and returns their status and condition. */
export async function reportWorkloads(
  ctx: OperatorContext,
  imc: ImagingConnectionObject,
  spec: ResolvedImagingConnectionSpec,
  unmountedFor?: TargetProblem,
): Promise<{ statuses: WorkloadStatus[]; condition: ConditionInput }> {
  const namespace = imc.metadata.namespace!;
  const views = spec.workloads.map((w) => workloadView(ctx, w.kind, namespace, w.name));
  const plan = planWorkloads({ connection: imc.metadata.name, namespace, spec, views, ...(unmountedFor ? { unmountedFor } : {}) });
  await recordEvents(ctx, imc, plan.events);
  return { statuses: plan.statuses, condition: plan.condition };
}
