import { expect } from "chai";
import { setCondition } from "../../../src/kube/conditions";
import { foreignVolumeConflict, podTemplateApplyPatch, podTemplateHasPlan, type PodTemplatePlan, type Workload } from "../../../src/kube/pod-template";
import { encodeSecretData, secretHasData } from "../../../src/kube/secrets";

describe("setCondition", () => {
  const t1 = new Date("2026-11-23T12:00:00Z");
  const t2 = new Date("2026-11-23T13:00:00Z");
  it("keeps lastTransitionTime while the status holds, moves it when the status changes", () => {
    const a = setCondition([], { type: "Ready", status: "False", reason: "Pending", message: "m" }, 1, t1);
    const b = setCondition(a, { type: "Ready", status: "False", reason: "Unreachable", message: "n" }, 2, t2);
    expect(b[0]).to.deep.equal({ type: "Ready", status: "False", reason: "Unreachable", message: "n", lastTransitionTime: "2026-11-23T12:00:00Z", observedGeneration: 2 });
    const c = setCondition(b, { type: "Ready", status: "True", reason: "Secured", message: "o" }, 2, t2);
    expect(c[0]?.lastTransitionTime).to.equal("2026-11-23T13:00:00Z");
  });
  it("keeps the other conditions, sorted by type", () => {
    const a = setCondition([], { type: "Verified", status: "True", reason: "Verified", message: "" }, 1, t1);
    const b = setCondition(a, { type: "CAReady", status: "True", reason: "CAGenerated", message: "" }, 1, t1);
    expect(b.map((c) => c.type)).to.deep.equal(["CAReady", "Verified"]);
  });
});

describe("pod template plan", () => {
  const plan: PodTemplatePlan = {
    mounts: [{ volumeName: "mtls", source: { secretName: "s" }, defaultMode: 0o640, mountPath: "/tls", containers: ["pg"] }],
    env: [],
    annotations: { "mtls.imaging.dev/served-material": "h" },
  };
  const workload = (volumes: unknown[], mounts: unknown[], annotations: Record<string, string> = {}): Workload =>
    ({ metadata: { name: "w" }, spec: { template: { metadata: { annotations }, spec: { containers: [{ name: "pg", volumeMounts: mounts }, { name: "side" }], volumes } } } }) as Workload;

  it("builds an apply body with only our volume, mount and annotation", () => {
    expect(podTemplateApplyPatch("StatefulSet", "w", "ns", plan)).to.deep.equal({
      apiVersion: "apps/v1",
      kind: "StatefulSet",
      metadata: { name: "w", namespace: "ns" },
      spec: {
        template: {
          metadata: { annotations: { "mtls.imaging.dev/served-material": "h" } },
          spec: { containers: [{ name: "pg", volumeMounts: [{ name: "mtls", mountPath: "/tls", readOnly: true }] }], volumes: [{ name: "mtls", secret: { secretName: "s", defaultMode: 0o640 } }] },
        },
      },
    });
  });
  it("an empty plan takes everything back", () => {
    expect(podTemplateApplyPatch("Deployment", "w", "ns", { mounts: [], env: [], annotations: {} })).to.deep.equal({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "w", namespace: "ns" } });
  });
  it("knows when the live workload already carries the plan", () => {
    const done = workload([{ name: "mtls", secret: { secretName: "s", defaultMode: 0o640 } }], [{ name: "mtls", mountPath: "/tls" }], { "mtls.imaging.dev/served-material": "h" });
    expect(podTemplateHasPlan(done, plan)).to.equal(true);
    expect(podTemplateHasPlan(workload([{ name: "mtls", secret: { secretName: "s", defaultMode: 0o640 } }], [{ name: "mtls", mountPath: "/tls", subPath: "tls.crt" }], { "mtls.imaging.dev/served-material": "h" }), plan)).to.equal(false);
    expect(podTemplateHasPlan(workload([], []), plan)).to.equal(false);
  });
  it("refuses a volume of our name from elsewhere, and a mount path already taken", () => {
    expect(foreignVolumeConflict(workload([{ name: "mtls", configMap: { name: "x" } }], []), plan)).to.contain('volume named "mtls"');
    expect(foreignVolumeConflict(workload([], [{ name: "data", mountPath: "/tls" }]), plan)).to.contain('already mounts volume "data" at /tls');
    expect(foreignVolumeConflict(workload([], []), plan)).to.equal(undefined);
  });
});

describe("Secret data", () => {
  it("compares what is stored with what we would write, key order aside", () => {
    const data = { b: Buffer.from("2"), a: Buffer.from("1") };
    expect(secretHasData({ metadata: { name: "s" }, data: encodeSecretData(data) }, { a: Buffer.from("1"), b: Buffer.from("2") })).to.equal(true);
    expect(secretHasData({ metadata: { name: "s" }, data: { ...encodeSecretData(data), extra: "eA==" } }, data)).to.equal(false);
    expect(secretHasData(undefined, data)).to.equal(false);
  });
});
