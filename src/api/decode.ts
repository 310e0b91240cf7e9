/**
 * Typed loading of SecureDatabase and ImagingConnection objects from untyped JSON (API responses, parsed YAML).
 * The reconcilers decode at the boundary through prepareSecureDatabase / prepareImagingConnection.
 *
 * The decoders check the shape (types, required fields, enum values), not the finer rules (patterns, CEL): those are
 * the CRD's and validate.ts's job. Each decoder also exposes its shape, which the unit tests compare with the CRD
 * schemas, so the TypeScript types, these decoders and crds/*.yaml cannot drift apart silently.
 */
import {
  API_VERSION,
  CA_MODES,
  CA_ROTATION_POLICIES,
  DATABASE_WORKLOAD_KINDS,
  HBA_CLIENT_CERTIFICATE_MODES,
  POSTGRES_CONFIGURATIONS,
  IMAGING_CONNECTION,
  KEY_ALGORITHMS,
  RELOAD_STRATEGIES,
  REVOCATION_REASONS,
  SECURE_DATABASE,
  SSL_MODES,
  TLS_VERSIONS,
  WORKLOAD_KINDS,
  type AccessGrant,
  type AllowlistEntry,
  type CASpec,
  type CastImagingTarget,
  type CertificatePolicySpec,
  type ConnectionVerificationSpec,
  type ConnectionWorkload,
  type DatabaseRef,
  type DatabaseVerificationSpec,
  type DatabaseWorkloadRef,
  type HbaRule,
  type HbaSpec,
  type ImagingConnection,
  type ImagingConnectionSpec,
  type ObjectMeta,
  type OwnerReference,
  type PostgresSpec,
  type PrivateKeySpec,
  type ReloadSpec,
  type Revocation,
  type SecureDatabase,
  type SecureDatabaseSpec,
  type ServerCertificateSpec,
  type TrustSpec,
} from "./types";
import {
  array,
  boolean,
  DecodeError,
  describe,
  integer,
  isRecord,
  literal,
  map,
  object,
  oneOf,
  optional,
  optionalStrings,
  required,
  string,
  type DecodeOptions,
  type Decoder,
} from "./decoder";

import { imagingConnectionStatus, secureDatabaseStatus } from "./decode-status";

export { DecodeError, type DecodeOptions, type Decoder, type Shape } from "./decoder";
export { imagingConnectionStatus, secureDatabaseStatus } from "./decode-status";

// ---------------------------------------------------------------------------------------------------------------
// Shared

const ownerReference = object<OwnerReference>()({
  apiVersion: required(string),
  kind: required(string),
  name: required(string),
  uid: required(string),
  controller: optional(boolean),
  blockOwnerDeletion: optional(boolean),
});

export const objectMeta = object<ObjectMeta>(true)({
  name: required(string),
  ...optionalStrings("namespace", "uid", "resourceVersion"),
  generation: optional(integer),
  ...optionalStrings("creationTimestamp", "deletionTimestamp"),
  labels: optional(map(string)),
  annotations: optional(map(string)),
  finalizers: optional(array(string)),
  ownerReferences: optional(array(ownerReference)),
});

const privateKey = object<PrivateKeySpec>()({
  algorithm: optional(oneOf(KEY_ALGORITHMS)),
  size: optional(integer),
});

/** What every object of either kind has: its apiVersion and kind, metadata, a spec, and a status once written. */
function customResourceProps<const K extends string, Spec, Status>(kind: K, spec: Decoder<Spec>, status: Decoder<Status>) {
  return {
    apiVersion: required(literal(API_VERSION)),
    kind: required(literal(kind)),
    metadata: required(objectMeta),
    spec: required(spec),
    status: optional(status),
  };
}

const certificatePolicyProps = {
  ...optionalStrings("duration", "renewBefore"),
  renewBeforePercentage: optional(integer),
  privateKey: optional(privateKey),
};

// ---------------------------------------------------------------------------------------------------------------
// SecureDatabase

const caSpec = object<CASpec>()({
  mode: optional(oneOf(CA_MODES)),
  ...optionalStrings("secretName", "commonName", "propagationDelay"),
  rotationPolicy: optional(oneOf(CA_ROTATION_POLICIES)),
  ...certificatePolicyProps,
});

const serverCertificateSpec = object<ServerCertificateSpec>()({
  secretName: optional(string),
  ...certificatePolicyProps,
});

const hbaRule = object<HbaRule>()({
  databases: optional(array(string)),
  users: optional(array(string)),
  addresses: optional(array(string)),
  clientCertificate: optional(oneOf(HBA_CLIENT_CERTIFICATE_MODES)),
});

const hbaSpec = object<HbaSpec>()({ rules: optional(array(hbaRule)) });

const postgresSpec = object<PostgresSpec>()({
  configuration: optional(oneOf(POSTGRES_CONFIGURATIONS)),
  ...optionalStrings("configMapName", "postgresqlConfKey", "hbaConfKey", "certificateDirectory", "configDirectory", "entrypoint"),
  minTLSVersion: optional(oneOf(TLS_VERSIONS)),
  hba: optional(hbaSpec),
});

const databaseWorkloadRef = object<DatabaseWorkloadRef>()({
  kind: required(oneOf(DATABASE_WORKLOAD_KINDS)),
  name: required(string),
  container: optional(string),
});

const reloadSpec = object<ReloadSpec>()({
  strategy: optional(oneOf(RELOAD_STRATEGIES)),
  ...optionalStrings("adminUser", "database"),
});

