/**
 * Whether a Secret's private key belongs to its certificate. Every reconcile reads the same Secrets again, and a
 * key parse plus a key check cost more than the rest of a pass that changes nothing: a pair is checked once, and a
 * pair this process issued (issueLeaf) is known without a check.
 */
import { X509Certificate as NodeX509Certificate } from "node:crypto";
import type { CertificateFacts } from "./certificate";
import { ContentCache } from "./content-cache";
import { decodePem, parsePrivateKey, type ParsedPrivateKey } from "./encodings";

const matchingPairs = new ContentCache<true>(8192);

/** Records that `keyPkcs8Der` is the key of the certificate `certDer` (a pair just generated and signed). */
export function rememberKeyPair(certDer: Uint8Array, keyPkcs8Der: Uint8Array): void {
  matchingPairs.set([certDer, keyPkcs8Der], true);
}

/** The DER of a PEM text that is exactly one plain PKCS#8 block (what the operator writes), else undefined. */
function plainPkcs8Der(keyPem: string | Uint8Array): Buffer | undefined {
  const blocks = decodePem(keyPem);
  const only = blocks.length === 1 ? blocks[0] : undefined;
  return only?.label === "PRIVATE KEY" && Object.keys(only.headers).length === 0 ? only.der : undefined;
}

export type KeyCheck = { readonly matches: true; readonly pkcs8Der: Buffer } | { readonly matches: false; readonly key: ParsedPrivateKey };

/**
 * Whether the key (PEM in any form parsePrivateKey reads) belongs to the certificate, with the key as PKCS#8 DER when
 * it does. A known pair costs a PEM decode and a hash; anything else is parsed, so its errors are parsePrivateKey's.
 */
export function checkKeyPair(cert: CertificateFacts, keyPem: string | Uint8Array): KeyCheck {
  const der = plainPkcs8Der(keyPem);
  if (der && matchingPairs.peek([cert.der, der])) return { matches: true, pkcs8Der: der };
  const key = parsePrivateKey(keyPem);
  if (!new NodeX509Certificate(cert.der).checkPrivateKey(key.keyObject)) return { matches: false, key };
  rememberKeyPair(cert.der, key.pkcs8Der);
  return { matches: true, pkcs8Der: key.pkcs8Der };
}
