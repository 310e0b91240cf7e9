/**
 * Which serial numbers a SecureDatabase's CRL must list, and since when. A CRL names certificates by serial only, so
 * entries given as an ImagingConnection or a SHA-256 fingerprint are resolved to the serials of the certificates
 * they designate, read from the ledger of issued certificates (every certificate the connection ever got that has
 * not expired, renewals included, whether or not the connection and its Secret still exist).
 *
 * A serial once listed stays listed until its certificate expires, with the date it was first listed (kept in the
 * ledger): RFC 5280 has no "unrevoke" but certificateHold, which the operator does not issue.
 */
import type { ResolvedSecureDatabaseSpec } from "../../api/defaults";
import { OWNER_LABEL, type RevocationReason } from "../../api/types";
import { secretBytes } from "../../kube/secrets";
import { normalizeFingerprint, normalizeSerialNumber, parseCertificates, type CertificateFacts } from "../../pki";
import type { OperatorContext } from "../context";
import { isExpired, isRevoked, revocationDateOf, type Ledger, type LedgerChanges, type LedgerEntry } from "../issued-ledger";

export interface RevokedEntry {
  serialNumber: string;
  reason: RevocationReason;
  /** The date it was first listed: the same in every CRL that lists it. */
  revocationDate: Date;
  /** Why this serial is listed, for events: "serial", "ImagingConnection ns/name", "fingerprint …". */
  source: string;
}

export interface RevocationPlan {
  entries: RevokedEntry[];
  /** Entries that designate no certificate the operator can find (yet): reported, never guessed. */
  unresolved: string[];
  /**
   * What the ledger must hold before a CRL is signed: the first revocation date of each newly listed serial, and the
   * entries to drop (expired, or a revocation-only record the spec no longer asks for).
   */
  ledgerChanges: LedgerChanges;
}

/** The leaf of a client Secret the operator wrote for an ImagingConnection. */
export interface ClientLeaf {
  namespace: string;
  owner: string;
  cert: CertificateFacts;
}

export interface RevocationObserved {
  spec: ResolvedSecureDatabaseSpec;
  ledger: Ledger;
  /**
   * The leaves of the live client Secrets: a fallback for certificates issued before the ledger existed (an operator
   * upgraded with connections in place, which record their certificate at their next reconcile).
   */
  leaves: readonly ClientLeaf[];
  /** The date each serial of the current CRL file was listed since: kept when the ledger has none (it was lost). */
  listedSince: ReadonlyMap<string, Date>;
}

/** The leaf of every client Secret the operator wrote for an ImagingConnection, in the namespaces it watches. */
export function clientLeaves(ctx: OperatorContext): ClientLeaf[] {
  const out: ClientLeaf[] = [];
  for (const secret of ctx.cache.secrets.list()) {
    const owner = secret.metadata.labels?.[OWNER_LABEL];
    if (!owner?.startsWith("ImagingConnection.")) continue;
    const crt = secretBytes(secret)["tls.crt"];
    if (!crt) continue;
    try {
      const [leaf] = parseCertificates(crt);
      if (leaf) out.push({ namespace: secret.metadata.namespace ?? "", owner: owner.slice("ImagingConnection.".length), cert: leaf });
    } catch {
      // A Secret we cannot parse designates nothing; its own reconciler reports it.
    }
  }
  return out;
}

/** Whether resolving the spec's revocations may need the live Secrets (the ledger alone resolves serials). */
export const needsLeaves = (spec: ResolvedSecureDatabaseSpec): boolean => spec.trust.revocations.some((r) => !r.serialNumber);

/** The record of a revocation date alone: a serial the ledger knows nothing else of. */
const revocationOnly = (e: LedgerEntry): boolean => !e.connection && !e.notAfter;

const connectionSource = (namespace: string, name: string) => `ImagingConnection ${namespace}/${name}`;

