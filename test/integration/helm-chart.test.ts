/**
 * The Helm chart deploy/helm/imaging-db-mtls-operator under the real helm v4.
 *
 * One source of truth: `helm template` renders the objects of the kustomize tree, object for object. Compared are the
 * kind, name and namespace of every object and everything else in it, after removing only the four labels Helm's
 * tooling adds (HELM_LABELS below) from each object's metadata.labels, and after dropping the Namespace
 * `imaging-db-mtls-operator` from the kustomize side (Helm installs into a namespace that exists, or makes it with
 * --create-namespace). Nothing else is normalised: comments and key order fall away by parsing the YAML.
 *   default values                      = deploy/install.yaml (CRDs with --include-crds)
 *   ci/namespaced-values.yaml           = deploy/install-namespaced.yaml
 *   ci/monitoring-values.yaml           = deploy/install.yaml + `kubectl kustomize deploy/monitoring`
 *   admission.enabled=false             = deploy/install.yaml - `kubectl kustomize deploy/admission`
 * The chart's copies of crds/, deploy/admission/ and deploy/monitoring/ files are checked byte for byte by
 * test/unit/deploy/helm-chart-files.test.ts.
 *
 * Then, on a control plane of its own (so that the chart installs the CRDs itself, as on a new cluster, and the
 * suite's shared RBAC cannot clash with the chart's): a server-side dry run of the renders, the schema refusing bad
 * values at `helm install`, `helm install`, the operator run from the installed Deployment (below) reconciling a
 * SecureDatabase, `helm upgrade` with other values restarting it from the new pod template, and `helm uninstall`
 * leaving the CRDs and the SecureDatabases.
 *
 * The Deployment runs here as a kubelet would run it, as far as this machine allows: a kubelet stand-in schedules
 * its pods and reports them Running (Ready when the process's /readyz says so), and for each Running pod this test
 * starts the container's command: the image's ENTRYPOINT (node with IMAGE_NODE_FLAGS and dist/main.js, with
 * src/main.ts through tsx for dist/main.js) with the container's args, and the container's env with its fieldRefs
 * resolved for that pod. Two stand-ins differ from a pod: KUBECONFIG points at a kubeconfig holding a token of the
 * pod's ServiceAccount (from the TokenRequest API, what the kubelet mounts), and HEALTH_PORT gives each process its
 * own port on this machine's loopback (a pod has its own network namespace). A pod that is deleted gets SIGTERM.
 */
import * as k8s from "@kubernetes/client-node";
import { expect } from "chai";
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseCommandLine } from "../../src/cli";
import { IMAGE_NODE_FLAGS } from "../../scripts/bundle-operator";
import { startControlPlane, type ControlPlane } from "../support/controlplane";
import { helm, helmOk, install, uninstall, upgrade, type HelmSet } from "../support/helm";
import { controlPlane } from "../support/hooks";
import { startKubeletStandIn, type KubeletStandIn } from "../support/kubelet-standin";
import { secureDatabaseWithoutServerYaml } from "../support/manifests";
import { freePort, runOk, waitFor } from "../support/process";
import { firstDifference, manifestId as id, manifests, one, type Manifest } from "../support/manifest-objects";

