/**
 * Reading certificates: the facts every other module (renewal policy, trust bundle, status) works from,
 * plus the canonical forms of serial numbers, fingerprints, DNS names and IP addresses, so that comparisons
 * never depend on how a user or a library happened to spell them.
 */
import { createHash, createPublicKey, X509Certificate as NodeX509Certificate } from "node:crypto";
import { isIPv4, isIPv6 } from "node:net";
import { ContentCache } from "./content-cache.js";
import { PkiError } from "./errors.js";
import { certificateDersFromPem, certificateToPem } from "./encodings.js";
import {
  CONTEXT,
  DerError,
  TAG,
  UNIVERSAL,
  children,
  content,
  decodeBoolean,
  decodeOid,
  decodeSmallInteger,
  decodeTime,
  encoding,
  expectTlv,
  readTlv,
  type Tlv,
} from "./der.js";
import { keyFactsOf, type KeyFacts } from "./keys.js";
import { commonNameOf, nameToString } from "./names.js";

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

/** KeyUsage bits in RFC 5280 order (bit 0 first): the one list both parsing and encoding use. */
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

const EKU_NAMES: Record<string, string> = {
  "1.3.6.1.5.5.7.3.1": "serverAuth",
  "1.3.6.1.5.5.7.3.2": "clientAuth",
  "1.3.6.1.5.5.7.3.3": "codeSigning",
  "1.3.6.1.5.5.7.3.4": "emailProtection",
  "1.3.6.1.5.5.7.3.8": "timeStamping",
  "1.3.6.1.5.5.7.3.9": "ocspSigning",
};

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

const OID = {
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  authorityKeyIdentifier: "2.5.29.35",
  extKeyUsage: "2.5.29.37",
} as const;

