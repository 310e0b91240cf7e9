/**
 * The Helm chart (deploy/helm/imaging-db-mtls-operator) holds copies of files Helm cannot reach outside the chart:
 * the CRDs (crds/), the admission policies and the PrometheusRule/dashboard (files/). Each must be byte-identical to
 * its source, with no copy left over whose source is gone, and Chart.yaml's appVersion must be package.json's
 * version. `npx tsx scripts/sync-helm-chart.ts` repairs all of it. The rendered objects themselves are compared
 * with deploy/install.yaml by test/integration/helm-chart.test.ts (it needs the real helm).
 */
import { expect } from "chai";
import { readdir, readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { CHART_DIR, chartCopies, withAppVersion } from "../../../scripts/sync-helm-chart";

const REPO = resolve(__dirname, "..", "..", "..");
const SYNC = "run npx tsx scripts/sync-helm-chart.ts";

describe("Helm chart: copies of the shipped manifests", () => {
  it("holds every CRD, admission policy and monitoring file byte for byte as its source", async () => {
    const copies = await chartCopies();
    expect(copies.map((c) => c.source)).to.include.members([
      "crds/securedatabases.yaml",
      "crds/imagingconnections.yaml",
      "deploy/admission/connection-grants-policy.yaml",
      "deploy/admission/connection-authorization-policy.yaml",
      "deploy/admission/requester-cluster-role.yaml",
      "deploy/monitoring/prometheusrule.yaml",
      "deploy/monitoring/dashboard.json",
    ]);
    for (const { source, copy } of copies) {
      const [want, have] = await Promise.all([readFile(join(REPO, source)), readFile(join(REPO, copy)).catch(() => undefined)]);
      expect(have, `${copy} is missing: ${SYNC}`).to.not.equal(undefined);
      expect(have!.equals(want), `${copy} differs from ${source}: ${SYNC}`).to.equal(true);
    }
  });

  it("holds no copy without a source (a removed CRD or policy would live on in the chart)", async () => {
    const wanted = new Set((await chartCopies()).map((c) => c.copy));
    for (const dir of ["crds", "files/admission", "files/monitoring"]) {
      for (const f of await readdir(join(CHART_DIR, dir))) {
        const copy = `deploy/helm/imaging-db-mtls-operator/${dir}/${f}`;
        expect(wanted.has(copy), `${copy} has no source: ${SYNC}`).to.equal(true);
      }
    }
  });

  it("Chart.yaml: apiVersion v2, version 0.1.0, appVersion package.json's version", async () => {
    const text = await readFile(join(CHART_DIR, "Chart.yaml"), "utf8");
    const chart = parseYaml(text) as { apiVersion: string; name: string; version: string; appVersion: string };
    const { version } = JSON.parse(await readFile(join(REPO, "package.json"), "utf8")) as { version: string };
    expect(chart).to.include({ apiVersion: "v2", name: "imaging-db-mtls-operator", version: "0.1.0" });
    expect(chart.appVersion, `Chart.yaml appVersion: ${SYNC}`).to.equal(version);
    expect(withAppVersion(text, version)).to.equal(text);
    expect(withAppVersion("a: 1\nappVersion: \"0.0.1\"\nb: 2\n", "1.2.3")).to.equal('a: 1\nappVersion: "1.2.3"\nb: 2\n');
  });

  it("values.yaml and values.schema.json name the same values, and the schema refuses unknown ones", async () => {
    const values = parseYaml(await readFile(join(CHART_DIR, "values.yaml"), "utf8")) as Record<string, unknown>;
    const schema = JSON.parse(await readFile(join(CHART_DIR, "values.schema.json"), "utf8")) as {
      additionalProperties: boolean;
      properties: Record<string, { properties?: Record<string, unknown>; additionalProperties?: unknown }>;
    };
    expect(schema.additionalProperties).to.equal(false);
    expect(Object.keys(schema.properties).filter((k) => k !== "global")).to.have.members(Object.keys(values));
    // Nested objects the chart reads key by key: a misspelt key there must fail too.
    for (const [key, value] of Object.entries(values)) {
      const property = schema.properties[key]!;
      if (!property.properties) continue;
      expect(property.additionalProperties, `${key}: additionalProperties`).to.equal(false);
      expect(Object.keys(property.properties), `${key}: the schema's keys`).to.have.members(Object.keys(value as object));
    }
  });
});
