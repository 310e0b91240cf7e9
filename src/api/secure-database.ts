/** The SecureDatabase resource (mtls.imaging.dev/v1alpha1): spec and status, as a user or the operator writes them. */
import type {
  API_VERSION,
  CAMode,
  CARotationPhase,
  CARotationPolicy,
  CertificatePolicySpec,
  Condition,
  DatabaseWorkloadKind,
  HbaClientCertificateMode,
  ObjectMeta,
  PostgresConfiguration,
  ReloadStrategy,
  RevocationReason,
  SECURE_DATABASE,
  TLSVersion,
} from "./common";

export interface CASpec extends CertificatePolicySpec {
  /** Default Generated. */
  mode?: CAMode;
  /** Required for Provided; default "<name>-ca" for Generated. */
  secretName?: string;
  /** Default "<name>.<namespace> mTLS CA". */
  commonName?: string;
  /** CA rotation: wait this long after every Secret is updated before the next phase. Default "2m". */
  propagationDelay?: string;
  /** Default NewKey. */
  rotationPolicy?: CARotationPolicy;
}

export interface ServerCertificateSpec extends CertificatePolicySpec {
  /** Default "<name>-server-tls". */
  secretName?: string;
}

export interface HbaRule {
  /** Default ["all"]; required, and names only, with clientCertificate none. */
  databases?: string[];
  /** Default ["all"]; required, and names only, with clientCertificate none. */
  users?: string[];
  /** IPs or CIDRs. Default ["0.0.0.0/0", "::/0"]. */
  addresses?: string[];
  /** Default verify-full; none: the role's password over TLS, no client certificate. */
  clientCertificate?: HbaClientCertificateMode;
}

export interface HbaSpec {
  /** Default [{}] (one rule, all defaults). */
  rules?: HbaRule[];
}

export interface PostgresSpec {
  /** Default ConfigMap when configMapName is set; otherwise required. */
  configuration?: PostgresConfiguration;
  /** The ConfigMap holding the server's postgresql.conf and pg_hba.conf (configuration ConfigMap only). */
  configMapName?: string;
  /** Default "postgresql.conf". */
  postgresqlConfKey?: string;
  /** Default "pg_hba.conf". */
  hbaConfKey?: string;
  /** Default "/etc/postgresql/tls". */
  certificateDirectory?: string;
  /** Default TLSv1.2. */
  minTLSVersion?: TLSVersion;
  hba?: HbaSpec;
  /** CommandLine: where the operator's own pg_hba.conf is mounted. Default "/etc/postgresql/mtls". */
  configDirectory?: string;
  /** CommandLine: the image's entrypoint the settings are appended to. Default "docker-entrypoint.sh" (official image). */
  entrypoint?: string;
}

export interface DatabaseWorkloadRef {
  kind: DatabaseWorkloadKind;
  name: string;
  /** Default: the first container of the pod template. */
  container?: string;
}

export interface ReloadSpec {
  /** Default SQL. */
  strategy?: ReloadStrategy;
  /** Default "postgres". */
  adminUser?: string;
  /** Default "postgres". */
  database?: string;
}

export interface DatabaseVerificationSpec {
  /** Default true. */
  enabled?: boolean;
  /** Go duration, default "5m". */
  interval?: string;
  /** "host:port"; default host:port of the spec. */
  endpoint?: string;
}

export interface AllowlistEntry {
  name: string;
  /** One PEM certificate. */
  certificate: string;
}

export interface Revocation {
  /** Hex, optionally colon-separated. */
  serialNumber?: string;
  /** 64 hex digits, optionally colon-separated. */
  sha256Fingerprint?: string;
  connectionName?: string;
  /** Default: the SecureDatabase's namespace. */
  connectionNamespace?: string;
  /** Default unspecified. */
  reason?: RevocationReason;
}

export interface TrustSpec {
  allowlist?: AllowlistEntry[];
  revocations?: Revocation[];
  /**
   * Deleting an ImagingConnection, or its losing access (namespace no longer allowed, user no longer admitted),
   * revokes the certificates issued to it that have not expired. Default true.
   */
  revokeOnDelete?: boolean;
}

/**
 * Who may request which identity from the database's CA: ImagingConnections of the named namespaces, for the named
 * roles (and databases), up to a lifetime, mounted into workloads or not. Nothing the grants do not name is issued.
 */
export interface AccessGrant {
  /** Default (with no namespaceSelector either): the SecureDatabase's own namespace. */
  namespaces?: string[];
  /** Namespaces whose labels match (besides those listed); needs the cluster-wide install, which reads namespaces. */
  namespaceSelector?: { matchLabels: Record<string, string> };
  /** PostgreSQL roles (certificate CNs), names only; never the reload admin role. */
  users: string[];
  /** Default: any database the server's rules let these users into. */
  databases?: string[];
  /** The longest client certificate lifetime a connection may request. Default "2160h". */
  maxDuration?: string;
  /** Whether connections may mount the identity into Deployments/StatefulSets of their namespace. Default false. */
  mountIntoWorkloads?: boolean;
}

