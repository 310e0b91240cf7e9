/**
 * The volumes, mounts and env the ImagingConnections targeting ONE workload add to its pod template.
 *
 * Pure. Per connection: its client Secret as a volume, mounted whole (no subPath, so renewals appear in place) at
 * the connection's mountPath in the selected containers. Once per workload: the ConfigMap holding the rendered
 * CAST .ini, mounted at CAST_INI_DIR in every container any connection selects, with
 * CASTCONNECTIONEXTRAPARAMETERS=<CAST_INI_DIR>/<file> there. Optionally (libpqEnv) the PGSSL* defaults of libpq.
 *
 * File modes:
 * - Secret volumes: 0o440. libpq refuses a key file with world access (and, when the process owns the file, any
 *   group access); kubelet writes the files owned by root, group = the pod's fsGroup, and libpq accepts a
 *   root-owned key up to 0640. A container running as non-root therefore reads the files through its fsGroup
 *   (set securityContext.fsGroup on the pod if the chart does not); pgjdbc and .NET do not check modes.
 * - The .ini ConfigMap: 0o444 (paths only, no secrets).
 *
 * The one .ini is shared by every selected container: a container selected by connection B but not A still sees
 * A's section, whose files are not mounted there; CAST only reads them when it connects to A's instance.
 */
import { createHash } from "node:crypto";
import type { ResolvedConnectionWorkload } from "../api/defaults";
import {
  foreignVolumeConflict,
  podTemplateHasPlan,
  type InitContainerPlan,
  type PodTemplatePlan,
  type VolumeMountPlan,
  type Workload,
} from "./pod-template";
import { SECRET_KEYS } from "../pki/secret-layout";
import { CAST_INI_ENV, renderCastIni, type CastIniEntry } from "./cast-ini";
import { CHART_FILES_DIR, CHART_INI_FILE, CHART_MATERIAL_ANNOTATION } from "./chart-contract";
import { COMPONENT_LABEL } from "./cast-chart";

export { CAST_INI_ENV };
import { inMount } from "./declaration";
import { fail, ok, type Refusal, type Result } from "../api/result";

/** Where the .ini ConfigMap is mounted (outside the default Secret mount root /etc/cast-imaging/mtls/<name>). */
export const CAST_INI_DIR = "/etc/cast-imaging/mtls-ini";
export const CAST_INI_FILE = "cast-connections.ini";
/** Connection volumes all start with "mtls-", so this name can never be one of them. */
export const CAST_INI_VOLUME = "cast-imaging-mtls-ini";
export const SECRET_DEFAULT_MODE = 0o440;
export const INI_DEFAULT_MODE = 0o444;

export interface WorkloadConnection {
  /** ImagingConnection name. */
  name: string;
  /** Its client Secret. */
  secretName: string;
  sslMode: string;
  libpqEnv: boolean;
  /** Its resolved entry for this workload. */
  workload: ResolvedConnectionWorkload;
}

export interface ConnectionWorkloadPlanInput {
  connections: readonly WorkloadConnection[];
  /** The pod template's container names, in template order. */
  containerNames: readonly string[];
  /** The ConfigMap holding the rendered .ini under the key iniFileName. */
  iniConfigMapName: string;
  /** Default CAST_INI_FILE. */
  iniFileName?: string;
  /** Mount the .ini as this one file (subPath) instead of its directory at CAST_INI_DIR. */
  iniAt?: string;
}

const MAX_VOLUME_NAME = 63;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * The Secret volume name of a connection: `mtls-<name>` when that is a DNS label of at most 63 characters;
 * otherwise the name with every character outside [a-z0-9-] replaced by '-', truncated, plus '-' and the first
 * 10 hex digits of SHA-256(name), so distinct names keep distinct volume names.
 */
export function connectionVolumeName(connectionName: string): string {
  const plain = `mtls-${connectionName}`;
  if (plain.length <= MAX_VOLUME_NAME && DNS_LABEL.test(plain)) return plain;
  const hash = createHash("sha256").update(connectionName, "utf8").digest("hex").slice(0, 10);
  const room = MAX_VOLUME_NAME - "mtls-".length - 1 - hash.length;
  const stem = connectionName.toLowerCase().replace(/[^a-z0-9-]/g, "-").slice(0, room);
  return `mtls-${stem}-${hash}`;
}

