/**
 * Key algorithms: what a spec may ask for, how keys are generated (RSA on the libuv thread pool, so a 1.4 s
 * RSA-4096 generation never blocks the event loop; an ECDSA leaf key in one synchronous call, cheaper than the
 * round trip), and which signature algorithm a given signing key uses.
 */
import { generateKeyPair as generateNodeKeyPair, generateKeyPairSync, webcrypto, type KeyObject } from "node:crypto";
import { availableParallelism } from "node:os";
import { PkiError } from "./errors";

export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;
/** Node's WebCrypto: key generation, signing and export run as jobs on the libuv thread pool. */
export const subtle: webcrypto.SubtleCrypto = webcrypto.subtle;

/** The keys the PKI generates and accepts; the CRD's enums and the spec validation take them from here. */
export const KEY_ALGORITHMS = ["ECDSA", "RSA"] as const;
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];
export const ECDSA_KEY_SIZES = [256, 384] as const;
export const RSA_KEY_SIZES = [2048, 3072, 4096] as const;
export type KeySize = (typeof ECDSA_KEY_SIZES)[number] | (typeof RSA_KEY_SIZES)[number];

/** What a user may ask for: ECDSA 256 (P-256) / 384 (P-384), RSA 2048 / 3072 / 4096. */
export interface KeySpec {
  readonly algorithm: KeyAlgorithm;
  readonly size: KeySize;
}

export const DEFAULT_KEY_SPEC: KeySpec = Object.freeze({ algorithm: "ECDSA", size: 256 });

const ECDSA_SIZES: readonly number[] = [256, 384];
const RSA_SIZES: readonly number[] = [2048, 3072, 4096];

/**
 * Validates a (possibly partial, possibly user-typed) key spec and applies defaults: no algorithm means
 * ECDSA, no size means 256 for ECDSA and 2048 for RSA. Throws PkiError(InvalidKeySpec) naming the allowed values.
 */
export function resolveKeySpec(input?: { algorithm?: string | undefined; size?: number | undefined }): KeySpec {
  const algorithm = input?.algorithm ?? "ECDSA";
  if (algorithm !== "ECDSA" && algorithm !== "RSA") {
    throw new PkiError("InvalidKeySpec", `key algorithm "${String(algorithm)}" is not supported: use ECDSA (default) or RSA`);
  }
  const size = input?.size ?? (algorithm === "ECDSA" ? 256 : 2048);
  const allowed = algorithm === "ECDSA" ? ECDSA_SIZES : RSA_SIZES;
  if (!allowed.includes(size)) {
    const hint = algorithm === "ECDSA" ? "256 (P-256) or 384 (P-384)" : "2048, 3072 or 4096";
    throw new PkiError("InvalidKeySpec", `key size ${String(size)} is not valid for ${algorithm}: use ${hint}`);
  }
  return { algorithm, size: size as KeySize };
}

/** Human form used in messages and status: "ECDSA P-256", "RSA 3072". */
export function describeKeySpec(spec: KeySpec): string {
  return spec.algorithm === "ECDSA" ? `ECDSA P-${spec.size}` : `RSA ${spec.size}`;
}

export type NamedCurve = "P-256" | "P-384" | "P-521";

/** Facts about any public or private key we meet (ours or brought by a user). */
export interface KeyFacts {
  /** "Other" for Ed25519, RSA-PSS, DSA…: we can read such certificates but not sign with such keys. */
  readonly algorithm: KeyAlgorithm | "Other";
  /** Curve size (256/384/521) or RSA modulus length; 0 when unknown. */
  readonly size: number;
  readonly namedCurve?: NamedCurve;
  /** "ECDSA P-256", "RSA 2048", "ed25519"… */
  readonly description: string;
}

const NODE_CURVES: Record<string, NamedCurve> = {
  prime256v1: "P-256",
  "P-256": "P-256",
  secp384r1: "P-384",
  "P-384": "P-384",
  secp521r1: "P-521",
  "P-521": "P-521",
};

