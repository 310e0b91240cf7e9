import { expect } from "chai";
import { foreignVolumeConflict, podTemplateApplyPatch, podTemplateHasPlan, type PodTemplatePlan, type Workload } from "../../../src/imaging/pod-template";

describe("pod template plan", () => {
  const plan: PodTemplatePlan = {
    mounts: [{ volumeName: "mtls", source: { secretName: "s" }, defaultMode: 0o640, mountPath: "/tls", containers: ["pg"] }],
    env: [],
    annotations: { "mtls.imaging.dev/served-material": "h" },
  };
  const workload = (volumes: unknown[], mounts: unknown[], annotations: Record<string, string> = {}): Workload =>
    ({
      metadata: { name: "w" },
      spec: { template: {
        metadata: { annotations },
        spec: { containers: [{ name: "pg", volumeMounts: mounts }, { name: "side" }], volumes },
      } },
    }) as Workload;

  it("builds an apply body with only our volume, mount and annotation", () => {
    expect(podTemplateApplyPatch("StatefulSet", "w", "ns", plan)).to.deep.equal({
      apiVersion: "apps/v1",
      kind: "StatefulSet",
      metadata: { name: "w", namespace: "ns" },
      spec: {
        template: {
          metadata: { annotations: { "mtls.imaging.dev/served-material": "h" } },
          spec: {
            containers: [{ name: "pg", volumeMounts: [{ name: "mtls", mountPath: "/tls", readOnly: true }] }],
            volumes: [{ name: "mtls", secret: { secretName: "s", defaultMode: 0o640 } }],
          },
        },
      },
    });
  });
  it("gives init containers env and mounts, and co-owns the emptyDir it mounts (a chart that drops it stays valid)", () => {
    const init: PodTemplatePlan = {
      mounts: [],
      env: [],
      initContainers: [{ name: "upgrade", mounts: [{ volumeName: "files", mountPath: "/f", emptyDir: true }], env: [{ name: "PGSSLMODE", value: "verify-full" }] }],
      annotations: {},
    };
    expect(podTemplateApplyPatch("Deployment", "w", "ns", init)).to.deep.equal({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "w", namespace: "ns" },
      spec: { template: { spec: {
        initContainers: [{ name: "upgrade", volumeMounts: [{ name: "files", mountPath: "/f", readOnly: true }], env: [{ name: "PGSSLMODE", value: "verify-full" }] }],
        volumes: [{ name: "files", emptyDir: {} }],
      } } },
    });
    const carrying = (volumes: unknown[]): Workload => ({
      metadata: { name: "w" },
      spec: { template: { spec: {
        containers: [{ name: "main" }],
        initContainers: [{ name: "upgrade", volumeMounts: [{ name: "files", mountPath: "/f" }], env: [{ name: "PGSSLMODE", value: "verify-full" }] }],
        volumes,
      } as NonNullable<NonNullable<Workload["spec"]>["template"]>["spec"] } },
    });
    expect(podTemplateHasPlan(carrying([{ name: "files", emptyDir: {} }]), init)).to.equal(true);
    expect(podTemplateHasPlan(carrying([]), init)).to.equal(false);
  });

  it("an empty plan takes everything back", () => {
    expect(podTemplateApplyPatch(
      "Deployment",
      "w",
      "ns",
      { mounts: [], env: [], annotations: {} },
    )).to.deep.equal({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "w", namespace: "ns" } });
  });
  it("knows when the live workload already carries the plan", () => {
    const done = workload(
      [{ name: "mtls", secret: { secretName: "s", defaultMode: 0o640 } }],
      [{ name: "mtls", mountPath: "/tls" }],
      { "mtls.imaging.dev/served-material": "h" },
    );
    expect(podTemplateHasPlan(done, plan)).to.equal(true);
    expect(podTemplateHasPlan(
      workload(
        [{ name: "mtls", secret: { secretName: "s", defaultMode: 0o640 } }],
        [{ name: "mtls", mountPath: "/tls", subPath: "tls.crt" }],
        { "mtls.imaging.dev/served-material": "h" },
      ),
      plan,
    )).to.equal(false);
    expect(podTemplateHasPlan(workload([], []), plan)).to.equal(false);
  });
  it("refuses a volume of our name from elsewhere, and a mount path already taken", () => {
    expect(foreignVolumeConflict(workload([{ name: "mtls", configMap: { name: "x" } }], []), plan)).to.contain('volume named "mtls"');
    expect(foreignVolumeConflict(workload([], [{ name: "data", mountPath: "/tls" }]), plan)).to.contain('already mounts volume "data" at /tls');
    expect(foreignVolumeConflict(workload([], []), plan)).to.equal(undefined);
  });
});
