/**
 * PKCS#12 (.pfx, for .NET and the JDK) through the same ASN.1 stack as certificates: @peculiar/asn1-pfx's PFX, bags
 * and attributes, @peculiar/asn1-cms's ContentInfo. Encryption is WebCrypto (PBKDF2, AES-CBC); the MAC key is the
 * RFC 7292 B.2 derivation of pkcs12-kdf.ts, on node:crypto.
 */
import { createCipheriv, createHash, pbkdf2Sync, randomBytes } from "node:crypto";
import { EncryptedContent, EncryptedContentInfo, id_data, id_encryptedData } from "@peculiar/asn1-cms";
import { MacData, PKCS12Attribute, PKCS8ShroudedKeyBag, id_certBag, id_pkcs8ShroudedKeyBag, id_x509Certificate } from "@peculiar/asn1-pfx";
import { EncryptedData as EncryptedOctets, PrivateKeyInfo } from "@peculiar/asn1-pkcs8";
import { AsnArray, AsnConvert, AsnProp, AsnPropTypes, AsnSerializer, AsnType, AsnTypeTypes, OctetString } from "@peculiar/asn1-schema";
import { AlgorithmIdentifier, DirectoryString } from "@peculiar/asn1-x509";
import { PkiError } from "./errors";
import { certificateDersFromPem } from "./encodings";
import { parseCertificate } from "./certificate";
import { isExportedPkcs8 } from "./keys";
import { PKCS12_OIDS } from "./oids";
import { bmpPassword, pkcs12Mac } from "./pkcs12-kdf";
import { preEncoded } from "./signature";


// ----------------------------------------------------------------- schemas the vendor packages do not ship

type PropOptions = Parameters<typeof AsnProp>[0];

/** Declares a SEQUENCE schema on a class: asn1-schema's decorators, applied as calls (the project does not enable them). */
function sequence(type: abstract new () => object, props: Readonly<Record<string, PropOptions>>): void {
  AsnType({ type: AsnTypeTypes.Sequence })(type as new () => object);
  for (const [key, options] of Object.entries(props)) AsnProp(options)(type.prototype as object, key);
}

/** PBKDF2-params (RFC 8018 A.2), with the salt as the `specified` OCTET STRING. */
export class Pbkdf2Params {
  salt = new OctetString();
  iterationCount = 0;
  keyLength?: number;
  prf?: AlgorithmIdentifier;
  constructor(params: Partial<Pbkdf2Params> = {}) {
    Object.assign(this, params);
  }
}
sequence(Pbkdf2Params, {
  salt: { type: OctetString },
  iterationCount: { type: AsnPropTypes.Integer },
  keyLength: { type: AsnPropTypes.Integer, optional: true },
  prf: { type: AlgorithmIdentifier, optional: true },
});

/** PBES2-params (RFC 8018 A.4). */
export class Pbes2Params {
  keyDerivationFunc = new AlgorithmIdentifier();
  encryptionScheme = new AlgorithmIdentifier();
  constructor(params: Partial<Pbes2Params> = {}) {
    Object.assign(this, params);
  }
}
sequence(Pbes2Params, { keyDerivationFunc: { type: AlgorithmIdentifier }, encryptionScheme: { type: AlgorithmIdentifier } });

/**
 * An AlgorithmIdentifier of one algorithm, its parameters typed as `paramsType`: asn1-x509's types them as ANY, which
 * its serializer re-parses, so nested parameters (PBES2 holding PBKDF2) would be encoded, read back and encoded again.
 */
function algorithmIdentifier<T extends object>(algorithm: string, paramsType: new () => T) {
  class TypedAlgorithmIdentifier {
    algorithm = algorithm;
    parameters = new paramsType();
  }
  sequence(TypedAlgorithmIdentifier, { algorithm: { type: AsnPropTypes.ObjectIdentifier }, parameters: { type: paramsType } });
  return TypedAlgorithmIdentifier;
}

