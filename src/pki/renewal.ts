/**
 * Does the certificate in a Secret need re-issuing, and why? A chain of small pure policies over
 * (desired, current, now), in the spirit of cert-manager's trigger policies. The first policy that fires
 * wins; its reason (CamelCase) and message are what status conditions and events show. When none fires the
 * answer is UpToDate together with the renewal time, at which the reconciler requeues itself.
 *
 * Everything here is synchronous and deterministic: parsing and signature checks use node:crypto's
 * X509Certificate (well under a millisecond), and time only comes in through `now`.
 */
import { ContentCache } from "./content-cache";
import { PkiError } from "./errors";
import { checkKeyPair } from "./key-match";
import {
  isIssuedBy,
  normalizeFingerprint,
  normalizeSerialNumber,
  parseCertificate,
  type CertificateFacts,
} from "./certificate";
import { resolveServerNames } from "./leaf";
import { describeKeySpec, type KeySpec } from "./keys";

export type RenewalReason =
  | "MissingData"
  | "Unparsable"
  | "KeyMismatch"
  | "Revoked"
  | "Expired"
  | "IssuerChanged"
  | "SubjectChanged"
  | "SANsChanged"
  | "KeyAlgorithmChanged"
  | "KeySizeChanged"
  | "DurationShortened"
  | "ManualRotationRequested"
  | "RenewalTimeReached"
  | "UpToDate";

export interface RenewalDecision {
  readonly reissue: boolean;
  readonly reason: RenewalReason;
  readonly message: string;
  /** For UpToDate: when the certificate should be renewed (the reconciler's requeue time). */
  readonly renewalTime?: Date;
}

interface DesiredBase {
  readonly key: KeySpec;
  /** Requested lifetime (ms). Changing it alone does not trigger re-issuance: it applies at the next renewal. */
  readonly duration: number;
  /** Renew this long (ms) before notAfter. Ignored when renewBeforePercentage is set. */
  readonly renewBefore?: number;
  /** Renew when this percentage of the lifetime remains (0 < p < 100). */
  readonly renewBeforePercentage?: number;
  /** The CA that should have signed the certificate: the current one. */
  readonly issuer: { readonly certPem: string };
  /**
   * Other CAs whose certificates are kept as they are (no IssuerChanged): during a CA rotation's overlap, the old
   * CA that every consumer still trusts. Certificates issued now still come from `issuer`.
   */
  readonly alsoAcceptedIssuers?: readonly { readonly certPem: string }[];
  /** Serial numbers (any hex spelling) that must no longer be used. */
  readonly revokedSerials?: readonly string[];
  /** SHA-256 fingerprints (any spelling) that must no longer be used. */
  readonly revokedFingerprints?: readonly string[];
  /** A user-set token (e.g. an annotation); a new value asks for a new certificate once. */
  readonly rotationToken?: string;
  /** The token the current certificate was issued for (from status). */
  readonly lastRotationToken?: string;
}

export interface DesiredServerCertificate extends DesiredBase {
  readonly kind: "server";
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
  readonly commonName?: string;
}

export interface DesiredClientCertificate extends DesiredBase {
  readonly kind: "client";
  readonly user: string;
}

export type DesiredCertificate = DesiredServerCertificate | DesiredClientCertificate;

/** A Secret's data as read from the API server (values already base64-decoded). */
export type SecretData = Readonly<Record<string, Uint8Array | undefined>>;

export type RenewalPolicy = (desired: DesiredCertificate, current: SecretData, now: Date) => RenewalDecision | undefined;

// -------------------------------------------------------------------------------- renewal time

export type RenewBefore = number | { readonly percentage: number };

/** Upper bound of the default renewal window of a certificate policy. */
export const DEFAULT_RENEW_BEFORE_MAX_MS = 720 * 3600 * 1000;

/** `percentage` (0 < p < 100) of a lifetime, in whole ms. */
function shareOf(lifetime: number, percentage: number): number {
  if (!Number.isFinite(percentage) || percentage <= 0 || percentage >= 100) {
    throw new PkiError("InvalidArgument", `renewBeforePercentage must be between 0 and 100 (exclusive), got ${String(percentage)}`);
  }
  return Math.round((lifetime * percentage) / 100);
}

/**
 * The renewal window a certificate policy asks for (renew when less than this remains), for certificates of
 * `duration` ms: renewBefore as given, else renewBeforePercentage of the duration, else min(720h, duration / 3).
 */
