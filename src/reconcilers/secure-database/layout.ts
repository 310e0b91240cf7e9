/**
 * Step 3a: where the server reads its configuration, and whether the configuration the spec chose can take effect
 * there without fighting the files' owner. Decided from the database workload's pod template and the ConfigMap's
 * metadata, before anything is written: a refusal names the cause and the fix.
 */
import { serverConfigMapName, type ResolvedSecureDatabaseSpec } from "../../api/defaults";
import { COMMAND_LINE_ANNOTATION } from "../../api/opt-in";
import { Reason } from "../../api/reasons";
import { FIELD_MANAGER, SECURE_DATABASE_CONDITIONS as C, type SecureDatabaseStatus, type ServerConfigurationStatus } from "../../api/types";
import { COMPONENT_LABEL } from "../../imaging/cast-chart";
import type { Workload } from "../../imaging/pod-template";
import { appliersOf, describeAppliers, type AppliedMeta } from "../../kube/appliers";
import { RESOURCES } from "../../kube/resources";
import { isWrapperCommand } from "../../postgres/command-line";
import { describeSource, readServerLayout, sourceOf, type FileSource, type ServerLayout } from "../../postgres/server-layout";
import type { OperatorContext, SecureDatabaseObject } from "../context";
import { readConfigMap } from "./config";
import { configMapOptIn } from "./opt-in";
import { SERVER_VOLUME } from "../../api/default-values";
import { after, outcomeOf, PROBLEM_RETRY_MS, recordEvents, resultOf, type StepOutcome, type StepResult } from "./step";

/** The settings the operator's configuration sets: one of them on the command line outranks postgresql.conf. */
const TLS_SETTINGS = new Set(["ssl", "ssl_cert_file", "ssl_key_file", "ssl_ca_file", "ssl_crl_file", "ssl_min_protocol_version"]);

export { COMMAND_LINE_ANNOTATION };

export interface LayoutFacts {
  spec: ResolvedSecureDatabaseSpec;
  sdbName: string;
  /** The SecureDatabase's namespace (for the opt-in command in messages). */
  namespace: string;
  /** The database workload (absent: no workloadRef, or not found). */
  workload: (Workload & { metadata: AppliedMeta }) | undefined;
  /** Configuration ConfigMap: the ConfigMap's metadata (absent: not found, reported by the config step). */
  configMap: { metadata: AppliedMeta } | undefined;
}

export type LayoutVerdict =
  | { ok: true; status: ServerConfigurationStatus; layout?: ServerLayout }
  | { ok: false; reason: Reason; message: string; status: ServerConfigurationStatus };

const COMMAND_LINE_FIX = "set spec.postgres.configuration: CommandLine (see \"Your PostgreSQL\" in the README)";

const settingText = (s: { name: string; value: string }) => `-c ${s.name}=${s.value}`;

function baseStatus(spec: ResolvedSecureDatabaseSpec, layout: ServerLayout | undefined, owner: string | undefined): ServerConfigurationStatus {
  return {
    configuration: spec.postgres.configuration,
    ...(layout
      ? {
          postgresqlConf: describeSource(layout.postgresqlConf),
          hbaFile: describeSource(layout.hbaFile),
          ...(layout.settings.length > 0 ? { commandLineSettings: layout.settings.map(settingText) } : {}),
        }
      : {}),
    ...(owner ? { owner } : {}),
  };
}

/** Is `source` the named key of the named ConfigMap? */
const isKey = (source: FileSource, configMap: string, key: string) =>
  source.kind === "ConfigMap" && source.configMap === configMap && source.key === key;