const Pbkdf2Algorithm = algorithmIdentifier(PKCS12_OIDS.pbkdf2, Pbkdf2Params);
const Aes256CbcAlgorithm = algorithmIdentifier(PKCS12_OIDS.aes256Cbc, OctetString);
const Pbes2Algorithm = algorithmIdentifier(PKCS12_OIDS.pbes2, Pbes2Params);

/** `value` as an asn1-x509 AlgorithmIdentifier, for the schemas that hold one (a stand-in: only for serializing). */
function asAlgorithmIdentifier(value: object): AlgorithmIdentifier {
  return preEncoded<AlgorithmIdentifier>(AsnSerializer.toASN(value));
}

/** CMS EncryptedData (RFC 5652 §8), without unprotected attributes. */
export class CmsEncryptedData {
  version = 0;
  encryptedContentInfo = new EncryptedContentInfo();
  constructor(params: Partial<CmsEncryptedData> = {}) {
    Object.assign(this, params);
  }
}
sequence(CmsEncryptedData, { version: { type: AsnPropTypes.Integer }, encryptedContentInfo: { type: EncryptedContentInfo } });

/*
 * The file buildPkcs12 writes, each part typed as what it holds. asn1-pfx types bag values and contents as ANY,
 * which its serializer re-parses, every OCTET STRING speculatively decoded (certificates included): typed parts are
 * written without being read back. The encoding is the same as with asn1-pfx's generic types.
 */

class X509CertBag {
  certId = id_x509Certificate;
  certValue = new OctetString();
}
sequence(X509CertBag, { certId: { type: AsnPropTypes.ObjectIdentifier }, certValue: { type: OctetString, context: 0 } });

/** A SafeBag (RFC 7292 §4.2) of one bag type, its value typed as `valueType`. */
function safeBag<T extends object>(bagId: string, valueType: new () => T) {
  class SafeBag {
    bagId = bagId;
    bagValue = new valueType();
    bagAttributes?: PKCS12Attribute[];
  }
  sequence(SafeBag, {
    bagId: { type: AsnPropTypes.ObjectIdentifier },
    bagValue: { type: valueType, context: 0 },
    bagAttributes: { type: PKCS12Attribute, repeated: "set", optional: true },
  });
  return SafeBag;
}

/** SafeContents (RFC 7292 §4.2) whose bags are all `bagType`. */
function safeContents<T extends object>(bagType: new () => T) {
  class SafeContents extends AsnArray<T> {}
  AsnType({ type: AsnTypeTypes.Sequence, itemType: bagType })(SafeContents);
  return SafeContents;
}

/** A ContentInfo (RFC 5652 §3) of one content type, its content typed as `contentSchema`. */
function contentInfo<T extends object>(contentType: string, contentSchema: new () => T) {
  class ContentInfo {
    contentType = contentType;
    content = new contentSchema();
  }
  sequence(ContentInfo, { contentType: { type: AsnPropTypes.ObjectIdentifier }, content: { type: contentSchema, context: 0 } });
  return ContentInfo;
}

const CertSafeBag = safeBag(id_certBag, X509CertBag);
const KeySafeBag = safeBag(id_pkcs8ShroudedKeyBag, PKCS8ShroudedKeyBag);
const CertSafeContents = safeContents(CertSafeBag);
const KeySafeContents = safeContents(KeySafeBag);
const DataContentInfo = contentInfo(id_data, OctetString);
const EncryptedDataContentInfo = contentInfo(id_encryptedData, CmsEncryptedData);

/** The AuthenticatedSafe we write: the encrypted certificates, then the shrouded key. */
class CertificatesAndKey {
  certificates = new EncryptedDataContentInfo();
  key = new DataContentInfo();
}
sequence(CertificatesAndKey, { certificates: { type: EncryptedDataContentInfo }, key: { type: DataContentInfo } });

class Pfx {
  version = 3;
  authSafe = new DataContentInfo();
  macData = new MacData();
}
sequence(Pfx, { version: { type: AsnPropTypes.Integer }, authSafe: { type: DataContentInfo }, macData: { type: MacData } });

// ------------------------------------------------------------------------------------------ building