/** Reads algorithm and size from a node:crypto KeyObject (public or private). */
export function keyFactsOf(key: KeyObject): KeyFacts {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === "ec") {
    const curve = details.namedCurve !== undefined ? NODE_CURVES[details.namedCurve] : undefined;
    if (!curve) {
      return { algorithm: "Other", size: 0, description: `EC curve ${details.namedCurve ?? "unknown"}` };
    }
    const size = Number(curve.slice(2));
    return { algorithm: "ECDSA", size, namedCurve: curve, description: `ECDSA ${curve}` };
  }
  if (type === "rsa") {
    const size = details.modulusLength ?? 0;
    return { algorithm: "RSA", size, description: `RSA ${size}` };
  }
  return { algorithm: "Other", size: 0, description: type ?? "unknown" };
}

/** The KeySpec a key corresponds to, or undefined when it is outside what we issue. */
export function keySpecOf(facts: KeyFacts): KeySpec | undefined {
  if (facts.algorithm === "ECDSA" && ECDSA_SIZES.includes(facts.size)) {
    return { algorithm: "ECDSA", size: facts.size as KeySize };
  }
  if (facts.algorithm === "RSA" && RSA_SIZES.includes(facts.size)) {
    return { algorithm: "RSA", size: facts.size as KeySize };
  }
  return undefined;
}

export type HashName = "SHA-256" | "SHA-384" | "SHA-512";

/** WebCrypto signature algorithm a signer uses. */
export interface SigningAlgorithm {
  readonly name: "ECDSA" | "RSASSA-PKCS1-v1_5";
  readonly hash: HashName;
}

export type ImportAlgorithm =
  | { readonly name: "ECDSA"; readonly namedCurve: NamedCurve }
  | { readonly name: "RSASSA-PKCS1-v1_5"; readonly hash: "SHA-256" };

/**
 * Keys we can sign with: ECDSA on P-256/P-384/P-521 (hash matched to the curve, as RFC 5480 recommends)
 * and RSA ≥ 2048 bits with PKCS#1 v1.5 + SHA-256 (what every PostgreSQL client stack accepts).
 * P-521 is accepted only for brought CAs; we never generate it.
 */
export function signingParamsFor(facts: KeyFacts): { import: ImportAlgorithm; sign: SigningAlgorithm } {
  if (facts.algorithm === "ECDSA" && facts.namedCurve) {
    const hash: HashName = facts.namedCurve === "P-256" ? "SHA-256" : facts.namedCurve === "P-384" ? "SHA-384" : "SHA-512";
    return { import: { name: "ECDSA", namedCurve: facts.namedCurve }, sign: { name: "ECDSA", hash } };
  }
  if (facts.algorithm === "RSA") {
    if (facts.size < 2048) {
      throw new PkiError(
        "UnsupportedKeyAlgorithm",
        `the key is ${facts.description}, which is too weak to sign with: use an RSA key of at least 2048 bits or ECDSA P-256/P-384`,
      );
    }
    return {
      import: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
      sign: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
    };
  }
  throw new PkiError(
    "UnsupportedKeyAlgorithm",
    `the key is ${facts.description}, which this operator cannot sign with: use ECDSA P-256/P-384 or RSA (≥ 2048 bits, PKCS#1 v1.5)`,
  );
}

export function factsOfSpec(spec: KeySpec): KeyFacts {
  return spec.algorithm === "ECDSA"
    ? { algorithm: "ECDSA", size: spec.size, namedCurve: `P-${spec.size}` as NamedCurve, description: describeKeySpec(spec) }
    : { algorithm: "RSA", size: spec.size, description: describeKeySpec(spec) };
}

/**
 * At most this many RSA generations run at once. Each keeps a CPU core fully busy for up to seconds; with as
 * many as the machine has cores, the event-loop thread has to wait for a time slice and its latency jumps
 * (measured on 2 cores: 6 concurrent RSA-4096 generations gave 100 ms stalls). One core stays for the loop.
 */
export const MAX_CONCURRENT_RSA_KEYGEN = Math.max(1, availableParallelism() - 1);

let rsaRunning = 0;
const rsaWaiting: Array<() => void> = [];

