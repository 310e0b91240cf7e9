import * as k8s from "@kubernetes/client-node";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort, run, runOk, waitFor, type RunResult } from "./process";

const REPO = resolve(__dirname, "..", "..");
export const OPERATOR_NAMESPACE = "imaging-db-mtls-operator";
export const OPERATOR_SERVICE_ACCOUNT = "imaging-db-mtls-operator";
/** The operator authenticates as its ServiceAccount's user, so only the shipped RBAC grants it anything. */
export const OPERATOR_USER = `system:serviceaccount:${OPERATOR_NAMESPACE}:${OPERATOR_SERVICE_ACCOUNT}`;
/** The user kube-controller-manager (garbage collector, workload and namespace controllers) acts as. */
export const CONTROLLER_MANAGER_USER = "system:kube-controller-manager";

/**
 * Every on-by-default controller but those that need nodes, a cloud or storage: the test cluster has no real
 * node (a test may start a kubelet stand-in with a fake one), so node lifecycle would only taint and evict.
 */
const CONTROLLERS = [
  "*",
  "-node-ipam-controller",
  "-node-lifecycle-controller",
  "-cloud-node-lifecycle-controller",
  "-node-route-controller",
  "-service-lb-controller",
  "-persistentvolume-attach-detach-controller",
  "-persistentvolume-binder-controller",
  "-persistentvolume-expander-controller",
].join(",");

export interface ControlPlane {
  readonly server: string;
  readonly dir: string;
  /** Admin (system:masters) kubeconfig file. */
  readonly kubeconfigPath: string;
  readonly kubeConfig: k8s.KubeConfig;
  /** Kubeconfig of the operator's own identity, bound only by what RBAC grants it. */
  readonly operatorKubeconfigPath: string;
  readonly auditLogPath: string;
  /** What kube-controller-manager (started and stopped with the control plane) logged. */
  readonly controllerManagerLogPath: string;
  readonly version: string;
  readonly binaries: ControlPlaneBinaries;
  kubectl(args: string[], opts?: { input?: string; kubeconfig?: string }): Promise<RunResult>;
  createNamespace(prefix: string): Promise<string>;
  installCRDs(): Promise<void>;
  /** Applies the shipped RBAC (deploy/rbac): the operator identity gets exactly what it grants. */
  installRBAC(): Promise<void>;
  /** Audit events (ResponseComplete) of one user, optionally since a time. */
  auditEvents(user: string, since?: Date): Promise<AuditEvent[]>;
  /**
   * Each stopApiServer → startApiServer window (readyAt: when /readyz answered again). A restarting API server
   * serves requests before its RBAC is loaded and refuses them with 403: audits discount those windows.
   */
  readonly outages: { stoppedAt: Date; readyAt?: Date }[];
  /** Stops the API server only (etcd keeps the data); startApiServer brings it back on the same port. */
  stopApiServer(): Promise<void>;
  startApiServer(): Promise<void>;
  stop(): Promise<void>;
}

export interface AuditEvent {
  verb: string;
  user: { username: string };
  objectRef?: { resource?: string; namespace?: string; name?: string; subresource?: string; apiGroup?: string };
  /** A refusal's message says whether authorization (RBAC) or admission (e.g. a ValidatingAdmissionPolicy) refused. */
  responseStatus?: { code?: number; message?: string };
  requestReceivedTimestamp: string;
  stage: string;
}

export interface ControlPlaneBinaries {
  apiserver: string;
  etcd: string;
  /** The kubectl of the same release, so client and server never skew. */
  kubectl: string;
  /** Runs the garbage collector, Deployment/ReplicaSet/StatefulSet and namespace controllers, as a cluster does. */
  kubeControllerManager: string;
}

/**
 * Builds (or finds in the cache) kube-apiserver, etcd, kubectl and kube-controller-manager;
 * KUBE_APISERVER_BIN / ETCD_BIN / KUBECTL_BIN / KUBE_CONTROLLER_MANAGER_BIN override.
 */