/**
 * Work factors. They slow the guessing of a human password; ours is 192 random bits (see generatePfxPassword), kept
 * in the same Secret as the file, which no count changes: guessing it is 2^192 work at one iteration as at 2048. So
 * both take 1, the counts `openssl pkcs12 -noiter -nomaciter` writes, which OpenSSL, Java's keytool and .NET read:
 * OpenSSL 3's 2048 cost 0.5 ms (key) and 3.7 ms (the MAC's PKCS#12 KDF, sequential single-block hashes) of the
 * event loop per connection in a storm, and bought nothing. The MAC's 1 is the ASN.1 default, so DER leaves it out.
 */
const PBKDF2_ITERATIONS = 1;
const MAC_ITERATIONS = 1;
const SALT_BYTES = 64;

/**
 * 32 characters of base64url from 24 random bytes (192 bits, less the 0.05 bit of the rule below). Safe in files, env
 * vars and .ini values, and never starting with "-" or "_": command lines take a leading "-" for an option (keytool
 * hands `-storepass -J…` to the JVM as a flag).
 */
export function generatePfxPassword(): string {
  for (;;) {
    const password = randomBytes(24).toString("base64url");
    if (/^[A-Za-z0-9]/.test(password)) return password;
  }
}

export interface Pkcs12Input {
  readonly keyPkcs8Der: Uint8Array;
  /** The leaf certificate (PEM; only the first certificate is used). */
  readonly certificatePem: string;
  /** CA certificates to add after the leaf (the issuer chain). */
  readonly caCertificatePems?: readonly string[];
  readonly password: string;
  /** friendlyName attribute of the key and leaf (e.g. the database user). */
  readonly friendlyName?: string;
}

const HMAC_WITH_SHA256 = new AlgorithmIdentifier({ algorithm: PKCS12_OIDS.hmacWithSHA256, parameters: null });

/**
 * PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC for the bags of one file: the key is derived once (one salt) and
 * each bag gets its own IV, as CBC requires; a second derivation under the same password would protect nothing more.
 */
function pbes2Encrypter(password: string): (plaintext: Uint8Array) => { algorithm: AlgorithmIdentifier; ciphertext: Buffer } {
  const salt = randomBytes(SALT_BYTES);
  const key = pbkdf2Sync(Buffer.from(password, "utf8"), salt, PBKDF2_ITERATIONS, 32, "sha256");
  const kdf = asAlgorithmIdentifier(
    Object.assign(new Pbkdf2Algorithm(), {
      parameters: new Pbkdf2Params({ salt: new OctetString(salt), iterationCount: PBKDF2_ITERATIONS, prf: HMAC_WITH_SHA256 }),
    }),
  );
  return (plaintext) => {
    const iv = randomBytes(16);
    const cipher = createCipheriv("aes-256-cbc", key, iv);
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const params = new Pbes2Params({
      keyDerivationFunc: kdf,
      encryptionScheme: asAlgorithmIdentifier(Object.assign(new Aes256CbcAlgorithm(), { parameters: new OctetString(iv) })),
    });
    return { algorithm: asAlgorithmIdentifier(Object.assign(new Pbes2Algorithm(), { parameters: params })), ciphertext };
  };
}

function octetStringDer(bytes: Uint8Array | ArrayBuffer): ArrayBuffer {
  return AsnConvert.serialize(new OctetString(bytes));
}

/**
 * PKCS12Attribute's constructor drops its parameters (asn1-pfx 2.11: `Object.assign(params)`), so they are set here.
 * Converted at once (a stand-in: only for serializing): key and leaf bags share it, and its ANY value would be
 * re-parsed at every conversion.
 */
function attribute(attrId: string, value: ArrayBuffer): PKCS12Attribute {
  return preEncoded<PKCS12Attribute>(AsnSerializer.toASN(Object.assign(new PKCS12Attribute(), { attrId, attrValues: [value] })));
}

