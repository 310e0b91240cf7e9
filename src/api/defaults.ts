/**
 * Spec defaulting: the schema defaults the CRDs apply (repeated here, so objects from an old CRD, tests and
 * manifests resolve the same) plus the defaults only the operator can compute (Secret names, CA common name,
 * renewal windows, key sizes per algorithm, the verification endpoint, per-workload mount paths).
 * Pure: the input is never modified; the result shares no arrays or objects with it.
 */
import { renewalWindow } from "../pki/renewal";
import { parseDuration } from "./duration";
import type {
  CAMode,
  CARotationPolicy,
  CertificatePolicySpec,
  DatabaseWorkloadKind,
  HbaClientCertificateMode,
  PostgresConfiguration,
  ImagingConnection,
  KeyAlgorithm,
  ReloadStrategy,
  RevocationReason,
  SecureDatabase,
  SSLMode,
  TLSVersion,
  WorkloadKind,
} from "./types";
import { checkImagingConnection, checkSecureDatabase, isIPAddress, type Invalid } from "./validate";
import { DEFAULTS, caSecretName, clientSecretName, defaultCACommonName, defaultMountPath, serverSecretName } from "./default-values";

export * from "./default-values";

// ---------------------------------------------------------------------------------------------------------------
// Resolved shapes

export interface ResolvedPrivateKey {
  algorithm: KeyAlgorithm;
  size: number;
}

export interface ResolvedCertificatePolicy {
  duration: string;
  durationMs: number;
  /** As written, if written. */
  renewBefore?: string;
  renewBeforePercentage?: number;
  /** The effective renewal window: renew when less than this remains. */
  renewBeforeMs: number;
  privateKey: ResolvedPrivateKey;
}

export interface ResolvedCA extends ResolvedCertificatePolicy {
  mode: CAMode;
  secretName: string;
  commonName: string;
  propagationDelayMs: number;
  rotationPolicy: CARotationPolicy;
}

export interface ResolvedServerCertificate extends ResolvedCertificatePolicy {
  secretName: string;
  /** Subject alternative names: host (when a name) then additionalDNSNames, without duplicates. */
  dnsNames: string[];
  /** Subject alternative names: host (when an IP) then additionalIPAddresses, without duplicates. */
  ipAddresses: string[];
}

export interface ResolvedHbaRule {
  databases: string[];
  users: string[];
  addresses: string[];
  clientCertificate: HbaClientCertificateMode;
}

export interface ResolvedPostgres {
  configuration: PostgresConfiguration;
  /** Set with configuration ConfigMap; "" otherwise. */
  configMapName: string;
  postgresqlConfKey: string;
  hbaConfKey: string;
  certificateDirectory: string;
  minTLSVersion: TLSVersion;
  hba: { rules: ResolvedHbaRule[] };
  configDirectory: string;
  entrypoint: string;
}

export interface ResolvedDatabaseWorkloadRef {
  kind: DatabaseWorkloadKind;
  name: string;
  /** Unset: the first container of the pod template. */
  container?: string;
}

export interface ResolvedRevocation {
  serialNumber?: string;
  sha256Fingerprint?: string;
  connectionName?: string;
  /** Set (defaulted to the SecureDatabase's namespace) whenever connectionName is. */
  connectionNamespace?: string;
  reason: RevocationReason;
}

export interface ResolvedSecureDatabaseSpec {
  host: string;
  port: number;
  additionalDNSNames: string[];
  additionalIPAddresses: string[];
  ca: ResolvedCA;
  serverCertificate: ResolvedServerCertificate;
  postgres: ResolvedPostgres;
  workloadRef?: ResolvedDatabaseWorkloadRef;
  reload: { strategy: ReloadStrategy; adminUser: string; database: string };
  verification: {
    enabled: boolean;
    interval: string;
    intervalMs: number;
    /** "host:port" to dial: spec.verification.endpoint, or host:port (IPv6 bracketed). */
    endpoint: string;
    /** The name the server certificate is verified against: always spec.host. */
    serverName: string;
  };
  allowedNamespaces: string[];
  trust: {
    allowlist: { name: string; certificate: string }[];
    revocations: ResolvedRevocation[];
    revokeOnDelete: boolean;
  };
}

export interface ResolvedConnectionWorkload {
  kind: WorkloadKind;
  name: string;
  /** "all": every container of the pod template. */
  containers: string[] | "all";
  mountPath: string;
}

export interface ResolvedImagingConnectionSpec {
  databaseRef: { name: string; namespace: string };
  user: string;
  database: string;
  sslMode: SSLMode;
  secretName: string;
  certificate: ResolvedCertificatePolicy;
  workloads: ResolvedConnectionWorkload[];
  /** The chart's workloads this connection serves (spec.castImaging), if any. */
  castImaging?: { release: string } | { matchLabels: Record<string, string> };
  /** The Secret of CAST's chart client contract (EnablePostgresSSL): spec.castImaging.secretName, default "ssl-certs". */
  chartSecretName: string;
  libpqEnv: boolean;
  verification: { enabled: boolean };
}

// ---------------------------------------------------------------------------------------------------------------
// Policies

