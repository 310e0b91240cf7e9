/**
 * Typed loading of SecureDatabase and ImagingConnection objects from untyped JSON (API responses, parsed YAML).
 *
 * The decoders check the shape (types, required fields, enum values), not the finer rules (patterns, CEL): those are
 * the CRD's and validate.ts's job. Each decoder also exposes its shape, which the unit tests compare with the CRD
 * schemas, so the TypeScript types, these decoders and crds/*.yaml cannot drift apart silently.
 */
import {
  API_VERSION,
  CA_MODES,
  CA_ROTATION_POLICIES,
  CA_ROTATION_PHASES,
  CONDITION_STATUSES,
  DATABASE_WORKLOAD_KINDS,
  HBA_CLIENT_CERTIFICATE_MODES,
  IMAGING_CONNECTION,
  KEY_ALGORITHMS,
  RELOAD_STRATEGIES,
  REVOCATION_REASONS,
  SECURE_DATABASE,
  SSL_MODES,
  TLS_VERSIONS,
  WORKLOAD_KINDS,
  WORKLOAD_STATES,
  type AllowlistEntry,
  type AllowlistedStatus,
  type CASpec,
  type CAStatus,
  type CARotationStatus,
  type CertificatePolicySpec,
  type ClientCertificateStatus,
  type Condition,
  type ConfigMapStatus,
  type ConnectionDeclaration,
  type ConnectionVerificationSpec,
  type ConnectionVerificationStatus,
  type ConnectionWorkload,
  type DatabaseRef,
  type DatabaseVerificationSpec,
  type DatabaseVerificationStatus,
  type DatabaseWorkloadRef,
  type HbaRule,
  type HbaSpec,
  type ImagingConnection,
  type ImagingConnectionSpec,
  type ImagingConnectionStatus,
  type ObjectMeta,
  type OwnerReference,
  type PostgresSpec,
  type PrivateKeySpec,
  type ReloadSpec,
  type ReloadStatus,
  type Revocation,
  type SecureDatabase,
  type SecureDatabaseSpec,
  type SecureDatabaseStatus,
  type ServerCertificateSpec,
  type ServerCertificateStatus,
  type TrustSpec,
  type TrustStatus,
  type WorkloadStatus,
} from "./types";

export class DecodeError extends Error {
  constructor(
    /** JSON path of the offending value, e.g. "spec.postgres.hba.rules[0].users". */
    readonly path: string,
    readonly problem: string,
  ) {
    super(`${path || "<root>"}: ${problem}`);
    this.name = "DecodeError";
  }
}

export interface DecodeOptions {
  /**
   * Reject properties the types do not know (default false: they are dropped, as the API server prunes them).
   * Use it for hand-written manifests, where an unknown field is a typo.
   */
  strict?: boolean;
}

/** A description of what a decoder accepts, in the vocabulary of OpenAPI schemas. */
export type Shape =
  | { readonly type: "string"; readonly enum?: readonly string[] }
  | { readonly type: "integer" }
  | { readonly type: "boolean" }
  | { readonly type: "array"; readonly items: Shape }
  | { readonly type: "map"; readonly values: Shape }
  | { readonly type: "object"; readonly properties: Readonly<Record<string, { readonly shape: Shape; readonly required: boolean }>>; readonly open: boolean };