const normalizePath = (p: string): string => (p.length > 1 ? p.replace(/\/+$/, "") : p);
const under = (path: string, dir: string): boolean => path.startsWith(dir === "/" ? "/" : `${dir}/`);
const overlaps = (a: string, b: string): boolean => a === b || under(a, b) || under(b, a);
const quoteAll = (names: readonly string[]): string => names.map((n) => JSON.stringify(n)).join(", ");

function selectedContainers(c: WorkloadConnection, all: readonly string[]): Result<string[]> {
  if (c.workload.containers === "all") {
    if (all.length === 0) {
      return fail("NoContainers", `${c.workload.kind} ${c.workload.name} has no containers for ImagingConnection ${c.name} to mount into`);
    }
    return ok([...all]);
  }
  const missing = c.workload.containers.filter((n) => !all.includes(n));
  if (missing.length > 0) {
    return fail(
      "ContainerNotFound",
      `ImagingConnection ${c.name}: ${c.workload.kind} ${c.workload.name} has no container ${quoteAll(missing)}; ` +
        `its containers are ${quoteAll(all) || "(none)"}`,
    );
  }
  if (c.workload.containers.length === 0) {
    return fail("NoContainers", `ImagingConnection ${c.name}: the container list for ${c.workload.kind} ${c.workload.name} is empty`);
  }
  const wanted = new Set(c.workload.containers);
  return ok(all.filter((n) => wanted.has(n)));
}

export function connectionWorkloadPlan(input: ConnectionWorkloadPlanInput): Result<PodTemplatePlan> {
  const iniFile = input.iniFileName ?? CAST_INI_FILE;
  const connections = [...input.connections].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (!/^[A-Za-z0-9._-]+$/.test(iniFile) || iniFile === "." || iniFile === "..") {
    return fail("InvalidIniFileName", `the .ini file name ${JSON.stringify(iniFile)} must be a single file name`);
  }
  const plan: PodTemplatePlan = { mounts: [], env: [], annotations: {} };
  if (connections.length === 0) return ok(plan);

  const mountsByContainer = new Map<string, { path: string; owner: string }[]>();
  const libpqByContainer = new Map<string, string>();
  const volumeOwner = new Map<string, string>();
  const used = new Set<string>();

  for (const c of connections) {
    const containers = selectedContainers(c, input.containerNames);
    if (!containers.ok) return containers;
    const volumeName = connectionVolumeName(c.name);
    const other = volumeOwner.get(volumeName);
    if (other !== undefined) {
      return fail(
        other === c.name ? "DuplicateConnection" : "VolumeNameConflict",
        other === c.name
          ? `ImagingConnection ${c.name} is listed twice for this workload`
          : `ImagingConnections ${other} and ${c.name} map to the same volume name ${volumeName}`,
      );
    }
    volumeOwner.set(volumeName, c.name);
    const mountPath = normalizePath(c.workload.mountPath);
    const iniMount = input.iniAt ?? CAST_INI_DIR;
    if (overlaps(mountPath, iniMount)) {
      return fail("MountPathConflict", `ImagingConnection ${c.name}: mountPath ${mountPath} overlaps the CAST .ini at ${iniMount}`);
    }
    for (const name of containers.value) {
      const mounts = mountsByContainer.get(name) ?? [];
      const clash = mounts.find((m) => overlaps(m.path, mountPath));
      if (clash) {
        return fail(
          "MountPathConflict",
          `container ${JSON.stringify(name)}: ImagingConnections ${clash.owner} and ${c.name} mount at ${clash.path} and ${mountPath}; ` +
            `give them different, non-nested mountPaths`,
        );
      }
      mounts.push({ path: mountPath, owner: c.name });
      mountsByContainer.set(name, mounts);
      used.add(name);
      if (c.libpqEnv) {
        const prior = libpqByContainer.get(name);
        if (prior !== undefined) {
          return fail(
            "LibpqEnvConflict",
            `container ${JSON.stringify(name)}: ImagingConnections ${prior} and ${c.name} both set libpqEnv; libpq has one default ` +
              `(PGSSL*) per container, so enable it on one of them only`,
          );
        }
        libpqByContainer.set(name, c.name);
      }
    }
    const mount: VolumeMountPlan = {
      volumeName,
      source: { secretName: c.secretName },
      defaultMode: SECRET_DEFAULT_MODE,
      mountPath,
      containers: containers.value,
    };
    plan.mounts.push(mount);
    if (c.libpqEnv) {
      plan.env.push({
        containers: containers.value,
        vars: [
          { name: "PGSSLMODE", value: c.sslMode },
          { name: "PGSSLCERT", value: inMount(mountPath, SECRET_KEYS.clientCrt) },
          // libpq takes the PEM key, not the DER client.pk8 that pgjdbc needs.
          { name: "PGSSLKEY", value: inMount(mountPath, SECRET_KEYS.clientKey) },
          { name: "PGSSLROOTCERT", value: inMount(mountPath, SECRET_KEYS.rootCrt) },
        ],
      });
    }
  }

  const iniContainers = input.containerNames.filter((n) => used.has(n));
  plan.mounts.push({
    volumeName: CAST_INI_VOLUME,
    source: { configMapName: input.iniConfigMapName },
    defaultMode: INI_DEFAULT_MODE,
    mountPath: input.iniAt ?? CAST_INI_DIR,
    ...(input.iniAt ? { subPath: iniFile } : {}),
    containers: iniContainers,
  });
  plan.env.unshift({ containers: iniContainers, vars: [{ name: CAST_INI_ENV, value: input.iniAt ?? inMount(CAST_INI_DIR, iniFile) }] });
  return ok(plan);
}