/** The renewal window when neither renewBefore nor renewBeforePercentage is set (see renewalWindow). */
export function defaultRenewBeforeMs(durationMs: number): number {
  return renewalWindow(durationMs, {});
}

/** Effective renewal window of a certificate policy (durations must already be valid). */
export function renewBeforeMs(policy: CertificatePolicySpec, durationMs: number): number {
  const renewBefore = policy.renewBefore === undefined ? undefined : parseDuration(policy.renewBefore);
  return renewalWindow(durationMs, { renewBefore, renewBeforePercentage: policy.renewBeforePercentage });
}

function resolvePolicy(policy: CertificatePolicySpec | undefined, defaultDuration: string): ResolvedCertificatePolicy {
  const p = policy ?? {};
  const duration = p.duration ?? defaultDuration;
  const durationMs = parseDuration(duration);
  const algorithm = p.privateKey?.algorithm ?? DEFAULTS.keyAlgorithm;
  const resolved: ResolvedCertificatePolicy = {
    duration,
    durationMs,
    renewBeforeMs: renewBeforeMs(p, durationMs),
    privateKey: { algorithm, size: p.privateKey?.size ?? DEFAULTS.keySize[algorithm] },
  };
  if (p.renewBefore !== undefined) resolved.renewBefore = p.renewBefore;
  if (p.renewBeforePercentage !== undefined) resolved.renewBeforePercentage = p.renewBeforePercentage;
  return resolved;
}

const unique = (values: readonly string[]): string[] => [...new Set(values)];

/** "host:port", bracketing IPv6 literals. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Resolution

/**
 * The fully resolved spec of a SecureDatabase. Expects a spec that validates (validateSecureDatabase returns no
 * errors); throws DurationError on an unparseable duration otherwise. Use prepareSecureDatabase to do both.
 */
export function resolveSecureDatabase(sdb: SecureDatabase): ResolvedSecureDatabaseSpec {
  const { name } = sdb.metadata;
  const namespace = sdb.metadata.namespace ?? "default";
  const spec = sdb.spec;
  const port = spec.port ?? DEFAULTS.port;
  const ca = spec.ca ?? {};
  const server = spec.serverCertificate ?? {};
  const pg = spec.postgres;
  const reload = spec.reload ?? {};
  const verification = spec.verification ?? {};
  const hostIsIP = isIPAddress(spec.host);
  const additionalDNSNames = [...(spec.additionalDNSNames ?? [])];
  const additionalIPAddresses = [...(spec.additionalIPAddresses ?? [])];
  const interval = verification.interval ?? DEFAULTS.verificationInterval;

  const resolved: ResolvedSecureDatabaseSpec = {
    host: spec.host,
    port,
    additionalDNSNames,
    additionalIPAddresses,
    ca: {
      ...resolvePolicy(ca, DEFAULTS.caDuration),
      mode: ca.mode ?? DEFAULTS.caMode,
      secretName: ca.secretName ?? caSecretName(name),
      commonName: ca.commonName ?? defaultCACommonName(name, namespace),
      propagationDelayMs: parseDuration(ca.propagationDelay ?? DEFAULTS.caPropagationDelay),
      rotationPolicy: ca.rotationPolicy ?? "NewKey",
    },
    serverCertificate: {
      ...resolvePolicy(server, DEFAULTS.serverCertificateDuration),
      secretName: server.secretName ?? serverSecretName(name),
      dnsNames: unique(hostIsIP ? additionalDNSNames : [spec.host, ...additionalDNSNames]),
      ipAddresses: unique(hostIsIP ? [spec.host, ...additionalIPAddresses] : additionalIPAddresses),
    },
    postgres: {
      configuration: pg.configuration ?? "ConfigMap",
      configMapName: pg.configMapName ?? "",
      configDirectory: pg.configDirectory ?? DEFAULTS.configDirectory,
      entrypoint: pg.entrypoint ?? DEFAULTS.entrypoint,
      postgresqlConfKey: pg.postgresqlConfKey ?? DEFAULTS.postgresqlConfKey,
      hbaConfKey: pg.hbaConfKey ?? DEFAULTS.hbaConfKey,
      certificateDirectory: pg.certificateDirectory ?? DEFAULTS.certificateDirectory,
      minTLSVersion: pg.minTLSVersion ?? DEFAULTS.minTLSVersion,
      hba: {
        rules: (pg.hba?.rules ?? [{}]).map((r) => ({
          databases: [...(r.databases ?? DEFAULTS.hbaDatabases)],
          users: [...(r.users ?? DEFAULTS.hbaUsers)],
          addresses: [...(r.addresses ?? DEFAULTS.hbaAddresses)],
          clientCertificate: r.clientCertificate ?? DEFAULTS.hbaClientCertificate,
        })),
      },
    },
    reload: {
      strategy: reload.strategy ?? DEFAULTS.reloadStrategy,
      adminUser: reload.adminUser ?? DEFAULTS.reloadAdminUser,
      database: reload.database ?? DEFAULTS.reloadDatabase,
    },
    verification: {
      enabled: verification.enabled ?? DEFAULTS.verificationEnabled,
      interval,
      intervalMs: parseDuration(interval),
      endpoint: verification.endpoint ?? joinHostPort(spec.host, port),
      serverName: spec.host,
    },
    allowedNamespaces: [...(spec.allowedNamespaces ?? [])],
    trust: {
      allowlist: (spec.trust?.allowlist ?? []).map((a) => ({ name: a.name, certificate: a.certificate })),
      revocations: (spec.trust?.revocations ?? []).map((r) => {
        const out: ResolvedRevocation = { reason: r.reason ?? DEFAULTS.revocationReason };
        if (r.serialNumber !== undefined) out.serialNumber = r.serialNumber;
        if (r.sha256Fingerprint !== undefined) out.sha256Fingerprint = r.sha256Fingerprint;
        if (r.connectionName !== undefined) {
          out.connectionName = r.connectionName;
          out.connectionNamespace = r.connectionNamespace ?? namespace;
        }
        return out;
      }),
      revokeOnDelete: spec.trust?.revokeOnDelete ?? DEFAULTS.revokeOnDelete,
    },
  };
  if (spec.workloadRef) {
    resolved.workloadRef = { kind: spec.workloadRef.kind, name: spec.workloadRef.name };
    if (spec.workloadRef.container !== undefined) resolved.workloadRef.container = spec.workloadRef.container;
  }
  return resolved;
}

