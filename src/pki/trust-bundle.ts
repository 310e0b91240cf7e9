/**
 * Trust bundles (ca.crt): every CA currently trusted plus certificates an admin allowlisted on purpose.
 * The output depends only on the set of distinct certificates (deduplicated by SHA-256 fingerprint, sorted
 * by it, re-encoded canonically), so an unchanged set always yields identical bytes and a reconcile that
 * finds nothing new writes nothing.
 */
import { PkiError } from "./errors";
import { certificateDersFromPem } from "./encodings";
import { parseCertificate, type CertificateFacts } from "./certificate";

/**
 * Builds the PEM bundle. Each input string may hold one or several certificates. Throws
 * PkiError(InvalidCertificate) naming the bad entry, or EmptyTrustBundle when nothing is left to trust.
 */
export function buildTrustBundle(cas: readonly string[], allowlisted: readonly string[] = []): string {
  const byFingerprint = new Map<string, CertificateFacts>();
  const add = (pem: string, what: string): void => {
    const ders = certificateDersFromPem(pem);
    if (ders.length === 0) throw new PkiError("InvalidCertificate", `${what} holds no PEM block "CERTIFICATE"`);
    ders.forEach((der, i) => {
      const facts = parseCertificate(der, ders.length > 1 ? `${what}, certificate #${i + 1}` : what);
      byFingerprint.set(facts.fingerprintSha256, facts);
    });
  };
  cas.forEach((pem, i) => add(pem, `CA certificate #${i + 1}`));
  allowlisted.forEach((pem, i) => add(pem, `allowlisted certificate #${i + 1}`));
  if (byFingerprint.size === 0) {
    throw new PkiError("EmptyTrustBundle", "the trust bundle would be empty: at least one CA certificate is required");
  }
  return [...byFingerprint.keys()]
    .sort()
    .map((fp) => (byFingerprint.get(fp) as CertificateFacts).pem)
    .join("");
}

/** The SHA-256 fingerprints (lower-case hex) of the certificates in a bundle, in bundle order. */
export function trustBundleFingerprints(bundlePem: string | Uint8Array): string[] {
  return trustBundleEntries(bundlePem).map((c) => c.fingerprintSha256);
}

/** Facts of every certificate in a bundle, in bundle order (for status: subjects, expiries). */
export function trustBundleEntries(bundlePem: string | Uint8Array): CertificateFacts[] {
  return certificateDersFromPem(bundlePem).map((der, i) => parseCertificate(der, `trust bundle certificate #${i + 1}`));
}

/** Whether a bundle contains a certificate (by fingerprint). */
export function trustBundleContains(bundlePem: string | Uint8Array, certPem: string | Uint8Array): boolean {
  const wanted = parseCertificate(certPem).fingerprintSha256;
  return trustBundleFingerprints(bundlePem).includes(wanted);
}
