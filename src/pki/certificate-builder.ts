/**
 * Building and signing the certificates we issue, with @peculiar/asn1-x509's schemas: one template (v3, random
 * serial, the issuer's name as the issuer parsed it, SKI and AKI by RFC 5280 method 1) that the CA and the leaves
 * fill in. The facts of a new certificate come from the structure just built, so it is never parsed again.
 */
import { createHash } from "node:crypto";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
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
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
} from "@peculiar/asn1-x509";
import { builtCertificateFacts, type CertificateFacts, type KeyUsageName } from "./certificate.js";
import type { CryptoKey, SigningAlgorithm } from "./keys.js";
import { signStructure, signatureAlgorithmIdentifier } from "./signature.js";

/** The key usages the operator sets. */
export type KeyUsageBit = Exclude<KeyUsageName, "encipherOnly" | "decipherOnly">;

function extension(id: string, critical: boolean, value: object): Extension {
  return new Extension({ extnID: id, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

export const extensions = {
  basicConstraints: (ca: boolean, pathLength?: number): Extension =>
    extension(id_ce_basicConstraints, true, new BasicConstraints(ca ? { cA: true, ...(pathLength === undefined ? {} : { pathLenConstraint: pathLength }) } : {})),
  keyUsage: (usages: readonly KeyUsageBit[]): Extension =>
    extension(id_ce_keyUsage, true, new KeyUsage(usages.reduce((flags, u) => flags | KeyUsageFlags[u], 0))),
  extKeyUsage: (oids: readonly string[]): Extension => extension(id_ce_extKeyUsage, false, new ExtendedKeyUsage([...oids])),
  subjectAltName: (dnsNames: readonly string[], ipAddresses: readonly string[]): Extension =>
    extension(
      id_ce_subjectAltName,
      false,
      new SubjectAlternativeName([...dnsNames.map((dNSName) => new GeneralName({ dNSName })), ...ipAddresses.map((iPAddress) => new GeneralName({ iPAddress }))]),
    ),
  subjectKeyIdentifier: (keyIdHex: string): Extension =>
    extension(id_ce_subjectKeyIdentifier, false, new SubjectKeyIdentifier(Buffer.from(keyIdHex, "hex"))),
  authorityKeyIdentifier: (keyIdHex: string): Extension =>
    extension(id_ce_authorityKeyIdentifier, false, new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(Buffer.from(keyIdHex, "hex")) })),
};

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING value, lower-case hex. */
export function keyIdentifier(spki: SubjectPublicKeyInfo): string {
  return createHash("sha1").update(new Uint8Array(spki.subjectPublicKey)).digest("hex");
}

/** The key identifier what `issuer` signs carries as its authority key identifier. */
export function authorityKeyIdOf(issuer: CertificateFacts): string {
  return issuer.subjectKeyId ?? keyIdentifier(AsnConvert.parse(issuer.spkiDer, SubjectPublicKeyInfo));
}

export interface CertificateTemplate {
  readonly serialNumberHex: string;
  readonly issuer: Name;
  readonly subject: Name;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly spki: SubjectPublicKeyInfo;
  readonly extensions: readonly Extension[];
  readonly signingKey: CryptoKey;
  readonly signing: SigningAlgorithm;
}

/** Signs the template into a certificate and returns its facts. */
export async function buildCertificate(t: CertificateTemplate): Promise<CertificateFacts> {
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: new Uint8Array(Buffer.from(t.serialNumberHex, "hex")).buffer,
    signature: signatureAlgorithmIdentifier(t.signing),
    issuer: t.issuer,
    validity: new Validity({ notBefore: t.notBefore, notAfter: t.notAfter }),
    subject: t.subject,
    subjectPublicKeyInfo: t.spki,
    extensions: new Extensions([...t.extensions]),
  });
  const { signatureAlgorithm, signatureValue } = await signStructure(tbs, t.signingKey, t.signing);
  const certificate = new Certificate({ tbsCertificate: tbs, signatureAlgorithm, signatureValue });
  return builtCertificateFacts(Buffer.from(AsnConvert.serialize(certificate)), certificate);
}