export function renewalWindow(
  duration: number,
  policy: { readonly renewBefore?: number; readonly renewBeforePercentage?: number },
): number {
  if (policy.renewBefore !== undefined) return policy.renewBefore;
  if (policy.renewBeforePercentage !== undefined) return shareOf(duration, policy.renewBeforePercentage);
  return Math.min(DEFAULT_RENEW_BEFORE_MAX_MS, Math.floor(duration / 3));
}

/**
 * When a certificate valid from notBefore to notAfter should be renewed.
 * - a number: that many ms before notAfter; if it is not shorter than the lifetime (a certificate cut short by its
 *   CA's expiry), a third of the lifetime instead (as cert-manager does), since renewing "before issuance" would loop;
 * - { percentage }: when that percentage of the lifetime remains (0 < percentage < 100);
 * - nothing: when a third of the lifetime remains.
 */
export function renewalTime(notBefore: Date, notAfter: Date, renewBefore?: RenewBefore): Date {
  const start = notBefore.getTime();
  const end = notAfter.getTime();
  const lifetime = end - start;
  if (!(lifetime > 0)) return new Date(start);
  if (typeof renewBefore === "object") return new Date(end - shareOf(lifetime, renewBefore.percentage));
  if (typeof renewBefore === "number") {
    if (!Number.isFinite(renewBefore) || renewBefore <= 0) {
      throw new PkiError("InvalidArgument", `renewBefore must be a positive number of milliseconds, got ${String(renewBefore)}`);
    }
    if (renewBefore < lifetime) return new Date(end - renewBefore);
  }
  return new Date(end - Math.floor(lifetime / 3));
}

function renewBeforeOf(desired: DesiredCertificate): RenewBefore | undefined {
  if (desired.renewBeforePercentage !== undefined) return { percentage: desired.renewBeforePercentage };
  return desired.renewBefore;
}

/** When a certificate issued for `desired` is renewed. */
export function desiredRenewalTime(desired: DesiredCertificate, cert: { notBefore: Date; notAfter: Date }): Date {
  return renewalTime(cert.notBefore, cert.notAfter, renewBeforeOf(desired));
}

// ----------------------------------------------------------------------- reading the Secret once

type Inspection =
  | { readonly kind: "missing"; readonly missing: readonly string[] }
  | { readonly kind: "unparsable"; readonly message: string }
  | { readonly kind: "parsed"; readonly cert: CertificateFacts; readonly keyMatches: boolean; readonly keyDescription: string };

// Each policy can be called on its own, and every reconcile reads the same Secret again: inspect each content once.
const inspections = new ContentCache<Inspection>(8192);

function isEmpty(value: Uint8Array | undefined): boolean {
  return value === undefined || value.length === 0;
}

function inspect(current: SecretData): Inspection {
  return inspections.get([current["tls.crt"], current["tls.key"]], () => inspectUncached(current));
}

function inspectUncached(current: SecretData): Inspection {
  const missing = ["tls.crt", "tls.key"].filter((k) => isEmpty(current[k]));
  if (missing.length > 0) return { kind: "missing", missing };
  let cert: CertificateFacts;
  try {
    cert = parseCertificate(current["tls.crt"] as Uint8Array, "tls.crt");
  } catch (e) {
    return { kind: "unparsable", message: e instanceof PkiError ? e.message : "tls.crt is not a certificate" };
  }
  try {
    const key = checkKeyPair(cert, current["tls.key"] as Uint8Array);
    // A matching key is the certificate's public key: the certificate describes it.
    return { kind: "parsed", cert, keyMatches: key.matches, keyDescription: key.matches ? cert.key.description : key.key.facts.description };
  } catch (e) {
    return { kind: "unparsable", message: `tls.key: ${e instanceof PkiError ? e.message : "not a private key"}` };
  }
}

function parsed(current: SecretData): { cert: CertificateFacts; keyMatches: boolean; keyDescription: string } | undefined {
  const i = inspect(current);
  return i.kind === "parsed" ? i : undefined;
}

function reissue(reason: RenewalReason, message: string): RenewalDecision {
  return { reissue: true, reason, message };
}

function label(cert: CertificateFacts): string {
  return `the certificate (serial ${cert.serialNumber})`;
}

// --------------------------------------------------------------------------------- the policies

export const missingData: RenewalPolicy = (_desired, current) => {
  const i = inspect(current);
  if (i.kind !== "missing") return undefined;
  return reissue("MissingData", `the Secret has no ${i.missing.join(" and ")}: issuing a certificate`);
};

