/**
 * The two kinds as the plugin meets them: how a user names one on the command line, how its status decodes, and
 * which of its conditions hold Ready back (the operator's own summarize, applied condition by condition).
 */
import { asReason } from "../api/reasons";
import { imagingConnectionStatus, secureDatabaseStatus } from "../api/decode-status";
import { DecodeError } from "../api/decoder";
import {
  IMAGING_CONNECTION,
  IMAGING_CONNECTION_CONDITIONS,
  SECURE_DATABASE,
  SECURE_DATABASE_CONDITIONS,
  type Condition,
  type ImagingConnectionStatus,
  type SecureDatabaseStatus,
} from "../api/types";
import type { ConditionInput } from "../kube/conditions";
import { RESOURCES } from "../kube/resources";
import type { ResourceType } from "../kube/rest";
import { summarize as summarizeConnection } from "../reconcilers/imaging-connection/status";
import { summarize as summarizeDatabase } from "../reconcilers/secure-database/status";
import { PluginError } from "./errors";
import type { RawObject } from "./kube";

export type KindName = typeof SECURE_DATABASE.kind | typeof IMAGING_CONNECTION.kind;

interface KindInfo<S> {
  readonly kind: KindName;
  readonly names: typeof SECURE_DATABASE | typeof IMAGING_CONNECTION;
  readonly type: ResourceType;
  decodeStatus(value: unknown): S;
  /** Whether this condition alone would keep Ready False (the reconciler's own rule). */
  blocks(condition: Condition): boolean;
}

/** Runs a kind's summarize on one condition: it blocks when the summary of it alone is not True. */
function blocksBy<T extends string>(types: Readonly<Record<string, T>>, summarize: (conditions: readonly ConditionInput[]) => ConditionInput) {
  const known = new Set<string>(Object.values(types));
  return (c: Condition): boolean => {
    if (c.type === "Ready" || !known.has(c.type)) return false;
    const input = { type: c.type as ConditionInput["type"], status: c.status, reason: asReason(c.reason), message: c.message };
    return summarize([input]).status !== "True";
  };
}

export const SECURE_DATABASE_KIND: KindInfo<SecureDatabaseStatus> = {
  kind: SECURE_DATABASE.kind,
  names: SECURE_DATABASE,
  type: RESOURCES.SecureDatabase,
  decodeStatus: (value) => secureDatabaseStatus.decode(value, "status", {}),
  blocks: blocksBy(SECURE_DATABASE_CONDITIONS, (c) => summarizeDatabase(c)),
};

export const IMAGING_CONNECTION_KIND: KindInfo<ImagingConnectionStatus> = {
  kind: IMAGING_CONNECTION.kind,
  names: IMAGING_CONNECTION,
  type: RESOURCES.ImagingConnection,
  decodeStatus: (value) => imagingConnectionStatus.decode(value, "status", {}),
  blocks: blocksBy(IMAGING_CONNECTION_CONDITIONS, summarizeConnection),
};

export const KINDS = [SECURE_DATABASE_KIND, IMAGING_CONNECTION_KIND] as const;
export type Kind = (typeof KINDS)[number];

/** A resource fetched from the cluster, its status decoded (or why it could not be). */
export type Resource =
  | { readonly kind: typeof SECURE_DATABASE.kind; readonly object: RawObject; readonly status: SecureDatabaseStatus | undefined; readonly statusProblem?: string }
  | { readonly kind: typeof IMAGING_CONNECTION.kind; readonly object: RawObject; readonly status: ImagingConnectionStatus | undefined; readonly statusProblem?: string };

/** Decodes the status of an object of `kind`; a status the decoders refuse is reported, not fatal. */
export function toResource(kind: KindName, object: RawObject): Resource {
  const info = kindInfo(kind);
  let status: SecureDatabaseStatus | ImagingConnectionStatus | undefined;
  let statusProblem: string | undefined;
  try {
    status = object.status === undefined ? undefined : info.decodeStatus(object.status);
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err;
    statusProblem = `unreadable status: ${err.message}`;
  }
  const problem = statusProblem === undefined ? {} : { statusProblem };
  return kind === SECURE_DATABASE.kind
    ? { kind, object, status: status as SecureDatabaseStatus | undefined, ...problem }
    : { kind, object, status: status as ImagingConnectionStatus | undefined, ...problem };
}

export function kindInfo(kind: KindName): Kind {
  return kind === SECURE_DATABASE.kind ? SECURE_DATABASE_KIND : IMAGING_CONNECTION_KIND;
}

/** The names kubectl accepts for a kind: short, singular, plural, kind, and each with the group. */
function spellings(k: Kind): string[] {
  const plain = [k.names.shortName, k.names.singular, k.names.plural, k.names.kind.toLowerCase()];
  return [...plain, ...plain.map((n) => `${n}.${k.type.group}`)];
}

/** `sdb/NAME`, `imagingconnection/NAME`… → kind and name; a bare NAME → no kind (either may match). */
export function parseResourceRef(ref: string): { kind?: KindName; name: string } {
  const slash = ref.indexOf("/");
  if (slash < 0) return { name: ref };
  const prefix = ref.slice(0, slash).toLowerCase();
  const name = ref.slice(slash + 1);
  const kind = KINDS.find((k) => spellings(k).includes(prefix));
  if (!kind) {
    throw new PluginError(`"${ref.slice(0, slash)}" is not a kind of this plugin: name a SecureDatabase as sdb/NAME or an ImagingConnection as imc/NAME`);
  }
  if (!name) throw new PluginError(`"${ref}" names no object: write ${kind.names.shortName}/NAME`);
  return { kind: kind.kind, name };
}

/** The Ready condition of a status, if any. */
export function readyCondition(status: { conditions?: Condition[] } | undefined): Condition | undefined {
  return status?.conditions?.find((c) => c.type === "Ready");
}
