/**
 * What an ImagingConnection connects to, and whether it may: the referenced SecureDatabase, the namespace
 * policy that database states, and the client Secret that makes a connection mountable. Read from the caches
 * only, so the connection reconciler and the workload reconciler decide the same thing from the same state.
 */
import { prepareImagingConnection, prepareSecureDatabase, type ResolvedImagingConnectionSpec, type ResolvedSecureDatabaseSpec } from "../api/defaults";
import { OWNER_LABEL, ownerLabelValue } from "../api/types";
import { formatValidationErrors, validateConnectionAgainstDatabase } from "../api/validate";
import type { OperatorContext, ImagingConnectionObject, SecretCacheObject, SecureDatabaseObject } from "./context";

export interface ConnectionTarget {
  sdb: SecureDatabaseObject;
  db: ResolvedSecureDatabaseSpec;
}

export interface TargetProblem {
  reason: "InvalidSpec" | "DatabaseNotFound" | "NamespaceNotWatched" | "DatabaseDeleting" | "DatabaseInvalid" | "NamespaceNotAllowed" | "Revoked" | "UserNotAdmitted";
  message: string;
}

export type Resolved = { ok: true; spec: ResolvedImagingConnectionSpec; target: ConnectionTarget } | { ok: false; spec?: ResolvedImagingConnectionSpec; problem: TargetProblem };

const FIELD_REASONS: Record<string, TargetProblem["reason"]> = {
  "spec.databaseRef": "NamespaceNotAllowed",
  "metadata.name": "Revoked",
  "spec.user": "UserNotAdmitted",
};

/**
 * The connection's resolved spec and its database, or the first reason it cannot have a certificate. The
 * namespace rule is the database's: only someone who can edit the SecureDatabase (allowedNamespaces) can let
 * another namespace obtain identities signed by its CA.
 */
export function resolveConnection(ctx: OperatorContext, imc: ImagingConnectionObject): Resolved {
  const prepared = prepareImagingConnection(imc);
  if (!prepared.ok) return { ok: false, problem: { reason: "InvalidSpec", message: formatValidationErrors(prepared.errors) } };
  const spec = prepared.spec;
  const ref = spec.databaseRef;
  const watched = ctx.watchedNamespaces;
  if (watched && !watched.includes(ref.namespace)) {
    const message = `SecureDatabase ${ref.namespace}/${ref.name} (spec.databaseRef) is in a namespace the operator does not watch (it watches ${watched.join(", ")}): add "${ref.namespace}" to WATCH_NAMESPACE and give the operator its Role there`;
    return { ok: false, spec, problem: { reason: "NamespaceNotWatched", message } };
  }
  const sdb = ctx.cache.secureDatabases.get(ref.namespace, ref.name);
  if (!sdb) {
    return { ok: false, spec, problem: { reason: "DatabaseNotFound", message: `SecureDatabase ${ref.namespace}/${ref.name} (spec.databaseRef) does not exist, or is in a namespace the operator does not watch` } };
  }
  if (sdb.metadata.deletionTimestamp) return { ok: false, spec, problem: { reason: "DatabaseDeleting", message: `SecureDatabase ${ref.namespace}/${ref.name} is being deleted: no new certificates are issued from its CA` } };
  const against = validateConnectionAgainstDatabase(imc, sdb);
  if (against.length > 0) {
    const first = against[0]!;
    return { ok: false, spec, problem: { reason: FIELD_REASONS[first.field] ?? "UserNotAdmitted", message: against.map((e) => e.message).join("; ") } };
  }
  const db = prepareSecureDatabase(sdb);
  if (!db.ok) return { ok: false, spec, problem: { reason: "DatabaseInvalid", message: `SecureDatabase ${ref.namespace}/${ref.name} has an invalid spec: ${formatValidationErrors(db.errors)}` } };
  return { ok: true, spec, target: { sdb, db: db.spec } };
}

/** The client Secret this connection wrote (in the cache, labelled as its own), if there is one yet. */
export function ownClientSecret(ctx: OperatorContext, imc: ImagingConnectionObject, secretName: string): SecretCacheObject | undefined {
  const secret = ctx.cache.secrets.get(imc.metadata.namespace, secretName);
  if (secret?.metadata.labels?.[OWNER_LABEL] !== ownerLabelValue("ImagingConnection", imc.metadata.name)) return undefined;
  return secret.data?.["tls.crt"] ? secret : undefined;
}
