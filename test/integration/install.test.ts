/**
 * The install: the kustomizations deploy/ (cluster-wide) and deploy/namespaced/ match their rendered files
 * deploy/install.yaml and deploy/install-namespaced.yaml, hold exactly the objects an admin expects with the
 * Deployment's hardening, and are accepted by the real API server (server-side dry run); the namespaced Roles carry
 * exactly the ClusterRole's rules. Then what ships: the bundled dist/main.js alone, in a directory with no
 * node_modules above it (what the image holds, minus the distroless base), runs the operator against the real API
 * server as its ServiceAccount, bound only by the shipped RBAC; and `npm ci --omit=dev` of package-lock.json installs
 * the package's runtime set and no development-only package.
 */
import { expect } from "chai";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, existsSync } from "node:fs";
import { copyFile, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT } from "../support/controlplane";
import { controlPlane } from "../support/hooks";
import { condition, getJson, kubectlOk } from "../support/kubectl-json";
import { secureDatabaseWithoutServerYaml } from "../support/manifests";
import { freePort, run, waitFor } from "../support/process";
import { bundleOperator, IMAGE_NODE_FLAGS } from "../../scripts/bundle-operator";
import { firstDifference, manifestId as id, manifests as parseManifests, one, type Manifest as Objects } from "../support/manifest-objects";

const REPO = resolve(__dirname, "..", "..");
const NAME = "imaging-db-mtls-operator";
const FIELD_MANAGER = "install-test";
const WATCHED = ["cast-imaging", "cast-db"];
/** The ClusterRole granting `use` on SecureDatabases (deploy/admission), in both installs: it binds nobody. */
const REQUESTER = "imaging-db-mtls-connection-requester";

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- manifests are plain YAML, checked field by field below
type Field = any;
type Manifest = Objects<Field>;
const manifests = (text: string): Manifest[] => parseManifests<Field>(text);

async function kustomize(dir: string): Promise<string> {
  const r = await controlPlane().kubectl(["kustomize", join(REPO, dir)]);
  if (r.code !== 0) throw new Error(`kubectl kustomize ${dir}: ${r.stderr}`);
  return r.stdout;
}

/** The leading comment lines of a rendered file, and the rest. */
function splitHeader(text: string): { header: string[]; body: string } {
  const lines = text.split("\n");
  const n = lines.findIndex((l) => !l.startsWith("#"));
  return { header: lines.slice(0, n), body: lines.slice(n).join("\n") };
}

/** A container port given by name or number, as the kubelet resolves it. */
function portNumber(container: Field, port: string | number): number | undefined {
  return typeof port === "number" ? port : container.ports?.find((p: Field) => p.name === port)?.containerPort;
}

const CLUSTER_WIDE = [
  "CustomResourceDefinition/imagingconnections.mtls.imaging.dev",
  "CustomResourceDefinition/securedatabases.mtls.imaging.dev",
  `Namespace/${NAME}`,
  `ServiceAccount/${NAME}/${NAME}`,
  `ClusterRole/${NAME}`,
  `ClusterRoleBinding/${NAME}`,
  `ClusterRole/${NAME}-namespaces`,
  `ClusterRoleBinding/${NAME}-namespaces`,
  `Role/${NAME}/${NAME}-leader-election`,
  `RoleBinding/${NAME}/${NAME}-leader-election`,
  `Role/${NAME}/${NAME}-ca-keys`,
  `RoleBinding/${NAME}/${NAME}-ca-keys`,
  `Deployment/${NAME}/${NAME}`,
  `Service/${NAME}/${NAME}-metrics`,
  `PodDisruptionBudget/${NAME}/${NAME}`,
  `NetworkPolicy/${NAME}/${NAME}`,
  // deploy/admission (docs/admission.md): the ClusterRole is for admins to bind to tenants; it binds nobody.
  "ValidatingAdmissionPolicy/imaging-db-mtls-connection-grants",
  "ValidatingAdmissionPolicyBinding/imaging-db-mtls-connection-grants",
  "ValidatingAdmissionPolicy/imaging-db-mtls-connection-authorization",
  "ValidatingAdmissionPolicyBinding/imaging-db-mtls-connection-authorization",
  `ClusterRole/${REQUESTER}`,
];

