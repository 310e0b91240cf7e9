import { expect } from "chai";
import * as k8s from "@kubernetes/client-node";
import { controlPlane } from "../support/hooks";
import { waitFor } from "../support/process";
import { RestClient, type ResourceType } from "../../src/kube/rest";
import { Informer, type ChangeOrigin, type InformerEvent, type KubeObject } from "../../src/runtime/informer";
import { silentLogger } from "../../src/log";

const configMaps: ResourceType = { group: "", version: "v1", plural: "configmaps", kind: "ConfigMap", namespaced: true };
type ConfigMap = KubeObject & { data?: Record<string, string> };

describe("Informer against the real API server", () => {
  let informer: Informer<ConfigMap> | undefined;
  afterEach(() => informer?.stop());

  it("lists, then follows adds, updates and deletes, keeping an index", async () => {
    const cp = controlPlane();
    const ns = await cp.createNamespace("informer");
    const core = cp.kubeConfig.makeApiClient(k8s.CoreV1Api);
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "before", labels: { app: "x" } }, data: { ref: "one" } } });
    const events: [InformerEvent, string, ChangeOrigin][] = [];
    informer = new Informer<ConfigMap>(new RestClient(cp.kubeConfig), { type: configMaps, namespaces: [ns], labelSelector: "app=x" }, silentLogger());
    informer.addIndex("ref", (o) => (o.data?.ref ? [o.data.ref] : []));
    informer.on((e, o, _old, origin) => events.push([e, o.metadata.name, origin]));
    informer.start();
    await informer.synced;
    expect(informer.get(ns, "before")?.kind).to.equal("ConfigMap");
    expect(informer.byIndex("ref", "one").map((o) => o.metadata.name)).to.deep.equal(["before"]);

    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "after", labels: { app: "x" } }, data: { ref: "two" } } });
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "unlabelled" }, data: { ref: "two" } } });
    await core.patchNamespacedConfigMap(
      { namespace: ns, name: "before", body: { data: { ref: "two" } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    await core.deleteNamespacedConfigMap({ namespace: ns, name: "after" });
    await waitFor("the delete to arrive", async () => events.some(([e, n]) => e === "delete" && n === "after"), 10_000, 20);

    expect(events).to.deep.equal([
      ["add", "before", "watch"],
      ["add", "after", "watch"],
      ["update", "before", "watch"],
      ["delete", "after", "watch"],
    ]);
    expect(informer.byIndex("ref", "one")).to.deep.equal([]);
    expect(informer.byIndex("ref", "two").map((o) => o.metadata.name)).to.deep.equal(["before"]);
    expect(informer.get(ns, "unlabelled")).to.equal(undefined);
  });

  it("lists in pages of 500 (one snapshot through the continue token) and misses nothing", async function () {
    this.timeout(120_000);
    const cp = controlPlane();
    const ns = await cp.createNamespace("informer-pages");
    const client = new RestClient(cp.kubeConfig);
    const names = Array.from({ length: 1203 }, (_, i) => `cm-${i}`);
    for (let i = 0; i < names.length; i += 50) {
      await Promise.all(names.slice(i, i + 50).map((name) => client.create(configMaps, ns, { apiVersion: "v1", kind: "ConfigMap", metadata: { name, labels: { app: "paged" } } })));
    }
    const since = new Date();
    informer = new Informer<ConfigMap>(client, { type: configMaps, namespaces: [ns], labelSelector: "app=paged" }, silentLogger());
    informer.start();
    await informer.synced;
    expect(informer.list(ns).map((o) => o.metadata.name).sort()).to.deep.equal([...names].sort());
    const lists = (await cp.auditEvents("admin", since)).filter((e) => e.verb === "list" && e.objectRef?.resource === "configmaps" && e.objectRef.namespace === ns);
    expect(lists).to.have.length(3);
  });

  it("survives an API server restart and catches up on what changed", async function () {
    this.timeout(180_000);
    const cp = controlPlane();
    const ns = await cp.createNamespace("informer-restart");
    const core = cp.kubeConfig.makeApiClient(k8s.CoreV1Api);
    informer = new Informer<ConfigMap>(new RestClient(cp.kubeConfig), { type: configMaps, namespaces: [ns], minBackoffMs: 200, maxBackoffMs: 2000 }, silentLogger());
    informer.start();
    await informer.synced;
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "a" } } });
    await waitFor("a in the cache", async () => informer?.get(ns, "a") !== undefined, 10_000, 20);

    await cp.stopApiServer();
    await cp.startApiServer();
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "b" } } });
    await core.deleteNamespacedConfigMap({ namespace: ns, name: "a" });
    await waitFor("the informer to catch up", async () => informer?.get(ns, "b") !== undefined && informer.get(ns, "a") === undefined, 60_000, 100);
  });
});
