/**
 * The shipped alerts (deploy/monitoring/) against what the operator really exports and what the runbook really
 * says: every expression parses as PromQL (the Prometheus project's own grammar), uses only metrics and labels that
 * OperatorMetrics exports (or the labels Prometheus adds to every scraped series), and keeps, after its
 * aggregations and vector matching, every label its annotations print; every alert has a severity, a summary, a
 * description and a runbook link to a section that exists, and every alert section of the runbook is linked.
 * The PromQL checker and the exported metrics are test/support/promql.ts, shared with dashboard.test.ts.
 */
import { expect } from "chai";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parse as parseYaml, parseAllDocuments } from "yaml";
import { ExprChecker, exported, type Exported } from "../../support/promql";

const REPO = resolve(__dirname, "..", "..", "..");
const MONITORING = join(REPO, "deploy", "monitoring");
const RUNBOOK_PATH = join(REPO, "docs", "runbook.md");
const RUNBOOK_URL = "https://github.com/imaging-db-mtls-operator/imaging-db-mtls-operator/blob/main/docs/runbook.md#";
const SEVERITIES = ["warning", "critical"];

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
