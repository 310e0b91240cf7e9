/**
 * The kubelet and container runtime a test cluster lacks, for ONE workload's PostgreSQL: reads a StatefulSet (or
 * Deployment) from the real API server and runs its pod's PostgreSQL container as a real process on this machine,
 * the way the packaging starts it: same volumes, same mounts, same command and arguments, same environment.
 *
 * Each container runs in a private mount and PID namespace (`unshare --mount --pid --fork`), chrooted into a root
 * of its own: a tmpfs into which every top-level entry of this machine's `/` is bind-mounted (so nothing of the host
 * is written), with a fresh /proc and /tmp. In that root, the container's volumeMounts appear at their mountPaths.
 *
 * What stands in for the `postgres:15` image (docker-library/postgres), and how its paths map to this machine:
 * - /etc/postgresql, /root: empty tmpfs (the image's are empty; this machine's Debian cluster config stays hidden).
 * - /var/lib/postgresql: tmpfs owned by postgres, holding the image's PGDATA /var/lib/postgresql/data (mode 1777).
 * - /var/run/postgresql: tmpfs owned by postgres, mode 3777 (the socket directory, per container like the image's).
 * - /docker-entrypoint-initdb.d: an empty directory of the root.
 * - /usr/share/postgresql/postgresql.conf.sample: this machine's sample with the image's `listen_addresses = '*'`
 *   edit; and, as the image's symlink `/usr/share/postgresql/15/postgresql.conf.sample -> ../postgresql.conf.sample`
 *   does, a bind of that path (after the volume mounts, so a mounted sample wins) over PostgreSQL's own
 *   `<sharedir>/postgresql.conf.sample`, which initdb reads. The other share files stay visible.
 * - /.pod-runner/bin: the stand-in `docker-entrypoint.sh` (the image's ENTRYPOINT) and `gosu`, first on PATH,
 *   followed by PG_BIN (ahead of /usr/bin, so `psql` is the 15 client rather than Debian's pg_wrapper).
 * - Any other mountPath missing on this machine is created in a tmpfs laid over its nearest existing parent directory,
 *   into which that parent's entries are bound back (nothing hidden, nothing of the host changed).
 * - Every container of the pod, init containers included, gets this picture: their images do not exist here, so
 *   their commands run with this machine's programs (bash, openssl, cp…).
 * - The image's user postgres (uid/gid 999) is this machine's `postgres` user; runAsUser/runAsGroup/fsGroup/
 *   supplementalGroups 999 mean its uid/gid, other ids are taken as they are. runAsUser absent: root, as in the image.
 *
 * The kubelet's part: volumes `emptyDir` (fresh per pod; `medium: Memory` is a plain directory), `configMap` and
 * `secret` (keys as files in the kubelet's AtomicWriter `..data` layout, `items`, modes, root-owned with group fsGroup,
 * read-only, live-updated when the object changes), `persistentVolumeClaim` and StatefulSet `volumeClaimTemplates`
 * (a directory per claim name kept across pods, mode 0777 like local-path volumes); `subPath` of a configMap/secret
 * is a copy made at container start (it never updates, as with the kubelet), of an emptyDir/claim a live directory.
 * `env`/`envFrom` with configMap/secret references and `$(VAR)` expansion; init containers in order.
 * A change of `.spec.template` stops the pod (SIGINT, the image's STOPSIGNAL: PostgreSQL's fast shutdown) and starts a
 * new one. Not reproduced: container restarts (a failed init or main container leaves the pod failed until the
 * template changes), probes, resource limits, capabilities, network namespaces (the server binds this machine's
 * loopback and, with `listen_addresses = '*'`, all its addresses).
 *
 * The one deliberate difference from a pod: the main container gets env PGPORT = the runner's port, the default
 * `port` of the server (a `port` set in the configuration or arguments would win over it, as in PostgreSQL).
 */
import * as k8s from "@kubernetes/client-node";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, openSync } from "node:fs";
import { chmod, lchown, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, posix } from "node:path";
import { RESOURCES } from "../../src/kube/resources";
import { RestClient } from "../../src/kube/rest";
import { Informer, type KubeObject } from "../../src/runtime/informer";
import { silentLogger } from "../../src/log";
import { cleanPgEnv, PG_BIN } from "./postgres";
import { freePort, run, runOk, type RunResult } from "./process";

export interface PodRunnerOptions {
  kubeConfig: k8s.KubeConfig;
  namespace: string;
  workload: { kind: "StatefulSet" | "Deployment"; name: string };
  /** Container to run; default the first. */
  container?: string;
}

export interface PodRunner {
  /** Host port the server listens on (127.0.0.1): the stand-in for the pod IP's 5432. Stable across restarts. */
  readonly port: number;
  /** How many times the pod was (re)started because its template changed. */
  readonly starts: number;
  /** The server log of the current pod (for failure messages). */
  log(): Promise<string>;
  /** Runs SQL as the superuser over the unix socket inside the pod's mount namespace (psql -At output). */
  sql(query: string, user?: string): Promise<string>;
  /** Resolves when the current pod's server accepts connections (or rejects with the server log). */
  ready(timeoutMs?: number): Promise<void>;
  /** Files as the container sees them: reads a container path (e.g. "/etc/postgresql/pg_hba.conf"). */
  readContainerFile(path: string): Promise<string>;
  stop(): Promise<void>;
}

type Workload = KubeObject & { spec?: { replicas?: number; template?: k8s.V1PodTemplateSpec; volumeClaimTemplates?: k8s.V1PersistentVolumeClaim[] } };
type DataObject = KubeObject & { data?: Record<string, string>; binaryData?: Record<string, string> };


/** The postgres image: its user's id, ENTRYPOINT, CMD and PGDATA. */
const IMAGE_POSTGRES_ID = 999;
const IMAGE_ENTRYPOINT = ["docker-entrypoint.sh"];
const IMAGE_CMD = ["postgres"];
const IMAGE_PGDATA = "/var/lib/postgresql/data";
const IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** Where the runner's own files appear inside a container. */
const STAGE = "/.pod-runner";
const HOST_ENV = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C" };

/** The kubelet would wait terminationGracePeriodSeconds (CAST: 120 s); a fast shutdown takes well under this. */
const MAX_STOP_GRACE_MS = 30_000;
const INIT_TIMEOUT_MS = 120_000;
const EXEC_TIMEOUT_MS = 30_000;
/** A pod that cannot mount (or resolve env) for this long makes ready() reject; the runner itself keeps retrying. */
const BLOCKED_GRACE_MS = 5_000;
const RETRY_MS = 500;

interface Identity {
  uid: number;
  gid: number;
  groups: number[];
  home: string;
}

interface HostFacts {
  postgres: { uid: number; gid: number };
  shareDir: string;
  lang: string;
}

interface MountPlan {
  /** Path of the source inside the container's root before the staging is unmounted (under STAGE). */
  source: string;
  target: string;
  kind: "dir" | "file";
  readOnly: boolean;
}