export const unparsable: RenewalPolicy = (_desired, current) => {
  const i = inspect(current);
  if (i.kind !== "unparsable") return undefined;
  return reissue("Unparsable", `the Secret's certificate or key cannot be read (${i.message}): issuing a new certificate`);
};

export const keyMismatch: RenewalPolicy = (_desired, current) => {
  const p = parsed(current);
  if (!p || p.keyMatches) return undefined;
  return reissue("KeyMismatch", `tls.key (${p.keyDescription}) does not belong to ${label(p.cert)} in tls.crt: issuing a new pair`);
};

export const revoked: RenewalPolicy = (desired, current) => {
  const p = parsed(current);
  if (!p) return undefined;
  const serials = new Set((desired.revokedSerials ?? []).map(normalizeSerialNumber));
  const fingerprints = new Set((desired.revokedFingerprints ?? []).map(normalizeFingerprint));
  if (serials.has(p.cert.serialNumber)) {
    return reissue("Revoked", `${label(p.cert)} is on the revocation list: issuing a replacement`);
  }
  if (fingerprints.has(p.cert.fingerprintSha256)) {
    return reissue("Revoked", `${label(p.cert)} (SHA-256 ${p.cert.fingerprintSha256}) is on the revocation list: issuing a replacement`);
  }
  return undefined;
};

export const expired: RenewalPolicy = (_desired, current, now) => {
  const p = parsed(current);
  if (!p || now.getTime() < p.cert.notAfter.getTime()) return undefined;
  return reissue("Expired", `${label(p.cert)} expired at ${p.cert.notAfter.toISOString()}: issuing a new one`);
};

export const issuerChanged: RenewalPolicy = (desired, current) => {
  const p = parsed(current);
  if (!p) return undefined;
  const ca = parseCertificate(desired.issuer.certPem, "the issuer CA certificate");
  if (isIssuedBy(p.cert, ca)) return undefined;
  const issuedByAccepted = (desired.alsoAcceptedIssuers ?? []).some((other) =>
    isIssuedBy(p.cert, parseCertificate(other.certPem, "an accepted issuer CA certificate")),
  );
  if (issuedByAccepted) return undefined;
  return reissue(
    "IssuerChanged",
    `${label(p.cert)} was signed by "${p.cert.issuer}"${p.cert.authorityKeyId ? ` (key id ${p.cert.authorityKeyId})` : ""}, ` +
      `not by the current CA "${ca.subject}"${ca.subjectKeyId ? ` (key id ${ca.subjectKeyId})` : ""}: issuing one from the current CA`,
  );
};

export const subjectChanged: RenewalPolicy = (desired, current) => {
  const p = parsed(current);
  if (!p) return undefined;
  const cn = p.cert.subjectCommonName;
  if (desired.kind === "client") {
    if (cn === desired.user) return undefined;
    return reissue("SubjectChanged", `${label(p.cert)} is for CN "${cn ?? ""}" but the database user is "${desired.user}": issuing one for the new user`);
  }
  const names = resolveServerNames(desired);
  if (desired.commonName !== undefined) {
    if (cn === desired.commonName) return undefined;
    return reissue("SubjectChanged", `${label(p.cert)} has CN "${cn ?? ""}" but "${desired.commonName}" is requested: issuing a new one`);
  }
  // No explicit CN: any CN that is one of the desired names is fine, so reordering names does not re-issue.
  if (cn !== undefined && (names.dnsNames.includes(cn.toLowerCase()) || names.ipAddresses.includes(cn))) return undefined;
  return reissue("SubjectChanged", `${label(p.cert)} has CN "${cn ?? ""}", which is no longer one of the server's names: issuing a new one`);
};

export const sansChanged: RenewalPolicy = (desired, current) => {
  if (desired.kind !== "server") return undefined;
  const p = parsed(current);
  if (!p) return undefined;
  const want = resolveServerNames(desired);
  const diff = describeDiff(
    [...want.dnsNames.map((d) => `DNS:${d}`), ...want.ipAddresses.map((i) => `IP:${i}`)],
    [...p.cert.dnsNames.map((d) => `DNS:${d}`), ...p.cert.ipAddresses.map((i) => `IP:${i}`)],
  );
  if (diff === undefined) return undefined;
  return reissue("SANsChanged", `the server names changed (${diff}): issuing a certificate for the new names`);
};

