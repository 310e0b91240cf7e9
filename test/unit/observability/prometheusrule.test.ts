/**
 * The shipped alerts (deploy/monitoring/) against what the operator really exports and what the runbook really
 * says: every expression parses as PromQL (the Prometheus project's own grammar), uses only metrics and labels that
 * OperatorMetrics exports (or the labels Prometheus adds to every scraped series), and keeps, after its
 * aggregations and vector matching, every label its annotations print; every alert has a severity, a summary, a
 * description and a runbook link to a section that exists, and every alert section of the runbook is linked.
 */
import { parser } from "@prometheus-io/lezer-promql";
import { expect } from "chai";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parse as parseYaml, parseAllDocuments } from "yaml";
import { OperatorMetrics } from "../../../src/observability/metrics";
import { WorkQueue } from "../../../src/runtime/workqueue";
import { imc, sdb } from "../api/builders";

const REPO = resolve(__dirname, "..", "..", "..");
const MONITORING = join(REPO, "deploy", "monitoring");
const RUNBOOK_PATH = join(REPO, "docs", "runbook.md");
const RUNBOOK_URL = "https://github.com/imaging-db-mtls-operator/imaging-db-mtls-operator/blob/main/docs/runbook.md#";
const SEVERITIES = ["warning", "critical"];
/**
 * Labels Prometheus puts on every series of a target: job and instance always; namespace, service, pod, container
 * and endpoint from the ServiceMonitor (servicemonitor.yaml keeps the exported namespace label with honorLabels).
 */
const TARGET_LABELS = ["job", "instance", "namespace", "service", "pod", "container", "endpoint"];

type SyntaxNode = ReturnType<typeof parser.parse>["topNode"];

// ---------------------------------------------------------------------------------------------------------------
// What the operator exports

interface Exported {
  /** Every series name /metrics can show (histogram buckets, sums and counts included). */
  names: Set<string>;
  /** Label names seen on each series name once every kind of series exists. */
  labels: Map<string, Set<string>>;
}

async function exported(): Promise<Exported> {
  // The names: what the registry declares, as the brief of the metrics module says.
  const names = new Set<string>(["up"]);
  for (const m of await new OperatorMetrics(() => []).registry.getMetricsAsJSON()) {
    names.add(m.name);
    const type = String(m.type);
    if (type === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(m.name + s);
    if (type === "summary") for (const s of ["_sum", "_count"]) names.add(m.name + s);
  }
  // The labels: every kind of series made to exist through the public API, then read back.
  const queue = new WorkQueue(async () => ({}), { concurrency: 1, baseBackoffMs: 1000, maxBackoffMs: 1000 });
  const metrics = new OperatorMetrics(() => [{ name: "SecureDatabase", queue }]);
  const db = sdb();
  db.status = {
    ca: { notAfter: "2036-01-01T00:00:00Z" },
    serverCertificate: { notAfter: "2027-01-01T00:00:00Z" },
    verification: { lastSuccessTime: "2026-11-23T12:00:00Z" },
  };
  metrics.observeSecureDatabase(db);
  const conn = imc();
  conn.status = { certificate: { notAfter: "2027-01-01T00:00:00Z" }, verification: { lastSuccessTime: "2026-11-23T12:00:00Z" } };
  metrics.observeImagingConnection(conn);
  await metrics.instrument("SecureDatabase", async () => ({}))("cast/imaging-db");
  await metrics
    .instrument("SecureDatabase", async () => {
      throw new Error("boom");
    })("cast/imaging-db")
    .catch(() => undefined);
  const labels = new Map<string, Set<string>>([["up", new Set()]]);
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    for (const v of m.values) {
      const name = (v as { metricName?: string }).metricName ?? m.name;
      const set = labels.get(name) ?? new Set<string>();
      for (const l of Object.keys(v.labels)) set.add(l);
      labels.set(name, set);
    }
  }
  return { names, labels };
}

// ---------------------------------------------------------------------------------------------------------------
// PromQL: syntax, metric and label use, and the labels an expression's result keeps

type Value = { type: "scalar" } | { type: "string" } | { type: "vector"; labels: Set<string> };

