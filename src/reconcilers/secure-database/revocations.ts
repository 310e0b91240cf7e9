/**
 * Which serial numbers a SecureDatabase's CRL must list. A CRL names certificates by serial only, so entries
 * given as an ImagingConnection or a SHA-256 fingerprint are resolved to the serial of the certificate they
 * designate, read from the client Secrets the operator wrote.
 */
import type { ResolvedSecureDatabaseSpec } from "../../api/defaults";
import { OWNER_LABEL, type RevocationReason } from "../../api/types";
import { secretBytes } from "../../kube/secrets";
import { normalizeFingerprint, normalizeSerialNumber, parseCertificates, type CertificateFacts } from "../../pki";
import type { OperatorContext } from "../context";

export interface RevokedEntry {
  serialNumber: string;
  reason: RevocationReason;
  /** Why this serial is listed, for events: "serial", "ImagingConnection ns/name", "fingerprint …". */
  source: string;
}

export interface RevocationPlan {
  entries: RevokedEntry[];
  /** Entries that designate no certificate the operator can find (yet): reported, never guessed. */
  unresolved: string[];
}

/** The leaf of every client Secret the operator wrote for an ImagingConnection, in the namespaces it watches. */
function clientLeaves(ctx: OperatorContext): { namespace: string; owner: string; cert: CertificateFacts }[] {
  const out: { namespace: string; owner: string; cert: CertificateFacts }[] = [];
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

export function planRevocations(ctx: OperatorContext, spec: ResolvedSecureDatabaseSpec): RevocationPlan {
  const entries = new Map<string, RevokedEntry>();
  const unresolved: string[] = [];
  const add = (serialNumber: string, reason: RevocationReason, source: string) => {
    const serial = normalizeSerialNumber(serialNumber);
    if (!entries.has(serial)) entries.set(serial, { serialNumber: serial, reason, source });
  };
  const needsLookup = spec.trust.revocations.some((r) => !r.serialNumber);
  const leaves = needsLookup ? clientLeaves(ctx) : [];
  for (const r of spec.trust.revocations) {
    if (r.serialNumber) add(r.serialNumber, r.reason, "serial");
    if (r.connectionName) {
      const ns = r.connectionNamespace ?? "";
      const found = leaves.filter((l) => l.namespace === ns && l.owner === r.connectionName);
      if (found.length === 0) unresolved.push(`ImagingConnection ${ns}/${r.connectionName} has no certificate the operator can see`);
      for (const l of found) add(l.cert.serialNumber, r.reason, `ImagingConnection ${ns}/${r.connectionName}`);
    }
    if (r.sha256Fingerprint) {
      const want = normalizeFingerprint(r.sha256Fingerprint);
      const found = leaves.find((l) => normalizeFingerprint(l.cert.fingerprintSha256) === want);
      if (found) add(found.cert.serialNumber, r.reason, `fingerprint ${want.slice(0, 16)}…`);
      else {
        unresolved.push(`no certificate the operator issued has SHA-256 fingerprint ${want}: list it by serialNumber to put it in the CRL`);
      }
    }
  }
  return { entries: [...entries.values()].sort((a, b) => (a.serialNumber < b.serialNumber ? -1 : 1)), unresolved };
}
