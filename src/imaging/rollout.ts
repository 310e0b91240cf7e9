/**
 * Where a Deployment's or StatefulSet's rollout stands, read from what its controller reports: the facts
 * `kubectl rollout status` waits for. Pure.
 */
import type { Workload, WorkloadKind } from "./pod-template";

export type RolloutState =
  | { state: "Complete" }
  | { state: "Progressing"; message: string }
  | { state: "Stalled"; message: string };

export function rolloutState(kind: WorkloadKind, workload: Workload): RolloutState {
  const status = workload.status ?? {};
  const generation = workload.metadata.generation ?? 0;
  if ((status.observedGeneration ?? 0) < generation) {
    return { state: "Progressing", message: `the ${kind} controller has not yet seen generation ${generation}` };
  }
  const wanted = workload.spec?.replicas ?? 1;
  const updated = status.updatedReplicas ?? 0;
  if (kind === "Deployment") {
    const progressing = status.conditions?.find((c) => c.type === "Progressing");
    if (progressing?.status === "False" && progressing.reason === "ProgressDeadlineExceeded") {
      return { state: "Stalled", message: `rollout stalled: ${progressing.message ?? "progress deadline exceeded"}` };
    }
    const total = status.replicas ?? 0;
    const available = status.availableReplicas ?? 0;
    if (updated < wanted) return { state: "Progressing", message: `${updated} of ${wanted} pods updated` };
    if (total > updated) return { state: "Progressing", message: `${total - updated} old pod(s) still terminating` };
    if (available < updated) return { state: "Progressing", message: `${available} of ${updated} updated pods available` };
    return { state: "Complete" };
  }
  const ready = status.readyReplicas ?? 0;
  if (status.updateRevision !== undefined && status.currentRevision !== status.updateRevision) {
    return { state: "Progressing", message: `${updated} of ${wanted} pods at revision ${status.updateRevision}` };
  }
  if (ready < wanted) return { state: "Progressing", message: `${ready} of ${wanted} pods ready` };
  return { state: "Complete" };
}