interface ContainerPlan {
  name: string;
  dir: string;
  rootDir: string;
  stage: Record<"volumes" | "claims" | "subpaths" | "container", string>;
  mounts: MountPlan[];
  env: [string, string][];
  argv: string[];
  workingDir: string;
  identity: Identity;
}

interface ContainerProc {
  plan: ContainerPlan;
  child: ChildProcess;
  logPath: string;
  exited: Promise<number>;
  code?: number;
  /** Host pid of the container's PID 1 (the postmaster once the entrypoint exec'd it). */
  pid1?: number;
}

type VolumeKind = "emptyDir" | "configMap" | "secret" | "claim";

interface PreparedVolume {
  kind: VolumeKind;
  dir: string;
  /** Inside the container's root, before the staging is unmounted. */
  staged: string;
  /** Payload digest last laid down (configMap/secret). */
  digest?: string;
}

interface Pod {
  no: number;
  name: string;
  key: string;
  spec: k8s.V1PodSpec;
  claims: Map<string, string>;
  dir: string;
  phase: "Pending" | "Running" | "Failed" | "Stopped";
  blocked?: { reason: string; since: number };
  failure?: string;
  volumes: Map<string, PreparedVolume>;
  initsDone: Set<string>;
  running: Set<ContainerProc>;
  main?: ContainerProc;
}

type Outcome<T> = { ok: T } | { blocked: string } | { failed: string };

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** The bound of a race with a process's exit: a timer that keeps nothing alive once the race is over. */
const giveUpAfter = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());
const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export async function startPodRunner(opts: PodRunnerOptions): Promise<PodRunner> {
  const runner = new Runner(opts, await hostFacts(), await freePort(), await mkdtemp(join(tmpdir(), `pod-runner-${opts.workload.name}-`)));
  try {
    await runner.start();
  } catch (err) {
    await runner.stop();
    throw err;
  }
  return runner;
}

async function hostFacts(): Promise<HostFacts> {
  for (const bin of ["postgres", "initdb", "pg_ctl", "psql", "pg_isready", "pg_config"]) {
    if (!existsSync(join(PG_BIN, bin))) throw new Error(`${join(PG_BIN, bin)} is missing: install Debian's postgresql-15 or set PG_BIN`);
  }
  if (process.getuid?.() !== 0) throw new Error("the pod runner mounts in private namespaces: it needs root");
  const uid = Number((await runOk("id", ["-u", "postgres"])).trim());
  const gid = Number((await runOk("id", ["-g", "postgres"])).trim());
  const shareDir = (await runOk(join(PG_BIN, "pg_config"), ["--sharedir"])).trim();
  // The image's LANG is en_US.utf8; this machine may only have C.utf8.
  const locales = (await runOk("locale", ["-a"])).split("\n").map((l) => l.trim().toLowerCase());
  const lang = locales.includes("en_us.utf8") ? "en_US.utf8" : "C.utf8";
  return { postgres: { uid, gid }, shareDir, lang };
}

class Runner implements PodRunner {
  private readonly informers: Informer<KubeObject>[] = [];
  private workloads!: Informer<Workload>;
  private configMaps!: Informer<DataObject>;
  private secrets!: Informer<DataObject>;
  private current: Pod | undefined;
  private podCount = 0;
  private stopped = false;
  private queued = false;
  private chain: Promise<void> = Promise.resolve();
  private retryTimer: NodeJS.Timeout | undefined;
  /** Unexpected errors of the runner itself, for ready()'s message. */
  private readonly errors: string[] = [];

  constructor(
    private readonly opts: PodRunnerOptions,
    private readonly host: HostFacts,
    readonly port: number,
    private readonly root: string,
  ) {}

  get starts(): number {
    return this.podCount;
  }

  async start(): Promise<void> {
    await mkdir(join(this.root, "bin"));
    await mkdir(join(this.root, "image"));
    await mkdir(join(this.root, "claims"));
    await mkdir(join(this.root, "pods"));
    const { uid, gid } = this.host.postgres;
    await writeFile(join(this.root, "bin", "docker-entrypoint.sh"), entrypointScript(uid, gid), { mode: 0o755 });
    await writeFile(join(this.root, "bin", "gosu"), gosuScript(uid, gid), { mode: 0o755 });
    // The image's sample: Debian's, with the image's `sed` of listen_addresses.
    const sample = await readFile(join(this.host.shareDir, "postgresql.conf.sample"), "utf8");
    await writeFile(join(this.root, "image", "postgresql.conf.sample"), sample.replace(/^#?(listen_addresses)\s*=\s*\S+.*$/m, "$1 = '*'"), { mode: 0o644 });

    const client = new RestClient(this.opts.kubeConfig);
    const scope = { namespaces: [this.opts.namespace] };
    this.workloads = new Informer<Workload>(client, { type: RESOURCES[this.opts.workload.kind], ...scope }, silentLogger());
    this.configMaps = new Informer<DataObject>(client, { type: RESOURCES.ConfigMap, ...scope }, silentLogger());
    this.secrets = new Informer<DataObject>(client, { type: RESOURCES.Secret, ...scope }, silentLogger());
    this.informers.push(this.workloads, this.configMaps, this.secrets);
    this.workloads.on((_e, obj) => {
      if (obj.metadata.name === this.opts.workload.name) this.kick();
    });
    this.configMaps.on(() => this.kick());
    this.secrets.on(() => this.kick());
    this.informers.forEach((i) => i.start());
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_r, reject) => {
      timer = setTimeout(() => reject(new Error("the pod runner's informers did not sync within 30 s")), 30_000);
    });
    await Promise.race([Promise.all(this.informers.map((i) => i.synced)), timeout]).finally(() => clearTimeout(timer));
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.informers.forEach((i) => i.stop());
    if (this.current) await this.stopPod(this.current);
    await this.chain;
    // A reconcile that was past its last check may have launched a container meanwhile.
    if (this.current) await this.stopPod(this.current);
    await rm(this.root, { recursive: true, force: true });
  }

  async log(): Promise<string> {
    const main = this.current?.main;
    return main ? readFile(main.logPath, "utf8").catch(() => "") : "";
  }

