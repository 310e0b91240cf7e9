/**
 * Certificate authorities: generated (self-signed, pathlen 0) or brought by the user (a Secret with tls.crt
 * and tls.key), in which case the operator only signs with it and never rewrites it.
 */
import { X509Certificate as NodeX509Certificate } from "node:crypto";
import { ContentCache } from "./content-cache";
import { PkiError } from "./errors";
import { certificateDersFromPem, parsePrivateKey, pkcs8DerToPem } from "./encodings";
import { parseCertificate, type CertificateFacts } from "./certificate";
import {
  DEFAULT_KEY_SPEC,
  factsOfSpec,
  generateKeyPair,
  importSigningKey,
  importVerifyKey,
  resolveKeySpec,
  signingParamsFor,
  subtle,
  type CryptoKeyPair,
  type KeySpec,
  type SigningAlgorithm,
} from "./keys";
import { buildCertificate } from "./certificate-builder";
import { CLOCK_SKEW_MS, checkCommonName, checkDate, checkDuration, randomSerialNumber, toSecond } from "./issuance-rules";

export type CAOrigin = "Generated" | "Brought";

/** A CA we can sign with. */
export interface CertificateAuthority {
  /** The CA certificate alone, PEM. */
  readonly certPem: string;
  /**
   * Further certificates that came after the CA in a brought tls.crt (its own issuers, up to a root). They
   * belong in the trust bundle, and intermediates among them in the chain a leaf presents.
   */
  readonly chainPems: readonly string[];
  /** The CA key as PKCS#8 PEM (what caSecretData writes for a generated CA). */
  readonly keyPkcs8Pem: string;
  readonly keys: CryptoKeyPair;
  readonly facts: CertificateFacts;
  /** The signature algorithm this CA signs with (hash matched to its key). */
  readonly signing: SigningAlgorithm;
  readonly origin: CAOrigin;
}

export interface GenerateCAOptions {
  readonly commonName: string;
  /** Lifetime in milliseconds. */
  readonly duration: number;
  readonly key?: KeySpec;
  readonly now: Date;
  /**
   * Renew this CA with its own key instead of a new one (`key` is then ignored): with the same name too, every
   * certificate it signed chains to the new certificate as well.
   */
  readonly reuseKeyOf?: CertificateAuthority;
}

/**
 * Generates a self-signed CA: basicConstraints CA:TRUE pathlen:0 (critical; it signs leaves only),
 * keyUsage keyCertSign + cRLSign (critical), SKI, AKI = SKI. notBefore is back-dated by CLOCK_SKEW_MS.
 */
export async function generateCA(options: GenerateCAOptions): Promise<CertificateAuthority> {
  checkCommonName(options.commonName, "the CA common name");
  checkDuration(options.duration, "the CA duration");
  const now = options.now;
  checkDate(now, "now");
  const spec = resolveKeySpec(options.key ?? DEFAULT_KEY_SPEC);

  const keys = options.reuseKeyOf?.keys ?? (await generateKeyPair(spec));
  const signing = options.reuseKeyOf?.signing ?? signingParamsFor(factsOfSpec(spec)).sign;
  const facts = await buildCertificate({
    serialNumberHex: randomSerialNumber(),
    subjectCommonName: options.commonName,
    issuer: undefined,
    notBefore: toSecond(now.getTime() - CLOCK_SKEW_MS),
    notAfter: toSecond(now.getTime() + options.duration),
    spkiDer: Buffer.from(await subtle.exportKey("spki", keys.publicKey)),
    key: options.reuseKeyOf?.facts.key ?? factsOfSpec(spec),
    caPathLength: 0,
    keyUsage: ["keyCertSign", "cRLSign"],
    extendedKeyUsage: [],
    dnsNames: [],
    ipAddresses: [],
    signingKey: keys.privateKey,
    signing,
  });
  const pkcs8 = new Uint8Array(await subtle.exportKey("pkcs8", keys.privateKey));
  return {
    certPem: facts.pem,
    chainPems: [],
    keyPkcs8Pem: pkcs8DerToPem(pkcs8),
    keys,
    facts,
    signing,
    origin: "Generated",
  };
}

/**
 * Loads a CA brought by the user. tls.crt holds the CA certificate first, optionally followed by its own
 * issuers; tls.key its unencrypted private key (PKCS#8, or traditional EC/RSA PEM).
 *
 * Refused, with a reason an admin can act on: InvalidCertificate, EncryptedKeyUnsupported,
 * UnsupportedKeyFormat, NotACA (no basicConstraints CA:TRUE), MissingKeyCertSign / MissingCRLSign (a keyUsage
 * extension without them: PostgreSQL would reject the leaves or the CRL; a CA without any keyUsage extension
 * is accepted, as OpenSSL does), CAExpired (expired or not yet valid at `now`), UnsupportedKeyAlgorithm,
 * KeyMismatch.
 */