// ---------------------------------------------------------------------------------------------------------------
// Admission: which of the connections targeting one workload get in, and the plan and .ini they make together.

/**
 * Where a workload's components read the operator's .ini: a component of CAST's chart at the path the chart gives
 * CASTCONNECTIONEXTRAPARAMETERS when EnablePostgresSSL is on, so that the chart, turned on later, sets the same
 * value the operator set and a `helm upgrade` never conflicts with it; any other workload in the .ini directory.
 */
export function castIniPath(workload: Workload | undefined): string {
  return chartIniAt(workload) ?? inMount(CAST_INI_DIR, CAST_INI_FILE);
}

/** The .ini file path of a component of CAST's chart (mounted as one file there), or undefined for any other. */
export function chartIniAt(workload: Workload | undefined): string | undefined {
  return workload?.metadata.labels?.[COMPONENT_LABEL] !== undefined ? inMount(CHART_FILES_DIR, CHART_INI_FILE) : undefined;
}

/** On the pod template: a digest of our mounts and env, so "exactly our plan is there" is one comparison. */
export const CONNECTIONS_ANNOTATION = "mtls.imaging.dev/connections";

export interface WorkloadCandidate extends WorkloadConnection {
  /** Its section of the CAST .ini. */
  iniEntry: CastIniEntry;
}

export interface WorkloadAdmission {
  /** What the pod template must carry (empty when nothing is admitted). */
  plan: PodTemplatePlan;
  /** The rendered .ini of the admitted connections ("" when none). */
  ini: string;
  admitted: string[];
  /** Connections left out, with why. */
  refused: Map<string, Refusal>;
}

/**
 * The ConfigMap holding a workload's CAST .ini: `cast-mtls-ini-<kind>-<name>`, or, past the 253 characters a
 * ConfigMap name may have, truncated with a hash of the full name so distinct workloads never share one.
 */
export function iniConfigMapName(kind: string, workloadName: string): string {
  const plain = `cast-mtls-ini-${kind.toLowerCase()}-${workloadName}`;
  if (plain.length <= 253) return plain;
  const hash = createHash("sha256").update(`${kind}/${workloadName}`, "utf8").digest("hex").slice(0, 10);
  return `${plain.slice(0, 253 - 11).replace(/[-.]+$/, "")}-${hash}`;
}

/** Volumes and env already on the template that our plan would overwrite, or undefined. */
function foreignConflict(workload: Workload, plan: PodTemplatePlan): string | undefined {
  const volume = foreignVolumeConflict(workload, plan);
  if (volume) return volume;
  // A value already there in a container we never patched (it has no .ini mount of ours) belongs to someone else
  // (the chart, a hand edit): overwriting it would break their setting and flap with their next sync. In a
  // container we patched, the values are ours from the previous plan.
  const containers = workload.spec?.template?.spec?.containers ?? [];
  for (const e of plan.env) {
    for (const name of e.containers) {
      const container = containers.find((c) => c.name === name);
      if (container?.volumeMounts?.some((m) => m.name === CAST_INI_VOLUME)) continue;
      for (const v of e.vars) {
        const theirs = container?.env?.find((x) => x.name === v.name);
        if (theirs && theirs.value !== v.value) {
          return `container "${name}" already sets ${v.name}=${JSON.stringify(theirs.value ?? "")} (from the chart or by hand); remove it ` +
            `so the operator can set it`;
        }
      }
    }
  }
  return undefined;
}

