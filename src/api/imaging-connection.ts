/** The ImagingConnection resource (mtls.imaging.dev/v1alpha1): spec and status, as a user or the operator writes them. */
import type {
  API_VERSION,
  CertificatePolicySpec,
  Condition,
  IMAGING_CONNECTION,
  ObjectMeta,
  SSLMode,
  WorkloadKind,
  WorkloadState,
} from "./common";

export interface DatabaseRef {
  name: string;
  /** Default: the ImagingConnection's namespace. */
  namespace?: string;
}

export interface ConnectionWorkload {
  kind: WorkloadKind;
  name: string;
  /** Default: every container of the pod template. */
  containers?: string[];
  /** Default "/etc/cast-imaging/mtls/<connection name>". */
  mountPath?: string;
}

/**
 * CAST Imaging as CAST's Helm chart installs it: the release (or a label selector) whose PostgreSQL-using
 * components get this connection's certificate, and the Secret of the chart's own client contract.
 */
export interface CastImagingTarget {
  /** The Helm release of CAST's chart, in this namespace (its objects carry meta.helm.sh/release-name). */
  release?: string;
  /** Or: the Deployments/StatefulSets carrying these labels (and the chart's imaging.service label). */
  selector?: { matchLabels: Record<string, string> };
  /** The Secret the chart mounts when EnablePostgresSSL=true. Default "ssl-certs". */
  secretName?: string;
}

export interface ConnectionVerificationSpec {
  /** Default true. */
  enabled?: boolean;
}

export interface ImagingConnectionSpec {
  databaseRef: DatabaseRef;
  /** PostgreSQL role = certificate CN. */
  user: string;
  /** Default "postgres". */
  database?: string;
  /** Default verify-full. */
  sslMode?: SSLMode;
  /** Default "<name>-client-tls". */
  secretName?: string;
  certificate?: CertificatePolicySpec;
  workloads?: ConnectionWorkload[];
  castImaging?: CastImagingTarget;
  /** Default false. */
  libpqEnv?: boolean;
  verification?: ConnectionVerificationSpec;
}

export interface ClientCertificateStatus {
  secretName?: string;
  serialNumber?: string;
  notBefore?: string;
  notAfter?: string;
  renewalTime?: string;
  /** The mtls.imaging.dev/rotate value the current certificate was issued for. */
  lastRotationToken?: string;
  issuerFingerprintSHA256?: string;
}

export interface WorkloadStatus {
  kind?: string;
  name?: string;
  state?: WorkloadState;
  mountPath?: string;
  /** How it gets the material: Mount (our Secret and .ini), ChartSecret (the chart's contract), None. */
  delivery?: string;
  /** Its imaging.service label (CAST's component name), when it has one. */
  component?: string;
  message?: string;
}

/** What to declare in the CAST Imaging UI, and where the files are inside the containers. */
export interface ConnectionDeclaration {
  host?: string;
  port?: number;
  database?: string;
  user?: string;
  sslMode?: string;
  certificatePath?: string;
  /** client.pk8: PKCS#8 DER, what pgjdbc requires. */
  keyPath?: string;
  /** client.key: PEM, for libpq. */
  keyPemPath?: string;
  rootCertificatePath?: string;
  pfxPath?: string;
  pfxPasswordSecretKey?: string;
  iniPath?: string;
  jdbcUrl?: string;
}

export interface ConnectionVerificationStatus {
  /** The client certificate serial the last successful login presented. */
  serialNumber?: string;
  lastAttemptTime?: string;
  lastSuccessTime?: string;
  message?: string;
}

export interface ImagingConnectionStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  certificate?: ClientCertificateStatus;
  workloads?: WorkloadStatus[];
  declaration?: ConnectionDeclaration;
  verification?: ConnectionVerificationStatus;
}

export interface ImagingConnection {
  apiVersion: typeof API_VERSION;
  kind: typeof IMAGING_CONNECTION.kind;
  metadata: ObjectMeta;
  spec: ImagingConnectionSpec;
  status?: ImagingConnectionStatus;
}
