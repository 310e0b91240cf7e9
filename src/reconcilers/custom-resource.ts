/**
 * The writes every reconciler makes to its own custom resource: add and remove our finalizer (guarded by
 * resourceVersion, so a stale copy never wins) and merge-patch the status (what changed, only when something did).
 */
import { Reason } from "../api/reasons";
import { FINALIZER, type Condition } from "../api/types";
import { formatValidationErrors, type Invalid } from "../api/validate";
import { setConditions, type ConditionInput } from "../kube/conditions";
import { mergePatchOf, type Json } from "../kube/merge-patch";
import { JSON_PATCH, MERGE_PATCH, type ResourceType } from "../kube/rest";
import type { EventSubject } from "../kube/events";
import { TerminalError } from "../runtime/errors";
import type { Informer, KubeObject } from "../runtime/informer";
import type { ReconcileResult } from "../runtime/workqueue";
import type { OperatorContext } from "./context";

interface StatusShape {
  observedGeneration?: number;
  conditions?: Condition[];
}

type CustomResource<S> = KubeObject & { apiVersion: string; kind: string; status?: S };

/**
 * A deleting object whose spec is malformed (stored before a CRD change) cannot be cleaned up safely: say so, and
 * wait for the spec to be fixed rather than guess what to remove. The finalizer stays.
 */
export async function refuseCleanup(ctx: OperatorContext, obj: EventSubject, invalid: Invalid): Promise<never> {
  const problem = formatValidationErrors(invalid.errors);
  const message =
    `cannot clean up while the spec is malformed (${problem}): fix the spec, or remove the finalizer ${FINALIZER} ` +
    "by hand and undo the operator's changes yourself";
  await ctx.events.record(obj, "Warning", Reason.InvalidSpec, message);
  throw new TerminalError(Reason.InvalidSpec, message);
}

/** A value as JSON has it: undefined fields gone. */
const asJson = (value: unknown): { [key: string]: Json } => JSON.parse(JSON.stringify(value)) as { [key: string]: Json };

export async function addFinalizer<T extends KubeObject>(
  ctx: OperatorContext,
  type: ResourceType,
  cache: Informer<T>,
  obj: T,
): Promise<void> {
  if (obj.metadata.finalizers?.includes(FINALIZER)) return;
  const patched = await ctx.client.patch<T>(
    type,
    { namespace: obj.metadata.namespace, name: obj.metadata.name },
    [
      { op: "test", path: "/metadata/resourceVersion", value: obj.metadata.resourceVersion },
      obj.metadata.finalizers
        ? { op: "add", path: "/metadata/finalizers/-", value: FINALIZER }
        : { op: "add", path: "/metadata/finalizers", value: [FINALIZER] },
    ],
    JSON_PATCH,
  );
  cache.observe(patched);
  Object.assign(obj.metadata, { finalizers: patched.metadata.finalizers, resourceVersion: patched.metadata.resourceVersion });
}

export async function removeFinalizer(ctx: OperatorContext, type: ResourceType, obj: KubeObject): Promise<void> {
  await ctx.client.patch(
    type,
    { namespace: obj.metadata.namespace, name: obj.metadata.name },
    [
      { op: "test", path: "/metadata/resourceVersion", value: obj.metadata.resourceVersion },
      { op: "replace", path: "/metadata/finalizers", value: (obj.metadata.finalizers ?? []).filter((f) => f !== FINALIZER) },
    ],
    JSON_PATCH,
  );
}

/**
 * Sets the conditions and observedGeneration, and writes the status if it differs from what is stored: a merge patch
 * of what changed only (the operator is the status's one writer; a server-side apply of the whole status costs the
 * API server a field-by-field merge of all of it at every write).
 */
export async function writeStatus<S extends StatusShape, T extends CustomResource<S>>(
  ctx: OperatorContext,
  type: ResourceType,
  cache: Informer<T>,
  obj: T,
  status: S,
  inputs: readonly ConditionInput[],
  now: Date,
): Promise<void> {
  const generation = obj.metadata.generation;
  const conditions = setConditions(obj.status?.conditions, [...inputs], generation, now);
  const next: S = { ...status, observedGeneration: generation, conditions };
  const patch = mergePatchOf(asJson(obj.status ?? {}), asJson(next));
  if (Object.keys(patch).length === 0) return;
  const { name, namespace } = obj.metadata;
  const written = await ctx.client.patch<T>(type, { namespace, name }, { status: patch }, MERGE_PATCH, "status");
  cache.observe(written);
}

/** The earliest of the times a reconcile asked to run again (at least a second away), or none. */
export function requeueAtEarliest(times: readonly (Date | number)[], now: Date): ReconcileResult {
  if (times.length === 0) return {};
  const next = Math.min(...times.map((t) => (typeof t === "number" ? t : t.getTime())));
  return { requeueAfterMs: Math.max(1000, next - now.getTime()) };
}
