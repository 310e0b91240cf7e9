/**
 * Building and signing certificates and CRLs directly in DER. Our certificates follow one fixed template, so
 * encoding them takes tens of microseconds, where a general ASN.1 object model took milliseconds of
 * event-loop time per certificate. Every structure here is cross-checked with openssl in the unit tests.
 */
import { createHash } from "node:crypto";
import { children, der, readTlv, content } from "./der.js";
import { KEY_USAGE_NAMES, type KeyUsageName } from "./certificate.js";
import { subtle, type CryptoKey, type SigningAlgorithm } from "./keys.js";

export const OIDS = {
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  subjectAltName: "2.5.29.17",
  subjectKeyIdentifier: "2.5.29.14",
  authorityKeyIdentifier: "2.5.29.35",
  cRLNumber: "2.5.29.20",
  cRLReason: "2.5.29.21",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
} as const;

const SIGNATURE_OIDS: Record<string, string> = {
  "ECDSA/SHA-256": "1.2.840.10045.4.3.2",
  "ECDSA/SHA-384": "1.2.840.10045.4.3.3",
  "ECDSA/SHA-512": "1.2.840.10045.4.3.4",
  "RSASSA-PKCS1-v1_5/SHA-256": "1.2.840.113549.1.1.11",
  "RSASSA-PKCS1-v1_5/SHA-384": "1.2.840.113549.1.1.12",
  "RSASSA-PKCS1-v1_5/SHA-512": "1.2.840.113549.1.1.13",
};

/** AlgorithmIdentifier of a signature (RFC 5758: no parameters for ECDSA; RFC 4055: NULL for RSA). */
export function signatureAlgorithmIdentifier(alg: SigningAlgorithm): Buffer {
  const oid = SIGNATURE_OIDS[`${alg.name}/${alg.hash}`];
  if (!oid) throw new Error(`no OID for ${alg.name} with ${alg.hash}`);
  return alg.name === "ECDSA" ? der.sequence(der.oid(oid)) : der.sequence(der.oid(oid), der.null());
}

/** The key usages the operator sets: the first seven bits, so the encoded BIT STRING is one byte. */
export type KeyUsageBit = Exclude<KeyUsageName, "encipherOnly" | "decipherOnly">;

export function extension(oid: string, critical: boolean, value: Uint8Array): Buffer {
  return critical ? der.sequence(der.oid(oid), der.boolean(true), der.octetString(value)) : der.sequence(der.oid(oid), der.octetString(value));
}

export const extensions = {
  basicConstraints: (ca: boolean, pathLength?: number): Buffer =>
    extension(OIDS.basicConstraints, true, ca ? der.sequence(der.boolean(true), ...(pathLength === undefined ? [] : [der.integer(pathLength)])) : der.sequence()),
  /** DER BIT STRING: bit 0 is the most significant; trailing zero bits are dropped (X.690 §11.2.2). */
  keyUsage: (usages: readonly KeyUsageBit[]): Buffer => {
    const bits = KEY_USAGE_NAMES.slice(0, 7).map((u) => (usages as readonly string[]).includes(u));
    const last = bits.lastIndexOf(true);
    let byte = 0;
    bits.forEach((on, i) => {
      if (on) byte |= 0x80 >> i;
    });
    return extension(OIDS.keyUsage, true, der.bitString(Buffer.from([byte]), 7 - last));
  },
  extKeyUsage: (oids: readonly string[]): Buffer => extension(OIDS.extKeyUsage, false, der.sequence(...oids.map((o) => der.oid(o)))),
  subjectAltName: (dnsNames: readonly string[], ipAddresses: readonly string[]): Buffer =>
    extension(
      OIDS.subjectAltName,
      false,
      der.sequence(
        ...dnsNames.map((d) => der.implicitPrimitive(2, Buffer.from(d, "latin1"))),
        ...ipAddresses.map((ip) => der.implicitPrimitive(7, ipAddressBytes(ip))),
      ),
    ),
  subjectKeyIdentifier: (keyIdHex: string): Buffer => extension(OIDS.subjectKeyIdentifier, false, der.octetString(Buffer.from(keyIdHex, "hex"))),
  authorityKeyIdentifier: (keyIdHex: string): Buffer =>
    extension(OIDS.authorityKeyIdentifier, false, der.sequence(der.implicitPrimitive(0, Buffer.from(keyIdHex, "hex")))),
};

/** Bytes of a canonical IPv4 or IPv6 address (as normalizeIPAddress returns it). */
export function ipAddressBytes(ip: string): Buffer {
  if (ip.includes(".")) return Buffer.from(ip.split(".").map(Number));
  const [head = "", tail = ""] = ip.split("::");
  const left = head ? head.split(":") : [];
  const right = ip.includes("::") && tail ? tail.split(":") : [];
  const groups = ip.includes("::") ? [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right] : left;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING value, lower-case hex. */
export function keyIdentifier(spkiDer: Uint8Array): string {
  const spki = readTlv(spkiDer, 0);
  const bitString = children(spkiDer, spki)[1];
  if (!bitString) throw new Error("SubjectPublicKeyInfo without a key");
  return createHash("sha1").update(content(spkiDer, bitString).subarray(1)).digest("hex");
}

export interface TbsCertificate {
  readonly serialNumberHex: string;
  readonly signature: SigningAlgorithm;
  readonly issuerDer: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly subjectDer: Uint8Array;
  readonly spkiDer: Uint8Array;
  readonly extensions: readonly Uint8Array[];
}

export function encodeTbsCertificate(t: TbsCertificate): Buffer {
  return der.sequence(
    der.explicit(0, der.integer(2)), // v3
    der.unsignedInteger(Buffer.from(t.serialNumberHex, "hex")),
    signatureAlgorithmIdentifier(t.signature),
    t.issuerDer,
    der.sequence(der.time(t.notBefore), der.time(t.notAfter)),
    t.subjectDer,
    t.spkiDer,
    der.explicit(3, der.sequence(...t.extensions)),
  );
}

/**
 * Signs a to-be-signed structure and wraps it as Certificate / CertificateList:
 * SEQUENCE { tbs, signatureAlgorithm, BIT STRING signature }. WebCrypto returns ECDSA signatures as r||s;
 * X.509 wants SEQUENCE { INTEGER r, INTEGER s }.
 */
export async function signStructure(tbsDer: Uint8Array, key: CryptoKey, alg: SigningAlgorithm): Promise<Buffer> {
  const raw = Buffer.from(await subtle.sign(alg, key, tbsDer));
  const signature = alg.name === "ECDSA" ? der.sequence(der.unsignedInteger(raw.subarray(0, raw.length / 2)), der.unsignedInteger(raw.subarray(raw.length / 2))) : raw;
  return der.sequence(tbsDer, signatureAlgorithmIdentifier(alg), der.bitString(signature));
}
