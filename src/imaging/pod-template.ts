/**
 * The pod-template plan: which volumes, mounts, env and annotations the operator owns in a workload's pod template,
 * the server-side apply body that holds exactly them, and the checks of a live workload against the plan. Pure.
 */
import type { ObjectMeta, WorkloadKind } from "../api/types";

export type { WorkloadKind };

/** Both workload kinds are in the apps group. */
const WORKLOAD_API_VERSION = "apps/v1";

export interface Container {
  name: string;
  command?: string[];
  args?: string[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; subPath?: string }[];
  env?: { name: string; value?: string }[];
}

/** What the Deployment and StatefulSet controllers report of a rollout (the fields both kinds share or either has). */
export interface WorkloadRolloutStatus {
  observedGeneration?: number;
  replicas?: number;
  updatedReplicas?: number;
  readyReplicas?: number;
  availableReplicas?: number;
  currentRevision?: string;
  updateRevision?: string;
  conditions?: { type: string; status: string; reason?: string; message?: string }[];
}

export interface Workload {
  apiVersion?: string;
  kind?: string;
  metadata: Pick<ObjectMeta, "name" | "namespace" | "uid" | "resourceVersion" | "generation" | "annotations" | "labels">;
  spec?: {
    replicas?: number;
    template?: {
      metadata?: { annotations?: Record<string, string> };
      spec?: {
        securityContext?: { fsGroup?: number };
        containers?: Container[];
        initContainers?: Container[];
        volumes?: { name: string; secret?: { secretName?: string }; configMap?: { name?: string }; emptyDir?: object }[];
      };
    };
  };
  status?: WorkloadRolloutStatus;
}

/** One volume from a Secret or ConfigMap, mounted (whole, no subPath: updates appear in place) into containers. */
export interface VolumeMountPlan {
  volumeName: string;
  source: { secretName: string } | { configMapName: string };
  /** File mode of every key: what the consuming process accepts (PostgreSQL: key 0600, or 0640 owned by root). */
  defaultMode: number;
  mountPath: string;
  /** Mount one key as a file at mountPath (its updates then need a restart: see PodTemplatePlan.iniDigest). */
  subPath?: string;
  containers: string[];
}

/**
 * What an init container gets: mounts of volumes the template already has, and env. An emptyDir volume mounted so
 * is applied too (the same entry its owner has): should the owner drop it (a chart value turned off), our mount
 * still names a volume, and the owner's update stays valid until we take ours back.
 */
export interface InitContainerPlan {
  name: string;
  mounts: { volumeName: string; mountPath: string; emptyDir?: boolean }[];
  env: { name: string; value: string }[];
}

export interface PodTemplatePlan {
  mounts: VolumeMountPlan[];
  env: { containers: string[]; vars: { name: string; value: string }[] }[];
  initContainers?: InitContainerPlan[];
  /** The content of a file mounted with subPath, which pods only see when they start: its change restarts them. */
  iniDigest?: string;
  annotations: Record<string, string>;
  /** A container's command, owned by us (a database server's command line: see postgres/command-line.ts). */
  commands?: { container: string; command: string[] }[];
  /** The pod's fsGroup: the group Secret files get, so a server running in it may read a key of mode 0640. */
  fsGroup?: number;
}

/**
 * The server-side apply body holding exactly our volumes, mounts, env and annotations. Applied with our field
 * manager, it leaves every other field to its owner; applying an empty plan takes back all we added.
 */
export function podTemplateApplyPatch(kind: WorkloadKind, name: string, namespace: string, plan: PodTemplatePlan): object {
  const containers = new Map<string, { name: string; volumeMounts?: object[]; env?: object[] }>();
  const container = (n: string) => {
    let c = containers.get(n);
    if (!c) containers.set(n, (c = { name: n }));
    return c;
  };
  for (const m of plan.mounts) {
    for (const c of m.containers) {
      (container(c).volumeMounts ??= []).push({ name: m.volumeName, mountPath: m.mountPath, readOnly: true, ...(m.subPath ? { subPath: m.subPath } : {}) });
    }
  }
  for (const e of plan.env) for (const c of e.containers) (container(c).env ??= []).push(...e.vars);
  for (const c of plan.commands ?? []) Object.assign(container(c.container), { command: c.command });
  const volumes = plan.mounts.map((m) =>
    "secretName" in m.source
      ? { name: m.volumeName, secret: { secretName: m.source.secretName, defaultMode: m.defaultMode } }
      : { name: m.volumeName, configMap: { name: m.source.configMapName, defaultMode: m.defaultMode } },
  );
  const templateSpec: Record<string, unknown> = {};
  if (plan.fsGroup !== undefined) templateSpec.securityContext = { fsGroup: plan.fsGroup };
  const init = (plan.initContainers ?? []).map((c) => ({
    name: c.name,
    ...(c.mounts.length > 0 ? { volumeMounts: c.mounts.map((m) => ({ name: m.volumeName, mountPath: m.mountPath, readOnly: true })) } : {}),
    ...(c.env.length > 0 ? { env: c.env } : {}),
  }));
  if (init.length > 0) templateSpec.initContainers = init;
  const emptyDirs = [...new Set((plan.initContainers ?? []).flatMap((c) => c.mounts.filter((m) => m.emptyDir).map((m) => m.volumeName)))];
  if (containers.size > 0) templateSpec.containers = [...containers.values()];
  if (volumes.length + emptyDirs.length > 0) templateSpec.volumes = [...volumes, ...emptyDirs.map((name) => ({ name, emptyDir: {} }))];
  const template: Record<string, unknown> = {};
  if (Object.keys(plan.annotations).length > 0) template.metadata = { annotations: plan.annotations };
  if (Object.keys(templateSpec).length > 0) template.spec = templateSpec;
  const body: Record<string, unknown> = { apiVersion: WORKLOAD_API_VERSION, kind, metadata: { name, namespace } };
  if (Object.keys(template).length > 0) body.spec = { template };
  return body;
}