describe("Install manifests: deploy/ and deploy/namespaced/", function () {
  this.timeout(120_000);
  let base: Manifest[];
  let namespaced: Manifest[];

  before(async () => {
    base = manifests(await kustomize("deploy"));
    namespaced = manifests(await kustomize("deploy/namespaced"));
  });

  for (const [dir, file] of [["deploy", "deploy/install.yaml"], ["deploy/namespaced", "deploy/install-namespaced.yaml"]] as const) {
    it(`${file} is \`kubectl kustomize ${dir}/\` under a header saying it is generated and how to regenerate it`, async () => {
      const { header, body } = splitHeader(await readFile(join(REPO, file), "utf8"));
      expect(header.join("\n")).to.contain("GENERATED").and.contain("npm run render-install");
      expect(body, `${file} is out of date: run npm run render-install`).to.equal(await kustomize(dir));
    });
  }

  it("kustomize carries every source manifest unchanged (crds/, deploy/rbac/, deploy/operator/, deploy/admission/)", async () => {
    // kustomize re-serialises YAML: a block scalar it re-emits differently changes what the API server stores.
    const sources: Manifest[] = [];
    for (const dir of ["crds", "deploy/rbac", "deploy/operator", "deploy/admission"]) {
      for (const f of (await readdir(join(REPO, dir))).filter((n) => n.endsWith(".yaml") && n !== "kustomization.yaml")) {
        sources.push(...manifests(await readFile(join(REPO, dir, f), "utf8")));
      }
    }
    expect(sources.map(id)).to.have.members(CLUSTER_WIDE);
    for (const source of sources) {
      const rendered = one(base, source.kind, source.metadata.name, source.metadata.namespace);
      const difference = firstDifference(rendered, source);
      if (difference) expect.fail(`kubectl kustomize deploy/ changed ${id(source)} at ${difference}`);
    }
  });

  it("the cluster-wide install holds the CRDs, the namespace, the identity, its RBAC and the operator, all labelled", () => {
    expect(base.map(id)).to.have.members(CLUSTER_WIDE);
    for (const o of base) expect(o.metadata.labels?.["app.kubernetes.io/name"], id(o)).to.equal(NAME);
    expect(one(base, "ClusterRoleBinding", NAME).subjects).to.deep.equal([{ kind: "ServiceAccount", name: OPERATOR_SERVICE_ACCOUNT, namespace: OPERATOR_NAMESPACE }]);
    expect(one(base, "ClusterRoleBinding", NAME).roleRef).to.deep.equal({ apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: NAME });
  });

  it("deploy/rbac (kubectl apply -f, as the tests install it) is the namespace, the identity and its RBAC, nothing else", async () => {
    const dir = join(REPO, "deploy", "rbac");
    // kubectl apply -f <dir> reads these extensions only (so the directory's `Kustomization` file is not applied).
    const files = (await readdir(dir)).filter((f) => /\.(ya?ml|json)$/.test(f));
    const objects = (await Promise.all(files.map(async (f) => manifests(await readFile(join(dir, f), "utf8"))))).flat();
    expect(objects.map(id)).to.have.members([
      `Namespace/${NAME}`,
      `ServiceAccount/${NAME}/${NAME}`,
      `ClusterRole/${NAME}`,
      `ClusterRoleBinding/${NAME}`,
      `ClusterRole/${NAME}-namespaces`,
      `ClusterRoleBinding/${NAME}-namespaces`,
      `Role/${NAME}/${NAME}-leader-election`,
      `RoleBinding/${NAME}/${NAME}-leader-election`,
      `Role/${NAME}/${NAME}-ca-keys`,
      `RoleBinding/${NAME}/${NAME}-ca-keys`,
    ]);
    // The key namespace: Secrets in the operator's own namespace (where the CA keys live), nothing else.
    expect(one(objects, "Role", `${NAME}-ca-keys`, NAME).rules).to.deep.equal([{ apiGroups: [""], resources: ["secrets"], verbs: ["get", "list", "watch", "create", "patch", "delete"] }]);
    expect(one(objects, "RoleBinding", `${NAME}-ca-keys`, NAME).subjects).to.deep.equal([{ kind: "ServiceAccount", name: OPERATOR_SERVICE_ACCOUNT, namespace: OPERATOR_NAMESPACE }]);
    expect(one(objects, "RoleBinding", `${NAME}-ca-keys`, NAME).roleRef).to.deep.equal({ apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: `${NAME}-ca-keys` });
    // Namespaces: list and watch only (grants by namespaceSelector), for the same ServiceAccount.
    expect(one(objects, "ClusterRole", `${NAME}-namespaces`).rules).to.deep.equal([{ apiGroups: [""], resources: ["namespaces"], verbs: ["list", "watch"] }]);
    expect(one(objects, "ClusterRoleBinding", `${NAME}-namespaces`).subjects).to.deep.equal([{ kind: "ServiceAccount", name: OPERATOR_SERVICE_ACCOUNT, namespace: OPERATOR_NAMESPACE }]);
    // Leader election: Leases in the operator's namespace, get/create/update, nothing more.
    expect(one(objects, "Role", `${NAME}-leader-election`, NAME).rules).to.deep.equal([{ apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"] }]);
    expect(one(objects, "RoleBinding", `${NAME}-leader-election`, NAME).subjects).to.deep.equal([{ kind: "ServiceAccount", name: OPERATOR_SERVICE_ACCOUNT, namespace: OPERATOR_NAMESPACE }]);
    expect(one(objects, "RoleBinding", `${NAME}-leader-election`, NAME).roleRef).to.deep.equal({ apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: `${NAME}-leader-election` });
  });

  it("the namespaced install has no cluster-wide RBAC: a Role with exactly the ClusterRole's rules in each watched namespace", () => {
    const clusterRules = one(base, "ClusterRole", NAME).rules;
    expect(clusterRules).to.be.an("array").that.is.not.empty;
    expect(namespaced.filter((o) => o.kind === "ClusterRole" || o.kind === "ClusterRoleBinding").map(id)).to.deep.equal([`ClusterRole/${REQUESTER}`]);
    const roles = namespaced.filter((o) => o.kind === "Role" && o.metadata.name === NAME);
    expect(roles.map((r) => r.metadata.namespace)).to.have.members(WATCHED);
    for (const ns of WATCHED) {
      expect(one(namespaced, "Role", NAME, ns).rules, `the Role in ${ns} drifted from the ClusterRole`).to.deep.equal(clusterRules);
      const binding = one(namespaced, "RoleBinding", NAME, ns);
      expect(binding.roleRef).to.deep.equal({ apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: NAME });
      expect(binding.subjects).to.deep.equal([{ kind: "ServiceAccount", name: OPERATOR_SERVICE_ACCOUNT, namespace: OPERATOR_NAMESPACE }]);
    }
  });

  it("the namespaced install watches exactly the namespaces given a Role, and is otherwise the cluster-wide install", () => {
    const deployment = one(namespaced, "Deployment", NAME, NAME);
    const env: { name: string; value?: string }[] = deployment.spec.template.spec.containers[0].env;
    const watch = env.find((e) => e.name === "WATCH_NAMESPACE")?.value ?? "";
    const roleNamespaces = namespaced.filter((o) => o.kind === "Role" && o.metadata.name === NAME).map((r) => r.metadata.namespace);
    expect(watch.split(",")).to.have.members(roleNamespaces as string[]);
    expect(watch).to.equal("cast-imaging,cast-db");
    // Everything else is the base's, object for object (the Deployment differing by that one variable only).
    const baseDeployment = one(base, "Deployment", NAME, NAME);
    const withoutWatch = structuredClone(deployment);
    withoutWatch.spec.template.spec.containers[0].env = env.filter((e) => e.name !== "WATCH_NAMESPACE");
    expect(withoutWatch).to.deep.equal(baseDeployment);
    const shared = base.filter((o) => o.kind !== "ClusterRole" && o.kind !== "ClusterRoleBinding" && o.kind !== "Deployment");
    for (const o of shared) expect(one(namespaced, o.kind, o.metadata.name, o.metadata.namespace), id(o)).to.deep.equal(o);
    expect(one(namespaced, "ClusterRole", REQUESTER)).to.deep.equal(one(base, "ClusterRole", REQUESTER));
    expect(namespaced).to.have.length(shared.length + 1 + 2 * WATCHED.length + 1);
  });

  it("the Deployment: 2 replicas electing a leader, the downward API, probes, resources and a locked-down pod", () => {
    const d = one(base, "Deployment", NAME, NAME);
    const labels = { "app.kubernetes.io/name": NAME };
    expect(d.spec.replicas).to.equal(2);
    expect(d.spec.selector.matchLabels).to.deep.equal(labels);
    expect(d.spec.template.metadata.labels).to.include(labels);
    const pod = d.spec.template.spec;
    expect(pod.serviceAccountName).to.equal(OPERATOR_SERVICE_ACCOUNT);
    expect(pod.automountServiceAccountToken).to.equal(true);
    expect(pod.terminationGracePeriodSeconds).to.equal(20);
    expect(pod.securityContext).to.deep.equal({ runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, seccompProfile: { type: "RuntimeDefault" } });
    expect(pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution).to.deep.equal([
      { weight: 100, podAffinityTerm: { topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: labels } } },
    ]);
    expect(pod.containers).to.have.length(1);
    const c = pod.containers[0];
    expect(c.image).to.equal("imaging-db-mtls-operator:0.1.0");
    expect(c.args).to.deep.equal(["--leader-elect"]);
    expect(c.env).to.deep.equal([
      { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
      { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
      { name: "LOG_LEVEL", value: "info" },
    ]);
    expect(c.ports).to.deep.equal([{ name: "http-metrics", containerPort: 8080, protocol: "TCP" }]);
    expect(c.livenessProbe.httpGet.path).to.equal("/healthz");
    expect(portNumber(c, c.livenessProbe.httpGet.port)).to.equal(8080);
    expect(c.readinessProbe.httpGet.path).to.equal("/readyz");
    expect(portNumber(c, c.readinessProbe.httpGet.port)).to.equal(8080);
    expect(c.resources).to.deep.equal({ requests: { cpu: "100m", memory: "384Mi" }, limits: { memory: "1Gi" } });
    expect(c.securityContext).to.deep.equal({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
    // A read-only root filesystem: /tmp is the only writable place.
    expect(c.volumeMounts).to.deep.equal([{ name: "tmp", mountPath: "/tmp" }]);
    expect(pod.volumes).to.deep.equal([{ name: "tmp", emptyDir: {} }]);
  });

  it("the metrics Service reaches the container's http-metrics port, and the PodDisruptionBudget keeps one replica", () => {
    const d = one(base, "Deployment", NAME, NAME);
    const c = d.spec.template.spec.containers[0];
    const svc = one(base, "Service", `${NAME}-metrics`, NAME);
    expect(svc.spec.selector).to.deep.equal({ "app.kubernetes.io/name": NAME });
    expect(d.spec.template.metadata.labels).to.include(svc.spec.selector);
    expect(svc.spec.ports).to.have.length(1);
    expect(svc.spec.ports[0]).to.include({ name: "http-metrics", port: 8080 });
    expect(portNumber(c, svc.spec.ports[0].targetPort)).to.equal(8080);
    const pdb = one(base, "PodDisruptionBudget", NAME, NAME);
    expect(pdb.spec).to.deep.equal({ minAvailable: 1, selector: d.spec.selector });
  });

  it("the NetworkPolicy selects the operator's pods: ingress on the metrics port only, egress to DNS, the API server and PostgreSQL only", () => {
    const d = one(base, "Deployment", NAME, NAME);
    const np = one(base, "NetworkPolicy", NAME, NAME);
    expect(d.spec.template.metadata.labels).to.include(np.spec.podSelector.matchLabels);
    expect(np.spec.policyTypes).to.have.members(["Ingress", "Egress"]);
    const ports = (rules: { ports: { protocol: string; port: number }[]; to?: unknown }[]) => rules.flatMap((r) => r.ports.map((p) => `${p.protocol}/${p.port}`));
    expect(ports(np.spec.ingress)).to.deep.equal(["TCP/8080"]);
    expect(ports(np.spec.egress)).to.have.members(["UDP/53", "TCP/53", "TCP/443", "TCP/6443", "TCP/5432"]);
  });
});

describe("Install manifests: server-side dry run against the real API server", function () {
  this.timeout(120_000);

  const dryRun = async (args: string[]): Promise<string> => {
    const r = await controlPlane().kubectl(["apply", "--server-side", "--dry-run=server", `--field-manager=${FIELD_MANAGER}`, ...args]);
    expect(r.code, `kubectl apply --dry-run=server ${args.join(" ")}: ${r.stderr}`).to.equal(0);
    return r.stdout;
  };
  const applied = (stdout: string) => stdout.split("\n").filter((l) => l.endsWith("serverside-applied (server dry run)"));

  it("accepts deploy/install.yaml, `kubectl apply -k deploy/`, and a client-side `kubectl apply -f deploy/install.yaml`", async () => {
    // The namespace exists already (the suite applied deploy/rbac); a dry run cannot create it for what follows.
    const file = join(REPO, "deploy", "install.yaml");
    const objects = manifests(await readFile(file, "utf8"));
    expect(applied(await dryRun(["-f", file]))).to.have.length(objects.length);
    expect(applied(await dryRun(["-k", join(REPO, "deploy")]))).to.have.length(objects.length);
    // Client-side apply keeps each object in an annotation (at most 256 KiB): the CRDs must fit.
    const r = await controlPlane().kubectl(["apply", "--dry-run=server", "-f", file]);
    expect(r.code, `kubectl apply --dry-run=server -f deploy/install.yaml: ${r.stderr}`).to.equal(0);
    expect(r.stdout.split("\n").filter((l) => l.endsWith("(server dry run)"))).to.have.length(objects.length);
  });

  it("accepts deploy/install-namespaced.yaml once its watched namespaces exist", async () => {
    for (const ns of WATCHED) {
      const r = await controlPlane().kubectl(["create", "namespace", ns]);
      if (r.code !== 0 && !r.stderr.includes("AlreadyExists")) throw new Error(`kubectl create namespace ${ns}: ${r.stderr}`);
    }
    const file = join(REPO, "deploy", "install-namespaced.yaml");
    const objects = manifests(await readFile(file, "utf8"));
    expect(applied(await dryRun(["-f", file]))).to.have.length(objects.length);
  });

  it("accepts every sample in deploy/samples/", async () => {
    const ns = await controlPlane().createNamespace("install-samples");
    const files = (await readdir(join(REPO, "deploy", "samples"))).filter((f) => f.endsWith(".yaml"));
    const count = (await Promise.all(files.map(async (f) => manifests(await readFile(join(REPO, "deploy", "samples", f), "utf8")).length))).reduce((a, b) => a + b, 0);
    expect(count).to.be.greaterThan(0);
    expect(applied(await dryRun(["-n", ns, "-f", join(REPO, "deploy", "samples")]))).to.have.length(count);
  });
});

describe("Production install: dist/main.js alone runs the operator; npm ci --omit=dev installs the package's runtime set", function () {
  this.timeout(600_000);
  /** The package as `npm ci --omit=dev` installs it (what the kubectl plugin runs on). */
  let dir: string;
  /** What the image's runtime stage holds of the project: dist/main.js as npm run build bundles it, nothing else. */
  let image: string;
  let child: ChildProcess | undefined;
  let exited: Promise<number | null>;
  let output = "";

  before(async function () {
    this.timeout(600_000);
    dir = await mkdtemp(join(tmpdir(), "operator-install-"));
    image = await mkdtemp(join(tmpdir(), "operator-image-"));
    await bundleOperator(join(image, "dist", "main.js"));
    await copyFile(join(REPO, "package.json"), join(dir, "package.json"));
    await copyFile(join(REPO, "package-lock.json"), join(dir, "package-lock.json"));
    // npm under the Node that runs this suite (24), as in the image's build stage.
    const env = { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}` };
    const ci = await run("npm", ["ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund"], { cwd: dir, env, timeoutMs: 500_000 });
    expect(ci.code, `npm ci --omit=dev: ${ci.stdout}${ci.stderr}`).to.equal(0);
  });

  after(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await exited;
    }
    for (const d of [dir, image]) if (d) await rm(d, { recursive: true, force: true });
  });

  it("installs every runtime package of package-lock.json and no development-only one", async () => {
    const lock = JSON.parse(await readFile(join(REPO, "package-lock.json"), "utf8")) as { packages: Record<string, { dev?: boolean; optional?: boolean }> };
    const entries = Object.entries(lock.packages).filter(([path]) => path.startsWith("node_modules/"));
    const runtime = entries.filter(([, p]) => !p.dev && !p.optional).map(([path]) => path);
    const devOnly = entries.filter(([, p]) => p.dev).map(([path]) => path);
    expect(runtime).to.include.members(["node_modules/@kubernetes/client-node", "node_modules/pg", "node_modules/@peculiar/x509", "node_modules/prom-client"]);
    expect(devOnly).to.include.members(["node_modules/typescript", "node_modules/tsx", "node_modules/mocha", "node_modules/node"]);
    expect(runtime.filter((path) => !existsSync(join(dir, path, "package.json"))), "runtime packages missing").to.deep.equal([]);
    expect(devOnly.filter((path) => existsSync(join(dir, path))), "development packages installed").to.deep.equal([]);
  });

  it("the image's dist/main.js has no node_modules to load from: every package it needs is inside it", () => {
    const ancestors = [image];
    while (dirname(ancestors.at(-1)!) !== ancestors.at(-1)) ancestors.push(dirname(ancestors.at(-1)!));
    expect(ancestors.filter((d) => existsSync(join(d, "node_modules"))), "node_modules a require() would find").to.deep.equal([]);
  });

  it("prints its usage with --help and exits 0", async () => {
    const r = await run(process.execPath, ["dist/main.js", "--help"], { cwd: image });
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.contain("Usage: node dist/main.js [options]").and.contain("--health-port").and.contain("--leader-elect");
  });

  it("runs as the image runs it (its V8 flags), as its ServiceAccount under the shipped RBAC: leads, gets ready, reconciles, serves /metrics, exits 0 on SIGTERM", async () => {
    const cp = controlPlane();
    const ns = await cp.createNamespace("install-prod");
    const port = await freePort();
    const lease = `install-${randomBytes(3).toString("hex")}`;
    // One fresh namespace, so that the objects other tests left behind are not reconciled by this process.
    const args = [
      ...IMAGE_NODE_FLAGS,
      "dist/main.js",
      "--kubeconfig", cp.operatorKubeconfigPath,
      "--health-port", String(port),
      "--namespace", ns,
      "--leader-elect",
      "--leader-election-namespace", OPERATOR_NAMESPACE,
      "--leader-election-id", lease,
    ];
    const proc = spawn(process.execPath, args, { cwd: image, env: { ...process.env, POD_NAME: "install-test", POD_NAMESPACE: OPERATOR_NAMESPACE }, stdio: ["ignore", "pipe", "pipe"] });
    child = proc;
    exited = new Promise((r) => proc.once("exit", (code) => r(code)));
    const log = createWriteStream(join(cp.dir, `operator-${lease}.log`));
    for (const stream of [proc.stdout, proc.stderr]) {
      stream.pipe(log);
      stream.on("data", (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
    }
    const get = async (path: string) => {
      const res = await fetch(`http://127.0.0.1:${port}${path}`);
      return { status: res.status, text: await res.text() };
    };
    const alive = () => {
      if (proc.exitCode !== null) throw new Error(`the operator exited ${proc.exitCode}: ${output}`);
    };

    await waitFor("/readyz", async () => {
      alive();
      return (await get("/readyz")).status === 200;
    }, 60_000, 200);
    expect((await get("/healthz")).status).to.equal(200);
    const holder = (await getJson<{ spec?: { holderIdentity?: string } }>(["get", "lease", lease, "-n", OPERATOR_NAMESPACE])).spec?.holderIdentity;
    expect(holder).to.match(/^install-test_/);

    // A SecureDatabase without a database behind it: the CA and the server certificate are issued all the same.
    await kubectlOk(["apply", "-f", "-"], secureDatabaseWithoutServerYaml(ns, "installed"));
    await waitFor("ServerCertificateReady", async () => {
      alive();
      const sdb = await getJson<{ status?: { conditions?: { type: string; status: string; reason: string; message: string }[] } }>(["get", "sdb", "installed", "-n", ns]);
      return condition(sdb, "ServerCertificateReady")?.status === "True";
    }, 60_000, 200);
    const metrics = await get("/metrics");
    expect(metrics.status).to.equal(200);
    expect(metrics.text).to.match(/^imaging_mtls_reconcile_total\{kind="SecureDatabase"\} [1-9]\d*$/m);
    expect(metrics.text).to.contain("imaging_mtls_certificate_expiry_timestamp_seconds{");
    // Its CA key went to the key namespace the Deployment's POD_NAMESPACE names (the operator's own), not next to it.
    expect((await controlPlane().kubectl(["get", "secret", `${ns}.installed-ca`, "-n", OPERATOR_NAMESPACE])).code).to.equal(0);
    expect((await controlPlane().kubectl(["get", "secret", "installed-ca", "-n", ns])).code).to.not.equal(0);
    // Deleting it runs the finalizer through the same process, which deletes that key.
    await kubectlOk(["delete", "sdb", "installed", "-n", ns, "--wait=true", "--timeout=60s"]);
    expect((await controlPlane().kubectl(["get", "secret", `${ns}.installed-ca`, "-n", OPERATOR_NAMESPACE])).code).to.not.equal(0);

    proc.kill("SIGTERM");
    expect(await exited, output).to.equal(0);
  });
});
