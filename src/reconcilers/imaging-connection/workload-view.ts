/**
 * What a CAST Imaging workload carries, read from the caches alone: the connections that target it, which of them
 * it admits, and what its pod template and CAST .ini must hold. The workload reconciler applies it; the connection
 * reconciler reads from it how far its workloads are.
 */
import { fail, type Refusal } from "../../api/result";
import { clientFilePaths } from "../../imaging/declaration";
import {
  admitConnections,
  chartIniAt,
  connectionVolumeName,
  iniConfigMapName,
  withChartPlan,
  type WorkloadAdmission,
  type WorkloadCandidate,
} from "../../imaging/workload-plan";
import type { WorkloadKind } from "../../imaging/pod-template";
import { IMC_BY_CAST_NAMESPACE, IMC_BY_WORKLOAD, workloadKey, type OperatorContext, type WorkloadObject } from "../context";
import { chartWorkloadPlan, mountEntryFor } from "./chart-delivery";
import { connectionWorkloadOptIn } from "./opt-in";
import { olderFirst, ownClientSecret, resolveConnection } from "./target";

export interface WorkloadView {
  kind: WorkloadKind;
  namespace: string;
  name: string;
  workload?: WorkloadObject;
  iniConfigMapName: string;
  /** The connections eligible for this workload, oldest first. */
  candidates: WorkloadCandidate[];
  admission: WorkloadAdmission;
  /** This workload's turn to restart for new chart material, when it is now. */
  restart?: { material: string; message: string; connection?: string };
}

/**
 * Which connections this workload carries and what its template and .ini must hold. A connection is a candidate
 * once its client Secret exists (mounting a Secret that does not exist yet would hold new pods in
 * ContainerCreating) and while it is not being deleted.
 */
export function workloadView(ctx: OperatorContext, kind: WorkloadKind, namespace: string, name: string): WorkloadView {
  const workload = ctx.cache.workloads[kind].get(namespace, name);
  const iniName = iniConfigMapName(kind, name);
  const candidates: WorkloadCandidate[] = [];
  const notOptedIn = new Map<string, Refusal>();
  const targeting = new Set([
    ...ctx.cache.imagingConnections.byIndex(IMC_BY_WORKLOAD, workloadKey(kind, namespace, name)),
    ...ctx.cache.imagingConnections.byIndex(IMC_BY_CAST_NAMESPACE, namespace),
  ]);
  for (const imc of [...targeting].filter((c) => !c.metadata.deletionTimestamp).sort(olderFirst)) {
    const resolved = resolveConnection(ctx, imc);
    if (!resolved.ok || !ownClientSecret(ctx, imc, resolved.spec.secretName)) continue;
    const entry = mountEntryFor(imc, resolved.spec, kind, workload, name);
    if (!entry) continue;
    if (workload) {
      // The workload's owner decides which connections it carries; one it already carries stays (grandfathering).
      const carried = workloadMountsConnection(workload, imc.metadata.name, resolved.spec.secretName);
      const listed = resolved.spec.workloads.some((w) => w.kind === kind && w.name === name);
      const release = listed ? undefined : resolved.spec.castImaging;
      const optIn = connectionWorkloadOptIn(kind, workload, imc.metadata.name, carried, release);
      if (!optIn.ok) {
        notOptedIn.set(imc.metadata.name, fail(optIn.reason, optIn.message));
        continue;
      }
    }
    const paths = clientFilePaths(entry.mountPath);
    const { db } = resolved.target;
    candidates.push({
      name: imc.metadata.name,
      secretName: resolved.spec.secretName,
      sslMode: resolved.spec.sslMode,
      libpqEnv: resolved.spec.libpqEnv,
      workload: entry,
      iniEntry: {
        host: db.host,
        port: db.port,
        sslMode: resolved.spec.sslMode,
        certificatePath: paths.certificatePath,
        keyPath: paths.keyPath,
        rootCertificatePath: paths.rootCertificatePath,
      },
    });
  }
  const iniAt = chartIniAt(workload);
  const admission: WorkloadAdmission = workload
    ? admitConnections({ candidates, workload, iniConfigMapName: iniName, ...(iniAt ? { iniAt } : {}) })
    : { plan: { mounts: [], env: [], annotations: {} }, ini: "", admitted: [], refused: new Map() };
  for (const [c, refusal] of notOptedIn) admission.refused.set(c, refusal);
  const chart = workload ? chartWorkloadPlan(ctx, kind, workload) : undefined;
  admission.plan = withChartPlan(admission.plan, chart?.plan);
  const restart = chart?.restart ? { restart: chart.restart } : {};
  return { kind, namespace, name, workload, iniConfigMapName: iniName, candidates, admission, ...restart };
}

/** Does the live template mount this connection's Secret (whatever else it carries)? */
export function workloadMountsConnection(workload: WorkloadObject | undefined, connectionName: string, secretName: string): boolean {
  const volume = workload?.spec?.template?.spec?.volumes?.find((v) => v.name === connectionVolumeName(connectionName));
  return volume?.secret?.secretName === secretName;
}
