/**
 * Who may obtain which identity from a database's CA: the SecureDatabase's spec.access grants, judged against one
 * ImagingConnection's request. Only someone who can edit the SecureDatabase can widen them; a connection gets
 * nothing the grants do not name, and never the role the operator itself logs in with. Pure; the same judgement
 * is made at admission (deploy/admission) and at every reconcile.
 */
import { DEFAULTS } from "./default-values";
import { parseDuration } from "./duration";
import { Reason } from "./reasons";
import type { AccessGrant, SecureDatabaseSpec } from "./secure-database";

/** The default and the ceiling of a grant's maxDuration when it names none: the connection default. */
export const DEFAULT_MAX_DURATION = DEFAULTS.clientCertificateDuration;

export interface AccessRequest {
  /** The ImagingConnection's namespace. */
  namespace: string;
  user: string;
  database: string;
  /** spec.certificate.duration as written (default applied). */
  duration: string;
  /** Whether the connection mounts its identity into workloads (spec.workloads or spec.castImaging). */
  mounts: boolean;
  /** The namespace's labels, for grants by namespaceSelector; undefined when the operator cannot read namespaces. */
  namespaceLabels?: Readonly<Record<string, string>>;
}

export interface DatabaseAccess {
  namespace: string;
  name: string;
  spec: Pick<SecureDatabaseSpec, "access" | "allowedNamespaces" | "reload">;
}

export type AccessRefusal = Extract<
  Reason,
  "AdminRoleNotIssued" | "NamespaceNotAllowed" | "UserNotAllowed" | "DatabaseNotAllowed" | "DurationNotAllowed" | "MountNotAllowed"
>;

export type AccessDecision = { allowed: true; grant: number } | { allowed: false; reason: AccessRefusal; message: string };

const list = (names: readonly string[]): string => names.map((n) => JSON.stringify(n)).join(", ");
/** Whether a grant covers the connection's namespace: listed, or labelled as its selector asks. */
function covers(g: AccessGrant, dbNamespace: string, request: AccessRequest): boolean {
  const listed = g.namespaces ?? (g.namespaceSelector ? [] : [dbNamespace]);
  if (listed.includes(request.namespace)) return true;
  const labels = request.namespaceLabels;
  return g.namespaceSelector !== undefined && labels !== undefined && Object.entries(g.namespaceSelector.matchLabels).every(([k, v]) => labels[k] === v);
}
const grantMaxDuration = (g: AccessGrant): string => g.maxDuration ?? DEFAULT_MAX_DURATION;

/** The first grant that allows the whole request, or the most specific reason none does. */
export function decideAccess(db: DatabaseAccess, request: AccessRequest): AccessDecision {
  const dbName = `SecureDatabase ${db.namespace}/${db.name}`;
  const adminUser = db.spec.reload?.adminUser ?? DEFAULTS.reloadAdminUser;
  if (request.user === adminUser) {
    return refuse(
      "AdminRoleNotIssued",
      `${JSON.stringify(request.user)} is the role ${dbName} reloads and verifies the server with (spec.reload.adminUser): it is never ` +
        `issued to an ImagingConnection; ask the database's owner for a role of its own`,
    );
  }
  const grants = (db.spec.access ?? []).map((grant, index) => ({ grant, index }));
  const inNamespace = grants.filter(({ grant }) => covers(grant, db.namespace, request));
  if (inNamespace.length === 0) {
    const legacy = (db.spec.allowedNamespaces ?? []).includes(request.namespace)
      ? ` (it lists the namespace in spec.allowedNamespaces, which grants nothing since spec.access exists)`
      : request.namespaceLabels === undefined && grants.some(({ grant }) => grant.namespaceSelector !== undefined)
        ? " (its grants by namespaceSelector need an operator that reads namespaces: the cluster-wide install)"
        : "";
    return refuse(
      "NamespaceNotAllowed",
      `${dbName} grants no identity to namespace ${JSON.stringify(request.namespace)}${legacy}: its owner must add a grant for it ` +
        `to spec.access (namespaces, users)`,
    );
  }
  const forUser = inNamespace.filter(({ grant }) => grant.users.includes(request.user));
  if (forUser.length === 0) {
    const users = [...new Set(inNamespace.flatMap(({ grant }) => grant.users))];
    return refuse(
      "UserNotAllowed",
      `${dbName} grants namespace ${JSON.stringify(request.namespace)} the users ${list(users)} (spec.access), not ` +
        `${JSON.stringify(request.user)}`,
    );
  }
  const forDatabase = forUser.filter(({ grant }) => grant.databases === undefined || grant.databases.includes(request.database));
  if (forDatabase.length === 0) {
    const databases = [...new Set(forUser.flatMap(({ grant }) => grant.databases ?? []))];
    return refuse(
      "DatabaseNotAllowed",
      `${dbName} grants user ${JSON.stringify(request.user)} in namespace ${JSON.stringify(request.namespace)} the databases ` +
        `${list(databases)} (spec.access), not ${JSON.stringify(request.database)}`,
    );
  }
  const requested = parseDuration(request.duration);
  const longEnough = forDatabase.filter(({ grant }) => parseDuration(grantMaxDuration(grant)) >= requested);
  if (longEnough.length === 0) {
    const longest = forDatabase.reduce((a, b) => (parseDuration(grantMaxDuration(a.grant)) >= parseDuration(grantMaxDuration(b.grant)) ? a : b));
    return refuse(
      "DurationNotAllowed",
      `spec.certificate.duration ${request.duration} is longer than ${dbName} allows this identity: at most ` +
        `${grantMaxDuration(longest.grant)} (spec.access[${longest.index}].maxDuration)`,
    );
  }
  const granted = request.mounts ? longEnough.find(({ grant }) => grant.mountIntoWorkloads === true) : longEnough[0];
  if (!granted) {
    return refuse(
      "MountNotAllowed",
      `${dbName} does not let this identity be mounted into workloads of namespace ${JSON.stringify(request.namespace)} ` +
        `(spec.access[${longEnough[0]!.index}].mountIntoWorkloads is not true): remove spec.workloads and spec.castImaging, or ask ` +
        `the database's owner to allow it`,
    );
  }
  return { allowed: true, grant: granted.index };
}

function refuse(reason: AccessRefusal, message: string): AccessDecision {
  return { allowed: false, reason, message };
}
