import type { ImagingConnection, SecureDatabase } from "../api/types";
import { clientSecretName } from "../api/defaults";
import type { EventRecorder } from "../kube/events";
import type { Workload, WorkloadKind } from "../imaging/pod-template";
import type { RestClient } from "../kube/rest";
import type { SecretObject } from "../kube/secrets";
import type { Logger } from "../log";
import { objectKey, type Informer, type KubeObject } from "../runtime/informer";
import type { EndpointAllowance } from "./secure-database/reach";

export type ConfigMapObject = KubeObject & { data?: Record<string, string> };
export type SecureDatabaseObject = SecureDatabase & KubeObject;
export type ImagingConnectionObject = ImagingConnection & KubeObject;
export type SecretCacheObject = SecretObject & KubeObject;
export type WorkloadObject = Workload & KubeObject;

/** What every reconciler works with: the caches it reads, the client it writes with, and the clock. */
export interface OperatorContext {
  client: RestClient;
  events: EventRecorder;
  log: Logger;
  now: () => Date;
  /** The namespaces the operator watches; every namespace when unset. */
  watchedNamespaces?: readonly string[];
  /** What the operator may dial besides Services of a database's namespace (--allowed-endpoints); none when unset. */
  endpointAllowance?: EndpointAllowance;
  /** Where every database's CA keys live (src/reconcilers/ca-keys.ts): never a database's own namespace. */
  caKeyNamespace: string;
  /** spec.workloads[].mountPath must lie under this directory (ends with "/"); default DEFAULTS.mountPathPrefix. */
  mountPathPrefix?: string;
  cache: {
    secureDatabases: Informer<SecureDatabaseObject>;
    /** Indexed by IMC_BY_DATABASE and IMC_BY_WORKLOAD (see indexImagingConnections). */
    imagingConnections: Informer<ImagingConnectionObject>;
    /** Secrets we manage (label-selected). Brought CA Secrets are read directly. */
    secrets: Informer<SecretCacheObject>;
    /** ConfigMaps we claim or own (label-selected): PostgreSQL configuration and CAST .ini files. */
    configMaps: Informer<ConfigMapObject>;
    /** Every Deployment and StatefulSet in scope: a Helm upgrade that drops our mounts must be seen. */
    workloads: Record<WorkloadKind, Informer<WorkloadObject>>;
    /** Namespaces, for grants by namespaceSelector: only an operator that watches every namespace has them. */
    namespaces?: Informer<KubeObject>;
  };
}

/** Index of ImagingConnections by the SecureDatabase they reference: `<namespace>/<name>`. */
export const IMC_BY_DATABASE = "database";
/** Index of ImagingConnections by the workloads they target: `<Kind>/<namespace>/<name>`. */
export const IMC_BY_WORKLOAD = "workload";
/** Index of the ImagingConnections that target CAST's chart by release or selector, by their namespace. */
export const IMC_BY_CAST_NAMESPACE = "cast-namespace";
/** Index of ImagingConnections by the client Secret they write: `<namespace>/<secretName>`. */
export const IMC_BY_SECRET = "secret";

export const workloadKey = (kind: WorkloadKind, namespace: string, name: string): string => `${kind}/${namespace}/${name}`;

export function parseWorkloadKey(key: string): { kind: WorkloadKind; namespace: string; name: string } {
  const [kind, namespace, ...rest] = key.split("/");
  return { kind: kind as WorkloadKind, namespace: namespace ?? "", name: rest.join("/") };
}

export function indexImagingConnections(informer: Informer<ImagingConnectionObject>): void {
  informer.addIndex(IMC_BY_DATABASE, (imc) => {
    if (!imc.spec?.databaseRef?.name) return [];
    return [objectKey(imc.spec.databaseRef.namespace ?? imc.metadata.namespace, imc.spec.databaseRef.name)];
  });
  informer.addIndex(IMC_BY_WORKLOAD, (imc) => targetedWorkloads(imc));
  informer.addIndex(IMC_BY_CAST_NAMESPACE, (imc) => (targetsCastRelease(imc) ? [imc.metadata.namespace ?? "default"] : []));
  informer.addIndex(IMC_BY_SECRET, (imc) => [objectKey(imc.metadata.namespace, imc.spec?.secretName ?? clientSecretName(imc.metadata.name))]);
}

/** Does it find its workloads in a CAST Imaging release (raw spec: also for objects that do not validate)? */
export function targetsCastRelease(imc: ImagingConnectionObject): boolean {
  return imc.spec?.castImaging?.release !== undefined || imc.spec?.castImaging?.selector !== undefined;
}

/** The workload keys an ImagingConnection targets (raw spec: also for objects that do not validate). */
export function targetedWorkloads(imc: ImagingConnectionObject): string[] {
  const ns = imc.metadata.namespace ?? "default";
  return (imc.spec?.workloads ?? []).filter((w) => w?.kind && w.name).map((w) => workloadKey(w.kind, ns, w.name));
}