function planDigest(plan: PodTemplatePlan): string {
  // Init containers count only when there are some, so the digest of a plan without them never changed.
  const init = plan.initContainers?.length ? { initContainers: plan.initContainers } : {};
  const ini = plan.iniDigest ? { ini: plan.iniDigest } : {};
  return createHash("sha256").update(JSON.stringify({ mounts: plan.mounts, env: plan.env, ...init, ...ini }), "utf8").digest("hex").slice(0, 16);
}

const hasOwnEntries = (plan: PodTemplatePlan): boolean => plan.mounts.length > 0 || (plan.initContainers?.length ?? 0) > 0;

/** What a consumer of the chart's Secret carries: libpq defaults for its psql init containers, and its material. */
export interface ChartWorkloadPlan {
  initContainers: InitContainerPlan[];
  /** The material its pods are (to be) started with; undefined: not restarted by the operator yet. */
  material?: string;
}

/** The admitted plan with the chart consumer's part added (the plan a workload's one apply holds). */
export function withChartPlan(plan: PodTemplatePlan, chart: ChartWorkloadPlan | undefined): PodTemplatePlan {
  if (!chart) return plan;
  const merged: PodTemplatePlan = { ...plan, initContainers: chart.initContainers, annotations: {} };
  if (hasOwnEntries(merged)) merged.annotations[CONNECTIONS_ANNOTATION] = planDigest(merged);
  if (chart.material !== undefined) merged.annotations[CHART_MATERIAL_ANNOTATION] = chart.material;
  return merged;
}

/**
 * Admits candidates one at a time in the given order (oldest first, so a newcomer can never push out a
 * connection that already works): a candidate whose mounts, env or .ini section conflict with those admitted
 * before it, or with what the workload already carries, is refused with the reason. Deterministic: the same
 * inputs give byte-identical plans and .ini, so nothing flaps.
 */
export function admitConnections(input: {
  candidates: readonly WorkloadCandidate[];
  workload: Workload;
  iniConfigMapName: string;
  iniAt?: string;
}): WorkloadAdmission {
  const containerNamesOf = (input.workload.spec?.template?.spec?.containers ?? []).map((c) => c.name);
  const refused = new Map<string, Refusal>();
  let admitted: WorkloadCandidate[] = [];
  let plan: PodTemplatePlan = { mounts: [], env: [], annotations: {} };
  let ini = "";
  for (const c of input.candidates) {
    const trial = [...admitted, c];
    const planned = connectionWorkloadPlan(
      { connections: trial, containerNames: containerNamesOf, iniConfigMapName: input.iniConfigMapName, ...(input.iniAt ? { iniAt: input.iniAt } : {}) },
    );
    if (!planned.ok) {
      refused.set(c.name, planned);
      continue;
    }
    const conflict = foreignConflict(input.workload, planned.value);
    if (conflict) {
      refused.set(c.name, fail("WorkloadConflict", `${c.workload.kind} ${c.workload.name}: ${conflict}`));
      continue;
    }
    const rendered = renderCastIni(trial.map((t) => t.iniEntry));
    if (!rendered.ok) {
      refused.set(c.name, rendered);
      continue;
    }
    admitted = trial;
    plan = planned.value;
    ini = rendered.value;
  }
  if (admitted.length > 0 && input.iniAt) plan.iniDigest = createHash("sha256").update(ini, "utf8").digest("hex").slice(0, 16);
  if (admitted.length > 0) plan.annotations = { [CONNECTIONS_ANNOTATION]: planDigest(plan) };
  return { plan, ini, admitted: admitted.map((a) => a.name), refused };
}

/** Does the template carry exactly this admission's plan (nothing of ours missing, nothing of ours left over)? */
export function workloadHasExactly(workload: Workload, plan: PodTemplatePlan): boolean {
  const annotations = workload.spec?.template?.metadata?.annotations;
  const digest = annotations?.[CONNECTIONS_ANNOTATION];
  if (annotations?.[CHART_MATERIAL_ANNOTATION] !== plan.annotations[CHART_MATERIAL_ANNOTATION]) return false;
  if (!hasOwnEntries(plan)) return digest === undefined;
  return digest === plan.annotations[CONNECTIONS_ANNOTATION] && podTemplateHasPlan(workload, plan);
}
