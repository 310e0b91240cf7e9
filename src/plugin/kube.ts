/**
 * The plugin's only I/O with the cluster: the kubeconfig as kubectl reads it, and the few reads the verbs need,
 * over the operator's own REST client. Every failure becomes a PluginError of one line that says what to do.
 */
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { GROUP, VERSION, type ObjectMeta } from "../api/types";
import { RESOURCES } from "../kube/resources";
import { ApiError, MERGE_PATCH, resourcePath, RestClient, type ResourceType } from "../kube/rest";
import type { SecretObject } from "../kube/secrets";
import { PluginError } from "./errors";

/** The plugin's own field manager: its writes show in managedFields apart from the operator's and GitOps'. */
export const PLUGIN_FIELD_MANAGER = "kubectl-mtls";

/** A server-side apply the API server refused with 409: another manager owns a field sent, or the object changed. */
export interface ApplyConflict {
  readonly conflict: string;
}

/** An object as the API server hands it over: metadata typed, status still to be decoded. */
export interface RawObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata: ObjectMeta;
  readonly status?: unknown;
}

/** An object with its spec, for the verbs that read what the user asked for. */
export interface RawObjectWithSpec<S> extends RawObject {
  readonly spec: S;
}

/** A core v1 Event, the fields the plugin shows. */
export interface EventObject {
  readonly type?: string;
  readonly reason?: string;
  readonly message?: string;
  readonly count?: number;
  readonly firstTimestamp?: string | null;
  readonly lastTimestamp?: string | null;
  readonly eventTime?: string | null;
  readonly metadata: { readonly creationTimestamp?: string };
}

export interface KubeOptions {
  readonly kubeconfig?: string | undefined;
  readonly context?: string | undefined;
}

/** The namespace a command works in: the flag, else the context's, else "default" (kubectl's order). */
export function resolveNamespace(flag: string | undefined, contextNamespace: string | undefined): string {
  return flag || contextNamespace || "default";
}

const SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/** Loads the kubeconfig as kubectl would ($KUBECONFIG, else ~/.kube/config); a missing or unusable one is a PluginError. */
export function loadKubeConfig(options: KubeOptions): k8s.KubeConfig {
  const env = process.env;
  const kc = new k8s.KubeConfig();
  const path = options.kubeconfig;
  if (!path && !env.KUBECONFIG && !existsSync(join(homedir(), ".kube", "config")) && !existsSync(SERVICE_ACCOUNT_TOKEN)) {
    // client-node would quietly fall back to http://localhost:8080; kubectl users expect to hear about it.
    throw new PluginError("no kubeconfig found: set KUBECONFIG, pass --kubeconfig PATH, or create ~/.kube/config");
  }
  try {
    if (path) kc.loadFromFile(path);
    else kc.loadFromDefault();
  } catch (err) {
    throw new PluginError(`cannot read the kubeconfig ${path ?? env.KUBECONFIG ?? "~/.kube/config"}: ${firstLine(err)}`);
  }
  if (options.context) {
    if (!kc.getContextObject(options.context)) {
      throw new PluginError(`context "${options.context}" is not in the kubeconfig: list them with kubectl config get-contexts`);
    }
    kc.setCurrentContext(options.context);
  }
  if (!kc.getCurrentCluster()) {
    throw new PluginError(`the kubeconfig's context "${kc.getCurrentContext()}" names no cluster: pick one with --context (kubectl config get-contexts)`);
  }
  return kc;
}

/** The reads the verbs need, and the namespace they default to. */
export class Cluster {
  readonly server: string;
  private readonly client: RestClient;

  constructor(
    readonly kubeConfig: k8s.KubeConfig,
    /** The namespace of the command: -n, else the context's, else "default". */
    readonly namespace: string,
  ) {
    this.client = new RestClient(kubeConfig);
    this.server = kubeConfig.getCurrentCluster()?.server ?? "";
  }

  static connect(options: KubeOptions & { namespace?: string | undefined }): Cluster {
    const kc = loadKubeConfig(options);
    const contextNamespace = kc.getContextObject(kc.getCurrentContext())?.namespace;
    return new Cluster(kc, resolveNamespace(options.namespace, contextNamespace));
  }

