/**
 * The kubelet (and scheduler) a test cluster lacks, for one namespace: one fake Node, every new Pod bound to it,
 * its init containers "run" (a Secret copied into an emptyDir folder on the local disk, as CAST's chart does), then
 * Running and Ready, so Deployments and StatefulSets really roll out. A pod a controller deletes is confirmed gone
 * (grace period 0) as a kubelet would once its containers stopped.
 */
import * as k8s from "@kubernetes/client-node";
import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { RestClient, type ResourceType } from "../../src/kube/rest";
import { Informer, type KubeObject } from "../../src/runtime/informer";
import { silentLogger } from "../../src/log";
import { waitFor } from "./process";

type Pod = KubeObject & k8s.V1Pod;
export type WorkloadKind = "Deployment" | "StatefulSet" | "ReplicaSet";

const POD: ResourceType = { group: "", version: "v1", plural: "pods", kind: "Pod", namespaced: true };
const MERGE = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);

export interface KubeletStandInOptions {
  kubeConfig: k8s.KubeConfig;
  namespace: string;
  /** How long a bound pod takes to start (init containers, then Running), in ms. */
  startDelayMs?: number;
  /** Readiness probe: false keeps the pod Running but not Ready (asked again every tick, so it may heal). */
  ready?: (pod: k8s.V1Pod) => boolean;
  /** Where emptyDir folders live (default: a fresh temporary folder, removed by stop()). */
  filesRoot?: string;
}

interface Started {
  uid: string;
  ready: boolean;
}

export class KubeletStandIn {
  readonly nodeName: string;
  private root = "";
  private ownsRoot = false;
  private informer: Informer<Pod> | undefined;
  private readonly core: k8s.CoreV1Api;
  private readonly apps: k8s.AppsV1Api;
  /** Pods started (by uid), and pods being worked on now. */
  private readonly started = new Map<string, Started>();
  private readonly busy = new Set<string>();
  private readonly inFlight = new Set<Promise<void>>();
  private ticker: NodeJS.Timeout | undefined;
  private stopped = false;
  private nextIp = 2;
  /** What went wrong, newest last, for a test's failure message. */
  readonly errors: string[] = [];

  constructor(private readonly opts: KubeletStandInOptions) {
    this.core = opts.kubeConfig.makeApiClient(k8s.CoreV1Api);
    this.apps = opts.kubeConfig.makeApiClient(k8s.AppsV1Api);
    this.nodeName = `standin-${opts.namespace}`.slice(0, 63);
  }

  get filesRoot(): string {
    return this.root;
  }

