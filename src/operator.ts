import type * as k8s from "@kubernetes/client-node";
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, OWNER_LABEL, OWNER_NAMESPACE_LABEL, WORKLOAD_KINDS } from "./api/types";
import { CONNECTIONS_ANNOTATION } from "./imaging/workload-plan";
import { COMPONENT_LABEL } from "./imaging/cast-chart";
import { chartConsumers, isChartSecret } from "./reconcilers/imaging-connection/chart-delivery";
import { EventRecorder } from "./kube/events";
import { RESOURCES } from "./kube/resources";
import { RestClient } from "./kube/rest";
import { errorMessage, withReconcileId, type LogFields, type Logger } from "./log";
import { OperatorMetrics } from "./observability/metrics";
import { CAST_INI_OWNER, ConnectionWorkloadReconciler, ImagingConnectionReconciler } from "./reconcilers/imaging-connection";
import {
  IMC_BY_CAST_NAMESPACE,
  IMC_BY_DATABASE,
  IMC_BY_WORKLOAD,
  indexImagingConnections,
  targetedWorkloads,
  targetsCastRelease,
  workloadKey,
  type ConfigMapObject,
  type ImagingConnectionObject,
  type OperatorContext,
  type SecretCacheObject,
  type SecureDatabaseObject,
  type WorkloadObject,
} from "./reconcilers/context";
import { endpointAllowance } from "./reconcilers/secure-database/reach";
import { SecureDatabaseReconciler } from "./reconcilers/secure-database/reconcile";
import { isLedgerConfigMap, revokedInLedgerConfigMap } from "./reconcilers/issued-ledger";
import { Informer, objectKey, type InformerEvent, type KubeObject } from "./runtime/informer";
import { WorkQueue, type ReconcileResult } from "./runtime/workqueue";

export interface OperatorOptions {
  kubeConfig: k8s.KubeConfig;
  log: Logger;
  /** Watch only these namespaces; every namespace when unset. */
  namespaces?: readonly string[];
  /** Reconciles running at once per kind. */
  concurrency?: number;
  /** What the operator may dial besides Services of a database's namespace (--allowed-endpoints). */
  allowedEndpoints?: readonly string[];
  /** Where connections may mount identities (default DEFAULTS.mountPathPrefix). */
  mountPathPrefix?: string;
  /** Where every database's CA keys live (--ca-key-namespace): watched for Secrets even when not in `namespaces`. */
  caKeyNamespace: string;
  /** Fill the caches but reconcile nothing until startReconciling() (a standby waiting for the leader lease). */
  standby?: boolean;
  now?: () => Date;
}

function splitKey(key: string): [string, string] {
  const i = key.indexOf("/");
  return [key.slice(0, i), key.slice(i + 1)];
}

/** `<Kind>.<name>` on what we manage points back at the object it belongs to (in its owner-namespace, if labelled). */
function ownerOf(obj: KubeObject): { kind: string; key: string } | undefined {
  const owner = obj.metadata.labels?.[OWNER_LABEL];
  const dot = owner?.indexOf(".") ?? -1;
  if (!owner || dot < 0) return undefined;
  const namespace = obj.metadata.labels?.[OWNER_NAMESPACE_LABEL] ?? obj.metadata.namespace;
  return { kind: owner.slice(0, dot), key: objectKey(namespace, owner.slice(dot + 1)) };
}

const json = (v: unknown): string => JSON.stringify(v ?? null);

/**
 * Whether an update is one a reconcile must see: spec (generation), deletion, finalizers, labels or
 * annotations. Status-only updates, our own included, are not: a status write must never trigger the next probe.
 */
function specOrMetaChanged(event: InformerEvent, obj: KubeObject, old: KubeObject | undefined): boolean {
  if (event !== "update" || !old) return true;
  const a = old.metadata;
  const b = obj.metadata;
  return (
    a.generation !== b.generation ||
    a.deletionTimestamp !== b.deletionTimestamp ||
    json(a.finalizers) !== json(b.finalizers) ||
    json(a.labels) !== json(b.labels) ||
    json(a.annotations) !== json(b.annotations)
  );
}

/**
 * Whether a change of a SecureDatabase concerns its connections: anything they read, which is all but the record of
 * its live checks (a check every few minutes would otherwise wake every connection of the database each time).
 */
export function connectionsAffected(event: InformerEvent, obj: SecureDatabaseObject, old: SecureDatabaseObject | undefined): boolean {
  if (event !== "update" || !old) return true;
  // Its spec and its deletion; not its finalizers, labels or annotations, which no connection reads.
  if (old.metadata.generation !== obj.metadata.generation || old.metadata.deletionTimestamp !== obj.metadata.deletionTimestamp) return true;
  const read = (o: SecureDatabaseObject) => json({ ...o.status, verification: undefined });
  return read(old) !== read(obj);
}

