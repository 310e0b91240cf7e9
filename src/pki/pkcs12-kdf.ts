/**
 * The PKCS#12 key derivation function of RFC 7292 appendix B.2 (OpenSSL's "PKCS12KDF"), used for the key of the
 * HMAC over a .pfx file (ID 3, B.4). WebCrypto has no PKCS#12 KDF; node:crypto's hashes and HMAC, called
 * directly, do the 2048 iterations in about 2 ms.
 */
import { createHash, createHmac, hash as digestOnce } from "node:crypto";

export type Pkcs12KdfHash = "sha1" | "sha256" | "sha384" | "sha512";

/** u (output bytes) and v (block bytes) of each hash, RFC 7292 B.2. */
const HASH_SIZES: Readonly<Record<Pkcs12KdfHash, { readonly u: number; readonly v: number }>> = {
  sha1: { u: 20, v: 64 },
  sha256: { u: 32, v: 64 },
  sha384: { u: 48, v: 128 },
  sha512: { u: 64, v: 128 },
};

/** The diversifier ID of RFC 7292 B.3: 1 encryption key, 2 IV, 3 MAC key. */
export const PKCS12_KDF_ID = { key: 1, iv: 2, mac: 3 } as const;

/** The hash a WebCrypto-style name ("SHA-256", "sha256") denotes, or undefined if B.2 is not defined for it here. */
export function pkcs12KdfHashOf(name: string): Pkcs12KdfHash | undefined {
  const normalised = name.toLowerCase().replace("-", "");
  return Object.hasOwn(HASH_SIZES, normalised) ? (normalised as Pkcs12KdfHash) : undefined;
}

/**
 * The password as RFC 7292 B.1 wants it: a BMPString (big-endian UTF-16 code units, which is also what
 * OpenSSL's PKCS12_key_gen_utf8 produces for characters beyond the BMP) followed by two zero bytes.
 */
export function bmpPassword(password: string): Buffer {
  const out = Buffer.alloc(password.length * 2 + 2);
  for (let i = 0; i < password.length; i++) out.writeUInt16BE(password.charCodeAt(i), i * 2);
  return out;
}

/** `source` repeated (and truncated) to the next multiple of `v` bytes; empty stays empty (RFC 7292 B.2 steps 2-3). */
function fillToBlocks(source: Uint8Array, v: number): Buffer {
  const out = Buffer.alloc(v * Math.ceil(source.length / v));
  for (let i = 0; i < out.length; i++) out[i] = source[i % source.length] as number;
  return out;
}

/**
 * RFC 7292 appendix B.2: `length` bytes derived from a password (already a BMPString, see bmpPassword), salt
 * and iteration count, for the purpose `id` (PKCS12_KDF_ID).
 */
export function pkcs12Kdf(
  hash: Pkcs12KdfHash,
  id: number,
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
  length: number,
): Buffer {
  const { u, v } = HASH_SIZES[hash];
  if (!Number.isSafeInteger(iterations) || iterations < 1) throw new RangeError("PKCS#12 KDF iteration count must be a positive integer");
  const D = Buffer.alloc(v, id);
  const I = Buffer.concat([fillToBlocks(salt, v), fillToBlocks(password, v)]);
  const blocks = Math.ceil(length / u);
  const out = Buffer.alloc(blocks * u);
  for (let i = 0; i < blocks; i++) {
    // A_i = H^r(D || I)
    const first = createHash(hash).update(D).update(I).digest();
    const A = iterateHash(hash, first, iterations - 1);
    A.copy(out, i * u);
    if (i + 1 === blocks) break;
    // I_j = (I_j + B + 1) mod 2^(8v) for each v-byte block I_j of I, where B is A_i repeated to v bytes.
    const B = fillToBlocks(A, v);
    for (let j = 0; j < I.length; j += v) {
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        const sum = (I[j + k] as number) + (B[k] as number) + carry;
        I[j + k] = sum & 0xff;
        carry = sum >>> 8;
      }
    }
  }
  return out.subarray(0, length);
}

/**
 * The MacData digest of a PFX (RFC 7292 §4 and B.4): HMAC over `content` keyed with the ID-3 derivation, whose
 * length is the hash's output size.
 */
export function pkcs12Mac(
  hash: Pkcs12KdfHash,
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
  content: Uint8Array,
): Buffer {
  const key = pkcs12Kdf(hash, PKCS12_KDF_ID.mac, password, salt, iterations, HASH_SIZES[hash].u);
  return createHmac(hash, key).update(content).digest();
}

/**
 * `digest` hashed `count` more times, one node:crypto call each: a hand-written SHA-256 would be about three times
 * faster here (the call overhead dominates a single-block hash), but a security tool should not carry its own
 * hash implementation.
 */
function iterateHash(hash: Pkcs12KdfHash, digest: Buffer, count: number): Buffer {
  let a = digest;
  for (let r = 0; r < count; r++) a = digestOnce(hash, a, "buffer");
  return a;
}