export interface Decoder<T> {
  readonly shape: Shape;
  decode(value: unknown, path: string, options: DecodeOptions): T;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `${typeof value} ${JSON.stringify(value)}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const join = (path: string, key: string): string => (path ? `${path}.${key}` : key);

export const string: Decoder<string> = {
  shape: { type: "string" },
  decode(value, path) {
    if (typeof value !== "string") throw new DecodeError(path, `expected a string, got ${describe(value)}`);
    return value;
  },
};

export const integer: Decoder<number> = {
  shape: { type: "integer" },
  decode(value, path) {
    if (typeof value !== "number" || !Number.isSafeInteger(value)) throw new DecodeError(path, `expected an integer, got ${describe(value)}`);
    return value;
  },
};

export const boolean: Decoder<boolean> = {
  shape: { type: "boolean" },
  decode(value, path) {
    if (typeof value !== "boolean") throw new DecodeError(path, `expected a boolean, got ${describe(value)}`);
    return value;
  },
};

export function oneOf<const V extends readonly string[]>(values: V): Decoder<V[number]> {
  return {
    shape: { type: "string", enum: values },
    decode(value, path) {
      if (typeof value !== "string" || !values.includes(value)) {
        throw new DecodeError(path, `expected one of ${values.map((v) => JSON.stringify(v)).join(", ")}, got ${describe(value)}`);
      }
      return value;
    },
  };
}

export function array<T>(items: Decoder<T>): Decoder<T[]> {
  return {
    shape: { type: "array", items: items.shape },
    decode(value, path, options) {
      if (!Array.isArray(value)) throw new DecodeError(path, `expected an array, got ${describe(value)}`);
      return value.map((v, i) => items.decode(v, `${path}[${i}]`, options));
    },
  };
}

export function map<T>(values: Decoder<T>): Decoder<Record<string, T>> {
  return {
    shape: { type: "map", values: values.shape },
    decode(value, path, options) {
      if (!isRecord(value)) throw new DecodeError(path, `expected an object, got ${describe(value)}`);
      const out: Record<string, T> = {};
      for (const [k, v] of Object.entries(value)) out[k] = values.decode(v, join(path, k), options);
      return out;
    },
  };
}

interface Prop<T, R extends boolean> {
  readonly decoder: Decoder<T>;
  readonly required: R;
}
export function required<T>(decoder: Decoder<T>): Prop<T, true> {
  return { decoder, required: true };
}
export function optional<T>(decoder: Decoder<T>): Prop<T, false> {
  return { decoder, required: false };
}

type Props = Record<string, Prop<unknown, boolean>>;
type PropType<P> = P extends Prop<infer T, boolean> ? T : never;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
type ObjectOf<P extends Props> = Simplify<
  { [K in keyof P as P[K] extends Prop<unknown, true> ? K : never]: PropType<P[K]> } & {
    [K in keyof P as P[K] extends Prop<unknown, true> ? never : K]?: PropType<P[K]>;
  }
>;
type Equals<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;

/**
 * An object decoder for the interface T. The property list must describe T exactly (same keys, same optionality,
 * same value types): otherwise the call does not compile (it then demands an impossible extra argument).
 * An open object keeps properties it does not list, unchecked (used for metadata).
 */
export function object<T>(open = false) {
  return <P extends Props>(props: P, ...exact: Equals<ObjectOf<P>, T> extends true ? [] : [never]): Decoder<T> => {
    void exact;
    const properties: Record<string, { shape: Shape; required: boolean }> = {};
    for (const [k, p] of Object.entries(props)) properties[k] = { shape: p.decoder.shape, required: p.required };
    return {
      shape: { type: "object", properties, open },
      decode(value, path, options) {
        if (!isRecord(value)) throw new DecodeError(path, `expected an object, got ${describe(value)}`);
        const out: Record<string, unknown> = open ? { ...value } : {};
        for (const [k, p] of Object.entries(props)) {
          const v = value[k];
          if (v === undefined || v === null) {
            if (p.required) throw new DecodeError(join(path, k), "required field is missing");
            delete out[k];
            continue;
          }
          out[k] = p.decoder.decode(v, join(path, k), options);
        }
        if (options.strict && !open) {
          const unknown = Object.keys(value).filter((k) => !(k in props));
          if (unknown.length > 0) throw new DecodeError(join(path, unknown[0] ?? ""), `unknown field (known fields: ${Object.keys(props).join(", ")})`);
        }
        return out as T;
      },
    };
  };
}

function literal<const V extends string>(v: V): Decoder<V> {
  return oneOf([v] as const);
}

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
  namespace: optional(string),
  uid: optional(string),
  resourceVersion: optional(string),
  generation: optional(integer),
  creationTimestamp: optional(string),
  deletionTimestamp: optional(string),
  labels: optional(map(string)),
  annotations: optional(map(string)),
  finalizers: optional(array(string)),
  ownerReferences: optional(array(ownerReference)),
});

export const condition = object<Condition>()({
  type: required(string),
  status: required(oneOf(CONDITION_STATUSES)),
  observedGeneration: optional(integer),
  lastTransitionTime: required(string),
  reason: required(string),
  message: required(string),
});

const privateKey = object<PrivateKeySpec>()({
  algorithm: optional(oneOf(KEY_ALGORITHMS)),
  size: optional(integer),
});

const certificatePolicyProps = {
  duration: optional(string),
  renewBefore: optional(string),
  renewBeforePercentage: optional(integer),
  privateKey: optional(privateKey),
};

// ---------------------------------------------------------------------------------------------------------------
// SecureDatabase

const caSpec = object<CASpec>()({
  mode: optional(oneOf(CA_MODES)),
  secretName: optional(string),
  commonName: optional(string),
  propagationDelay: optional(string),
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
  configMapName: required(string),
  postgresqlConfKey: optional(string),
  hbaConfKey: optional(string),
  certificateDirectory: optional(string),
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
  adminUser: optional(string),
  database: optional(string),
});

const databaseVerificationSpec = object<DatabaseVerificationSpec>()({
  enabled: optional(boolean),
  interval: optional(string),
  endpoint: optional(string),
});

const allowlistEntry = object<AllowlistEntry>()({ name: required(string), certificate: required(string) });

const revocation = object<Revocation>()({
  serialNumber: optional(string),
  sha256Fingerprint: optional(string),
  connectionName: optional(string),
  connectionNamespace: optional(string),
  reason: optional(oneOf(REVOCATION_REASONS)),
});

const trustSpec = object<TrustSpec>()({ allowlist: optional(array(allowlistEntry)), revocations: optional(array(revocation)) });

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
  trust: optional(trustSpec),
});

const caStatus = object<CAStatus>()({
  secretName: optional(string),
  serialNumber: optional(string),
  subject: optional(string),
  notBefore: optional(string),
  notAfter: optional(string),
  fingerprintSHA256: optional(string),
});

const serverCertificateStatus = object<ServerCertificateStatus>()({
  secretName: optional(string),
  serialNumber: optional(string),
  notBefore: optional(string),
  notAfter: optional(string),
  renewalTime: optional(string),
  lastRotationToken: optional(string),
  dnsNames: optional(array(string)),
  ipAddresses: optional(array(string)),
});

const databaseVerificationStatus = object<DatabaseVerificationStatus>()({
  endpoint: optional(string),
  servedSerialNumber: optional(string),
  matchesCurrent: optional(boolean),
  lastAttemptTime: optional(string),
  lastSuccessTime: optional(string),
  message: optional(string),
});

const reloadStatus = object<ReloadStatus>()({
  lastReloadTime: optional(string),
  strategy: optional(string),
  appliedHash: optional(string),
  message: optional(string),
});

const configMapStatus = object<ConfigMapStatus>()({
  name: optional(string),
  resourceVersion: optional(string),
  postgresqlConfHash: optional(string),
  hbaConfHash: optional(string),
});

const caRotationStatus = object<CARotationStatus>()({
  phase: optional(oneOf(CA_ROTATION_PHASES)),
  startedTime: optional(string),
  phaseTime: optional(string),
  oldCASerial: optional(string),
  newCASerial: optional(string),
  readyTime: optional(string),
  message: optional(string),
});

const allowlistedStatus = object<AllowlistedStatus>()({
  name: optional(string),
  fingerprintSHA256: optional(string),
  subject: optional(string),
  notAfter: optional(string),
});

const trustStatus = object<TrustStatus>()({
  allowlisted: optional(array(allowlistedStatus)),
  revokedSerials: optional(array(string)),
  crlNumber: optional(integer),
  crlNextUpdate: optional(string),
});

export const secureDatabaseStatus = object<SecureDatabaseStatus>()({
  observedGeneration: optional(integer),
  conditions: optional(array(condition)),
  ca: optional(caStatus),
  serverCertificate: optional(serverCertificateStatus),
  verification: optional(databaseVerificationStatus),
  reload: optional(reloadStatus),
  configMap: optional(configMapStatus),
  caRotation: optional(caRotationStatus),
  trust: optional(trustStatus),
});

export const secureDatabase = object<SecureDatabase>()({
  apiVersion: required(literal(API_VERSION)),
  kind: required(literal(SECURE_DATABASE.kind)),
  metadata: required(objectMeta),
  spec: required(secureDatabaseSpec),
  status: optional(secureDatabaseStatus),
});

// ---------------------------------------------------------------------------------------------------------------
// ImagingConnection

const databaseRef = object<DatabaseRef>()({ name: required(string), namespace: optional(string) });

const connectionWorkload = object<ConnectionWorkload>()({
  kind: required(oneOf(WORKLOAD_KINDS)),
  name: required(string),
  containers: optional(array(string)),
  mountPath: optional(string),
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
  libpqEnv: optional(boolean),
  verification: optional(connectionVerificationSpec),
});

const clientCertificateStatus = object<ClientCertificateStatus>()({
  secretName: optional(string),
  serialNumber: optional(string),
  notBefore: optional(string),
  notAfter: optional(string),
  renewalTime: optional(string),
  lastRotationToken: optional(string),
  issuerFingerprintSHA256: optional(string),
});

const workloadStatus = object<WorkloadStatus>()({
  kind: optional(string),
  name: optional(string),
  state: optional(oneOf(WORKLOAD_STATES)),
  mountPath: optional(string),
  message: optional(string),
});

const connectionDeclaration = object<ConnectionDeclaration>()({
  host: optional(string),
  port: optional(integer),
  database: optional(string),
  user: optional(string),
  sslMode: optional(string),
  certificatePath: optional(string),
  keyPath: optional(string),
  keyPemPath: optional(string),
  rootCertificatePath: optional(string),
  pfxPath: optional(string),
  pfxPasswordSecretKey: optional(string),
  iniPath: optional(string),
  jdbcUrl: optional(string),
});

const connectionVerificationStatus = object<ConnectionVerificationStatus>()({
  serialNumber: optional(string),
  lastAttemptTime: optional(string),
  lastSuccessTime: optional(string),
  message: optional(string),
});

export const imagingConnectionStatus = object<ImagingConnectionStatus>()({
  observedGeneration: optional(integer),
  conditions: optional(array(condition)),
  certificate: optional(clientCertificateStatus),
  workloads: optional(array(workloadStatus)),
  declaration: optional(connectionDeclaration),
  verification: optional(connectionVerificationStatus),
});

export const imagingConnection = object<ImagingConnection>()({
  apiVersion: required(literal(API_VERSION)),
  kind: required(literal(IMAGING_CONNECTION.kind)),
  metadata: required(objectMeta),
  spec: required(imagingConnectionSpec),
  status: optional(imagingConnectionStatus),
});

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

export type CustomResource = SecureDatabase | ImagingConnection;

/** Decodes either kind, chosen by `kind`. Throws DecodeError for any other kind. */
export function decodeCustomResource(value: unknown, options: DecodeOptions = {}): CustomResource {
  const kind = isRecord(value) ? value.kind : undefined;
  if (kind === SECURE_DATABASE.kind) return decodeSecureDatabase(value, options);
  if (kind === IMAGING_CONNECTION.kind) return decodeImagingConnection(value, options);
  throw new DecodeError("kind", `expected ${SECURE_DATABASE.kind} or ${IMAGING_CONNECTION.kind}, got ${describe(kind)}`);
}
