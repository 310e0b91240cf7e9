/**
 * Certificate revocation lists: the blocklist, signed by the CA and mounted as PostgreSQL's ssl_crl_file.
 *
 * Facts the caller must respect (OpenSSL, as PostgreSQL configures it):
 * - PostgreSQL sets X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL once ssl_crl_file is set, so EVERY CA in
 *   a client's chain needs a current CRL in that file: during a CA rotation, ca.crl must hold one CRL per
 *   trusted CA (buildCrlBundle), and a client chaining to a CA we hold no CRL for is refused.
 * - A CRL past its nextUpdate makes verification fail for every client: re-issue before it (crlDecision).
 */
import { createPublicKey, verify as verifySignature } from "node:crypto";
import { PkiError } from "./errors.js";
import { decodePem, encodePem } from "./encodings.js";
import { fingerprintSha256, normalizeSerialNumber, parseCertificate, type CertificateFacts } from "./certificate.js";
import type { CertificateAuthority } from "./ca.js";
import {
  CONTEXT,
  TAG,
  UNIVERSAL,
  children,
  content,
  decodeOid,
  decodeSmallInteger,
  decodeTime,
  der,
  encoding,
  expectTlv,
  readTlv,
  type Tlv,
} from "./der.js";
import { nameToString } from "./names.js";
import { checkDate } from "./signing.js";
import { OIDS, extension, extensions, keyIdentifier, signStructure, signatureAlgorithmIdentifier } from "./x509-build.js";

export type RevocationReason = "unspecified" | "keyCompromise" | "affiliationChanged" | "superseded" | "cessationOfOperation";

/** RFC 5280 §5.3.1 CRLReason codes. */
const REASON_CODES: Record<RevocationReason, number> = {
  unspecified: 0,
  keyCompromise: 1,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
};

const REASON_NAMES: Record<number, string> = {
  0: "unspecified",
  1: "keyCompromise",
  2: "cACompromise",
  3: "affiliationChanged",
  4: "superseded",
  5: "cessationOfOperation",
  6: "certificateHold",
  8: "removeFromCRL",
  9: "privilegeWithdrawn",
  10: "aACompromise",
};

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
    if (entry.reason !== undefined && !(entry.reason in REASON_CODES)) {
      throw new PkiError("InvalidArgument", `unknown revocation reason "${String(entry.reason)}": use ${Object.keys(REASON_CODES).join(", ")}`);
    }
    const serial = normalizeSerialNumber(entry.serialNumber);
    const known = entries.get(serial);
    if (!known || entry.revocationDate.getTime() < known.revocationDate.getTime()) entries.set(serial, { ...entry, serialNumber: serial });
  }
  const sorted = [...entries.values()].sort((a, b) => compareSerials(a.serialNumber, b.serialNumber));

  const entryList = sorted.map((e) =>
    der.sequence(
      der.unsignedInteger(Buffer.from(e.serialNumber, "hex")),
      der.time(e.revocationDate),
      // "unspecified" is left out, as RFC 5280 §5.3.1 asks; and no empty extension list (SIZE 1..MAX).
      ...(e.reason && e.reason !== "unspecified" ? [der.sequence(extension(OIDS.cRLReason, false, der.enumerated(REASON_CODES[e.reason])))] : []),
    ),
  );
  const tbs = der.sequence(
    der.integer(1), // v2: required for extensions
    signatureAlgorithmIdentifier(ca.signing),
    ca.facts.subjectDer,
    der.time(request.thisUpdate),
    der.time(request.nextUpdate),
    ...(entryList.length > 0 ? [der.sequence(...entryList)] : []),
    der.explicit(
      0,
      der.sequence(
        extensions.authorityKeyIdentifier(ca.facts.subjectKeyId ?? keyIdentifier(ca.facts.spkiDer)),
        extension(OIDS.cRLNumber, false, crlNumberInteger(BigInt(request.crlNumber))),
      ),
    ),
  );
  return encodePem(await signStructure(tbs, ca.keys.privateKey, ca.signing), "X509 CRL");
}

