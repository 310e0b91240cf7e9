/**
 * Step 3: postgresql.conf and pg_hba.conf in the PostgreSQL ConfigMap get the operator's managed blocks (TLS with
 * the operator's files; TCP only over TLS, with a client certificate or, for the password rules, a password), every
 * other byte as it was.
 */
import { serverConfigMapName, type ResolvedSecureDatabaseSpec } from "../../api/defaults";
import { Reason } from "../../api/reasons";
import { OWNER_LABEL, SECURE_DATABASE_CONDITIONS as C, ownerLabelValue } from "../../api/types";
import type { ConditionInput } from "../../kube/conditions";
import { RESOURCES } from "../../kube/resources";
import { isApiError, MERGE_PATCH } from "../../kube/rest";
import { isConfigError, removeManagedBlock, upsertManagedBlock, type ManagedBlockCorrupt } from "../../postgres/managed-block";
import { renderPostgresqlConfBlock } from "../../postgres/postgresql-conf";
import { renderHbaBlock } from "../../postgres/pg-hba";
import type { ConfigMapObject, OperatorContext, SecureDatabaseObject } from "../context";
import { commandLineSettings, wrapperCommand } from "../../postgres/command-line";
import { hbaPolicySummary, passwordAccessEvents, withPasswordAccess } from "./password-access";
import { servedMaterialHash } from "./reload";
import type { CommandLinePlan } from "./workload";
import { after, outcomeOf, PROBLEM_RETRY_MS, recordEvents, resultOf, type StepOutcome, type StepResult } from "./step";

export interface ConfigProblem {
  reason: Reason;
  message: string;
}

export type ConfigPlan =
  | { ok: true; data: Record<string, string>; changed: boolean }
  | { ok: false; problem: ConfigProblem };

const fail = (reason: Reason, message: string): ConfigPlan => ({ ok: false, problem: { reason, message } });

/** What step 3 reads: the ConfigMap as it is (absent: not found) and who owns this database. */
export interface ConfigObserved {
  configMap: ConfigMapObject | undefined;
  spec: ResolvedSecureDatabaseSpec;
  namespace: string;
  sdbName: string;
}

/** The step's report when the blocks are in place; `repaired`: ours already, someone changed or removed them. */
export interface ConfigApplied {
  applied: true;
  renderedHash: string;
  repaired: boolean;
  outcome: StepOutcome;
}

export type ConfigStepPlan =
  | { applied: false; outcome: StepOutcome }
  | (ConfigApplied & { patch?: undefined; resourceVersion: string | undefined })
  | (ConfigApplied & { patch: { metadata: { resourceVersion?: string; labels: Record<string, string> }; data: Record<string, string> } });

const APPLIED: ConditionInput = {
  type: C.ConfigApplied,
  status: "True",
  reason: Reason.Applied,
  message: "postgresql.conf enables TLS with the operator's files; pg_hba.conf admits TCP clients only with a client certificate",
};

