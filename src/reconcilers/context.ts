import type { ImagingConnection, SecureDatabase } from "../api/types";
import type { EventRecorder } from "../kube/events";
import type { RestClient } from "../kube/rest";
import type { SecretObject } from "../kube/secrets";
import type { Logger } from "../log";
import type { Informer, KubeObject } from "../runtime/informer";

export type ConfigMapObject = KubeObject & { data?: Record<string, string> };
export type SecureDatabaseObject = SecureDatabase & KubeObject;
export type ImagingConnectionObject = ImagingConnection & KubeObject;
export type SecretCacheObject = SecretObject & KubeObject;

/** What every reconciler works with: the caches it reads, the client it writes with, and the clock. */
export interface OperatorContext {
  client: RestClient;
  events: EventRecorder;
  log: Logger;
  now: () => Date;
  cache: {
    secureDatabases: Informer<SecureDatabaseObject>;
    imagingConnections: Informer<ImagingConnectionObject>;
    /** Secrets we manage (label-selected). Brought CA Secrets are read directly. */
    secrets: Informer<SecretCacheObject>;
    /** PostgreSQL ConfigMaps claimed by a SecureDatabase (label-selected). */
    configMaps: Informer<ConfigMapObject>;
  };
}