export function planRevocations(o: RevocationObserved, now: Date): RevocationPlan {
  const { spec, ledger } = o;
  const designated = new Map<string, { reason: RevocationReason; source: string; leaf?: ClientLeaf }>();
  const unresolved: string[] = [];
  const add = (serialNumber: string, reason: RevocationReason, source: string, leaf?: ClientLeaf) => {
    const serial = normalizeSerialNumber(serialNumber);
    if (!designated.has(serial)) designated.set(serial, { reason, source, ...(leaf ? { leaf } : {}) });
  };
  const live = [...ledger].filter(([, e]) => !isExpired(e, now));
  const listedBySerial = new Set<string>();
  for (const r of spec.trust.revocations) {
    if (r.serialNumber) {
      listedBySerial.add(normalizeSerialNumber(r.serialNumber));
      add(r.serialNumber, r.reason, "serial");
    }
    if (r.connectionName) {
      const ns = r.connectionNamespace ?? "";
      const source = connectionSource(ns, r.connectionName);
      const recorded = live.filter(([, e]) => e.namespace === ns && e.connection === r.connectionName);
      const found = o.leaves.filter((l) => l.namespace === ns && l.owner === r.connectionName);
      if (recorded.length === 0 && found.length === 0) unresolved.push(`${source} has no certificate the operator can see`);
      for (const [serial] of recorded) add(serial, r.reason, source);
      for (const l of found) add(l.cert.serialNumber, r.reason, source, l);
    }
    if (r.sha256Fingerprint) {
      const want = normalizeFingerprint(r.sha256Fingerprint);
      const source = `fingerprint ${want.slice(0, 16)}…`;
      const recorded = live.find(([, e]) => e.sha256Fingerprint === want);
      const found = o.leaves.find((l) => normalizeFingerprint(l.cert.fingerprintSha256) === want);
      if (recorded) add(recorded[0], r.reason, source);
      else if (found) add(found.cert.serialNumber, r.reason, source, found);
      else unresolved.push(`no certificate the operator issued has SHA-256 fingerprint ${want}: list it by serialNumber to put it in the CRL`);
    }
  }
  // Revoked before (by an entry since removed, a deletion, a loss of access): listed until it expires. A serial the
  // operator did not issue has no known expiry: it is listed while the spec lists it.
  for (const [serial, e] of live) {
    if (!isRevoked(e) || revocationOnly(e)) continue;
    add(serial, e.reason ?? "unspecified", e.connection ? connectionSource(e.namespace ?? "", e.connection) : "serial");
  }

  const entries: RevokedEntry[] = [];
  const ledgerChanges: LedgerChanges = new Map();
  for (const [serial, d] of designated) {
    const recorded = ledger.get(serial);
    // A serial named by the spec stays listed even past its expiry: the spec asks for it.
    if (recorded && isExpired(recorded, now) && !listedBySerial.has(serial)) continue;
    const since = new Date(recorded?.revocationDate ?? o.listedSince.get(serial)?.toISOString() ?? revocationDateOf(now));
    entries.push({ serialNumber: serial, reason: d.reason, revocationDate: since, source: d.source });
    if (!recorded?.revocationDate) {
      ledgerChanges.set(serial, { ...(recorded ?? leafEntry(d.leaf)), revocationDate: since.toISOString(), reason: d.reason });
    }
  }
  for (const [serial, e] of ledger) {
    if (listedBySerial.has(serial)) continue;
    // Expired; or the record of a serial the operator did not issue, which the spec no longer lists.
    if (isExpired(e, now) || revocationOnly(e)) ledgerChanges.set(serial, null);
  }
  entries.sort((a, b) => (a.serialNumber < b.serialNumber ? -1 : 1));
  return { entries, unresolved, ledgerChanges };
}

/** What a live Secret tells of a certificate the ledger does not know (issued before the ledger existed). */
function leafEntry(leaf: ClientLeaf | undefined): LedgerEntry {
  if (!leaf) return {};
  return {
    namespace: leaf.namespace,
    connection: leaf.owner,
    ...(leaf.cert.subjectCommonName !== undefined ? { user: leaf.cert.subjectCommonName } : {}),
    sha256Fingerprint: leaf.cert.fingerprintSha256,
    issuedAt: leaf.cert.notBefore.toISOString(),
    notAfter: leaf.cert.notAfter.toISOString(),
  };
}