  /** One object, or undefined when it does not exist. */
  async get<T = RawObject>(type: ResourceType, namespace: string, name: string): Promise<T | undefined> {
    return this.call(type, () => this.client.getOptional<T>(type, { namespace, name }));
  }

  /** Every object of a kind in a namespace, or in all namespaces (undefined). */
  async list<T = RawObject>(type: ResourceType, namespace: string | undefined, query: Record<string, string> = {}): Promise<T[]> {
    return this.call(type, async () => (await this.client.list<T>(type, namespace, query)).items);
  }

  getSecret(namespace: string, name: string): Promise<SecretObject | undefined> {
    return this.get<SecretObject>(RESOURCES.Secret, namespace, name);
  }

  /** A JSON merge patch as kubectl-mtls (e.g. one annotation): only the fields in `patch` change. */
  async mergePatch<T = RawObject>(type: ResourceType, namespace: string, name: string, patch: object): Promise<T> {
    const path = resourcePath(type, { namespace, name });
    return this.call(type, () => this.client.request<T>("PATCH", path, { body: patch, contentType: MERGE_PATCH, query: { fieldManager: PLUGIN_FIELD_MANAGER } }), "patch");
  }

  /**
   * Server-side apply as kubectl-mtls. A 409 is an answer, not a failure: the caller says what to do about a
   * field another manager owns, or reads again when the object changed under a resourceVersion precondition.
   */
  async apply<T = RawObject>(type: ResourceType, namespace: string, name: string, body: object, force: boolean): Promise<T | ApplyConflict> {
    try {
      return await this.client.apply<T>(type, { namespace, name }, body, { fieldManager: PLUGIN_FIELD_MANAGER, force });
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) return { conflict: firstLine(err).replace(/^PATCH \S+: 409 /, "") };
      throw this.failure(err, type, "patch");
    }
  }

  /** The events about one object (what kubectl describe shows), oldest first. */
  async events(object: { kind: string; metadata: ObjectMeta }): Promise<EventObject[]> {
    const selector = [
      `involvedObject.kind=${object.kind}`,
      `involvedObject.name=${object.metadata.name}`,
      ...(object.metadata.uid ? [`involvedObject.uid=${object.metadata.uid}`] : []),
    ].join(",");
    const items = await this.list<EventObject>(RESOURCES.Event, object.metadata.namespace, { fieldSelector: selector });
    return items.sort((a, b) => eventTime(a).localeCompare(eventTime(b)));
  }

  private async call<T>(type: ResourceType, request: () => Promise<T>, access: "list" | "patch" = "list"): Promise<T> {
    try {
      return await request();
    } catch (err) {
      throw this.failure(err, type, access);
    }
  }

  /** What went wrong talking to the API server, as one actionable line. */
  private failure(err: unknown, type: ResourceType, access: "list" | "patch"): PluginError {
    if (err instanceof PluginError) return err;
    if (err instanceof ApiError) {
      if (err.status === 401) return new PluginError(`the API server at ${this.server} did not accept your credentials: log in again or check the kubeconfig's user`);
      if (err.status === 403) {
        const what = access === "list" ? "read" : "write";
        return new PluginError(`${firstLine(err).replace(/^\w+ \S+: 403 /, "")}: ask for ${what} access (kubectl auth can-i ${access} ${type.plural})`);
      }
      if (err.status === 422) return new PluginError(`the API server refused the change: ${firstLine(err).replace(/^\w+ \S+: 422 /, "")}`);
      if (err.status === 404 && type.group === GROUP) {
        return new PluginError(`the API server does not serve ${GROUP}/${VERSION} ${type.plural}: install the CRDs (kubectl apply --server-side -f crds/)`);
      }
      return new PluginError(`the API server answered ${err.status} ${err.reason}: ${firstLine(err)}`);
    }
    return new PluginError(`cannot reach the API server at ${this.server}: ${causeOf(err)}: check the kubeconfig's cluster (kubectl cluster-info)`);
  }
}

function eventTime(e: EventObject): string {
  return e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata.creationTimestamp ?? "";
}

/** The innermost message of an error chain (fetch failures say "fetch failed" and keep the reason in `cause`). */
function causeOf(err: unknown): string {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current instanceof Error && current.cause !== undefined; depth++) current = current.cause;
  return firstLine(current);
}

export function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split("\n")[0]?.trim() ?? text;
}