  async sql(query: string, user?: string): Promise<string> {
    const main = this.runningMain();
    const env = new Map(main.plan.env);
    const r = await this.exec(main, main.plan.identity, ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-U", user ?? env.get("POSTGRES_USER") ?? "postgres", "-d", "postgres", "-c", query]);
    if (r.code !== 0) throw new Error(`psql in ${this.current?.name} exited ${r.code}: ${r.stderr || r.stdout}`);
    return r.stdout.replace(/\n$/, "");
  }

  async readContainerFile(path: string): Promise<string> {
    const main = this.runningMain();
    // Read as root, like a debug container: the test wants the file, whatever its mode.
    const r = await this.exec(main, { uid: 0, gid: 0, groups: [0], home: "/root" }, ["cat", "--", path]);
    if (r.code !== 0) throw new Error(`cannot read ${path} in ${this.current?.name}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  async ready(timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const pod = this.current;
      if (pod?.phase === "Failed") throw new Error(`pod ${pod.name} failed: ${pod.failure}\n--- server log ---\n${await this.log()}`);
      if (pod?.blocked && Date.now() - pod.blocked.since >= Math.min(BLOCKED_GRACE_MS, timeoutMs)) {
        throw new Error(`pod ${pod.name} cannot start: ${pod.blocked.reason}`);
      }
      if (pod?.phase === "Running" && (await this.accepting()) && this.current === pod && pod.phase === "Running") return;
      if (Date.now() > deadline) {
        const state = pod ? `pod ${pod.name} ${pod.phase}${pod.blocked ? ` (${pod.blocked.reason})` : ""}` : `${this.opts.workload.kind} ${this.opts.workload.name} not seen`;
        const errors = this.errors.length ? `; runner errors: ${this.errors.slice(-3).join(" | ")}` : "";
        throw new Error(`PostgreSQL of ${this.opts.namespace}/${this.opts.workload.name} not ready after ${timeoutMs} ms: ${state}${errors}\n--- server log ---\n${(await this.log()).slice(-4000)}`);
      }
      await sleep(200);
    }
  }

  private async accepting(): Promise<boolean> {
    // Over TCP: the entrypoint's temporary server listens on the socket only, so this is the real one.
    const r = await run(join(PG_BIN, "pg_isready"), ["-h", "127.0.0.1", "-p", String(this.port), "-t", "2"], { env: cleanPgEnv(), timeoutMs: 5_000 });
    return r.code === 0;
  }

  private runningMain(): ContainerProc & { pid1: number } {
    const pod = this.current;
    const main = pod?.main;
    if (!pod || pod.phase !== "Running" || main?.pid1 === undefined) {
      throw new Error(`${this.opts.workload.kind} ${this.opts.workload.name} has no running container (${pod ? `pod ${pod.name} ${pod.phase}` : "no pod"})`);
    }
    return main as ContainerProc & { pid1: number };
  }

  /** Like `kubectl exec`: in the container's mount namespace and root, with its environment. */
  private exec(main: ContainerProc & { pid1: number }, who: Identity, argv: string[]): Promise<RunResult> {
    const env = main.plan.env.map(([k, v]) => `${k}=${v}`);
    return run(
      "nsenter",
      // In its PID namespace too (/proc/self is the container's); nsenter's --wd would name a directory of this
      // machine's root, so env chdirs inside the container's; pdeathsig: a timeout's kill of nsenter ends the command.
      ["--target", String(main.pid1), "--mount", "--pid", "--root", "--", "env", "-i", "-C", "/", ...env, "setpriv", "--pdeathsig", "SIGKILL", ...setprivArgs(who), "--", ...argv],
      { env: HOST_ENV, timeoutMs: EXEC_TIMEOUT_MS },
    );
  }

  /** Reconciles one at a time; events that arrive meanwhile coalesce into one more pass. */
  private kick(): void {
    if (this.queued || this.stopped) return;
    this.queued = true;
    this.chain = this.chain
      .then(async () => {
        this.queued = false;
        await this.reconcile();
      })
      .catch((err: unknown) => {
        this.errors.push(message(err));
      });
  }

  private retryLater(): void {
    if (this.retryTimer || this.stopped) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.kick();
    }, RETRY_MS);
  }

  private async reconcile(): Promise<void> {
    if (this.stopped) return;
    const w = this.workloads.get(this.opts.namespace, this.opts.workload.name);
    const template = w && (w.spec?.replicas ?? 1) > 0 ? w.spec?.template : undefined;
    const key = template ? JSON.stringify(template) : undefined;
    if (this.current && this.current.key !== key) {
      await this.stopPod(this.current);
      this.current = undefined;
    }
    if (!this.current && w && template?.spec && key) this.current = await this.newPod(w, template.spec, key);
    const pod = this.current;
    if (!pod) return;
    try {
      if (pod.phase === "Pending") await this.tryStart(pod);
      else if (pod.phase === "Running") await this.syncVolumes(pod);
    } catch (err) {
      if (pod.phase === "Pending") {
        pod.phase = "Failed";
        pod.failure = message(err);
      } else this.errors.push(message(err));
    }
  }

  private async newPod(w: Workload, spec: k8s.V1PodSpec, key: string): Promise<Pod> {
    const no = ++this.podCount;
    const name = this.opts.workload.kind === "StatefulSet" ? `${w.metadata.name}-0` : `${w.metadata.name}-runner-${no}`;
    const claims = new Map<string, string>();
    for (const t of w.spec?.volumeClaimTemplates ?? []) {
      const v = t.metadata?.name ?? "";
      claims.set(v, `${v}-${name}`);
    }
    const dir = join(this.root, "pods", String(no));
    for (const sub of ["volumes", "subpaths", "containers", "roots"]) await mkdir(join(dir, sub), { recursive: true });
    return { no, name, key, spec, claims, dir, phase: "Pending", volumes: new Map(), initsDone: new Set(), running: new Set() };
  }

  private async tryStart(pod: Pod): Promise<void> {
    const blocked = (reason: string): void => {
      pod.blocked = { reason, since: pod.blocked?.since ?? Date.now() };
      this.retryLater();
    };
    const prepared = await this.prepareVolumes(pod);
    if ("blocked" in prepared) return blocked(prepared.blocked);
    if ("failed" in prepared) return this.fail(pod, prepared.failed);
    const containers = pod.spec.containers;
    const main = this.opts.container ? containers.find((c) => c.name === this.opts.container) : containers[0];
    if (!main) return this.fail(pod, `no container ${this.opts.container ?? ""} among ${containers.map((c) => c.name).join(", ")}`);

    for (const init of pod.spec.initContainers ?? []) {
      if (pod.initsDone.has(init.name)) continue;
      const plan = await this.planContainer(pod, init, false);
      if ("blocked" in plan) return blocked(plan.blocked);
      if ("failed" in plan) return this.fail(pod, plan.failed);
      pod.blocked = undefined;
      const code = await this.runToCompletion(pod, plan.ok);
      if (this.stopped || pod.phase !== "Pending") return;
      if (code !== 0) {
        const out = await readFile(join(plan.ok.dir, "log"), "utf8").catch(() => "");
        return this.fail(pod, `init container "${init.name}" exited with code ${code}:\n${out.slice(-4000)}`);
      }
      pod.initsDone.add(init.name);
    }
    const plan = await this.planContainer(pod, main, true);
    if ("blocked" in plan) return blocked(plan.blocked);
    if ("failed" in plan) return this.fail(pod, plan.failed);
    pod.blocked = undefined;
    if (this.stopped || pod.phase !== "Pending") return;
    const proc = this.launch(pod, plan.ok);
    pod.main = proc;
    pod.phase = "Running";
    void proc.exited.then((code) => {
      if (pod.phase === "Running") this.fail(pod, `container "${main.name}" exited with code ${code}`);
    });
    proc.pid1 = await childPid(proc);
  }

  private fail(pod: Pod, why: string): void {
    pod.phase = "Failed";
    pod.failure = why;
    pod.blocked = undefined;
  }

  private async stopPod(pod: Pod): Promise<void> {
    const wasRunning = pod.phase;
    pod.phase = "Stopped";
    const grace = Math.min((pod.spec.terminationGracePeriodSeconds ?? 30) * 1000, MAX_STOP_GRACE_MS);
    await Promise.all(
      [...pod.running].map(async (proc) => {
        if (proc.code === undefined) {
          if (proc === pod.main && proc.pid1 !== undefined && wasRunning === "Running") {
            try {
              process.kill(proc.pid1, "SIGINT");
            } catch {
              // already gone
            }
            await Promise.race([proc.exited, giveUpAfter(grace)]);
          }
          if (proc.code === undefined) proc.child.kill("SIGKILL");
          await Promise.race([proc.exited, giveUpAfter(10_000)]);
        }
      }),
    );
    await rm(pod.dir, { recursive: true, force: true }).catch((err: unknown) => this.errors.push(`removing ${pod.dir}: ${message(err)}`));
  }

  // --- volumes -------------------------------------------------------------------------------------------------

  private fsGroup(pod: Pod): number | undefined {
    const g = pod.spec.securityContext?.fsGroup;
    return g === undefined ? undefined : this.mapGid(g);
  }

  private async prepareVolumes(pod: Pod): Promise<Outcome<true>> {
    const fsGroup = this.fsGroup(pod);
    const declared = new Map((pod.spec.volumes ?? []).map((v) => [v.name, v]));
    for (const [name, claim] of pod.claims) if (!declared.has(name)) declared.set(name, { name, persistentVolumeClaim: { claimName: claim } });
    for (const [name, v] of declared) {
      if (pod.volumes.has(name)) continue;
      const dir = join(pod.dir, "volumes", name);
      if (v.emptyDir) {
        await mkdir(dir);
        await chmod(dir, 0o777);
        if (fsGroup !== undefined) await setVolumeOwnership(dir, fsGroup, false);
        pod.volumes.set(name, { kind: "emptyDir", dir, staged: `${STAGE}/volumes/${name}` });
      } else if (v.configMap || v.secret) {
        const payload = this.payload(v);
        if ("blocked" in payload) return { blocked: `MountVolume.SetUp failed for volume "${name}" : ${payload.blocked}` };
        if ("failed" in payload) return { failed: `volume "${name}": ${payload.failed}` };
        const kind = v.configMap ? "configMap" : "secret";
        const prepared: PreparedVolume = { kind, dir, staged: `${STAGE}/volumes/${name}` };
        await mkdir(dir);
        await chmod(dir, 0o777);
        await this.layDown(prepared, payload.ok, fsGroup);
        pod.volumes.set(name, prepared);
      } else if (v.persistentVolumeClaim) {
        const claim = v.persistentVolumeClaim.claimName;
        if (!/^[a-z0-9][a-z0-9.-]*$/.test(claim)) return { failed: `volume "${name}": bad claim name ${claim}` };
        const claimDir = join(this.root, "claims", claim);
        if (!existsSync(claimDir)) {
          await mkdir(claimDir);
          await chmod(claimDir, 0o777);
        }
        if (fsGroup !== undefined) {
          const policy = pod.spec.securityContext?.fsGroupChangePolicy;
          if (policy !== "OnRootMismatch" || (await requiresPermissionChange(claimDir, fsGroup))) await setVolumeOwnership(claimDir, fsGroup, false);
        }
        pod.volumes.set(name, { kind: "claim", dir: claimDir, staged: `${STAGE}/claims/${claim}` });
      } else {
        const type = Object.keys(v).filter((k) => k !== "name").join(", ");
        return { failed: `volume "${name}" of type ${type || "?"} is not supported by the pod runner` };
      }
    }
    return { ok: true };
  }

  /** The files of a configMap/secret volume: keys (or items) with their modes, as the kubelet computes them. */
  private payload(v: k8s.V1Volume): Outcome<Map<string, { data: Buffer; mode: number }>> {
    const isSecret = !!v.secret;
    const src = (v.configMap ?? v.secret)!;
    const objName = v.configMap?.name ?? v.secret?.secretName ?? "";
    const obj = (isSecret ? this.secrets : this.configMaps).get(this.opts.namespace, objName);
    const what = isSecret ? "secret" : "configmap";
    const files = new Map<string, { data: Buffer; mode: number }>();
    if (!obj) return src.optional ? { ok: files } : { blocked: `${what} "${objName}" not found` };
    const data = new Map<string, Buffer>();
    for (const [k, val] of Object.entries(obj.data ?? {})) data.set(k, isSecret ? Buffer.from(val, "base64") : Buffer.from(val, "utf8"));
    for (const [k, val] of Object.entries(obj.binaryData ?? {})) data.set(k, Buffer.from(val, "base64"));
    const defaultMode = src.defaultMode ?? 0o644;
    const items = src.items ?? [...data.keys()].map((key) => ({ key, path: key, mode: undefined }));
    for (const item of items) {
      const content = data.get(item.key);
      if (content === undefined) {
        if (src.optional) continue;
        return { blocked: `${what} references non-existent ${isSecret ? "secret" : "config"} key: ${item.key}` };
      }
      const path = posix.normalize(item.path);
      if (path.startsWith("/") || path.startsWith("..")) return { failed: `item path ${item.path} must be relative and not contain '..'` };
      files.set(path, { data: content, mode: item.mode ?? defaultMode });
    }
    return { ok: files };
  }

  /** Keeps live configMap/secret volumes up to date, as the kubelet's periodic sync does (here: on every event). */
  private async syncVolumes(pod: Pod): Promise<void> {
    const fsGroup = this.fsGroup(pod);
    for (const v of pod.spec.volumes ?? []) {
      const prepared = pod.volumes.get(v.name);
      if (!prepared || (prepared.kind !== "configMap" && prepared.kind !== "secret")) continue;
      const payload = this.payload(v);
      // A deleted object or key: the kubelet keeps the files it last wrote.
      if (!("ok" in payload)) continue;
      await this.layDown(prepared, payload.ok, fsGroup);
    }
  }

  /**
   * The kubelet's AtomicWriter: every file into a fresh `..<timestamp>` folder, one rename of the `..data` symlink
   * switches them all, and each top-level name is a symlink through `..data`. Then fsGroup ownership (read-only).
   */
  private async layDown(v: PreparedVolume, files: Map<string, { data: Buffer; mode: number }>, fsGroup: number | undefined): Promise<void> {
    const digest = JSON.stringify([...files].sort(([a], [b]) => a.localeCompare(b)).map(([p, f]) => [p, f.mode, f.data.toString("base64")]));
    if (digest === v.digest) return;
    const stamp = `..${new Date().toISOString().replace(/[-:]/g, "_").replace("T", "_").replace(/\..*$/, "")}.${randomBytes(5).toString("hex")}`;
    const ts = join(v.dir, stamp);
    await mkdir(ts);
    await chmod(ts, 0o755);
    for (const [path, f] of files) {
      const file = join(ts, path);
      await mkdir(dirname(file), { recursive: true, mode: 0o755 });
      await writeFile(file, f.data);
      await chmod(file, f.mode);
    }
    await rm(join(v.dir, "..data_tmp"), { force: true });
    await symlink(stamp, join(v.dir, "..data_tmp"));
    await rename(join(v.dir, "..data_tmp"), join(v.dir, "..data"));
    const tops = new Set([...files.keys()].map((p) => p.split("/")[0]!));
    for (const top of tops) {
      const link = join(v.dir, top);
      if ((await readlink(link).catch(() => undefined)) === `..data/${top}`) continue;
      await symlink(`..data/${top}`, `${link}.tmp-link`);
      await rename(`${link}.tmp-link`, link);
    }
    for (const entry of await readdir(v.dir)) {
      if (entry === "..data" || entry === stamp) continue;
      if (entry.startsWith("..") || !tops.has(entry)) await rm(join(v.dir, entry), { recursive: true, force: true });
    }
    if (fsGroup !== undefined) await setVolumeOwnership(v.dir, fsGroup, true);
    v.digest = digest;
  }

  // --- containers ----------------------------------------------------------------------------------------------

  private mapUid(uid: number): number {
    return uid === IMAGE_POSTGRES_ID ? this.host.postgres.uid : uid;
  }

  private mapGid(gid: number): number {
    return gid === IMAGE_POSTGRES_ID ? this.host.postgres.gid : gid;
  }

  private identity(pod: Pod, c: k8s.V1Container): Outcome<Identity> {
    const podSc = pod.spec.securityContext ?? {};
    const sc = c.securityContext ?? {};
    const uid = this.mapUid(sc.runAsUser ?? podSc.runAsUser ?? 0);
    if ((sc.runAsNonRoot ?? podSc.runAsNonRoot) && uid === 0) return { failed: `container "${c.name}" has runAsNonRoot and image will run as root` };
    const isPostgres = uid === this.host.postgres.uid;
    const runAsGroup = sc.runAsGroup ?? podSc.runAsGroup;
    const gid = runAsGroup !== undefined ? this.mapGid(runAsGroup) : isPostgres ? this.host.postgres.gid : 0;
    const groups = [gid, ...(podSc.fsGroup !== undefined ? [this.mapGid(podSc.fsGroup)] : []), ...(podSc.supplementalGroups ?? []).map((g) => this.mapGid(g))];
    const home = uid === 0 ? "/root" : isPostgres ? "/var/lib/postgresql" : "/";
    return { ok: { uid, gid, groups: [...new Set(groups)], home } };
  }

  /** The container's environment, resolved as the kubelet does (envFrom, then env; `$(VAR)` of earlier ones). */
  private environment(pod: Pod, c: k8s.V1Container, identity: Identity, main: boolean): Outcome<Map<string, string>> {
    const env = new Map<string, string>([
      ["PATH", `${STAGE}/bin:${PG_BIN}:${IMAGE_PATH}`],
      ["HOSTNAME", pod.name],
      ["LANG", this.host.lang],
      ["PG_MAJOR", "15"],
      ["PGDATA", IMAGE_PGDATA],
      ["HOME", identity.home],
    ]);
    const lookup = (kind: "ConfigMap" | "Secret", name: string): DataObject | undefined =>
      (kind === "Secret" ? this.secrets : this.configMaps).get(this.opts.namespace, name);
    const decode = (kind: "ConfigMap" | "Secret", v: string): string => (kind === "Secret" ? Buffer.from(v, "base64").toString("utf8") : v);
    for (const from of c.envFrom ?? []) {
      const [kind, ref] = from.configMapRef ? (["ConfigMap", from.configMapRef] as const) : from.secretRef ? (["Secret", from.secretRef] as const) : [undefined, undefined];
      if (!kind || !ref) continue;
      const obj = lookup(kind, ref.name ?? "");
      if (!obj) {
        if (ref.optional) continue;
        return { blocked: `${kind.toLowerCase()} "${ref.name}" not found` };
      }
      for (const [k, v] of Object.entries(obj.data ?? {})) env.set(`${from.prefix ?? ""}${k}`, decode(kind, v));
    }
    for (const e of c.env ?? []) {
      if (e.value !== undefined || !e.valueFrom) {
        env.set(e.name, expand(e.value ?? "", env));
        continue;
      }
      const vf = e.valueFrom;
      const keyRef = vf.secretKeyRef ? (["Secret", vf.secretKeyRef] as const) : vf.configMapKeyRef ? (["ConfigMap", vf.configMapKeyRef] as const) : undefined;
      if (keyRef) {
        const [kind, ref] = keyRef;
        const obj = lookup(kind, ref.name ?? "");
        const raw = obj?.data?.[ref.key];
        if (raw === undefined) {
          if (ref.optional) continue;
          return { blocked: obj ? `couldn't find key ${ref.key} in ${kind} ${this.opts.namespace}/${ref.name}` : `${kind.toLowerCase()} "${ref.name}" not found` };
        }
        env.set(e.name, decode(kind, raw));
      } else if (vf.fieldRef) {
        const field = { "metadata.name": pod.name, "metadata.namespace": this.opts.namespace, "status.podIP": "127.0.0.1", "status.hostIP": "127.0.0.1" }[vf.fieldRef.fieldPath];
        if (field === undefined) return { failed: `env ${e.name}: fieldRef ${vf.fieldRef.fieldPath} is not supported by the pod runner` };
        env.set(e.name, field);
      } else {
        return { failed: `env ${e.name}: this valueFrom is not supported by the pod runner` };
      }
    }
    // The deliberate difference: the server's default port is the runner's (see the header).
    if (main) env.set("PGPORT", String(this.port));
    return { ok: env };
  }

  private async planContainer(pod: Pod, c: k8s.V1Container, main: boolean): Promise<Outcome<ContainerPlan>> {
    const identity = this.identity(pod, c);
    if (!("ok" in identity)) return identity;
    const env = this.environment(pod, c, identity.ok, main);
    if (!("ok" in env)) return env;
    const dir = join(pod.dir, "containers", c.name);
    const subpaths = join(pod.dir, "subpaths", c.name);
    const rootDir = join(pod.dir, "roots", c.name);
    await rm(dir, { recursive: true, force: true });
    await rm(subpaths, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    await mkdir(subpaths, { recursive: true });
    await mkdir(rootDir, { recursive: true });

    const mounts: MountPlan[] = [];
    for (const [i, m] of (c.volumeMounts ?? []).entries()) {
      const v = pod.volumes.get(m.name);
      if (!v) return { failed: `container "${c.name}": volumeMount "${m.name}" names no volume of the pod` };
      if (!m.mountPath.startsWith("/")) return { failed: `container "${c.name}": mountPath ${m.mountPath} is not absolute` };
      const subPath = posix.normalize(m.subPathExpr ? expand(m.subPathExpr, env.ok) : (m.subPath ?? "")).replace(/^\.$/, "");
      if (subPath.startsWith("/") || subPath.startsWith("..")) return { failed: `container "${c.name}": subPath ${subPath} must be relative and not contain '..'` };
      const readOnly = !!m.readOnly || v.kind === "configMap" || v.kind === "secret";
      let host = v.dir;
      let source = v.staged;
      if (subPath && (v.kind === "configMap" || v.kind === "secret")) {
        // The kubelet binds the file as it is at container start: a later change of the object never reaches it.
        const copy = join(subpaths, String(i));
        if (existsSync(join(v.dir, subPath))) await runOk("cp", ["-RL", "--preserve=mode,ownership", join(v.dir, subPath), copy]);
        else await mkdir(copy);
        host = copy;
        source = `${STAGE}/subpaths/${i}`;
      } else if (subPath) {
        host = join(v.dir, subPath);
        source = `${v.staged}/${subPath}`;
        if (!existsSync(host)) {
          // As the kubelet: created with the volume root's permissions.
          await mkdir(host, { recursive: true });
          await chmod(host, (await stat(v.dir)).mode & 0o7777);
        }
      }
      const kind = (await stat(host)).isDirectory() ? "dir" : "file";
      mounts.push({ source, target: posix.normalize(m.mountPath), kind, readOnly });
    }
    // Parents first, as container runtimes order mounts.
    mounts.sort((a, b) => a.target.split("/").length - b.target.split("/").length);

    const expanded = (xs: string[] | undefined): string[] | undefined => xs?.map((x) => expand(x, env.ok));
    const command = expanded(c.command);
    const args = expanded(c.args);
    const argv = command ? [...command, ...(args ?? [])] : [...IMAGE_ENTRYPOINT, ...(args ?? IMAGE_CMD)];
    const plan: ContainerPlan = {
      name: c.name,
      dir,
      rootDir,
      stage: { volumes: join(pod.dir, "volumes"), claims: join(this.root, "claims"), subpaths, container: dir },
      mounts,
      env: [...env.ok],
      argv,
      workingDir: c.workingDir || "/",
      identity: identity.ok,
    };
    await writeFile(join(dir, "outer.sh"), outerScript(plan, this.root), { mode: 0o700 });
    await writeFile(join(dir, "inner.sh"), innerScript(plan, this.host), { mode: 0o700 });
    return { ok: plan };
  }

  private launch(pod: Pod, plan: ContainerPlan): ContainerProc {
    const logPath = join(plan.dir, "log");
    const fd = openSync(logPath, "a");
    // pdeathsig: if this test process dies, unshare dies, and --kill-child takes the container's PID namespace along.
    const child = spawn(
      "setpriv",
      ["--pdeathsig", "SIGKILL", "--", "unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "--", "bash", join(plan.dir, "outer.sh")],
      { stdio: ["ignore", fd, fd], env: HOST_ENV },
    );
    closeSync(fd);
    const proc: ContainerProc = {
      plan,
      child,
      logPath,
      exited: new Promise<number>((resolve) => {
        const done = (code: number): void => {
          if (proc.code !== undefined) return;
          proc.code = code;
          pod.running.delete(proc);
          resolve(code);
        };
        child.once("error", (err) => {
          this.errors.push(`cannot start container ${plan.name}: ${err.message}`);
          done(127);
        });
        child.once("exit", (code, signal) => done(code ?? (signal ? 128 : 1)));
      }),
    };
    pod.running.add(proc);
    return proc;
  }

  private async runToCompletion(pod: Pod, plan: ContainerPlan): Promise<number> {
    const proc = this.launch(pod, plan);
    const code = await Promise.race([proc.exited, giveUpAfter(INIT_TIMEOUT_MS).then(() => undefined)]);
    if (code !== undefined) return code;
    proc.child.kill("SIGKILL");
    await Promise.race([proc.exited, giveUpAfter(10_000)]);
    return 124;
  }
}

/** The host pid of the process unshare forked (PID 1 of the container's namespace). */
async function childPid(proc: ContainerProc): Promise<number | undefined> {
  const pid = proc.child.pid;
  if (pid === undefined) return undefined;
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && proc.code === undefined) {
    const children = await readFile(`/proc/${pid}/task/${pid}/children`, "utf8").catch(() => "");
    const first = Number(children.trim().split(/\s+/)[0]);
    if (first > 0) return first;
    await sleep(20);
  }
  return undefined;
}

