/**
 * The opt-in a CAST Imaging workload gives before the operator mounts a connection into it or, as a consumer of
 * CAST's chart Secret, patches and restarts it (src/api/opt-in.ts). Pure. Found in a release (spec.castImaging) or
 * listed, the same annotation: the release or the list is chosen by the connection's author, the annotation by
 * the workload's owner; one command annotates every component of a release.
 */
import { decideOptIn, IMAGING_CONNECTIONS_OPT_IN_ANNOTATION, type OptInVerdict } from "../../api/opt-in";
import { COMPONENT_LABEL, type ReleaseTarget } from "../../imaging/cast-chart";
import type { WorkloadKind } from "../../imaging/pod-template";

interface OptInWorkload {
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
}

/**
 * `grandfathered`: the workload already carries what the operator put there for this connection (its Secret
 * volume, or the chart material it was restarted with). `release`: found in a CAST release, so the message gives
 * the one command that opts in every component at once.
 */
export function connectionWorkloadOptIn(
  kind: WorkloadKind,
  workload: OptInWorkload,
  connection: string,
  grandfathered: boolean,
  release?: ReleaseTarget,
): OptInVerdict {
  const namespace = workload.metadata.namespace ?? "";
  const verdict = decideOptIn({
    object: `${kind} ${workload.metadata.name}`,
    ref: `${kind.toLowerCase()}/${workload.metadata.name}`,
    namespace,
    annotations: workload.metadata.annotations,
    annotation: IMAGING_CONNECTIONS_OPT_IN_ANNOTATION,
    asker: { kind: "ImagingConnection", name: connection },
    action: "mount its client certificate into (or restart for it)",
    grandfathered,
  });
  if (verdict.ok || !release) return verdict;
  return { ...verdict, message: `${verdict.message} (every component of the release at once: ${releaseOptInCommand(namespace, connection, release)})` };
}

/**
 * Annotates every Deployment and StatefulSet of CAST's chart in the namespace (or those the selector names). Helm
 * never renders this annotation, so its server-side upgrades (v4) leave it in place.
 */
export function releaseOptInCommand(namespace: string, connection: string, release: ReleaseTarget): string {
  const selector = "release" in release ? COMPONENT_LABEL : [COMPONENT_LABEL, ...Object.entries(release.matchLabels).map(([k, v]) => `${k}=${v}`)].join(",");
  return `kubectl annotate -n ${namespace} deployment,statefulset -l ${selector} ${IMAGING_CONNECTIONS_OPT_IN_ANNOTATION}=${connection}`;
}
