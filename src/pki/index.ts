/**
 * The PKI core: pure certificate logic, independent of Kubernetes. Everything a reconciler needs goes
 * through this module; the other files of src/pki are implementation detail.
 */
export { PkiError, isPkiError, type PkiErrorReason } from "./errors";
export {
  DEFAULT_KEY_SPEC,
  MAX_CONCURRENT_RSA_KEYGEN,
  describeKeySpec,
  generateKeyPair,
  keySpecOf,
  resolveKeySpec,
  type CryptoKey,
  type CryptoKeyPair,
  type KeyAlgorithm,
  type KeyFacts,
  type KeySize,
  type KeySpec,
  type NamedCurve,
  type SigningAlgorithm,
} from "./keys";
export {
  fingerprintSha256,
  isIssuedBy,
  normalizeDNSName,
  normalizeFingerprint,
  normalizeIPAddress,
  normalizeSerialNumber,
  parseCertificate,
  parseCertificates,
  serialNumberFromDecimal,
  serialNumberToDecimal,
  type CertificateFacts,
  type KeyUsageName,
} from "./certificate";
export { CLOCK_SKEW_MS, randomSerialNumber } from "./issuance-rules";
export {
  generateCA,
  loadCA,
  presentedChain,
  type CAOrigin,
  type CertificateAuthority,
  type GenerateCAOptions,
} from "./ca";
export {
  MAX_DATABASE_USER_BYTES,
  databaseUserProblem,
  issueClientCertificate,
  issueServerCertificate,
  loadIssuedCertificate,
  resolveServerNames,
  validateDatabaseUser,
  type ClientCertificateRequest,
  type IssuedCertificate,
  type ServerCertificateRequest,
  type ServerNames,
} from "./leaf";
export {
  DEFAULT_RENEW_BEFORE_MAX_MS,
  RENEWAL_POLICIES,
  evaluateRenewal,
  expired,
  issuerChanged,
  keyAlgorithmChanged,
  keyMismatch,
  keySizeChanged,
  lifetimeExceedsPolicy,
  manualRotationRequested,
  missingData,
  renewalTime,
  renewalWindow,
  renewalTimeReached,
  revoked,
  sansChanged,
  subjectChanged,
  unparsable,
  type DesiredCertificate,
  type DesiredClientCertificate,
  type DesiredServerCertificate,
  type RenewBefore,
  type RenewalDecision,
  type RenewalPolicy,
  type RenewalReason,
  type SecretData,
} from "./renewal";
export { buildTrustBundle, trustBundleContains, trustBundleEntries, trustBundleFingerprints } from "./trust-bundle";
export {
  buildCrlBundle,
  crlDecision,
  crlIssuedBy,
  issueCRL,
  parseCRL,
  parseCRLs,
  type CRLDecision,
  type CRLReason,
  type CRLRequest,
  type DesiredCRL,
  type ParsedCRL,
  type RevocationReason,
  type RevokedEntry,
} from "./crl";
export {
  certificateToPem,
  decodePem,
  encodePem,
  parsePrivateKey,
  pkcs8DerToPem,
  pkcs8PemToDer,
  type ParsedPrivateKey,
  type PemBlock,
} from "./encodings";
export { buildPkcs12, generatePfxPassword, type Pkcs12Input } from "./pkcs12";
export {
  SECRET_KEYS,
  caSecretData,
  clientSecretData,
  operatorIdentitySecretData,
  secretDataEqual,
  serverSecretData,
  type ClientSecretInput,
  type SecretPayload,
} from "./secret-layout";
