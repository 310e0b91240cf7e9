/**
 * Decoders of the status of both kinds: what the operator itself writes, decoded for typed reading (tools, tests)
 * and compared with the CRD schemas by the unit tests.
 */
import { array, boolean, integer, object, oneOf, optional, optionalStrings, required, string } from "./decoder";
import {
  CA_ROTATION_PHASES,
  CONDITION_STATUSES,
  POSTGRES_CONFIGURATIONS,
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
  type PasswordAccessStatus,
  type ReloadStatus,
  type SecureDatabaseStatus,
  type ServerCertificateStatus,
  type ServerConfigurationStatus,
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

const caStatus = object<CAStatus>()(
  optionalStrings("secretName", "keySecret", "serialNumber", "subject", "notBefore", "notAfter", "fingerprintSHA256"),
);

const serverCertificateStatus = object<ServerCertificateStatus>()({
  ...optionalStrings("secretName", "serialNumber", "notBefore", "notAfter", "renewalTime", "lastRotationToken"),
  dnsNames: optional(array(string)),
  ipAddresses: optional(array(string)),
});

const databaseVerificationStatus = object<DatabaseVerificationStatus>()({
  ...optionalStrings("endpoint", "servedSerialNumber"),
  matchesCurrent: optional(boolean),
  ...optionalStrings("lastAttemptTime", "lastSuccessTime", "message"),
});

const reloadStatus = object<ReloadStatus>()(optionalStrings("lastReloadTime", "strategy", "appliedHash", "message"));

const configMapStatus = object<ConfigMapStatus>()(optionalStrings("name", "resourceVersion", "postgresqlConfHash", "hbaConfHash"));

const serverConfigurationStatus = object<ServerConfigurationStatus>()({
  configuration: optional(oneOf(POSTGRES_CONFIGURATIONS)),
  ...optionalStrings("postgresqlConf", "hbaFile", "owner", "configMapName", "message"),
  commandLineSettings: optional(array(string)),
});

const caRotationStatus = object<CARotationStatus>()({
  phase: optional(oneOf(CA_ROTATION_PHASES)),
  ...optionalStrings("startedTime", "phaseTime", "oldCASerial", "newCASerial", "readyTime", "message"),
});

const allowlistedStatus = object<AllowlistedStatus>()(optionalStrings("name", "fingerprintSHA256", "subject", "notAfter"));

const trustStatus = object<TrustStatus>()({
  allowlisted: optional(array(allowlistedStatus)),
  revokedSerials: optional(array(string)),
  crlNumber: optional(integer),
  crlNextUpdate: optional(string),
});

const passwordAccessStatus = object<PasswordAccessStatus>()({
  rule: optional(integer),
  users: optional(array(string)),
  databases: optional(array(string)),
  addresses: optional(array(string)),
});

export const secureDatabaseStatus = object<SecureDatabaseStatus>()({
  observedGeneration: optional(integer),
  conditions: optional(array(condition)),
  ca: optional(caStatus),
  serverCertificate: optional(serverCertificateStatus),
  verification: optional(databaseVerificationStatus),
  reload: optional(reloadStatus),
  configMap: optional(configMapStatus),
  server: optional(serverConfigurationStatus),
  caRotation: optional(caRotationStatus),
  trust: optional(trustStatus),
  passwordAccess: optional(array(passwordAccessStatus)),
});

const clientCertificateStatus = object<ClientCertificateStatus>()(
  optionalStrings("secretName", "serialNumber", "notBefore", "notAfter", "renewalTime", "lastRotationToken", "issuerFingerprintSHA256"),
);

const workloadStatus = object<WorkloadStatus>()({
  ...optionalStrings("kind", "name"),
  state: optional(oneOf(WORKLOAD_STATES)),
  ...optionalStrings("mountPath", "delivery", "component", "message"),
});

const connectionDeclaration = object<ConnectionDeclaration>()({
  host: optional(string),
  port: optional(integer),
  ...optionalStrings("database", "user", "sslMode", "certificatePath", "keyPath", "keyPemPath", "rootCertificatePath"),
  ...optionalStrings("pfxPath", "pfxPasswordSecretKey", "iniPath", "jdbcUrl"),
});

const connectionVerificationStatus = object<ConnectionVerificationStatus>()(
  optionalStrings("serialNumber", "lastAttemptTime", "lastSuccessTime", "message"),
);

export const imagingConnectionStatus = object<ImagingConnectionStatus>()({
  observedGeneration: optional(integer),
  conditions: optional(array(condition)),
  certificate: optional(clientCertificateStatus),
  workloads: optional(array(workloadStatus)),
  declaration: optional(connectionDeclaration),
  verification: optional(connectionVerificationStatus),
});