/** Does the live workload already carry the plan (so no write is needed)? */
export function podTemplateHasPlan(workload: Workload, plan: PodTemplatePlan): boolean {
  const template = workload.spec?.template;
  const spec = template?.spec;
  for (const [k, v] of Object.entries(plan.annotations)) if (template?.metadata?.annotations?.[k] !== v) return false;
  if (plan.fsGroup !== undefined && spec?.securityContext?.fsGroup !== plan.fsGroup) return false;
  for (const c of plan.commands ?? []) {
    const live = spec?.containers?.find((x) => x.name === c.container)?.command;
    if (!live || live.length !== c.command.length || live.some((w, i) => w !== c.command[i])) return false;
  }
  for (const m of plan.mounts) {
    const vol = spec?.volumes?.find((v) => v.name === m.volumeName) as
      | { secret?: { secretName?: string; defaultMode?: number }; configMap?: { name?: string; defaultMode?: number } }
      | undefined;
    if (!vol) return false;
    const ok = "secretName" in m.source
      ? vol.secret?.secretName === m.source.secretName && vol.secret.defaultMode === m.defaultMode
      : vol.configMap?.name === m.source.configMapName && vol.configMap.defaultMode === m.defaultMode;
    if (!ok) return false;
    for (const c of m.containers) {
      const mount = spec?.containers?.find((x) => x.name === c)?.volumeMounts?.find((vm) => vm.name === m.volumeName);
      if (!mount || mount.mountPath !== m.mountPath || mount.subPath !== m.subPath) return false;
    }
  }
  for (const e of plan.env) {
    for (const c of e.containers) {
      const env = spec?.containers?.find((x) => x.name === c)?.env ?? [];
      for (const v of e.vars) if (!env.some((x) => x.name === v.name && x.value === v.value)) return false;
    }
  }
  for (const c of plan.initContainers ?? []) {
    const live = spec?.initContainers?.find((x) => x.name === c.name);
    if (!live) return false;
    for (const v of c.env) if (!(live.env ?? []).some((x) => x.name === v.name && x.value === v.value)) return false;
    for (const m of c.mounts) {
      if (!(live.volumeMounts ?? []).some((x) => x.name === m.volumeName && x.mountPath === m.mountPath)) return false;
      if (m.emptyDir && !spec?.volumes?.some((v) => v.name === m.volumeName && v.emptyDir !== undefined)) return false;
    }
  }
  return true;
}

/** A volume of this name that is not ours (another volume, or a mount path clash) would be overwritten: refuse. */
export function foreignVolumeConflict(workload: Workload, plan: PodTemplatePlan): string | undefined {
  const spec = workload.spec?.template?.spec;
  for (const m of plan.mounts) {
    const vol = spec?.volumes?.find((v) => v.name === m.volumeName);
    const expected = "secretName" in m.source
      ? vol?.secret?.secretName === m.source.secretName
      : vol?.configMap?.name === m.source.configMapName;
    if (vol && !expected) {
      const source = "secretName" in m.source ? `Secret ${m.source.secretName}` : `ConfigMap ${m.source.configMapName}`;
      return `the pod template already has a volume named "${m.volumeName}" that does not come from ${source}`;
    }
    for (const c of m.containers) {
      const mounts = spec?.containers?.find((x) => x.name === c)?.volumeMounts ?? [];
      const clash = mounts.find((vm) => samePath(vm.mountPath, m.mountPath) && vm.name !== m.volumeName);
      if (clash) return `container "${c}" already mounts volume "${clash.name}" at ${m.mountPath}`;
    }
  }
  return undefined;
}

const samePath = (a: string, b: string): boolean => a.replace(/\/+$/, "") === b.replace(/\/+$/, "");

export function containerNames(workload: Workload): string[] {
  return (workload.spec?.template?.spec?.containers ?? []).map((c) => c.name);
}
