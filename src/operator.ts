import type * as k8s from "@kubernetes/client-node";
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, OWNER_LABEL } from "./api/types";
import { EventRecorder } from "./kube/events";
import { RESOURCES } from "./kube/resources";
import { RestClient } from "./kube/rest";
import type { Logger } from "./log";
import type { ConfigMapObject, ImagingConnectionObject, OperatorContext, SecretCacheObject, SecureDatabaseObject } from "./reconcilers/context";
import { SecureDatabaseReconciler } from "./reconcilers/securedatabase";
import { Informer, objectKey, type KubeObject } from "./runtime/informer";
import { WorkQueue } from "./runtime/workqueue";

export interface OperatorOptions {
  kubeConfig: k8s.KubeConfig;
  log: Logger;
  /** Watch only this namespace; every namespace when unset. */
  namespace?: string;
  /** Reconciles running at once per kind. */
  concurrency?: number;
  now?: () => Date;
}

function splitKey(key: string): [string, string] {
  const i = key.indexOf("/");
  return [key.slice(0, i), key.slice(i + 1)];
}

/** `<Kind>.<name>` on what we manage points back at the object it belongs to. */
function ownerOf(obj: KubeObject): { kind: string; key: string } | undefined {
  const owner = obj.metadata.labels?.[OWNER_LABEL];
  const dot = owner?.indexOf(".") ?? -1;
  if (!owner || dot < 0) return undefined;
  return { kind: owner.slice(0, dot), key: objectKey(obj.metadata.namespace, owner.slice(dot + 1)) };
}

/** Wires caches to work queues to reconcilers, and starts and stops them together. */
export class Operator {
  readonly context: OperatorContext;
  readonly secureDatabaseQueue: WorkQueue;
  private readonly informers: Informer<KubeObject>[];

  constructor(opts: OperatorOptions) {
    const client = new RestClient(opts.kubeConfig);
    const log = opts.log;
    const ns = opts.namespace;
    const informer = <T extends KubeObject>(type: (typeof RESOURCES)[keyof typeof RESOURCES], labelSelector?: string) =>
      new Informer<T>(client, { type, namespace: ns, labelSelector }, log);
    this.context = {
      client,
      log,
      events: new EventRecorder(client, log),
      now: opts.now ?? (() => new Date()),
      cache: {
        secureDatabases: informer<SecureDatabaseObject>(RESOURCES.SecureDatabase),
        imagingConnections: informer<ImagingConnectionObject>(RESOURCES.ImagingConnection),
        secrets: informer<SecretCacheObject>(RESOURCES.Secret, `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`),
        configMaps: informer<ConfigMapObject>(RESOURCES.ConfigMap, OWNER_LABEL),
      },
    };
    const sdbReconciler = new SecureDatabaseReconciler(this.context);
    this.secureDatabaseQueue = new WorkQueue((key) => sdbReconciler.reconcile(...splitKey(key)), {
      concurrency: opts.concurrency ?? 4,
      baseBackoffMs: 1000,
      maxBackoffMs: 5 * 60_000,
      onError: (key, err, retryInMs) =>
        log.error("reconcile failed", { resource: `SecureDatabase/${splitKey(key)[1]}`, namespace: splitKey(key)[0], reason: "ReconcileError", error: err instanceof Error ? err.message : String(err), retryInMs }),
    });

    const { cache } = this.context;
    cache.secureDatabases.on((event, obj) => {
      const key = objectKey(obj.metadata.namespace, obj.metadata.name);
      if (event === "delete") this.secureDatabaseQueue.forget(key);
      else this.secureDatabaseQueue.add(key);
    });
    const toOwner = (_event: string, obj: KubeObject) => {
      const owner = ownerOf(obj);
      if (owner?.kind === "SecureDatabase") this.secureDatabaseQueue.add(owner.key);
    };
    cache.secrets.on(toOwner);
    cache.configMaps.on(toOwner);
    this.informers = [cache.secureDatabases, cache.imagingConnections, cache.secrets, cache.configMaps] as Informer<KubeObject>[];
  }

  /** Starts every cache; reconciles begin as the caches fill. Resolves once all caches have synced. */
  async start(): Promise<void> {
    for (const i of this.informers) i.start();
    await Promise.all(this.informers.map((i) => i.synced));
    this.context.log.info("caches synced", { reason: "CachesSynced", resource: "operator", namespace: "", objects: this.informers.map((i) => `${i.description}=${i.size}`).join(", ") });
  }

  hasSynced(): boolean {
    return this.informers.every((i) => i.hasSynced());
  }

  async stop(): Promise<void> {
    for (const i of this.informers) i.stop();
    await this.secureDatabaseQueue.shutdown();
  }
}
