/**
 * The pkijs crypto engine, bound to Node's WebCrypto explicitly rather than through pkijs' global registry.
 * The PKCS#12 MAC (the only user of stampDataWithPassword / verifyDataStampedWithPassword) is computed with the
 * RFC 7292 B.2 derivation of pkcs12-kdf.ts instead of pkijs' pure-JavaScript one (about a third of the cost of
 * building a .pfx, three times slower); the MAC is byte-for-byte the same.
 */
import { timingSafeEqual, webcrypto } from "node:crypto";
import * as pkijs from "pkijs";
import { bmpPassword, pkcs12KdfHashOf, pkcs12Mac } from "./pkcs12-kdf.js";

/**
 * pkijs hands the MAC code the password as bytes (we pass UTF-8) and turns them back into text the same way:
 * UTF-8 if the bytes re-encode to themselves, else one character per byte. Kept identical so a file verifies
 * under exactly the passwords it did before.
 */
function passwordText(bytes: ArrayBuffer): string {
  const raw = bytesOf(bytes);
  const text = new TextDecoder().decode(raw);
  const reencoded = new TextEncoder().encode(text);
  return reencoded.some((byte, i) => byte !== raw[i]) ? Buffer.from(raw).toString("latin1") : text;
}

/** The bytes of an ArrayBuffer or a view, without copying. */
function bytesOf(source: ArrayBuffer | ArrayBufferView): Uint8Array {
  return ArrayBuffer.isView(source) ? new Uint8Array(source.buffer, source.byteOffset, source.byteLength) : new Uint8Array(source);
}

function macOf(parameters: { password: ArrayBuffer; hashAlgorithm: string; salt: ArrayBuffer; iterationCount: number }, content: ArrayBuffer): Buffer {
  const hash = pkcs12KdfHashOf(parameters.hashAlgorithm);
  if (!hash) throw new Error(`unsupported PKCS#12 MAC hash algorithm: ${parameters.hashAlgorithm}`);
  return pkcs12Mac(
    hash,
    bmpPassword(passwordText(parameters.password)),
    bytesOf(parameters.salt),
    parameters.iterationCount,
    bytesOf(content),
  );
}

class NodeCryptoEngine extends pkijs.CryptoEngine {
  override async stampDataWithPassword(parameters: pkijs.CryptoEngineStampDataWithPasswordParams): Promise<ArrayBuffer> {
    return new Uint8Array(macOf(parameters, parameters.contentToStamp)).buffer;
  }

  override async verifyDataStampedWithPassword(parameters: pkijs.CryptoEngineVerifyDataStampedWithPasswordParams): Promise<boolean> {
    const mac = macOf(parameters, parameters.contentToVerify);
    const expected = bytesOf(parameters.signatureToVerify);
    return mac.length === expected.length && timingSafeEqual(mac, expected);
  }
}

export const pkijsEngine: pkijs.CryptoEngine = new NodeCryptoEngine({ name: "node-webcrypto", crypto: webcrypto });
