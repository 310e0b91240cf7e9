/**
 * `npx tsx scripts/sync-helm-chart.ts [--check]`: keeps the Helm chart's copies of the shipped manifests identical to
 * their sources. Helm reads nothing outside the chart directory (and `helm package` does not follow symlinks), so
 * the chart holds byte-identical copies of
 *   crds/*.yaml                                  -> deploy/helm/imaging-db-mtls-operator/crds/
 *   deploy/admission/*.yaml (not kustomization)  -> deploy/helm/imaging-db-mtls-operator/files/admission/
 *   deploy/monitoring/prometheusrule.yaml, dashboard.json -> deploy/helm/imaging-db-mtls-operator/files/monitoring/
 * and Chart.yaml's appVersion is package.json's version. With --check nothing is written: the exit code says whether
 * the chart is in sync (the tests in test/unit/deploy/helm-chart-files.test.ts check the same).
 */
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";

const REPO = resolve(__dirname, "..");
export const CHART_DIR = join(REPO, "deploy", "helm", "imaging-db-mtls-operator");

export interface ChartCopy {
  source: string;
  copy: string;
}

/** Every copy the chart holds, as repository-relative paths (sources first), in a stable order. */
export async function chartCopies(): Promise<ChartCopy[]> {
  const yamls = async (dir: string, skip: string[] = []) =>
    (await readdir(join(REPO, dir))).filter((f) => f.endsWith(".yaml") && !skip.includes(f)).sort();
  const chart = "deploy/helm/imaging-db-mtls-operator";
  return [
    ...(await yamls("crds")).map((f) => ({ source: `crds/${f}`, copy: `${chart}/crds/${f}` })),
    ...(await yamls("deploy/admission", ["kustomization.yaml"])).map((f) => ({ source: `deploy/admission/${f}`, copy: `${chart}/files/admission/${f}` })),
    ...["prometheusrule.yaml", "dashboard.json"].map((f) => ({ source: `deploy/monitoring/${f}`, copy: `${chart}/files/monitoring/${f}` })),
  ];
}

/** Chart.yaml with its appVersion set to `version` (the only line changed). */
export function withAppVersion(chartYaml: string, version: string): string {
  return chartYaml.replace(/^appVersion:.*$/m, `appVersion: "${version}"`);
}

async function main(): Promise<void> {
  const check = process.argv.includes("--check");
  const stale: string[] = [];
  const copies = await chartCopies();
  for (const { source, copy } of copies) {
    const want = await readFile(join(REPO, source));
    const have = await readFile(join(REPO, copy)).catch(() => undefined);
    if (have?.equals(want)) continue;
    stale.push(copy);
    if (!check) await writeFile(join(REPO, copy), want);
  }
  // A copy whose source was removed would otherwise live on in the chart.
  const wanted = new Set(copies.map((c) => c.copy));
  for (const dir of ["crds", "files/admission", "files/monitoring"]) {
    for (const f of await readdir(join(CHART_DIR, dir))) {
      const copy = `deploy/helm/imaging-db-mtls-operator/${dir}/${f}`;
      if (wanted.has(copy)) continue;
      stale.push(`${copy} (no source)`);
      if (!check) await rm(join(REPO, copy));
    }
  }
  const { version } = JSON.parse(await readFile(join(REPO, "package.json"), "utf8")) as { version: string };
  const chartYaml = await readFile(join(CHART_DIR, "Chart.yaml"), "utf8");
  if (withAppVersion(chartYaml, version) !== chartYaml) {
    stale.push("Chart.yaml appVersion");
    if (!check) await writeFile(join(CHART_DIR, "Chart.yaml"), withAppVersion(chartYaml, version));
  }
  for (const s of stale) process.stdout.write(`${check ? "out of date" : "synced"}: ${s}\n`);
  if (check && stale.length > 0) {
    process.stderr.write("the Helm chart's copies drifted: run npx tsx scripts/sync-helm-chart.ts\n");
    process.exit(1);
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  });
}
