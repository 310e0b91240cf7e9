/**
 * The CAST Imaging workloads' side of ImagingConnections: one reconcile per Deployment/StatefulSet, the only
 * writer of its mounts, env and CAST .ini. All connections targeting a workload are planned together, so two
 * connections reconciled at once can never take back each other's mounts, and a Helm upgrade or GitOps sync that
 * replaced the pod template is repaired on the workload's own watch event.
 */
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, OWNER_LABEL, type OwnerReference } from "../api/types";
import { clientFilePaths } from "../imaging/declaration";
import { admitConnections, CAST_INI_FILE, connectionVolumeName, iniConfigMapName, workloadHasExactly, type WorkloadAdmission, type WorkloadCandidate } from "../imaging/workload-plan";
import { podTemplateApplyPatch, type WorkloadKind } from "../imaging/pod-template";
import { apiVersionOf, RESOURCES } from "../kube/resources";
import { FIELD_MANAGER } from "../kube/rest";
import type { ReconcileResult } from "../runtime/workqueue";
import { resolveConnection, ownClientSecret } from "./connection-target";
import { IMC_BY_WORKLOAD, parseWorkloadKey, workloadKey, type ConfigMapObject, type ImagingConnectionObject, type OperatorContext, type WorkloadObject } from "./context";

/** Its own field manager: applying the connections' plan never touches the server mount a SecureDatabase owns. */
export const CONNECTIONS_FIELD_MANAGER = `${FIELD_MANAGER}-connections`;
/** The owner label value of the .ini ConfigMaps (their ownerReference names the workload). */
export const CAST_INI_OWNER = "cast-ini";

export interface WorkloadView {
  kind: WorkloadKind;
  namespace: string;
  name: string;
  workload?: WorkloadObject;
  iniConfigMapName: string;
  /** The connections eligible for this workload, oldest first. */
  candidates: WorkloadCandidate[];
  admission: WorkloadAdmission;
}

const byAge = (a: ImagingConnectionObject, b: ImagingConnectionObject): number => {
  const ta = a.metadata.creationTimestamp ? new Date(a.metadata.creationTimestamp).getTime() : 0;
  const tb = b.metadata.creationTimestamp ? new Date(b.metadata.creationTimestamp).getTime() : 0;
  return ta - tb || (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0);
};

/**
 * Which connections this workload carries and what its template and .ini must hold, from the caches alone. A
 * connection is a candidate once its client Secret exists (mounting a Secret that does not exist yet would hold
 * new pods in ContainerCreating) and while it is not being deleted.
 */
export function workloadView(ctx: OperatorContext, kind: WorkloadKind, namespace: string, name: string): WorkloadView {
  const workload = ctx.cache.workloads[kind].get(namespace, name);
  const iniName = iniConfigMapName(kind, name);
  const candidates: WorkloadCandidate[] = [];
  const targeting = ctx.cache.imagingConnections.byIndex(IMC_BY_WORKLOAD, workloadKey(kind, namespace, name)).filter((imc) => !imc.metadata.deletionTimestamp);
  for (const imc of targeting.sort(byAge)) {
    const resolved = resolveConnection(ctx, imc);
    if (!resolved.ok || !ownClientSecret(ctx, imc, resolved.spec.secretName)) continue;
    const entry = resolved.spec.workloads.find((w) => w.kind === kind && w.name === name);
    if (!entry) continue;
    const paths = clientFilePaths(entry.mountPath);
    candidates.push({
      name: imc.metadata.name,
      secretName: resolved.spec.secretName,
      sslMode: resolved.spec.sslMode,
      libpqEnv: resolved.spec.libpqEnv,
      workload: entry,
      iniEntry: { host: resolved.target.db.host, port: resolved.target.db.port, sslMode: resolved.spec.sslMode, certificatePath: paths.certificatePath, keyPath: paths.keyPath, rootCertificatePath: paths.rootCertificatePath },
    });
  }
  const admission: WorkloadAdmission = workload
    ? admitConnections({ candidates, workload, iniConfigMapName: iniName })
    : { plan: { mounts: [], env: [], annotations: {} }, ini: "", admitted: [], refused: new Map() };
  return { kind, namespace, name, workload, iniConfigMapName: iniName, candidates, admission };
}

