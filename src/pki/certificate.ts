/**
 * Reading certificates: the facts every other module (renewal policy, trust bundle, status) works from,
 * plus the canonical forms of serial numbers, fingerprints, DNS names and IP addresses, so that comparisons
 * never depend on how a user or a library happened to spell them.
 */
import { createHash, X509Certificate as NodeX509Certificate } from "node:crypto";
import { isIPv4, isIPv6 } from "node:net";
import { AsnConvert } from "@peculiar/asn1-schema";
import {
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  KeyUsage,
  KeyUsageFlags,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
} from "@peculiar/asn1-x509";
import { X509Certificate } from "@peculiar/x509";
import { ContentCache } from "./content-cache";
import { PkiError } from "./errors";
import { certificateDersFromPem, certificateToPem } from "./encodings";
import { commonNameOf, nameToString } from "./distinguished-name";
import { keyFactsOf, type KeyFacts } from "./keys";
import { EXTENDED_KEY_USAGE_NAMES, EXTENSION_OIDS } from "./oids";

export type KeyUsageName =
  | "digitalSignature"
  | "nonRepudiation"
  | "keyEncipherment"
  | "dataEncipherment"
  | "keyAgreement"
  | "keyCertSign"
  | "cRLSign"
  | "encipherOnly"
  | "decipherOnly";

/** KeyUsage bits in RFC 5280 order (bit 0 first). */
export const KEY_USAGE_NAMES: readonly KeyUsageName[] = [
  "digitalSignature",
  "nonRepudiation",
  "keyEncipherment",
  "dataEncipherment",
  "keyAgreement",
  "keyCertSign",
  "cRLSign",
  "encipherOnly",
  "decipherOnly",
];

/** Everything we need to know about one certificate. All identifiers are lower-case hex without separators. */
export interface CertificateFacts {
  /** This certificate alone, re-encoded as PEM (64-column lines, LF). */
  readonly pem: string;
  readonly der: Buffer;
  /** Canonical hex (see normalizeSerialNumber). */
  readonly serialNumber: string;
  /** The same serial in decimal, as PostgreSQL shows it in pg_stat_ssl.client_serial. */
  readonly serialNumberDecimal: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** RFC 4514-style subject, e.g. "CN=app". */
  readonly subject: string;
  readonly subjectCommonName: string | undefined;
  /** The subject Name, DER, byte for byte (issuers of our certificates copy it). */
  readonly subjectDer: Buffer;
  readonly issuer: string;
  readonly issuerCommonName: string | undefined;
  /** Subject alternative names, canonical (DNS lower-case, IPs as normalizeIPAddress gives them). */
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly subjectKeyId: string | undefined;
  readonly authorityKeyId: string | undefined;
  /** SHA-256 over the DER, lower-case hex (openssl x509 -fingerprint -sha256, without colons). */
  readonly fingerprintSha256: string;
  readonly key: KeyFacts;
  /** SubjectPublicKeyInfo DER, to compare keys. */
  readonly spkiDer: Buffer;
  readonly isCA: boolean;
  readonly pathLength: number | undefined;
  /** undefined when the certificate has no keyUsage extension (which means "unrestricted"). */
  readonly keyUsage: readonly KeyUsageName[] | undefined;
  /** Names ("serverAuth", "clientAuth"…) or dotted OIDs for others. */
  readonly extendedKeyUsage: readonly string[];
  /** Subject and issuer names are identical (a root or a self-issued certificate). */
  readonly selfIssued: boolean;
}

// Facts are immutable, so one parse serves every reconcile that meets the same certificate.
const parsedCertificates = new ContentCache<CertificateFacts>(8192);

/** Parses the first certificate of a PEM text (or a DER buffer). Throws PkiError(InvalidCertificate). */
export function parseCertificate(input: string | Uint8Array, what = "the certificate"): CertificateFacts {
  const der = firstCertificateDer(input, what);
  try {
    // A copy of its own: `der` is often a view into a much larger buffer, which the cache would otherwise keep alive.
    return parsedCertificates.get([der], () => factsFromDer(Buffer.from(new Uint8Array(der).buffer)));
  } catch (cause) {
    throw new PkiError("InvalidCertificate", `${what} is not a valid X.509 certificate`, { cause });
  }
}

/** @peculiar/x509's certificate, with the ASN.1 structure it parsed (the extensions are read from it directly). */
class ParsedCertificate extends X509Certificate {
  get structure(): Certificate {
    return this.asn;
  }
}

