/**
 * The CAST Imaging workloads' side of ImagingConnections: one reconcile per Deployment/StatefulSet, the only
 * writer of its mounts, env and CAST .ini. All connections targeting a workload are planned together, so two
 * connections reconciled at once can never take back each other's mounts, and a Helm upgrade or GitOps sync that
 * replaced the pod template is repaired on the workload's own watch event.
 */
import { Reason } from "../../api/reasons";
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, OWNER_LABEL, type OwnerReference } from "../../api/types";
import { CHART_MATERIAL_ANNOTATION } from "../../imaging/chart-contract";
import { CAST_INI_FILE, workloadHasExactly } from "../../imaging/workload-plan";
import { podTemplateApplyPatch, type PodTemplatePlan } from "../../imaging/pod-template";
import { apiVersionOf, RESOURCES } from "../../kube/resources";
import { FIELD_MANAGER } from "../../kube/rest";
import type { ReconcileResult } from "../../runtime/workqueue";
import {
  parseWorkloadKey,
  type ConfigMapObject,
  type ImagingConnectionObject,
  type OperatorContext,
  type WorkloadObject,
} from "../context";
import { recordEvents, type PlannedEvent } from "./planned-event";
import { workloadMountsConnection, workloadView, type WorkloadView } from "./workload-view";

/** Its own field manager: applying the connections' plan never touches the server mount a SecureDatabase owns. */
export const CONNECTIONS_FIELD_MANAGER = `${FIELD_MANAGER}-connections`;
/** The owner label value of the .ini ConfigMaps (their ownerReference names the workload). */
export const CAST_INI_OWNER = "cast-ini";

/** A workload whose .ini ConfigMap name is taken is looked at again after this long (a human renames or deletes it). */
const INI_CONFLICT_RETRY_MS = 60_000;

/**
 * The .ini ConfigMap has a fixed name (`cast-mtls-ini-<kind>-<workload>`): one that exists and was not written by
 * the operator is never overwritten (nor mounted). The conflict, or undefined when it is absent or ours.
 */
export function iniConfigMapConflict(configMap: ConfigMapObject | undefined, kind: string, workload: string): string | undefined {
  if (!configMap || configMap.metadata.labels?.[OWNER_LABEL] === CAST_INI_OWNER) return undefined;
  const owner = configMap.metadata.labels?.[OWNER_LABEL];
  return (
    `ConfigMap ${configMap.metadata.name} (the CAST .ini of ${kind} ${workload}) exists and was not written by the operator` +
    (owner ? ` (it belongs to ${owner.replace(".", " ")})` : "") +
    "; it is never overwritten: rename or delete it, and the operator writes its .ini there"
  );
}

export interface WorkloadObserved {
  view: WorkloadView & { workload: WorkloadObject };
  /** The .ini ConfigMap as the cache has it. */
  iniConfigMap?: ConfigMapObject;
  /** The admitted connections as the cache has them (their status says where they were patched before). */
  connections: ReadonlyMap<string, ImagingConnectionObject>;
}

export interface WorkloadPlan {
  /** The .ini to write, when the ConfigMap does not hold exactly it. */
  ini?: string;
  /** The pod template to apply, when the workload does not carry exactly it; with the log line and events of that. */
  patch?: { template: PodTemplatePlan; summary: string; events: { connection: ImagingConnectionObject; event: PlannedEvent }[] };
  /** Delete the .ini ConfigMap: no connection is left. */
  deleteIni: boolean;
}

/** Files first, then the mount that makes pods read them; on the way out, the reverse. */
export function planWorkload(observed: WorkloadObserved): WorkloadPlan {
  const { view, iniConfigMap, connections } = observed;
  const { kind, name, workload } = view;
  const { plan, ini, admitted } = view.admission;
  const iniCurrent = iniConfigMap?.data?.[CAST_INI_FILE] === ini && Object.keys(iniConfigMap.data).length === 1;
  const result: WorkloadPlan = {
    ...(admitted.length > 0 && !iniCurrent ? { ini } : {}),
    deleteIni: admitted.length === 0 && iniConfigMap?.metadata.labels?.[OWNER_LABEL] === CAST_INI_OWNER,
  };
  if (workloadHasExactly(workload, plan)) return result;
  const secretOf = (c: string): string => view.candidates.find((x) => x.name === c)?.secretName ?? "";
  const wasPatched = (c: string): boolean =>
    (connections.get(c)?.status?.workloads ?? []).some((w) => w.kind === kind && w.name === name && w.state === "Patched");
  const events: { connection: ImagingConnectionObject; event: PlannedEvent }[] = [];
  for (const c of admitted) {
    const connection = connections.get(c);
    if (!connection || workloadMountsConnection(workload, c, secretOf(c))) continue;
    const event: PlannedEvent = wasPatched(c)
      ? {
          type: "Warning",
          reason: Reason.MountsRestored,
          message:
            `${kind} ${name} had lost this connection's volume and mounts (its pod template was replaced, ` +
            "e.g. by a Helm upgrade or a GitOps sync); put them back",
        }
      : { type: "Normal", reason: Reason.WorkloadPatched, message: `${kind} ${name} now mounts Secret ${secretOf(c)} and the CAST .ini` };
    events.push({ connection, event });
  }
  const mounts =
    admitted.length > 0
      ? `mounts ImagingConnection${admitted.length > 1 ? "s" : ""} ${admitted.join(", ")} ` +
        `and the CAST .ini (ConfigMap ${view.iniConfigMapName})`
      : plan.initContainers?.length || plan.annotations[CHART_MATERIAL_ANNOTATION]
        ? "consumes the Secret of CAST's chart (libpq's defaults for its psql init containers, the material it started with)"
        : "no longer mounts any ImagingConnection";
  const summary = view.restart ? `${mounts}; ${view.restart.message} (material ${view.restart.material})` : mounts;
  const restarted = view.restart?.connection ? connections.get(view.restart.connection) : undefined;
  if (view.restart && restarted) {
    const message = `${kind} ${name}: ${view.restart.message} (material ${view.restart.material})`;
    events.push({ connection: restarted, event: { type: "Normal", reason: Reason.WorkloadRestarted, message } });
  }
  return { ...result, patch: { template: plan, summary, events } };
}

