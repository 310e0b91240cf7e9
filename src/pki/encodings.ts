/**
 * Encodings the clients need: certificate PEM, private key as PKCS#8 PEM (libpq) and PKCS#8 DER (the
 * PostgreSQL JDBC driver rejects a PEM key), and PKCS#12 (.pfx, for .NET). Also the readers for each, so
 * brought material and our own Secrets can be checked.
 */
import { createHash, createPrivateKey, randomBytes, type KeyObject } from "node:crypto";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { readTlv, TAG, UNIVERSAL } from "./der.js";
import { PkiError } from "./errors.js";
import { keyFactsOf, type KeyFacts } from "./keys.js";
import { pkijsEngine as engine } from "./pkijs-runtime.js";

// ---------------------------------------------------------------------------------------------- PEM

export interface PemBlock {
  readonly label: string;
  /** RFC 1421 headers such as `Proc-Type: 4,ENCRYPTED` (legacy encrypted keys). */
  readonly headers: Readonly<Record<string, string>>;
  readonly der: Buffer;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;

/** Decodes every PEM block in a text, ignoring anything between blocks (comments, "Bag Attributes" lines). */
export function decodePem(text: string | Uint8Array): PemBlock[] {
  const source = typeof text === "string" ? text : Buffer.from(text).toString("latin1");
  const blocks: PemBlock[] = [];
  for (const match of source.matchAll(PEM_BLOCK)) {
    const label = match[1] ?? "";
    const body = match[2] ?? "";
    const headers: Record<string, string> = {};
    const lines = body.split(/\r?\n/);
    let bodyStart = 0;
    if (lines.some((l) => /^[A-Za-z-]+:/.test(l))) {
      // Headers run until the first empty line.
      const blank = lines.findIndex((l) => l.trim() === "");
      for (const line of lines.slice(0, blank < 0 ? 0 : blank)) {
        const at = line.indexOf(":");
        if (at > 0) headers[line.slice(0, at).trim()] = line.slice(at + 1).trim();
      }
      bodyStart = blank < 0 ? 0 : blank + 1;
    }
    const b64 = lines.slice(bodyStart).join("").replace(/\s+/g, "");
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) {
      throw new PkiError("InvalidArgument", `the PEM block "${label}" is not valid base64`);
    }
    blocks.push({ label, headers, der: Buffer.from(b64, "base64") });
  }
  return blocks;
}

/** Encodes DER as PEM with 64-character lines and LF endings (byte-stable for equal input). */
export function encodePem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der).toString("base64");
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** DER of every certificate in a PEM text (a single certificate, a chain or a bundle). */
export function certificateDersFromPem(text: string | Uint8Array): Buffer[] {
  return decodePem(text)
    .filter((b) => b.label === "CERTIFICATE")
    .map((b) => b.der);
}

export function certificateToPem(der: Uint8Array): string {
  return encodePem(der, "CERTIFICATE");
}

export function pkcs8DerToPem(der: Uint8Array): string {
  return encodePem(der, "PRIVATE KEY");
}

// ------------------------------------------------------------------------------------- private keys

export interface ParsedPrivateKey {
  /** Normalised PKCS#8 DER (traditional SEC1/PKCS#1 keys are converted). */
  readonly pkcs8Der: Buffer;
  readonly keyObject: KeyObject;
  readonly facts: KeyFacts;
  /** The PEM label the key came in ("PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY") or "DER". */
  readonly sourceFormat: string;
}

const KEY_TYPES: Record<string, "pkcs8" | "sec1" | "pkcs1"> = {
  "PRIVATE KEY": "pkcs8",
  "EC PRIVATE KEY": "sec1",
  "RSA PRIVATE KEY": "pkcs1",
};

/**
 * Reads an unencrypted private key: PKCS#8 PEM ("PRIVATE KEY"), the traditional OpenSSL formats
 * ("EC PRIVATE KEY", "RSA PRIVATE KEY"; an "EC PARAMETERS" block before it is ignored), or PKCS#8 DER.
 * Encrypted keys are refused: the operator has no passphrase. Errors never quote the key.
 */
