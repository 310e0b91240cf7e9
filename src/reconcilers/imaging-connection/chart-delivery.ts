/**
 * CAST's Helm chart, from the connection's side: which workloads it serves (listed, or found in the release) and
 * how, the Secret of the chart's client contract it fills, and where each consumer's restart stands. Read from the
 * caches, so the connection, workload and database reconcilers all see the same answer.
 */
import { defaultMountPath, type ResolvedConnectionWorkload, type ResolvedImagingConnectionSpec } from "../../api/defaults";
import { Reason } from "../../api/reasons";
import { fail, ok, type Result } from "../../api/result";
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, OWNER_LABEL, WORKLOAD_KINDS, managedLabels, ownerLabelValue } from "../../api/types";
import { COMPONENT_LABEL, componentDelivery, inRelease, type ComponentDelivery } from "../../imaging/cast-chart";
import {
  CHART_MATERIAL_ANNOTATION,
  chartIni,
  chartLibpqEnv,
  chartSecretData,
  chartMaterial,
  readChartContract,
  type ChartContract,
} from "../../imaging/chart-contract";
import type { WorkloadKind } from "../../imaging/pod-template";
import { restartTurns, type ConsumerTurn } from "../../imaging/restart-order";
import { rolloutState } from "../../imaging/rollout";
import type { ChartWorkloadPlan } from "../../imaging/workload-plan";
import { RESOURCES } from "../../kube/resources";
import { desiredSecret, ownerReference, secretBytes, type SecretObject } from "../../kube/secrets";
import { secretDataEqual } from "../../pki/secret-layout";
import type { ImagingConnectionObject, OperatorContext, SecretCacheObject, WorkloadObject } from "../context";
import { connectionWorkloadOptIn } from "./opt-in";
import type { ConnectionTarget } from "./target";
import type { PlannedEvent } from "./planned-event";

/** On the chart Secrets the operator writes, so a workload's volume can be told to be one. */
export const CHART_SECRET_LABEL = "mtls.imaging.dev/chart-secret";
/** On a chart Secret: the digest of its data (the material its consumers must start with). */
export const MATERIAL_ANNOTATION = "mtls.imaging.dev/material";

const KINDS: readonly WorkloadKind[] = WORKLOAD_KINDS;

/** One workload a connection serves, and how. */
export interface WorkloadTarget {
  kind: WorkloadKind;
  name: string;
  workload?: WorkloadObject;
  component?: string;
  /** Listed in spec.workloads (as opposed to found in the release). */
  listed: boolean;
  delivery: ComponentDelivery;
  /** Its entry as a mount target (Mount delivery). */
  entry?: ResolvedConnectionWorkload;
}

/** The workloads a connection serves: those it lists, then the release's other components, by kind and name. */
export function connectionTargets(ctx: OperatorContext, imc: ImagingConnectionObject, spec: ResolvedImagingConnectionSpec): WorkloadTarget[] {
  const namespace = imc.metadata.namespace!;
  const targets: WorkloadTarget[] = spec.workloads.map((entry) => {
    const workload = ctx.cache.workloads[entry.kind].get(namespace, entry.name);
    const delivery: ComponentDelivery = workload ? componentDelivery(workload, spec.chartSecretName, true) : { delivery: "Mount" };
    const component = workload?.metadata.labels?.[COMPONENT_LABEL];
    return { kind: entry.kind, name: entry.name, workload, listed: true, delivery, entry, ...(component ? { component } : {}) };
  });
  const release = spec.castImaging;
  if (!release) return targets;
  const listed = new Set(targets.map((t) => `${t.kind}/${t.name}`));
  const found: WorkloadTarget[] = [];
  for (const kind of KINDS) {
    for (const workload of ctx.cache.workloads[kind].list(namespace)) {
      const name = workload.metadata.name;
      if (listed.has(`${kind}/${name}`) || !inRelease(workload, release)) continue;
      const delivery = componentDelivery(workload, spec.chartSecretName, false);
      const entry = { kind, name, containers: "all" as const, mountPath: defaultMountPath(imc.metadata.name) };
      found.push({ kind, name, workload, component: workload.metadata.labels![COMPONENT_LABEL]!, listed: false, delivery, entry });
    }
  }
  found.sort((a, b) => (`${a.kind}/${a.name}` < `${b.kind}/${b.name}` ? -1 : 1));
  return [...targets, ...found];
}