/** What connections read of their database's Secrets: the CA's certificate and key, and the trust bundle. */
const READ_BY_CONNECTIONS = ["tls.crt", "tls.key", "ca.crt"] as const;

/**
 * Whether a change of one of a database's Secrets concerns its connections. Not before the database has
 * acknowledged a CA in its status (no connection issues before then, and that status write wakes them), and not a
 * change of anything else, such as a new CRL (a revocation would otherwise wake every connection of the database).
 */
export function connectionsReadSecretChange(
  event: InformerEvent,
  obj: SecretCacheObject,
  old: SecretCacheObject | undefined,
  database: SecureDatabaseObject | undefined,
): boolean {
  if (!database?.status?.ca) return false;
  if (event !== "update" || !old) return true;
  return READ_BY_CONNECTIONS.some((k) => obj.data?.[k] !== old.data?.[k]);
}

/** Wires caches to work queues to reconcilers, and starts and stops them together. */
export class Operator {
  readonly context: OperatorContext;
  readonly secureDatabaseQueue: WorkQueue;
  readonly imagingConnectionQueue: WorkQueue;
  /** Keyed `<Kind>/<namespace>/<name>`: the CAST Imaging workloads ImagingConnections patch. */
  readonly workloadQueue: WorkQueue;
  readonly metrics: OperatorMetrics;
  /** False while a standby waits for the leader lease. */
  reconciling: boolean;
  private readonly informers: Informer<KubeObject>[];

