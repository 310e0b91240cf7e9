/**
 * On deletion: takes back exactly what the operator added (the managed blocks, the server mount), has the server
 * drop the settings, deletes the CA keys it kept in the key namespace, then lets the object go. The Secrets of the
 * database's namespace go with their owner.
 */
import { DEFAULTS, caSecretName, prepareSecureDatabase } from "../../api/defaults";
import { Reason } from "../../api/reasons";
import { FINALIZER, OWNER_LABEL, ownerLabelValue, type DatabaseWorkloadRef } from "../../api/types";
import { podTemplateApplyPatch } from "../../imaging/pod-template";
import { RESOURCES } from "../../kube/resources";
import { isApiError, MERGE_PATCH } from "../../kube/rest";
import { secretBytes } from "../../kube/secrets";
import type { IssuedCertificate } from "../../pki";
import { reloadServer } from "../../postgres/probe";
import { TerminalError } from "../../runtime/errors";
import type { ConfigMapObject, OperatorContext, SecureDatabaseObject } from "../context";
import { removeFinalizer } from "../custom-resource";
import { CAKeys } from "../ca-keys";
import { nextCASecretName, previousCASecretName } from "./ca-rotation-plan";
import { getConfigMap, planConfigCleanup } from "./config";
import { probeOptions } from "./operator-identity";
import type { PlannedEvent } from "./step";

export type ConfigReleasePlan =
  /** Not there, or not ours (any more): nothing to take back. */
  | { action: "none" }
  /** A block someone broke by hand: removing "our" lines could remove theirs. Keep the finalizer, say why. */
  | { action: "refuse"; event: PlannedEvent; error: TerminalError }
  | { action: "patch"; patch: ConfigMapRelease; event: PlannedEvent };

/** A merge patch that drops our label and our blocks, guarded by the resourceVersion read. */
interface ConfigMapRelease {
  metadata: { resourceVersion?: string; labels: Record<string, null> };
  data: Record<string, string>;
}

/** The ConfigMap without our blocks and our claim. The keys are the spec's, or their defaults. */
export function planConfigRelease(sdb: SecureDatabaseObject, configMap: ConfigMapObject | undefined): ConfigReleasePlan {
  const name = sdb.spec.postgres?.configMapName;
  const ours = configMap?.metadata.labels?.[OWNER_LABEL] === ownerLabelValue("SecureDatabase", sdb.metadata.name);
  if (!configMap || !ours) return { action: "none" };
  const keys = [sdb.spec.postgres?.postgresqlConfKey ?? DEFAULTS.postgresqlConfKey, sdb.spec.postgres?.hbaConfKey ?? DEFAULTS.hbaConfKey];
  const cleanup = planConfigCleanup(configMap.data, keys);
  if (!cleanup.ok) {
    const { reason, message } = cleanup.problem;
    const refused = `cannot remove the managed blocks from ConfigMap ${name}: ${message}; fix or remove the block by hand`;
    const event = { type: "Warning" as const, reason, message: refused };
    return { action: "refuse", event, error: new TerminalError(reason, `ConfigMap ${name}: ${message}`) };
  }
  return {
    action: "patch",
    patch: { metadata: { resourceVersion: configMap.metadata.resourceVersion, labels: { [OWNER_LABEL]: null } }, data: cleanup.data },
    event: { type: "Normal", reason: Reason.ConfigRestored, message: `removed the managed blocks from ConfigMap ${name}` },
  };
}

/**
 * The workload whose server mount to remove. Every SecureDatabase applies its mount under the same field manager,
 * so an empty apply would also take out the mount of another database that names this workload (this one then
 * only had a VolumeConflict): then it stays.
 */
export function workloadToRelease(sdb: SecureDatabaseObject, others: readonly SecureDatabaseObject[]): DatabaseWorkloadRef | undefined {
  const ref = sdb.spec.workloadRef;
  if (!ref) return undefined;
  const namesIt = (o: SecureDatabaseObject) => o.spec?.workloadRef?.kind === ref.kind && o.spec.workloadRef.name === ref.name;
  const shared = others.some((o) => o.metadata.name !== sdb.metadata.name && !o.metadata.deletionTimestamp && namesIt(o));
  return shared ? undefined : ref;
}