/** `$(VAR)` as the kubelet expands it: known names replaced, `$$` an escaped `$`, anything else kept. */
function expand(s: string, env: Map<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name: string | undefined) => (m === "$$" ? "$" : (env.get(name!) ?? m)));
}

function setprivArgs(who: Identity): string[] {
  return [`--reuid=${who.uid}`, `--regid=${who.gid}`, who.groups.length ? `--groups=${who.groups.join(",")}` : "--clear-groups"];
}

/** The kubelet's SetVolumeOwnership: group fsGroup on everything, group read (and write) bits, setgid folders. */
async function setVolumeOwnership(dir: string, gid: number, readOnly: boolean): Promise<void> {
  const mask = readOnly ? 0o440 : 0o660;
  const walk = async (path: string): Promise<void> => {
    const info = await lstat(path);
    await lchown(path, info.uid, gid);
    if (info.isSymbolicLink()) return;
    if (info.isDirectory()) {
      await chmod(path, (info.mode & 0o7777) | mask | 0o110 | 0o2000);
      for (const entry of await readdir(path)) await walk(join(path, entry));
    } else {
      await chmod(path, (info.mode & 0o7777) | mask);
    }
  };
  await walk(dir);
}

/** fsGroupChangePolicy OnRootMismatch: the kubelet skips the walk when the volume root already looks right. */
async function requiresPermissionChange(dir: string, gid: number): Promise<boolean> {
  const info = await stat(dir);
  const want = 0o660 | 0o110;
  return info.gid !== gid || (info.mode & want) !== want || (info.mode & 0o2000) === 0;
}

