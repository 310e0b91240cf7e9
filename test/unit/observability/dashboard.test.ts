/**
 * The Grafana dashboard (deploy/monitoring/dashboard.json) against what the operator really exports: every panel
 * query parses as PromQL (the Prometheus project's grammar, through test/support/promql.ts as for the alerts) and
 * uses only exported metrics and labels; every legend prints only labels its query keeps; every panel has a title,
 * a unique id and the dashboard's datasource variable; and the kustomization ships the file itself as the Grafana
 * sidecar's ConfigMap.
 */
import { expect } from "chai";
import { readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { ExprChecker, exported, type Exported } from "../../support/promql";

const REPO = resolve(__dirname, "..", "..", "..");
const MONITORING = join(REPO, "deploy", "monitoring");
const DASHBOARD_PATH = join(MONITORING, "dashboard.json");
const DATASOURCE_UID = "${datasource}";

interface DataSourceRef {
  type?: string;
  uid?: string;
}

interface Target {
  refId?: string;
  expr?: string;
  legendFormat?: string;
  datasource?: DataSourceRef;
}

interface Panel {
  id?: number;
  type?: string;
  title?: string;
  datasource?: DataSourceRef;
  targets?: Target[];
  gridPos?: { h: number; w: number; x: number; y: number };
  /** The panels of a collapsed row. */
  panels?: Panel[];
}

interface Variable {
  name: string;
  type: string;
  query?: unknown;
  definition?: string;
  datasource?: DataSourceRef;
}

interface Dashboard {
  uid?: string;
  title?: string;
  schemaVersion?: number;
  panels: Panel[];
  templating: { list: Variable[] };
}

/** Grafana's built-in interval variables, replaced by a duration so the expression parses as plain PromQL. */
const GRAFANA_DURATIONS: Record<string, string> = { __interval: "1m", __rate_interval: "2m", __range: "1h", __range_s: "3600", __interval_ms: "60000" };

const dashboard = JSON.parse(readFileSync(DASHBOARD_PATH, "utf8")) as Dashboard;

/** Every panel, those inside collapsed rows too. */
function allPanels(d: Dashboard): Panel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

const isRow = (p: Panel): boolean => p.type === "row";

/** Replaces $var, ${var} and ${var:format}: Grafana's durations by a duration, the dashboard's variables by a label value. */
function substitute(expr: string, variables: ReadonlySet<string>, problems: string[]): string {
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g, (match, braced: string | undefined, bare: string | undefined) => {
    const name = braced ?? bare ?? "";
    if (name in GRAFANA_DURATIONS) return GRAFANA_DURATIONS[name]!;
    if (variables.has(name)) return `var_${name}`;
    problems.push(`${match} is neither a variable of the dashboard nor a Grafana interval variable`);
    return match;
  });
}

/** One target: syntax, metrics, labels, and the labels its legend prints. */
function checkTarget(where: string, t: Target, variables: ReadonlySet<string>, exp: Exported, used: Set<string>): string[] {
  const problems: string[] = [];
  if (t.datasource?.uid !== DATASOURCE_UID) problems.push(`${where}: datasource ${JSON.stringify(t.datasource)} is not the variable ${DATASOURCE_UID}`);
  if (!t.expr?.trim()) return [...problems, `${where}: no expr`];
  const checker = new ExprChecker(substitute(t.expr, variables, problems), exp);
  const result = checker.check();
  for (const m of checker.metricsUsed) used.add(m);
  problems.push(...checker.problems);
  const kept = result.type === "vector" ? result.labels : new Set<string>();
  for (const m of (t.legendFormat ?? "").matchAll(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g)) {
    if (!kept.has(m[1]!)) problems.push(`legend prints {{${m[1]}}}, which the result [${[...kept].sort().join(", ")}] does not have`);
  }
  return problems.map((p) => (p.startsWith(where) ? p : `${where}: ${p}`));
}

