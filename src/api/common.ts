/**
 * What the two custom resources (mtls.imaging.dev/v1alpha1) share: the fixed names of ARCHITECTURE.md §2, the
 * enumerations, the condition types and the shapes both kinds use. The shapes of each kind live in
 * secure-database.ts and imaging-connection.ts; types.ts gathers all three.
 *
 * The spec interfaces describe an object as a user may write it: every field the CRD defaults is optional here,
 * because objects can come from an older CRD, from a unit test, or from a manifest before the API server defaulted
 * it. `defaults.ts` turns a spec into a fully resolved one. The CRD files in crds/ are the reference for each
 * field's meaning; test/unit/api checks that these types, their decoders and the CRD schemas name the same fields.
 */

import type { KeyAlgorithm, RevocationReason } from "../pki";

// ---------------------------------------------------------------------------------------------------------------
// Names (ARCHITECTURE.md §2)

export const GROUP = "mtls.imaging.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = "mtls.imaging.dev/v1alpha1";
export const CATEGORY = "mtls";

export const SECURE_DATABASE = {
  kind: "SecureDatabase",
  listKind: "SecureDatabaseList",
  plural: "securedatabases",
  singular: "securedatabase",
  shortName: "sdb",
} as const;

export const IMAGING_CONNECTION = {
  kind: "ImagingConnection",
  listKind: "ImagingConnectionList",
  plural: "imagingconnections",
  singular: "imagingconnection",
  shortName: "imc",
} as const;

export type ResourceKind = typeof SECURE_DATABASE.kind | typeof IMAGING_CONNECTION.kind;

export const OPERATOR_NAME = "imaging-db-mtls-operator";
export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
export const MANAGED_BY_VALUE = OPERATOR_NAME;
export const OWNER_LABEL = "mtls.imaging.dev/owner";
/**
 * On what the operator keeps outside its owner's namespace (a database's CA keys, in the key namespace): the
 * owner's namespace, since an owner reference cannot cross namespaces.
 */
export const OWNER_NAMESPACE_LABEL = "mtls.imaging.dev/owner-namespace";
export const FINALIZER = "mtls.imaging.dev/cleanup";
/**
 * Manual rotation, GitOps-friendly: a new value of this annotation re-issues the certificate once (the server
 * certificate on a SecureDatabase, the client certificate on an ImagingConnection); an unchanged value never
 * again. The value last acted on is kept in status (lastRotationToken).
 */
export const ROTATE_ANNOTATION = "mtls.imaging.dev/rotate";
export const FIELD_MANAGER = OPERATOR_NAME;

/** Kubernetes label values are at most 63 characters. */
export const MAX_LABEL_VALUE_LENGTH = 63;

/** Value of the owner label on everything the operator creates for an object: `<kind>.<name>`. */
export function ownerLabelValue(kind: ResourceKind, name: string): string {
  return `${kind}.${name}`;
}

/** The longest metadata.name each kind accepts (enforced by the CRDs), so the owner label value stays valid. */
export const MAX_NAME_LENGTH: Readonly<Record<ResourceKind, number>> = {
  SecureDatabase: MAX_LABEL_VALUE_LENGTH - "SecureDatabase.".length,
  ImagingConnection: MAX_LABEL_VALUE_LENGTH - "ImagingConnection.".length,
};

/** The labels the operator puts on everything it creates for an object. */
export function managedLabels(kind: ResourceKind, name: string): Record<string, string> {
  return { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [OWNER_LABEL]: ownerLabelValue(kind, name) };
}

// ---------------------------------------------------------------------------------------------------------------
// Enumerations (kept as const tuples so decoders and validation share them with the types)

export { ECDSA_KEY_SIZES, KEY_ALGORITHMS, RSA_KEY_SIZES, type KeyAlgorithm } from "../pki";

export const CA_MODES = ["Generated", "Provided"] as const;
export type CAMode = (typeof CA_MODES)[number];

export const TLS_VERSIONS = ["TLSv1.2", "TLSv1.3"] as const;
export type TLSVersion = (typeof TLS_VERSIONS)[number];

/**
 * pg_hba.conf client-certificate policy of a rule: verify-full = `cert clientcert=verify-full`, verify-ca =
 * `scram-sha-256 clientcert=verify-ca`, none = `scram-sha-256` (a password over TLS, for named users and databases only).
 */
export const HBA_CLIENT_CERTIFICATE_MODES = ["verify-full", "verify-ca", "none"] as const;
export type HbaClientCertificateMode = (typeof HBA_CLIENT_CERTIFICATE_MODES)[number];

/**
 * How the server gets the operator's settings. ConfigMap: managed blocks in the server's own postgresql.conf and
 * pg_hba.conf keys. CommandLine: settings appended to the container's command line (they outrank every file) and a
 * pg_hba.conf of the operator's own, for servers whose configuration belongs to a chart. External: a server outside
 * the cluster: the operator publishes the files and the lines, the DBA applies them.
 */
export const POSTGRES_CONFIGURATIONS = ["ConfigMap", "CommandLine", "External"] as const;
export type PostgresConfiguration = (typeof POSTGRES_CONFIGURATIONS)[number];

export const DATABASE_WORKLOAD_KINDS = ["StatefulSet", "Deployment"] as const;
export type DatabaseWorkloadKind = (typeof DATABASE_WORKLOAD_KINDS)[number];

export const RELOAD_STRATEGIES = ["SQL", "RolloutRestart", "None"] as const;
export type ReloadStrategy = (typeof RELOAD_STRATEGIES)[number];