/** Configuration ConfigMap: the blocks take effect only where the server reads those keys, and nobody re-applies them. */
function checkConfigMap(f: LayoutFacts, layout: ServerLayout | undefined): LayoutVerdict {
  const { configMapName: name, postgresqlConfKey, hbaConfKey } = f.spec.postgres;
  const appliers = f.configMap ? appliersOf(f.configMap.metadata, [FIELD_MANAGER]) : undefined;
  const status = baseStatus(f.spec, layout, appliers ? describeAppliers(appliers) : undefined);
  const refuse = (reason: Reason, message: string): LayoutVerdict => ({ ok: false, reason, message, status: { ...status, message } });
  // Helm renders every key from its chart on each upgrade: v4 would fail on the operator's field, v3 would undo it.
  // Other appliers can be told to leave the two keys alone (docs/gitops.md); they are named in status.
  if (appliers?.helm) {
    return refuse(
      Reason.ConfigOwnedByApplier,
      `ConfigMap ${name} is applied by ${appliers.helm}: blocks written into it would make its next upgrade fail with a ` +
        `field conflict (Helm v4) or be undone by it (Helm v3); nothing was written; ${COMMAND_LINE_FIX}`,
    );
  }
  // The ConfigMap's owner decides which database writes into it (a missing one is reported by the config step);
  // asked last, so that a layout the blocks could never work in is named first.
  const optIn = f.configMap ? configMapOptIn(f.configMap.metadata, f.namespace, f.sdbName, name) : undefined;
  const optedIn = (verdict: LayoutVerdict): LayoutVerdict => (optIn && !optIn.ok ? refuse(optIn.reason, optIn.message) : verdict);
  if (!layout) {
    const message = f.spec.workloadRef
      ? "the database workload's pod template does not show the server: assuming it reads the ConfigMap"
      : `no spec.workloadRef: the operator cannot check that the server reads ConfigMap ${name}; the live check (Verified) shows whether it does`;
    return optedIn({ ok: true, status: { ...status, message } });
  }
  const outranking = layout.settings.filter((s) => TLS_SETTINGS.has(s.name));
  if (outranking.length > 0) {
    return refuse(
      Reason.SettingOverriddenByArgs,
      `${outranking.map(settingText).join(" ")} on container ${layout.container} outranks postgresql.conf, so the ` +
        `managed block would not take effect; nothing was written; ${COMMAND_LINE_FIX} (the operator's settings then come last)`,
    );
  }
  for (const [what, source, key] of [["postgresql.conf", layout.postgresqlConf, postgresqlConfKey], ["pg_hba.conf", layout.hbaFile, hbaConfKey]] as const) {
    // A file of the image where no volume shows the ConfigMap: something the template does not show (an init
    // container, a sidecar) may lay it down; the live check (Verified) tells.
    if (source.kind === "Image" && !layout.mountedConfigMaps.includes(name)) continue;
    if (!isKey(source, name, key)) {
      const template = what === "postgresql.conf" && layout.initdbTemplate?.configMap === name ? layout.initdbTemplate : undefined;
      const cause = template
        ? `postgresql.conf is mounted as ${template.path} (key ${template.key} of ConfigMap ${name}), which only initdb reads; the server reads ${describeSource(source)}`
        : `the server reads ${what} from ${describeSource(source)}, not from key ${key} of ConfigMap ${name}`;
      return refuse(Reason.ConfigNotLive, `${cause}; nothing was written; ${COMMAND_LINE_FIX}, or mount the ConfigMap where the server reads it`);
    }
    if (source.kind === "ConfigMap" && !source.live && f.spec.reload.strategy !== "RolloutRestart") {
      return refuse(
        Reason.ConfigNotLive,
        `${describeSource(source)}: a change reaches the server only when its pod restarts; nothing was written; set ` +
          "spec.reload.strategy: RolloutRestart (the operator then restarts it after each change), or mount the ConfigMap as a directory",
      );
    }
  }
  return optedIn({ ok: true, layout, status: { ...status, message: "the server reads both files from the ConfigMap: the operator writes its managed blocks there" } });
}

/** Configuration CommandLine: the operator's settings go last on the command line, through the container's command. */
function checkCommandLine(f: LayoutFacts, layout: ServerLayout | undefined): LayoutVerdict {
  const status = baseStatus(f.spec, layout, f.workload ? describeAppliers(appliersOf(f.workload.metadata, [FIELD_MANAGER])) : undefined);
  if (!layout) return { ok: true, status: { ...status, message: "waiting for the database workload" } };
  // Changing what a workload runs is its owner's decision, not the SecureDatabase author's: the owner opts in.
  const allowed = f.workload?.metadata.annotations?.[COMMAND_LINE_ANNOTATION];
  if (allowed !== f.sdbName) {
    const ref = `${f.spec.workloadRef!.kind.toLowerCase()}/${f.spec.workloadRef!.name}`;
    const message =
      `configuration CommandLine changes the command of ${f.spec.workloadRef!.kind} ${f.spec.workloadRef!.name}, which its owner must allow: ` +
      `kubectl annotate ${ref} ${COMMAND_LINE_ANNOTATION}=${f.sdbName}` +
      (allowed ? ` (it allows SecureDatabase ${allowed})` : "") + "; nothing was written";
    return { ok: false, reason: Reason.CommandLineNotAllowed, message, status: { ...status, message } };
  }
  if (layout.command && !isWrapperCommand(layout.command)) {
    const message =
      `container ${layout.container} sets its own command (${layout.command.join(" ")}): the operator puts its settings on ` +
      "the command line through the command and will not replace yours; remove it (the image's entrypoint then runs with the same " +
      "arguments) or use configuration ConfigMap";
    return { ok: false, reason: Reason.CommandInUse, message, status: { ...status, message } };
  }
  // A ConfigMap or Secret volume is mounted read-only: the runtime cannot create a mount point inside it, and the pod
  // would not start (kubernetes/kubernetes#62417).
  for (const field of ["certificateDirectory", "configDirectory"] as const) {
    const inside = sourceOf(f.workload!.spec!.template!.spec!, layout.container, `${f.spec.postgres[field]}/-`);
    // The operator's own mounts (a pass after the first) are where they belong.
    const ours = inside.kind === "ConfigMap" ? inside.configMap === serverConfigMapName(f.sdbName) : inside.kind === "Volume" && inside.volume === SERVER_VOLUME;
    if (!ours && (inside.kind === "ConfigMap" || (inside.kind === "Volume" && layout.readOnlyVolumes.includes(inside.volume)))) {
      const volume = inside.kind === "ConfigMap" ? `ConfigMap ${inside.configMap}` : `volume ${inside.kind === "Volume" ? inside.volume : ""}`;
      const message =
        `spec.postgres.${field} ${f.spec.postgres[field]} lies inside the ${volume} mounted in container ${layout.container}, which is ` +
        `read-only: the pod could not start with a mount inside it; choose a directory outside it (e.g. /etc/postgresql-mtls/${field === "certificateDirectory" ? "tls" : "config"})`;
      return { ok: false, reason: Reason.MountPathInsideVolume, message, status: { ...status, message } };
    }
  }
  const overridden = layout.settings.filter((s) => TLS_SETTINGS.has(s.name) || s.name === "hba_file");
  const hbaFile = `${f.spec.postgres.configDirectory}/pg_hba.conf (ConfigMap ${serverConfigMapName(f.sdbName)}, the operator's, mounted as a directory: live)`;
  const message =
    `the operator's -c settings follow the container's own arguments on its command line (the last setting wins)` +
    (overridden.length > 0 ? `, overriding ${overridden.map(settingText).join(" ")}` : "") +
    `; ${describeSource(layout.postgresqlConf)} keeps every other setting`;
  return { ok: true, layout, status: { ...status, hbaFile, configMapName: serverConfigMapName(f.sdbName), message } };
}