/** Write the blocks (and claim the ConfigMap), leave it as it is, or say why the blocks cannot go in. */
export function planConfig(o: ConfigObserved, now: Date): ConfigStepPlan {
  const name = o.spec.postgres.configMapName;
  const problem = (reason: Reason, message: string): ConfigStepPlan => ({
    applied: false,
    outcome: outcomeOf([{ type: C.ConfigApplied, status: "False", reason, message }], after(now, PROBLEM_RETRY_MS)),
  });
  const cm = o.configMap;
  if (!cm) {
    return problem(Reason.ConfigMapNotFound, `ConfigMap ${name} (spec.postgres.configMapName) does not exist in namespace ${o.namespace}`);
  }
  const owner = ownerLabelValue("SecureDatabase", o.sdbName);
  const claimedBy = cm.metadata.labels?.[OWNER_LABEL];
  if (claimedBy && claimedBy !== owner) {
    const message =
      `ConfigMap ${name} is already managed by ${claimedBy}; ` + "two SecureDatabases cannot configure the same PostgreSQL instance";
    return problem(Reason.ConfigMapClaimed, message);
  }
  const plan = planServerConfig(cm.data, name, o.spec);
  if (!plan.ok) return problem(plan.problem.reason, plan.problem.message);
  const { postgresqlConfKey, hbaConfKey, certificateDirectory } = o.spec.postgres;
  const renderedHash = servedMaterialHash([plan.data[postgresqlConfKey], plan.data[hbaConfKey]]);
  const rules = o.spec.postgres.hba.rules;
  const applied = withPasswordAccess(APPLIED, rules);
  const unchanged = { applied: true as const, renderedHash, repaired: false, outcome: { conditions: [applied], events: [] } };
  if (!plan.changed && claimedBy === owner) return { ...unchanged, resourceVersion: cm.metadata.resourceVersion };
  const written = `wrote the managed blocks of ${postgresqlConfKey} (ssl = on, certificate files under ${certificateDirectory})`;
  const message = `${written} and ${hbaConfKey} (${hbaPolicySummary(rules)}) in ConfigMap ${name}`;
  const events = plan.changed
    ? [{ type: "Normal" as const, reason: Reason.ConfigApplied, message }, ...passwordAccessEvents(cm.data?.[hbaConfKey], plan.data[hbaConfKey]!, rules)]
    : [];
  return {
    ...unchanged,
    repaired: plan.changed && claimedBy === owner,
    patch: { metadata: { resourceVersion: cm.metadata.resourceVersion, labels: { [OWNER_LABEL]: owner } }, data: plan.data },
    outcome: { conditions: [applied], events },
  };
}

export type ConfigResult = StepResult & { applied: boolean; repaired?: boolean; renderedHash?: string; resourceVersion?: string };

/** Reads the ConfigMap (the cache first), writes the plan; someone else's edit in between: read again and redo. */
export async function ensureConfig(
  ctx: OperatorContext,
  sdb: SecureDatabaseObject,
  spec: ResolvedSecureDatabaseSpec,
  now: Date,
): Promise<ConfigResult> {
  const namespace = sdb.metadata.namespace!;
  const name = spec.postgres.configMapName;
  for (let attempt = 0; ; attempt++) {
    const configMap = attempt === 0 ? await readConfigMap(ctx, namespace, name) : await getConfigMap(ctx, namespace, name);
    const plan = planConfig({ configMap, spec, namespace, sdbName: sdb.metadata.name }, now);
    if (!plan.applied) return { applied: false, ...resultOf(plan.outcome) };
    const applied = { applied: true, renderedHash: plan.renderedHash, ...resultOf(plan.outcome) };
    if (!plan.patch) return { ...applied, resourceVersion: plan.resourceVersion };
    try {
      const written = await ctx.client.patch<ConfigMapObject>(RESOURCES.ConfigMap, { namespace, name }, plan.patch, MERGE_PATCH);
      ctx.cache.configMaps.observe(written);
      await recordEvents(ctx, sdb, plan.outcome.events);
      return { ...applied, repaired: plan.repaired, resourceVersion: written.metadata.resourceVersion };
    } catch (err) {
      // Never clobber: a conflict means the ConfigMap changed since it was read.
      if (isApiError(err, 409) && attempt < 4) continue;
      throw err;
    }
  }
}

/** The ConfigMap the server's configuration lives in: the spec's (ConfigMap) or the operator's own. */
export const configMapOf = (spec: ResolvedSecureDatabaseSpec, sdbName: string): string =>
  spec.postgres.configuration === "ConfigMap" ? spec.postgres.configMapName : serverConfigMapName(sdbName);

/** Configuration CommandLine: the command that appends the operator's settings, and the pg_hba.conf it names. */
export function commandLinePlan(spec: ResolvedSecureDatabaseSpec, sdbName: string): CommandLinePlan {
  const { certificateDirectory, minTLSVersion, configDirectory, entrypoint } = spec.postgres;
  const settings = commandLineSettings({ certificateDirectory, minTLSVersion, crl: true, hbaFile: `${configDirectory}/pg_hba.conf` });
  return { command: wrapperCommand(entrypoint, settings), configMapName: serverConfigMapName(sdbName) };
}