/** Does the live template mount this connection's Secret (whatever else it carries)? */
export function workloadMountsConnection(workload: WorkloadObject | undefined, connectionName: string, secretName: string): boolean {
  const volume = workload?.spec?.template?.spec?.volumes?.find((v) => v.name === connectionVolumeName(connectionName));
  return volume?.secret?.secretName === secretName;
}

export class ConnectionWorkloadReconciler {
  constructor(private readonly ctx: OperatorContext) {}

  async reconcile(key: string): Promise<ReconcileResult> {
    const { kind, namespace, name } = parseWorkloadKey(key);
    const view = workloadView(this.ctx, kind, namespace, name);
    const workload = view.workload;
    if (!workload) return {};
    const { plan, ini, admitted } = view.admission;
    // Files first, then the mount that makes pods read them; on the way out, the reverse.
    if (admitted.length > 0) await this.ensureIni(view, workload, ini);
    if (!workloadHasExactly(workload, plan)) {
      const secretOf = (c: string): string => view.candidates.find((x) => x.name === c)?.secretName ?? "";
      const lost = admitted.filter((c) => this.wasPatched(c, view) && !workloadMountsConnection(workload, c, secretOf(c)));
      const written = await this.ctx.client.apply<WorkloadObject>(RESOURCES[kind], { namespace, name }, podTemplateApplyPatch(kind, name, namespace, plan), { fieldManager: CONNECTIONS_FIELD_MANAGER });
      this.ctx.cache.workloads[kind].observe(written);
      const summary = admitted.length > 0 ? `mounts ImagingConnection${admitted.length > 1 ? "s" : ""} ${admitted.join(", ")} and the CAST .ini (ConfigMap ${view.iniConfigMapName})` : "no longer mounts any ImagingConnection";
      this.ctx.log.info("workload patched", { resource: `${kind}/${name}`, namespace, reason: "WorkloadPatched", message: summary });
      for (const c of admitted) {
        const imc = this.ctx.cache.imagingConnections.get(namespace, c);
        if (!imc) continue;
        if (lost.includes(c)) {
          await this.ctx.events.record(imc, "Warning", "MountsRestored", `${kind} ${name} had lost this connection's volume and mounts (its pod template was replaced, e.g. by a Helm upgrade or a GitOps sync); put them back`);
        } else if (!workloadMountsConnection(workload, c, secretOf(c))) {
          await this.ctx.events.record(imc, "Normal", "WorkloadPatched", `${kind} ${name} now mounts Secret ${secretOf(c)} and the CAST .ini`);
        }
      }
    }
    if (admitted.length === 0) await this.deleteIni(view);
    return {};
  }


  private wasPatched(connection: string, view: WorkloadView): boolean {
    const imc = this.ctx.cache.imagingConnections.get(view.namespace, connection);
    return (imc?.status?.workloads ?? []).some((w) => w.kind === view.kind && w.name === view.name && w.state === "Patched");
  }

  private async ensureIni(view: WorkloadView, workload: WorkloadObject, ini: string): Promise<void> {
    const cached = this.ctx.cache.configMaps.get(view.namespace, view.iniConfigMapName);
    if (cached?.data?.[CAST_INI_FILE] === ini && Object.keys(cached.data).length === 1) return;
    const owner: OwnerReference = { apiVersion: apiVersionOf(RESOURCES[view.kind]), kind: view.kind, name: view.name, uid: workload.metadata.uid ?? "", controller: false, blockOwnerDeletion: false };
    const written = await this.ctx.client.apply<ConfigMapObject>(
      RESOURCES.ConfigMap,
      { namespace: view.namespace, name: view.iniConfigMapName },
      {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: view.iniConfigMapName, namespace: view.namespace, labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [OWNER_LABEL]: CAST_INI_OWNER }, ownerReferences: [owner] },
        data: { [CAST_INI_FILE]: ini },
      },
      { fieldManager: CONNECTIONS_FIELD_MANAGER },
    );
    this.ctx.cache.configMaps.observe(written);
  }

  private async deleteIni(view: WorkloadView): Promise<void> {
    const cached = this.ctx.cache.configMaps.get(view.namespace, view.iniConfigMapName);
    if (cached?.metadata.labels?.[OWNER_LABEL] !== CAST_INI_OWNER) return;
    await this.ctx.client.delete(RESOURCES.ConfigMap, { namespace: view.namespace, name: view.iniConfigMapName });
    this.ctx.cache.configMaps.forget(view.namespace, view.iniConfigMapName);
  }
}