/**
 * Remembers the facts of a certificate just built (certificate-builder.ts), and who signed it: reading it back from a
 * Secret costs no parse, and asking whether its CA issued it no signature check.
 */
export function builtCertificateFacts(der: Buffer, facts: CertificateFacts, signer: CertificateFacts | undefined): CertificateFacts {
  if (signer) issuerChecks.set([der, signer.der], true);
  return parsedCertificates.get([der], () => facts);
}

/** The facts of a certificate, uncached: node:crypto gives what it can (serial, validity, key), @peculiar/x509 the rest. */
export function factsFromDer(der: Buffer): CertificateFacts {
  const tbs = new ParsedCertificate(der).structure.tbsCertificate;
  const node = new NodeX509Certificate(der);
  const extensions = new Map((tbs.extensions ?? []).map((e) => [e.extnID, e.extnValue.buffer] as const));
  const extension = <T>(id: string, type: new () => T): T | undefined => {
    const value = extensions.get(id);
    return value === undefined ? undefined : AsnConvert.parse(value, type);
  };

  let key: KeyFacts;
  try {
    key = keyFactsOf(node.publicKey);
  } catch {
    key = { algorithm: "Other", size: 0, description: "unknown key type" };
  }
  const basic = extension(EXTENSION_OIDS.basicConstraints, BasicConstraints);
  const ku = extension(EXTENSION_OIDS.keyUsage, KeyUsage);
  const kuFlags = ku?.toNumber();
  const eku = extension(EXTENSION_OIDS.extKeyUsage, ExtendedKeyUsage);
  const san = extension(EXTENSION_OIDS.subjectAltName, SubjectAlternativeName);
  const ski = extension(EXTENSION_OIDS.subjectKeyIdentifier, SubjectKeyIdentifier);
  const aki = extension(EXTENSION_OIDS.authorityKeyIdentifier, AuthorityKeyIdentifier);
  const subjectDer = Buffer.from(AsnConvert.serialize(tbs.subject));
  const serialNumber = normalizeSerialNumber(node.serialNumber);
  return {
    pem: certificateToPem(der),
    der,
    serialNumber,
    serialNumberDecimal: serialNumberToDecimal(serialNumber),
    notBefore: node.validFromDate,
    notAfter: node.validToDate,
    subject: nameToString(tbs.subject),
    subjectCommonName: commonNameOf(tbs.subject),
    subjectDer,
    issuer: nameToString(tbs.issuer),
    issuerCommonName: commonNameOf(tbs.issuer),
    dnsNames: (san ?? []).flatMap((n) => (n.dNSName === undefined ? [] : [n.dNSName.toLowerCase()])),
    ipAddresses: (san ?? []).flatMap((n) => (n.iPAddress === undefined ? [] : [normalizeIPAddress(n.iPAddress) ?? n.iPAddress])),
    subjectKeyId: ski ? Buffer.from(ski.buffer).toString("hex") : undefined,
    authorityKeyId: aki?.keyIdentifier ? Buffer.from(aki.keyIdentifier.buffer).toString("hex") : undefined,
    fingerprintSha256: fingerprintSha256(der),
    key,
    spkiDer: Buffer.from(AsnConvert.serialize(tbs.subjectPublicKeyInfo)),
    isCA: basic?.cA ?? false,
    pathLength: basic?.pathLenConstraint,
    keyUsage: kuFlags === undefined ? undefined : KEY_USAGE_NAMES.filter((name) => (kuFlags & KeyUsageFlags[name]) !== 0),
    extendedKeyUsage: (eku ?? []).map((oid) => EXTENDED_KEY_USAGE_NAMES[oid] ?? oid),
    selfIssued: subjectDer.equals(Buffer.from(AsnConvert.serialize(tbs.issuer))),
  };
}

/** Parses every certificate of a PEM text (chain or bundle). */
export function parseCertificates(input: string | Uint8Array, what = "the certificate bundle"): CertificateFacts[] {
  return certificateDersFromPem(input).map((der, i) => parseCertificate(der, `${what} (certificate #${i + 1})`));
}

function firstCertificateDer(input: string | Uint8Array, what: string): Buffer {
  if (typeof input !== "string" && !Buffer.from(input.subarray(0, 64)).toString("latin1").includes("-----BEGIN")) {
    return Buffer.from(input);
  }
  let ders: Buffer[];
  try {
    ders = certificateDersFromPem(input);
  } catch (cause) {
    throw new PkiError("InvalidCertificate", `${what} is damaged PEM (its base64 body does not decode)`, { cause });
  }
  const first = ders[0];
  if (!first) throw new PkiError("InvalidCertificate", `${what} holds no PEM block "CERTIFICATE"`);
  return first;
}