export async function controlPlaneBinaries(): Promise<ControlPlaneBinaries> {
  const { KUBE_APISERVER_BIN, ETCD_BIN, KUBECTL_BIN, KUBE_CONTROLLER_MANAGER_BIN } = process.env;
  let bins: ControlPlaneBinaries;
  if (KUBE_APISERVER_BIN && ETCD_BIN && KUBECTL_BIN && KUBE_CONTROLLER_MANAGER_BIN) {
    bins = { apiserver: KUBE_APISERVER_BIN, etcd: ETCD_BIN, kubectl: KUBECTL_BIN, kubeControllerManager: KUBE_CONTROLLER_MANAGER_BIN };
  } else {
    const r = await run("bash", [join(REPO, "test", "controlplane", "build.sh")], { timeoutMs: 60 * 60_000 });
    if (r.code !== 0) {
      throw new Error(
        `building the control plane (kube-apiserver, etcd, kubectl, kube-controller-manager) failed (test/controlplane/build.sh needs Go and the Go module proxy): ${r.stderr.slice(-2000)}`,
      );
    }
    const dir = r.stdout.trim().split("\n").pop() ?? "";
    bins = {
      apiserver: KUBE_APISERVER_BIN ?? join(dir, "kube-apiserver"),
      etcd: ETCD_BIN ?? join(dir, "etcd"),
      kubectl: KUBECTL_BIN ?? join(dir, "kubectl"),
      kubeControllerManager: KUBE_CONTROLLER_MANAGER_BIN ?? join(dir, "kube-controller-manager"),
    };
  }
  if (!existsSync(bins.kubeControllerManager)) {
    throw new Error(
      `kube-controller-manager not found at ${bins.kubeControllerManager}: build it with \`bash test/controlplane/build.sh\` ` +
        "(from k8s.io/kubernetes/cmd/kube-controller-manager, the apiserver's module) or point KUBE_CONTROLLER_MANAGER_BIN at one of the same release",
    );
  }
  return bins;
}

function startProcess(bin: string, args: string[], logPath: string): ChildProcess {
  const log = createWriteStream(logPath, { flags: "a" });
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  return child;
}

async function stopProcess(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

function httpsStatus(url: string, ca: Buffer, token?: string): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const req = request(url, { ca, headers: token ? { authorization: `Bearer ${token}` } : {}, timeout: 2000 }, (res) => {
      res.resume();
      resolvePromise(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.end();
  });
}

function kubeconfigYaml(server: string, caPath: string, user: string, token: string): string {
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: test",
    `  cluster: { server: "${server}", certificate-authority: "${caPath}" }`,
    "users:",
    `- name: ${user}`,
    `  user: { token: "${token}" }`,
    "contexts:",
    `- name: test`,
    `  context: { cluster: test, user: ${user} }`,
    "current-context: test",
    "",
  ].join("\n");
}

