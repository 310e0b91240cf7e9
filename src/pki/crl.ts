/**
 * Certificate revocation lists: the blocklist, signed by the CA and mounted as PostgreSQL's ssl_crl_file.
 *
 * Facts the caller must respect (OpenSSL, as PostgreSQL configures it):
 * - PostgreSQL sets X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL once ssl_crl_file is set, so EVERY CA in
 *   a client's chain needs a current CRL in that file: during a CA rotation, ca.crl must hold one CRL per
 *   trusted CA (buildCrlBundle), and a client chaining to a CA we hold no CRL for is refused.
 * - A CRL past its nextUpdate makes verification fail for every client: re-issue before it (crlDecision).
 */
import { AsnConvert } from "@peculiar/asn1-schema";
import {
  AuthorityKeyIdentifier,
  CRLNumber,
  CRLReason as CRLReasonCode,
  CRLReasons,
  CertificateList,
  Extension,
  RevokedCertificate,
  TBSCertList,
  Time,
  Version,
} from "@peculiar/asn1-x509";
import { ContentCache } from "./content-cache";
import { PkiError } from "./errors";
import { decodePem, encodePem } from "./encodings";
import { fingerprintSha256, normalizeSerialNumber, parseCertificate, type CertificateFacts } from "./certificate";
import type { CertificateAuthority } from "./ca";
import { nameToString } from "./distinguished-name";
import { EXTENSION_OIDS } from "./oids";
import { authorityKeyIdOf, authorityKeyIdentifierFor, constantExtension, extension, issuerName } from "./certificate-builder";
import { checkDate, toSecond } from "./issuance-rules";
import { signStructure, signatureAlgorithmIdentifier } from "./signature";

export type RevocationReason = "unspecified" | "keyCompromise" | "affiliationChanged" | "superseded" | "cessationOfOperation";

const REVOCATION_REASONS: readonly RevocationReason[] = [
  "unspecified",
  "keyCompromise",
  "affiliationChanged",
  "superseded",
  "cessationOfOperation",
];

export interface RevokedEntry {
  readonly serialNumber: string;
  readonly reason?: RevocationReason;
  readonly revocationDate: Date;
}

export interface CRLRequest {
  readonly revoked: readonly RevokedEntry[];
  /** Monotonic CRL number (RFC 5280 §5.2.3): increase it only when the content changes. */
  readonly crlNumber: number;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
}

/** The cRLReason entry extension, converted once per reason. */
function reasonExtension(reason: RevocationReason): Extension {
  return constantExtension(`cRLReason:${reason}`, () => extension(EXTENSION_OIDS.cRLReasons, false, new CRLReasonCode(CRLReasons[reason])));
}

