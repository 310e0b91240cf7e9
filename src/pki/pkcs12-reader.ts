/**
 * Reading a PKCS#12 file back (the operator only writes them, pkcs12.ts): for the kubectl plugin, which shows what
 * a client Secret's client.pfx holds, and for the tests. PBES2 bags (PBKDF2 + AES-CBC, what OpenSSL 3 and
 * buildPkcs12 write) and the HMAC MAC of RFC 7292.
 */
import { createDecipheriv, pbkdf2Sync, timingSafeEqual } from "node:crypto";
import { id_encryptedData } from "@peculiar/asn1-cms";
import { AuthenticatedSafe, CertBag, PFX, PKCS8ShroudedKeyBag, SafeContents, id_certBag, id_pkcs8ShroudedKeyBag } from "@peculiar/asn1-pfx";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import type { AlgorithmIdentifier } from "@peculiar/asn1-x509";
import { certificateToPem } from "./encodings";
import { PkiError } from "./errors";
import { PKCS12_OIDS } from "./oids";
import { CmsEncryptedData, Pbes2Params, Pbkdf2Params } from "./pkcs12";
import { bmpPassword, pkcs12Mac, type Pkcs12KdfHash } from "./pkcs12-kdf";

export interface ParsedPkcs12 {
  /** PKCS#8 DER of every key bag, in file order. */
  readonly keysPkcs8Der: Buffer[];
  /** Every certificate, as PEM, in file order. */
  readonly certificatePems: string[];
}

const PBKDF2_HASHES: Readonly<Record<string, string>> = {
  [PKCS12_OIDS.hmacWithSHA1]: "sha1",
  [PKCS12_OIDS.hmacWithSHA256]: "sha256",
  [PKCS12_OIDS.hmacWithSHA384]: "sha384",
  [PKCS12_OIDS.hmacWithSHA512]: "sha512",
};
const AES_CBC: Readonly<Record<string, string>> = {
  [PKCS12_OIDS.aes128Cbc]: "aes-128-cbc",
  [PKCS12_OIDS.aes192Cbc]: "aes-192-cbc",
  [PKCS12_OIDS.aes256Cbc]: "aes-256-cbc",
};
const MAC_HASHES: Readonly<Record<string, Pkcs12KdfHash>> = {
  [PKCS12_OIDS.sha1]: "sha1",
  [PKCS12_OIDS.sha256]: "sha256",
  [PKCS12_OIDS.sha384]: "sha384",
  [PKCS12_OIDS.sha512]: "sha512",
};

/** PBES2 (PBKDF2 + AES-CBC) decryption: what OpenSSL 3 and buildPkcs12 write. */
function pbes2Decrypt(algorithm: AlgorithmIdentifier, password: string, ciphertext: Uint8Array): Buffer {
  if (algorithm.algorithm !== PKCS12_OIDS.pbes2 || !algorithm.parameters) throw new Error(`unsupported PKCS#12 encryption ${algorithm.algorithm}`);
  const params = AsnConvert.parse(algorithm.parameters, Pbes2Params);
  const kdf = AsnConvert.parse(params.keyDerivationFunc.parameters ?? new ArrayBuffer(0), Pbkdf2Params);
  const hash = PBKDF2_HASHES[kdf.prf?.algorithm ?? PKCS12_OIDS.hmacWithSHA1];
  const cipher = AES_CBC[params.encryptionScheme.algorithm];
  if (!hash || !cipher || !params.encryptionScheme.parameters) throw new Error("unsupported PBES2 parameters");
  const iv = new Uint8Array(AsnConvert.parse(params.encryptionScheme.parameters, OctetString).buffer);
  const key = pbkdf2Sync(password, new Uint8Array(kdf.salt.buffer), kdf.iterationCount, Number(cipher.slice(4, 7)) / 8, hash);
  const decipher = createDecipheriv(cipher, key, iv);
  return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
}

/**
 * Reads a password-protected PKCS#12 file (PBES2 bags, HMAC MAC): verifies the MAC, decrypts every bag.
 * Throws PkiError(InvalidPKCS12) with a message telling a wrong password from a damaged file.
 */
export async function parsePkcs12(pfxDer: Uint8Array, password: string): Promise<ParsedPkcs12> {
  let pfx: PFX;
  let authenticatedSafe: Uint8Array;
  try {
    pfx = AsnConvert.parse(pfxDer, PFX);
    authenticatedSafe = new Uint8Array(AsnConvert.parse(pfx.authSafe.content, OctetString).buffer);
  } catch {
    throw new PkiError("InvalidPKCS12", "the PKCS#12 data is not a DER-encoded PFX structure");
  }
  const macHash = MAC_HASHES[pfx.macData.mac.digestAlgorithm.algorithm];
  const mac = macHash && pkcs12Mac(macHash, bmpPassword(password), new Uint8Array(pfx.macData.macSalt.buffer), pfx.macData.iterations, authenticatedSafe);
  const expected = Buffer.from(pfx.macData.mac.digest.buffer);
  if (!mac || mac.length !== expected.length || !timingSafeEqual(mac, expected)) {
    throw new PkiError("InvalidPKCS12", "the PKCS#12 integrity check failed: wrong password, or the file was altered");
  }
  const keysPkcs8Der: Buffer[] = [];
  const certificatePems: string[] = [];
  try {
    for (const content of AsnConvert.parse(authenticatedSafe, AuthenticatedSafe)) {
      let bags: Uint8Array;
      if (content.contentType === id_encryptedData) {
        const info = AsnConvert.parse(content.content, CmsEncryptedData).encryptedContentInfo;
        const encrypted = info.encryptedContent?.value ?? new OctetString();
        bags = pbes2Decrypt(info.contentEncryptionAlgorithm, password, new Uint8Array(encrypted.buffer));
      } else {
        bags = new Uint8Array(AsnConvert.parse(content.content, OctetString).buffer);
      }
      for (const bag of AsnConvert.parse(bags, SafeContents)) {
        if (bag.bagId === id_certBag) {
          const certBag = AsnConvert.parse(bag.bagValue, CertBag);
          certificatePems.push(certificateToPem(new Uint8Array(AsnConvert.parse(certBag.certValue, OctetString).buffer)));
        } else if (bag.bagId === id_pkcs8ShroudedKeyBag) {
          const keyBag = AsnConvert.parse(bag.bagValue, PKCS8ShroudedKeyBag);
          keysPkcs8Der.push(pbes2Decrypt(keyBag.encryptionAlgorithm, password, new Uint8Array(keyBag.encryptedData.buffer)));
        }
      }
    }
  } catch {
    throw new PkiError("InvalidPKCS12", "a PKCS#12 bag could not be decrypted: unsupported encryption or wrong password");
  }
  return { keysPkcs8Der, certificatePems };
}
