import * as k8s from "@kubernetes/client-node";
import { isApiError, resourcePath, type ResourceType, type RestClient } from "../kube/rest";
import { errorMessage, type LogFields, type Logger } from "../log";

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: k8s.V1ObjectMeta & { name: string };
}

export type InformerEvent = "add" | "update" | "delete";
/**
 * Where a change came from: the API server's list and watch, or the operator's own write fed in by observe/forget
 * (a reconcile that wrote something goes on from it in the same pass, and need not be woken by it).
 */
export type ChangeOrigin = "watch" | "own";
export type InformerHandler<T> = (event: InformerEvent, obj: T, old: T | undefined, origin: ChangeOrigin) => void;

export interface InformerOptions {
  type: ResourceType;
  /** Watch only these namespaces (one list+watch each, one cache); all namespaces when unset. */
  namespaces?: readonly string[];
  labelSelector?: string;
  /** First and longest wait before relisting after an error. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/**
 * Longest wait before relisting after an error. Short, because a relist is cheap next to an operator that goes on
 * acting on a stale cache: after an API server outage the caches catch up within seconds of it answering.
 */
const DEFAULT_MAX_BACKOFF_MS = 5_000;

const NAMESPACE_INDEX = "\u0000namespace";

/** Objects per page of a relist: client-go's default. */
const LIST_PAGE_SIZE = 500;

/** One list+watch loop: of one namespace, or of all. */
interface Stream {
  namespace: string | undefined;
  resourceVersion: string;
  abort?: AbortController;
  backoffMs: number;
  retryTimer?: NodeJS.Timeout;
  synced: boolean;
}

export function objectKey(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

/**
 * List + watch one resource type into an in-memory cache. Resumes the watch from the last resourceVersion, relists
 * on 410 Gone, and restarts with backoff after any error: it never stops on its own.
 */
export class Informer<T extends KubeObject> {
  private readonly cache = new Map<string, T>();
  private readonly handlers: InformerHandler<T>[] = [];
  private readonly indexers = new Map<string, (obj: T) => string[]>();
  private readonly indexes = new Map<string, Map<string, Set<string>>>();
  private readonly streams: Stream[];
  private stopped = true;
  private syncedFlag = false;
  private resolveSynced!: () => void;
  readonly synced: Promise<void> = new Promise((r) => (this.resolveSynced = r));

  constructor(
    private readonly client: RestClient,
    private readonly opts: InformerOptions,
    private readonly log: Logger,
  ) {
    const scopes = opts.namespaces ? [...new Set(opts.namespaces)] : [undefined];
    this.streams = scopes.map((namespace) => ({ namespace, resourceVersion: "", backoffMs: opts.minBackoffMs ?? 500, synced: false }));
    // list(namespace) is asked on reconciles: without an index it walks every object of every namespace.
    this.addIndex(NAMESPACE_INDEX, (o) => [o.metadata.namespace ?? ""]);
  }

  get description(): string {
    const namespaces = this.opts.namespaces ? ` in ${this.opts.namespaces.join(",")}` : "";
    const selector = this.opts.labelSelector ? ` (${this.opts.labelSelector})` : "";
    return `${this.opts.type.plural}${namespaces}${selector}`;
  }

  on(handler: InformerHandler<T>): void {
    this.handlers.push(handler);
  }

  /** Registers an index from a value derived from each object (e.g. a referenced ConfigMap) to the objects. */
  addIndex(name: string, fn: (obj: T) => string[]): void {
    this.indexers.set(name, fn);
    const index = new Map<string, Set<string>>();
    this.indexes.set(name, index);
    for (const [key, obj] of this.cache) for (const v of fn(obj)) addTo(index, v, key);
  }

  byIndex(name: string, value: string): T[] {
    const keys = this.indexes.get(name)?.get(value);
    return keys ? [...keys].map((k) => this.cache.get(k)).filter((o): o is T => o !== undefined) : [];
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.cache.get(objectKey(namespace, name));
  }

  list(namespace?: string): T[] {
    return namespace === undefined ? [...this.cache.values()] : this.byIndex(NAMESPACE_INDEX, namespace);
  }

  get size(): number {
    return this.cache.size;
  }

  /**
   * Feeds an object we just wrote into the cache, so the next reconcile never acts on a copy older than its own
   * write (the watch event that follows is then a no-op). Older copies than the cached one are ignored.
   */
  observe(obj: T): void {
    const cached = this.cache.get(objectKey(obj.metadata.namespace, obj.metadata.name));
    if (cached && newerOrSame(cached.metadata.resourceVersion, obj.metadata.resourceVersion)) return;
    this.upsert(this.withKind(obj), "own");
  }

  /** Drops an object we just deleted. */
  forget(namespace: string | undefined, name: string): void {
    const cached = this.cache.get(objectKey(namespace, name));
    if (cached) this.remove(cached, "own");
  }

  hasSynced(): boolean {
    return this.syncedFlag;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    for (const stream of this.streams) void this.relist(stream);
  }

  stop(): void {
    this.stopped = true;
    for (const stream of this.streams) {
      clearTimeout(stream.retryTimer);
      stream.abort?.abort();
    }
  }

  private async relist(stream: Stream): Promise<void> {
    if (this.stopped) return;
    try {
      const list = await this.listAll(stream.namespace);
      this.replaceAll(list.items, stream.namespace);
      stream.resourceVersion = list.resourceVersion;
      stream.synced = true;
      stream.backoffMs = this.opts.minBackoffMs ?? 500;
      if (!this.syncedFlag && this.streams.every((s) => s.synced)) {
        this.syncedFlag = true;
        this.resolveSynced();
      }
      await this.watch(stream);
    } catch (err) {
      this.retryLater(stream, err);
    }
  }

  /**
   * Every object, LIST_PAGE_SIZE at a time (one consistent snapshot through the continue token, as client-go's
   * reflector does): a relist of tens of thousands of Secrets never arrives, or is parsed, as one response.
   */
  private async listAll(namespace: string | undefined): Promise<{ items: T[]; resourceVersion: string }> {
    const items: T[] = [];
    let next: string | undefined;
    for (;;) {
      const page = await this.client.list<T>(this.opts.type, namespace, { labelSelector: this.opts.labelSelector, limit: LIST_PAGE_SIZE, continue: next });
      for (const o of page.items) items.push(this.withKind(o));
      next = page.metadata.continue || undefined;
      if (!next) return { items, resourceVersion: page.metadata.resourceVersion ?? "" };
    }
  }

  private async watch(stream: Stream): Promise<void> {
    if (this.stopped) return;
    const watcher = new k8s.Watch(this.client.kubeConfig);
    const path = resourcePath(this.opts.type, { namespace: stream.namespace });
    stream.abort = await watcher.watch(
      path,
      { resourceVersion: stream.resourceVersion, allowWatchBookmarks: true, labelSelector: this.opts.labelSelector },
      (phase: string, obj: T & { code?: number }) => this.onWatchEvent(stream, phase, obj),
      (err: unknown) => this.onWatchDone(stream, err),
    );
  }

  private onWatchEvent(stream: Stream, phase: string, raw: T & { code?: number }): void {
    if (phase === "ERROR") {
      // 410 Gone: our resourceVersion is too old; the watch ends and we relist.
      if (raw.code === 410) stream.resourceVersion = "";
      return;
    }
    stream.backoffMs = this.opts.minBackoffMs ?? 500;
    const obj = this.withKind(raw);
    if (obj.metadata.resourceVersion) stream.resourceVersion = obj.metadata.resourceVersion;
    if (phase === "ADDED" || phase === "MODIFIED") this.upsert(obj);
    else if (phase === "DELETED") this.remove(obj);
  }

  private onWatchDone(stream: Stream, err: unknown): void {
    if (this.stopped) return;
    const code = (err as { statusCode?: number } | null)?.statusCode;
    if (code === 410 || isApiError(err, 410)) stream.resourceVersion = "";
    const isTimeout = (err as { name?: string } | null)?.name === "TimeoutError";
    if (err && !isTimeout && code !== 410) {
      this.retryLater(stream, err);
      return;
    }
    // A closed or idle watch resumes from where it was; a stale one relists.
    void (stream.resourceVersion ? this.watch(stream).catch((e: unknown) => this.retryLater(stream, e)) : this.relist(stream));
  }

  private retryLater(stream: Stream, err: unknown): void {
    if (this.stopped) return;
    // Jittered, so the informers of one operator do not all knock on a restarting API server at the same instant.
    const delay = Math.round(stream.backoffMs * (0.8 + Math.random() * 0.4));
    stream.backoffMs = Math.min(stream.backoffMs * 2, this.opts.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS);
    this.log.warn("watch interrupted; relisting", {
      reason: "WatchError",
      resource: this.description,
      namespace: stream.namespace ?? "",
      retryInMs: delay,
      error: errorMessage(err),
    } satisfies LogFields);
    stream.resourceVersion = "";
    stream.retryTimer = setTimeout(() => void this.relist(stream), delay);
  }

  /** Lists omit kind/apiVersion on items; handlers and patches want them. */
  private withKind(obj: T): T {
    const { type } = this.opts;
    obj.apiVersion ??= type.group ? `${type.group}/${type.version}` : type.version;
    obj.kind ??= type.kind;
    // managedFields are the largest part of most objects: only who applies (manager, operation) is kept.
    const managers = obj.metadata.managedFields;
    if (managers) {
      const seen = new Set<string>();
      obj.metadata.managedFields = managers
        .filter((f) => !seen.has(`${f.manager}/${f.operation}`) && seen.add(`${f.manager}/${f.operation}`))
        .map((f) => ({ manager: f.manager, operation: f.operation }));
    }
    return obj;
  }

  /** A relist of one scope (a namespace, or all) replaces that scope's part of the cache only. */
  private replaceAll(items: T[], namespace: string | undefined): void {
    const seen = new Set<string>();
    for (const obj of items) {
      seen.add(objectKey(obj.metadata.namespace, obj.metadata.name));
      this.upsert(obj);
    }
    for (const [key, obj] of [...this.cache]) if (!seen.has(key) && (namespace === undefined || obj.metadata.namespace === namespace)) this.remove(obj);
  }

  private upsert(obj: T, origin: ChangeOrigin = "watch"): void {
    const key = objectKey(obj.metadata.namespace, obj.metadata.name);
    const old = this.cache.get(key);
    if (old && old.metadata.resourceVersion === obj.metadata.resourceVersion) return;
    if (old) this.unindex(key, old);
    this.cache.set(key, obj);
    for (const [name, fn] of this.indexers) for (const v of fn(obj)) addTo(this.indexes.get(name)!, v, key);
    this.emit(old ? "update" : "add", obj, old, origin);
  }

  private remove(obj: T, origin: ChangeOrigin = "watch"): void {
    const key = objectKey(obj.metadata.namespace, obj.metadata.name);
    const old = this.cache.get(key);
    if (!old) return;
    this.cache.delete(key);
    this.unindex(key, old);
    this.emit("delete", old, undefined, origin);
  }

  private unindex(key: string, obj: T): void {
    for (const [name, fn] of this.indexers) {
      const index = this.indexes.get(name)!;
      for (const v of fn(obj)) {
        const set = index.get(v);
        set?.delete(key);
        if (set?.size === 0) index.delete(v);
      }
    }
  }

  private emit(event: InformerEvent, obj: T, old: T | undefined, origin: ChangeOrigin): void {
    for (const h of this.handlers) {
      try {
        h(event, obj, old, origin);
      } catch (err) {
        const namespace = obj.metadata.namespace ?? "";
        const fields: LogFields = { reason: "HandlerError", resource: this.description, namespace, error: String(err) };
        this.log.error("informer handler failed", fields);
      }
    }
  }
}

/** resourceVersions are opaque, but etcd's are integers: compare them as such when they are. */
function newerOrSame(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return false;
  return BigInt(a) >= BigInt(b);
}

function addTo(index: Map<string, Set<string>>, value: string, key: string): void {
  let set = index.get(value);
  if (!set) index.set(value, (set = new Set()));
  set.add(key);
}
