/**
 * Deleting an ImagingConnection: its certificates are revoked in the database's ledger first (unless the database
 * says spec.trust.revokeOnDelete: false), while the finalizer still holds it; it leaves every workload plan at once
 * (the workload reconciler skips it); the finalizer goes when no workload mounts its Secret any more. The Secret
 * itself goes with its ownerReference.
 */
import { clientSecretName } from "../../api/defaults";
import { Reason } from "../../api/reasons";
import { FINALIZER } from "../../api/types";
import { RESOURCES } from "../../kube/resources";
import type { ReconcileResult } from "../../runtime/workqueue";
import type { ImagingConnectionObject, OperatorContext, WorkloadObject } from "../context";
import { removeFinalizer } from "../custom-resource";
import { revokeIssued } from "./revoke-issued";
import { workloadMountsConnection } from "./workload-view";

/** While deleting: how often to look whether the workloads have let go of the Secret. */
const RELEASE_POLL_MS = 2000;

export interface FinalizeObserved {
  imc: ImagingConnectionObject;
  /** The workloads the spec lists, as the cache has them (undefined: gone). */
  workloads: readonly (WorkloadObject | undefined)[];
}

export type FinalizePlan = { action: "none" } | { action: "wait"; requeueAfterMs: number } | { action: "release" };

export function planFinalize({ imc, workloads }: FinalizeObserved): FinalizePlan {
  if (!imc.metadata.finalizers?.includes(FINALIZER)) return { action: "none" };
  const secretName = imc.spec.secretName ?? clientSecretName(imc.metadata.name);
  const holding = workloads.some((w) => workloadMountsConnection(w, imc.metadata.name, secretName));
  return holding ? { action: "wait", requeueAfterMs: RELEASE_POLL_MS } : { action: "release" };
}

export async function finalizeConnection(ctx: OperatorContext, imc: ImagingConnectionObject): Promise<ReconcileResult> {
  const ns = imc.metadata.namespace!;
  const workloads = (imc.spec.workloads ?? []).map((w) => ctx.cache.workloads[w.kind]?.get(ns, w.name));
  const plan = planFinalize({ imc, workloads });
  if (plan.action === "none") return {};
  // Before the Secret can go: from then on nothing but the ledger remembers what was issued.
  const ref = { namespace: imc.spec.databaseRef?.namespace ?? ns, name: imc.spec.databaseRef?.name ?? "" };
  await revokeIssued(ctx, imc, ref, "cessationOfOperation", "the connection was deleted", ctx.now());
  if (plan.action === "wait") return { requeueAfterMs: plan.requeueAfterMs };
  await removeFinalizer(ctx, RESOURCES.ImagingConnection, imc);
  ctx.log.info("finalized", { resource: `ImagingConnection/${imc.metadata.name}`, namespace: ns, reason: Reason.Finalized });
  return {};
}