const EXPRESSIONS = new Set([
  "AggregateExpr",
  "BinaryExpr",
  "FunctionCall",
  "MatrixSelector",
  "NumberDurationLiteral",
  "OffsetExpr",
  "ParenExpr",
  "StepInvariantExpr",
  "StringLiteral",
  "SubqueryExpr",
  "UnaryExpr",
  "VectorSelector",
]);
const SET_OPERATORS = new Set(["And", "Or", "Unless"]);

function childrenOf(node: SyntaxNode): SyntaxNode[] {
  const out: SyntaxNode[] = [];
  for (let c = node.firstChild; c; c = c.nextSibling) out.push(c);
  return out;
}

const vector = (labels: Iterable<string>): Value => ({ type: "vector", labels: new Set(labels) });

class ExprChecker {
  readonly problems: string[] = [];
  readonly metricsUsed = new Set<string>();

  constructor(
    private readonly source: string,
    private readonly exp: Exported,
  ) {}

  private text(node: SyntaxNode): string {
    return this.source.slice(node.from, node.to);
  }

  private problem(node: SyntaxNode, message: string): void {
    this.problems.push(`${message} (at "${this.text(node)}")`);
  }

  /** Every label of `labels` must be in the value's labels. */
  private requireLabels(node: SyntaxNode, labels: readonly string[], value: Value, what: string): void {
    if (value.type !== "vector") return this.problem(node, `${what} on a ${value.type}`);
    for (const l of labels) if (!value.labels.has(l)) this.problem(node, `label "${l}" of ${what} is not on [${[...value.labels].sort().join(", ")}]`);
  }

  private groupingLabels(node: SyntaxNode | null | undefined): string[] {
    return node ? childrenOf(node).filter((c) => c.name === "LabelName").map((c) => this.text(c)) : [];
  }

  private expressionChildren(node: SyntaxNode): SyntaxNode[] {
    return childrenOf(node).filter((c) => EXPRESSIONS.has(c.name));
  }

  check(): Value {
    const tree = parser.parse(this.source);
    tree.iterate({
      enter: (n) => {
        if (n.type.isError) this.problems.push(`syntax error at offset ${n.from}: "${this.source.slice(Math.max(0, n.from - 20), n.to + 20)}"`);
      },
    });
    const top = this.expressionChildren(tree.topNode);
    if (top.length !== 1) {
      this.problems.push(`expected one expression, found ${top.length}`);
      return { type: "scalar" };
    }
    return this.infer(top[0]!);
  }

  infer(node: SyntaxNode): Value {
    switch (node.name) {
      case "NumberDurationLiteral":
        return { type: "scalar" };
      case "StringLiteral":
        return { type: "string" };
      case "ParenExpr":
      case "UnaryExpr":
      case "OffsetExpr":
      case "StepInvariantExpr":
      case "SubqueryExpr":
      case "MatrixSelector":
        return this.infer(this.expressionChildren(node)[0]!);
      case "VectorSelector":
        return this.selector(node);
      case "FunctionCall":
        return this.functionCall(node);
      case "AggregateExpr":
        return this.aggregate(node);
      case "BinaryExpr":
        return this.binary(node);
      default:
        this.problem(node, `unsupported PromQL node ${node.name}: teach this test about it`);
        return vector([]);
    }
  }

  private selector(node: SyntaxNode): Value {
    const id = node.getChild("Identifier");
    if (!id) {
      this.problem(node, "a selector without metric name");
      return vector(TARGET_LABELS);
    }
    const name = this.text(id);
    this.metricsUsed.add(name);
    if (!this.exp.names.has(name)) this.problem(node, `metric ${name} is not exported by OperatorMetrics`);
    const own = this.exp.labels.get(name);
    if (this.exp.names.has(name) && !own) this.problem(node, `metric ${name} had no series in the exercised registry: its labels are unknown`);
    const labels = vector([...(own ?? []), ...TARGET_LABELS]);
    for (const matcher of node.getChild("LabelMatchers") ? childrenOf(node.getChild("LabelMatchers")!) : []) {
      const label = matcher.getChild("LabelName");
      if (!label) {
        this.problem(matcher, "a quoted or unnamed label matcher");
        continue;
      }
      this.requireLabels(matcher, [this.text(label)], labels, `a matcher of ${name}`);
    }
    return labels;
  }