function describeDiff(want: readonly string[], have: readonly string[]): string | undefined {
  const wantSet = new Set(want);
  const haveSet = new Set(have);
  const added = want.filter((w) => !haveSet.has(w));
  const removed = have.filter((h) => !wantSet.has(h));
  if (added.length === 0 && removed.length === 0) return undefined;
  const parts: string[] = [];
  if (added.length > 0) parts.push(`added ${added.join(", ")}`);
  if (removed.length > 0) parts.push(`removed ${removed.join(", ")}`);
  return parts.join("; ");
}

export const keyAlgorithmChanged: RenewalPolicy = (desired, current) => {
  const p = parsed(current);
  if (!p || p.cert.key.algorithm === desired.key.algorithm) return undefined;
  return reissue(
    "KeyAlgorithmChanged",
    `${label(p.cert)} has a ${p.cert.key.description} key but ${describeKeySpec(desired.key)} is requested: issuing a new key and certificate`,
  );
};

export const keySizeChanged: RenewalPolicy = (desired, current) => {
  const p = parsed(current);
  if (!p || p.cert.key.algorithm !== desired.key.algorithm || p.cert.key.size === desired.key.size) return undefined;
  return reissue(
    "KeySizeChanged",
    `${label(p.cert)} has a ${p.cert.key.description} key but ${describeKeySpec(desired.key)} is requested: issuing a new key and certificate`,
  );
};

/**
 * A certificate that would stay valid longer than the policy now allows (someone shortened `duration`, e.g. after
 * an audit) is replaced now rather than at a renewal time computed from the old lifetime. The back-dating of
 * notBefore and one minute of slack keep a certificate issued under the same policy from matching.
 */
export const lifetimeExceedsPolicy: RenewalPolicy = (desired, current, now) => {
  const p = parsed(current);
  if (!p) return undefined;
  const remaining = p.cert.notAfter.getTime() - now.getTime();
  if (remaining <= desired.duration + 60_000) return undefined;
  return reissue(
    "DurationShortened",
    `${label(p.cert)} is valid until ${p.cert.notAfter.toISOString()}, longer than the ${Math.round(desired.duration / 1000)} s ` +
      "the policy now allows: issuing one under the new policy",
  );
};

export const manualRotationRequested: RenewalPolicy = (desired, current) => {
  const p = parsed(current);
  const token = desired.rotationToken;
  if (!p || token === undefined || token === "" || token === desired.lastRotationToken) return undefined;
  return reissue("ManualRotationRequested", `rotation "${token}" was requested: issuing a new key and certificate`);
};

export const renewalTimeReached: RenewalPolicy = (desired, current, now) => {
  const p = parsed(current);
  if (!p) return undefined;
  const at = desiredRenewalTime(desired, p.cert);
  if (now.getTime() < at.getTime()) return undefined;
  return reissue(
    "RenewalTimeReached",
    `${label(p.cert)} expires at ${p.cert.notAfter.toISOString()} and was due for renewal at ${at.toISOString()}: renewing`,
  );
};

/** The policies in the order they are asked: the most fundamental problem is the one reported. */
export const RENEWAL_POLICIES: readonly RenewalPolicy[] = Object.freeze([
  missingData,
  unparsable,
  keyMismatch,
  revoked,
  expired,
  issuerChanged,
  subjectChanged,
  sansChanged,
  keyAlgorithmChanged,
  keySizeChanged,
  lifetimeExceedsPolicy,
  manualRotationRequested,
  renewalTimeReached,
]);

/**
 * Runs the policy chain. Throws only when the desired state itself is invalid (PkiError: e.g. an invalid DNS
 * name or revoked serial), which the caller reports as a spec problem.
 */
export function evaluateRenewal(
  desired: DesiredCertificate,
  current: SecretData,
  now: Date,
  policies: readonly RenewalPolicy[] = RENEWAL_POLICIES,
): RenewalDecision {
  for (const policy of policies) {
    const decision = policy(desired, current, now);
    if (decision) return decision;
  }
  const p = parsed(current);
  if (!p) {
    // Only reachable with a custom policy list that skips the data checks.
    return reissue("Unparsable", "the Secret's certificate could not be read: issuing a new certificate");
  }
  const at = desiredRenewalTime(desired, p.cert);
  return {
    reissue: false,
    reason: "UpToDate",
    message: `${label(p.cert)} is valid until ${p.cert.notAfter.toISOString()}; renewal at ${at.toISOString()}`,
    renewalTime: at,
  };
}