/** Issues a CRL signed by the CA, with the CRL number and authority key identifier extensions. PEM. */
export async function issueCRL(ca: CertificateAuthority, request: CRLRequest): Promise<string> {
  checkDate(request.thisUpdate, "thisUpdate");
  checkDate(request.nextUpdate, "nextUpdate");
  if (request.nextUpdate.getTime() <= request.thisUpdate.getTime()) {
    throw new PkiError("InvalidArgument", "the CRL nextUpdate must be after thisUpdate");
  }
  if (!Number.isSafeInteger(request.crlNumber) || request.crlNumber < 0) {
    throw new PkiError("InvalidCRLNumber", `the CRL number must be a non-negative integer, got ${String(request.crlNumber)}`);
  }
  if (ca.facts.keyUsage && !ca.facts.keyUsage.includes("cRLSign")) {
    throw new PkiError("MissingCRLSign", `the CA "${ca.facts.subject}" may not sign CRLs (its keyUsage lacks cRLSign)`);
  }

  // One entry per serial (the earliest revocation wins), sorted, so equal input gives equal content.
  const entries = new Map<string, RevokedEntry>();
  for (const entry of request.revoked) {
    checkDate(entry.revocationDate, `the revocation date of ${entry.serialNumber}`);
    if (entry.reason !== undefined && !REVOCATION_REASONS.includes(entry.reason)) {
      throw new PkiError("InvalidArgument", `unknown revocation reason "${String(entry.reason)}": use ${REVOCATION_REASONS.join(", ")}`);
    }
    const serial = normalizeSerialNumber(entry.serialNumber);
    const known = entries.get(serial);
    if (!known || entry.revocationDate.getTime() < known.revocationDate.getTime()) entries.set(serial, { ...entry, serialNumber: serial });
  }
  const sorted = [...entries.values()].sort((a, b) => compareSerials(a.serialNumber, b.serialNumber));

  const tbs = new TBSCertList({
    version: Version.v2, // required for extensions
    signature: signatureAlgorithmIdentifier(ca.signing),
    issuer: issuerName(ca.facts),
    thisUpdate: new Time(request.thisUpdate),
    nextUpdate: new Time(request.nextUpdate),
    // Absent, not empty, when nothing is revoked; and entries carry extensions only when they have a reason:
    // "unspecified" is left out, as RFC 5280 §5.3.1 asks, and an empty extension list is not DER (SIZE 1..MAX).
    ...(sorted.length > 0
      ? {
          revokedCertificates: sorted.map(
            (e) =>
              new RevokedCertificate({
                userCertificate: integerBytes(e.serialNumber),
                revocationDate: new Time(e.revocationDate),
                ...(e.reason && e.reason !== "unspecified"
                  ? { crlEntryExtensions: [reasonExtension(e.reason)] }
                  : {}),
              }),
          ),
        }
      : {}),
    crlExtensions: [
      authorityKeyIdentifierFor(ca.facts),
      extension(EXTENSION_OIDS.cRLNumber, false, new CRLNumber(request.crlNumber)),
    ],
  });
  const signed = await signStructure(tbs, ca.keys.privateKey, ca.signing);
  const list = new CertificateList({
    tbsCertList: signed.tbs,
    signatureAlgorithm: signed.signatureAlgorithm,
    signature: signed.signatureValue,
  });
  const der = Buffer.from(AsnConvert.serialize(list));
  // What was just written is never parsed back: its facts are the request's (a unit test checks they equal the parse).
  const facts: ParsedCRL = {
    pem: encodePem(der, "X509 CRL"),
    fingerprintSha256: fingerprintSha256(der),
    issuer: ca.facts.subject,
    authorityKeyId: authorityKeyIdOf(ca.facts),
    crlNumber: request.crlNumber,
    thisUpdate: toSecond(request.thisUpdate.getTime()),
    nextUpdate: toSecond(request.nextUpdate.getTime()),
    revoked: sorted.map((e) => ({
      serialNumber: e.serialNumber,
      revocationDate: toSecond(e.revocationDate.getTime()),
      reason: e.reason === "unspecified" ? undefined : e.reason,
    })),
  };
  return parsedCRLs.get([der], () => facts).pem;
}

