/**
 * The ledger of the client certificates a SecureDatabase's CA issued: ConfigMaps `<sdb>-issued-0` … `-f` in the
 * database's namespace, labelled as the SecureDatabase's and owned by it (they go when the database goes), one data
 * key per serial (canonical lower-case hex), each value one JSON object (LedgerEntry). A connection's entries live in
 * one shard (a hash of its namespace and name), so a connection reads and writes a sixteenth of the ledger: one
 * ConfigMap rewritten at every issuance would cost the API server and every watcher the whole ledger each time (a
 * 1000-connection storm on one database: 1000 writes of a ConfigMap growing to 250 kB). A ConfigMap `<sdb>-issued`
 * an earlier operator kept is read as part of the ledger; its entries stay where they are until they expire.
 *
 * It outlives the ImagingConnection and its Secret and an operator restart, so a revocation by connection or by
 * fingerprint keeps designating every certificate the connection ever got (renewals included), and it keeps the date
 * a serial was first revoked, so every later CRL carries that date. Entries go once their certificate has expired
 * (an expired certificate is refused anyway; a CRL need not list it): the ledger holds the live certificates only.
 *
 * Writers: the ImagingConnection reconciler records each certificate before its Secret is written, and marks a
 * connection's entries revoked when it is deleted or loses access; the SecureDatabase reconciler records first
 * revocation dates and drops expired entries. Each write is a merge patch of the changed keys alone; one that changes
 * an entry it read is guarded by the resourceVersion it was planned from (a 409 re-reads and re-plans), so two
 * writers never lose each other's entries, and a first revocation date is never written twice.
 */
import { createHash } from "node:crypto";
import { issuedLedgerName, issuedLedgerShardName, LEDGER_SHARDS } from "../api/default-values";
import { Reason } from "../api/reasons";
import { OWNER_LABEL, managedLabels, ownerLabelValue, type RevocationReason } from "../api/types";
import { RESOURCES } from "../kube/resources";
import { isApiError, MERGE_PATCH } from "../kube/rest";
import { ownerReference } from "../kube/secrets";
import { normalizeSerialNumber, type CertificateFacts } from "../pki";
import { TemporaryError } from "../runtime/errors";
import type { ConfigMapObject, OperatorContext, SecureDatabaseObject } from "./context";
import { MapUnion } from "./map-union";

/** One certificate, as the ledger keeps it (under its serial). Dates are ISO 8601. */
export interface LedgerEntry {
  /** The ImagingConnection it was issued to (absent: a serial revoked by serialNumber that the operator did not issue). */
  namespace?: string;
  connection?: string;
  /** Its CN: the database user. */
  user?: string;
  sha256Fingerprint?: string;
  /** When the operator recorded it: the issuance, or the certificate's notBefore when recorded after the fact. */
  issuedAt?: string;
  notAfter?: string;
  /** Set the first time the serial went into the CRL; never changed after. */
  revocationDate?: string;
  reason?: RevocationReason;
}

export type Ledger = ReadonlyMap<string, LedgerEntry>;
/** Serial → the entry to write, or null to drop it. */
export type LedgerChanges = Map<string, LedgerEntry | null>;

/**
 * How long after its notAfter an entry is kept: a database server whose clock is behind the operator's still takes
 * the certificate for that long, so it stays in the CRL.
 */
export const EXPIRY_GRACE_MS = 3600_000;

const ENTRY_KEYS: readonly (keyof LedgerEntry)[] = [
  "namespace",
  "connection",
  "user",
  "sha256Fingerprint",
  "issuedAt",
  "notAfter",
  "revocationDate",
  "reason",
];

/** The ledger in a ConfigMap's data; a key or value that is not an entry (a hand edit) is left out, never guessed at. */
export function parseLedger(data: Readonly<Record<string, string>> | undefined): Map<string, LedgerEntry> {
  return parseLedgerPart(data).ledger;
}

/** One data key of a ledger ConfigMap as read: its text and what it held (undefined: not an entry). */
interface ParsedKey {
  raw: string;
  parsed: readonly [serial: string, entry: LedgerEntry] | undefined;
}

interface ParsedPart {
  ledger: Map<string, LedgerEntry>;
  keys: Map<string, ParsedKey>;
}