export function parsePrivateKey(input: string | Uint8Array): ParsedPrivateKey {
  const text = typeof input === "string" ? input : Buffer.from(input).toString("latin1");
  if (!text.includes("-----BEGIN")) {
    if (typeof input === "string") {
      throw new PkiError(
        "UnsupportedKeyFormat",
        "the private key is not PEM: expected a block such as -----BEGIN PRIVATE KEY----- (PKCS#8), EC PRIVATE KEY or RSA PRIVATE KEY",
      );
    }
    return fromDer(Buffer.from(input), "pkcs8", "DER");
  }
  let blocks: PemBlock[];
  try {
    blocks = decodePem(text);
  } catch {
    throw new PkiError("UnsupportedKeyFormat", "the private key PEM is damaged (its base64 body does not decode)");
  }
  if (blocks.some((b) => b.label === "ENCRYPTED PRIVATE KEY" || /ENCRYPTED/i.test(b.headers["Proc-Type"] ?? ""))) {
    throw new PkiError(
      "EncryptedKeyUnsupported",
      "the private key is encrypted with a passphrase, which the operator cannot unlock: store it unencrypted " +
        "(e.g. `openssl pkey -in encrypted.key -out tls.key`) in a Secret only the operator can read",
    );
  }
  const keyBlocks = blocks.filter((b) => b.label in KEY_TYPES);
  if (keyBlocks.length === 0) {
    const found = blocks.map((b) => b.label).join(", ") || "no PEM block";
    throw new PkiError(
      "UnsupportedKeyFormat",
      `no private key found (found: ${found}): expected a PEM block PRIVATE KEY (PKCS#8), EC PRIVATE KEY or RSA PRIVATE KEY`,
    );
  }
  if (keyBlocks.length > 1) {
    throw new PkiError("UnsupportedKeyFormat", `the key data holds ${keyBlocks.length} private keys: keep exactly one`);
  }
  const block = keyBlocks[0] as PemBlock;
  return fromDer(block.der, KEY_TYPES[block.label] ?? "pkcs8", block.label);
}

function fromDer(der: Buffer, type: "pkcs8" | "sec1" | "pkcs1", sourceFormat: string): ParsedPrivateKey {
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey({ key: der, format: "der", type });
  } catch {
    // Deliberately no cause: OpenSSL's message could one day echo input bytes.
    throw new PkiError(
      "UnsupportedKeyFormat",
      `the ${sourceFormat} private key could not be decoded: check that it is a complete, unencrypted key`,
    );
  }
  const pkcs8Der = type === "pkcs8" ? der : keyObject.export({ format: "der", type: "pkcs8" });
  return { pkcs8Der, keyObject, facts: keyFactsOf(keyObject), sourceFormat };
}

export function pkcs8PemToDer(pem: string | Uint8Array): Buffer {
  return parsePrivateKey(pem).pkcs8Der;
}

// ------------------------------------------------------------------------------------------ PKCS#12

const OID_PKCS8_SHROUDED_KEY_BAG = "1.2.840.113549.1.12.10.1.2";
const OID_CERT_BAG = "1.2.840.113549.1.12.10.1.3";
const OID_X509_CERTIFICATE = "1.2.840.113549.1.9.22.1";
const OID_FRIENDLY_NAME = "1.2.840.113549.1.9.20";
const OID_LOCAL_KEY_ID = "1.2.840.113549.1.9.21";

/**
 * PBKDF2 iterations and MAC iterations. The password is 192 bits of randomness (see generatePfxPassword),
 * so the work factor adds nothing against guessing; 2048 is OpenSSL 3's default and keeps .NET happy.
 */
const PKCS12_ITERATIONS = 2048;

const PBES2_PARAMS = {
  contentEncryptionAlgorithm: { name: "AES-CBC", length: 256 },
  hmacHashAlgorithm: "SHA-256",
  iterationCount: PKCS12_ITERATIONS,
} as const;