async function withRsaSlot<T>(work: () => Promise<T>): Promise<T> {
  if (rsaRunning >= MAX_CONCURRENT_RSA_KEYGEN) {
    await new Promise<void>((resolve) => rsaWaiting.push(resolve));
  } else {
    rsaRunning++;
  }
  try {
    return await work();
  } finally {
    // Hand the slot straight to the next waiter, or free it.
    const next = rsaWaiting.shift();
    if (next) next();
    else rsaRunning--;
  }
}

/**
 * Generates an extractable key pair. WebCrypto's generateKey runs on the libuv thread pool, so the event loop
 * stays responsive even for RSA-4096; RSA generations are also limited to MAX_CONCURRENT_RSA_KEYGEN at a time.
 */
export async function generateKeyPair(spec: KeySpec): Promise<CryptoKeyPair> {
  const checked = resolveKeySpec(spec);
  if (checked.algorithm === "ECDSA") {
    return subtle.generateKey({ name: "ECDSA", namedCurve: `P-${checked.size}` }, true, ["sign", "verify"]);
  }
  return withRsaSlot(() => subtle.generateKey(
    {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: checked.size,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    true,
    ["sign", "verify"],
  ));
}

/** A leaf's new key pair as the certificate and the Secret need it: never used to sign, so no CryptoKey. */
export interface EncodedKeyPair {
  readonly spkiDer: Buffer;
  readonly pkcs8Der: Buffer;
}

/** PKCS#8 encodings the crypto library wrote (well-formed by construction), so a consumer that checks foreign keys can skip them. */
const exportedPkcs8 = new WeakSet<Uint8Array>();

const SPKI_DER = { type: "spki", format: "der" } as const;
const PKCS8_DER = { type: "pkcs8", format: "der" } as const;

function generateRsaDerPair(modulusLength: number): Promise<{ publicKey: Buffer; privateKey: Buffer }> {
  return new Promise((resolve, reject) =>
    generateNodeKeyPair("rsa", { modulusLength, publicExponent: 0x10001, publicKeyEncoding: SPKI_DER, privateKeyEncoding: PKCS8_DER }, (err, publicKey, privateKey) =>
      err ? reject(err) : resolve({ publicKey, privateKey }),
    ),
  );
}

/**
 * Generates a leaf's key pair straight into DER. An ECDSA pair is one synchronous call of about 0.1 ms, where
 * WebCrypto's generate and two exports are three thread-pool round trips that cost more than the work; RSA stays
 * on the thread pool (seconds for 4096 bits), in the same slots as generateKeyPair.
 */
export async function generateLeafKeyPair(spec: KeySpec): Promise<EncodedKeyPair> {
  const checked = resolveKeySpec(spec);
  const pair =
    checked.algorithm === "ECDSA"
      ? generateKeyPairSync("ec", { namedCurve: `P-${checked.size}`, publicKeyEncoding: SPKI_DER, privateKeyEncoding: PKCS8_DER })
      : await withRsaSlot(() => generateRsaDerPair(checked.size));
  exportedPkcs8.add(pair.privateKey);
  return { spkiDer: pair.publicKey, pkcs8Der: pair.privateKey };
}

/** Imports a PKCS#8 private key for signing (extractable, so the CA Secret can be written back out). */
export async function importSigningKey(pkcs8Der: Uint8Array, facts: KeyFacts): Promise<CryptoKey> {
  const params = signingParamsFor(facts);
  return subtle.importKey("pkcs8", pkcs8Der, params.import, true, ["sign"]);
}

/** Imports an SPKI public key for verification. */
export async function importVerifyKey(spkiDer: Uint8Array, facts: KeyFacts): Promise<CryptoKey> {
  const params = signingParamsFor(facts);
  return subtle.importKey("spki", spkiDer, params.import, true, ["verify"]);
}

/** Whether `der` is a Buffer generateLeafKeyPair returned (key material is never written to after export). */
export function isExportedPkcs8(der: Uint8Array): boolean {
  return exportedPkcs8.has(der);
}