/** Everything wrong with a dashboard, as messages naming the panel; `used` collects the metrics it queries. */
function checkDashboard(d: Dashboard, exp: Exported, used = new Set<string>()): string[] {
  const problems: string[] = [];
  const variables = new Set(d.templating.list.map((v) => v.name));
  const ids = new Map<number, string>();
  for (const p of allPanels(d)) {
    const where = `panel ${p.id ?? "?"} "${p.title ?? ""}"`;
    if (!p.title?.trim()) problems.push(`${where}: no title`);
    if (typeof p.id !== "number") problems.push(`${where}: no numeric id`);
    else if (ids.has(p.id)) problems.push(`${where}: id ${p.id} already used by "${ids.get(p.id)}"`);
    else ids.set(p.id, p.title ?? "");
    if (isRow(p)) continue;
    if (p.datasource?.uid !== DATASOURCE_UID || p.datasource.type !== "prometheus") problems.push(`${where}: datasource ${JSON.stringify(p.datasource)} is not the prometheus variable ${DATASOURCE_UID}`);
    if (!p.targets?.length) problems.push(`${where}: no queries`);
    for (const t of p.targets ?? []) problems.push(...checkTarget(`${where} query ${t.refId ?? "?"}`, t, variables, exp, used));
  }
  for (const v of d.templating.list.filter((x) => x.type === "query")) {
    const where = `variable ${v.name}`;
    if (v.datasource?.uid !== DATASOURCE_UID) problems.push(`${where}: datasource ${JSON.stringify(v.datasource)} is not the variable ${DATASOURCE_UID}`);
    const query = typeof v.query === "string" ? v.query : ((v.query as { query?: string } | undefined)?.query ?? "");
    if (v.definition !== undefined && v.definition !== query) problems.push(`${where}: definition "${v.definition}" differs from its query "${query}"`);
    const m = /^label_values\(\s*(.+?)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)$/.exec(query);
    if (!m) {
      problems.push(`${where}: "${query}" is not label_values(<selector>, <label>)`);
      continue;
    }
    // The label must be on the selected series: the same as grouping the selector by it.
    problems.push(...checkTarget(where, { datasource: v.datasource, expr: `group by (${m[2]}) (${m[1]})` }, variables, exp, used));
  }
  return problems;
}

/** Rectangles of the 24-column grid that overlap. */
function overlaps(panels: Panel[]): string[] {
  const out: string[] = [];
  const placed = panels.filter((p) => p.gridPos);
  for (const [i, a] of placed.entries()) {
    for (const b of placed.slice(i + 1)) {
      const [ga, gb] = [a.gridPos!, b.gridPos!];
      if (ga.x < gb.x + gb.w && gb.x < ga.x + ga.w && ga.y < gb.y + gb.h && gb.y < ga.y + ga.h) out.push(`"${a.title}" and "${b.title}"`);
    }
  }
  return out;
}

