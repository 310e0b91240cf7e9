/**
 * Building and signing the certificates we issue, with @peculiar/asn1-x509's schemas: one template (v3, random
 * serial, the issuer's name as its certificate encodes it, SKI and AKI by RFC 5280 method 1) that the CA and the
 * leaves fill in. The facts of a new certificate are the template's: what we just wrote is never parsed back.
 */
import { createHash } from "node:crypto";
import { AsnConvert, AsnSerializer, OctetString } from "@peculiar/asn1-schema";
import {
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  Extension,
  Extensions,
  GeneralName,
  KeyIdentifier,
  KeyUsage,
  KeyUsageFlags,
  Name,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
} from "@peculiar/asn1-x509";
import {
  KEY_USAGE_NAMES,
  builtCertificateFacts,
  fingerprintSha256,
  normalizeSerialNumber,
  serialNumberToDecimal,
  type CertificateFacts,
  type KeyUsageName,
} from "./certificate";
import { commonNameOnly, nameToString } from "./distinguished-name";
import { certificateToPem } from "./encodings";
import type { CryptoKey, KeyFacts, SigningAlgorithm } from "./keys";
import { EXTENDED_KEY_USAGE_NAMES, EXTENSION_OIDS } from "./oids";
import { preEncoded, signStructure, signatureAlgorithmIdentifier } from "./signature";

/** The key usages the operator sets. */
export type KeyUsageBit = Exclude<KeyUsageName, "encipherOnly" | "decipherOnly">;

