/**
 * Decoders of the status of both kinds: what the operator itself writes, decoded for typed reading (tools, tests)
 * and compared with the CRD schemas by the unit tests.
 */
import { array, boolean, integer, object, oneOf, optional, required, string } from "./decoder";
import {
  CA_ROTATION_PHASES,
  CONDITION_STATUSES,
  WORKLOAD_STATES,
  type AllowlistedStatus,
  type CARotationStatus,
  type CAStatus,
  type ClientCertificateStatus,
  type Condition,
  type ConfigMapStatus,
  type ConnectionDeclaration,
  type ConnectionVerificationStatus,
  type DatabaseVerificationStatus,
  type ImagingConnectionStatus,
  type ReloadStatus,
  type SecureDatabaseStatus,
  type ServerCertificateStatus,
  type TrustStatus,
  type WorkloadStatus,
} from "./types";

const condition = object<Condition>()({
  type: required(string),
  status: required(oneOf(CONDITION_STATUSES)),
  observedGeneration: optional(integer),
  lastTransitionTime: required(string),
  reason: required(string),
  message: required(string),
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