export async function loadCA(
  certPem: string | Uint8Array,
  keyPem: string | Uint8Array,
  now: Date,
): Promise<CertificateAuthority> {
  checkDate(now, "now");
  const bytes = (pem: string | Uint8Array) => (typeof pem === "string" ? Buffer.from(pem, "utf8") : pem);
  // Every reconcile of a database and of each of its connections loads the same CA: the parse, the key check and
  // the WebCrypto imports are done once per content (a refusal too: it depends on the bytes alone).
  const ca = await loadedCAs.get([bytes(certPem), bytes(keyPem)], () => loadCAContent(certPem, keyPem));
  const who = `the CA certificate "${ca.facts.subject}"`;
  if (now.getTime() >= ca.facts.notAfter.getTime()) {
    throw new PkiError("CAExpired", `${who} expired at ${ca.facts.notAfter.toISOString()}: renew or replace the CA`);
  }
  if (now.getTime() < ca.facts.notBefore.getTime()) {
    throw new PkiError(
      "CAExpired",
      `${who} is not valid before ${ca.facts.notBefore.toISOString()}: check the clock of the machine that made it, or wait`,
    );
  }
  return ca;
}

const loadedCAs = new ContentCache<Promise<CertificateAuthority>>(4096);

/** What loadCA finds from the bytes alone (everything but the validity period). */
async function loadCAContent(certPem: string | Uint8Array, keyPem: string | Uint8Array): Promise<CertificateAuthority> {
  const ders = certificateDersFromPemSafe(certPem);
  const facts = parseCertificate(ders[0] as Buffer, "the CA certificate (tls.crt)");
  const chain = ders.slice(1).map((der, i) => parseCertificate(der, `certificate #${i + 2} of the CA's tls.crt`).pem);
  const key = parsePrivateKey(keyPem);
  const who = `the CA certificate "${facts.subject}"`;

  if (!facts.isCA) {
    throw new PkiError(
      "NotACA",
      `${who} is not a CA certificate (it lacks basicConstraints CA:TRUE): bring a CA certificate and its key, not a server or client certificate`,
    );
  }
  if (facts.keyUsage && !facts.keyUsage.includes("keyCertSign")) {
    throw new PkiError(
      "MissingKeyCertSign",
      `${who} has a keyUsage extension without keyCertSign, so certificates it signs would be rejected: reissue the CA with keyUsage keyCertSign, cRLSign`,
    );
  }
  if (facts.keyUsage && !facts.keyUsage.includes("cRLSign")) {
    throw new PkiError(
      "MissingCRLSign",
      `${who} has a keyUsage extension without cRLSign, so PostgreSQL would reject the revocation list (ssl_crl_file) it signs ` +
        "and with it every client: reissue the CA with keyUsage keyCertSign, cRLSign",
    );
  }
  const params = signingParamsFor(key.facts); // throws UnsupportedKeyAlgorithm
  if (!new NodeX509Certificate(facts.der).checkPrivateKey(key.keyObject)) {
    throw new PkiError(
      "KeyMismatch",
      `the private key (tls.key, ${key.facts.description}) does not belong to ${who} (${facts.key.description}): put the CA's own key in tls.key`,
    );
  }
  const privateKey = await importSigningKey(key.pkcs8Der, key.facts);
  const publicKey = await importVerifyKey(facts.spkiDer, facts.key);
  return {
    certPem: facts.pem,
    chainPems: chain,
    keyPkcs8Pem: pkcs8DerToPem(key.pkcs8Der),
    keys: { privateKey, publicKey },
    facts,
    signing: params.sign,
    origin: "Brought",
  };
}

function certificateDersFromPemSafe(certPem: string | Uint8Array): Buffer[] {
  let ders: Buffer[];
  try {
    ders = certificateDersFromPem(certPem);
  } catch (cause) {
    throw new PkiError("InvalidCertificate", "the CA certificate (tls.crt) is damaged PEM", { cause });
  }
  if (ders.length === 0) {
    throw new PkiError("InvalidCertificate", 'the CA certificate (tls.crt) holds no PEM block "CERTIFICATE"');
  }
  return ders;
}

/**
 * The certificates a leaf signed by this CA should present after itself: the CA and its issuers, except
 * self-issued roots (the peer must already trust those; sending them only wastes bytes). Empty for a
 * generated CA, whose certificate is the root.
 */
export function presentedChain(ca: CertificateAuthority): string[] {
  if (ca.facts.selfIssued) return [];
  const chain = [ca.certPem];
  for (const pem of ca.chainPems) {
    if (!parseCertificate(pem).selfIssued) chain.push(pem);
  }
  return chain;
}