  async start(): Promise<void> {
    this.root = this.opts.filesRoot ?? (await mkdtemp(join(tmpdir(), "kubelet-standin-")));
    this.ownsRoot = this.opts.filesRoot === undefined;
    await this.registerNode();
    this.informer = new Informer<Pod>(new RestClient(this.opts.kubeConfig), { type: POD, namespaces: [this.opts.namespace] }, silentLogger());
    this.informer.on((event, pod) => {
      if (event !== "delete") this.schedule(pod);
      else this.started.delete(pod.metadata.uid ?? "");
    });
    this.informer.start();
    await this.informer.synced;
    // Retries what could not start yet (a Secret not there) and asks the readiness hook again.
    this.ticker = setInterval(() => this.informer?.list(this.opts.namespace).forEach((p) => this.schedule(p)), 500);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.ticker) clearInterval(this.ticker);
    this.informer?.stop();
    await Promise.allSettled([...this.inFlight]);
    await this.core.deleteNode({ name: this.nodeName }).catch(() => undefined);
    if (this.ownsRoot && this.root) await rm(this.root, { recursive: true, force: true });
  }

  /** The folder standing in for emptyDir `volumeName` of a pod. */
  filesDir(namespace: string, podName: string, volumeName: string): string {
    return join(this.root, namespace, podName, volumeName);
  }

  /** The emptyDir folder of the newest Ready pod of a workload. */
  async currentFilesDir(kind: WorkloadKind, workloadName: string, volumeName: string): Promise<string> {
    const ready = (await this.podsOf(kind, workloadName)).filter(isReady);
    const newest = ready.at(-1);
    if (!newest) throw new Error(`${kind} ${workloadName} has no Ready pod`);
    const dir = this.filesDir(this.opts.namespace, newest.metadata!.name!, volumeName);
    await stat(dir).catch(() => {
      throw new Error(`pod ${newest.metadata!.name} has no emptyDir ${volumeName} filled by an init container (${dir})`);
    });
    return dir;
  }

  /** The live (not terminating) pods of a workload, oldest first. */
  async podsOf(kind: WorkloadKind, name: string): Promise<k8s.V1Pod[]> {
    const ns = this.opts.namespace;
    let owners: Set<string>;
    if (kind === "Deployment") {
      const d = await this.apps.readNamespacedDeployment({ namespace: ns, name });
      const sets = await this.apps.listNamespacedReplicaSet({ namespace: ns });
      owners = new Set(sets.items.filter((rs) => ownedBy(rs.metadata, d.metadata?.uid)).map((rs) => rs.metadata!.uid!));
    } else if (kind === "StatefulSet") {
      owners = new Set([(await this.apps.readNamespacedStatefulSet({ namespace: ns, name })).metadata!.uid!]);
    } else {
      owners = new Set([(await this.apps.readNamespacedReplicaSet({ namespace: ns, name })).metadata!.uid!]);
    }
    const pods = await this.core.listNamespacedPod({ namespace: ns });
    return pods.items
      .filter((p) => !p.metadata?.deletionTimestamp && [...owners].some((uid) => ownedBy(p.metadata, uid)))
      .sort((a, b) => created(a) - created(b) || a.metadata!.name!.localeCompare(b.metadata!.name!));
  }

  /**
   * Until the workload's latest spec is rolled out: every replica updated, Ready (available), no old pod left.
   * The timeout's message carries the last status seen.
   */
  async waitForRollout(kind: "Deployment" | "StatefulSet", name: string, timeoutMs: number): Promise<void> {
    const ns = this.opts.namespace;
    let last = "";
    await waitFor(
      `${kind} ${name} to roll out`,
      async () => {
        const pods = await this.podsOf(kind, name);
        if (kind === "Deployment") {
          const d = await this.apps.readNamespacedDeployment({ namespace: ns, name });
          const want = d.spec?.replicas ?? 1;
          const s = d.status ?? {};
          last = JSON.stringify({ generation: d.metadata?.generation, ...s, pods: pods.map((p) => p.metadata?.name) });
          const progressing = s.conditions?.find((c) => c.type === "Progressing");
          return (
            (s.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0) &&
            s.updatedReplicas === want &&
            (s.replicas ?? 0) === want &&
            (s.availableReplicas ?? 0) === want &&
            progressing?.reason === "NewReplicaSetAvailable" &&
            pods.length === want
          );
        }
        const sts = await this.apps.readNamespacedStatefulSet({ namespace: ns, name });
        const want = sts.spec?.replicas ?? 1;
        const s = sts.status ?? { replicas: 0 };
        last = JSON.stringify({ generation: sts.metadata?.generation, ...s, pods: pods.map((p) => [p.metadata?.name, p.metadata?.labels?.["controller-revision-hash"]]) });
        return (
          (s.observedGeneration ?? 0) >= (sts.metadata?.generation ?? 0) &&
          s.currentRevision === s.updateRevision &&
          s.updatedReplicas === want &&
          s.readyReplicas === want &&
          pods.length === want &&
          pods.every((p) => p.metadata?.labels?.["controller-revision-hash"] === s.updateRevision && isReady(p))
        );
      },
      timeoutMs,
      200,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last seen: ${last}${this.errors.length ? `; stand-in errors: ${this.errors.slice(-3).join(" | ")}` : ""}`);
    });
  }

  private async registerNode(): Promise<void> {
    const now = new Date();
    const body: k8s.V1Node = {
      metadata: { name: this.nodeName, labels: { "kubernetes.io/hostname": this.nodeName, "kubernetes.io/os": "linux" } },
      status: {
        conditions: [{ type: "Ready", status: "True", reason: "KubeletReady", message: "kubelet stand-in", lastHeartbeatTime: now, lastTransitionTime: now }],
        addresses: [{ type: "InternalIP", address: "127.0.0.1" }],
        capacity: { cpu: "8", memory: "16Gi", pods: "110" },
        allocatable: { cpu: "8", memory: "16Gi", pods: "110" },
      },
    };
    // A stand-in left behind by an aborted run of the same namespace name is replaced.
    await this.core.deleteNode({ name: this.nodeName }).catch(() => undefined);
    await this.core.createNode({ body });
    // Node status is a subresource: set it explicitly in case create dropped it.
    await this.core.patchNodeStatus({ name: this.nodeName, body: { status: body.status } }, MERGE);
  }

  /** One piece of work per pod at a time; events that arrive meanwhile are caught by the next tick. */
  private schedule(pod: Pod): void {
    const uid = pod.metadata.uid ?? "";
    if (this.stopped || this.busy.has(uid)) return;
    this.busy.add(uid);
    const work = this.handle(pod)
      .catch((err: unknown) => {
        if (!this.stopped && !(err instanceof k8s.ApiException && (err.code === 404 || err.code === 409))) {
          this.errors.push(`${pod.metadata.name}: ${err instanceof Error ? err.message : String(err)}`);
        }
      })
      .finally(() => {
        this.busy.delete(uid);
        this.inFlight.delete(work);
      });
    this.inFlight.add(work);
  }

  private async handle(pod: Pod): Promise<void> {
    const ns = this.opts.namespace;
    const name = pod.metadata.name;
    const uid = pod.metadata.uid ?? "";
    if (pod.metadata.deletionTimestamp) {
      // The containers "stopped": confirm the deletion, as the kubelet does, and drop the pod's emptyDirs.
      await this.core.deleteNamespacedPod({ namespace: ns, name, gracePeriodSeconds: 0, body: { gracePeriodSeconds: 0, preconditions: { uid } } });
      this.started.delete(uid);
      await rm(join(this.root, ns, name), { recursive: true, force: true });
      return;
    }
    if (!pod.spec?.nodeName) {
      // The scheduler's part.
      await this.core.createNamespacedPodBinding({
        namespace: ns,
        name,
        body: { metadata: { name, namespace: ns }, target: { apiVersion: "v1", kind: "Node", name: this.nodeName } },
      });
      pod = { ...pod, spec: { ...pod.spec!, nodeName: this.nodeName } };
    }
    if (pod.spec?.nodeName !== this.nodeName) return;
    const known = this.started.get(uid);
    const ready = this.opts.ready ? this.opts.ready(pod) : true;
    if (known) {
      if (known.ready !== ready) {
        await this.setStatus(pod, ready);
        known.ready = ready;
      }
      return;
    }
    if (isRunning(pod)) {
      // Started by an earlier stand-in of this namespace: take it over as it is.
      this.started.set(uid, { uid, ready: isReady(pod) });
      return;
    }
    if (this.opts.startDelayMs) await new Promise((r) => setTimeout(r, this.opts.startDelayMs));
    if (this.stopped) return;
    if (!(await this.runInitContainers(pod))) return;
    await this.setStatus(pod, ready);
    this.started.set(uid, { uid, ready });
  }

  /**
   * What CAST's chart's init containers do: copy the keys of a mounted Secret (as they are now) into a mounted
   * emptyDir, each file 0644, and `chmod 0600` what the command says. False when a Secret is missing (the pod
   * waits, as ContainerCreating would).
   */
  private async runInitContainers(pod: Pod): Promise<boolean> {
    const ns = this.opts.namespace;
    const volumes = new Map((pod.spec?.volumes ?? []).map((v) => [v.name, v]));
    for (const init of pod.spec?.initContainers ?? []) {
      const mounts = (init.volumeMounts ?? []).map((m) => ({ mount: m, volume: volumes.get(m.name) }));
      const secrets = mounts.filter((m) => m.volume?.secret);
      const emptyDirs = mounts.filter((m) => m.volume?.emptyDir);
      if (secrets.length === 0 || emptyDirs.length === 0) continue;
      const files = new Map<string, Buffer>();
      for (const { volume } of secrets) {
        const src = volume!.secret!;
        let secret: k8s.V1Secret;
        try {
          secret = await this.core.readNamespacedSecret({ namespace: ns, name: src.secretName ?? "" });
        } catch (err) {
          if (err instanceof k8s.ApiException && err.code === 404 && !src.optional) return false;
          if (err instanceof k8s.ApiException && err.code === 404) continue;
          throw err;
        }
        const data = secret.data ?? {};
        const items = src.items ?? Object.keys(data).map((key) => ({ key, path: key }));
        for (const { key, path } of items) {
          if (data[key] !== undefined) files.set(posix.basename(path), Buffer.from(data[key], "base64"));
        }
      }
      const script = [...(init.command ?? []), ...(init.args ?? [])].join(" ");
      for (const { mount, volume } of emptyDirs) {
        const dir = this.filesDir(ns, pod.metadata.name, volume!.name);
        await mkdir(dir, { recursive: true });
        for (const [file, content] of files) {
          await writeFile(join(dir, file), content, { mode: 0o644 });
          await chmod(join(dir, file), 0o644);
        }
        for (const file of chmodded(script, mount.mountPath, [...files.keys()])) await chmod(join(dir, file), 0o600);
      }
    }
    return true;
  }

  private async setStatus(pod: Pod, ready: boolean): Promise<void> {
    const now = new Date();
    const since = pod.status?.startTime ?? now;
    const flag = ready ? "True" : "False";
    const ip = pod.status?.podIP ?? `10.88.0.${this.nextIp++ % 250}`;
    const status: k8s.V1PodStatus = {
      phase: "Running",
      hostIP: "127.0.0.1",
      podIP: ip,
      podIPs: [{ ip }],
      startTime: since,
      conditions: [
        { type: "PodScheduled", status: "True", lastTransitionTime: since },
        { type: "Initialized", status: "True", lastTransitionTime: since },
        { type: "ContainersReady", status: flag, lastTransitionTime: now },
        { type: "Ready", status: flag, lastTransitionTime: now },
      ],
      initContainerStatuses: (pod.spec?.initContainers ?? []).map((c) => ({
        name: c.name,
        image: c.image ?? "",
        imageID: "",
        ready: true,
        restartCount: 0,
        state: { terminated: { exitCode: 0, reason: "Completed", startedAt: since, finishedAt: since } },
      })),
      containerStatuses: (pod.spec?.containers ?? []).map((c) => ({
        name: c.name,
        image: c.image ?? "",
        imageID: "",
        containerID: `standin://${pod.metadata.uid}/${c.name}`,
        ready,
        started: true,
        restartCount: 0,
        state: { running: { startedAt: since } },
      })),
    };
    await this.core.patchNamespacedPodStatus({ namespace: this.opts.namespace, name: pod.metadata.name, body: { status } }, MERGE);
  }
}

