/**
 * Step 1, may it? What an ImagingConnection connects to, and whether it may: the referenced SecureDatabase, the
 * namespace policy that database states, and the client Secret that makes a connection mountable. Read from the
 * caches only, so the connection reconciler and the workload reconciler decide the same thing from the same state.
 */
import { decideAccess } from "../../api/access";
import {
  DEFAULTS,
  prepareImagingConnection,
  prepareSecureDatabase,
  type ResolvedImagingConnectionSpec,
  type ResolvedSecureDatabaseSpec,
} from "../../api/defaults";
import { Reason } from "../../api/reasons";
import { IMAGING_CONNECTION_CONDITIONS as C, OWNER_LABEL, ownerLabelValue } from "../../api/types";
import { formatValidationErrors, validateConnectionAgainstDatabase } from "../../api/validate";
import type { ConditionInput } from "../../kube/conditions";
import type { OperatorContext, ImagingConnectionObject, SecretCacheObject, SecureDatabaseObject } from "../context";
import type { PlannedEvent } from "./planned-event";

export interface ConnectionTarget {
  sdb: SecureDatabaseObject;
  db: ResolvedSecureDatabaseSpec;
}

export interface TargetProblem {
  reason: Extract<
    Reason,
    | "InvalidSpec"
    | "DatabaseNotFound"
    | "NamespaceNotWatched"
    | "DatabaseDeleting"
    | "DatabaseInvalid"
    | "NamespaceNotAllowed"
    | "UserNotAllowed"
    | "DatabaseNotAllowed"
    | "DurationNotAllowed"
    | "MountNotAllowed"
    | "AdminRoleNotIssued"
    | "MountPathNotAllowed"
    | "Revoked"
    | "UserNotAdmitted"
  >;
  message: string;
}

export type Resolved =
  | { ok: true; spec: ResolvedImagingConnectionSpec; target: ConnectionTarget }
  | { ok: false; spec?: ResolvedImagingConnectionSpec; problem: TargetProblem };

const FIELD_REASONS: Record<string, TargetProblem["reason"]> = {
  "metadata.name": Reason.Revoked,
  "spec.user": Reason.UserNotAdmitted,
};

/**
 * The connection's resolved spec and its database, or the first reason it cannot have a certificate. Who may
 * obtain which identity is the database's rule (spec.access): only someone who can edit the SecureDatabase can
 * widen it, and nothing it does not name is issued.
 */
export function resolveConnection(ctx: OperatorContext, imc: ImagingConnectionObject): Resolved {
  const prepared = prepareImagingConnection(imc);
  if (!prepared.ok) return { ok: false, problem: { reason: Reason.InvalidSpec, message: formatValidationErrors(prepared.errors) } };
  const spec = prepared.spec;
  const ref = spec.databaseRef;
  const dbName = `SecureDatabase ${ref.namespace}/${ref.name}`;
  const watched = ctx.watchedNamespaces;
  if (watched && !watched.includes(ref.namespace)) {
    const message =
      `${dbName} (spec.databaseRef) is in a namespace the operator does not watch (it watches ${watched.join(", ")}): ` +
      `add "${ref.namespace}" to WATCH_NAMESPACE and give the operator its Role there`;
    return { ok: false, spec, problem: { reason: Reason.NamespaceNotWatched, message } };
  }
  const sdb = ctx.cache.secureDatabases.get(ref.namespace, ref.name);
  if (!sdb) {
    const message = `${dbName} (spec.databaseRef) does not exist, or is in a namespace the operator does not watch`;
    return { ok: false, spec, problem: { reason: Reason.DatabaseNotFound, message } };
  }
  if (sdb.metadata.deletionTimestamp) {
    const message = `${dbName} is being deleted: no new certificates are issued from its CA`;
    return { ok: false, spec, problem: { reason: Reason.DatabaseDeleting, message } };
  }
  const access = decideAccess(
    { namespace: ref.namespace, name: ref.name, spec: sdb.spec },
    {
      namespace: imc.metadata.namespace ?? "default",
      user: spec.user,
      database: spec.database,
      duration: spec.certificate.duration,
      mounts: spec.workloads.length > 0 || spec.castImaging !== undefined,
      ...namespaceLabels(ctx, imc.metadata.namespace ?? "default"),
    },
  );
  if (!access.allowed) return { ok: false, spec, problem: { reason: access.reason, message: access.message } };
  const outside = mountPathsOutside(spec, ctx.mountPathPrefix ?? DEFAULTS.mountPathPrefix);
  if (outside) return { ok: false, spec, problem: { reason: Reason.MountPathNotAllowed, message: outside } };
  const against = validateConnectionAgainstDatabase(imc, sdb);
  if (against.length > 0) {
    const reason = FIELD_REASONS[against[0]!.field] ?? Reason.UserNotAdmitted;
    return { ok: false, spec, problem: { reason, message: against.map((e) => e.message).join("; ") } };
  }
  const db = prepareSecureDatabase(sdb);
  if (!db.ok) {
    const message = `${dbName} has an invalid spec: ${formatValidationErrors(db.errors)}`;
    return { ok: false, spec, problem: { reason: Reason.DatabaseInvalid, message } };
  }
  return { ok: true, spec, target: { sdb, db: db.spec } };
}