const databaseVerificationSpec = object<DatabaseVerificationSpec>()({
  enabled: optional(boolean),
  ...optionalStrings("interval", "endpoint"),
});

const allowlistEntry = object<AllowlistEntry>()({ name: required(string), certificate: required(string) });

const revocation = object<Revocation>()({
  ...optionalStrings("serialNumber", "sha256Fingerprint", "connectionName", "connectionNamespace"),
  reason: optional(oneOf(REVOCATION_REASONS)),
});

const trustSpec = object<TrustSpec>()({
  allowlist: optional(array(allowlistEntry)),
  revocations: optional(array(revocation)),
  revokeOnDelete: optional(boolean),
});

const accessGrant = object<AccessGrant>()({
  namespaces: optional(array(string)),
  namespaceSelector: optional(object<{ matchLabels: Record<string, string> }>()({ matchLabels: required(map(string)) })),
  users: required(array(string)),
  databases: optional(array(string)),
  maxDuration: optional(string),
  mountIntoWorkloads: optional(boolean),
});

export const secureDatabaseSpec = object<SecureDatabaseSpec>()({
  host: required(string),
  port: optional(integer),
  additionalDNSNames: optional(array(string)),
  additionalIPAddresses: optional(array(string)),
  ca: optional(caSpec),
  serverCertificate: optional(serverCertificateSpec),
  postgres: required(postgresSpec),
  workloadRef: optional(databaseWorkloadRef),
  reload: optional(reloadSpec),
  verification: optional(databaseVerificationSpec),
  allowedNamespaces: optional(array(string)),
  access: optional(array(accessGrant)),
  trust: optional(trustSpec),
});

export const secureDatabase = object<SecureDatabase>()(customResourceProps(SECURE_DATABASE.kind, secureDatabaseSpec, secureDatabaseStatus));

// ---------------------------------------------------------------------------------------------------------------
// ImagingConnection

const databaseRef = object<DatabaseRef>()({ name: required(string), namespace: optional(string) });

const connectionWorkload = object<ConnectionWorkload>()({
  kind: required(oneOf(WORKLOAD_KINDS)),
  name: required(string),
  containers: optional(array(string)),
  mountPath: optional(string),
});

const castImagingTarget = object<CastImagingTarget>()({
  release: optional(string),
  selector: optional(object<{ matchLabels: Record<string, string> }>()({ matchLabels: required(map(string)) })),
  secretName: optional(string),
});

const certificatePolicySpec = object<CertificatePolicySpec>()(certificatePolicyProps);

const connectionVerificationSpec = object<ConnectionVerificationSpec>()({ enabled: optional(boolean) });

export const imagingConnectionSpec = object<ImagingConnectionSpec>()({
  databaseRef: required(databaseRef),
  user: required(string),
  database: optional(string),
  sslMode: optional(oneOf(SSL_MODES)),
  secretName: optional(string),
  certificate: optional(certificatePolicySpec),
  workloads: optional(array(connectionWorkload)),
  castImaging: optional(castImagingTarget),
  libpqEnv: optional(boolean),
  verification: optional(connectionVerificationSpec),
});

export const imagingConnection = object<ImagingConnection>()(
  customResourceProps(IMAGING_CONNECTION.kind, imagingConnectionSpec, imagingConnectionStatus),
);

// ---------------------------------------------------------------------------------------------------------------
// Entry points

/** Checks the shape of a SecureDatabase (API object or parsed manifest) and returns it typed. Throws DecodeError. */
export function decodeSecureDatabase(value: unknown, options: DecodeOptions = {}): SecureDatabase {
  return secureDatabase.decode(value, "", options);
}

/** Checks the shape of an ImagingConnection (API object or parsed manifest) and returns it typed. Throws DecodeError. */
export function decodeImagingConnection(value: unknown, options: DecodeOptions = {}): ImagingConnection {
  return imagingConnection.decode(value, "", options);
}

/**
 * What the reconcilers read of an object from the informer: metadata and spec decoded, the rest (apiVersion, kind,
 * status, which the operator writes itself) kept as it came.
 */
const secureDatabaseInput = object<Pick<SecureDatabase, "metadata" | "spec">>(true)({
  metadata: required(objectMeta),
  spec: required(secureDatabaseSpec),
});
const imagingConnectionInput = object<Pick<ImagingConnection, "metadata" | "spec">>(true)({
  metadata: required(objectMeta),
  spec: required(imagingConnectionSpec),
});

/** Checks the metadata and spec of a SecureDatabase from the informer and returns it typed. Throws DecodeError. */
export function decodeSecureDatabaseInput(value: unknown): SecureDatabase {
  return secureDatabaseInput.decode(value, "", {}) as SecureDatabase;
}

/** Checks the metadata and spec of an ImagingConnection from the informer and returns it typed. Throws DecodeError. */
export function decodeImagingConnectionInput(value: unknown): ImagingConnection {
  return imagingConnectionInput.decode(value, "", {}) as ImagingConnection;
}

export type CustomResource = SecureDatabase | ImagingConnection;

/** Decodes either kind, chosen by `kind`. Throws DecodeError for any other kind. */
export function decodeCustomResource(value: unknown, options: DecodeOptions = {}): CustomResource {
  const kind = isRecord(value) ? value.kind : undefined;
  if (kind === SECURE_DATABASE.kind) return decodeSecureDatabase(value, options);
  if (kind === IMAGING_CONNECTION.kind) return decodeImagingConnection(value, options);
  throw new DecodeError("kind", `expected ${SECURE_DATABASE.kind} or ${IMAGING_CONNECTION.kind}, got ${describe(kind)}`);
}
