/**
 * Signing the to-be-signed part of a certificate or CRL with WebCrypto (on the libuv thread pool), in the forms
 * X.509 wants: the AlgorithmIdentifier @peculiar/x509 maps the WebCrypto algorithm to (RFC 5758: no parameters
 * for ECDSA; RFC 4055: NULL for RSA) and, for ECDSA, the signature as SEQUENCE { r, s } instead of r||s.
 */
import { AsnSerializer } from "@peculiar/asn1-schema";
import type { AlgorithmIdentifier } from "@peculiar/asn1-x509";
import { AlgorithmProvider, AsnEcSignatureFormatter } from "@peculiar/x509";
import { subtle, type CryptoKey, type SigningAlgorithm } from "./keys";

const algorithms = new AlgorithmProvider();
const ecdsaSignatures = new AsnEcSignatureFormatter();

export function signatureAlgorithmIdentifier(alg: SigningAlgorithm): AlgorithmIdentifier {
  return algorithms.toAsnAlgorithm(alg);
}

export interface Signed<T> {
  /**
   * The to-be-signed part as it was encoded for signing: the signed whole (Certificate, CertificateList) serializes
   * this encoding again instead of converting the schema object a second time.
   */
  readonly tbs: T;
  readonly signatureAlgorithm: AlgorithmIdentifier;
  readonly signatureValue: ArrayBuffer;
}

/** Encodes `tbs` (a TBSCertificate or TBSCertList) and signs it. */
export async function signStructure<T extends object>(tbs: T, key: CryptoKey, alg: SigningAlgorithm): Promise<Signed<T>> {
  const encoded = AsnSerializer.toASN(tbs);
  const raw = await subtle.sign(alg, key, encoded.toBER(false));
  const signatureValue = alg.name === "ECDSA" ? ecdsaSignatures.toAsnSignature({ ...key.algorithm, ...alg }, raw) : raw;
  if (!signatureValue) throw new Error(`cannot encode an ${alg.name} signature`);
  // asn1-schema serializes any value with toASN/fromASN (IAsnConvertible) through them.
  const preEncoded = { toASN: () => encoded, fromASN: () => preEncoded };
  return { tbs: preEncoded as unknown as T, signatureAlgorithm: signatureAlgorithmIdentifier(alg), signatureValue };
}
