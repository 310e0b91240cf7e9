/**
 * The defaults themselves, and the names the operator computes: values only, importing nothing, so that the
 * validation rules and the defaulting (defaults.ts, which validates first) can both use them.
 */

/** Every default, in one place. The unit tests check the schema defaults against crds/*.yaml. */
export const DEFAULTS = {
  port: 5432,
  caMode: "Generated",
  caDuration: "87600h",
  caPropagationDelay: "2m",
  serverCertificateDuration: "2160h",
  clientCertificateDuration: "2160h",
  keyAlgorithm: "ECDSA",
  keySize: { ECDSA: 256, RSA: 2048 },
  postgresqlConfKey: "postgresql.conf",
  hbaConfKey: "pg_hba.conf",
  certificateDirectory: "/etc/postgresql/tls",
  configDirectory: "/etc/postgresql/mtls",
  entrypoint: "docker-entrypoint.sh",
  minTLSVersion: "TLSv1.2",
  hbaDatabases: ["all"],
  hbaUsers: ["all"],
  hbaAddresses: ["0.0.0.0/0", "::/0"],
  hbaClientCertificate: "verify-full",
  reloadStrategy: "SQL",
  reloadAdminUser: "postgres",
  reloadDatabase: "postgres",
  verificationEnabled: true,
  verificationInterval: "5m",
  revocationReason: "unspecified",
  revokeOnDelete: true,
  connectionDatabase: "postgres",
  sslMode: "verify-full",
  libpqEnv: false,
  /** The Secret CAST's chart mounts for its client TLS contract (EnablePostgresSSL=true). */
  chartSecretName: "ssl-certs",
  connectionVerificationEnabled: true,
  /** Parent of each connection's default mount path: `<this>/<connection name>`. */
  mountPathRoot: "/etc/cast-imaging/mtls",
  /** Where connections may mount identities unless the operator is told otherwise (--mount-path-prefix). */
  mountPathPrefix: "/etc/cast-imaging/",
} as const;

/** Operator-computed Secret names and CA common name. */
export const caSecretName = (sdbName: string): string => `${sdbName}-ca`;
export const serverSecretName = (sdbName: string): string => `${sdbName}-server-tls`;
/** The operator's own ConfigMap of a SecureDatabase: pg_hba.conf (CommandLine) or the lines for the DBA (External). */
export const serverConfigMapName = (sdbName: string): string => `${sdbName}-server-config`;
export const clientSecretName = (imcName: string): string => `${imcName}-client-tls`;
/** The ledger of every client certificate a SecureDatabase's CA issued (src/reconcilers/issued-ledger.ts). */
export const issuedLedgerName = (sdbName: string): string => `${sdbName}-issued`;
/** The ledger is kept in this many shards, `<sdb>-issued-0` … `-f` (issued-ledger.ts says why). */
export const LEDGER_SHARDS = 16;
export const issuedLedgerShardName = (sdbName: string, shard: number): string => `${issuedLedgerName(sdbName)}-${shard.toString(16)}`;
/** The volume through which the database workload mounts its server Secret (and by which it is known as ours). */
export const SERVER_VOLUME = "mtls-server-tls";
export const defaultMountPath = (imcName: string): string => `${DEFAULTS.mountPathRoot}/${imcName}`;
export function defaultCACommonName(name: string, namespace: string): string {
  const full = `${name}.${namespace} mTLS CA`;
  return full.length <= 64 ? full : `${name} mTLS CA`;
}