describe("deploy/monitoring/dashboard.json", () => {
  let exp: Exported;
  before(async () => {
    exp = await exported();
  });

  it("is a Grafana dashboard (schemaVersion 39) with a fixed uid and a title", () => {
    expect(dashboard.schemaVersion).to.equal(39);
    expect(dashboard.uid).to.equal("imaging-db-mtls-operator");
    expect(dashboard.title ?? "").to.match(/\S/);
  });

  it("has a prometheus datasource variable and a multi-value namespace variable from label_values", () => {
    const ds = dashboard.templating.list.find((v) => v.name === "datasource");
    expect(ds).to.include({ type: "datasource", query: "prometheus" });
    const ns = dashboard.templating.list.find((v) => v.name === "namespace") as (Variable & { multi?: boolean; includeAll?: boolean; allValue?: string }) | undefined;
    expect(ns).to.include({ type: "query", multi: true, includeAll: true, allValue: ".*" });
    expect(ns?.definition).to.match(/^label_values\(imaging_mtls_[a-z_]+, namespace\)$/);
  });

  it("passes every check: titles, unique ids, the datasource variable, and queries that parse and use only exported metrics and labels", () => {
    expect(checkDashboard(dashboard, exp)).to.deep.equal([]);
  });

  describe("each panel", () => {
    for (const p of allPanels(dashboard).filter((x) => !isRow(x))) {
      it(`${p.title}: ${(p.targets ?? []).length} quer${(p.targets ?? []).length === 1 ? "y parses" : "ies parse"}, with exported metrics and labels only and legends its results keep`, () => {
        const variables = new Set(dashboard.templating.list.map((v) => v.name));
        const problems = (p.targets ?? []).flatMap((t) => checkTarget(`query ${t.refId}`, t, variables, exp, new Set()));
        expect(problems).to.deep.equal([]);
      });
    }
  });

  it("shows what the issue asks for that the operator exports: expiry, verification, reconcile errors, queue depth, event-loop lag", () => {
    const used = new Set<string>();
    checkDashboard(dashboard, exp, used);
    for (const m of [
      "imaging_mtls_certificate_expiry_timestamp_seconds",
      "imaging_mtls_last_verification_success_timestamp_seconds",
      "imaging_mtls_reconcile_errors_total",
      "imaging_mtls_workqueue_depth",
      "imaging_mtls_operator_nodejs_eventloop_lag_p99_seconds",
    ]) {
      expect([...used], m).to.include(m);
    }
  });

  it("lays its panels out on the 24-column grid without overlaps", () => {
    const panels = allPanels(dashboard);
    for (const p of panels) {
      expect(p.gridPos, `${p.title}`).to.not.equal(undefined);
      expect(p.gridPos!.x + p.gridPos!.w, `${p.title}`).to.be.at.most(24);
    }
    expect(overlaps(dashboard.panels)).to.deep.equal([]);
  });

  describe("the checker itself", () => {
    const copy = (): Dashboard => structuredClone(dashboard);
    const firstQueryPanel = (d: Dashboard): Panel & { targets: Target[] } => d.panels.find((p) => !isRow(p) && p.targets?.length) as Panel & { targets: Target[] };

    it("reports a misspelled metric, naming the panel", () => {
      const d = copy();
      const p = firstQueryPanel(d);
      p.targets[0]!.expr = p.targets[0]!.expr!.replace("imaging_mtls_certificate_expiry_timestamp_seconds", "imaging_mtls_certificate_expiry_timestamp_second");
      const problems = checkDashboard(d, exp);
      expect(problems).to.have.length(1);
      expect(problems[0]).to.include(`"${p.title}"`).and.to.include("imaging_mtls_certificate_expiry_timestamp_second is not exported");
    });

    it("reports a syntax error, a label the metric lacks, a legend label the result drops and an unknown variable", () => {
      const d = copy();
      const t = firstQueryPanel(d).targets[0]!;
      for (const [expr, legendFormat, expected] of [
        ["sum(imaging_mtls_workqueue_depth", undefined, /syntax error/],
        ['imaging_mtls_workqueue_depth{kind="x"}', undefined, /label "kind"/],
        ["sum by (queue) (imaging_mtls_workqueue_depth)", "{{pod}}", /legend prints \{\{pod\}\}/],
        ['imaging_mtls_workqueue_depth{queue=~"$queue"}', undefined, /\$queue is neither/],
      ] as const) {
        t.expr = expr;
        t.legendFormat = legendFormat;
        expect(checkDashboard(d, exp).join("\n"), expr).to.match(expected);
      }
    });

    it("lets a legend print the labels topk and bottomk keep, and not those a sum drops", () => {
      const d = copy();
      const t = firstQueryPanel(d).targets[0]!;
      t.legendFormat = "{{queue}} {{pod}}";
      t.expr = "topk(3, imaging_mtls_workqueue_depth)";
      expect(checkDashboard(d, exp)).to.deep.equal([]);
      t.expr = "sum(imaging_mtls_workqueue_depth)";
      expect(checkDashboard(d, exp).join("\n")).to.match(/legend prints \{\{queue\}\}/);
    });

    it("reports a panel without the datasource variable, a duplicate id and a missing title", () => {
      const d = copy();
      const p = firstQueryPanel(d);
      p.datasource = { type: "prometheus", uid: "prometheus" };
      const other = d.panels.filter((x) => !isRow(x)).at(-1)!;
      other.id = p.id;
      other.title = "";
      const problems = checkDashboard(d, exp).join("\n");
      expect(problems).to.match(/is not the prometheus variable/);
      expect(problems).to.match(/already used by/);
      expect(problems).to.match(/no title/);
    });

    it("reports a namespace variable over a label its metric does not have", () => {
      const d = copy();
      const v = d.templating.list.find((x) => x.name === "namespace")!;
      v.definition = "label_values(imaging_mtls_workqueue_depth, kind)";
      v.query = { query: v.definition };
      expect(checkDashboard(d, exp).join("\n")).to.match(/variable namespace: .*label "kind"/);
    });
  });
});

describe("deploy/monitoring/kustomization.yaml: the dashboard's ConfigMap", () => {
  interface Generator {
    name: string;
    files?: string[];
    options?: { disableNameSuffixHash?: boolean; labels?: Record<string, string> };
  }
  const k = parseYaml(readFileSync(join(MONITORING, "kustomization.yaml"), "utf8")) as { namespace?: string; configMapGenerator?: Generator[] };
  const gen = (k.configMapGenerator ?? []).find((g) => g.name === "imaging-db-mtls-operator-dashboard");

  it("is generated from dashboard.json itself (key dashboard.json), so the file is its only copy", () => {
    expect(gen, "configMapGenerator imaging-db-mtls-operator-dashboard").to.not.equal(undefined);
    // A bare file name makes the data key the file name; the sidecar writes each key out as a dashboard file.
    expect(gen?.files).to.deep.equal(["dashboard.json"]);
  });

  it("carries the Grafana sidecar label and a fixed name, in the operator's namespace", () => {
    expect(gen?.options?.labels).to.include({ grafana_dashboard: "1" });
    expect(gen?.options?.disableNameSuffixHash).to.equal(true);
    expect(k.namespace).to.equal("imaging-db-mtls-operator");
  });

  it("stays small enough for kubectl apply without --server-side (its last-applied annotation is capped at 256 KiB)", () => {
    expect(statSync(DASHBOARD_PATH).size).to.be.below(200 * 1024);
  });
});
