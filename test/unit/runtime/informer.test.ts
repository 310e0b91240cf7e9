import { expect } from "chai";
import * as k8s from "@kubernetes/client-node";
import { RestClient } from "../../../src/kube/rest";
import { RESOURCES } from "../../../src/kube/resources";
import { silentLogger } from "../../../src/log";
import { Informer, type ChangeOrigin, type InformerEvent, type KubeObject } from "../../../src/runtime/informer";

describe("Informer: the operator's own writes", () => {
  // Never started: no API server involved, only what observe and forget feed in.
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: "c", server: "https://127.0.0.1:1" }], users: [{ name: "u" }], contexts: [{ name: "x", cluster: "c", user: "u" }], currentContext: "x" });
  const configMap = (resourceVersion: string, ref: string): KubeObject & { data: Record<string, string> } => ({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "cm", namespace: "ns", resourceVersion },
    data: { ref },
  });

  it("come to handlers as the operator's own (origin \"own\"); an older copy than the cached one is ignored", () => {
    const informer = new Informer<KubeObject & { data: Record<string, string> }>(new RestClient(kc), { type: RESOURCES.ConfigMap }, silentLogger());
    const events: [InformerEvent, string | undefined, ChangeOrigin][] = [];
    informer.on((e, o, _old, origin) => events.push([e, o.data.ref, origin]));
    informer.observe(configMap("5", "one"));
    informer.observe(configMap("7", "two"));
    informer.observe(configMap("6", "older"));
    informer.forget("ns", "cm");
    expect(events).to.deep.equal([
      ["add", "one", "own"],
      ["update", "two", "own"],
      ["delete", "two", "own"],
    ]);
    expect(informer.get("ns", "cm")).to.equal(undefined);
  });
});
