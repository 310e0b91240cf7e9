/**
 * The operator's one vocabulary: every reason it writes into a condition, an event, a log line or a metric label,
 * with what it means. `docs/runbook.md` has a section for each (a unit test holds the two together), and the
 * lower layers' own reason types (PKI errors, renewal policies, probe failures…) must stay inside this list.
 */
import type { CRLReason, PkiErrorReason, RenewalReason } from "../pki";
import type { ReloadFailureReason } from "../postgres/probe";

export const REASON_DESCRIPTIONS = {
  // Summaries
  Secured: "the database serves mTLS with the current material and refuses every other TCP path",
  Connected: "the connection holds a current certificate, its workloads mount it and a login with it succeeded",
  InvalidSpec: "the spec is invalid (the message names the field); nothing is written until it is fixed",

  // CA
  CAGenerated: "the operator generated the database's CA",
  CAProvided: "the CA brought in spec.ca.secretName is valid and used for signing",
  CASecretNotFound: "the CA Secret named by the spec does not exist",
  CASecretIncomplete: "the CA Secret lacks tls.crt or tls.key",
  CASecretInvalid: "the CA Secret holds no usable CA certificate and key",
  CASecretNotOurs: "a Secret with the generated CA's name exists and was not created by the operator",
  CARenewedSameKey: "the CA was renewed with its own key: every existing certificate chains to the new one",
  CARotationStarted: "a CA rotation started: clients trust old and new CA (Overlap)",
  CARotationPromoted: "the new CA signs; old and new are trusted (Reissuing)",
  CARotationRetiredOldCA: "the old CA's key is destroyed; only the new CA is trusted (Finishing)",
  CARotationCompleted: "the CA rotation finished",
  Overlap: "CA rotation phase: trust bundles hold old and new CA, the old CA signs",
  Reissuing: "CA rotation phase: the new CA signs, certificates are re-issued from it",
  Finishing: "CA rotation phase: the old CA is no longer trusted once the server reloads",
  Idle: "no CA rotation runs",
  SameKey: "CA renewal policy: renew the CA with its own key",

  // PKI (the PKI core's errors, surfaced in CA and certificate conditions)
  InvalidKeySpec: "the private key algorithm/size combination is not supported",
  InvalidArgument: "a certificate request had an invalid argument",
  InvalidDuration: "a certificate duration or renewBefore is not usable",
  InvalidCommonName: "the subject common name is not usable",
  InvalidDNSName: "a DNS name for the server certificate is invalid",
  InvalidIPAddress: "an IP address for the server certificate is invalid",
  NoSubjectAltNames: "the server certificate would have no subject alternative name",
  InvalidUserName: "the database user cannot be a certificate common name",
  InvalidCertificate: "a certificate could not be parsed",
  UnsupportedKeyFormat: "a private key is in a format the operator does not read",
  UnsupportedKeyAlgorithm: "a private key uses an algorithm the operator does not support",
  EncryptedKeyUnsupported: "the CA key is encrypted; bring it unencrypted in a Secret",
  KeyMismatch: "the private key does not match the certificate",
  NotACA: "the brought certificate is not a CA (basicConstraints CA:TRUE missing)",
  MissingKeyCertSign: "the brought CA lacks the keyCertSign key usage",
  MissingCRLSign: "the brought CA lacks the cRLSign key usage",
  CAExpired: "the CA certificate has expired",
  InvalidSerialNumber: "a serial number is not valid",
  InvalidCRL: "a CRL could not be parsed",
  InvalidCRLNumber: "a CRL number is not valid",
  EmptyTrustBundle: "a trust bundle would hold no certificate",
  InvalidPKCS12: "a PKCS#12 file could not be built or read",

  // Certificates (renewal policies and issuance)
  ServerCertificateIssued: "a new server certificate was issued (the message says why)",
  CertificateIssued: "a new client certificate was issued (the message says why)",
  MissingData: "renewal: the Secret lacks the certificate or key",
  Unparsable: "renewal: the stored certificate or key cannot be read",
  Revoked: "the certificate or connection is revoked by the database",
  RevokedByDatabase: "the SecureDatabase's trust.revocations names this connection",
  NotRevoked: "the database does not revoke this connection",
  Expired: "renewal: the certificate has expired (leader election: the Lease went unrenewed for its whole duration)",
  IssuerChanged: "renewal: the certificate was not issued by the current CA",
  SubjectChanged: "renewal: the subject differs from the spec",
  SANsChanged: "renewal: the subject alternative names differ from the spec",
  KeyAlgorithmChanged: "renewal: the key algorithm differs from the spec",
  KeySizeChanged: "renewal: the key size differs from the spec",
  DurationShortened: "renewal: the certificate lives longer than the shortened duration allows",
  ManualRotationRequested: "renewal: the rotate annotation has a new value",
  RenewalTimeReached: "renewal: the renewal time has come",
  UpToDate: "nothing to do: the material is current",
  Valid: "the certificate is current; the message gives serial, expiry and renewal time",
  SecretConflict: "the Secret to write exists and belongs to someone else; it is left untouched",

  // Trust and revocation
  MissingCRL: "CRL: there is none yet",
  UnparsableCRL: "CRL: the stored one cannot be read",
  RevocationsChanged: "CRL: the revoked serials changed",
  CRLRefreshDue: "CRL: its next update is near",
  CRLUpdated: "a new CRL was signed",
  RevocationUnresolved: "a revocation entry designates no certificate the operator can see",

  // Configuration
  Applied: "the managed blocks are in postgresql.conf and pg_hba.conf",
  ConfigApplied: "the managed blocks were written to the ConfigMap",
  ConfigMapNotFound: "the ConfigMap named by spec.postgres.configMapName does not exist",
  ConfigKeyMissing: "the ConfigMap lacks the postgresql.conf or pg_hba.conf key",
  ConfigMapClaimed: "another SecureDatabase manages this ConfigMap",
  ConfigRestored: "deletion: the managed blocks were removed from the ConfigMap and it was handed back to its owner",
  InvalidHbaRule: "an hba rule of the spec cannot be rendered safely",
  InvalidBlockBody: "a rendered managed block would be invalid",
  ManagedBlockCorrupt: "a managed block's markers are damaged",
  Finalized: "deletion is complete: what the operator wrote is removed and its finalizer let go",
  ReloadAfterCleanupFailed: "the managed blocks were removed but the server could not be reloaded",

  // Database workload
  WorkloadPatched: "the workload mounts what the operator planned",
  Mounted: "the server Secret is mounted into the database workload",
  NoWorkloads: "nothing to mount: no workload is named",
  WorkloadNotFound: "the named Deployment or StatefulSet does not exist",
  ContainerNotFound: "the named container is not in the workload",
  NoContainers: "the workload's pod template has no container",
  VolumeConflict: "a volume or mount of that name belongs to someone else",
  RolloutRequested: "the database workload was restarted so the server loads its files",
  RolloutRestart: "reload strategy: restart the database workload",

  // Reload
  Reloaded: "the server reloaded its configuration",
  MaterialChanged: "the served material changed: the server is reloaded",
  StillServingStale: "the server still serves the previous material: reloaded again",
  AwaitingKubelet: "reloaded again in the settle window after a reload, so files the kubelet lays down late are loaded",
  WaitingForFiles: "the server still serves the previous material: waiting for the kubelet to update the mounted files",
  WaitingForServer: "the server must come back before it can be reloaded",
  ManualReloadRequired: "reload strategy None: reload the server yourself",
  ReloadNotPermitted: "the admin user may not call pg_reload_conf()",
  ConfigurationInvalid: "the server refused the new configuration files",
  ReloadFailed: "the reload failed (the message gives the server's words)",

  // Live verification
  Verified: "a live mTLS connection found the current certificate served and plain TCP refused",
  ServingCurrentCertificate: "the server serves the current certificate",
  ServingPreviousCertificate: "the server still serves an older certificate",
  VerificationDisabled: "spec.verification.enabled is false",
  VerificationFailed: "a live verification failed (the message gives the server's words)",
  PlaintextAccepted: "the server accepts a plain-TCP startup: the managed hba block is not loaded",
  ServerNotServingTLS: "the server does not serve TLS",
  ClientCredentialsInvalid: "the client certificate or key given to the probe is unusable",
  Unreachable: "the server cannot be reached",
  Timeout: "the server did not answer in time",
  TLSHandshakeFailed: "the TLS handshake failed",
  ServerCertificateUntrusted: "the server's certificate does not chain to the trust bundle",
  ServerCertificateExpired: "the server's certificate has expired",
  HostnameMismatch: "the server's certificate does not name spec.host",
  ClientCertificateRejected: "the server refused the client certificate",
  HbaRejected: "no pg_hba.conf line admits this user from here",
  AuthenticationRejected: "the server refused the login",
  PasswordRequired: "the server asked for a password instead of a certificate",
  RoleMissing: "the database role does not exist",
  DatabaseMissing: "the database does not exist",
  PermissionDenied: "the role lacks a permission it needs",
  TooManyConnections: "the server has no free connection slot",
  ServerNotReady: "the server is starting up or shutting down",
  ConnectionLost: "the connection dropped",
  ServerError: "the server answered with an error (the message gives its words)",
  Unknown: "a reason read back from status that is not in this vocabulary",
  IdentityNotNeeded: "the operator's own client identity is not needed and was deleted",

  // ImagingConnection
  LoggedIn: "the operator logged in as the user with the issued certificate",
  ConnectionVerified: "a login with the issued certificate succeeded",
  DatabaseNotFound: "spec.databaseRef names no SecureDatabase",
  DatabaseDeleting: "the SecureDatabase is being deleted",
  DatabaseInvalid: "the SecureDatabase's spec is invalid",
  DatabaseNotReady: "the SecureDatabase has not finished setting up",
  WaitingForDatabase: "waiting for the SecureDatabase to report",
  WaitingForTrust: "the database does not serve and trust the signing CA yet",
  NamespaceNotWatched: "the database's namespace is not watched by the operator",
  NamespaceNotAllowed: "the SecureDatabase does not list this namespace in spec.allowedNamespaces",
  UserNotAdmitted: "no pg_hba.conf rule of the database admits this user",
  Patched: "the workload mounts the connection",
  Pending: "not done yet (the message says what): a workload not patched yet, or the next login not due",
  WorkloadConflict: "the workload cannot take this connection (the message says why)",
  MountsRestored: "a replaced pod template got the operator's mounts back",
  NotFound: "workload state: the workload or the container it names does not exist",
  Conflict: "workload state: the workload cannot take this connection (the message says why)",
  InvalidPort: "the port is not a TCP port",
  InvalidSSLMode: "the sslmode is not one CAST Imaging's clients understand",
  UnsafeIniValue: "a value would break the CAST .ini file (newline, bracket or separator)",
  ConflictingInstance: "two connections declare the same host:port with different identities in one .ini",
  InvalidIniFileName: "the CAST .ini file name is not a plain file name",
  DuplicateConnection: "the connection is listed twice for the workload",
  VolumeNameConflict: "the workload already has a volume of that name that is not ours",
  MountPathConflict: "the mount path is taken or overlaps another mount in the container",
  LibpqEnvConflict: "a PGSSL* variable is set by someone else or by another connection",

  // Operator runtime (log lines)
  Starting: "the operator process starts (the line gives its configuration)",
  InvalidArguments: "the command line or an environment variable is invalid; the process exits with status 2",
  StartupFailed: "the operator could not start (e.g. an unreadable kubeconfig); the process exits with status 1",
  ShuttingDown: "a SIGTERM or SIGINT: the reconciles in flight finish, the Lease is released, the process exits",
  CachesSynced: "every informer cache has synced",
  WatchError: "a watch failed and is restarted",
  HandlerError: "an informer event handler failed",
  ReconcileError: "a reconcile failed with an unclassified error and is retried with backoff",
  WriteConflict: "another writer created or changed the object between our read and our write: retried with backoff",
  EventWriteFailed: "an event could not be recorded",
  LeaseCreated: "the leader-election Lease was created",
  LeaseReleased: "the Lease was released: by the leader that stops, and taken over by the replica that follows",
  LeaseExpired: "this replica took over a Lease its holder left unrenewed for the whole lease duration",
  LeaseReleaseFailed: "the Lease could not be released",
  LeaseError: "the Lease could not be read or written",
  LeadershipLost: "the leader could not renew the Lease and stops",
  Released: "leader election: the Lease has no holder and is taken over at once (logged as LeaseReleased)",
} as const satisfies Record<string, string>;

export type Reason = keyof typeof REASON_DESCRIPTIONS;

/** Each reason as a constant: `Reason.Secured === "Secured"`. */
export const Reason = Object.fromEntries(Object.keys(REASON_DESCRIPTIONS).map((r) => [r, r])) as { readonly [R in Reason]: R };

export function isReason(value: string): value is Reason {
  return Object.hasOwn(REASON_DESCRIPTIONS, value);
}

/** A reason read back from status (written by us, typed string on the wire); anything else is unknown. */
export function asReason(value: string): Reason {
  return isReason(value) ? value : "Unknown";
}

// The lower layers keep their own reason types; these lines fail to compile when one of them leaves the vocabulary.
type Within<T extends Reason> = T;
export type LowerLayerReasons = Within<
  PkiErrorReason | RenewalReason | CRLReason | ReloadFailureReason
>;
