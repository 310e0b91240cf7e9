/**
 * PromQL against what the operator really exports, shared by the tests of deploy/monitoring/ (the PrometheusRule
 * and the Grafana dashboard): `exported()` builds OperatorMetrics as the operator does, makes every kind of series
 * exist through its public API and reads the registry back; `ExprChecker` parses an expression with the Prometheus
 * project's own grammar (@prometheus-io/lezer-promql), reports syntax errors, unknown metrics and labels used where
 * they are not, and infers the labels the result keeps.
 */
import { parser } from "@prometheus-io/lezer-promql";
import { OperatorMetrics } from "../../src/observability/metrics";
import { WorkQueue } from "../../src/runtime/workqueue";
import { imc, sdb } from "../unit/api/builders";

/**
 * Labels Prometheus puts on every series of a target: job and instance always; namespace, service, pod, container
 * and endpoint from the ServiceMonitor (servicemonitor.yaml keeps the exported namespace label with honorLabels).
 */
export const TARGET_LABELS = ["job", "instance", "namespace", "service", "pod", "container", "endpoint"];

type SyntaxNode = ReturnType<typeof parser.parse>["topNode"];

// ---------------------------------------------------------------------------------------------------------------
// What the operator exports

export interface Exported {
  /** Every series name /metrics can show (histogram buckets, sums and counts included). */
  names: Set<string>;
  /** Label names seen on each series name once every kind of series exists. */
  labels: Map<string, Set<string>>;
}

export async function exported(): Promise<Exported> {
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
    serverCertificate: { notAfter: "2027-01-01T00:00:00Z", renewalTime: "2026-12-02T00:00:00Z" },
    verification: { lastSuccessTime: "2026-11-23T12:00:00Z" },
  };
  metrics.observeSecureDatabase(db);
  const conn = imc();
  conn.status = {
    certificate: { notAfter: "2027-01-01T00:00:00Z", renewalTime: "2026-12-02T00:00:00Z" },
    verification: { lastSuccessTime: "2026-11-23T12:00:00Z" },
  };
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

export type Value = { type: "scalar" } | { type: "string" } | { type: "vector"; labels: Set<string> };

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
/** Aggregations that select series rather than combine them: the result keeps the input's labels. */
const SELECTING_AGGREGATIONS = new Set(["Topk", "Bottomk", "LimitK", "LimitRatio"]);

function childrenOf(node: SyntaxNode): SyntaxNode[] {
  const out: SyntaxNode[] = [];
  for (let c = node.firstChild; c; c = c.nextSibling) out.push(c);
  return out;
}

const vector = (labels: Iterable<string>): Value => ({ type: "vector", labels: new Set(labels) });

export class ExprChecker {
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
    const selecting = SELECTING_AGGREGATIONS.has(node.getChild("AggregateOp")?.firstChild?.name ?? "");
    const kept = input.type === "vector" ? vector(input.labels) : vector([]);
    const modifier = node.getChild("AggregateModifier");
    if (!modifier) return selecting ? kept : vector([]);
    const labels = this.groupingLabels(modifier.getChild("GroupingLabels"));
    if (modifier.getChild("By")) {
      this.requireLabels(modifier, labels, input, "by (...)");
      return selecting ? kept : vector(labels);
    }
    this.requireLabels(modifier, labels, input, "without (...)");
    if (selecting) return kept;
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
