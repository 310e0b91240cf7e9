/**
 * The PKI's object identifiers. The extensions it writes and reads are named here once, from the @peculiar package
 * that defines them; key purposes and PKCS#12 bag types are used from there directly; the other tables hold what
 * the packages do not define.
 */
import {
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_cRLNumber,
  id_ce_cRLReasons,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  id_kp_OCSPSigning,
  id_kp_clientAuth,
  id_kp_codeSigning,
  id_kp_emailProtection,
  id_kp_serverAuth,
  id_kp_timeStamping,
} from "@peculiar/asn1-x509";

/** The certificate (RFC 5280 §4.2.1) and CRL (§5.2, §5.3) extensions the PKI writes and reads. */
export const EXTENSION_OIDS = {
  basicConstraints: id_ce_basicConstraints,
  keyUsage: id_ce_keyUsage,
  extKeyUsage: id_ce_extKeyUsage,
  subjectAltName: id_ce_subjectAltName,
  subjectKeyIdentifier: id_ce_subjectKeyIdentifier,
  authorityKeyIdentifier: id_ce_authorityKeyIdentifier,
  cRLNumber: id_ce_cRLNumber,
  cRLReasons: id_ce_cRLReasons,
} as const;

/** id-at-commonName (X.520). */
export const OID_COMMON_NAME = "2.5.4.3";

/** Short names of extended key usages, as CertificateFacts.extendedKeyUsage reports them. */
export const EXTENDED_KEY_USAGE_NAMES: Readonly<Record<string, string>> = {
  [id_kp_serverAuth]: "serverAuth",
  [id_kp_clientAuth]: "clientAuth",
  [id_kp_codeSigning]: "codeSigning",
  [id_kp_emailProtection]: "emailProtection",
  [id_kp_timeStamping]: "timeStamping",
  [id_kp_OCSPSigning]: "ocspSigning",
};

/** What PKCS#12 files name (RFC 8018 PBES2, RFC 3565 AES, RFC 7292 bag attributes), beyond asn1-pfx's bag types. */
export const PKCS12_OIDS = {
  pbes2: "1.2.840.113549.1.5.13",
  pbkdf2: "1.2.840.113549.1.5.12",
  hmacWithSHA1: "1.2.840.113549.2.7",
  hmacWithSHA256: "1.2.840.113549.2.9",
  hmacWithSHA384: "1.2.840.113549.2.10",
  hmacWithSHA512: "1.2.840.113549.2.11",
  aes128Cbc: "2.16.840.1.101.3.4.1.2",
  aes192Cbc: "2.16.840.1.101.3.4.1.22",
  aes256Cbc: "2.16.840.1.101.3.4.1.42",
  sha1: "1.3.14.3.2.26",
  sha256: "2.16.840.1.101.3.4.2.1",
  sha384: "2.16.840.1.101.3.4.2.2",
  sha512: "2.16.840.1.101.3.4.2.3",
  friendlyName: "1.2.840.113549.1.9.20",
  localKeyId: "1.2.840.113549.1.9.21",
} as const;