/** The .ini ConfigMap from the API server (the cache does not hold one without the owner label). */
export function readIniConfigMap(ctx: OperatorContext, namespace: string, name: string): Promise<ConfigMapObject | undefined> {
  return ctx.client.getOptional<ConfigMapObject>(RESOURCES.ConfigMap, { namespace, name });
}

export class ConnectionWorkloadReconciler {
  constructor(private readonly ctx: OperatorContext) {}

  async reconcile(key: string): Promise<ReconcileResult> {
    const { kind, namespace, name } = parseWorkloadKey(key);
    const view = workloadView(this.ctx, kind, namespace, name);
    const workload = view.workload;
    if (!workload) return {};
    const connections = new Map<string, ImagingConnectionObject>();
    for (const c of [...view.admission.admitted, ...(view.restart?.connection ? [view.restart.connection] : [])]) {
      const imc = this.ctx.cache.imagingConnections.get(namespace, c);
      if (imc) connections.set(c, imc);
    }
    const iniConfigMap = this.ctx.cache.configMaps.get(namespace, view.iniConfigMapName);
    const plan = planWorkload({ view: { ...view, workload }, ...(iniConfigMap ? { iniConfigMap } : {}), connections });
    if (plan.ini !== undefined) {
      // The cache holds only labelled ConfigMaps: a foreign one of that name is read before anything is written.
      const conflict = iniConfigMapConflict(iniConfigMap ?? (await readIniConfigMap(this.ctx, namespace, view.iniConfigMapName)), kind, name);
      if (conflict) {
        this.ctx.log.warn("CAST .ini ConfigMap not ours", { resource: `${kind}/${name}`, namespace, reason: Reason.NameConflict, message: conflict });
        return { requeueAfterMs: INI_CONFLICT_RETRY_MS };
      }
    }
    if (plan.ini !== undefined) await this.writeIni(view, workload, plan.ini);
    if (plan.patch) {
      const patch = podTemplateApplyPatch(kind, name, namespace, plan.patch.template);
      const options = { fieldManager: CONNECTIONS_FIELD_MANAGER };
      const written = await this.ctx.client.apply<WorkloadObject>(RESOURCES[kind], { namespace, name }, patch, options);
      this.ctx.cache.workloads[kind].observe(written);
      const logFields = { resource: `${kind}/${name}`, namespace, reason: Reason.WorkloadPatched, message: plan.patch.summary };
      this.ctx.log.info("workload patched", logFields);
      for (const { connection, event } of plan.patch.events) await recordEvents(this.ctx, connection, [event]);
    }
    if (plan.deleteIni) {
      await this.ctx.client.delete(RESOURCES.ConfigMap, { namespace, name: view.iniConfigMapName });
      this.ctx.cache.configMaps.forget(namespace, view.iniConfigMapName);
    }
    return {};
  }

  private async writeIni(view: WorkloadView, workload: WorkloadObject, ini: string): Promise<void> {
    const owner: OwnerReference = {
      apiVersion: apiVersionOf(RESOURCES[view.kind]),
      kind: view.kind,
      name: view.name,
      uid: workload.metadata.uid ?? "",
      controller: false,
      blockOwnerDeletion: false,
    };
    const written = await this.ctx.client.apply<ConfigMapObject>(
      RESOURCES.ConfigMap,
      { namespace: view.namespace, name: view.iniConfigMapName },
      {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: {
          name: view.iniConfigMapName,
          namespace: view.namespace,
          labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [OWNER_LABEL]: CAST_INI_OWNER },
          ownerReferences: [owner],
        },
        data: { [CAST_INI_FILE]: ini },
      },
      { fieldManager: CONNECTIONS_FIELD_MANAGER },
    );
    this.ctx.cache.configMaps.observe(written);
  }
}