/**
 * The entry a connection mounts into this workload (the operator's own Secret mount and .ini), if it does: listed,
 * or found in its release, and not carrying the chart's contract (that one is served through the chart's Secret).
 */
export function mountEntryFor(
  imc: ImagingConnectionObject,
  spec: ResolvedImagingConnectionSpec,
  kind: WorkloadKind,
  workload: WorkloadObject | undefined,
  name: string,
): ResolvedConnectionWorkload | undefined {
  const listed = spec.workloads.find((w) => w.kind === kind && w.name === name);
  if (!workload) return listed;
  const found = !listed && spec.castImaging !== undefined && inRelease(workload, spec.castImaging);
  if (!listed && !found) return undefined;
  if (componentDelivery(workload, spec.chartSecretName, listed !== undefined).delivery !== "Mount") return undefined;
  return listed ?? { kind, name, containers: "all", mountPath: defaultMountPath(imc.metadata.name) };
}

/** The contracts among a connection's targets (the Secret must be filled for these). */
export function chartContracts(targets: readonly WorkloadTarget[]): ChartContract[] {
  return targets.flatMap((t) => (t.delivery.delivery === "ChartSecret" && "contract" in t.delivery ? [t.delivery.contract] : []));
}

/** Is this cached Secret a chart Secret the operator wrote (for whichever connection)? */
export function isChartSecret(secret: SecretCacheObject | undefined): secret is SecretCacheObject {
  return secret?.metadata.labels?.[CHART_SECRET_LABEL] === "true" && secret.metadata.labels[MANAGED_BY_LABEL] === MANAGED_BY_VALUE;
}

// ---------------------------------------------------------------------------------------------------------------
// Filling the chart's Secret

export interface ChartSecretOutcome {
  /** Why the Secret cannot be (or was not) filled by this connection. */
  problem?: { reason: Reason; message: string };
  events: PlannedEvent[];
}

/**
 * Fills the chart's Secret from the client Secret: the same certificate, key and trust bundle under CAST's names,
 * the key again as client-key.pem, and an .ini naming the files where the init container copies them. Never
 * takes over a Secret someone else wrote (CAST's procedure has the admin create `ssl-certs` by hand).
 */
export async function ensureChartSecret(
  ctx: OperatorContext,
  imc: ImagingConnectionObject,
  spec: ResolvedImagingConnectionSpec,
  target: ConnectionTarget,
  contracts: readonly ChartContract[],
  client: Readonly<Record<string, Uint8Array>>,
): Promise<ChartSecretOutcome> {
  if (contracts.length === 0) return { events: [] };
  const namespace = imc.metadata.namespace!;
  const name = spec.chartSecretName;
  const dirs = [...new Set(contracts.map((c) => c.filesDir))];
  if (dirs.length > 1) {
    const message = `the workloads mounting Secret ${name} copy it to different directories (${dirs.join(", ")}); one .ini cannot name both`;
    return { problem: { reason: Reason.ChartContractIncomplete, message }, events: [] };
  }
  const existing = ctx.cache.secrets.get(namespace, name) ?? (await ctx.client.getOptional<SecretObject>(RESOURCES.Secret, { namespace, name }));
  const claim = chartSecretClaim(imc, name, existing);
  if (!claim.ok) return { problem: claim, events: [] };
  const ini = chartIni({ host: target.db.host, port: target.db.port }, spec.sslMode, dirs[0]!);
  if (!ini.ok) return { problem: ini, events: [] };
  const data = chartSecretData(client, ini.value);
  if (!data.ok) return { problem: data, events: [] };
  const material = chartMaterial(data.value);
  if (existing && existing.metadata.annotations?.[MATERIAL_ANNOTATION] === material && secretDataEqual(secretBytes(existing), data.value)) {
    return { events: [] };
  }
  const written = await ctx.client.apply<SecretCacheObject>(
    RESOURCES.Secret,
    { namespace, name },
    desiredSecret({
      name,
      namespace,
      type: "Opaque",
      labels: { ...managedLabels("ImagingConnection", imc.metadata.name), [CHART_SECRET_LABEL]: "true" },
      annotations: { [MATERIAL_ANNOTATION]: material },
      owner: ownerReference(imc),
      data: data.value,
    }),
  );
  ctx.cache.secrets.observe(written);
  const what = existing ? "renewed material" : "the client certificate";
  const message = `filled Secret ${name} of CAST's chart with ${what} (material ${material}); its consumers restart one at a time to copy it`;
  return { events: [{ type: "Normal", reason: Reason.ChartSecretWritten, message }] };
}

