/**
 * The object identifiers the PKI names itself. Everything @peculiar/asn1-x509 defines (extensions, key purposes,
 * CRL extensions) is used from there; this table holds what it does not define and the names we show for OIDs.
 */
import {
  id_kp_OCSPSigning,
  id_kp_clientAuth,
  id_kp_codeSigning,
  id_kp_emailProtection,
  id_kp_serverAuth,
  id_kp_timeStamping,
} from "@peculiar/asn1-x509";

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