/** Throws unless the key is one PKCS#8 PrivateKeyInfo, nothing before or after it. */
function requirePkcs8(keyDer: Uint8Array): void {
  if (isExportedPkcs8(keyDer)) return;
  let ok: boolean;
  try {
    ok = AsnConvert.serialize(AsnConvert.parse(keyDer, PrivateKeyInfo)).byteLength === keyDer.length;
  } catch {
    ok = false;
  }
  if (!ok) throw new PkiError("UnsupportedKeyFormat", "the PKCS#12 private key is not PKCS#8 DER");
}

function requireCertificate(der: Uint8Array): void {
  try {
    // Cached: the certificates we issue and the CA's are known already, so this costs a hash, not a parse.
    parseCertificate(der);
  } catch {
    throw new PkiError("InvalidCertificate", "a PKCS#12 certificate is not DER (its PEM body is damaged)");
  }
}

/**
 * Builds a PKCS#12 file the way OpenSSL 3 does by default: the key in a PKCS8ShroudedKeyBag and the
 * certificates in an EncryptedData, both PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC), and an HMAC-SHA256 MAC over
 * the whole. Key and leaf share a localKeyId so .NET and Windows pair them. The bags carry the DER as given.
 */
export function buildPkcs12(input: Pkcs12Input): Buffer {
  const leafDer = certificateDersFromPem(input.certificatePem)[0];
  if (!leafDer) throw new PkiError("InvalidCertificate", "the PKCS#12 leaf certificate PEM holds no certificate");
  const caDers = (input.caCertificatePems ?? []).flatMap((pem) => certificateDersFromPem(pem));
  requirePkcs8(input.keyPkcs8Der);
  for (const der of [leafDer, ...caDers]) requireCertificate(der);

  const attributes = [attribute(PKCS12_OIDS.localKeyId, octetStringDer(createHash("sha1").update(leafDer).digest()))];
  if (input.friendlyName) {
    attributes.push(attribute(PKCS12_OIDS.friendlyName, AsnConvert.serialize(new DirectoryString({ bmpString: input.friendlyName }))));
  }

  const certBags = new CertSafeContents(
    [leafDer, ...caDers].map((der, i) =>
      Object.assign(new CertSafeBag(), {
        bagValue: Object.assign(new X509CertBag(), { certValue: new OctetString(der) }),
        ...(i === 0 ? { bagAttributes: attributes } : {}),
      }),
    ),
  );
  const encrypt = pbes2Encrypter(input.password);
  const certs = encrypt(new Uint8Array(AsnConvert.serialize(certBags)));
  const encryptedCerts = new CmsEncryptedData({
    encryptedContentInfo: new EncryptedContentInfo({
      contentType: id_data,
      contentEncryptionAlgorithm: certs.algorithm,
      encryptedContent: new EncryptedContent({ value: new OctetString(certs.ciphertext) }),
    }),
  });

  const key = encrypt(input.keyPkcs8Der);
  const keyBag = Object.assign(new KeySafeBag(), {
    bagValue: new PKCS8ShroudedKeyBag({ encryptionAlgorithm: key.algorithm, encryptedData: new EncryptedOctets(key.ciphertext) }),
    bagAttributes: attributes,
  });

  const authenticatedSafe = new Uint8Array(
    AsnConvert.serialize(
      Object.assign(new CertificatesAndKey(), {
        certificates: Object.assign(new EncryptedDataContentInfo(), { content: encryptedCerts }),
        key: Object.assign(new DataContentInfo(), { content: new OctetString(AsnConvert.serialize(new KeySafeContents([keyBag]))) }),
      }),
    ),
  );

  const macSalt = randomBytes(SALT_BYTES);
  const macData = new MacData({ macSalt: new OctetString(macSalt), iterations: MAC_ITERATIONS });
  macData.mac.digestAlgorithm = new AlgorithmIdentifier({ algorithm: PKCS12_OIDS.sha256, parameters: null });
  macData.mac.digest = new OctetString(pkcs12Mac("sha256", bmpPassword(input.password), macSalt, MAC_ITERATIONS, authenticatedSafe));
  const authSafe = Object.assign(new DataContentInfo(), { content: new OctetString(authenticatedSafe) });
  const pfx = Object.assign(new Pfx(), { authSafe, macData });
  return Buffer.from(AsnConvert.serialize(pfx));
}