export function extension(id: string, critical: boolean, value: object): Extension {
  return new Extension({ extnID: id, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

/** SubjectAlternativeName of canonical DNS names and IP addresses (exported for the encoding tests). */
export function subjectAltName(dnsNames: readonly string[], ipAddresses: readonly string[]): Extension {
  const names = [
    ...dnsNames.map((dNSName) => new GeneralName({ dNSName })),
    ...ipAddresses.map((iPAddress) => new GeneralName({ iPAddress })),
  ];
  return extension(EXTENSION_OIDS.subjectAltName, false, new SubjectAlternativeName(names));
}

export function authorityKeyIdentifier(keyIdHex: string): Extension {
  const value = new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(Buffer.from(keyIdHex, "hex")) });
  return extension(EXTENSION_OIDS.authorityKeyIdentifier, false, value);
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING value, lower-case hex. */
export function keyIdentifier(spki: SubjectPublicKeyInfo): string {
  return createHash("sha1").update(new Uint8Array(spki.subjectPublicKey)).digest("hex");
}

/** The key identifier what `issuer` signs carries as its authority key identifier. */
export function authorityKeyIdOf(issuer: CertificateFacts): string {
  return issuer.subjectKeyId ?? keyIdentifier(AsnConvert.parse(issuer.spkiDer, SubjectPublicKeyInfo));
}

const issuerNames = new WeakMap<CertificateFacts, Name>();

/** The issuer's subject as its certificate encodes it, parsed and converted once per CA (a stand-in: only for serializing). */
export function issuerName(issuer: CertificateFacts): Name {
  let name = issuerNames.get(issuer);
  if (!name) {
    name = preEncoded<Name>(AsnSerializer.toASN(AsnConvert.parse(issuer.subjectDer, Name)));
    issuerNames.set(issuer, name);
  }
  return name;
}

const issuerAuthorityKeyIdentifiers = new WeakMap<CertificateFacts, Extension>();

/** The authorityKeyIdentifier extension of what `issuer` signs, converted once per CA (a stand-in: only for serializing). */
export function authorityKeyIdentifierFor(issuer: CertificateFacts): Extension {
  let ext = issuerAuthorityKeyIdentifiers.get(issuer);
  if (!ext) {
    ext = preEncoded<Extension>(AsnSerializer.toASN(authorityKeyIdentifier(authorityKeyIdOf(issuer))));
    issuerAuthorityKeyIdentifiers.set(issuer, ext);
  }
  return ext;
}

const constantExtensions = new Map<string, Extension>();

/**
 * An extension whose value is the same for every certificate or CRL entry of a kind, converted once per `key`
 * (a stand-in: only for serializing). The kinds are few: never key it by something per CA or per certificate.
 */
export function constantExtension(key: string, make: () => Extension): Extension {
  let ext = constantExtensions.get(key);
  if (!ext) {
    ext = preEncoded<Extension>(AsnSerializer.toASN(make()));
    constantExtensions.set(key, ext);
  }
  return ext;
}

export interface CertificateTemplate {
  readonly serialNumberHex: string;
  readonly subjectCommonName: string;
  /** The CA that signs; undefined for a self-signed certificate. */
  readonly issuer: CertificateFacts | undefined;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly spkiDer: Buffer;
  readonly key: KeyFacts;
  /** basicConstraints CA:TRUE with this path length, or CA:FALSE when undefined. */
  readonly caPathLength: number | undefined;
  readonly keyUsage: readonly KeyUsageBit[];
  /** Extended key usage OIDs; none means no extension. */
  readonly extendedKeyUsage: readonly string[];
  /** Canonical (see resolveServerNames); none means no subjectAltName extension. */
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly signingKey: CryptoKey;
  readonly signing: SigningAlgorithm;
}

/** Signs the template into a certificate and returns its facts. */
export async function buildCertificate(t: CertificateTemplate): Promise<CertificateFacts> {
  const spki = AsnConvert.parse(t.spkiDer, SubjectPublicKeyInfo);
  const subjectKeyId = keyIdentifier(spki);
  const authorityKeyId = t.issuer ? authorityKeyIdOf(t.issuer) : subjectKeyId;
  const subject = commonNameOnly(t.subjectCommonName);
  // Converted once for its DER and for the TBS.
  const subjectAsn = AsnSerializer.toASN(subject);
  const subjectDer = Buffer.from(subjectAsn.toBER(false));
  const isCA = t.caPathLength !== undefined;
  const keyUsage = KEY_USAGE_NAMES.filter((u) => (t.keyUsage as readonly string[]).includes(u));
  const keyUsageFlags = keyUsage.reduce((flags, u) => flags | KeyUsageFlags[u], 0);
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: new Uint8Array(Buffer.from(t.serialNumberHex, "hex")).buffer,
    signature: signatureAlgorithmIdentifier(t.signing),
    // The issuer's subject as its certificate encodes it, so name matching never depends on how we would spell it.
    issuer: t.issuer ? issuerName(t.issuer) : preEncoded<Name>(subjectAsn),
    validity: new Validity({ notBefore: t.notBefore, notAfter: t.notAfter }),
    subject: preEncoded<Name>(subjectAsn),
    subjectPublicKeyInfo: spki,
    extensions: new Extensions([
      constantExtension(`basicConstraints:${String(t.caPathLength)}`, () =>
        extension(EXTENSION_OIDS.basicConstraints, true, new BasicConstraints(isCA ? { cA: true, pathLenConstraint: t.caPathLength } : {})),
      ),
      constantExtension(`keyUsage:${keyUsageFlags}`, () => extension(EXTENSION_OIDS.keyUsage, true, new KeyUsage(keyUsageFlags))),
      ...(t.extendedKeyUsage.length > 0
        ? [
            constantExtension(`extKeyUsage:${t.extendedKeyUsage.join(",")}`, () =>
              extension(EXTENSION_OIDS.extKeyUsage, false, new ExtendedKeyUsage([...t.extendedKeyUsage])),
            ),
          ]
        : []),
      ...(t.dnsNames.length + t.ipAddresses.length > 0 ? [subjectAltName(t.dnsNames, t.ipAddresses)] : []),
      extension(EXTENSION_OIDS.subjectKeyIdentifier, false, new SubjectKeyIdentifier(Buffer.from(subjectKeyId, "hex"))),
      t.issuer ? authorityKeyIdentifierFor(t.issuer) : authorityKeyIdentifier(authorityKeyId),
    ]),
  });
  const signed = await signStructure(tbs, t.signingKey, t.signing);
  const { signatureAlgorithm, signatureValue } = signed;
  const der = Buffer.from(AsnConvert.serialize(new Certificate({ tbsCertificate: signed.tbs, signatureAlgorithm, signatureValue })));
  const serialNumber = normalizeSerialNumber(t.serialNumberHex);
  const subjectText = nameToString(subject);
  return builtCertificateFacts(der, {
    pem: certificateToPem(der),
    der,
    serialNumber,
    serialNumberDecimal: serialNumberToDecimal(serialNumber),
    notBefore: t.notBefore,
    notAfter: t.notAfter,
    subject: subjectText,
    subjectCommonName: t.subjectCommonName,
    subjectDer,
    issuer: t.issuer?.subject ?? subjectText,
    issuerCommonName: t.issuer ? t.issuer.subjectCommonName : t.subjectCommonName,
    dnsNames: t.dnsNames,
    ipAddresses: t.ipAddresses,
    subjectKeyId,
    authorityKeyId,
    fingerprintSha256: fingerprintSha256(der),
    key: t.key,
    spkiDer: t.spkiDer,
    isCA,
    pathLength: t.caPathLength,
    keyUsage,
    extendedKeyUsage: t.extendedKeyUsage.map((oid) => EXTENDED_KEY_USAGE_NAMES[oid] ?? oid),
    selfIssued: t.issuer === undefined || subjectDer.equals(t.issuer.subjectDer),
  }, t.issuer);
}
