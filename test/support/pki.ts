/**
 * PKI checks only the tests need: whether a CRL verifies under a CA's key (the operator never checks one;
 * PostgreSQL does). Reading back a PKCS#12 file lives in src/pki/pkcs12-reader.ts (the kubectl plugin uses it too).
 */
import { X509Certificate, verify } from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import { CertificateList } from "@peculiar/asn1-x509";
import { AlgorithmProvider } from "@peculiar/x509";
import { decodePem } from "../../src/pki/index";

export { parsePkcs12, type ParsedPkcs12 } from "../../src/pki/pkcs12-reader";

/** Whether the (first) CRL is signed by the CA's key. */
export function verifyCRLSignature(crlPem: string | Uint8Array, ca: { readonly certPem: string }): boolean {
  try {
    const block = decodePem(crlPem).find((b) => b.label === "X509 CRL");
    if (!block) return false;
    const list = AsnConvert.parse(block.der, CertificateList);
    const algorithm = new AlgorithmProvider().toWebAlgorithm(list.signatureAlgorithm) as { hash?: { name?: string } };
    const hash = algorithm.hash?.name;
    if (!hash) return false;
    return verify(hash, new Uint8Array(AsnConvert.serialize(list.tbsCertList)), new X509Certificate(ca.certPem).publicKey, new Uint8Array(list.signature));
  } catch {
    return false;
  }
}
