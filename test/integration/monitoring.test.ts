/**
 * The monitoring manifests (deploy/monitoring/) against the real API server with the real prometheus-operator CRDs
 * (fetched at a pinned version and checksum by test/controlplane/monitoring-crds.sh): the PrometheusRule and the
 * ServiceMonitor pass the CRDs' schemas in a server-side dry run, and the schema does check (a malformed rule is
 * refused).
 */
import { expect } from "chai";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parse as parseYaml, stringify } from "yaml";
import type { ControlPlane } from "../support/controlplane";
import { controlPlane } from "../support/hooks";
import { runOk } from "../support/process";

const REPO = resolve(__dirname, "..", "..");
const MONITORING = join(REPO, "deploy", "monitoring");
const CRDS = ["monitoring.coreos.com_prometheusrules.yaml", "monitoring.coreos.com_servicemonitors.yaml"];

describe("deploy/monitoring on the real API server", function () {
  this.timeout(180_000);
  let cp: ControlPlane;

  before(async () => {
    cp = controlPlane();
    const dir = (await runOk("bash", [join(REPO, "test", "controlplane", "monitoring-crds.sh")], { timeoutMs: 170_000 })).trim().split("\n").at(-1)!;
    const applied = await cp.kubectl(["apply", "--server-side", "--field-manager=test", ...CRDS.flatMap((f) => ["-f", join(dir, f)])]);
    expect(applied.code, applied.stderr).to.equal(0);
    const waited = await cp.kubectl(["wait", "--for=condition=Established", "--timeout=60s", "crd/prometheusrules.monitoring.coreos.com", "crd/servicemonitors.monitoring.coreos.com"]);
    expect(waited.code, waited.stderr).to.equal(0);
  });

  it("accepts the kustomization (PrometheusRule, ServiceMonitor, the dashboard's ConfigMap) in a server-side dry run", async () => {
    const r = await cp.kubectl(["apply", "--server-side", "--field-manager=test", "--dry-run=server", "-k", MONITORING]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.include("prometheusrule.monitoring.coreos.com/imaging-db-mtls-operator serverside-applied (server dry run)");
    expect(r.stdout).to.include("servicemonitor.monitoring.coreos.com/imaging-db-mtls-operator serverside-applied (server dry run)");
    expect(r.stdout).to.include("configmap/imaging-db-mtls-operator-dashboard serverside-applied (server dry run)");
  });

  it("accepts each manifest applied on its own with -f", async () => {
    for (const f of ["prometheusrule.yaml", "servicemonitor.yaml"]) {
      const r = await cp.kubectl(["apply", "--server-side", "--field-manager=test", "--dry-run=server", "-f", join(MONITORING, f)]);
      expect(r.code, `${f}: ${r.stderr}`).to.equal(0);
    }
  });

  it("is checked by the schema: a rule with a malformed for duration is refused", async () => {
    const rule = parseYaml(readFileSync(join(MONITORING, "prometheusrule.yaml"), "utf8")) as { spec: { groups: { rules: { for?: string }[] }[] } };
    rule.spec.groups[0]!.rules[0]!.for = "one hour";
    const r = await cp.kubectl(["apply", "--server-side", "--field-manager=test", "--dry-run=server", "-f", "-"], { input: stringify(rule) });
    expect(r.code).to.not.equal(0);
    expect(r.stderr).to.match(/spec\.groups\[0\]\.rules\[0\]\.for/);
  });
});
