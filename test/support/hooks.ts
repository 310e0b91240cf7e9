import "reflect-metadata";
import { startControlPlane, type ControlPlane } from "./controlplane";

let shared: ControlPlane | undefined;

/** The control plane the whole integration run shares; each test works in namespaces of its own. */
export function controlPlane(): ControlPlane {
  if (!shared) throw new Error("the control plane is not running: run integration tests with test/mocharc.integration.json");
  return shared;
}

export const mochaHooks = {
  async beforeAll(this: Mocha.Context): Promise<void> {
    // A cold build of kube-apiserver and etcd takes a while; .ci/run builds them before the tests.
    this.timeout(60 * 60_000);
    shared = await startControlPlane();
    await shared.installCRDs();
    await shared.installRBAC();
  },
  async afterAll(this: Mocha.Context): Promise<void> {
    this.timeout(60_000);
    await shared?.stop();
  },
};