  private functionCall(node: SyntaxNode): Value {
    const fn = this.text(node.getChild("FunctionIdentifier")!);
    const body = node.getChild("FunctionCallBody");
    const argNodes = body ? this.expressionChildren(body) : [];
    const args = argNodes.map((a) => this.infer(a));
    const vectors = args.filter((a): a is Extract<Value, { type: "vector" }> => a.type === "vector");
    switch (fn) {
      case "time":
      case "scalar":
      case "pi":
        return { type: "scalar" };
      case "vector":
        return vector([]);
      case "absent":
      case "absent_over_time": {
        // The result carries the labels of the selector's equality matchers only.
        const sel = argNodes[0]?.name === "VectorSelector" ? argNodes[0] : argNodes[0]?.getChild("VectorSelector");
        const eq = sel?.getChild("LabelMatchers")
          ? childrenOf(sel.getChild("LabelMatchers")!)
              .filter((m) => m.getChild("MatchOp")?.getChild("EqlSingle"))
              .map((m) => this.text(m.getChild("LabelName")!))
          : [];
        return vector(eq);
      }
      case "histogram_quantile": {
        const v = vectors[0];
        if (!v) return vector([]);
        this.requireLabels(node, ["le"], v, "histogram_quantile");
        return vector([...v.labels].filter((l) => l !== "le"));
      }
      case "label_replace":
      case "label_join": {
        const dst = args[1]?.type === "string" && argNodes[1] ? JSON.parse(this.text(argNodes[1])) : undefined;
        return vector([...(vectors[0]?.labels ?? []), ...(typeof dst === "string" ? [dst] : [])]);
      }
      default:
        return vectors[0] ? vector(vectors[0].labels) : { type: "scalar" };
    }
  }

  private aggregate(node: SyntaxNode): Value {
    const body = node.getChild("FunctionCallBody");
    const args = body ? this.expressionChildren(body).map((a) => this.infer(a)) : [];
    const input = [...args].reverse().find((a) => a.type === "vector") ?? vector([]);
    const modifier = node.getChild("AggregateModifier");
    if (!modifier) return vector([]);
    const labels = this.groupingLabels(modifier.getChild("GroupingLabels"));
    if (modifier.getChild("By")) {
      this.requireLabels(modifier, labels, input, "by (...)");
      return vector(labels);
    }
    this.requireLabels(modifier, labels, input, "without (...)");
    return input.type === "vector" ? vector([...input.labels].filter((l) => !labels.includes(l))) : vector([]);
  }

