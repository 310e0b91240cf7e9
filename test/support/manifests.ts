/** Manifests the tests apply, as a user would write them. */
import type { AccessGrant } from "../../src/api/secure-database";

/**
 * spec.access lines (2-space indented) granting exactly `grants` (JSON is YAML): without a grant a SecureDatabase
 * issues nothing, so each test names the identities its connections ask for, and no more.
 */
export function accessYaml(grants: readonly AccessGrant[]): string {
  return grants.length > 0 ? `  access: ${JSON.stringify(grants)}\n` : "";
}

/** An ImagingConnection for `user` to the SecureDatabase `db` of its namespace; `extra` adds spec lines (2-space indented). */
export function imagingConnectionYaml(ns: string, name: string, user: string, extra = ""): string {
  return connectionYaml(ns, name, user, { name: "db" }, extra);
}

/** An ImagingConnection for `user` to the SecureDatabase `database` (in its own namespace when none is named). */
export function connectionToDatabaseYaml(ns: string, name: string, user: string, database: { name: string; namespace?: string }): string {
  return connectionYaml(ns, name, user, database, "");
}

function connectionYaml(ns: string, name: string, user: string, database: { name: string; namespace?: string }, extra: string): string {
  const ref = database.namespace ? `{ name: ${database.name}, namespace: ${database.namespace} }` : `{ name: ${database.name} }`;
  return `apiVersion: mtls.imaging.dev/v1alpha1
kind: ImagingConnection
metadata: { name: ${name}, namespace: ${ns} }
spec:
  databaseRef: ${ref}
  user: ${user}
${extra}`;
}

/**
 * A SecureDatabase with no server behind it (its ConfigMap `absent`, host `<name>.<ns>.svc` unless given): its CA,
 * trust bundle and server certificate are issued all the same. `extra` adds spec lines (2-space indented);
 * `access` is its spec.access (default: none, so no connection gets a certificate).
 */
export function secureDatabaseWithoutServerYaml(
  ns: string,
  name: string,
  opts: { host?: string; extra?: string; access?: readonly AccessGrant[] } = {},
): string {
  return `apiVersion: mtls.imaging.dev/v1alpha1
kind: SecureDatabase
metadata: { name: ${name}, namespace: ${ns} }
spec:
  host: ${opts.host ?? `${name}.${ns}.svc`}
  postgres: { configMapName: absent }
${accessYaml(opts.access ?? [])}${opts.extra ?? ""}`;
}

/**
 * What a workload's owner puts on it so ImagingConnections may mount into it (docs/security.md, "Opt-in"): every
 * connection of the namespace, as a single-tenant CAST namespace would.
 */
export const ANY_CONNECTION_OPT_IN = { "mtls.imaging.dev/imaging-connections": "*" } as const;

/** A Deployment with one container and nothing else (opted in to every connection): a workload a test only needs to exist. */
export function plainDeployment(ns: string, name: string, container: string) {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, namespace: ns, annotations: { ...ANY_CONNECTION_OPT_IN } },
    spec: { replicas: 1, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: container, image: `castimaging/${name}:3.4.1` }] } } },
  };
}

/**
 * The CAST Imaging workloads as their Helm chart renders them, with fields of their own that the operator's
 * patches must leave alone: Helm's label and annotation, a pod-template annotation, a sidecar, an env var, and a
 * volume with its mount.
 */
export function castImagingWorkloads(ns: string) {
  const deployment = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "imaging-services", namespace: ns, labels: { "app.kubernetes.io/managed-by": "Helm" }, annotations: { "meta.helm.sh/release-name": "castimaging", ...ANY_CONNECTION_OPT_IN } },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: "imaging-services" } },
      template: {
        metadata: { labels: { app: "imaging-services" }, annotations: { "chart/checksum": "abc" } },
        spec: {
          containers: [
            { name: "app", image: "castimaging/imaging-services:3.4.1", env: [{ name: "JAVA_OPTS", value: "-Xmx2g" }], volumeMounts: [{ name: "config", mountPath: "/opt/config" }] },
            { name: "sidecar", image: "busybox", args: ["sleep", "infinity"] },
          ],
          volumes: [{ name: "config", configMap: { name: "imaging-services-config" } }],
        },
      },
    },
  };
  const statefulSet = {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: { name: "analysis-node", namespace: ns, annotations: { ...ANY_CONNECTION_OPT_IN } },
    spec: {
      serviceName: "analysis-node",
      selector: { matchLabels: { app: "analysis-node" } },
      template: { metadata: { labels: { app: "analysis-node" } }, spec: { containers: [{ name: "node", image: "castimaging/analysis-node:3.4.1", env: [{ name: "TZ", value: "UTC" }] }] } },
    },
  };
  return { deployment, statefulSet };
}

/** A SecureDatabase with no server behind it (host `<name>.<ns>.svc`) and these grants (spec.access), as JSON. */
export function databaseWithGrants(ns: string, name: string, access: unknown[]): string {
  return JSON.stringify({
    apiVersion: "mtls.imaging.dev/v1alpha1",
    kind: "SecureDatabase",
    metadata: { name, namespace: ns },
    spec: { host: `${name}.${ns}.svc`, postgres: { configMapName: "absent" }, access },
  });
}