function chartSecretClaim(imc: ImagingConnectionObject, name: string, existing: SecretObject | undefined): Result<true> {
  if (!existing) return ok(true);
  const owner = existing.metadata.labels?.[OWNER_LABEL];
  if (owner === ownerLabelValue("ImagingConnection", imc.metadata.name)) return ok(true);
  if (owner && existing.metadata.labels?.[CHART_SECRET_LABEL] === "true") {
    return fail(
      "ChartSecretConflict",
      `Secret ${name} of CAST's chart is already filled by ${owner.replace(".", " ")}: the chart mounts one client identity; ` +
        "serve these workloads from that connection, or give this one another castImaging.secretName",
    );
  }
  return fail(
    "ChartSecretNotOwned",
    `Secret ${name} exists and was not written by the operator (created by hand, as CAST's procedure does?); ` +
      "delete it so the operator can fill it (running pods keep their copy until they restart)",
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Consumers and their restarts

export interface ChartConsumer {
  kind: WorkloadKind;
  name: string;
  workload: WorkloadObject;
  contract: ChartContract;
}

const consumerId = (kind: WorkloadKind, name: string): string => `${kind} ${name}`;

/** Every workload of the namespace that mounts this chart Secret with the whole contract: all copy what it holds. */
export function chartConsumers(ctx: OperatorContext, namespace: string, secretName: string): ChartConsumer[] {
  const consumers: ChartConsumer[] = [];
  for (const kind of KINDS) {
    for (const workload of ctx.cache.workloads[kind].list(namespace)) {
      const contract = readChartContract(workload, secretName);
      if (contract?.ok) consumers.push({ kind, name: workload.metadata.name, workload, contract: contract.value });
    }
  }
  return consumers;
}

/** The material the chart Secret holds, and each consumer's turn to restart for it (undefined: not ours, or none). */
export function chartTurns(ctx: OperatorContext, namespace: string, secretName: string): { material: string; turns: Map<string, ConsumerTurn> } | undefined {
  const secret = ctx.cache.secrets.get(namespace, secretName);
  if (!isChartSecret(secret)) return undefined;
  const material = secret.metadata.annotations?.[MATERIAL_ANNOTATION] ?? chartMaterial(secretBytes(secret));
  const consumers = chartConsumers(ctx, namespace, secretName).map((c) => ({
    id: consumerId(c.kind, c.name),
    material: c.workload.spec?.template?.metadata?.annotations?.[CHART_MATERIAL_ANNOTATION],
    rollout: rolloutState(c.kind, c.workload),
  }));
  return { material, turns: restartTurns(consumers, material) };
}

/** A consumer's turn, by kind and name. */
export function consumerTurn(turns: Map<string, ConsumerTurn>, kind: WorkloadKind, name: string): ConsumerTurn | undefined {
  return turns.get(consumerId(kind, name));
}

/**
 * What a workload carries as a consumer of an operator-filled chart Secret: its psql init containers get libpq's
 * defaults (and the copy directory, if they do not mount it), and the material annotation moves to the Secret's
 * current material when it is this workload's turn to restart. Undefined when it consumes none.
 */
export function chartWorkloadPlan(
  ctx: OperatorContext,
  kind: WorkloadKind,
  workload: WorkloadObject,
): { plan: ChartWorkloadPlan; restart?: { material: string; message: string; connection?: string } } | undefined {
  const namespace = workload.metadata.namespace!;
  for (const volume of workload.spec?.template?.spec?.volumes ?? []) {
    const secretName = volume.secret?.secretName;
    if (!secretName || !isChartSecret(ctx.cache.secrets.get(namespace, secretName))) continue;
    const contract = readChartContract(workload, secretName);
    const chart = chartTurns(ctx, namespace, secretName);
    if (!contract?.ok || !chart) continue;
    const turn = consumerTurn(chart.turns, kind, workload.metadata.name);
    const current = workload.spec?.template?.metadata?.annotations?.[CHART_MATERIAL_ANNOTATION];
    const restartNow = turn?.state === "Restarting" && turn.restartNow;
    const secret = ctx.cache.secrets.get(namespace, secretName);
    const connection = secret?.metadata.labels?.[OWNER_LABEL]?.replace(/^ImagingConnection\./, "");
    // A consumer is patched and restarted only once its owner opted in for the connection filling the Secret (or it
    // was started with the operator's material before: grandfathering).
    if (!connection || !connectionWorkloadOptIn(kind, workload, connection, current !== undefined).ok) continue;
    const sslMode = (connection ? ctx.cache.imagingConnections.get(namespace, connection)?.spec?.sslMode : undefined) ?? "verify-full";
    const { filesDir, filesVolume } = contract.value;
    const initContainers = contract.value.psqlInitContainers.map((c) => ({
      name: c.name,
      mounts: c.mountsFiles ? [] : [{ volumeName: filesVolume, mountPath: filesDir, emptyDir: true }],
      env: chartLibpqEnv(filesDir, sslMode),
    }));
    const material = restartNow ? chart.material : current;
    const plan: ChartWorkloadPlan = { initContainers, ...(material !== undefined ? { material } : {}) };
    const restart = { material: chart.material, message: turn?.message ?? "", ...(connection ? { connection } : {}) };
    return { plan, ...(restartNow ? { restart } : {}) };
  }
  return undefined;
}

/**
 * Whether every consumer of this connection's chart Secret runs pods started with the material of its current
 * client Secret (a CA rotation counts a consumer only then); undefined when done or when there is no chart
 * delivery, otherwise who is still waiting.
 */
export function chartDeliveryPending(
  ctx: OperatorContext,
  imc: ImagingConnectionObject,
  spec: ResolvedImagingConnectionSpec,
  client: Readonly<Record<string, Uint8Array | undefined>>,
): string | undefined {
  const namespace = imc.metadata.namespace!;
  const secret = ctx.cache.secrets.get(namespace, spec.chartSecretName);
  if (!isChartSecret(secret) || secret.metadata.labels?.[OWNER_LABEL] !== ownerLabelValue("ImagingConnection", imc.metadata.name)) {
    return undefined;
  }
  const chart = secretBytes(secret);
  const same = (key: string) => Buffer.compare(chart[key] ?? Buffer.alloc(0), Buffer.from(client[key] ?? new Uint8Array())) === 0;
  if (!same("client.crt") || !same("root.crt")) return `Secret ${spec.chartSecretName} to be filled with the new material`;
  const turns = chartTurns(ctx, namespace, spec.chartSecretName);
  const waiting = [...(turns?.turns ?? new Map<string, ConsumerTurn>())].filter(([, t]) => t.state !== "Delivered").map(([id]) => id);
  return waiting.length > 0 ? `${waiting.join(", ")} to restart with it` : undefined;
}