/** The CRL reasons the PKI writes (its RevocationReason), listed for the decoder; the record keeps the list complete. */
const REVOCATION_REASON_SET: Readonly<Record<RevocationReason, true>> = {
  unspecified: true,
  keyCompromise: true,
  superseded: true,
  cessationOfOperation: true,
  affiliationChanged: true,
};
export const REVOCATION_REASONS = Object.keys(REVOCATION_REASON_SET) as readonly RevocationReason[];
export type { RevocationReason };

export const SSL_MODES = ["verify-full", "verify-ca"] as const;
export type SSLMode = (typeof SSL_MODES)[number];

export const WORKLOAD_KINDS = ["Deployment", "StatefulSet"] as const;
export type WorkloadKind = (typeof WORKLOAD_KINDS)[number];

export const CONDITION_STATUSES = ["True", "False", "Unknown"] as const;
export type ConditionStatus = (typeof CONDITION_STATUSES)[number];

export const CA_ROTATION_POLICIES = ["NewKey", "SameKey"] as const;
export type CARotationPolicy = (typeof CA_ROTATION_POLICIES)[number];

export const CA_ROTATION_PHASES = ["Idle", "Overlap", "Reissuing", "Finishing"] as const;
export type CARotationPhase = (typeof CA_ROTATION_PHASES)[number];

/**
 * Patched: mounts our Secret and .ini (live mount). Delivered: carries the chart's own client contract, filled and
 * rolled out with the current material. Restarting / WaitingForRestart: its pods are being (or wait their turn to
 * be) restarted so the chart's init container copies the new material. LeftAlone: found in the release, given
 * nothing (the message says why).
 */
export const WORKLOAD_STATES = ["Patched", "Delivered", "Restarting", "WaitingForRestart", "Pending", "NotFound", "Conflict", "LeftAlone"] as const;
export type WorkloadState = (typeof WORKLOAD_STATES)[number];

// ---------------------------------------------------------------------------------------------------------------
// Condition types

export const SECURE_DATABASE_CONDITIONS = {
  /** Summary: the server serves the current certificate and only accepts client certificates. */
  Ready: "Ready",
  /** The CA (generated or provided) is present, valid and usable for signing. */
  CAReady: "CAReady",
  /** The server certificate in the server Secret is current. */
  ServerCertificateReady: "ServerCertificateReady",
  /** The managed blocks of postgresql.conf and pg_hba.conf are in the ConfigMap. */
  ConfigApplied: "ConfigApplied",
  /** The server Secret is mounted into spec.workloadRef (absent without one). */
  WorkloadPatched: "WorkloadPatched",
  /** The server was reloaded (or restarted) after the last change. */
  Reloaded: "Reloaded",
  /** A live mTLS connection showed the server serves the current certificate. */
  Verified: "Verified",
  /** A CA rotation is in progress (status.caRotation gives the phase). */
  CARotating: "CARotating",
} as const;
export type SecureDatabaseConditionType = (typeof SECURE_DATABASE_CONDITIONS)[keyof typeof SECURE_DATABASE_CONDITIONS];

export const IMAGING_CONNECTION_CONDITIONS = {
  /** Summary: a current client certificate is issued and every workload is patched. */
  Ready: "Ready",
  /** The client certificate in the Secret is current. */
  CertificateReady: "CertificateReady",
  /** Every listed workload mounts the client Secret and the CAST .ini. */
  WorkloadsPatched: "WorkloadsPatched",
  /** A live mTLS login with this certificate succeeded. */
  ConnectionVerified: "ConnectionVerified",
  /** The SecureDatabase revokes this connection (trust.revocations[].connectionName). */
  Revoked: "Revoked",
} as const;
export type ImagingConnectionConditionType = (typeof IMAGING_CONNECTION_CONDITIONS)[keyof typeof IMAGING_CONNECTION_CONDITIONS];

// ---------------------------------------------------------------------------------------------------------------
// Shared object shapes

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** The part of metav1.ObjectMeta the operator reads. Timestamps are RFC 3339 strings, as on the wire. */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
}

/** metav1.Condition. */
export interface Condition {
  type: string;
  status: ConditionStatus;
  observedGeneration?: number;
  /** RFC 3339. */
  lastTransitionTime: string;
  /** CamelCase. */
  reason: string;
  message: string;
}

export interface PrivateKeySpec {
  /** Default ECDSA. */
  algorithm?: KeyAlgorithm;
  /** Bits. Default (operator): 256 for ECDSA, 2048 for RSA. */
  size?: number;
}

/** Lifetime fields shared by the CA, the server certificate and client certificates. */
export interface CertificatePolicySpec {
  /** Go duration (h/m/s/ms). */
  duration?: string;
  /** Go duration; mutually exclusive with renewBeforePercentage. Default (operator): min(720h, duration/3). */
  renewBefore?: string;
  /** 1..99: renew when this percentage of the lifetime remains. */
  renewBeforePercentage?: number;
  privateKey?: PrivateKeySpec;
}

// ---------------------------------------------------------------------------------------------------------------
// The two kinds (one module each)


// ---------------------------------------------------------------------------------------------------------------
// Bounds the CRDs enforce on status: writers must stay within them or the status update is rejected.

export const STATUS_LIMITS = {
  conditions: 32,
  conditionMessage: 32768,
  message: 4096,
  revokedSerials: 8192,
  workloads: 32,
  sanEntries: 64,
  rotationToken: 253,
} as const;
