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

type AsnBlock = ReturnType<typeof AsnSerializer.toASN>;

/**
 * A stand-in for a schema value that asn1-schema serializes as `encoded`: it serializes any value with
 * toASN/fromASN (IAsnConvertible) through them, so a constant part is converted from its schema once, not per use.
 */
export function preEncoded<T>(encoded: AsnBlock): T {
  const stub = { toASN: () => encoded, fromASN: () => stub };
  return stub as unknown as T;
}

const algorithmIdentifiers = new Map<string, AlgorithmIdentifier>();

/** The AlgorithmIdentifier of `alg`, converted once per algorithm (a stand-in: only for serializing). */
export function signatureAlgorithmIdentifier(alg: SigningAlgorithm): AlgorithmIdentifier {
  const id = `${alg.name}/${alg.hash}`;
  let identifier = algorithmIdentifiers.get(id);
  if (!identifier) {
    identifier = preEncoded<AlgorithmIdentifier>(AsnSerializer.toASN(algorithms.toAsnAlgorithm(alg)));
    algorithmIdentifiers.set(id, identifier);
  }
  return identifier;
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
  return { tbs: preEncoded<T>(encoded), signatureAlgorithm: signatureAlgorithmIdentifier(alg), signatureValue };
}