/** Starts a stand-in; stop() it in the test's cleanup. */
export async function startKubeletStandIn(opts: KubeletStandInOptions): Promise<KubeletStandIn> {
  const standIn = new KubeletStandIn(opts);
  try {
    await standIn.start();
  } catch (err) {
    await standIn.stop();
    throw err;
  }
  return standIn;
}

/** The files of `mountPath` that `chmod 0600 <path>…` in the init container's command names (a `*` names all). */
function chmodded(script: string, mountPath: string, files: string[]): string[] {
  const out = new Set<string>();
  for (const m of script.matchAll(/chmod\s+0?600\s+([^;&|\n]+)/g)) {
    for (const path of m[1]!.trim().split(/\s+/)) {
      const rel = posix.relative(mountPath, posix.normalize(path.replace(/^["']|["']$/g, "")));
      if (rel === "*") files.forEach((f) => out.add(f));
      else if (files.includes(rel)) out.add(rel);
    }
  }
  return [...out];
}

function ownedBy(meta: k8s.V1ObjectMeta | undefined, uid: string | undefined): boolean {
  return uid !== undefined && (meta?.ownerReferences ?? []).some((r) => r.uid === uid && r.controller);
}

function created(o: { metadata?: k8s.V1ObjectMeta }): number {
  return new Date(o.metadata?.creationTimestamp ?? 0).getTime();
}

function isRunning(pod: k8s.V1Pod): boolean {
  return pod.status?.phase === "Running";
}

function isReady(pod: k8s.V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}