export async function startControlPlane(): Promise<ControlPlane> {
  const bins = await controlPlaneBinaries();
  const dir = await mkdtemp(join(tmpdir(), "controlplane-"));
  const [etcdPort, etcdPeerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const certDir = join(dir, "certs");
  const saKey = join(dir, "sa.key");
  const tokens = join(dir, "tokens.csv");
  const auditPolicy = join(dir, "audit-policy.yaml");
  const auditLogPath = join(dir, "audit.log");
  const adminToken = randomBytes(24).toString("hex");
  const operatorToken = randomBytes(24).toString("hex");
  // The controllers' own identity, so audits of the admin or the operator never count their requests.
  const controllerManagerToken = randomBytes(24).toString("hex");

  await writeFile(saKey, generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }));
  await writeFile(
    tokens,
    [
      `${adminToken},admin,admin-uid,"system:masters"`,
      `${operatorToken},${OPERATOR_USER},operator-uid,"system:serviceaccounts,system:serviceaccounts:${OPERATOR_NAMESPACE},system:authenticated"`,
      `${controllerManagerToken},${CONTROLLER_MANAGER_USER},kcm-uid,"system:masters"`,
      "",
    ].join("\n"),
  );
  await writeFile(auditPolicy, "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n");

  let etcd: ChildProcess | undefined = startProcess(
    bins.etcd,
    [
      "--data-dir", join(dir, "etcd"),
      "--listen-client-urls", `http://127.0.0.1:${etcdPort}`,
      "--advertise-client-urls", `http://127.0.0.1:${etcdPort}`,
      "--listen-peer-urls", `http://127.0.0.1:${etcdPeerPort}`,
      "--initial-advertise-peer-urls", `http://127.0.0.1:${etcdPeerPort}`,
      "--initial-cluster", `default=http://127.0.0.1:${etcdPeerPort}`,
      "--unsafe-no-fsync",
    ],
    join(dir, "etcd.log"),
  );
  let apiserver: ChildProcess | undefined;
  const outages: { stoppedAt: Date; readyAt?: Date }[] = [];
  const server = `https://127.0.0.1:${apiPort}`;
  const caPath = join(certDir, "apiserver.crt");

  const startApiServer = async (): Promise<void> => {
    apiserver = startProcess(
      bins.apiserver,
      [
        `--etcd-servers=http://127.0.0.1:${etcdPort}`,
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        `--secure-port=${apiPort}`,
        `--cert-dir=${certDir}`,
        "--service-cluster-ip-range=10.0.0.0/24",
        "--authorization-mode=RBAC",
        "--disable-admission-plugins=ServiceAccount",
        `--service-account-issuer=${server}/`,
        `--service-account-key-file=${saKey}`,
        `--service-account-signing-key-file=${saKey}`,
        `--token-auth-file=${tokens}`,
        "--endpoint-reconciler-type=none",
        `--audit-policy-file=${auditPolicy}`,
        `--audit-log-path=${auditLogPath}`,
        "--audit-log-mode=blocking",
      ],
      join(dir, "apiserver.log"),
    );
    const started = apiserver;
    await waitFor(
      "kube-apiserver /readyz",
      async () => {
        if (started.exitCode !== null) throw new Error(`kube-apiserver exited: see ${join(dir, "apiserver.log")}`);
        if (!existsSync(caPath)) return false;
        return (await httpsStatus(`${server}/readyz`, await readFile(caPath), adminToken)) === 200;
      },
      120_000,
      200,
    );
    const outage = outages.at(-1);
    if (outage && !outage.readyAt) outage.readyAt = new Date();
  };

  let controllerManager: ChildProcess | undefined;
  const controllerManagerLog = join(dir, "kube-controller-manager.log");
  // Started once the API server serves; it outlives stopApiServer/startApiServer and reconnects by itself.
  const startControllerManager = async (): Promise<void> => {
    const kubeconfig = join(dir, "kube-controller-manager.kubeconfig");
    await writeFile(kubeconfig, kubeconfigYaml(server, caPath, CONTROLLER_MANAGER_USER, controllerManagerToken));
    controllerManager = startProcess(
      bins.kubeControllerManager,
      [
        `--kubeconfig=${kubeconfig}`,
        `--controllers=${CONTROLLERS}`,
        "--use-service-account-credentials=false",
        `--service-account-private-key-file=${saKey}`,
        `--root-ca-file=${caPath}`,
        "--leader-elect=false",
        "--secure-port=0",
      ],
      controllerManagerLog,
    );
    const started = controllerManager;
    // Ready when its controllers act: the serviceaccount controller gives every namespace its "default" account.
    const core = (() => {
      const kc = new k8s.KubeConfig();
      kc.loadFromString(kubeconfigYaml(server, caPath, "admin", adminToken));
      return kc.makeApiClient(k8s.CoreV1Api);
    })();
    await waitFor(
      "kube-controller-manager to act (the default ServiceAccount of kube-system)",
      async () => {
        if (started.exitCode !== null) throw new Error(`kube-controller-manager exited: see ${controllerManagerLog}`);
        await core.readNamespacedServiceAccount({ namespace: "kube-system", name: "default" });
        return true;
      },
      120_000,
      250,
    );
  };

  const stop = async (): Promise<void> => {
    await stopProcess(controllerManager);
    await stopProcess(apiserver);
    await stopProcess(etcd);
    controllerManager = apiserver = etcd = undefined;
    if (!process.env.KEEP_CONTROLPLANE) await rm(dir, { recursive: true, force: true });
  };

  try {
    await waitFor("etcd /health", async () => {
      if (etcd?.exitCode !== null) throw new Error(`etcd exited: see ${join(dir, "etcd.log")}`);
      const res = await fetch(`http://127.0.0.1:${etcdPort}/health`);
      return res.status === 200;
    }, 60_000);
    await startApiServer();
    await startControllerManager();
  } catch (err) {
    await stop();
    throw err;
  }

  const kubeconfigPath = join(dir, "admin.kubeconfig");
  const operatorKubeconfigPath = join(dir, "operator.kubeconfig");
  await writeFile(kubeconfigPath, kubeconfigYaml(server, caPath, "admin", adminToken));
  await writeFile(operatorKubeconfigPath, kubeconfigYaml(server, caPath, "operator", operatorToken));
  const kubeConfig = new k8s.KubeConfig();
  kubeConfig.loadFromFile(kubeconfigPath);
  const version = JSON.parse(await runOk(bins.kubectl, ["--kubeconfig", kubeconfigPath, "version", "-o", "json"])).serverVersion.gitVersion as string;

  const kubectl = (args: string[], opts: { input?: string; kubeconfig?: string } = {}): Promise<RunResult> =>
    run(bins.kubectl, ["--kubeconfig", opts.kubeconfig ?? kubeconfigPath, ...args], { input: opts.input, timeoutMs: 60_000 });

  let crdsInstalled = false;
  return {
    server,
    dir,
    kubeconfigPath,
    kubeConfig,
    operatorKubeconfigPath,
    auditLogPath,
    controllerManagerLogPath: controllerManagerLog,
    version,
    binaries: bins,
    kubectl,
    async createNamespace(prefix) {
      const name = `${prefix}-${randomBytes(3).toString("hex")}`.toLowerCase();
      await kubeConfig.makeApiClient(k8s.CoreV1Api).createNamespace({ body: { metadata: { name } } });
      return name;
    },
    async installCRDs() {
      if (crdsInstalled) return;
      const applied = await kubectl(["apply", "--server-side", "--field-manager=test", "-f", join(REPO, "crds")]);
      if (applied.code !== 0) throw new Error(`installing the CRDs failed: ${applied.stderr}`);
      // Polled rather than `kubectl wait`, which fails outright ("accessor error") on a CRD that has no status yet.
      let last = "";
      const established = async () => {
        const r = await kubectl(["get", "crd", "securedatabases.mtls.imaging.dev", "imagingconnections.mtls.imaging.dev", "-o", 'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Established")].status}{" "}{end}']);
        last = `${r.stdout} ${r.stderr}`.trim();
        return r.code === 0 && r.stdout.trim() === "True True";
      };
      await waitFor("the CRDs to become Established", established, 60_000, 200).catch((err: unknown) => {
        throw new Error(`the CRDs did not become Established (last seen: ${last})`, { cause: err });
      });
      // Its garbage collector finds new resources at a 30 s discovery sync; restarted, it follows them at once.
      await stopProcess(controllerManager);
      await startControllerManager();
      crdsInstalled = true;
    },
    async installRBAC() {
      const applied = await kubectl(["apply", "--server-side", "--field-manager=test", "-f", join(REPO, "deploy", "rbac")]);
      if (applied.code !== 0) throw new Error(`installing deploy/rbac failed: ${applied.stderr}`);
    },
    async auditEvents(user, since) {
      const text = existsSync(auditLogPath) ? await readFile(auditLogPath, "utf8") : "";
      return text
        .split("\n")
        .filter((l) => l.includes(user))
        .map((l) => JSON.parse(l) as AuditEvent)
        .filter((e) => e.stage === "ResponseComplete" && e.user.username === user && (!since || new Date(e.requestReceivedTimestamp) >= since));
    },
    outages,
    async stopApiServer() {
      outages.push({ stoppedAt: new Date() });
      await stopProcess(apiserver);
    },
    startApiServer,
    stop,
  };
}