/** 32 characters of base64url from 24 random bytes (192 bits). Safe in files, env vars and .ini values. */
export function generatePfxPassword(): string {
  return randomBytes(24).toString("base64url");
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return copy.buffer;
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

/**
 * Builds a PKCS#12 file the way OpenSSL 3 does by default: the key in a PKCS8ShroudedKeyBag and the
 * certificates in an EncryptedData, both PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC), and an HMAC-SHA256 MAC over
 * the whole. Key and leaf share a localKeyId so .NET and Windows pair them.
 */
export async function buildPkcs12(input: Pkcs12Input): Promise<Buffer> {
  const leafDer = certificateDersFromPem(input.certificatePem)[0];
  if (!leafDer) throw new PkiError("InvalidCertificate", "the PKCS#12 leaf certificate PEM holds no certificate");
  const caDers = (input.caCertificatePems ?? []).flatMap((pem) => certificateDersFromPem(pem));
  // The bags carry the DER as given: parsing it into pkijs objects only to re-encode it was some 45% of the
  // build. A SEQUENCE spanning the whole input is all that is checked (the callers pass our own output).
  requireDerSequence(input.keyPkcs8Der, "UnsupportedKeyFormat", "the PKCS#12 private key is not PKCS#8 DER");
  for (const der of [leafDer, ...caDers]) {
    requireDerSequence(der, "InvalidCertificate", "a PKCS#12 certificate is not DER (its PEM body is damaged)");
  }
  const password = toArrayBuffer(new TextEncoder().encode(input.password));

  const localKeyId = createHash("sha1").update(leafDer).digest();
  const attributes = [
    new pkijs.Attribute({ type: OID_LOCAL_KEY_ID, values: [new asn1js.OctetString({ valueHex: toArrayBuffer(localKeyId) })] }),
  ];
  if (input.friendlyName) {
    attributes.push(new pkijs.Attribute({ type: OID_FRIENDLY_NAME, values: [new asn1js.BmpString({ value: input.friendlyName })] }));
  }

  // What PKCS8ShroudedKeyBag.makeInternalValues does, minus its PrivateKeyInfo round trip.
  const encryptedKey = new pkijs.EncryptedData();
  await encryptedKey.encrypt({ password, ...PBES2_PARAMS, contentToEncrypt: toArrayBuffer(input.keyPkcs8Der) }, engine);
  const shrouded = new pkijs.PKCS8ShroudedKeyBag({
    encryptionAlgorithm: encryptedKey.encryptedContentInfo.contentEncryptionAlgorithm,
    encryptedData: encryptedKey.encryptedContentInfo.encryptedContent,
  });

  const certBags = [leafDer, ...caDers].map(
    (der, i) =>
      new pkijs.SafeBag({
        bagId: OID_CERT_BAG,
        bagValue: new pkijs.CertBag({ certId: OID_X509_CERTIFICATE, certValue: new asn1js.OctetString({ valueHex: toArrayBuffer(der) }) }),
        ...(i === 0 ? { bagAttributes: attributes } : {}),
      }),
  );

  const authenticatedSafe = new pkijs.AuthenticatedSafe({
    parsedValue: {
      safeContents: [
        { privacyMode: 1, value: new pkijs.SafeContents({ safeBags: certBags }) },
        {
          privacyMode: 0,
          value: new pkijs.SafeContents({
            safeBags: [new pkijs.SafeBag({ bagId: OID_PKCS8_SHROUDED_KEY_BAG, bagValue: shrouded, bagAttributes: attributes })],
          }),
        },
      ],
    },
  });
  await authenticatedSafe.makeInternalValues({ safeContents: [{ password, ...PBES2_PARAMS }, {}] }, engine);

  // The MAC (RFC 7292 B.2 key, HMAC-SHA256) is computed by the engine's stampDataWithPassword (pkijs-runtime.ts).
  const pfx = new pkijs.PFX({ parsedValue: { integrityMode: 0, authenticatedSafe } });
  await pfx.makeInternalValues(
    { password, iterations: PKCS12_ITERATIONS, pbkdf2HashAlgorithm: { name: "SHA-256" }, hmacHashAlgorithm: "SHA-256" },
    engine,
  );
  return Buffer.from(pfx.toSchema().toBER(false));
}

/** Throws unless `bytes` is exactly one DER SEQUENCE (a cheap sanity check, not a parse). */
function requireDerSequence(bytes: Uint8Array, reason: "UnsupportedKeyFormat" | "InvalidCertificate", message: string): void {
  let ok: boolean;
  try {
    const top = readTlv(bytes, 0);
    ok = top.cls === UNIVERSAL && top.constructed && top.tag === TAG.SEQUENCE && top.end === bytes.length;
  } catch {
    ok = false;
  }
  if (!ok) throw new PkiError(reason, message);
}

export interface ParsedPkcs12 {
  /** PKCS#8 DER of every key bag, in file order. */
  readonly keysPkcs8Der: Buffer[];
  /** Every certificate, as PEM, in file order. */
  readonly certificatePems: string[];
}

/**
 * Reads a password-protected PKCS#12 file (PBES2 bags, HMAC MAC): verifies the MAC, decrypts every bag.
 * Throws PkiError(InvalidPKCS12) with a message telling a wrong password from a damaged file.
 */
export async function parsePkcs12(pfxDer: Uint8Array, password: string): Promise<ParsedPkcs12> {
  const pw = toArrayBuffer(new TextEncoder().encode(password));
  let pfx: pkijs.PFX;
  try {
    pfx = pkijs.PFX.fromBER(toArrayBuffer(pfxDer));
  } catch {
    throw new PkiError("InvalidPKCS12", "the PKCS#12 data is not a DER-encoded PFX structure");
  }
  try {
    await pfx.parseInternalValues({ password: pw, checkIntegrity: true }, engine);
  } catch {
    throw new PkiError("InvalidPKCS12", "the PKCS#12 integrity check failed: wrong password, or the file was altered");
  }
  const safe = pfx.parsedValue?.authenticatedSafe;
  if (!safe) throw new PkiError("InvalidPKCS12", "the PKCS#12 file has no authenticated safe");
  try {
    await safe.parseInternalValues({ safeContents: safe.safeContents.map(() => ({ password: pw })) }, engine);
  } catch {
    throw new PkiError("InvalidPKCS12", "a PKCS#12 bag could not be decrypted: unsupported encryption or wrong password");
  }
  const keysPkcs8Der: Buffer[] = [];
  const certificatePems: string[] = [];
  for (const content of safe.parsedValue?.safeContents ?? []) {
    for (const bag of content.value.safeBags) {
      if (bag.bagId === OID_CERT_BAG && bag.bagValue instanceof pkijs.CertBag) {
        // The certificate as stored in the bag, not pkijs' re-encoding of its parse of it.
        const certValue = bag.bagValue.certValue;
        if (bag.bagValue.parsedValue instanceof pkijs.Certificate && certValue instanceof asn1js.OctetString) {
          certificatePems.push(certificateToPem(certValue.valueBlock.valueHexView));
        }
      } else if (bag.bagId === OID_PKCS8_SHROUDED_KEY_BAG && bag.bagValue instanceof pkijs.PKCS8ShroudedKeyBag) {
        const encrypted = new pkijs.EncryptedData({
          encryptedContentInfo: new pkijs.EncryptedContentInfo({
            contentEncryptionAlgorithm: bag.bagValue.encryptionAlgorithm,
            encryptedContent: bag.bagValue.encryptedData,
          }),
        });
        try {
          keysPkcs8Der.push(Buffer.from(await encrypted.decrypt({ password: pw }, engine)));
        } catch {
          throw new PkiError("InvalidPKCS12", "the PKCS#12 key bag could not be decrypted with this password");
        }
      }
    }
  }
  return { keysPkcs8Der, certificatePems };
}
