/**
 * Who re-applies an object besides the operator: the owner whose next `helm upgrade` or GitOps sync must keep
 * succeeding, and would undo (or conflict with) anything the operator wrote into fields it applies. Pure.
 */
import type { V1ManagedFieldsEntry } from "@kubernetes/client-node";

export const HELM_RELEASE_ANNOTATION = "meta.helm.sh/release-name";
const HELM_NAMESPACE_ANNOTATION = "meta.helm.sh/release-namespace";
const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
const LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration";

export interface AppliedMeta {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  managedFields?: Pick<V1ManagedFieldsEntry, "manager" | "operation">[];
}

export interface Appliers {
  /** Appliers whose next apply conflicts with, or silently replaces, a field the operator changed: Helm, server-side apply. */
  owners: string[];
  /** kubectl's client-side apply: a re-apply replaces the keys it names; the operator writes its blocks back after it. */
  clientSideApply: boolean;
}

/**
 * Helm v3 marks what it installs with labels and annotations (and merges client-side); Helm v4, Argo CD and Flux
 * apply server-side and appear in managedFields as Apply managers. `ours` are the operator's own field managers.
 */
export function appliersOf(meta: AppliedMeta, ours: readonly string[]): Appliers {
  const owners: string[] = [];
  const release = meta.annotations?.[HELM_RELEASE_ANNOTATION];
  const helm = release !== undefined || meta.labels?.[MANAGED_BY_LABEL] === "Helm";
  if (helm) {
    const ns = meta.annotations?.[HELM_NAMESPACE_ANNOTATION];
    owners.push(release ? `Helm release ${release}${ns ? ` (namespace ${ns})` : ""}` : "Helm");
  }
  const applyManagers = new Set(
    (meta.managedFields ?? [])
      .filter((f) => f.operation === "Apply" && f.manager && !ours.includes(f.manager) && !(helm && f.manager === "helm"))
      .map((f) => f.manager!),
  );
  for (const m of applyManagers) owners.push(`server-side apply by field manager ${m}`);
  return { owners, clientSideApply: meta.annotations?.[LAST_APPLIED_ANNOTATION] !== undefined };
}
