/**
 * Step 3 for the configurations that leave the server's own files alone: the operator's ConfigMap
 * "<name>-server-config". CommandLine: the whole pg_hba.conf the server reads (hba_file on its command line),
 * mounted live. External: the lines for the DBA of a server outside the cluster.
 */
import { serverConfigMapName, type ResolvedSecureDatabaseSpec } from "../../api/defaults";
import { Reason } from "../../api/reasons";
import { managedLabels, OWNER_LABEL, ownerLabelValue, SECURE_DATABASE_CONDITIONS as C } from "../../api/types";
import type { ConditionInput } from "../../kube/conditions";
import { RESOURCES } from "../../kube/resources";
import { ownerReference } from "../../kube/secrets";
import { commandLineSettings } from "../../postgres/command-line";
import { isConfigError, upsertManagedBlock } from "../../postgres/managed-block";
import { renderHbaBlock } from "../../postgres/pg-hba";
import { renderPostgresqlConfBlock, tlsSettings } from "../../postgres/postgresql-conf";
import type { ConfigMapObject, OperatorContext, SecureDatabaseObject } from "../context";
import { hbaPolicySummary, passwordAccessEvents } from "./password-access";
import { servedMaterialHash } from "./reload";
import { readConfigMap, type ConfigResult } from "./config";
import { after, PROBLEM_RETRY_MS, recordEvents, type PlannedEvent } from "./step";

/**
 * Unix-socket logins inside the pod: not TCP, so no certificate. The official image's own default (trust): only a
 * process inside the container reaches the socket, and one can read the data directory anyway; `kubectl exec … psql`
 * and the image's first-start scripts keep working.
 */
const LOCAL_LINE = "local all all trust";

export type ServerConfigData = { ok: true; data: Record<string, string> } | { ok: false; reason: Reason; message: string };

/** What the ConfigMap holds: for CommandLine the file the server reads, for External what the DBA adds to theirs. */
export function renderServerConfigData(spec: ResolvedSecureDatabaseSpec, namespace: string, sdbName: string): ServerConfigData {
  const block = renderHbaBlock(spec.postgres.hba.rules);
  if (isConfigError(block)) return { ok: false, reason: block.reason, message: `spec.postgres.hba: ${block.message}` };
  const { certificateDirectory, minTLSVersion, configDirectory } = spec.postgres;
  const hba = upsertManagedBlock("", block, "prepend");
  if (isConfigError(hba)) return { ok: false, reason: hba.reason, message: hba.message };
  const written = `# Written by imaging-db-mtls-operator for SecureDatabase ${namespace}/${sdbName}.\n`;
  if (spec.postgres.configuration === "CommandLine") {
    const settings = commandLineSettings({ certificateDirectory, minTLSVersion, crl: true, hbaFile: `${configDirectory}/pg_hba.conf` });
    return {
      ok: true,
      data: {
        "pg_hba.conf": `${written}# The server's pg_hba.conf (-c hba_file on its command line); edits are replaced.\n${hba}${LOCAL_LINE}\n`,
        "command-line": `${written}# The settings appended to the server's command line (documentation; the server reads pg_hba.conf only).\n${settings.map(([n, v]) => `-c ${n}=${v}\n`).join("")}`,
      },
    };
  }
  const conf = renderPostgresqlConfBlock({ certificateDirectory, minTLSVersion, crl: true });
  const files = tlsSettings({ certificateDirectory, minTLSVersion, crl: true })
    .filter(([name]) => name.endsWith("_file"))
    .map(([, path]) => path)
    .join(", ");
  return {
    ok: true,
    data: {
      "postgresql.conf": `${written}# Append LAST to the server's postgresql.conf (the last assignment wins); the files (${files}) come from\n# Secret ${spec.serverCertificate.secretName} (key file mode 0600, owned by the server's user).\n${conf}`,
      "pg_hba.conf": `${written}# Put FIRST in the server's pg_hba.conf (the first matching line wins), then reload the server.\n${hba}`,
    },
  };
}

export interface ServerConfigMapPlan {
  /** The server-side apply body, when the ConfigMap is missing or holds something else. */
  apply?: object;
  conditions: ConditionInput[];
  events: PlannedEvent[];
  renderedHash?: string;
}