// --- the scripts -----------------------------------------------------------------------------------------------

/** Runs in the new namespaces as root: builds the container's root from this machine's, then chroots into it. */
function outerScript(plan: ContainerPlan, runnerRoot: string): string {
  const binds = Object.entries(plan.stage).map(([name, host]) => `mkdir -p "$R${STAGE}/${name}"; mount --bind ${q(host)} "$R${STAGE}/${name}"`);
  return `#!/bin/bash
# Container ${plan.name}: written by test/support/pod-runner.ts. Runs in private mount and PID namespaces.
set -euo pipefail
shopt -s nullglob dotglob
R=${q(plan.rootDir)}
mount -t tmpfs -o mode=0755 pod-runner "$R"
# Every top-level entry of this machine's / (bound: read and written through, never replaced), but /proc and /tmp.
for e in /*; do
  n=\${e#/}
  case "$n" in proc|tmp) mkdir "$R/$n"; continue ;; esac
  if [ -L "$e" ]; then cp -P "$e" "$R/$n"
  elif [ -d "$e" ]; then mkdir "$R/$n"; mount --rbind "$e" "$R/$n"
  else : > "$R/$n"; mount --bind "$e" "$R/$n"
  fi
done
mount -t proc proc "$R/proc"
mount -t tmpfs -o mode=1777 pod-runner "$R/tmp"
mkdir -p "$R${STAGE}/bin" "$R${STAGE}/image"
mount --bind ${q(join(runnerRoot, "bin"))} "$R${STAGE}/bin"
mount -o remount,bind,ro "$R${STAGE}/bin"
mount --bind ${q(join(runnerRoot, "image"))} "$R${STAGE}/image"
${binds.join("\n")}
exec chroot "$R" /bin/bash ${STAGE}/container/inner.sh
`;
}