/** A positive INTEGER's content octets from canonical hex: a 00 sign byte when the first bit is set. */
function integerBytes(serialHex: string): ArrayBuffer {
  const bytes = Buffer.from(serialHex, "hex");
  return new Uint8Array((bytes[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes).buffer;
}

function compareSerials(a: string, b: string): number {
  const x = BigInt(`0x${a}`);
  const y = BigInt(`0x${b}`);
  return x < y ? -1 : x > y ? 1 : 0;
}

export interface ParsedCRL {
  readonly pem: string;
  readonly fingerprintSha256: string;
  readonly issuer: string;
  readonly authorityKeyId: string | undefined;
  /** undefined when absent or beyond Number.MAX_SAFE_INTEGER (never the case for CRLs we issue). */
  readonly crlNumber: number | undefined;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | undefined;
  readonly revoked: ReadonlyArray<{
    readonly serialNumber: string;
    readonly revocationDate: Date;
    readonly reason: RevocationReason | string | undefined;
  }>;
}

/** Parses the first CRL of a PEM text (or DER). Throws PkiError(InvalidCRL). */
export function parseCRL(input: string | Uint8Array): ParsedCRL {
  const first = parseCRLs(input)[0];
  if (!first) throw new PkiError("InvalidCRL", 'the data holds no PEM block "X509 CRL"');
  return first;
}

/** Parses every CRL in a PEM text (a CRL bundle as mounted for ssl_crl_file). */
export function parseCRLs(input: string | Uint8Array): ParsedCRL[] {
  return crlDers(input).map((der) => parseCRLDer(der));
}

function crlDers(input: string | Uint8Array): Buffer[] {
  const text = typeof input === "string" ? input : Buffer.from(input).toString("latin1");
  if (!text.includes("-----BEGIN")) return [Buffer.from(input)];
  try {
    return decodePem(text)
      .filter((b) => b.label === "X509 CRL")
      .map((b) => b.der);
  } catch (cause) {
    throw new PkiError("InvalidCRL", "the CRL PEM is damaged (its base64 body does not decode)", { cause });
  }
}

// A CRL bundle is read on every reconcile of its database: one parse per content.
const parsedCRLs = new ContentCache<ParsedCRL>(4096);

function parseCRLDer(crlDer: Buffer): ParsedCRL {
  try {
    return parsedCRLs.get([crlDer], () => crlFacts(Buffer.from(new Uint8Array(crlDer).buffer)));
  } catch (cause) {
    throw new PkiError("InvalidCRL", "the CRL is not a valid X.509 CRL", { cause });
  }
}

/** The facts of a CRL, uncached. */
export function crlFacts(der: Buffer): ParsedCRL {
  const tbs = AsnConvert.parse(der, CertificateList).tbsCertList;
  const extensionValue = <T>(list: readonly Extension[] | undefined, id: string, type: new () => T): T | undefined => {
    const found = list?.find((e) => e.extnID === id);
    return found ? AsnConvert.parse(found.extnValue.buffer, type) : undefined;
  };
  const crlNumber = extensionValue(tbs.crlExtensions, EXTENSION_OIDS.cRLNumber, CRLNumber)?.value;
  const keyId = extensionValue(tbs.crlExtensions, EXTENSION_OIDS.authorityKeyIdentifier, AuthorityKeyIdentifier)?.keyIdentifier;
  return {
    pem: encodePem(der, "X509 CRL"),
    fingerprintSha256: fingerprintSha256(der),
    issuer: nameToString(tbs.issuer),
    authorityKeyId: keyId ? Buffer.from(keyId.buffer).toString("hex") : undefined,
    crlNumber: crlNumber !== undefined && Number.isSafeInteger(crlNumber) && crlNumber >= 0 ? crlNumber : undefined,
    thisUpdate: tbs.thisUpdate.getTime(),
    nextUpdate: tbs.nextUpdate?.getTime(),
    revoked: (tbs.revokedCertificates ?? []).map((entry) => {
      const code = extensionValue(entry.crlEntryExtensions, EXTENSION_OIDS.cRLReasons, CRLReasonCode)?.reason;
      return {
        serialNumber: normalizeSerialNumber(Buffer.from(entry.userCertificate).toString("hex")),
        revocationDate: entry.revocationDate.getTime(),
        reason: code === undefined ? undefined : (CRLReasons[code] ?? String(code)),
      };
    }),
  };
}

/**
 * Concatenates CRLs (one per trusted CA) into the single file PostgreSQL reads, deduplicated and sorted by
 * fingerprint so equal input yields equal bytes.
 */
export function buildCrlBundle(crlPems: readonly string[]): string {
  const byFingerprint = new Map<string, string>();
  for (const pem of crlPems) for (const crl of parseCRLs(pem)) byFingerprint.set(crl.fingerprintSha256, crl.pem);
  return [...byFingerprint.keys()].sort().map((fp) => byFingerprint.get(fp) as string).join("");
}

export type CRLReason = "MissingCRL" | "UnparsableCRL" | "RevocationsChanged" | "CRLRefreshDue" | "UpToDate";

export interface CRLDecision {
  readonly reissue: boolean;
  readonly reason: CRLReason;
  readonly message: string;
  /** The number to issue with when reissue is true; the current number otherwise. */
  readonly crlNumber: number;
  /** For UpToDate: when the CRL must be refreshed (the reconciler's requeue time). */
  readonly refreshTime?: Date;
}

export interface DesiredCRL {
  /** The CA the CRL must come from. */
  readonly issuer: { readonly certPem: string };
  /** Serials that must be listed (any hex spelling). */
  readonly revokedSerials: readonly string[];
  /** Refresh this long (ms) before nextUpdate; default: a third of the CRL's validity. */
  readonly refreshBefore?: number;
  /**
   * The highest CRL number issued before, as kept outside the file (the database's status): the number never goes
   * backwards, even when the file is lost or unreadable.
   */
  readonly lastNumber?: number;
}

/** The next CRL number: one more than the highest known, the file's or the one kept elsewhere (RFC 5280 §5.2.3). */
export function nextCRLNumber(inFile: number | undefined, kept: number | undefined): number {
  return Math.max(inFile ?? 0, kept !== undefined && Number.isSafeInteger(kept) && kept > 0 ? kept : 0) + 1;
}

/**
 * The date each serial of a CRL bundle was listed since (the earliest across the bundle's CRLs); nothing for a
 * bundle that cannot be read.
 */
export function revocationDatesIn(bundle: string | Uint8Array | undefined): Map<string, Date> {
  const out = new Map<string, Date>();
  if (bundle === undefined || bundle.length === 0) return out;
  let all: ParsedCRL[];
  try {
    all = parseCRLs(bundle);
  } catch {
    return out;
  }
  for (const crl of all) {
    for (const r of crl.revoked) {
      const known = out.get(r.serialNumber);
      if (!known || r.revocationDate.getTime() < known.getTime()) out.set(r.serialNumber, r.revocationDate);
    }
  }
  return out;
}

/**
 * Should the CRL of `desired.issuer` be (re)issued? Looks for that CA's CRL (by authority key id, else
 * issuer name) in the current file, which may be a bundle. The number only goes up when something changes.
 */
/** The newest CRL of a bundle that this CA issued (matched by key id, else by name), if any. */
function newestCRLOf(all: readonly ParsedCRL[], ca: CertificateFacts): ParsedCRL | undefined {
  return all
    .filter((c) => (c.authorityKeyId && ca.subjectKeyId ? c.authorityKeyId === ca.subjectKeyId : c.issuer === ca.subject))
    .sort((a, b) => (b.crlNumber ?? 0) - (a.crlNumber ?? 0))[0];
}

/** The PEM of the newest CRL in a CRL bundle that this CA issued, or undefined. */
export function crlIssuedBy(bundle: string | Uint8Array | undefined, issuer: { readonly certPem: string }): string | undefined {
  if (bundle === undefined || bundle.length === 0) return undefined;
  try {
    return newestCRLOf(parseCRLs(bundle), parseCertificate(issuer.certPem, "the CRL issuer CA certificate"))?.pem;
  } catch {
    return undefined;
  }
}

export function crlDecision(current: string | Uint8Array | undefined, desired: DesiredCRL, now: Date): CRLDecision {
  const ca = parseCertificate(desired.issuer.certPem, "the CRL issuer CA certificate");
  const first = nextCRLNumber(undefined, desired.lastNumber);
  if (current === undefined || current.length === 0) {
    return { reissue: true, reason: "MissingCRL", message: `no CRL yet for the CA "${ca.subject}": issuing CRL #${first}`, crlNumber: first };
  }
  let all: ParsedCRL[];
  try {
    all = parseCRLs(current);
  } catch {
    return { reissue: true, reason: "UnparsableCRL", message: `the current CRL file cannot be read: issuing CRL #${first}`, crlNumber: first };
  }
  const crl = newestCRLOf(all, ca);
  if (!crl) {
    return {
      reissue: true,
      reason: "MissingCRL",
      message: `the CRL file holds no CRL from the CA "${ca.subject}": issuing CRL #${first}`,
      crlNumber: first,
    };
  }
  const next = nextCRLNumber(crl.crlNumber, desired.lastNumber);
  const want = new Set(desired.revokedSerials.map(normalizeSerialNumber));
  const have = new Set(crl.revoked.map((r) => r.serialNumber));
  const added = [...want].filter((s) => !have.has(s));
  const removed = [...have].filter((s) => !want.has(s));
  if (added.length > 0 || removed.length > 0) {
    const parts = [
      ...(added.length ? [`revoking ${added.join(", ")}`] : []),
      ...(removed.length ? [`no longer listing ${removed.join(", ")}`] : []),
    ];
    return {
      reissue: true,
      reason: "RevocationsChanged",
      message: `the revocation list changed (${parts.join("; ")}): issuing CRL #${next}`,
      crlNumber: next,
    };
  }
  const nextUpdate = crl.nextUpdate ?? crl.thisUpdate;
  const validity = nextUpdate.getTime() - crl.thisUpdate.getTime();
  const before = desired.refreshBefore !== undefined && desired.refreshBefore < validity ? desired.refreshBefore : Math.floor(validity / 3);
  const refreshTime = new Date(nextUpdate.getTime() - before);
  if (now.getTime() >= refreshTime.getTime()) {
    return {
      reissue: true,
      reason: "CRLRefreshDue",
      message:
        `CRL #${crl.crlNumber ?? "?"} is valid until ${nextUpdate.toISOString()}: ` +
        `issuing CRL #${next} before PostgreSQL starts refusing every client`,
      crlNumber: next,
    };
  }
  return {
    reissue: false,
    reason: "UpToDate",
    message: `CRL #${crl.crlNumber ?? "?"} lists ${have.size} certificate(s) and is valid until ${nextUpdate.toISOString()}`,
    crlNumber: crl.crlNumber ?? 0,
    refreshTime,
  };
}
