/**
 * Encodings the clients need: certificate PEM, private key as PKCS#8 PEM (libpq) and PKCS#8 DER (the
 * PostgreSQL JDBC driver rejects a PEM key), and the readers for each, so brought material and our own Secrets
 * can be checked. PKCS#12 is pkcs12.ts.
 */
import { createPrivateKey, type KeyObject } from "node:crypto";
import { PkiError } from "./errors";
import { keyFactsOf, type KeyFacts } from "./keys";

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

/**
 * The same trust bundles and CA chains are decoded at every reconcile: the last texts decoded, the least recently
 * used going first past the bound. The DERs are shared between callers, which only read them.
 */
const decodedCertificates = new Map<string, readonly Buffer[]>();
const DECODED_CERTIFICATES_BOUND = 256;

/** DER of every certificate in a PEM text (a single certificate, a chain or a bundle). */
export function certificateDersFromPem(text: string | Uint8Array): Buffer[] {
  const source = typeof text === "string" ? text : Buffer.from(text).toString("latin1");
  let ders = decodedCertificates.get(source);
  if (ders) decodedCertificates.delete(source);
  else ders = decodePem(source).filter((b) => b.label === "CERTIFICATE").map((b) => b.der);
  decodedCertificates.set(source, ders);
  if (decodedCertificates.size > DECODED_CERTIFICATES_BOUND) decodedCertificates.delete(decodedCertificates.keys().next().value!);
  return [...ders];
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
