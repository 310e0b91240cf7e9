import { expect } from "chai";
import { componentDelivery, inRelease, type ComponentDelivery } from "../../../src/imaging/cast-chart";
import type { Workload } from "../../../src/imaging/pod-template";
import { analysisNode, CHART_SECRET, controlPanel, FILES_DIR, plainComponent, RELEASE, viewerEtl } from "./chart-workloads";

const withoutLabel = (w: Workload): Workload => {
  const labels = { ...w.metadata.labels };
  delete labels["imaging.service"];
  return { ...w, metadata: { ...w.metadata, labels } };
};

describe("inRelease", () => {
  it("by Helm's release annotation, for chart components only", () => {
    expect(inRelease(controlPanel(), { release: RELEASE })).to.equal(true);
    expect(inRelease(analysisNode(), { release: RELEASE })).to.equal(true);
    expect(inRelease(controlPanel({ release: "other-release" }), { release: RELEASE })).to.equal(false);
    // Helm labels every object of the release; without imaging.service it is not one of the chart's components.
    expect(inRelease(withoutLabel(controlPanel()), { release: RELEASE })).to.equal(false);
    const unannotated = controlPanel();
    delete unannotated.metadata.annotations;
    expect(inRelease(unannotated, { release: RELEASE })).to.equal(false);
  });

  it("the release name is matched exactly (no prefix, no case folding)", () => {
    expect(inRelease(controlPanel({ release: `${RELEASE}-2` }), { release: RELEASE })).to.equal(false);
    expect(inRelease(controlPanel({ release: RELEASE.toUpperCase() }), { release: RELEASE })).to.equal(false);
  });

  it("by matchLabels: every label must match, and the workload must carry imaging.service", () => {
    expect(inRelease(analysisNode(), { matchLabels: { "imaging.service": "console-analysis-node" } })).to.equal(true);
    // The StatefulSet's label is its component, not its name.
    expect(inRelease(analysisNode(), { matchLabels: { "imaging.service": "console-analysis-node-core" } })).to.equal(false);
    expect(inRelease(viewerEtl(), { matchLabels: { "app.kubernetes.io/managed-by": "Helm" } })).to.equal(true);
    expect(inRelease(viewerEtl(), { matchLabels: { "app.kubernetes.io/managed-by": "Helm", tier: "db" } })).to.equal(false);
    expect(inRelease(withoutLabel(viewerEtl()), { matchLabels: { "app.kubernetes.io/managed-by": "Helm" } })).to.equal(false);
    const unlabelled: Workload = { metadata: { name: "x" } };
    expect(inRelease(unlabelled, { matchLabels: {} })).to.equal(false);
  });

  it("matchLabels ignores the release annotation (a selector is its own scope)", () => {
    expect(inRelease(viewerEtl({ release: "other" }), { matchLabels: { "imaging.service": "viewer-etl" } })).to.equal(true);
  });
});

describe("componentDelivery", () => {
  const delivery = (w: Workload, listed = false, secret = CHART_SECRET): ComponentDelivery => componentDelivery(w, secret, listed);

  it("the three wired components with EnablePostgresSSL=true: ChartSecret with the contract read from the template", () => {
    for (const w of [controlPanel(), analysisNode(), viewerEtl()]) {
      const d = delivery(w);
      expect(d.delivery, w.metadata.name).to.equal("ChartSecret");
      expect("contract" in d && d.contract.filesDir, w.metadata.name).to.equal(FILES_DIR);
    }
    const an = delivery(analysisNode());
    expect("contract" in an && an.contract.psqlInitContainers).to.deep.equal([{ name: "postgres-upgrade", mountsFiles: false }]);
  });

  it("ChartSecret with the refusal when the chart's Secret is mounted but the contract is broken", () => {
    const w = viewerEtl();
    w.spec!.template!.spec!.containers![0]!.env = [{ name: "TZ", value: "UTC" }];
    const d = delivery(w);
    expect(d.delivery).to.equal("ChartSecret");
    expect("refused" in d && d.refused.reason).to.equal("ChartContractIncomplete");
  });

  it("Mount for the .ini readers when the chart did not render its contract (EnablePostgresSSL off)", () => {
    expect(delivery(controlPanel({ ssl: false }))).to.deep.equal({ delivery: "Mount" });
    expect(delivery(analysisNode({ ssl: false }))).to.deep.equal({ delivery: "Mount" });
    expect(delivery(viewerEtl({ ssl: false }))).to.deep.equal({ delivery: "Mount" });
  });

  it("Mount when the template mounts another Secret than the chart's (the contract is of the named Secret)", () => {
    expect(delivery(controlPanel(), false, "castimaging-client-tls")).to.deep.equal({ delivery: "Mount" });
  });

  it("ChartSecret for any component the chart wires, also one this chart version does not (a later version's)", () => {
    const w = viewerEtl();
    w.metadata.labels = { ...w.metadata.labels, "imaging.service": "console-service" };
    expect(delivery(w).delivery).to.equal("ChartSecret");
  });

  it("None, and why, for the components that reach PostgreSQL without a certificate", () => {
    for (const [name, cause] of [
      ["console-sso-service", "KC_DB_URL"],
      ["console-authentication-service", "DB_HOST/DB_PORT"],
      ["console-service", "psql with a password"],
      ["console-dashboards", "DB_HOST/DB_PORT"],
    ] as const) {
      const d = delivery(plainComponent(name));
      expect(d.delivery, name).to.equal("None");
      expect("why" in d && d.why, name).to.contain(cause).and.contain("the database must keep a password path open for it");
    }
  });

  it("None for components that do not reach PostgreSQL, and for a workload without the component label", () => {
    for (const name of ["viewer-server", "viewer-api", "viewer-neo4j-core", "mcp-server", "console-gateway-service", "extendproxy"]) {
      expect(delivery(plainComponent(name)), name).to.deep.equal({
        delivery: "None",
        why: "does not reach PostgreSQL in CAST's chart 3.6.x (list it in spec.workloads if it does)",
      });
    }
    expect(delivery(withoutLabel(viewerEtl({ ssl: false }))).delivery).to.equal("None");
  });

  it("a listed workload gets the operator's mount, whatever its component (the user says it reads the .ini)", () => {
    expect(delivery(plainComponent("viewer-server"), true)).to.deep.equal({ delivery: "Mount" });
    expect(delivery(plainComponent("console-sso-service"), true)).to.deep.equal({ delivery: "Mount" });
    expect(delivery(withoutLabel(viewerEtl({ ssl: false })), true)).to.deep.equal({ delivery: "Mount" });
    // The chart's contract still wins where it is rendered: one .ini per container.
    expect(delivery(controlPanel(), true).delivery).to.equal("ChartSecret");
  });

  it("a component label that names an Object.prototype member is an unknown component, not a known one", () => {
    for (const name of ["constructor", "toString", "hasOwnProperty", "valueOf"]) {
      expect(delivery(plainComponent(name)), name).to.deep.equal({
        delivery: "None",
        why: "does not reach PostgreSQL in CAST's chart 3.6.x (list it in spec.workloads if it does)",
      });
    }
  });
});
