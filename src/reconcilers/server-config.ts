import type { ResolvedSecureDatabaseSpec } from "../api/defaults";
import type { Reason } from "../api/reasons";
import { isConfigError, removeManagedBlock, upsertManagedBlock, type ManagedBlockCorrupt } from "../postgres/managed-block";
import { renderPostgresqlConfBlock } from "../postgres/postgresql-conf";
import { renderHbaBlock } from "../postgres/pg-hba";

export interface ConfigProblem {
  reason: Reason;
  message: string;
}

export type ConfigPlan =
  | { ok: true; data: Record<string, string>; changed: boolean }
  | { ok: false; problem: ConfigProblem };

const fail = (reason: Reason, message: string): ConfigPlan => ({ ok: false, problem: { reason, message } });

/**
 * What the PostgreSQL ConfigMap's data should be: our block last in postgresql.conf (last assignment wins) and
 * first in pg_hba.conf (first match wins), every other byte as it was; a setting someone appended after our block
 * ends up before it again. A hand-edited, broken block is reported, never guessed at.
 */
export function planServerConfig(data: Readonly<Record<string, string>> | undefined, configMapName: string, spec: ResolvedSecureDatabaseSpec): ConfigPlan {
  const { postgresqlConfKey, hbaConfKey } = spec.postgres;
  const missing = [postgresqlConfKey, hbaConfKey].filter((k) => data?.[k] === undefined);
  if (!data || missing.length > 0) {
    return fail(
      "ConfigKeyMissing",
      `ConfigMap ${configMapName} has no key ${missing.map((k) => `"${k}"`).join(" or ")}; set spec.postgres.postgresqlConfKey / hbaConfKey to the keys that hold postgresql.conf and pg_hba.conf`,
    );
  }
  const conf = data[postgresqlConfKey]!;
  const hba = data[hbaConfKey]!;
  const hbaBlock = renderHbaBlock(spec.postgres.hba.rules);
  if (isConfigError(hbaBlock)) return fail(hbaBlock.reason, `spec.postgres.hba: ${hbaBlock.message}`);
  const confBlock = renderPostgresqlConfBlock({ certificateDirectory: spec.postgres.certificateDirectory, minTLSVersion: spec.postgres.minTLSVersion, crl: true });
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