function factsFromDer(der: Buffer): CertificateFacts {
  const cert = expectTlv(readTlv(der, 0), UNIVERSAL, TAG.SEQUENCE, "Certificate");
  if (cert.end !== der.length) throw new DerError("trailing data after the certificate");
  const [tbs] = children(der, cert);
  const fields = children(der, expectTlv(tbs, UNIVERSAL, TAG.SEQUENCE, "TBSCertificate"));
  let i = fields[0]?.cls === CONTEXT && fields[0].tag === 0 ? 1 : 0; // optional [0] version
  const serial = expectTlv(fields[i++], UNIVERSAL, TAG.INTEGER, "serialNumber");
  i++; // signature algorithm
  const issuer = expectTlv(fields[i++], UNIVERSAL, TAG.SEQUENCE, "issuer");
  const validity = children(der, expectTlv(fields[i++], UNIVERSAL, TAG.SEQUENCE, "validity"));
  const subject = expectTlv(fields[i++], UNIVERSAL, TAG.SEQUENCE, "subject");
  const spki = expectTlv(fields[i++], UNIVERSAL, TAG.SEQUENCE, "subjectPublicKeyInfo");
  const [notBefore, notAfter] = validity;
  if (!notBefore || !notAfter) throw new DerError("validity needs notBefore and notAfter");

  const extensions = new Map<string, Tlv>();
  const extField = fields.slice(i).find((f) => f.cls === CONTEXT && f.tag === 3);
  if (extField) {
    const list = expectTlv(children(der, extField)[0], UNIVERSAL, TAG.SEQUENCE, "Extensions");
    for (const ext of children(der, list)) {
      const parts = children(der, ext);
      const value = parts[parts.length - 1];
      extensions.set(decodeOid(der, expectTlv(parts[0], UNIVERSAL, TAG.OID, "extnID")), expectTlv(value, UNIVERSAL, TAG.OCTET_STRING, "extnValue"));
    }
  }
  /** The single TLV inside an extension's OCTET STRING. */
  const extValue = (oid: string): Tlv | undefined => {
    const octets = extensions.get(oid);
    return octets ? readTlv(der, octets.start, octets.end) : undefined;
  };

  // Views into `der`, which is this certificate's own buffer: a copy (Buffer.from) would be cut from Node's shared
  // allocation pool, and one cached certificate would keep a whole pool slab alive (a heap snapshot at 300+300
  // objects: 537 such slabs of 64 KiB, 34 MiB).
  const spkiDer = encoding(der, spki);
  let key: KeyFacts;
  try {
    key = keyFactsOf(createPublicKey({ key: spkiDer, format: "der", type: "spki" }));
  } catch {
    key = { algorithm: "Other", size: 0, description: "unknown key type" };
  }

  let isCA = false;
  let pathLength: number | undefined;
  const basic = extValue(OID.basicConstraints);
  if (basic) {
    for (const item of children(der, basic)) {
      if (item.tag === TAG.BOOLEAN) isCA = decodeBoolean(der, item);
      else if (item.tag === TAG.INTEGER) pathLength = decodeSmallInteger(der, item);
    }
  }

  let keyUsage: KeyUsageName[] | undefined;
  const ku = extValue(OID.keyUsage);
  if (ku) {
    const bits = content(der, expectTlv(ku, UNIVERSAL, TAG.BIT_STRING, "keyUsage"));
    keyUsage = KEY_USAGE_NAMES.filter((_, bit) => (((bits[1 + (bit >> 3)] ?? 0) >> (7 - (bit & 7))) & 1) === 1);
  }

  const eku = extValue(OID.extKeyUsage);
  const extendedKeyUsage = eku ? children(der, eku).map((o) => {
    const oid = decodeOid(der, o);
    return EKU_NAMES[oid] ?? oid;
  }) : [];

  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  const san = extValue(OID.subjectAltName);
  for (const name of san ? children(der, san) : []) {
    if (name.cls !== CONTEXT) continue;
    if (name.tag === 2) dnsNames.push(content(der, name).toString("latin1").toLowerCase());
    else if (name.tag === 7) ipAddresses.push(formatIPAddress(content(der, name)));
  }

  const ski = extValue(OID.subjectKeyIdentifier);
  const akiSeq = extValue(OID.authorityKeyIdentifier);
  const akiKeyId = akiSeq ? children(der, akiSeq).find((c) => c.cls === CONTEXT && c.tag === 0) : undefined;

  const subjectDer = encoding(der, subject);
  const issuerDer = encoding(der, issuer);
  const serialNumber = normalizeSerialNumber(content(der, serial).toString("hex"));
  return {
    pem: certificateToPem(der),
    der,
    serialNumber,
    serialNumberDecimal: serialNumberToDecimal(serialNumber),
    notBefore: decodeTime(der, notBefore),
    notAfter: decodeTime(der, notAfter),
    subject: nameToString(subjectDer),
    subjectCommonName: commonNameOf(subjectDer),
    subjectDer,
    issuer: nameToString(issuerDer),
    issuerCommonName: commonNameOf(issuerDer),
    dnsNames,
    ipAddresses,
    subjectKeyId: ski ? content(der, expectTlv(ski, UNIVERSAL, TAG.OCTET_STRING, "subjectKeyIdentifier")).toString("hex") : undefined,
    authorityKeyId: akiKeyId ? content(der, akiKeyId).toString("hex") : undefined,
    fingerprintSha256: fingerprintSha256(der),
    key,
    spkiDer,
    isCA,
    pathLength,
    keyUsage,
    extendedKeyUsage,
    selfIssued: subjectDer.equals(issuerDer),
  };
}

function formatIPAddress(bytes: Buffer): string {
  if (bytes.length === 4) return [...bytes].join(".");
  if (bytes.length === 16) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
    return normalizeIPAddress(groups.join(":")) ?? groups.join(":");
  }
  return bytes.toString("hex"); // address + mask (name constraints): never in a SAN we issue
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
    throw new PkiError("InvalidSerialNumber", `"${serial}" is not a hexadecimal serial number (e.g. 3f2a…, or 3F:2A:… as openssl prints it)`);
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
