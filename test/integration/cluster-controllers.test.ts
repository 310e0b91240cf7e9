/**
 * The ground the other integration tests stand on behaves like a cluster: kube-controller-manager's controllers
 * are real (rollouts through ReplicaSets and ControllerRevisions, garbage collection, namespace deletion) and the
 * kubelet stand-in runs pods, including the CAST chart's init container that copies a Secret once, at pod start.
 */
import { expect } from "chai";
import * as k8s from "@kubernetes/client-node";
import { readFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { controlPlane } from "../support/hooks";
import { startKubeletStandIn, type KubeletStandIn } from "../support/kubelet-standin";
import { waitFor } from "../support/process";

const MERGE = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);
const IMAGE = "registry.invalid/standin:1";

function podTemplate(app: string, extra: Partial<k8s.V1PodSpec> = {}): k8s.V1PodTemplateSpec {
  return { metadata: { labels: { app } }, spec: { containers: [{ name: "main", image: IMAGE }], terminationGracePeriodSeconds: 30, ...extra } };
}

function deployment(name: string, replicas: number, extra: Partial<k8s.V1DeploymentSpec> = {}, spec: Partial<k8s.V1PodSpec> = {}): k8s.V1Deployment {
  return { metadata: { name }, spec: { replicas, selector: { matchLabels: { app: name } }, template: podTemplate(name, spec), ...extra } };
}

/** The chart's client TLS wiring (EnablePostgresSSL=true): Secret → init container copy → emptyDir. */
function chartPodSpec(command: string): Partial<k8s.V1PodSpec> {
  return {
    volumes: [
      { name: "ssl-certs", secret: { secretName: "ssl-certs", defaultMode: 0o644 } },
      { name: "postgres-ssl-files", emptyDir: {} },
    ],
    initContainers: [
      {
        name: "init-ssl",
        image: IMAGE,
        command: ["/bin/sh", "-c", command],
        volumeMounts: [
          { name: "ssl-certs", mountPath: "/tmp/certs", readOnly: true },
          { name: "postgres-ssl-files", mountPath: "/etc/ssl/certs-postgres" },
        ],
      },
    ],
    containers: [{ name: "main", image: IMAGE, volumeMounts: [{ name: "postgres-ssl-files", mountPath: "/etc/ssl/certs-postgres", readOnly: true }] }],
  };
}

async function gone(what: string, read: () => Promise<unknown>, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    what,
    async () => {
      try {
        await read();
        return false;
      } catch (err) {
        if (err instanceof k8s.ApiException && err.code === 404) return true;
        throw err;
      }
    },
    timeoutMs,
    200,
  );
}