/** A ConfigMap's ledger; keys whose text is the same as in `previous` (the last version read) are not parsed again. */
function parseLedgerPart(data: Readonly<Record<string, string>> | undefined, previous?: ParsedPart): ParsedPart {
  const ledger = new Map<string, LedgerEntry>();
  const keys = new Map<string, ParsedKey>();
  for (const [key, raw] of Object.entries(data ?? {})) {
    const before = previous?.keys.get(key);
    const parsed = before?.raw === raw ? before.parsed : parseEntry(key, raw);
    keys.set(key, { raw, parsed });
    if (parsed) ledger.set(parsed[0], parsed[1]);
  }
  return { ledger, keys };
}

function parseEntry(key: string, value: string): readonly [string, LedgerEntry] | undefined {
  let serial: string;
  let parsed: unknown;
  try {
    serial = normalizeSerialNumber(key);
    parsed = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined;
  const entry: LedgerEntry = {};
  for (const k of ENTRY_KEYS) {
    const v = (parsed as Record<string, unknown>)[k];
    if (typeof v === "string") (entry as Record<string, string>)[k] = v;
  }
  return [serial, entry];
}

/** One entry as stored: its fields in a fixed order, so equal entries are equal bytes. */
export function encodeEntry(entry: LedgerEntry): string {
  const ordered: Record<string, string> = {};
  for (const k of ENTRY_KEYS) if (entry[k] !== undefined) ordered[k] = entry[k];
  return JSON.stringify(ordered);
}

/** Past notAfter (and the grace): the certificate is refused anyway, the entry may go. Unknown expiry: never. */
export function isExpired(entry: LedgerEntry, now: Date): boolean {
  if (!entry.notAfter) return false;
  const notAfter = Date.parse(entry.notAfter);
  return Number.isFinite(notAfter) && notAfter + EXPIRY_GRACE_MS <= now.getTime();
}

export const isRevoked = (entry: LedgerEntry): boolean => entry.revocationDate !== undefined;

/** A revocation date as a CRL carries it (whole seconds), so the ledger and every CRL say the same. */
export const revocationDateOf = (now: Date): string => new Date(Math.floor(now.getTime() / 1000) * 1000).toISOString();

export interface ConnectionRef {
  namespace: string;
  name: string;
}

export const belongsTo = (entry: LedgerEntry, c: ConnectionRef): boolean => entry.namespace === c.namespace && entry.connection === c.name;

/** The entry of a certificate issued to a connection. */
export function issuedEntry(connection: ConnectionRef, cert: Pick<CertificateFacts, "subjectCommonName" | "fingerprintSha256" | "notAfter">, issuedAt: Date): LedgerEntry {
  return {
    namespace: connection.namespace,
    connection: connection.name,
    ...(cert.subjectCommonName !== undefined ? { user: cert.subjectCommonName } : {}),
    sha256Fingerprint: cert.fingerprintSha256,
    issuedAt: issuedAt.toISOString(),
    notAfter: cert.notAfter.toISOString(),
  };
}

/** Records a certificate (once: a serial already there keeps its entry, revocation date included). */
export function planIssued(ledger: Ledger, serialNumber: string, entry: LedgerEntry): LedgerChanges {
  const serial = normalizeSerialNumber(serialNumber);
  return ledger.has(serial) ? new Map() : new Map([[serial, entry]]);
}

/**
 * Marks the connection's certificates that have not expired revoked as of `now`, with `reason`; an entry revoked
 * before keeps its date and reason.
 */
export function planConnectionRevocation(ledger: Ledger, connection: ConnectionRef, reason: RevocationReason, now: Date): LedgerChanges {
  const changes: LedgerChanges = new Map();
  for (const [serial, entry] of ledger) {
    if (!belongsTo(entry, connection) || isRevoked(entry) || isExpired(entry, now)) continue;
    changes.set(serial, { ...entry, revocationDate: revocationDateOf(now), reason });
  }
  return changes;
}

/** The serials of the ledger that are revoked and not expired (a connection's own, when given). */
export function revokedSerials(ledger: Ledger, now: Date, connection?: ConnectionRef): string[] {
  return [...ledger]
    .filter(([, e]) => isRevoked(e) && !isExpired(e, now) && (!connection || belongsTo(e, connection)))
    .map(([serial]) => serial)
    .sort();
}

/** The ledger with the changes applied. */
export function applyChanges(ledger: Ledger, changes: LedgerChanges): Map<string, LedgerEntry> {
  const out = new Map(ledger);
  for (const [serial, entry] of changes) {
    if (entry) out.set(serial, entry);
    else out.delete(serial);
  }
  return out;
}

/**
 * The merge patch of the changes alone. New serials only (each issuance): no precondition, since a merge patch of
 * other keys loses nothing and a serial is written by its one issuer; a change or drop of an entry the plan read (a
 * first revocation date, an expiry) is guarded by the resourceVersion it was planned from.
 */
export function ledgerPatch(changes: LedgerChanges, resourceVersion: string | undefined, planned: Ledger = new Map()): object {
  const data: Record<string, string | null> = {};
  for (const [serial, entry] of changes) data[serial] = entry ? encodeEntry(entry) : null;
  const onlyNew = [...changes.keys()].every((serial) => !planned.has(serial));
  return onlyNew ? { data } : { metadata: { resourceVersion }, data };
}

/**
 * Parsed ledgers by the ConfigMap object they were read from. The cache replaces the object on every change and
 * nothing edits one in place, so each version is parsed once, not once per connection reconciled against it; and
 * only its changed keys are parsed, against the last version read of the same ConfigMap (a shard grows by one entry
 * per issuance: parsing all of it at each would make a storm on one database quadratic).
 */
const parsedLedgers = new WeakMap<ConfigMapObject, ParsedPart>();
/** The last version read of each ConfigMap, the least recently read going first past the bound (deleted ones too). */
const lastParsed = new Map<string, ParsedPart>();
const LAST_PARSED_BOUND = 4096;

function ledgerOf(cm: ConfigMapObject | undefined): Ledger {
  if (!cm) return new Map();
  let part = parsedLedgers.get(cm);
  if (!part) {
    const name = `${cm.metadata.namespace ?? ""}/${cm.metadata.name}`;
    part = parseLedgerPart(cm.data, lastParsed.get(name));
    parsedLedgers.set(cm, part);
    lastParsed.delete(name);
    lastParsed.set(name, part);
    if (lastParsed.size > LAST_PARSED_BOUND) lastParsed.delete(lastParsed.keys().next().value!);
  }
  return part.ledger;
}

/** The shard of a connection's entries (an entry of no connection: its serial's). */
export function shardOf(serial: string, entry: LedgerEntry | undefined): number {
  const key = entry?.connection !== undefined ? `${entry.namespace ?? ""}/${entry.connection}` : serial;
  return createHash("sha256").update(key).digest()[0]! % LEDGER_SHARDS;
}

/** Every ConfigMap name the ledger of `sdbName` may be kept in: the shards, then an earlier operator's one. */
export function ledgerNames(sdbName: string): string[] {
  return [...Array.from({ length: LEDGER_SHARDS }, (_, i) => issuedLedgerShardName(sdbName, i)), issuedLedgerName(sdbName)];
}

/** The ConfigMaps of a ledger, by name (absent ones too): `fresh` (read from the API after a conflict) before the cache. */
type LedgerParts = Map<string, ConfigMapObject | undefined>;

function ledgerParts(ctx: OperatorContext, namespace: string, sdbName: string, fresh: LedgerParts = new Map()): LedgerParts {
  return new Map(ledgerNames(sdbName).map((name) => [name, fresh.has(name) ? fresh.get(name) : ctx.cache.configMaps.get(namespace, name)]));
}

function union(parts: LedgerParts): Ledger {
  return new MapUnion([...parts.values()].map(ledgerOf));
}

/** The ledger of a SecureDatabase as the cache has it (its ConfigMaps carry the owner label the cache selects). */
export function readLedger(ctx: OperatorContext, namespace: string, sdbName: string): Ledger {
  return union(ledgerParts(ctx, namespace, sdbName));
}

/** One connection's entries: its shard and an earlier operator's ledger only, not the whole ledger. */
export function readConnectionLedger(ctx: OperatorContext, sdb: SecureDatabaseObject, connection: ConnectionRef): Ledger {
  const shard = issuedLedgerShardName(sdb.metadata.name, shardOf("", { namespace: connection.namespace, connection: connection.name }));
  const out = new Map<string, LedgerEntry>();
  for (const name of [shard, issuedLedgerName(sdb.metadata.name)]) {
    for (const [serial, entry] of ledgerOf(ctx.cache.configMaps.get(sdb.metadata.namespace, name))) if (belongsTo(entry, connection)) out.set(serial, entry);
  }
  return out;
}

/** Whether a ConfigMap is (a shard of) the ledger of the SecureDatabase its owner label names. */
export function isLedgerConfigMap(cm: ConfigMapObject): boolean {
  const owner = cm.metadata.labels?.[OWNER_LABEL] ?? "";
  return owner.startsWith("SecureDatabase.") && ledgerNames(owner.slice("SecureDatabase.".length)).includes(cm.metadata.name);
}

/** The revoked serials of a ledger ConfigMap: what its owner's CRL depends on (an issuance alone changes none). */
export function revokedInLedgerConfigMap(cm: ConfigMapObject | undefined): string {
  return [...ledgerOf(cm)].filter(([, e]) => isRevoked(e)).map(([serial]) => serial).sort().join(",");
}

/** Where each change goes: the ConfigMap that holds the serial, or its connection's shard for a new one. */
export function placeChanges(parts: ReadonlyMap<string, ConfigMapObject | undefined>, sdbName: string, changes: LedgerChanges): Map<string, LedgerChanges> {
  const out = new Map<string, LedgerChanges>();
  for (const [serial, entry] of changes) {
    const holder = [...parts].find(([, cm]) => ledgerOf(cm).has(serial))?.[0];
    const name = holder ?? issuedLedgerShardName(sdbName, shardOf(serial, entry ?? undefined));
    if (!out.has(name)) out.set(name, new Map());
    out.get(name)!.set(serial, entry);
  }
  return out;
}

/** Why the ConfigMap of a ledger's name is not ours to write, if it is not. */
function notOurs(cm: ConfigMapObject, sdbName: string): string | undefined {
  if (cm.metadata.labels?.[OWNER_LABEL] === ownerLabelValue("SecureDatabase", sdbName)) return undefined;
  return (
    `ConfigMap ${cm.metadata.namespace}/${cm.metadata.name} exists and was not created by the operator for SecureDatabase ` +
    `${sdbName}: it holds the ledger of the certificates the database's CA issued; delete or rename it (it is never overwritten)`
  );
}

const MAX_ATTEMPTS = 5;

/**
 * Applies the changes `plan` makes to the ledger and returns the ledger as written. `plan` is called again on the
 * freshest ledger after a conflict (a part written before the conflict then plans no change); no changes: nothing
 * written. Creates a shard on its first entry.
 */
export async function updateLedger(
  ctx: OperatorContext,
  sdb: SecureDatabaseObject,
  plan: (ledger: Ledger) => LedgerChanges,
): Promise<Ledger> {
  const namespace = sdb.metadata.namespace!;
  const sdbName = sdb.metadata.name;
  const fresh: LedgerParts = new Map();
  for (let attempt = 1; ; attempt++) {
    const parts = ledgerParts(ctx, namespace, sdbName, fresh);
    for (const cm of parts.values()) {
      const problem = cm && notOurs(cm, sdbName);
      if (problem) throw new TemporaryError(Reason.LedgerNotOurs, problem);
    }
    const changes = plan(union(parts));
    if (changes.size === 0) return union(parts);
    let conflict: string | undefined;
    for (const [name, part] of placeChanges(parts, sdbName, changes)) {
      const current = parts.get(name);
      try {
        const written = current
          ? await ctx.client.patch<ConfigMapObject>(RESOURCES.ConfigMap, { namespace, name }, ledgerPatch(part, current.metadata.resourceVersion, ledgerOf(current)), MERGE_PATCH)
          : await ctx.client.create<ConfigMapObject>(RESOURCES.ConfigMap, namespace, {
              apiVersion: "v1",
              kind: "ConfigMap",
              metadata: { name, namespace, labels: managedLabels("SecureDatabase", sdbName), ownerReferences: [ownerReference(sdb)] },
              data: Object.fromEntries([...part].flatMap(([serial, e]) => (e ? [[serial, encodeEntry(e)]] : []))),
            });
        ctx.cache.configMaps.observe(written);
        parts.set(name, written);
        fresh.set(name, written);
      } catch (err) {
        // 409: written since it was read (or created by another writer); 404: deleted since. Read it again, plan again.
        if (!isApiError(err, 409, 404) || attempt >= MAX_ATTEMPTS) throw err;
        conflict = name;
        break;
      }
    }
    if (!conflict) return union(parts);
    fresh.set(conflict, await ctx.client.getOptional<ConfigMapObject>(RESOURCES.ConfigMap, { namespace, name: conflict }));
  }
}