  private binary(node: SyntaxNode): Value {
    const [lhsNode, rhsNode] = [this.expressionChildren(node)[0]!, this.expressionChildren(node).at(-1)!];
    const lhs = this.infer(lhsNode);
    const rhs = this.infer(rhsNode);
    const op = childrenOf(node).find((c) => !EXPRESSIONS.has(c.name) && c.name !== "BoolModifier" && c.name !== "MatchingModifierClause")?.name ?? "";
    if (lhs.type !== "vector") return rhs.type === "vector" ? rhs : { type: "scalar" };
    if (rhs.type !== "vector") return lhs;
    const clause = node.getChild("MatchingModifierClause");
    const groups = clause ? clause.getChildren("GroupingLabels") : [];
    const matching = this.groupingLabels(groups[0]);
    if (clause?.getChild("On")) {
      this.requireLabels(clause, matching, lhs, "on (...) (left side)");
      this.requireLabels(clause, matching, rhs, "on (...) (right side)");
    }
    if (SET_OPERATORS.has(op)) return op === "Or" ? vector([...lhs.labels, ...rhs.labels]) : lhs;
    const extra = this.groupingLabels(groups[1]);
    if (clause?.getChild("GroupLeft")) {
      this.requireLabels(clause, extra, rhs, "group_left (...)");
      return vector([...lhs.labels, ...extra]);
    }
    if (clause?.getChild("GroupRight")) {
      this.requireLabels(clause, extra, lhs, "group_right (...)");
      return vector([...rhs.labels, ...extra]);
    }
    // One-to-one: on() keeps only the matching labels, ignoring() drops them.
    if (clause?.getChild("On")) return vector(matching);
    if (clause?.getChild("Ignoring")) return vector([...lhs.labels].filter((l) => !matching.includes(l)));
    return lhs;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The runbook

/** GitHub's heading anchors: lower case, punctuation but - and _ dropped, spaces to -, repeats numbered. */
function anchorsOf(markdown: string): { anchors: Set<string>; headings: { level: number; text: string; anchor: string }[] } {
  const seen = new Map<string, number>();
  const headings: { level: number; text: string; anchor: string }[] = [];
  let fenced = false;
  for (const line of markdown.split("\n")) {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    const m = fenced ? null : /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const text = m[2]!;
    const plain = text.replace(/\[([^\]]*)\]\([^)]*\)/g, "$1").replace(/[`*]/g, "");
    const base = plain
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    headings.push({ level: m[1]!.length, text, anchor: n === 0 ? base : `${base}-${n}` });
  }
  return { anchors: new Set(headings.map((h) => h.anchor)), headings };
}

// ---------------------------------------------------------------------------------------------------------------
// The manifests

interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

interface RuleGroup {
  name: string;
  rules: (AlertRule | { record: string; expr: string })[];
}

const readYaml = (file: string): Record<string, unknown> => parseYaml(readFileSync(join(MONITORING, file), "utf8")) as Record<string, unknown>;
const rule = readYaml("prometheusrule.yaml") as { apiVersion: string; kind: string; metadata: { name: string; namespace: string }; spec: { groups: RuleGroup[] } };
const alerts: AlertRule[] = rule.spec.groups.flatMap((g) => g.rules.filter((r): r is AlertRule => "alert" in r));
const runbook = readFileSync(RUNBOOK_PATH, "utf8");
const { anchors, headings } = anchorsOf(runbook);
const anchorOf = (a: AlertRule): string => (a.annotations?.runbook_url ?? "").slice(RUNBOOK_URL.length);

describe("deploy/monitoring", () => {
  let exp: Exported;
  before(async () => {
    exp = await exported();
  });

  describe("the PrometheusRule", () => {
    it("is a monitoring.coreos.com/v1 PrometheusRule in the operator's namespace with uniquely named groups of alerts", () => {
      expect(rule.apiVersion).to.equal("monitoring.coreos.com/v1");
      expect(rule.kind).to.equal("PrometheusRule");
      expect(rule.metadata.namespace).to.equal("imaging-db-mtls-operator");
      const groups = rule.spec.groups.map((g) => g.name);
      expect(new Set(groups).size).to.equal(groups.length);
      expect(alerts.length).to.be.greaterThan(0);
    });

    it("knows every exported metric it relies on (sanity of the exercised registry)", () => {
      for (const name of ["imaging_mtls_certificate_expiry_timestamp_seconds", "imaging_mtls_reconcile_duration_seconds_bucket", "imaging_mtls_operator_nodejs_eventloop_lag_p99_seconds"]) {
        expect(exp.names.has(name), name).to.equal(true);
      }
      expect([...exp.labels.get("imaging_mtls_certificate_expiry_timestamp_seconds")!].sort()).to.deep.equal(["kind", "name", "namespace", "role"]);
      expect([...exp.labels.get("imaging_mtls_reconcile_duration_seconds_bucket")!].sort()).to.deep.equal(["kind", "le"]);
      expect([...exp.labels.get("imaging_mtls_workqueue_depth")!]).to.deep.equal(["queue"]);
      expect([...exp.labels.get("imaging_mtls_reconcile_errors_total")!].sort()).to.deep.equal(["kind", "reason"]);
    });

    for (const a of alerts) {
      const severity = a.labels?.severity ?? "?";
      describe(`${a.alert} (${severity})`, () => {
        it("parses, and uses only exported metrics and labels that exist where they are used", () => {
          const checker = new ExprChecker(a.expr, exp);
          checker.check();
          expect(checker.problems, a.expr).to.deep.equal([]);
          expect(checker.metricsUsed.size).to.be.greaterThan(0);
        });

        it("prints in its annotations only labels its expression's result keeps", () => {
          const checker = new ExprChecker(a.expr, exp);
          const result = checker.check();
          const kept = result.type === "vector" ? result.labels : new Set<string>();
          for (const [key, text] of Object.entries(a.annotations ?? {})) {
            expect(text.split("{{").length, `${key}: unbalanced {{ }}`).to.equal(text.split("}}").length);
            for (const m of text.matchAll(/\$labels\.([A-Za-z_][A-Za-z0-9_]*)/g)) {
              expect(kept.has(m[1]!), `${key} prints $labels.${m[1]}, which the result [${[...kept].sort().join(", ")}] does not have`).to.equal(true);
            }
          }
        });

        it("has a severity, a summary, a description, a for duration and a runbook_url whose section exists", () => {
          expect(SEVERITIES).to.include(a.labels?.severity);
          expect(a.annotations?.summary ?? "").to.match(/\S/);
          expect(a.annotations?.description ?? "").to.match(/\S{3,}/);
          expect(a.for ?? "").to.match(/^(\d+[smhd])+$/);
          expect(a.annotations?.runbook_url ?? "").to.satisfy((u: string) => u.startsWith(RUNBOOK_URL));
          expect([...anchors], `docs/runbook.md has no heading with anchor #${anchorOf(a)}`).to.include(anchorOf(a));
        });

        it("links to the runbook section named after it", () => {
          expect(anchorOf(a)).to.equal(a.alert.toLowerCase());
        });
      });
    }

    it("gives every rule of one alert name the same runbook section and a distinct severity", () => {
      const byName = new Map<string, AlertRule[]>();
      for (const a of alerts) byName.set(a.alert, [...(byName.get(a.alert) ?? []), a]);
      for (const [name, rules] of byName) {
        expect(new Set(rules.map(anchorOf)).size, name).to.equal(1);
        expect(new Set(rules.map((r) => r.labels?.severity)).size, name).to.equal(rules.length);
      }
    });
  });

  describe("the checker itself", () => {
    const problems = (expr: string): string[] => {
      const c = new ExprChecker(expr, exp);
      c.check();
      return c.problems;
    };

    it("accepts what the operator exports, histogram suffixes and target labels included", () => {
      expect(problems('sum by (kind, le) (rate(imaging_mtls_reconcile_duration_seconds_bucket{kind="SecureDatabase"}[5m]))')).to.deep.equal([]);
      expect(problems("imaging_mtls_reconcile_duration_seconds_count / imaging_mtls_reconcile_duration_seconds_sum")).to.deep.equal([]);
      expect(problems('absent(up{job="x"} == 1)')).to.deep.equal([]);
    });

    it("rejects a syntax error, an unknown metric, and labels that are not there", () => {
      expect(problems("imaging_mtls_workqueue_depth >")).to.have.length.greaterThan(0);
      expect(problems("imaging_mtls_certificate_expiry_seconds")[0]).to.match(/not exported/);
      expect(problems('imaging_mtls_workqueue_depth{kind="x"}')[0]).to.match(/label "kind"/);
      expect(problems("sum by (role) (imaging_mtls_last_verification_success_timestamp_seconds)")[0]).to.match(/label "role"/);
      expect(problems("imaging_mtls_workqueue_depth and on (name) imaging_mtls_certificate_expiry_timestamp_seconds")[0]).to.match(/label "name" of on/);
      expect(problems("histogram_quantile(0.9, sum by (kind) (rate(imaging_mtls_reconcile_duration_seconds_bucket[5m])))")[0]).to.match(/label "le"/);
    });

    it("follows the labels through aggregations and vector matching", () => {
      const labels = (expr: string): string[] => {
        const v = new ExprChecker(expr, exp).check();
        return v.type === "vector" ? [...v.labels].sort() : [v.type];
      };
      expect(labels("max by (kind, name) (imaging_mtls_certificate_expiry_timestamp_seconds) - time() < 3")).to.deep.equal(["kind", "name"]);
      expect(labels("sum(imaging_mtls_reconcile_total)")).to.deep.equal([]);
      expect(labels("imaging_mtls_workqueue_depth * on (instance) imaging_mtls_workqueue_retrying")).to.deep.equal(["instance"]);
      expect(labels('absent(up{job="a", instance=~"b"})')).to.deep.equal(["job"]);
      expect(labels("time()")).to.deep.equal(["scalar"]);
    });
  });

  describe("the runbook", () => {
    const alertSections = headings.filter((h) => h.level === 2 && /^ImagingMtls[A-Za-z]+$/.test(h.text));

    it("has a general triage section first and one section per alert name", () => {
      expect(headings.filter((h) => h.level === 2)[0]?.text).to.equal("General triage");
      expect(alertSections.map((h) => h.text).sort()).to.deep.equal([...new Set(alerts.map((a) => a.alert))].sort());
    });

    it("has no alert section that no alert links to", () => {
      const linked = new Set(alerts.map(anchorOf));
      for (const h of alertSections) expect(linked.has(h.anchor), `section "${h.text}" is not linked from any alert`).to.equal(true);
    });

    it("has every in-page link point at a heading", () => {
      for (const m of runbook.matchAll(/\]\(#([^)]+)\)/g)) expect([...anchors], `link #${m[1]}`).to.include(m[1]);
    });

    it("names only metrics the operator exports", () => {
      const text = runbook + readFileSync(join(MONITORING, "prometheusrule.yaml"), "utf8");
      for (const m of text.matchAll(/\bimaging_mtls_[a-z0-9_]*[a-z0-9]\b/g)) expect(exp.names.has(m[0]), m[0]).to.equal(true);
    });

    it("tells, for each alert, what it means, the impact on CAST Imaging and what to run first", () => {
      for (const h of alertSections) {
        const start = runbook.indexOf(`## ${h.text}\n`);
        const end = runbook.indexOf("\n## ", start + 1);
        const section = runbook.slice(start, end < 0 ? undefined : end);
        expect(section, h.text).to.include("**What it means.**");
        expect(section, h.text).to.include("**Impact on CAST Imaging.**");
        expect(section, h.text).to.include("**What to run first.**");
      }
    });
  });

  describe("the ServiceMonitor and the kustomization", () => {
    it("scrapes /metrics on port http-metrics of the operator's Service, keeping the exported namespace label", () => {
      const sm = readYaml("servicemonitor.yaml") as {
        apiVersion: string;
        kind: string;
        metadata: { namespace: string };
        spec: { selector: { matchLabels: Record<string, string> }; namespaceSelector: { matchNames: string[] }; endpoints: { port: string; path: string; honorLabels: boolean }[] };
      };
      expect([sm.apiVersion, sm.kind, sm.metadata.namespace]).to.deep.equal(["monitoring.coreos.com/v1", "ServiceMonitor", "imaging-db-mtls-operator"]);
      expect(sm.spec.selector.matchLabels).to.deep.equal({ "app.kubernetes.io/name": "imaging-db-mtls-operator" });
      expect(sm.spec.namespaceSelector.matchNames).to.deep.equal(["imaging-db-mtls-operator"]);
      expect(sm.spec.endpoints).to.have.length(1);
      expect(sm.spec.endpoints[0]).to.include({ port: "http-metrics", path: "/metrics", honorLabels: true });
    });

    it("selects the metrics Service the operator ships (deploy/), by label, in its namespace, with port http-metrics", () => {
      const manifests: string[] = [];
      const walk = (dir: string): void => {
        for (const e of readdirSync(dir, { withFileTypes: true })) {
          if (e.isDirectory() && e.name !== "monitoring") walk(join(dir, e.name));
          else if (e.isFile() && /\.ya?ml$/.test(e.name)) manifests.push(join(dir, e.name));
        }
      };
      walk(join(REPO, "deploy"));
      type Service = { kind?: string; metadata?: { name?: string; namespace?: string; labels?: Record<string, string> }; spec?: { ports?: { name?: string }[] } };
      const services = manifests
        .flatMap((f) => parseAllDocuments(readFileSync(f, "utf8")).map((d) => ({ file: f, doc: d.toJS() as Service | null })))
        .filter(({ doc }) => doc?.kind === "Service" && doc.metadata?.namespace === "imaging-db-mtls-operator" && doc.metadata.labels?.["app.kubernetes.io/name"] === "imaging-db-mtls-operator");
      expect(services, "a Service labelled app.kubernetes.io/name: imaging-db-mtls-operator in deploy/").to.not.be.empty;
      for (const { file, doc } of services) expect((doc?.spec?.ports ?? []).map((p) => p.name), file).to.include("http-metrics");
    });

    it("lists every manifest of the folder", () => {
      const k = readYaml("kustomization.yaml") as { kind: string; resources: string[] };
      expect(k.kind).to.equal("Kustomization");
      const manifests = readdirSync(MONITORING).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml");
      expect([...k.resources].sort()).to.deep.equal(manifests.sort());
    });
  });
});