/** The connection's namespace labels, when the operator reads namespaces (grants by namespaceSelector). */
function namespaceLabels(ctx: OperatorContext, namespace: string): { namespaceLabels?: Record<string, string> } {
  if (!ctx.cache.namespaces) return {};
  return { namespaceLabels: ctx.cache.namespaces.get(undefined, namespace)?.metadata.labels ?? {} };
}

/** Why a mount path lies outside the directory the operator lets connections mount into, or undefined. */
export function mountPathsOutside(spec: ResolvedImagingConnectionSpec, prefix: string): string | undefined {
  const i = spec.workloads.findIndex((w) => !`${w.mountPath}/`.startsWith(prefix));
  if (i < 0) return undefined;
  return (
    `spec.workloads[${i}].mountPath ${spec.workloads[i]!.mountPath} is outside ${prefix}, the only directory the operator mounts identities ` +
    `into (so that no connection can hide a container's own files): choose a path under it (the default is ${prefix}mtls/<connection>)`
  );
}

/** The client Secret this connection wrote (in the cache, labelled as its own), if there is one yet. */
export function ownClientSecret(ctx: OperatorContext, imc: ImagingConnectionObject, secretName: string): SecretCacheObject | undefined {
  const secret = ctx.cache.secrets.get(imc.metadata.namespace, secretName);
  if (secret?.metadata.labels?.[OWNER_LABEL] !== ownerLabelValue("ImagingConnection", imc.metadata.name)) return undefined;
  return secret.data?.["tls.crt"] ? secret : undefined;
}

/** Older connections first (creation time, then name): who wins a contested Secret name or workload. */
export function olderFirst(a: ImagingConnectionObject, b: ImagingConnectionObject): number {
  const ta = a.metadata.creationTimestamp ? new Date(a.metadata.creationTimestamp).getTime() : 0;
  const tb = b.metadata.creationTimestamp ? new Date(b.metadata.creationTimestamp).getTime() : 0;
  return ta - tb || (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0);
}

const notRevoked = (): ConditionInput => ({
  type: C.Revoked,
  status: "False",
  reason: Reason.NotRevoked,
  message: "the database does not revoke this connection",
});

/** The conditions and event of step 1: a connection that may not have an identity says why, and nothing is issued. */
export function planTarget(resolved: Resolved): { conditions: ConditionInput[]; events: PlannedEvent[] } {
  if (resolved.ok) return { conditions: [notRevoked()], events: [] };
  const { reason, message } = resolved.problem;
  const revoked: ConditionInput =
    reason === Reason.Revoked ? { type: C.Revoked, status: "True", reason: Reason.RevokedByDatabase, message } : notRevoked();
  return {
    conditions: [{ type: C.CertificateReady, status: "False", reason, message }, revoked],
    events: [{ type: "Warning", reason, message }],
  };
}