/** The fully resolved spec of an ImagingConnection; same contract as resolveSecureDatabase. */
export function resolveImagingConnection(imc: ImagingConnection): ResolvedImagingConnectionSpec {
  const { name } = imc.metadata;
  const namespace = imc.metadata.namespace ?? "default";
  const spec = imc.spec;
  return {
    databaseRef: { name: spec.databaseRef.name, namespace: spec.databaseRef.namespace ?? namespace },
    user: spec.user,
    database: spec.database ?? DEFAULTS.connectionDatabase,
    sslMode: spec.sslMode ?? DEFAULTS.sslMode,
    secretName: spec.secretName ?? clientSecretName(name),
    certificate: resolvePolicy(spec.certificate, DEFAULTS.clientCertificateDuration),
    workloads: (spec.workloads ?? []).map((w) => ({
      kind: w.kind,
      name: w.name,
      containers: w.containers ? [...w.containers] : "all",
      mountPath: w.mountPath ?? defaultMountPath(name),
    })),
    ...(spec.castImaging?.release !== undefined
      ? { castImaging: { release: spec.castImaging.release } }
      : spec.castImaging?.selector
        ? { castImaging: { matchLabels: { ...spec.castImaging.selector.matchLabels } } }
        : {}),
    chartSecretName: spec.castImaging?.secretName ?? DEFAULTS.chartSecretName,
    libpqEnv: spec.libpqEnv ?? DEFAULTS.libpqEnv,
    verification: { enabled: spec.verification?.enabled ?? DEFAULTS.connectionVerificationEnabled },
  };
}

/** The resolved spec of a valid object, or what is wrong with it. */
export type Prepared<T> = { ok: true; spec: T } | Invalid;

/**
 * The informer replaces an object whenever it changes, so an object and its resourceVersion name one content: a
 * database is prepared once per change, not on every pass of every connection that reads it. Objects without a
 * resourceVersion (tests, manifests) are prepared every time.
 */
class PreparedMemo<T> {
  private readonly memo = new WeakMap<object, { resourceVersion: string; prepared: Prepared<T> }>();

  get(raw: { metadata?: { resourceVersion?: string } } | null, prepare: () => Prepared<T>): Prepared<T> {
    // A malformed object (even a null root) goes straight to prepare(), which reports it.
    const resourceVersion = raw?.metadata?.resourceVersion;
    if (typeof resourceVersion !== "string") return prepare();
    const hit = this.memo.get(raw!);
    if (hit?.resourceVersion === resourceVersion) return hit.prepared;
    const prepared = prepare();
    this.memo.set(raw!, { resourceVersion, prepared });
    return prepared;
  }
}

const preparedDatabases = new PreparedMemo<ResolvedSecureDatabaseSpec>();
const preparedConnections = new PreparedMemo<ResolvedImagingConnectionSpec>();

/**
 * What a reconciler calls first with the object from the informer: decodes it (a malformed object yields errors,
 * never a TypeError), validates it, then resolves its spec.
 */
export function prepareSecureDatabase(raw: SecureDatabase): Prepared<ResolvedSecureDatabaseSpec> {
  return preparedDatabases.get(raw, () => {
    const checked = checkSecureDatabase(raw);
    return checked.ok ? { ok: true, spec: resolveSecureDatabase(checked.value) } : checked;
  });
}

/** Decodes, validates, then resolves: the ImagingConnection counterpart of prepareSecureDatabase. */
export function prepareImagingConnection(raw: ImagingConnection): Prepared<ResolvedImagingConnectionSpec> {
  return preparedConnections.get(raw, () => {
    const checked = checkImagingConnection(raw);
    return checked.ok ? { ok: true, spec: resolveImagingConnection(checked.value) } : checked;
  });
}
