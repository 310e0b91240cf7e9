import * as k8s from "@kubernetes/client-node";
import { expect } from "chai";
import type { SecureDatabase } from "../../src/api/types";
import { silentLogger } from "../../src/log";
import { startHealthServer, type HealthServer } from "../../src/observability/http";
import { Operator } from "../../src/operator";
import { controlPlane } from "../support/hooks";
import { kubectlOk, waitForCondition } from "../support/kubectl-json";
import { secureDatabaseWithoutServerYaml } from "../support/manifests";
import { startOperatorInNamespace, type OperatorInNamespace } from "../support/operator-fixture";
import { TEST_KEY_NAMESPACE } from "../support/operator";
import { waitFor } from "../support/process";

/** /healthz, /readyz and /metrics of a running operator, against the real API server. */
describe("Observability: health endpoints and Prometheus metrics", function () {
  this.timeout(120_000);
  let env: OperatorInNamespace;
  let ns: string;
  let health: HealthServer;
  const get = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${health.port}${path}`);
    return { status: res.status, text: await res.text() };
  };

  before(async () => {
    env = await startOperatorInNamespace({ name: "obs" });
    ns = env.ns;
    health = await startHealthServer({ host: "127.0.0.1", port: 0, ready: () => env.operator.hasSynced(), metrics: env.operator.metrics });
  });

  after(async () => {
    await health?.close();
    await env?.stop();
  });

  it("answers /healthz and /readyz once the caches are synced, and 404 elsewhere", async () => {
    expect(await get("/healthz")).to.deep.equal({ status: 200, text: "ok\n" });
    expect(await get("/readyz")).to.deep.equal({ status: 200, text: "ok\n" });
    expect((await get("/nope")).status).to.equal(404);
  });

  it("is not ready before its caches have synced", async () => {
    const kubeConfig = new k8s.KubeConfig();
    kubeConfig.loadFromFile(controlPlane().operatorKubeconfigPath);
    const idle = new Operator({ kubeConfig, log: silentLogger(), namespaces: [ns], caKeyNamespace: TEST_KEY_NAMESPACE });
    const server = await startHealthServer({ host: "127.0.0.1", port: 0, ready: () => idle.hasSynced(), metrics: idle.metrics });
    try {
      const res = await fetch(`http://127.0.0.1:${server.port}/readyz`);
      expect(res.status).to.equal(503);
    } finally {
      await server.close();
    }
  });

  it("exports each certificate's expiry, reconcile counts and durations, and queue depth; drops a deleted object's series", async () => {
    // No database behind it: the CA and the server certificate are issued all the same, and that is what is measured.
    await kubectlOk(["apply", "-f", "-"], secureDatabaseWithoutServerYaml(ns, "metered"));
    const sdb = await waitForCondition<SecureDatabase>("sdb", ns, "metered", "ServerCertificateReady", (c) => c.status === "True");
    const seconds = (iso: string | undefined) => String(Date.parse(iso!) / 1000);
    const series = (role: string) => `imaging_mtls_certificate_expiry_timestamp_seconds{kind="SecureDatabase",namespace="${ns}",name="metered",role="${role}"}`;
    let text = "";
    await waitFor("the expiry series", async () => (text = (await get("/metrics")).text).includes(series("server")), 10_000);
    expect(text).to.contain(`${series("server")} ${seconds(sdb.status?.serverCertificate?.notAfter)}`);
    expect(text).to.contain(`${series("ca")} ${seconds(sdb.status?.ca?.notAfter)}`);
    expect(text).to.match(/imaging_mtls_reconcile_total\{kind="SecureDatabase"\} [1-9]\d*/);
    expect(text).to.match(/imaging_mtls_reconcile_duration_seconds_count\{kind="SecureDatabase"\} [1-9]\d*/);
    expect(text).to.match(/imaging_mtls_workqueue_depth\{queue="SecureDatabase"\} \d+/);
    expect(text).to.match(/imaging_mtls_workqueue_retrying\{queue="Workload"\} 0/);
    expect(text).to.contain("imaging_mtls_operator_process_resident_memory_bytes");
    expect(text).to.contain(`imaging_mtls_ca_rotation_phase{namespace="${ns}",name="metered",phase="Idle"} 1`);
    expect(text).to.contain(`imaging_mtls_ca_rotation_phase{namespace="${ns}",name="metered",phase="Overlap"} 0`);
    expect(text).to.contain(`imaging_mtls_certificate_renewal_overdue{kind="SecureDatabase",namespace="${ns}",name="metered",role="server"} 0`);
    expect(text).to.match(/imaging_mtls_certificate_renewals_total\{kind="SecureDatabase",role="server"\} \d+/);
    await kubectlOk(["delete", "sdb", "metered", "-n", ns, "--wait=true", "--timeout=60s"]);
    await waitFor("the series to go", async () => !(await get("/metrics")).text.includes(series("server")), 10_000);
  });
});
