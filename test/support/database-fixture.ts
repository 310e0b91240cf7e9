import { SECURE_DATABASE_OPT_IN_ANNOTATION } from "../../src/api/opt-in";
import type * as k8s from "@kubernetes/client-node";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { AccessGrant } from "../../src/api/secure-database";
import type { ControlPlane } from "./controlplane";
import { accessYaml } from "./manifests";
import type { PostgresServer } from "./postgres";
import { startVolumeSyncer, type VolumeSyncer } from "./volume-syncer";

/** A database as a cluster would have it: its configuration in a ConfigMap, its StatefulSet, and the "kubelet". */
export interface DatabaseInCluster {
  configMapName: string;
  workloadName: string;
  /** Where the server Secret lands on this machine: spec.postgres.certificateDirectory. */
  certificateDirectory: string;
  originalConf: string;
  originalHba: string;
  syncer: VolumeSyncer;
  /**
   * A SecureDatabase for this server as reached from this machine (localhost, SQL reloads as postgres), granting
   * exactly `access` (default: nothing, so no connection gets a certificate; postgres can never be granted).
   */
  secureDatabaseYaml(name?: string, access?: readonly AccessGrant[]): string;
}

/**
 * Puts a real PostgreSQL server's own postgresql.conf and pg_hba.conf into a ConfigMap, creates its StatefulSet,
 * and starts the volume syncer that lays the ConfigMap and the server Secret down and restarts the server on a
 * rollout.
 */
export async function databaseInCluster(
  cp: ControlPlane,
  pg: PostgresServer,
  opts: {
    namespace: string;
    configMapName: string;
    workloadName: string;
    container?: string;
    serverSecretName: string;
    kubeConfig?: k8s.KubeConfig;
    /** How late the "kubelet" lays changes down (default: at once). */
    syncDelayMs?: number;
    /**
     * The SecureDatabases the ConfigMap and StatefulSet opt in to (mtls.imaging.dev/secure-database), as their owner
     * would with kubectl annotate; default "db". "" opts in to none.
     */
    secureDatabases?: string;
  },
): Promise<DatabaseInCluster> {
  const originalConf = await readFile(join(pg.dataDir, "postgresql.conf"), "utf8");
  const originalHba = await readFile(join(pg.dataDir, "pg_hba.conf"), "utf8");
  const apply = async (body: object) => {
    const r = await cp.kubectl(["apply", "-f", "-"], { input: JSON.stringify(body) });
    if (r.code !== 0) throw new Error(r.stderr);
  };
  const optIn = opts.secureDatabases ?? "db";
  const annotations = optIn ? { annotations: { [SECURE_DATABASE_OPT_IN_ANNOTATION]: optIn } } : {};
  await apply({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: opts.configMapName, namespace: opts.namespace, ...annotations }, data: { "postgresql.conf": originalConf, "pg_hba.conf": originalHba } });
  await apply({
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: { name: opts.workloadName, namespace: opts.namespace, ...annotations },
    spec: {
      serviceName: opts.workloadName,
      selector: { matchLabels: { app: opts.workloadName } },
      // As a chart that mounts its configuration from a ConfigMap would: the directory the server reads (the syncer
      // stands in for the kubelet there), so the operator finds postgresql.conf and pg_hba.conf live in it.
      template: {
        metadata: { labels: { app: opts.workloadName } },
        spec: {
          containers: [{
            name: opts.container ?? "postgres",
            image: "postgres:15",
            env: [{ name: "KEEP", value: "me" }, { name: "PGDATA", value: pg.dataDir }],
            volumeMounts: [{ name: "config", mountPath: pg.dataDir }],
          }],
          volumes: [{ name: "config", configMap: { name: opts.configMapName } }],
        },
      },
    },
  });
  const certificateDirectory = join(pg.dataDir, "tls");
  const syncer = await startVolumeSyncer({
    kubeConfig: opts.kubeConfig ?? cp.kubeConfig,
    namespace: opts.namespace,
    pg,
    volumes: [
      { kind: "ConfigMap", name: opts.configMapName, dir: pg.dataDir, keys: ["postgresql.conf", "pg_hba.conf"], ownedByServer: true },
      { kind: "Secret", name: opts.serverSecretName, dir: certificateDirectory, ownedByServer: true },
    ],
    workload: { kind: "StatefulSet", name: opts.workloadName },
    ...(opts.syncDelayMs ? { delayMs: opts.syncDelayMs } : {}),
  });
  const secureDatabaseYaml = (name = "db", access: readonly AccessGrant[] = []) => `apiVersion: mtls.imaging.dev/v1alpha1
kind: SecureDatabase
metadata: { name: ${name}, namespace: ${opts.namespace} }
spec:
  host: localhost
  port: ${pg.port}
  additionalIPAddresses: ["127.0.0.1"]
  postgres: { configMapName: ${opts.configMapName}, certificateDirectory: ${certificateDirectory} }
  workloadRef: { kind: StatefulSet, name: ${opts.workloadName} }
  reload: { strategy: SQL, adminUser: postgres }
  verification: { endpoint: "127.0.0.1:${pg.port}" }
${accessYaml(access)}`;
  return { configMapName: opts.configMapName, workloadName: opts.workloadName, certificateDirectory, originalConf, originalHba, syncer, secureDatabaseYaml };
}