/**
 * CAST's bundled instance (shared/design/cast-imaging.md): CAST documents certificate authentication for the
 * additional instances declared in its UI, and the chart's own components log in to this one as `operator`,
 * several without a certificate. Said in status, so nobody expects certificate-only logins there.
 */
const CAST_BUNDLED_NOTE =
  "CAST's bundled instance (console-postgres): CAST documents certificate authentication for the analysis instances " +
  "declared in its UI; the chart's own components log in here as operator, several without a certificate, so that role " +
  "needs a password-over-TLS rule (clientCertificate: none) on postgres and keycloak";

export function checkLayout(f: LayoutFacts): LayoutVerdict {
  const verdict = layoutVerdict(f);
  if (f.workload?.metadata.labels?.[COMPONENT_LABEL] !== "console-postgres") return verdict;
  const message = `${verdict.status.message ?? ""}; ${CAST_BUNDLED_NOTE}`;
  return { ...verdict, status: { ...verdict.status, message } };
}

function layoutVerdict(f: LayoutFacts): LayoutVerdict {
  const container = f.spec.workloadRef?.container ?? f.workload?.spec?.template?.spec?.containers?.[0]?.name;
  const layout = f.workload && container ? readServerLayout(f.workload, container) : undefined;
  switch (f.spec.postgres.configuration) {
    case "ConfigMap":
      return checkConfigMap(f, layout);
    case "CommandLine":
      return checkCommandLine(f, layout);
    case "External": {
      const message =
        `a server outside the cluster: put the lines of ConfigMap ${serverConfigMapName(f.sdbName)} into its postgresql.conf and ` +
        `pg_hba.conf and the files of Secret ${f.spec.serverCertificate.secretName} into ${f.spec.postgres.certificateDirectory}, then reload it`;
      return { ok: true, status: { configuration: "External", configMapName: serverConfigMapName(f.sdbName), message } };
    }
  }
}

/** Reads what the check needs: the workload (with managedFields) and, for ConfigMap, the ConfigMap's metadata. */
export async function readLayoutFacts(
  ctx: OperatorContext,
  namespace: string,
  sdbName: string,
  spec: ResolvedSecureDatabaseSpec,
): Promise<LayoutFacts> {
  const ref = spec.workloadRef;
  const workload = ref ? await ctx.client.getOptional<Workload & { metadata: AppliedMeta }>(RESOURCES[ref.kind], { namespace, name: ref.name }) : undefined;
  const configMap = spec.postgres.configuration === "ConfigMap" ? await readConfigMap(ctx, namespace, spec.postgres.configMapName) : undefined;
  return { spec, sdbName, namespace, workload, configMap };
}

/** A refused layout: ConfigApplied False, and a Warning event when the refusal is new (not on every pass). */
export function planLayoutRefusal(
  verdict: Extract<LayoutVerdict, { ok: false }>,
  previous: SecureDatabaseStatus | undefined,
  now: Date,
): StepOutcome {
  const before = previous?.conditions?.find((c) => c.type === C.ConfigApplied);
  const isNew = before?.reason !== verdict.reason || before.message !== verdict.message;
  return outcomeOf(
    [{ type: C.ConfigApplied, status: "False", reason: verdict.reason, message: verdict.message }],
    after(now, PROBLEM_RETRY_MS),
    isNew ? [{ type: "Warning", reason: verdict.reason, message: verdict.message }] : [],
  );
}

export async function refuseLayout(
  ctx: OperatorContext,
  sdb: SecureDatabaseObject,
  verdict: Extract<LayoutVerdict, { ok: false }>,
  now: Date,
): Promise<StepResult> {
  const outcome = planLayoutRefusal(verdict, sdb.status, now);
  await recordEvents(ctx, sdb, outcome.events);
  return resultOf(outcome);
}