describe("The test cluster: real controllers and a kubelet stand-in", function () {
  this.timeout(180_000);
  let standIn: KubeletStandIn | undefined;
  afterEach(async () => {
    await standIn?.stop();
    standIn = undefined;
  });

  const clients = () => {
    const cp = controlPlane();
    return { cp, core: cp.kubeConfig.makeApiClient(k8s.CoreV1Api), apps: cp.kubeConfig.makeApiClient(k8s.AppsV1Api) };
  };

  it("rolls a Deployment out through a new ReplicaSet when its pod template changes, and the old pods go", async () => {
    const { cp, core, apps } = clients();
    const ns = await cp.createNamespace("kcm-deploy");
    standIn = await startKubeletStandIn({ kubeConfig: cp.kubeConfig, namespace: ns, startDelayMs: 200 });
    await apps.createNamespacedDeployment({ namespace: ns, body: deployment("web", 2) });
    await standIn.waitForRollout("Deployment", "web", 60_000);
    const before = await standIn.podsOf("Deployment", "web");
    expect(before).to.have.length(2);
    expect(before.every((p) => p.spec?.nodeName === standIn!.nodeName && p.status?.phase === "Running")).to.equal(true);

    await apps.patchNamespacedDeployment(
      { namespace: ns, name: "web", body: { spec: { template: { metadata: { annotations: { "example.com/restartedAt": "now" } } } } } },
      MERGE,
    );
    await standIn.waitForRollout("Deployment", "web", 90_000);

    const after = await standIn.podsOf("Deployment", "web");
    expect(after).to.have.length(2);
    const rsOf = (p: k8s.V1Pod) => p.metadata?.ownerReferences?.find((r) => r.controller)?.name;
    expect(new Set(after.map(rsOf)).size).to.equal(1);
    expect(rsOf(after[0]!)).to.not.equal(rsOf(before[0]!));
    const sets = (await apps.listNamespacedReplicaSet({ namespace: ns })).items;
    expect(sets.map((rs) => [rs.metadata?.name, rs.spec?.replicas]).sort()).to.deep.equal([[rsOf(before[0]!), 0], [rsOf(after[0]!), 2]].sort());
    // The old pods are really gone, not left terminating.
    const names = (await core.listNamespacedPod({ namespace: ns })).items.map((p) => p.metadata?.name);
    expect(names.sort()).to.deep.equal(after.map((p) => p.metadata?.name).sort());
  });

  it("stalls a rollout whose new pod never gets Ready, keeping the old pods serving", async () => {
    const { cp, apps } = clients();
    const ns = await cp.createNamespace("kcm-stall");
    standIn = await startKubeletStandIn({ kubeConfig: cp.kubeConfig, namespace: ns, ready: (pod) => pod.metadata?.annotations?.["example.com/broken"] !== "true" });
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: deployment("web", 2, { progressDeadlineSeconds: 3, strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } } }),
    });
    await standIn.waitForRollout("Deployment", "web", 60_000);
    const serving = (await standIn.podsOf("Deployment", "web")).map((p) => p.metadata?.name).sort();
    await apps.patchNamespacedDeployment({ namespace: ns, name: "web", body: { spec: { template: { metadata: { annotations: { "example.com/broken": "true" } } } } } }, MERGE);

    let last: k8s.V1Deployment | undefined;
    await waitFor(
      "the Deployment to report ProgressDeadlineExceeded",
      async () => {
        last = await apps.readNamespacedDeployment({ namespace: ns, name: "web" });
        return last.status?.conditions?.some((c) => c.type === "Progressing" && c.reason === "ProgressDeadlineExceeded") ?? false;
      },
      60_000,
      250,
    );
    expect(last?.status?.availableReplicas).to.equal(2);
    expect(last?.status?.updatedReplicas).to.equal(1);
    const pods = await standIn.podsOf("Deployment", "web");
    expect(pods.filter((p) => p.metadata?.annotations?.["example.com/broken"] !== "true").map((p) => p.metadata?.name).sort()).to.deep.equal(serving);
  });

  it("gives a StatefulSet a new revision when its template changes and rolls it, one ordered pod at a time", async () => {
    const { cp, apps } = clients();
    const ns = await cp.createNamespace("kcm-sts");
    standIn = await startKubeletStandIn({ kubeConfig: cp.kubeConfig, namespace: ns, startDelayMs: 100 });
    await apps.createNamespacedStatefulSet({
      namespace: ns,
      body: { metadata: { name: "db" }, spec: { replicas: 2, serviceName: "db", selector: { matchLabels: { app: "db" } }, template: podTemplate("db") } },
    });
    await standIn.waitForRollout("StatefulSet", "db", 60_000);
    const first = await apps.readNamespacedStatefulSet({ namespace: ns, name: "db" });
    const before = await standIn.podsOf("StatefulSet", "db");
    expect(before.map((p) => p.metadata?.name)).to.deep.equal(["db-0", "db-1"]);
    // OrderedReady: db-1 was created only once db-0 was Ready.
    const readySince = before[0]!.status?.conditions?.find((c) => c.type === "Ready")?.lastTransitionTime;
    expect(new Date(before[1]!.metadata!.creationTimestamp!).getTime()).to.be.at.least(new Date(readySince!).getTime());

    await apps.patchNamespacedStatefulSet({ namespace: ns, name: "db", body: { spec: { template: { metadata: { annotations: { "example.com/restartedAt": "now" } } } } } }, MERGE);
    await standIn.waitForRollout("StatefulSet", "db", 90_000);

    const rolled = await apps.readNamespacedStatefulSet({ namespace: ns, name: "db" });
    expect(rolled.status?.updateRevision).to.not.equal(first.status?.updateRevision);
    expect(rolled.status?.currentRevision).to.equal(rolled.status?.updateRevision);
    const revisions = (await apps.listNamespacedControllerRevision({ namespace: ns })).items.filter((r) => r.metadata?.ownerReferences?.some((o) => o.uid === rolled.metadata?.uid));
    expect(revisions.map((r) => r.metadata?.name).sort()).to.deep.equal([first.status?.updateRevision, rolled.status?.updateRevision].sort());
    const after = await standIn.podsOf("StatefulSet", "db");
    expect(after.map((p) => p.metadata?.name).sort()).to.deep.equal(["db-0", "db-1"]);
    expect(after.map((p) => p.metadata?.uid)).to.not.include.members(before.map((p) => p.metadata?.uid ?? ""));
  });

  it("garbage-collects an owned ConfigMap once its owner is deleted", async () => {
    const { cp, core, apps } = clients();
    const ns = await cp.createNamespace("kcm-gc");
    const owner = await apps.createNamespacedDeployment({ namespace: ns, body: deployment("owner", 0) });
    const ownerRef = { apiVersion: "apps/v1", kind: "Deployment", name: "owner", uid: owner.metadata!.uid!, controller: true, blockOwnerDeletion: true };
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "owned", ownerReferences: [ownerRef] }, data: { a: "1" } } });
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "unowned" }, data: { a: "1" } } });

    await apps.deleteNamespacedDeployment({ namespace: ns, name: "owner" });
    await gone("the owned ConfigMap to be collected", () => core.readNamespacedConfigMap({ namespace: ns, name: "owned" }));
    expect((await core.readNamespacedConfigMap({ namespace: ns, name: "unowned" })).data).to.deep.equal({ a: "1" });
  });

  it("keeps its controllers working across an API server restart", async () => {
    const { cp, core } = clients();
    const ns = await cp.createNamespace("kcm-restart");
    await cp.stopApiServer();
    await cp.startApiServer();
    const owner = await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "owner" } } });
    const ownerRef = { apiVersion: "v1", kind: "ConfigMap", name: "owner", uid: owner.metadata!.uid! };
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "owned", ownerReferences: [ownerRef] } } });
    await core.deleteNamespacedConfigMap({ namespace: ns, name: "owner" });
    await gone("the owned ConfigMap to be collected after the restart", () => core.readNamespacedConfigMap({ namespace: ns, name: "owned" }), 90_000);
  });

  it("really deletes a namespace and everything in it", async () => {
    const { cp, core, apps } = clients();
    const ns = await cp.createNamespace("kcm-ns");
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "c" } } });
    await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: "s" }, stringData: { k: "v" } } });
    await apps.createNamespacedDeployment({ namespace: ns, body: deployment("web", 1) });
    await core.deleteNamespace({ name: ns });
    await gone(`namespace ${ns} to be deleted`, () => core.readNamespace({ name: ns }), 90_000);
    expect((await core.listNamespacedConfigMap({ namespace: ns })).items).to.deep.equal([]);
  });

  it("runs the chart's init container: copies the Secret at pod start, 0600 only when chmodded, and only a new pod sees a renewed Secret", async () => {
    const { cp, core, apps } = clients();
    const ns = await cp.createNamespace("kcm-init");
    const keys = (v: string) => ({ "ca.crt": `ca ${v}`, "client-cert.pem": `cert ${v}`, "client-key.pem": `key ${v}`, "sslconfig.ini": `[db:2285]\nssl=true ${v}\n` });
    await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: "ssl-certs" }, stringData: keys("one") } });
    standIn = await startKubeletStandIn({ kubeConfig: cp.kubeConfig, namespace: ns });
    const copyAndChmod = "cp /tmp/certs/* /etc/ssl/certs-postgres; chmod 0600 /etc/ssl/certs-postgres/client-key.pem";
    await apps.createNamespacedDeployment({ namespace: ns, body: deployment("node", 1, {}, chartPodSpec(copyAndChmod)) });
    await apps.createNamespacedDeployment({ namespace: ns, body: deployment("viewer-etl", 1, {}, chartPodSpec("cp /tmp/certs/* /etc/ssl/certs-postgres")) });
    await standIn.waitForRollout("Deployment", "node", 60_000);
    await standIn.waitForRollout("Deployment", "viewer-etl", 60_000);

    const mode = async (path: string) => (await stat(path)).mode & 0o777;
    const nodeDir = await standIn.currentFilesDir("Deployment", "node", "postgres-ssl-files");
    const etlDir = await standIn.currentFilesDir("Deployment", "viewer-etl", "postgres-ssl-files");
    expect((await readdir(nodeDir)).sort()).to.deep.equal(Object.keys(keys("one")).sort());
    expect(await readFile(join(nodeDir, "client-key.pem"), "utf8")).to.equal("key one");
    expect(await mode(join(nodeDir, "client-key.pem"))).to.equal(0o600);
    expect(await mode(join(nodeDir, "client-cert.pem"))).to.equal(0o644);
    expect(await mode(join(etlDir, "client-key.pem"))).to.equal(0o644);

    await core.patchNamespacedSecret({ namespace: ns, name: "ssl-certs", body: { stringData: keys("two") } }, MERGE);
    // A kubelet would have refreshed the Secret volume by now; the copy in the emptyDir stays as it was.
    await new Promise((r) => setTimeout(r, 1500));
    expect(await readFile(join(nodeDir, "client-key.pem"), "utf8")).to.equal("key one");
    expect(await standIn.currentFilesDir("Deployment", "node", "postgres-ssl-files")).to.equal(nodeDir);

    await apps.patchNamespacedDeployment({ namespace: ns, name: "node", body: { spec: { template: { metadata: { annotations: { "example.com/restartedAt": "now" } } } } } }, MERGE);
    await standIn.waitForRollout("Deployment", "node", 90_000);
    const renewedDir = await standIn.currentFilesDir("Deployment", "node", "postgres-ssl-files");
    expect(renewedDir).to.not.equal(nodeDir);
    expect(await readFile(join(renewedDir, "client-key.pem"), "utf8")).to.equal("key two");
    expect(await readFile(join(renewedDir, "sslconfig.ini"), "utf8")).to.equal("[db:2285]\nssl=true two\n");
    expect(await mode(join(renewedDir, "client-key.pem"))).to.equal(0o600);
    // The old pod and its emptyDir are gone; viewer-etl, not restarted, still has the first Secret.
    await stat(nodeDir).then(
      () => expect.fail(`${nodeDir} outlived its pod`),
      () => undefined,
    );
    expect(await readFile(join(etlDir, "client-key.pem"), "utf8")).to.equal("key one");
  });
});