  constructor(opts: OperatorOptions) {
    const client = new RestClient(opts.kubeConfig);
    const now = opts.now ?? (() => new Date());
    const log = opts.log;
    const namespaces = opts.namespaces;
    const informer = <T extends KubeObject>(type: (typeof RESOURCES)[keyof typeof RESOURCES], labelSelector?: string, scope = namespaces) =>
      new Informer<T>(client, { type, namespaces: scope, labelSelector }, log);
    this.context = {
      client,
      log,
      watchedNamespaces: namespaces,
      caKeyNamespace: opts.caKeyNamespace,
      ...(opts.mountPathPrefix ? { mountPathPrefix: opts.mountPathPrefix } : {}),
      ...(opts.allowedEndpoints ? { endpointAllowance: endpointAllowance(opts.allowedEndpoints) } : {}),
      events: new EventRecorder(client, log, now),
      now,
      cache: {
        secureDatabases: informer<SecureDatabaseObject>(RESOURCES.SecureDatabase),
        imagingConnections: informer<ImagingConnectionObject>(RESOURCES.ImagingConnection),
        secrets: informer<SecretCacheObject>(RESOURCES.Secret, `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`, namespaces && [...namespaces, opts.caKeyNamespace]),
        configMaps: informer<ConfigMapObject>(RESOURCES.ConfigMap, OWNER_LABEL),
        workloads: { Deployment: informer<WorkloadObject>(RESOURCES.Deployment), StatefulSet: informer<WorkloadObject>(RESOURCES.StatefulSet) },
        ...(namespaces === undefined ? { namespaces: informer<KubeObject>(RESOURCES.Namespace) } : {}),
      },
    };
    const { cache } = this.context;
    indexImagingConnections(cache.imagingConnections);
    this.metrics = new OperatorMetrics(() => [
      { name: "SecureDatabase", queue: this.secureDatabaseQueue },
      { name: "ImagingConnection", queue: this.imagingConnectionQueue },
      { name: "Workload", queue: this.workloadQueue },
    ], this.context.now);

    this.reconciling = !opts.standby;
    this.metrics.setLeader(this.reconciling);
    const queue = (kind: string, reconcile: (key: string) => Promise<ReconcileResult>) =>
      new WorkQueue(this.metrics.instrument(kind, (key) => withReconcileId(() => reconcile(key))), {
        // As controller-runtime's workers: nothing is reconciled from a half-filled cache (a SecureDatabase seen
        // before its CA-rotation Secrets would be reconciled as if they did not exist).
        paused: true,
        concurrency: opts.concurrency ?? 4,
        baseBackoffMs: 1000,
        maxBackoffMs: 5 * 60_000,
        onError: (key, { err, reason, retryInMs }) => {
          const resource = `${kind}/${key.slice(key.lastIndexOf("/") + 1)}`;
          // retryInMs is left out for a terminal failure: the key waits for a change.
          const fields: LogFields = { resource, namespace: key.split("/").at(-2) ?? "", reason, error: errorMessage(err), retryInMs };
          log.error("reconcile failed", fields);
        },
      });
    const sdbReconciler = new SecureDatabaseReconciler(this.context);
    const imcReconciler = new ImagingConnectionReconciler(this.context);
    const workloadReconciler = new ConnectionWorkloadReconciler(this.context);
    this.secureDatabaseQueue = queue("SecureDatabase", (key) => sdbReconciler.reconcile(...splitKey(key)));
    this.imagingConnectionQueue = queue("ImagingConnection", (key) => imcReconciler.reconcile(...splitKey(key)));
    this.workloadQueue = queue("Workload", (key) => workloadReconciler.reconcile(key));

    const connectionsOf = (dbKey: string) => {
      for (const imc of cache.imagingConnections.byIndex(IMC_BY_DATABASE, dbKey)) {
        this.imagingConnectionQueue.add(objectKey(imc.metadata.namespace, imc.metadata.name));
      }
    };
    const chartConsumersOf = (namespace: string, secretName: string) => {
      for (const c of chartConsumers(this.context, namespace, secretName)) this.workloadQueue.add(workloadKey(c.kind, namespace, c.name));
    };
    const workloadsOf = (imc: ImagingConnectionObject | undefined) => {
      if (!imc) return;
      for (const key of targetedWorkloads(imc)) this.workloadQueue.add(key);
      // A release's components are found, not listed: let each of them decide.
      const namespace = imc.metadata.namespace ?? "";
      if (!targetsCastRelease(imc)) return;
      for (const kind of WORKLOAD_KINDS) {
        for (const w of cache.workloads[kind].list(namespace)) {
          if (w.metadata.labels?.[COMPONENT_LABEL] !== undefined) this.workloadQueue.add(workloadKey(kind, namespace, w.metadata.name));
        }
      }
    };

    cache.secureDatabases.on((event, obj, old) => {
      const key = objectKey(obj.metadata.namespace, obj.metadata.name);
      if (event === "delete") this.metrics.forget("SecureDatabase", obj.metadata.namespace ?? "", obj.metadata.name);
      else this.metrics.observeSecureDatabase(obj);
      if (event === "delete") this.secureDatabaseQueue.forget(key);
      else if (specOrMetaChanged(event, obj, old)) this.secureDatabaseQueue.add(key);
      // Connections read the database's status (Ready, CA, rotation, trust) too, but not its verification record.
      if (connectionsAffected(event, obj, old)) connectionsOf(key);
    });
    cache.imagingConnections.on((event, obj, old) => {
      const key = objectKey(obj.metadata.namespace, obj.metadata.name);
      if (event === "delete") this.metrics.forget("ImagingConnection", obj.metadata.namespace ?? "", obj.metadata.name);
      else this.metrics.observeImagingConnection(obj);
      if (!specOrMetaChanged(event, obj, old)) return;
      if (event === "delete") this.imagingConnectionQueue.forget(key);
      else this.imagingConnectionQueue.add(key);
      // A connection that left a workload (spec edit, deletion) must be taken out of its plan too.
      workloadsOf(obj);
      workloadsOf(old);
    });
    cache.secrets.on((event, obj, old, origin) => {
      const owner = ownerOf(obj);
      if (isChartSecret(obj)) chartConsumersOf(obj.metadata.namespace ?? "", obj.metadata.name);
      if (owner?.kind === "SecureDatabase") {
        this.secureDatabaseQueue.add(owner.key);
        if (connectionsReadSecretChange(event, obj, old, cache.secureDatabases.get(...splitKey(owner.key)))) connectionsOf(owner.key);
      } else if (owner?.kind === "ImagingConnection") {
        // Only its own reconcile writes a connection's Secrets, and goes on from them in the same pass.
        if (origin === "watch") this.imagingConnectionQueue.add(owner.key);
        const [namespace, name] = splitKey(owner.key);
        const imc = cache.imagingConnections.get(namespace, name);
        workloadsOf(imc);
        // A CA rotation waits for every client Secret: tell the database when one changes.
        const dbKey = imc?.spec?.databaseRef?.name ? objectKey(imc.spec.databaseRef.namespace ?? namespace, imc.spec.databaseRef.name) : undefined;
        const [dbNs, dbName] = dbKey ? splitKey(dbKey) : ["", ""];
        const rotating = dbKey ? (cache.secureDatabases.get(dbNs, dbName)?.status?.caRotation?.phase ?? "Idle") !== "Idle" : false;
        if (dbKey && rotating) this.secureDatabaseQueue.add(dbKey);
      }
    });
    cache.configMaps.on((event, obj, old) => {
      const owner = ownerOf(obj);
      // A ledger shard changes at every issuance; its database needs to look only when a revocation came or went.
      const ledgerOnly = isLedgerConfigMap(obj) && event !== "delete" && revokedInLedgerConfigMap(obj) === revokedInLedgerConfigMap(old);
      if (owner?.kind === "SecureDatabase" && !ledgerOnly) this.secureDatabaseQueue.add(owner.key);
      if (obj.metadata.labels?.[OWNER_LABEL] === CAST_INI_OWNER) {
        const ref = obj.metadata.ownerReferences?.[0];
        if (ref && (ref.kind === "Deployment" || ref.kind === "StatefulSet")) {
          this.workloadQueue.add(workloadKey(ref.kind, obj.metadata.namespace ?? "", ref.name));
        }
      }
    });
    for (const kind of WORKLOAD_KINDS) {
      cache.workloads[kind].on((event, obj, old) => {
        const namespace = obj.metadata.namespace ?? "";
        // A consumer of a chart Secret we fill: its rollout's progress decides whose turn it is to restart next.
        for (const volume of obj.spec?.template?.spec?.volumes ?? []) {
          const secret = volume.secret?.secretName ? cache.secrets.get(namespace, volume.secret.secretName) : undefined;
          if (!isChartSecret(secret)) continue;
          chartConsumersOf(namespace, secret.metadata.name);
          const owner = ownerOf(secret);
          if (owner?.kind === "ImagingConnection") this.imagingConnectionQueue.add(owner.key);
        }
        // Otherwise replica counts and rollout status change all the time; only the template matters here.
        if (event === "update" && old && old.metadata.generation === obj.metadata.generation) return;
        const key = workloadKey(kind, namespace, obj.metadata.name);
        const targeting = [...cache.imagingConnections.byIndex(IMC_BY_WORKLOAD, key)];
        // A release's component (a new one a chart upgrade added, or one that went away) concerns its connections.
        if (obj.metadata.labels?.[COMPONENT_LABEL] !== undefined) targeting.push(...cache.imagingConnections.byIndex(IMC_BY_CAST_NAMESPACE, namespace));
        const ours = obj.spec?.template?.metadata?.annotations?.[CONNECTIONS_ANNOTATION] !== undefined;
        if (targeting.length > 0 || ours) this.workloadQueue.add(key);
        for (const imc of targeting) this.imagingConnectionQueue.add(objectKey(imc.metadata.namespace, imc.metadata.name));
      });
    }
    // A namespace relabelled gains or loses grants by namespaceSelector: its connections decide again.
    cache.namespaces?.on((event, obj, old) => {
      if (event === "update" && json(obj.metadata.labels) === json(old?.metadata.labels)) return;
      for (const imc of cache.imagingConnections.list(obj.metadata.name)) this.imagingConnectionQueue.add(objectKey(imc.metadata.namespace, imc.metadata.name));
    });
    this.informers = [
      ...(cache.namespaces ? [cache.namespaces] : []),
      cache.secureDatabases,
      cache.imagingConnections,
      cache.secrets,
      cache.configMaps,
      cache.workloads.Deployment,
      cache.workloads.StatefulSet,
    ] as Informer<KubeObject>[];
  }

  /** Starts every cache; reconciles begin once all have synced (and this replica leads). Resolves then. */
  async start(): Promise<void> {
    for (const i of this.informers) i.start();
    await Promise.all(this.informers.map((i) => i.synced));
    const objects = this.informers.map((i) => `${i.description}=${i.size}`).join(", ");
    this.context.log.info("caches synced", { reason: "CachesSynced", resource: "operator", namespace: "", objects } satisfies LogFields);
    if (this.reconciling) this.resumeQueues();
  }

  hasSynced(): boolean {
    return this.informers.every((i) => i.hasSynced());
  }

  /** Runs the work collected while on standby, and everything after. */
  startReconciling(): void {
    this.reconciling = true;
    this.metrics.setLeader(true);
    if (this.hasSynced()) this.resumeQueues();
  }

  private resumeQueues(): void {
    for (const q of [this.secureDatabaseQueue, this.imagingConnectionQueue, this.workloadQueue]) q.resume();
  }

  async stop(): Promise<void> {
    for (const i of this.informers) i.stop();
    await Promise.all([this.secureDatabaseQueue.shutdown(), this.imagingConnectionQueue.shutdown(), this.workloadQueue.shutdown()]);
  }
}