const REPO = resolve(__dirname, "..", "..");
const CHART = join(REPO, "deploy", "helm", "imaging-db-mtls-operator");
const NAME = "imaging-db-mtls-operator";
const RELEASE = "imaging-db-mtls-operator";
/** The release namespace: the install's own (deploy/install.yaml puts everything there). */
const NS = "imaging-db-mtls-operator";
const REQUESTER = "imaging-db-mtls-connection-requester";
/** The labels the chart adds to every object for Helm's tooling: the only difference from the kustomize tree. */
const HELM_LABELS = ["helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "app.kubernetes.io/version"] as const;

const deploymentOf = (objects: Manifest[], name = NAME): k8s.V1Deployment => one(objects, "Deployment", name, NS) as unknown as k8s.V1Deployment;
const operatorContainer = (d: k8s.V1Deployment): k8s.V1Container => d.spec!.template.spec!.containers.find((c) => c.name === "operator")!;

/** The object without Helm's four labels (and without an emptied labels map). */
function withoutHelmLabels(o: Manifest): Manifest {
  const copy = structuredClone(o);
  const labels = copy.metadata.labels;
  if (labels) {
    for (const l of HELM_LABELS) delete labels[l];
    if (Object.keys(labels).length === 0) delete copy.metadata.labels;
  }
  return copy;
}

/** Asserts that the chart rendered exactly `expected` (see the header for what is normalised). */
function expectSameObjects(rendered: Manifest[], expected: Manifest[], what: string): void {
  expect(rendered.map(id), `${what}: the objects`).to.have.members(expected.map(id));
  for (const want of expected) {
    const have = withoutHelmLabels(one(rendered, want.kind, want.metadata.name, want.metadata.namespace));
    const difference = firstDifference(have, want);
    if (difference) expect.fail(`${what}: ${id(want)} differs at ${difference}`);
  }
}

async function kustomize(dir: string): Promise<Manifest[]> {
  const r = await controlPlane().kubectl(["kustomize", join(REPO, dir)]);
  if (r.code !== 0) throw new Error(`kubectl kustomize ${dir}: ${r.stderr}`);
  return manifests(r.stdout);
}

/** A rendered install file without the operator's Namespace (the one object the chart leaves to Helm). */
async function installFile(file: string): Promise<Manifest[]> {
  return manifests(await readFile(join(REPO, file), "utf8")).filter((o) => !(o.kind === "Namespace" && o.metadata.name === NS));
}

function setArgs(set: HelmSet): string[] {
  return Object.entries(set).flatMap(([k, v]) => ["--set", `${k}=${String(v)}`]);
}

/** `helm template` of the chart in the release namespace, CRDs included; helm's stderr when it refuses. */
async function render(opts: { set?: HelmSet; valuesFiles?: string[] } = {}): Promise<Manifest[]> {
  const files = (opts.valuesFiles ?? []).flatMap((f) => ["-f", join(CHART, f)]);
  const out = await helmOk(["template", RELEASE, CHART, "--include-crds", ...files, ...setArgs(opts.set ?? {})], { kubeconfig: controlPlane().kubeconfigPath, namespace: NS });
  return manifests(out);
}

async function renderFails(set: HelmSet): Promise<string> {
  const r = await helm(["template", RELEASE, CHART, ...setArgs(set)], { kubeconfig: controlPlane().kubeconfigPath, namespace: NS });
  expect(r.code, `helm template ${JSON.stringify(set)} should fail: ${r.stdout.slice(0, 500)}`).to.not.equal(0);
  return r.stderr;
}

/** The process environment a container's env gives a pod (value, and the downward API fields the chart uses). */
function containerEnv(c: k8s.V1Container, pod: { name: string; namespace: string }): Record<string, string> {
  expect(c.envFrom ?? [], "envFrom is not supported here").to.deep.equal([]);
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef?.fieldPath === "metadata.namespace") env[e.name] = pod.namespace;
    else if (e.valueFrom?.fieldRef?.fieldPath === "metadata.name") env[e.name] = pod.name;
    else expect.fail(`env ${e.name}: unsupported source ${JSON.stringify(e.valueFrom)}`);
  }
  return env;
}