/**
 * Whether `leaf` was signed by `issuer`: names and key identifiers match (OpenSSL's X509_check_issued) and
 * the signature verifies with the issuer's key. Synchronous: a signature verification costs well under a ms.
 */
export function isIssuedBy(leaf: CertificateFacts, issuer: CertificateFacts): boolean {
  // A signature check per pair, not per reconcile: renewal decisions ask the same question on every pass.
  return issuerChecks.get([leaf.der, issuer.der], () => {
    try {
      const l = new NodeX509Certificate(leaf.der);
      const i = new NodeX509Certificate(issuer.der);
      return l.checkIssued(i) && l.verify(i.publicKey);
    } catch {
      return false;
    }
  });
}

const issuerChecks = new ContentCache<boolean>(16384);

// ------------------------------------------------------------------------------- canonical forms

/** SHA-256 fingerprint of DER bytes, lower-case hex. */
export function fingerprintSha256(der: Uint8Array): string {
  return createHash("sha256").update(der).digest("hex");
}

/**
 * Canonical serial number: lower-case hex, whole bytes, no leading 00 byte (the DER sign byte).
 * Accepts "0A:1B:…", "0x0a1b…", spaces, any case. Throws PkiError(InvalidSerialNumber).
 */
export function normalizeSerialNumber(serial: string): string {
  let hex = serial.trim().replace(/^0x/i, "").replace(/[:\s-]/g, "").toLowerCase();
  if (hex === "" || !/^[0-9a-f]+$/.test(hex)) {
    throw new PkiError(
      "InvalidSerialNumber",
      `"${serial}" is not a hexadecimal serial number (e.g. 3f2a…, or 3F:2A:… as openssl prints it)`,
    );
  }
  if (hex.length % 2 === 1) hex = `0${hex}`;
  while (hex.length > 2 && hex.startsWith("00")) hex = hex.slice(2);
  return hex;
}

export function serialNumberToDecimal(serial: string): string {
  return BigInt(`0x${normalizeSerialNumber(serial)}`).toString(10);
}

/** From the decimal form PostgreSQL shows (pg_stat_ssl.client_serial) to the canonical hex. */
export function serialNumberFromDecimal(decimal: string): string {
  if (!/^\d+$/.test(decimal.trim())) {
    throw new PkiError("InvalidSerialNumber", `"${decimal}" is not a decimal serial number`);
  }
  return normalizeSerialNumber(BigInt(decimal.trim()).toString(16));
}

/**
 * Canonical SHA-256 fingerprint: 64 lower-case hex digits. Accepts openssl's "sha256 Fingerprint=AB:CD:…"
 * and "SHA256:…" prefixes. Throws PkiError(InvalidArgument).
 */
export function normalizeFingerprint(fingerprint: string): string {
  const hex = fingerprint
    .trim()
    .replace(/^(sha-?256)(\s*fingerprint)?\s*[=:]\s*/i, "")
    .replace(/[:\s]/g, "")
    .toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new PkiError("InvalidArgument", `"${fingerprint}" is not a SHA-256 fingerprint (64 hex digits, colons allowed)`);
  }
  return hex;
}

/** Canonical IP address (IPv4 dotted quad, IPv6 compressed lower-case), or undefined if not an address. */
export function normalizeIPAddress(ip: string): string | undefined {
  const trimmed = ip.trim();
  if (isIPv4(trimmed)) return trimmed;
  if (isIPv6(trimmed) && !trimmed.includes("%")) {
    // The WHATWG URL parser serialises IPv6 in RFC 5952 form.
    return new URL(`http://[${trimmed}]/`).hostname.slice(1, -1);
  }
  return undefined;
}

const DNS_LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;

/**
 * Canonical DNS name for a SAN: lower-case, no trailing dot; labels of letters, digits, '-' (and '_', which
 * OpenSSL accepts); a leading "*." wildcard is allowed. Returns undefined when invalid.
 */
export function normalizeDNSName(name: string): string | undefined {
  const lower = name.trim().toLowerCase().replace(/\.$/, "");
  if (lower.length === 0 || lower.length > 253) return undefined;
  const labels = lower.split(".");
  const rest = labels[0] === "*" && labels.length > 1 ? labels.slice(1) : labels;
  return rest.every((l) => DNS_LABEL.test(l)) ? lower : undefined;
}