/** Runs chrooted in the container's root, as root: the image's paths, the volume mounts, then the command. */
function innerScript(plan: ContainerPlan, host: HostFacts): string {
  const { uid, gid } = host.postgres;
  const mounts = plan.mounts.map((m) => `bindmount ${q(m.source)} ${q(m.target)} ${m.kind} ${m.readOnly ? "ro" : "rw"}`);
  const env = plan.env.map(([k, v]) => q(`${k}=${v}`));
  return `#!/bin/bash
# Container ${plan.name}: written by test/support/pod-runner.ts. Runs chrooted in the container's root.
set -euo pipefail
shopt -s nullglob dotglob
umask 022
die() { echo "pod-runner: $*" >&2; exit 125; }
# Mount points on filesystems of ours (tmpfs, volumes), where a missing mount point may be created.
OURS=(/)
is_ours() {
  local m o
  m=$(findmnt -n -o TARGET --target "$1")
  for o in "\${OURS[@]}"; do [ "$o" = "$m" ] && return 0; done
  return 1
}
# A tmpfs over a directory of this machine, its entries bound back in: a mount point can be made there, nothing hidden.
shadow() {
  local d s e n mode owner group
  d=$(realpath -e "$1")
  s=${STAGE}/stash/\${#OURS[@]}
  mode=$(stat -c %a "$d"); owner=$(stat -c %u "$d"); group=$(stat -c %g "$d")
  mkdir -p "$s"
  mount --rbind "$d" "$s"
  mount -t tmpfs -o "mode=0$mode,uid=$owner,gid=$group" pod-runner "$d"
  for e in "$s"/*; do
    n=\${e##*/}
    if [ -L "$e" ]; then cp -P "$e" "$d/$n"
    elif [ -d "$e" ]; then mkdir "$d/$n"; mount --rbind "$e" "$d/$n"
    else : > "$d/$n"; mount --bind "$e" "$d/$n"
    fi
  done
  OURS+=("$d")
}
mkpoint() {
  local p=$1 kind=$2 parent
  if [ -e "$p" ]; then
    if [ "$kind" = dir ]; then [ -d "$p" ] || die "cannot mount a directory at $p: a file is there"
    else [ ! -d "$p" ] || die "cannot mount a file at $p: a directory is there"
    fi
    return 0
  fi
  [ -L "$p" ] && die "mount point $p is a dangling symlink"
  parent=$(dirname "$p")
  mkpoint "$parent" dir
  is_ours "$parent" || shadow "$parent"
  if [ "$kind" = dir ]; then mkdir "$p"; else : > "$p"; fi
}
own_tmpfs() {
  mkpoint "$1" dir
  mount -t tmpfs -o "mode=$2,uid=$3,gid=$4" pod-runner "$1"
  OURS+=("$(realpath -e "$1")")
}
bindmount() {
  mkpoint "$2" "$3"
  mount --bind "$1" "$2" || die "cannot mount $1 at $2"
  [ "$4" = ro ] && mount -o remount,bind,ro "$2"
  [ "$3" = dir ] && OURS+=("$(realpath -e "$2")")
  return 0
}

# The image's own state of the paths it owns (postgres:15).
own_tmpfs /root 0700 0 0
own_tmpfs /etc/postgresql 0755 0 0
own_tmpfs /var/lib/postgresql 0755 ${uid} ${gid}
mkdir -p ${IMAGE_PGDATA}; chown ${uid}:${gid} ${IMAGE_PGDATA}; chmod 1777 ${IMAGE_PGDATA}
own_tmpfs /var/run/postgresql 3777 ${uid} ${gid}
mkdir -p /docker-entrypoint-initdb.d
mkpoint /usr/share/postgresql/postgresql.conf.sample file
cat ${STAGE}/image/postgresql.conf.sample > /usr/share/postgresql/postgresql.conf.sample

# The pod's volumeMounts.
${mounts.join("\n")}

# The image's symlink ${host.shareDir}/postgresql.conf.sample -> ../postgresql.conf.sample, after the volumes.
mount --bind /usr/share/postgresql/postgresql.conf.sample ${q(`${host.shareDir}/postgresql.conf.sample`)}
# The staging goes: the container sees its own mounts only.
umount -l ${STAGE}/volumes ${STAGE}/claims ${STAGE}/subpaths ${STAGE}/container
[ -d ${STAGE}/stash ] && umount -R -l ${STAGE}/stash/* 2>/dev/null || true

mkdir -p ${q(plan.workingDir)}
cd ${q(plan.workingDir)}
exec env -i ${env.join(" ")} setpriv ${setprivArgs(plan.identity).join(" ")} -- ${plan.argv.map(q).join(" ")}
`;
}

