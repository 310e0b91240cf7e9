/**
 * Opt-in for what the operator did not create (issue 16, item 5): the owner of a PostgreSQL ConfigMap, a brought CA
 * Secret or a workload says, on that object, which SecureDatabase or ImagingConnection may use it. Whoever may create
 * a SecureDatabase or an ImagingConnection in a namespace is not thereby allowed to change every ConfigMap,
 * Deployment or CA of it. Pure: the reconcilers read the object and apply the verdict.
 */
import { Reason } from "./reasons";

/**
 * On a PostgreSQL ConfigMap (configuration ConfigMap), a brought CA Secret (ca.mode Provided) or the database
 * workload (spec.workloadRef): the SecureDatabases that may write into it, sign with it or patch it,
 * comma-separated (a brought CA may sign for several databases).
 */
export const SECURE_DATABASE_OPT_IN_ANNOTATION = "mtls.imaging.dev/secure-database";

/**
 * On a Deployment or StatefulSet: the ImagingConnections that may mount into it, comma-separated, or `*` for every
 * ImagingConnection of its namespace (the namespace is already the boundary: a connection only ever mounts into
 * workloads of its own namespace).
 */
export const IMAGING_CONNECTIONS_OPT_IN_ANNOTATION = "mtls.imaging.dev/imaging-connections";

/**
 * On the database workload, by its owner: the SecureDatabase that may put its settings on the server's command line
 * (configuration CommandLine). Allows more than the secure-database opt-in, so it counts as that too. Helm and
 * GitOps leave an annotation they do not render alone.
 */
export const COMMAND_LINE_ANNOTATION = "mtls.imaging.dev/command-line";

/** Every ImagingConnection of the workload's namespace (the imaging-connections annotation only). */
export const ANY_CONNECTION = "*";

/** The names an opt-in annotation value lists: comma-separated, blanks around names ignored. */
export function optInNames(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((n) => n.trim())
    .filter((n) => n.length > 0);
}

/** What an opt-in decision looks at. */
export interface OptInFacts {
  /** How the object is named in messages, e.g. "ConfigMap pg-config". */
  object: string;
  /** The object as kubectl names it, e.g. "configmap/pg-config". */
  ref: string;
  namespace: string;
  annotations: Readonly<Record<string, string>> | undefined;
  /** SECURE_DATABASE_OPT_IN_ANNOTATION or IMAGING_CONNECTIONS_OPT_IN_ANNOTATION. */
  annotation: string;
  /** The SecureDatabase or ImagingConnection asking. */
  asker: { kind: "SecureDatabase" | "ImagingConnection"; name: string };
  /** What it would do to the object, for the message ("write its managed blocks into"). */
  action: string;
  /**
   * The object already carries what the operator put there for this asker (its owner label, its volume): it was
   * managed before opt-in existed, so an upgrade takes nothing away.
   */
  grandfathered: boolean;
  /** Other annotations that count as opting in, with the value they must have (e.g. command-line=<sdb>). */
  alsoAccepted?: readonly { annotation: string; value: string }[];
}

export type OptInVerdict =
  | { ok: true; how: "annotation" | "grandfathered" }
  | { ok: false; reason: typeof Reason.OptInMissing; message: string };

/** The kubectl command that opts the object in for the asker, keeping the names it already lists. */
export function optInCommand(f: Pick<OptInFacts, "ref" | "namespace" | "annotations" | "annotation" | "asker">): string {
  const names = optInNames(f.annotations?.[f.annotation]);
  const value = [...names, f.asker.name].join(",");
  const overwrite = names.length > 0 ? " --overwrite" : "";
  return `kubectl annotate${overwrite} -n ${f.namespace} ${f.ref} ${f.annotation}=${value}`;
}

/** Is the asker allowed by the object's annotation (its name listed; `*` only for ImagingConnections)? */
export function listsAsker(f: Pick<OptInFacts, "annotations" | "annotation" | "asker">): boolean {
  const names = optInNames(f.annotations?.[f.annotation]);
  if (names.includes(f.asker.name)) return true;
  return f.asker.kind === "ImagingConnection" && f.annotation === IMAGING_CONNECTIONS_OPT_IN_ANNOTATION && names.includes(ANY_CONNECTION);
}

/** Opted in (by annotation, or grandfathered), or refused with the object named and the exact command. */
export function decideOptIn(f: OptInFacts): OptInVerdict {
  if (listsAsker(f)) return { ok: true, how: "annotation" };
  if ((f.alsoAccepted ?? []).some((a) => f.annotations?.[a.annotation] === a.value)) return { ok: true, how: "annotation" };
  if (f.grandfathered) return { ok: true, how: "grandfathered" };
  const listed = f.annotations?.[f.annotation];
  const message =
    `${f.object} has not opted in to ${f.asker.kind} ${f.asker.name}, which would ${f.action} it` +
    (listed !== undefined ? ` (its annotation ${f.annotation} lists ${JSON.stringify(listed)})` : "") +
    `; its owner opts in with: ${optInCommand(f)}; nothing was written to it`;
  return { ok: false, reason: Reason.OptInMissing, message };
}