function crlNumberInteger(value: bigint): Buffer {
  const encoded = der.integer(value);
  if (encoded.length - 2 > 20) throw new PkiError("InvalidCRLNumber", "the CRL number is longer than 20 octets (RFC 5280)");
  return encoded;
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
  readonly revoked: ReadonlyArray<{ readonly serialNumber: string; readonly revocationDate: Date; readonly reason: RevocationReason | string | undefined }>;
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

function parseCRLDer(crlDer: Buffer): ParsedCRL {
  try {
    return parseCRLStructure(crlDer);
  } catch (cause) {
    throw new PkiError("InvalidCRL", "the CRL is not a valid X.509 CRL", { cause });
  }
}

interface CRLParts {
  readonly tbs: Tlv;
  readonly signatureAlgorithm: Tlv;
  readonly signature: Tlv;
}

function crlParts(buf: Buffer): CRLParts {
  const list = expectTlv(readTlv(buf, 0), UNIVERSAL, TAG.SEQUENCE, "CertificateList");
  if (list.end !== buf.length) throw new Error("trailing data after the CRL");
  const [tbs, signatureAlgorithm, signature] = children(buf, list);
  return {
    tbs: expectTlv(tbs, UNIVERSAL, TAG.SEQUENCE, "TBSCertList"),
    signatureAlgorithm: expectTlv(signatureAlgorithm, UNIVERSAL, TAG.SEQUENCE, "signatureAlgorithm"),
    signature: expectTlv(signature, UNIVERSAL, TAG.BIT_STRING, "signatureValue"),
  };
}

function isTime(t: Tlv | undefined): t is Tlv {
  return t !== undefined && t.cls === UNIVERSAL && (t.tag === TAG.UTC_TIME || t.tag === TAG.GENERALIZED_TIME);
}

/** Extensions as OID → the TLV inside the extnValue OCTET STRING. */
function extensionMap(buf: Buffer, list: Tlv): Map<string, Tlv> {
  const map = new Map<string, Tlv>();
  for (const ext of children(buf, list)) {
    const parts = children(buf, ext);
    const octets = expectTlv(parts[parts.length - 1], UNIVERSAL, TAG.OCTET_STRING, "extnValue");
    map.set(decodeOid(buf, expectTlv(parts[0], UNIVERSAL, TAG.OID, "extnID")), readTlv(buf, octets.start, octets.end));
  }
  return map;
}

function parseCRLStructure(buf: Buffer): ParsedCRL {
  const fields = children(buf, crlParts(buf).tbs);
  let i = fields[0]?.cls === UNIVERSAL && fields[0].tag === TAG.INTEGER ? 1 : 0; // optional version
  i++; // signature algorithm
  const issuer = expectTlv(fields[i++], UNIVERSAL, TAG.SEQUENCE, "issuer");
  const thisUpdate = fields[i++];
  if (!isTime(thisUpdate)) throw new Error("thisUpdate expected");
  const nextUpdate = isTime(fields[i]) ? fields[i++] : undefined;
  const maybeList = fields[i];
  const revokedList = maybeList?.cls === UNIVERSAL && maybeList.tag === TAG.SEQUENCE ? fields[i++] : undefined;
  const maybeExt = fields[i];
  const crlExtensions =
    maybeExt?.cls === CONTEXT && maybeExt.tag === 0
      ? extensionMap(buf, expectTlv(children(buf, maybeExt)[0], UNIVERSAL, TAG.SEQUENCE, "crlExtensions"))
      : new Map<string, Tlv>();

  const revoked = (revokedList ? children(buf, revokedList) : []).map((entry) => {
    const [serial, date, entryExtensions] = children(buf, entry);
    if (!isTime(date)) throw new Error("revocationDate expected");
    const reasonTlv = entryExtensions ? extensionMap(buf, entryExtensions).get(OIDS.cRLReason) : undefined;
    const code = reasonTlv ? decodeSmallInteger(buf, reasonTlv) : undefined;
    return {
      serialNumber: normalizeSerialNumber(content(buf, expectTlv(serial, UNIVERSAL, TAG.INTEGER, "userCertificate")).toString("hex")),
      revocationDate: decodeTime(buf, date),
      reason: code === undefined ? undefined : (REASON_NAMES[code] ?? String(code)),
    };
  });

  const numberTlv = crlExtensions.get(OIDS.cRLNumber);
  const big = numberTlv ? BigInt(`0x${content(buf, numberTlv).toString("hex") || "0"}`) : undefined;
  const akiSeq = crlExtensions.get(OIDS.authorityKeyIdentifier);
  const keyId = akiSeq ? children(buf, akiSeq).find((c) => c.cls === CONTEXT && c.tag === 0) : undefined;
  return {
    pem: encodePem(buf, "X509 CRL"),
    fingerprintSha256: fingerprintSha256(buf),
    issuer: nameToString(encoding(buf, issuer)),
    authorityKeyId: keyId ? content(buf, keyId).toString("hex") : undefined,
    crlNumber: big !== undefined && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : undefined,
    thisUpdate: decodeTime(buf, thisUpdate),
    nextUpdate: nextUpdate ? decodeTime(buf, nextUpdate) : undefined,
    revoked,
  };
}

const HASH_OF_SIGNATURE: Record<string, string> = {
  "1.2.840.10045.4.3.2": "sha256",
  "1.2.840.10045.4.3.3": "sha384",
  "1.2.840.10045.4.3.4": "sha512",
  "1.2.840.113549.1.1.11": "sha256",
  "1.2.840.113549.1.1.12": "sha384",
  "1.2.840.113549.1.1.13": "sha512",
};

/** Whether the (first) CRL is signed by the CA's key. Synchronous: one signature verification. */
export function verifyCRLSignature(crlPem: string | Uint8Array, ca: { readonly certPem: string }): boolean {
  const buf = crlDers(crlPem)[0];
  if (!buf) return false;
  try {
    const parts = crlParts(buf);
    const algorithm = children(buf, parts.signatureAlgorithm)[0];
    const hash = algorithm ? HASH_OF_SIGNATURE[decodeOid(buf, algorithm)] : undefined;
    if (!hash) return false;
    const key = createPublicKey({ key: parseCertificate(ca.certPem).spkiDer, format: "der", type: "spki" });
    // BIT STRING content starts with the unused-bits octet; ECDSA signatures stay DER, as node expects.
    return verifySignature(hash, encoding(buf, parts.tbs), key, content(buf, parts.signature).subarray(1));
  } catch {
    return false;
  }
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
  if (current === undefined || current.length === 0) {
    return { reissue: true, reason: "MissingCRL", message: `no CRL yet for the CA "${ca.subject}": issuing one`, crlNumber: 1 };
  }
  let all: ParsedCRL[];
  try {
    all = parseCRLs(current);
  } catch {
    return { reissue: true, reason: "UnparsableCRL", message: "the current CRL file cannot be read: issuing a new CRL", crlNumber: 1 };
  }
  const crl = newestCRLOf(all, ca);
  const highest = crl?.crlNumber ?? 0;
  if (!crl) {
    return { reissue: true, reason: "MissingCRL", message: `the CRL file holds no CRL from the CA "${ca.subject}": issuing one`, crlNumber: 1 };
  }
  const next = (crl.crlNumber ?? highest) + 1;
  const want = new Set(desired.revokedSerials.map(normalizeSerialNumber));
  const have = new Set(crl.revoked.map((r) => r.serialNumber));
  const added = [...want].filter((s) => !have.has(s));
  const removed = [...have].filter((s) => !want.has(s));
  if (added.length > 0 || removed.length > 0) {
    const parts = [
      ...(added.length ? [`revoking ${added.join(", ")}`] : []),
      ...(removed.length ? [`no longer listing ${removed.join(", ")}`] : []),
    ];
    return { reissue: true, reason: "RevocationsChanged", message: `the revocation list changed (${parts.join("; ")}): issuing CRL #${next}`, crlNumber: next };
  }
  const nextUpdate = crl.nextUpdate ?? crl.thisUpdate;
  const validity = nextUpdate.getTime() - crl.thisUpdate.getTime();
  const before = desired.refreshBefore !== undefined && desired.refreshBefore < validity ? desired.refreshBefore : Math.floor(validity / 3);
  const refreshTime = new Date(nextUpdate.getTime() - before);
  if (now.getTime() >= refreshTime.getTime()) {
    return {
      reissue: true,
      reason: "CRLRefreshDue",
      message: `CRL #${crl.crlNumber ?? "?"} is valid until ${nextUpdate.toISOString()}: issuing CRL #${next} before PostgreSQL starts refusing every client`,
      crlNumber: next,
    };
  }
  return {
    reissue: false,
    reason: "UpToDate",
    message: `CRL #${crl.crlNumber ?? "?"} lists ${have.size} certificate(s) and is valid until ${nextUpdate.toISOString()}`,
    crlNumber: crl.crlNumber ?? highest,
    refreshTime,
  };
}