/** Takes the managed blocks and the claim out of the spec's ConfigMap (at deletion, or when its owner re-applies it). */
export async function releaseConfigMap(ctx: OperatorContext, sdb: SecureDatabaseObject): Promise<void> {
  const namespace = sdb.metadata.namespace!;
  const cmName = sdb.spec.postgres?.configMapName;
  for (let attempt = 0; cmName; attempt++) {
    const plan = planConfigRelease(sdb, await getConfigMap(ctx, namespace, cmName));
    if (plan.action === "none") break;
    if (plan.action === "refuse") {
      await ctx.events.record(sdb, plan.event.type, plan.event.reason, plan.event.message);
      throw plan.error;
    }
    try {
      await ctx.client.patch(RESOURCES.ConfigMap, { namespace, name: cmName }, plan.patch, MERGE_PATCH);
      await ctx.events.record(sdb, plan.event.type, plan.event.reason, plan.event.message);
      break;
    } catch (err) {
      if (isApiError(err, 409) && attempt < 4) continue;
      throw err;
    }
  }
}

export async function finalize(ctx: OperatorContext, sdb: SecureDatabaseObject, identity: IssuedCertificate | undefined): Promise<void> {
  if (!sdb.metadata.finalizers?.includes(FINALIZER)) return;
  const namespace = sdb.metadata.namespace!;
  await releaseConfigMap(ctx, sdb);
  const ref = workloadToRelease(sdb, ctx.cache.secureDatabases.list(namespace));
  if (ref && (await ctx.client.getOptional(RESOURCES[ref.kind], { namespace, name: ref.name }))) {
    const empty = podTemplateApplyPatch(ref.kind, ref.name, namespace, { mounts: [], env: [], annotations: {} });
    await ctx.client.apply(RESOURCES[ref.kind], { namespace, name: ref.name }, empty);
  }
  await reloadAfterCleanup(ctx, sdb, identity);
  await deleteCAKeys(ctx, sdb);
  await removeFinalizer(ctx, RESOURCES.SecureDatabase, sdb);
  ctx.log.info("finalized", { resource: `SecureDatabase/${sdb.metadata.name}`, namespace, reason: Reason.Finalized });
}

/** The CA Secrets in the key namespace: no owner reference can reach them there, so they go here (ours only). */
async function deleteCAKeys(ctx: OperatorContext, sdb: SecureDatabaseObject): Promise<void> {
  const keys = new CAKeys(ctx, sdb.metadata.namespace!, sdb.metadata.name);
  const caName = sdb.spec.ca?.secretName ?? caSecretName(sdb.metadata.name);
  for (const name of [caName, nextCASecretName(caName), previousCASecretName(caName)]) await keys.deleteOwn(name);
}

/**
 * With the SQL strategy, ask the server to drop our settings now, with the identity this process holds (best effort:
 * the server may already be gone, and a restarted operator holds none).
 */
async function reloadAfterCleanup(ctx: OperatorContext, sdb: SecureDatabaseObject, identity: IssuedCertificate | undefined): Promise<void> {
  const prepared = prepareSecureDatabase(sdb);
  if (!identity || !prepared.ok || prepared.spec.reload.strategy !== "SQL") return;
  const trust = secretBytes(ctx.cache.secrets.get(sdb.metadata.namespace!, prepared.spec.serverCertificate.secretName))["ca.crt"];
  if (!trust) return;
  const result = await reloadServer(probeOptions(prepared.spec, trust.toString("utf8"), identity));
  if (!result.ok) {
    const message = `could not reload the server after removing the managed blocks: ${result.message}; reload or restart it yourself`;
    await ctx.events.record(sdb, "Warning", Reason.ReloadAfterCleanupFailed, message);
  }
}
