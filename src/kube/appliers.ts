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
  /** Helm (v3 labels and annotations, v4's server-side apply as manager `helm`): it re-renders every field it owns. */
  helm?: string;
  /** Other server-side appliers (Argo CD, Flux, `kubectl apply --server-side`): they may be told to leave fields alone. */
  serverSide: string[];
  /** kubectl's client-side apply: a re-apply replaces the keys it names; the operator writes its blocks back after it. */
  clientSideApply: boolean;
}

/** Everyone who re-applies the object, for status: "Helm release r, server-side apply by field manager argocd-controller". */
export function describeAppliers(a: Appliers): string | undefined {
  const parts = [...(a.helm ? [a.helm] : []), ...a.serverSide.map((m) => `server-side apply by field manager ${m}`), ...(a.clientSideApply ? ["kubectl apply (client-side)"] : [])];
  return parts.length > 0 ? parts.join(", ") : undefined;
}

/**
 * Helm v3 marks what it installs with labels and annotations (and merges client-side); Helm v4, Argo CD and Flux
 * apply server-side and appear in managedFields as Apply managers. `ours` are the operator's own field managers.
 */
export function appliersOf(meta: AppliedMeta, ours: readonly string[]): Appliers {
  const release = meta.annotations?.[HELM_RELEASE_ANNOTATION];
  const applyManagers = [
    ...new Set((meta.managedFields ?? []).filter((f) => f.operation === "Apply" && f.manager && !ours.includes(f.manager)).map((f) => f.manager!)),
  ];
  const helmByLabels = release !== undefined || meta.labels?.[MANAGED_BY_LABEL] === "Helm";
  let helm: string | undefined;
  if (helmByLabels || applyManagers.includes("helm")) {
    const ns = meta.annotations?.[HELM_NAMESPACE_ANNOTATION];
    helm = release ? `Helm release ${release}${ns ? ` (namespace ${ns})` : ""}` : "Helm";
  }
  return {
    ...(helm ? { helm } : {}),
    serverSide: applyManagers.filter((m) => m !== "helm"),
    clientSideApply: meta.annotations?.[LAST_APPLIED_ANNOTATION] !== undefined,
  };
}