export interface SecureDatabaseSpec {
  host: string;
  /** Default 5432. */
  port?: number;
  additionalDNSNames?: string[];
  additionalIPAddresses?: string[];
  ca?: CASpec;
  serverCertificate?: ServerCertificateSpec;
  postgres: PostgresSpec;
  workloadRef?: DatabaseWorkloadRef;
  reload?: ReloadSpec;
  verification?: DatabaseVerificationSpec;
  /** Deprecated: grants nothing since spec.access; kept so stored objects stay valid. */
  allowedNamespaces?: string[];
  /** The identities ImagingConnections may obtain. Default: none. */
  access?: AccessGrant[];
  trust?: TrustSpec;
}

export interface CAStatus {
  secretName?: string;
  /** `<namespace>/<name>` of the Secret that holds the CA's private key (the key namespace, for a generated CA). */
  keySecret?: string;
  serialNumber?: string;
  subject?: string;
  notBefore?: string;
  notAfter?: string;
  fingerprintSHA256?: string;
}

export interface ServerCertificateStatus {
  secretName?: string;
  serialNumber?: string;
  notBefore?: string;
  notAfter?: string;
  renewalTime?: string;
  dnsNames?: string[];
  ipAddresses?: string[];
  /** The mtls.imaging.dev/rotate value the current certificate was issued for. */
  lastRotationToken?: string;
}

export interface DatabaseVerificationStatus {
  endpoint?: string;
  servedSerialNumber?: string;
  matchesCurrent?: boolean;
  lastAttemptTime?: string;
  lastSuccessTime?: string;
  message?: string;
}

export interface ReloadStatus {
  lastReloadTime?: string;
  strategy?: string;
  /** Hash of the material the last reload applied. */
  appliedHash?: string;
  message?: string;
}

export interface ConfigMapStatus {
  name?: string;
  resourceVersion?: string;
  postgresqlConfHash?: string;
  hbaConfHash?: string;
}

/** Where the server reads its configuration from, as the operator worked it out, and what it does about it. */
export interface ServerConfigurationStatus {
  configuration?: PostgresConfiguration;
  /** postgresql.conf as the server reads it: path and source (e.g. "ConfigMap pg (key postgresql.conf, live)"). */
  postgresqlConf?: string;
  /** pg_hba.conf as the server reads it. */
  hbaFile?: string;
  /** The settings on the server's command line that outrank postgresql.conf, as found ("-c ssl_cert_file=…"). */
  commandLineSettings?: string[];
  /** Who applies the configuration's objects besides the operator (e.g. "Helm release castimaging-v3"). */
  owner?: string;
  /** The operator's own ConfigMap: pg_hba.conf (CommandLine), or the lines for the DBA (External). */
  configMapName?: string;
  message?: string;
}

export interface CARotationStatus {
  phase?: CARotationPhase;
  startedTime?: string;
  phaseTime?: string;
  oldCASerial?: string;
  newCASerial?: string;
  /** When every consumer was first seen ready in this phase; the phase advances propagationDelay after it. */
  readyTime?: string;
  message?: string;
}

export interface AllowlistedStatus {
  name?: string;
  fingerprintSHA256?: string;
  subject?: string;
  notAfter?: string;
}

export interface TrustStatus {
  allowlisted?: AllowlistedStatus[];
  revokedSerials?: string[];
  crlNumber?: number;
  crlNextUpdate?: string;
}

/** A password rule in force (spec.postgres.hba.rules[rule] with clientCertificate none). */
export interface PasswordAccessStatus {
  /** Index in spec.postgres.hba.rules. */
  rule?: number;
  users?: string[];
  databases?: string[];
  addresses?: string[];
}

export interface SecureDatabaseStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  ca?: CAStatus;
  serverCertificate?: ServerCertificateStatus;
  verification?: DatabaseVerificationStatus;
  reload?: ReloadStatus;
  configMap?: ConfigMapStatus;
  server?: ServerConfigurationStatus;
  caRotation?: CARotationStatus;
  trust?: TrustStatus;
  /** Who may log in with a password over TLS instead of a client certificate; absent when nobody may. */
  passwordAccess?: PasswordAccessStatus[];
}

export interface SecureDatabase {
  apiVersion: typeof API_VERSION;
  kind: typeof SECURE_DATABASE.kind;
  metadata: ObjectMeta;
  spec: SecureDatabaseSpec;
  status?: SecureDatabaseStatus;
}
