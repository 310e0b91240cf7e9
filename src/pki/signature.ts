/**
 * Signing the to-be-signed part of a certificate or CRL with WebCrypto (on the libuv thread pool), in the forms
 * X.509 wants: the AlgorithmIdentifier @peculiar/x509 maps the WebCrypto algorithm to (RFC 5758: no parameters
 * for ECDSA; RFC 4055: NULL for RSA) and, for ECDSA, the signature as SEQUENCE { r, s } instead of r||s.
 */
import { AsnConvert } from "@peculiar/asn1-schema";
import type { AlgorithmIdentifier } from "@peculiar/asn1-x509";
import { AlgorithmProvider, AsnEcSignatureFormatter } from "@peculiar/x509";
import { subtle, type CryptoKey, type SigningAlgorithm } from "./keys.js";

const algorithms = new AlgorithmProvider();
const ecdsaSignatures = new AsnEcSignatureFormatter();

export function signatureAlgorithmIdentifier(alg: SigningAlgorithm): AlgorithmIdentifier {
  return algorithms.toAsnAlgorithm(alg);
}

export interface Signed {
  readonly signatureAlgorithm: AlgorithmIdentifier;
  readonly signatureValue: ArrayBuffer;
}

/** Serializes `tbs` (a TBSCertificate or TBSCertList) and signs it. */
export async function signStructure(tbs: object, key: CryptoKey, alg: SigningAlgorithm): Promise<Signed> {
  const raw = await subtle.sign(alg, key, AsnConvert.serialize(tbs));
  const signatureValue = alg.name === "ECDSA" ? ecdsaSignatures.toAsnSignature({ ...key.algorithm, ...alg }, raw) : raw;
  if (!signatureValue) throw new Error(`cannot encode an ${alg.name} signature`);
  return { signatureAlgorithm: signatureAlgorithmIdentifier(alg), signatureValue };
}