export function planServerConfigMap(
  spec: ResolvedSecureDatabaseSpec,
  sdb: SecureDatabaseObject,
  current: ConfigMapObject | undefined,
  now: Date,
): ServerConfigMapPlan & { requeueAt?: Date } {
  const namespace = sdb.metadata.namespace!;
  const name = serverConfigMapName(sdb.metadata.name);
  const refuse = (reason: Reason, message: string) => ({
    conditions: [{ type: C.ConfigApplied, status: "False" as const, reason, message }],
    events: [],
    requeueAt: after(now, PROBLEM_RETRY_MS),
  });
  if (current && current.metadata.labels?.[OWNER_LABEL] !== ownerLabelValue("SecureDatabase", sdb.metadata.name)) {
    return refuse(Reason.ConfigMapClaimed, `ConfigMap ${name} exists and is not this SecureDatabase's: the operator does not overwrite it; rename or delete it`);
  }
  const rendered = renderServerConfigData(spec, namespace, sdb.metadata.name);
  if (!rendered.ok) return refuse(rendered.reason, rendered.message);
  const renderedHash = servedMaterialHash(Object.keys(rendered.data).sort().flatMap((k) => [k, rendered.data[k]]));
  const same = current !== undefined && Object.keys(rendered.data).length === Object.keys(current.data ?? {}).length &&
    Object.entries(rendered.data).every(([k, v]) => current.data?.[k] === v);
  const commandLine = spec.postgres.configuration === "CommandLine";
  const condition: ConditionInput = commandLine
    ? {
        type: C.ConfigApplied,
        status: "True",
        reason: Reason.CommandLineApplied,
        message: `the server's command line carries the TLS settings and hba_file; pg_hba.conf (ConfigMap ${name}): ${hbaPolicySummary(spec.postgres.hba.rules)}`,
      }
    : {
        type: C.ConfigApplied,
        status: "Unknown",
        reason: Reason.ConfigPublished,
        message:
          `server outside the cluster: add the lines of ConfigMap ${name} to its postgresql.conf and pg_hba.conf, put the files of Secret ` +
          `${spec.serverCertificate.secretName} into ${spec.postgres.certificateDirectory} and reload it; Verified tells when it serves them`,
      };
  if (same) return { conditions: [condition], events: [], renderedHash };
  const body = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name, namespace, labels: managedLabels("SecureDatabase", sdb.metadata.name), ownerReferences: [ownerReference(sdb)] },
    data: rendered.data,
  };
  const what = commandLine ? `wrote pg_hba.conf for the server's command line into ConfigMap ${name}` : `published the lines for the DBA in ConfigMap ${name}`;
  const passwords = passwordAccessEvents(current?.data?.["pg_hba.conf"], rendered.data["pg_hba.conf"]!, spec.postgres.hba.rules);
  return { apply: body, conditions: [condition], events: [{ type: "Normal", reason: Reason.ConfigApplied, message: what }, ...passwords], renderedHash };
}

export async function ensureServerConfigMap(
  ctx: OperatorContext,
  sdb: SecureDatabaseObject,
  spec: ResolvedSecureDatabaseSpec,
  now: Date,
): Promise<ConfigResult> {
  const namespace = sdb.metadata.namespace!;
  const name = serverConfigMapName(sdb.metadata.name);
  const current = await readConfigMap(ctx, namespace, name);
  const plan = planServerConfigMap(spec, sdb, current, now);
  if (!plan.renderedHash) return { applied: false, conditions: plan.conditions, ...(plan.requeueAt ? { requeueAt: plan.requeueAt } : {}) };
  let resourceVersion = current?.metadata.resourceVersion;
  if (plan.apply) {
    const written = await ctx.client.apply<ConfigMapObject>(RESOURCES.ConfigMap, { namespace, name }, plan.apply);
    ctx.cache.configMaps.observe(written);
    resourceVersion = written.metadata.resourceVersion;
    await recordEvents(ctx, sdb, plan.events);
  }
  return { applied: true, renderedHash: plan.renderedHash, conditions: plan.conditions, ...(resourceVersion ? { resourceVersion } : {}) };
}