/**
 * A stand-in for the image's /usr/local/bin/docker-entrypoint.sh (docker-library/postgres 15), function for
 * function where it matters; gosu is setpriv (see gosuScript).
 */
function entrypointScript(uid: number, gid: number): string {
  return `#!/usr/bin/env bash
# Stand-in for the postgres image's docker-entrypoint.sh, written by test/support/pod-runner.ts.
set -Eeo pipefail

file_env() {
  local var="$1"
  local fileVar="\${var}_FILE"
  local def="\${2:-}"
  if [ "\${!var:-}" ] && [ "\${!fileVar:-}" ]; then
    printf >&2 'error: both %s and %s are set (but are exclusive)\\n' "$var" "$fileVar"
    exit 1
  fi
  local val="$def"
  if [ "\${!var:-}" ]; then
    val="\${!var}"
  elif [ "\${!fileVar:-}" ]; then
    val="$(< "\${!fileVar}")"
  fi
  export "$var"="$val"
  unset "$fileVar"
}

docker_create_db_directories() {
  local user; user="$(id -u)"
  mkdir -p "$PGDATA"
  chmod 00700 "$PGDATA" || :
  mkdir -p /var/run/postgresql || :
  chmod 03775 /var/run/postgresql || :
  if [ -n "\${POSTGRES_INITDB_WALDIR:-}" ]; then
    mkdir -p "$POSTGRES_INITDB_WALDIR"
    if [ "$user" = '0' ]; then
      find "$POSTGRES_INITDB_WALDIR" '!' -user postgres -exec chown postgres '{}' +
    fi
    chmod 700 "$POSTGRES_INITDB_WALDIR"
  fi
  if [ "$user" = '0' ]; then
    find "$PGDATA" '!' -user postgres -exec chown postgres '{}' +
    find /var/run/postgresql '!' -user postgres -exec chown postgres '{}' +
  fi
}

docker_init_database_dir() {
  if [ -n "\${POSTGRES_INITDB_WALDIR:-}" ]; then
    set -- --waldir "$POSTGRES_INITDB_WALDIR" "$@"
  fi
  # initdb reads <sharedir>/postgresql.conf.sample: bound to /usr/share/postgresql/postgresql.conf.sample, like the image's symlink.
  eval 'initdb --username="$POSTGRES_USER" --pwfile=<(printf "%s\\n" "$POSTGRES_PASSWORD") '"$POSTGRES_INITDB_ARGS"' "$@"'
}

docker_verify_minimum_env() {
  if [ -z "$POSTGRES_PASSWORD" ] && [ 'trust' != "$POSTGRES_HOST_AUTH_METHOD" ]; then
    printf >&2 '%s\\n' 'Error: Database is uninitialized and superuser password is not specified.' \\
      '       You must specify POSTGRES_PASSWORD to a non-empty value for the superuser.'
    exit 1
  fi
}

docker_process_init_files() {
  printf '\\n'
  local f
  for f; do
    case "$f" in
      *.sh)
        if [ -x "$f" ]; then
          printf '%s: running %s\\n' "$0" "$f"
          "$f"
        else
          printf '%s: sourcing %s\\n' "$0" "$f"
          . "$f"
        fi
        ;;
      *.sql)     printf '%s: running %s\\n' "$0" "$f"; docker_process_sql -f "$f"; printf '\\n' ;;
      *.sql.gz)  printf '%s: running %s\\n' "$0" "$f"; gunzip -c "$f" | docker_process_sql; printf '\\n' ;;
      *.sql.xz)  printf '%s: running %s\\n' "$0" "$f"; xzcat "$f" | docker_process_sql; printf '\\n' ;;
      *.sql.zst) printf '%s: running %s\\n' "$0" "$f"; zstd -dc "$f" | docker_process_sql; printf '\\n' ;;
      *)         printf '%s: ignoring %s\\n' "$0" "$f" ;;
    esac
    printf '\\n'
  done
}

docker_process_sql() {
  local query_runner=( psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc )
  if [ -n "$POSTGRES_DB" ]; then
    query_runner+=( --dbname "$POSTGRES_DB" )
  fi
  PGHOST= PGHOSTADDR= "\${query_runner[@]}" "$@"
}

docker_setup_db() {
  local dbAlreadyExists
  dbAlreadyExists="$(
    POSTGRES_DB= docker_process_sql --dbname postgres --set db="$POSTGRES_DB" --tuples-only <<'EOSQL'
SELECT 1 FROM pg_database WHERE datname = :'db' ;
EOSQL
  )"
  if [ -z "$dbAlreadyExists" ]; then
    POSTGRES_DB= docker_process_sql --dbname postgres --set db="$POSTGRES_DB" <<'EOSQL'
CREATE DATABASE :"db" ;
EOSQL
    printf '\\n'
  fi
}

docker_setup_env() {
  file_env 'POSTGRES_PASSWORD'
  file_env 'POSTGRES_USER' 'postgres'
  file_env 'POSTGRES_DB' "$POSTGRES_USER"
  file_env 'POSTGRES_INITDB_ARGS'
  : "\${POSTGRES_HOST_AUTH_METHOD:=}"
  declare -g DATABASE_ALREADY_EXISTS
  : "\${DATABASE_ALREADY_EXISTS:=}"
  if [ -s "$PGDATA/PG_VERSION" ]; then
    DATABASE_ALREADY_EXISTS='true'
  fi
}

pg_setup_hba_conf() {
  if [ "$1" = 'postgres' ]; then
    shift
  fi
  local auth
  auth="$(postgres -C password_encryption "$@")"
  : "\${POSTGRES_HOST_AUTH_METHOD:=$auth}"
  {
    printf '\\n'
    if [ 'trust' = "$POSTGRES_HOST_AUTH_METHOD" ]; then
      printf '# warning trust is enabled for all connections\\n'
    fi
    printf 'host all all all %s\\n' "$POSTGRES_HOST_AUTH_METHOD"
  } >> "$PGDATA/pg_hba.conf"
}

docker_temp_server_start() {
  if [ "$1" = 'postgres' ]; then
    shift
  fi
  set -- "$@" -c listen_addresses='' -p "\${PGPORT:-5432}"
  PGUSER="\${PGUSER:-$POSTGRES_USER}" \\
  pg_ctl -D "$PGDATA" \\
    -o "$(printf '%q ' "$@")" \\
    -w start
}

docker_temp_server_stop() {
  PGUSER="\${PGUSER:-postgres}" \\
  pg_ctl -D "$PGDATA" -m fast -w stop
}

_pg_want_help() {
  local arg
  for arg; do
    case "$arg" in
      -'?'|--help|--describe-config|-V|--version)
        return 0
        ;;
    esac
  done
  return 1
}

_main() {
  if [ "\${1:0:1}" = '-' ]; then
    set -- postgres "$@"
  fi

  if [ "$1" = 'postgres' ] && ! _pg_want_help "$@"; then
    docker_setup_env
    docker_create_db_directories
    if [ "$(id -u)" = '0' ]; then
      # gosu postgres: this machine's postgres user (${uid}:${gid}) stands for the image's 999.
      exec gosu postgres "$BASH_SOURCE" "$@"
    fi

    if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
      docker_verify_minimum_env
      ls /docker-entrypoint-initdb.d/ > /dev/null
      docker_init_database_dir
      pg_setup_hba_conf "$@"
      export PGPASSWORD="\${PGPASSWORD:-$POSTGRES_PASSWORD}"
      docker_temp_server_start "$@"
      docker_setup_db
      docker_process_init_files /docker-entrypoint-initdb.d/*
      docker_temp_server_stop
      unset PGPASSWORD
      printf '\\nPostgreSQL init process complete; ready for start up.\\n\\n'
    else
      printf '\\nPostgreSQL Database directory appears to contain a database; Skipping initialization\\n\\n'
    fi
  fi

  exec "$@"
}

_main "$@"
`;
}

/** gosu USER[:GROUP] COMMAND…: setpriv with the user's ids and HOME; postgres (or 999) is this machine's postgres. */
function gosuScript(uid: number, gid: number): string {
  return `#!/usr/bin/env bash
# Stand-in for gosu, written by test/support/pod-runner.ts.
set -e
spec=$1; shift
u=\${spec%%:*}; g=
[ "$spec" != "$u" ] && g=\${spec#*:}
case "$u" in
  postgres|999) uid=${uid}; gid=${gid}; home=/var/lib/postgresql ;;
  *) IFS=: read -r _ _ uid gid _ home _ < <(getent passwd "$u") || { echo "gosu: unknown user $u" >&2; exit 1; } ;;
esac
[ -n "$g" ] && gid=$g
HOME=$home exec setpriv --reuid="$uid" --regid="$gid" --init-groups -- "$@"
`;
}