describe("Helm chart: helm lint and helm template against the kustomize tree", function () {
  this.timeout(300_000);
  let installYaml: Manifest[];

  before(async function () {
    this.timeout(25 * 60_000); // a cold helm build, once per machine
    installYaml = await installFile("deploy/install.yaml");
  });

  it("helm lint --strict passes with the default values and with each ci/ values file", async () => {
    for (const files of [[], ["ci/namespaced-values.yaml"], ["ci/monitoring-values.yaml"]]) {
      const args = ["lint", "--strict", CHART, ...files.flatMap((f) => ["-f", join(CHART, f)])];
      const out = await helmOk(args, { kubeconfig: controlPlane().kubeconfigPath, namespace: NS });
      expect(out, `helm ${args.join(" ")}`).to.contain("0 chart(s) failed");
    }
  });

  it("helm package: the packaged chart carries crds/ and files/ and renders what the directory renders", async () => {
    const dir = await mkdtemp(join(tmpdir(), "helm-package-"));
    try {
      const out = await helmOk(["package", CHART, "--destination", dir], { kubeconfig: controlPlane().kubeconfigPath });
      const tgz = join(dir, `${NAME}-0.1.0.tgz`);
      expect(out).to.contain(tgz);
      const listing = await runOk("tar", ["-tzf", tgz]);
      for (const f of ["crds/securedatabases.yaml", "crds/imagingconnections.yaml", "files/admission/connection-grants-policy.yaml", "files/monitoring/dashboard.json", "values.schema.json", "templates/NOTES.txt"]) {
        expect(listing, f).to.contain(`${NAME}/${f}`);
      }
      const args = ["--include-crds", "-f", join(CHART, "ci", "monitoring-values.yaml")];
      const packaged = await helmOk(["template", RELEASE, tgz, ...args], { kubeconfig: controlPlane().kubeconfigPath, namespace: NS });
      const direct = await helmOk(["template", RELEASE, CHART, ...args], { kubeconfig: controlPlane().kubeconfigPath, namespace: NS });
      expect(manifests(packaged)).to.deep.equal(manifests(direct));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("default values: the objects of deploy/install.yaml, each labelled for Helm", async () => {
    const rendered = await render();
    expectSameObjects(rendered, installYaml, "helm template (defaults) vs deploy/install.yaml");
    const { version } = JSON.parse(await readFile(join(REPO, "package.json"), "utf8")) as { version: string };
    // Helm's crds/ are installed as they are (no labels): every other object carries the four labels.
    for (const o of rendered.filter((x) => x.kind !== "CustomResourceDefinition")) {
      expect(o.metadata.labels, id(o)).to.include({
        "helm.sh/chart": `${NAME}-0.1.0`,
        "app.kubernetes.io/managed-by": "Helm",
        "app.kubernetes.io/instance": RELEASE,
        "app.kubernetes.io/version": version,
        "app.kubernetes.io/name": NAME,
      });
    }
    expect(operatorContainer(deploymentOf(rendered)).image).to.equal(`${NAME}:${version}`);
  });

  it("ci/namespaced-values.yaml: the objects of deploy/install-namespaced.yaml (Roles in cast-imaging and cast-db, no ClusterRole of its own)", async () => {
    const rendered = await render({ valuesFiles: ["ci/namespaced-values.yaml"] });
    expectSameObjects(rendered, await installFile("deploy/install-namespaced.yaml"), "helm template (namespaced) vs deploy/install-namespaced.yaml");
    expect(rendered.filter((o) => o.kind === "ClusterRole").map((o) => o.metadata.name)).to.deep.equal([REQUESTER]);
  });

  it("ci/monitoring-values.yaml: deploy/install.yaml plus the ServiceMonitor, PrometheusRule and dashboard ConfigMap of deploy/monitoring", async () => {
    const monitoring = await kustomize("deploy/monitoring");
    expect(monitoring.map(id)).to.have.members([`ServiceMonitor/${NS}/${NAME}`, `PrometheusRule/${NS}/${NAME}`, `ConfigMap/${NS}/${NAME}-dashboard`]);
    const rendered = await render({ valuesFiles: ["ci/monitoring-values.yaml"] });
    expectSameObjects(rendered, [...installYaml, ...monitoring], "helm template (monitoring) vs deploy/install.yaml + deploy/monitoring");
    // Extra selector labels for Prometheus and Grafana are added, never in place of the chart's own.
    const labelled = await render({ set: { "serviceMonitor.enabled": true, "serviceMonitor.labels.release": "kps", "prometheusRule.enabled": true, "prometheusRule.labels.release": "kps", "dashboard.enabled": true, "dashboard.labels.app\\.kubernetes\\.io/name": "other", "dashboard.namespace": "grafana" } });
    expect(one(labelled, "ServiceMonitor", NAME, NS).metadata.labels).to.include({ release: "kps", "app.kubernetes.io/name": NAME });
    expect(one(labelled, "PrometheusRule", NAME, NS).metadata.labels).to.include({ release: "kps", "app.kubernetes.io/name": NAME });
    expect(one(labelled, "ConfigMap", `${NAME}-dashboard`, "grafana").metadata.labels).to.include({ grafana_dashboard: "1", "app.kubernetes.io/name": NAME });
  });

  it("admission.enabled=false: deploy/install.yaml without the objects of deploy/admission", async () => {
    const admission = await kustomize("deploy/admission");
    expect(admission.map(id)).to.include(`ClusterRole/${REQUESTER}`);
    const rest = installYaml.filter((o) => !admission.some((a) => id(a) === id(o)));
    expect(rest).to.have.length(installYaml.length - admission.length);
    expectSameObjects(await render({ set: { "admission.enabled": false } }), rest, "helm template (admission off) vs deploy/install.yaml - deploy/admission");
  });

  it("the values reach the operator as flags and environment it accepts (src/cli.ts), and the RBAC follows them", async () => {
    const rendered = await render({
      set: {
        replicas: 3,
        logLevel: "debug",
        watchNamespaces: "{cast-a,cast-b}",
        caKeyNamespace: "cast-keys",
        mountPathPrefix: "/opt/cast/",
        allowedEndpoints: "{db.example.com,10.0.0.0/8}",
        concurrency: 8,
        "leaderElection.leaseDuration": "30s",
        "leaderElection.renewDeadline": "20s",
        "leaderElection.retryPeriod": "4s",
        "image.repository": "registry.example.com/mtls/operator",
        "image.tag": "0.2.0",
        "networkPolicy.postgresPorts": "{5432,2285}",
        "podLabels.team": "dba",
        "podLabels.app\\.kubernetes\\.io/name": "not-the-operator",
      },
    });
    const d = deploymentOf(rendered);
    const c = operatorContainer(d);
    expect(d.spec!.replicas).to.equal(3);
    expect(c.image).to.equal("registry.example.com/mtls/operator:0.2.0");
    expect(c.args).to.deep.equal(["--leader-elect", "--lease-duration=30s", "--renew-deadline=20s", "--retry-period=4s"]);
    // Pod labels are added, but never replace what the selector, Service, PDB and NetworkPolicy match.
    expect(d.spec!.template.metadata!.labels).to.deep.equal({ "app.kubernetes.io/name": NAME, "app.kubernetes.io/component": "operator", team: "dba" });
    const env = containerEnv(c, { name: "pod-0", namespace: NS });
    const config = parseCommandLine(c.args ?? [], { env, identity: "pod-0_1" });
    expect(config).to.deep.include({
      namespaces: ["cast-a", "cast-b"],
      caKeyNamespace: "cast-keys",
      mountPathPrefix: "/opt/cast/",
      allowedEndpoints: ["db.example.com", "10.0.0.0/8"],
      concurrency: 8,
      logLevel: "debug",
      healthPort: 8080,
    });
    expect(config.leaderElection).to.deep.include({ namespace: NS, name: NAME, leaseDurationMs: 30_000, renewDeadlineMs: 20_000, retryPeriodMs: 4_000 });
    // The Role on Secrets moves with the key namespace; cluster-wide RBAC stays (rbac.namespaced is false).
    expect(one(rendered, "Role", `${NAME}-ca-keys`, "cast-keys").rules).to.deep.equal([{ apiGroups: [""], resources: ["secrets"], verbs: ["get", "list", "watch", "create", "patch", "delete"] }]);
    one(rendered, "ClusterRole", NAME);
    const np = one(rendered, "NetworkPolicy", NAME, NS) as unknown as k8s.V1NetworkPolicy;
    expect(np.spec!.egress![2]!.ports).to.deep.equal([{ protocol: "TCP", port: 5432 }, { protocol: "TCP", port: 2285 }]);

    // The defaults give the operator its own defaults: every namespace, keys in the release namespace.
    const defaults = operatorContainer(deploymentOf(await render()));
    const defaultConfig = parseCommandLine(defaults.args ?? [], { env: containerEnv(defaults, { name: "pod-0", namespace: NS }), identity: "pod-0_1" });
    expect(defaultConfig).to.deep.include({ namespaces: undefined, caKeyNamespace: NS, mountPathPrefix: "/etc/cast-imaging/", allowedEndpoints: [], concurrency: 4, logLevel: "info" });
    expect(defaultConfig.leaderElection).to.deep.include({ namespace: NS, name: NAME, leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 });
  });

  it("leaderElection.enabled=false with one replica: no --leader-elect and no Lease Role; with two replicas the chart refuses", async () => {
    const rendered = await render({ set: { "leaderElection.enabled": false, replicas: 1, "podDisruptionBudget.enabled": false } });
    const c = operatorContainer(deploymentOf(rendered));
    expect(c.args).to.equal(undefined);
    expect(parseCommandLine([], { env: containerEnv(c, { name: "p", namespace: NS }), identity: "p_1" }).leaderElection).to.equal(undefined);
    expect(rendered.map(id)).to.not.include.members([`Role/${NS}/${NAME}-leader-election`, `PodDisruptionBudget/${NS}/${NAME}`]);
    expect(await renderFails({ "leaderElection.enabled": false })).to.contain("replicas: 2 needs leaderElection.enabled: true");
    expect(await renderFails({ "rbac.namespaced": true })).to.contain("rbac.namespaced: true needs watchNamespaces");
  });

  it("fullnameOverride renames every object of the operator and its bindings' subjects; selectors and shared names stay", async () => {
    const rendered = await render({ set: { fullnameOverride: "mtls-op", "image.digest": `sha256:${"a".repeat(64)}` } });
    const names = rendered.filter((o) => o.kind !== "CustomResourceDefinition" && !o.kind.startsWith("ValidatingAdmissionPolicy") && o.metadata.name !== REQUESTER).map((o) => o.metadata.name);
    expect(names.every((n) => n.startsWith("mtls-op")), names.join(", ")).to.equal(true);
    for (const b of rendered.filter((o) => o.kind.endsWith("Binding") && !o.kind.startsWith("ValidatingAdmissionPolicy"))) {
      expect((b as unknown as k8s.V1RoleBinding).subjects, id(b)).to.deep.equal([{ kind: "ServiceAccount", name: "mtls-op", namespace: NS }]);
    }
    const d = deploymentOf(rendered, "mtls-op");
    expect(d.spec!.template.spec!.serviceAccountName).to.equal("mtls-op");
    expect(d.spec!.selector.matchLabels).to.deep.equal({ "app.kubernetes.io/name": NAME });
    expect(operatorContainer(d).image).to.equal(`${NAME}@sha256:${"a".repeat(64)}`);
  });

  it("values.schema.json refuses bad values with a message naming the value", async () => {
    expect(await renderFails({ replicas: "two" })).to.contain("at '/replicas': got string, want integer");
    expect(await renderFails({ logLevel: "loud" })).to.contain("at '/logLevel': value must be one of 'error', 'warn', 'info', 'debug'");
    expect(await renderFails({ replica: 2 })).to.contain("additional properties 'replica' not allowed");
    expect(await renderFails({ watchNamespaces: "{Cast_DB}" })).to.contain("/watchNamespaces/0");
    expect(await renderFails({ "leaderElection.leaseDuration": "15 seconds" })).to.contain("/leaderElection/leaseDuration");
    expect(await renderFails({ mountPathPrefix: "/etc/../root" })).to.contain("/mountPathPrefix");
    expect(await renderFails({ "image.pullPolicy": "Sometimes" })).to.contain("/image/pullPolicy");
  });
});

interface OperatorProcess {
  pod: string;
  uid: string;
  child: ChildProcess;
  port: number;
  argv: string[];
  env: Record<string, string>;
  exited: Promise<number | null>;
  ready: boolean;
  tail: string;
}

/** Runs the operator container of every Running pod of the release's Deployment as a process (see the header). */
class DeploymentProcesses {
  readonly running = new Map<string, OperatorProcess>();
  readonly stopped: OperatorProcess[] = [];
  readonly errors: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private readonly log: WriteStream;
  private readonly core: k8s.CoreV1Api;

  constructor(
    cp: ControlPlane,
    private readonly namespace: string,
    private readonly kubeconfig: string,
  ) {
    this.log = createWriteStream(join(cp.dir, "helm-operator-pods.log"), { flags: "a" });
    this.core = cp.kubeConfig.makeApiClient(k8s.CoreV1Api);
  }

  isReady(uid: string | undefined): boolean {
    return [...this.running.values()].some((p) => p.uid === uid && p.ready);
  }

  start(): void {
    this.timer = setInterval(() => {
      if (this.busy) return;
      this.busy = true;
      this.sync()
        .catch((err: unknown) => this.errors.push(err instanceof Error ? err.message : String(err)))
        .finally(() => (this.busy = false));
    }, 300);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await Promise.all([...this.running.values()].map((p) => this.terminate(p)));
    this.log.end();
  }

  /** The operator pods as a kubelet sees them: by the Deployment's pod labels, deleted ones excluded. */
  private async sync(): Promise<void> {
    const list = await this.core.listNamespacedPod({ namespace: this.namespace, labelSelector: `app.kubernetes.io/name=${NAME}` });
    const pods = list.items.filter((p) => !p.metadata?.deletionTimestamp && p.status?.phase === "Running");
    const live = new Set(pods.map((p) => p.metadata!.uid!));
    for (const p of [...this.running.values()]) if (!live.has(p.uid)) await this.terminate(p);
    for (const pod of pods) if (!this.running.has(pod.metadata!.uid!)) await this.launch(pod);
    for (const p of this.running.values()) {
      p.ready = (await fetch(`http://127.0.0.1:${p.port}/readyz`).catch(() => undefined))?.status === 200;
    }
  }

  private async launch(pod: k8s.V1Pod): Promise<void> {
    const name = pod.metadata!.name!;
    const c = pod.spec!.containers.find((x) => x.name === "operator");
    if (!c) throw new Error(`pod ${name} has no container "operator"`);
    if (c.command) throw new Error(`pod ${name}: a command overriding the image's ENTRYPOINT is not supported here`);
    const port = await freePort();
    const argv = [...IMAGE_NODE_FLAGS, "--import", "tsx", join(REPO, "src", "main.ts"), ...(c.args ?? [])];
    const env = { ...containerEnv(c, { name, namespace: this.namespace }), KUBECONFIG: this.kubeconfig, HEALTH_PORT: String(port) };
    // Nothing of the test's own environment (LOG_LEVEL, WATCH_NAMESPACE...) leaks into the "container".
    const child = spawn(process.execPath, argv, { cwd: REPO, env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    const p: OperatorProcess = { pod: name, uid: pod.metadata!.uid!, child, port, argv, env, ready: false, tail: "", exited: new Promise((r) => child.once("exit", (code) => r(code))) };
    this.log.write(`=== ${name}: node ${argv.join(" ")}\n`);
    for (const stream of [child.stdout, child.stderr]) {
      stream?.on("data", (d: Buffer) => {
        this.log.write(d);
        p.tail = (p.tail + d.toString()).slice(-5000);
      });
    }
    this.running.set(p.uid, p);
  }

  /** SIGTERM, then SIGKILL after the pod's terminationGracePeriodSeconds (20). */
  private async terminate(p: OperatorProcess): Promise<void> {
    this.running.delete(p.uid);
    this.stopped.push(p);
    if (p.child.exitCode === null && p.child.signalCode === null) {
      p.child.kill("SIGTERM");
      const timer = setTimeout(() => p.child.kill("SIGKILL"), 20_000);
      await p.exited;
      clearTimeout(timer);
    }
  }
}

describe("Helm chart: install, operate, upgrade and uninstall on a cluster of its own", function () {
  this.timeout(300_000);
  let cp: ControlPlane | undefined;
  let standIn: KubeletStandIn | undefined;
  let pods: DeploymentProcesses | undefined;
  let sampleNs = "";

  const fresh = (): ControlPlane => {
    if (!cp) throw new Error("the control plane did not start");
    return cp;
  };
  const kubectl = async (args: string[], input?: string): Promise<string> => {
    const r = await fresh().kubectl(args, input === undefined ? {} : { input });
    if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  const exists = async (args: string[]): Promise<boolean> => (await fresh().kubectl(["get", ...args])).code === 0;
  const getJson = async <T>(args: string[]): Promise<T> => JSON.parse(await kubectl(["get", ...args, "-o", "json"])) as T;
  const target = () => ({ kubeconfig: fresh().kubeconfigPath, namespace: NS });
  /** Every release of the namespace in any state (helm v4 has no --all), and Helm's release Secrets. */
  const releases = async (): Promise<string> => {
    const listed = await helmOk(["list", "-q", "--deployed", "--failed", "--pending", "--superseded", "--uninstalling", "--uninstalled"], target());
    const secrets = await kubectl(["get", "secrets", "-n", NS, "-l", "owner=helm", "-o", "name"]);
    return `${listed}${secrets}`.trim();
  };
  const conditionStatus = async (name: string, type: string): Promise<string | undefined> => {
    const sdb = await getJson<{ status?: { conditions?: { type: string; status: string }[] } }>(["securedatabase", name, "-n", sampleNs]);
    return sdb.status?.conditions?.find((c) => c.type === type)?.status;
  };
  const leaseHolder = async (): Promise<string> => (await getJson<{ spec?: { holderIdentity?: string } }>(["lease", NAME, "-n", NS]).catch(() => undefined))?.spec?.holderIdentity ?? "";
  const podsState = (): string =>
    JSON.stringify({ running: [...(pods?.running.values() ?? [])].map((p) => ({ pod: p.pod, ready: p.ready, tail: p.tail.slice(-300) })), errors: pods?.errors.slice(-3), standIn: standIn?.errors.slice(-3) });

  before(async function () {
    this.timeout(25 * 60_000);
    cp = await startControlPlane();
    // The release namespace and the namespaced render's watched namespaces exist first, as the docs ask of an admin.
    for (const ns of [NS, "cast-imaging", "cast-db"]) await kubectl(["create", "namespace", ns]);
    // The prometheus-operator CRDs, for the ServiceMonitor and PrometheusRule (not the chart's to install).
    const dir = (await runOk("bash", [join(REPO, "test", "controlplane", "monitoring-crds.sh")], { timeoutMs: 170_000 })).trim().split("\n").at(-1)!;
    for (const f of ["monitoring.coreos.com_prometheusrules.yaml", "monitoring.coreos.com_servicemonitors.yaml"]) {
      await kubectl(["apply", "--server-side", "--field-manager=test", "-f", join(dir, f)]);
    }
    await kubectl(["wait", "--for=condition=Established", "--timeout=60s", "crd/prometheusrules.monitoring.coreos.com", "crd/servicemonitors.monitoring.coreos.com"]);
  });

  after(async function () {
    this.timeout(120_000);
    await pods?.stop();
    await standIn?.stop();
    await cp?.stop();
  });

  it("the API server accepts every render (defaults with monitoring, namespaced) in a server-side dry run", async () => {
    for (const files of [["ci/monitoring-values.yaml"], ["ci/namespaced-values.yaml"]]) {
      const args = ["template", RELEASE, CHART, "--include-crds", ...files.flatMap((f) => ["-f", join(CHART, f)])];
      const rendered = await helmOk(args, target());
      const r = await fresh().kubectl(["apply", "--server-side", "--dry-run=server", "--field-manager=helm-chart-test", "-f", "-"], { input: rendered });
      expect(r.code, `dry run of helm ${args.join(" ")}: ${r.stderr}`).to.equal(0);
      const applied = r.stdout.split("\n").filter((l) => l.endsWith("serverside-applied (server dry run)"));
      expect(applied, r.stdout).to.have.length(manifests(rendered).length);
    }
  });

  it("helm install refuses values the schema refuses, with its message, and installs no release (only crds/, which Helm applies first)", async () => {
    expect(await exists(["crd", "securedatabases.mtls.imaging.dev"]), "no CRD before the first install").to.equal(false);
    for (const [set, message] of [
      [{ replicas: "two" }, "at '/replicas': got string, want integer"],
      [{ logLevel: "loud" }, "at '/logLevel': value must be one of 'error', 'warn', 'info', 'debug'"],
    ] as const) {
      const r = await install(RELEASE, CHART, NS, fresh().kubeconfigPath, { set });
      expect(r.code, JSON.stringify(set)).to.not.equal(0);
      expect(r.stderr).to.contain("values don't meet the specifications of the schema").and.contain(message);
    }
    expect(await releases()).to.equal("");
    // Helm installs crds/ before it renders, and so before it checks the values: a refused install leaves the CRDs
    // it would have installed anyway (and never removes), nothing else.
    expect(await exists(["crd", "securedatabases.mtls.imaging.dev"]), "the CRDs of crds/").to.equal(true);
    expect(await exists(["serviceaccount", NAME, "-n", NS]), "no ServiceAccount").to.equal(false);
    expect(await exists(["clusterrole", NAME]), "no ClusterRole").to.equal(false);
  });

  it("helm install: the CRDs from crds/ and the objects of deploy/install.yaml, and the operator from the Deployment reconciles a SecureDatabase", async () => {
    // One replica at first (the upgrade below goes to two): less load on a busy machine.
    const r = await install(RELEASE, CHART, NS, fresh().kubeconfigPath, { set: { replicas: 1 } });
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.contain("WARNING: replicas is 1");
    for (const crd of ["securedatabases.mtls.imaging.dev", "imagingconnections.mtls.imaging.dev"]) {
      const o = await getJson<Manifest>(["crd", crd, "--show-managed-fields"]);
      expect(o.metadata.managedFields?.map((f) => f.manager), `${crd}: created by helm`).to.include("helm");
    }
    await kubectl(["wait", "--for=condition=Established", "--timeout=60s", "crd/securedatabases.mtls.imaging.dev", "crd/imagingconnections.mtls.imaging.dev"]);
    // Every object of the release is there, labelled as Helm's.
    const released = manifests(await helmOk(["get", "manifest", RELEASE], target()));
    const expected = (await installFile("deploy/install.yaml")).filter((o) => o.kind !== "CustomResourceDefinition");
    expect(released.map(id)).to.have.members(expected.map(id));
    for (const o of released) {
      const live = await getJson<Manifest>([o.kind.toLowerCase(), o.metadata.name, ...(o.metadata.namespace ? ["-n", o.metadata.namespace] : [])]);
      expect(live.metadata.labels, id(o)).to.include({ "app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/instance": RELEASE });
    }

    // The pod's ServiceAccount token, as the kubelet would mount it: the operator gets only what the chart grants.
    const token = (await kubectl(["create", "token", NAME, "-n", NS, "--duration=2h"])).trim();
    const cluster = fresh().kubeConfig.getCurrentCluster()!;
    const kubeconfig = join(fresh().dir, "helm-operator.kubeconfig");
    await writeFile(kubeconfig, [
      "apiVersion: v1",
      "kind: Config",
      `clusters: [{ name: c, cluster: { server: "${cluster.server}", certificate-authority: "${cluster.caFile}" } }]`,
      `users: [{ name: sa, user: { token: "${token}" } }]`,
      "contexts: [{ name: c, context: { cluster: c, user: sa } }]",
      "current-context: c",
      "",
    ].join("\n"));
    const runner = new DeploymentProcesses(fresh(), NS, kubeconfig);
    pods = runner;
    standIn = await startKubeletStandIn({ kubeConfig: fresh().kubeConfig, namespace: NS, ready: (pod) => runner.isReady(pod.metadata?.uid) });
    runner.start();
    await standIn.waitForRollout("Deployment", NAME, 120_000).catch((err: Error) => {
      throw new Error(`${err.message}; ${podsState()}`);
    });
    const [operator] = [...runner.running.values()];
    expect(runner.running.size).to.equal(1);
    expect(operator!.argv.slice(IMAGE_NODE_FLAGS.length + 3)).to.deep.equal(["--leader-elect"]);
    expect(operator!.env).to.include({ POD_NAMESPACE: NS, POD_NAME: operator!.pod, LOG_LEVEL: "info" });
    await waitFor("the pod to lead", async () => (await leaseHolder()).startsWith(`${operator!.pod}_`), 60_000, 200);

    // A SecureDatabase without a database behind it: its CA and server certificate are issued all the same.
    sampleNs = (await kubectl(["create", "namespace", "helm-sample", "-o", "name"])).trim().replace("namespace/", "");
    await kubectl(["apply", "-f", "-"], secureDatabaseWithoutServerYaml(sampleNs, "installed"));
    await waitFor("SecureDatabase installed: CAReady and ServerCertificateReady", async () => (await conditionStatus("installed", "CAReady")) === "True" && (await conditionStatus("installed", "ServerCertificateReady")) === "True", 90_000, 250).catch((err: Error) => {
      throw new Error(`${err.message}; ${podsState()}`);
    });
    // Its CA key went to the key namespace: the release namespace, where the chart's Role on Secrets is.
    expect(await exists(["secret", `${sampleNs}.installed-ca`, "-n", NS])).to.equal(true);
    expect(await exists(["secret", "installed-ca", "-n", sampleNs])).to.equal(false);
  });

  it("helm upgrade --reuse-values with replicas 2, logLevel debug, a lease duration and monitoring: new pods, the old process stopped, the new ones reconcile", async () => {
    const runner = pods!;
    const before = [...runner.running.values()];
    const r = await upgrade(RELEASE, CHART, NS, fresh().kubeconfigPath, {
      reuseValues: true,
      set: { replicas: 2, logLevel: "debug", "leaderElection.leaseDuration": "20s", "serviceMonitor.enabled": true, "prometheusRule.enabled": true, "dashboard.enabled": true },
    });
    expect(r.code, r.stderr).to.equal(0);
    const d = await getJson<k8s.V1Deployment>(["deployment", NAME, "-n", NS]);
    expect(d.spec!.replicas).to.equal(2);
    expect(operatorContainer(d).env).to.deep.include({ name: "LOG_LEVEL", value: "debug" });
    await standIn!.waitForRollout("Deployment", NAME, 180_000).catch((err: Error) => {
      throw new Error(`${err.message}; ${podsState()}`);
    });
    await waitFor("two processes of the new pods", async () => runner.running.size === 2 && [...runner.running.values()].every((p) => p.env.LOG_LEVEL === "debug"), 30_000, 200);
    const after = [...runner.running.values()];
    for (const p of before) {
      expect(after.map((a) => a.uid), `${p.pod} replaced`).to.not.include(p.uid);
      expect(await p.exited, `${p.pod} exit code after SIGTERM: ${p.tail.slice(-500)}`).to.equal(0);
    }
    for (const p of after) {
      expect(p.env).to.include({ LOG_LEVEL: "debug", POD_NAME: p.pod });
      expect(p.argv.slice(IMAGE_NODE_FLAGS.length + 3)).to.deep.equal(["--leader-elect", "--lease-duration=20s"]);
    }
    await waitFor("a new pod to lead", async () => {
      const holder = await leaseHolder();
      return after.some((p) => holder.startsWith(`${p.pod}_`));
    }, 60_000, 200);
    for (const [kind, name] of [["servicemonitor", NAME], ["prometheusrule", NAME], ["configmap", `${NAME}-dashboard`]] as const) {
      expect(await exists([kind, name, "-n", NS]), `${kind} ${name}`).to.equal(true);
    }
    await kubectl(["apply", "-f", "-"], secureDatabaseWithoutServerYaml(sampleNs, "upgraded"));
    await waitFor("SecureDatabase upgraded: ServerCertificateReady", async () => (await conditionStatus("upgraded", "ServerCertificateReady")) === "True", 90_000, 250).catch((err: Error) => {
      throw new Error(`${err.message}; ${podsState()}`);
    });
  });

  it("helm uninstall: the Deployment, RBAC, admission and monitoring objects go; the CRDs and the SecureDatabases stay", async () => {
    const runner = pods!;
    const released = manifests(await helmOk(["get", "manifest", RELEASE], target()));
    expect(released.map(id)).to.include.members([`Deployment/${NS}/${NAME}`, `ClusterRole/${NAME}`, `ServiceMonitor/${NS}/${NAME}`, `ValidatingAdmissionPolicy/imaging-db-mtls-connection-grants`]);
    const r = await uninstall(RELEASE, NS, fresh().kubeconfigPath);
    expect(r.code, r.stderr).to.equal(0);
    for (const o of released) {
      const args = [o.kind.toLowerCase(), o.metadata.name, ...(o.metadata.namespace ? ["-n", o.metadata.namespace] : [])];
      await waitFor(`${id(o)} deleted`, async () => !(await exists(args)), 30_000, 200);
    }
    // The garbage collector removes the ReplicaSet and its pods; their processes get SIGTERM as the pods go.
    await waitFor("the operator pods gone", async () => runner.running.size === 0, 90_000, 200).catch((err: Error) => {
      throw new Error(`${err.message}; ${podsState()}`);
    });
    for (const crd of ["securedatabases.mtls.imaging.dev", "imagingconnections.mtls.imaging.dev"]) expect(await exists(["crd", crd]), crd).to.equal(true);
    for (const name of ["installed", "upgraded"]) expect(await exists(["securedatabase", name, "-n", sampleNs]), name).to.equal(true);
    expect(await exists(["secret", `${sampleNs}.installed-ca`, "-n", NS]), "the CA key stays").to.equal(true);
    expect(await releases()).to.equal("");
  });
});