export function getConfigMap(ctx: OperatorContext, namespace: string, name: string): Promise<ConfigMapObject | undefined> {
  return ctx.client.getOptional<ConfigMapObject>(RESOURCES.ConfigMap, { namespace, name });
}

/** The cache holds only ConfigMaps the operator claims or owns: any other is read from the API server. */
export async function readConfigMap(ctx: OperatorContext, namespace: string, name: string): Promise<ConfigMapObject | undefined> {
  return ctx.cache.configMaps.get(namespace, name) ?? (await getConfigMap(ctx, namespace, name));
}

/**
 * What the PostgreSQL ConfigMap's data should be: our block last in postgresql.conf (last assignment wins) and
 * first in pg_hba.conf (first match wins), every other byte as it was; a setting someone appended after our block
 * ends up before it again. A hand-edited, broken block is reported, never guessed at.
 */
export function planServerConfig(
  data: Readonly<Record<string, string>> | undefined,
  configMapName: string,
  spec: ResolvedSecureDatabaseSpec,
): ConfigPlan {
  const { postgresqlConfKey, hbaConfKey } = spec.postgres;
  const missing = [postgresqlConfKey, hbaConfKey].filter((k) => data?.[k] === undefined);
  if (!data || missing.length > 0) {
    return fail(
      "ConfigKeyMissing",
      `ConfigMap ${configMapName} has no key ${missing.map((k) => `"${k}"`).join(" or ")}; ` +
        "set spec.postgres.postgresqlConfKey / hbaConfKey to the keys that hold postgresql.conf and pg_hba.conf",
    );
  }
  const conf = data[postgresqlConfKey]!;
  const hba = data[hbaConfKey]!;
  const hbaBlock = renderHbaBlock(spec.postgres.hba.rules);
  if (isConfigError(hbaBlock)) return fail(hbaBlock.reason, `spec.postgres.hba: ${hbaBlock.message}`);
  const { certificateDirectory, minTLSVersion } = spec.postgres;
  const confBlock = renderPostgresqlConfBlock({ certificateDirectory, minTLSVersion, crl: true });
  const newConf = upsertManagedBlock(conf, confBlock, "append");
  if (isConfigError(newConf)) return fail(newConf.reason, `${postgresqlConfKey} in ConfigMap ${configMapName}: ${newConf.message}`);
  const newHba = upsertManagedBlock(hba, hbaBlock, "prepend");
  if (isConfigError(newHba)) return fail(newHba.reason, `${hbaConfKey} in ConfigMap ${configMapName}: ${newHba.message}`);

  // Our block is now last, so nothing in the file can override it (ALTER SYSTEM can: only the live probe sees that).
  return { ok: true, data: { ...data, [postgresqlConfKey]: newConf, [hbaConfKey]: newHba }, changed: newConf !== conf || newHba !== hba };
}

/** The ConfigMap data with exactly our blocks removed (what deleting the SecureDatabase restores). */
export function planConfigCleanup(
  data: Readonly<Record<string, string>> | undefined,
  keys: readonly string[],
): { ok: true; data: Record<string, string>; changed: boolean } | { ok: false; problem: ManagedBlockCorrupt } {
  const out: Record<string, string> = { ...(data ?? {}) };
  let changed = false;
  for (const k of keys) {
    const v = out[k];
    if (v === undefined) continue;
    const cleaned = removeManagedBlock(v);
    if (isConfigError(cleaned)) return { ok: false, problem: { ...cleaned, message: `${k}: ${cleaned.message}` } };
    if (cleaned !== v) {
      out[k] = cleaned;
      changed = true;
    }
  }
  return { ok: true, data: out, changed };
}
