/**
 * Least privilege, proven on the whole integration run: every grant in the shipped RBAC (deploy/rbac/*.yaml) was
 * used by the operator, and no request of the operator was refused (403) for want of a grant, so every scenario of
 * the suite ran with exactly the shipped roles. It reads the API server's audit log, so it must run last, after
 * every other file of the suite (test/mocharc.integration.json orders it so); run alone or with part of the suite
 * it skips and says why.
 */
import { expect } from "chai";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join, relative, resolve } from "node:path";
import { parseAllDocuments } from "yaml";
import { OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT, OPERATOR_USER, type AuditEvent } from "../support/controlplane";
import { controlPlane } from "../support/hooks";

const REPO = resolve(__dirname, "..", "..");
const RBAC_DIR = join(REPO, "deploy", "rbac");
const INTEGRATION_DIR = __dirname;
/** The verbs a resource request is authorized for (the audit log records the same names). */
const RESOURCE_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"] as const;
/** The groups the operator's token authenticates with (test/support/controlplane.ts), as RBAC subjects may name them. */
const OPERATOR_GROUPS = ["system:serviceaccounts", `system:serviceaccounts:${OPERATOR_NAMESPACE}`, "system:authenticated"];

type Event = AuditEvent & { userAgent?: string; requestURI?: string };

interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}
interface RoleDoc {
  kind: "Role" | "ClusterRole";
  metadata: { name: string; namespace?: string };
  rules?: PolicyRule[];
}
interface BindingDoc {
  kind: "RoleBinding" | "ClusterRoleBinding";
  metadata: { name: string; namespace?: string };
  roleRef: { kind: "Role" | "ClusterRole"; name: string };
  subjects?: { kind: string; name: string; namespace?: string }[];
}

/** One (apiGroup, resource[/subresource], verb) a shipped role grants, and where (a namespace, or everywhere). */
interface Grant {
  apiGroup: string;
  resource: string;
  verb: string;
  resourceNames?: string[];
  /** undefined: every namespace and cluster-scoped objects (a ClusterRoleBinding). */
  namespace?: string;
  /** Which role, through which binding, in the file it came from. */
  source: string;
}

const groupName = (g: string | undefined): string => (g ? g : "core");

/** Every Role/ClusterRole and binding in deploy/rbac/*.yaml (the kustomization file, which has no .yaml name, is not a manifest). */
function shippedRbac(): { roles: (RoleDoc & { file: string })[]; bindings: (BindingDoc & { file: string })[] } {
  const roles: (RoleDoc & { file: string })[] = [];
  const bindings: (BindingDoc & { file: string })[] = [];
  for (const file of readdirSync(RBAC_DIR).filter((f) => /\.ya?ml$/.test(f)).sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(RBAC_DIR, file), "utf8"))) {
      if (doc.errors.length > 0) throw new Error(`deploy/rbac/${file}: ${doc.errors.map((e) => e.message).join("; ")}`);
      const obj = doc.toJS() as { kind?: string } | null;
      if (obj?.kind === "Role" || obj?.kind === "ClusterRole") roles.push({ ...(obj as RoleDoc), file });
      if (obj?.kind === "RoleBinding" || obj?.kind === "ClusterRoleBinding") bindings.push({ ...(obj as BindingDoc), file });
    }
  }
  return { roles, bindings };
}

/** `kubectl apply -f deploy/rbac` (what the suite's root hook does) puts a namespaced object without a namespace in "default". */
const namespaceOf = (o: { metadata: { namespace?: string } }): string => o.metadata.namespace ?? "default";

const bindsOperator = (b: BindingDoc): boolean =>
  (b.subjects ?? []).some(
    (s) =>
      (s.kind === "ServiceAccount" && s.name === OPERATOR_SERVICE_ACCOUNT && (s.namespace ?? namespaceOf(b)) === OPERATOR_NAMESPACE) ||
      (s.kind === "User" && s.name === OPERATOR_USER) ||
      (s.kind === "Group" && OPERATOR_GROUPS.includes(s.name)),
  );

/** The grants the operator holds through the shipped roles, plus whatever in them is not least privilege. */
function shippedGrants(): { grants: Grant[]; problems: string[] } {
  const { roles, bindings } = shippedRbac();
  const grants: Grant[] = [];
  const problems: string[] = [];
  for (const role of roles) {
    const label = `${role.kind} ${role.kind === "Role" ? `${namespaceOf(role)}/` : ""}${role.metadata.name} (deploy/rbac/${role.file})`;
    // Where this role applies to the operator: a ClusterRole through a ClusterRoleBinding everywhere; a Role, or a
    // ClusterRole through a RoleBinding, in the binding's namespace only (a RoleBinding may only name a Role of its own namespace).
    const scopes: { namespace?: string; via: string }[] = [];
    for (const b of bindings.filter((x) => x.roleRef.kind === role.kind && x.roleRef.name === role.metadata.name && bindsOperator(x))) {
      if (b.kind === "ClusterRoleBinding" && role.kind === "ClusterRole") scopes.push({ via: `ClusterRoleBinding ${b.metadata.name}` });
      if (b.kind === "RoleBinding" && (role.kind === "ClusterRole" || namespaceOf(role) === namespaceOf(b))) {
        scopes.push({ namespace: namespaceOf(b), via: `RoleBinding ${namespaceOf(b)}/${b.metadata.name}` });
      }
    }
    if (scopes.length === 0) {
      problems.push(`${label} is not bound to the operator's ServiceAccount ${OPERATOR_NAMESPACE}/${OPERATOR_SERVICE_ACCOUNT}: it grants nothing, ship it bound or not at all`);
      continue;
    }
    for (const [i, rule] of (role.rules ?? []).entries()) {
      if (rule.nonResourceURLs?.length) problems.push(`${label} rule ${i}: nonResourceURLs ${JSON.stringify(rule.nonResourceURLs)}: the operator requests no non-resource URL`);
      const wild = [...(rule.apiGroups ?? []), ...(rule.resources ?? []), ...(rule.verbs ?? [])].filter((x) => x.includes("*"));
      if (wild.length > 0) {
        problems.push(`${label} rule ${i}: wildcard ${JSON.stringify(wild)} is not least privilege: list the groups, resources and verbs`);
        continue;
      }
      for (const verb of rule.verbs ?? []) {
        if (!(RESOURCE_VERBS as readonly string[]).includes(verb)) problems.push(`${label} rule ${i}: verb "${verb}" is not a resource verb the operator can use`);
      }
      for (const scope of scopes) {
        for (const apiGroup of rule.apiGroups ?? []) {
          for (const resource of rule.resources ?? []) {
            for (const verb of rule.verbs ?? []) {
              grants.push({ apiGroup: groupName(apiGroup), resource, verb, ...(rule.resourceNames?.length ? { resourceNames: rule.resourceNames } : {}), ...(scope.namespace ? { namespace: scope.namespace } : {}), source: `${label} via ${scope.via}` });
            }
          }
        }
      }
    }
  }
  return { grants, problems };
}

const resourceOf = (e: Event): string => `${e.objectRef?.resource ?? ""}${e.objectRef?.subresource ? `/${e.objectRef.subresource}` : ""}`;

/**
 * The verbs a request was authorized for. A patch or update that creates the object (server-side apply of an object
 * that does not exist yet, answered 201) is authorized a second time, inside the handler, for "create"
 * (k8s.io/apiserver endpoints/handlers/patch.go: withAuthorization(..., createAuthorizerAttributes)); the audit log
 * records it once, with the request's verb.
 */
const authorizedVerbs = (e: Event): string[] => ((e.verb === "patch" || e.verb === "update") && e.responseStatus?.code === 201 ? [e.verb, "create"] : [e.verb]);

/** Does this grant authorize this request? */
function covers(g: Grant, e: Event): boolean {
  if (!e.objectRef?.resource) return false;
  if (g.apiGroup !== groupName(e.objectRef.apiGroup) || g.resource !== resourceOf(e) || !authorizedVerbs(e).includes(g.verb)) return false;
  if (g.namespace !== undefined && e.objectRef.namespace !== g.namespace) return false;
  if (g.resourceNames && !(e.objectRef.name && g.resourceNames.includes(e.objectRef.name))) return false;
  return true;
}

const describeRequest = (e: Event): string =>
  `${e.verb} ${groupName(e.objectRef?.apiGroup)}/${resourceOf(e) || e.requestURI}${e.objectRef?.namespace ? ` in ${e.objectRef.namespace}` : ""}${e.objectRef?.name ? ` name ${e.objectRef.name}` : ""} at ${e.requestReceivedTimestamp} (${e.requestURI})`;

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n");
}

/** Every integration test file mocha should load for a whole run (this directory, recursively). */
function integrationFiles(dir = INTEGRATION_DIR): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? integrationFiles(join(dir, d.name)) : d.name.endsWith(".test.ts") ? [join(dir, d.name)] : []));
}

describe("RBAC audit of the whole integration run: the shipped roles are exactly what the operator used", function () {
  this.timeout(60_000);
  let events: Event[];
  let operatorEvents: Event[];
  let grants: Grant[];
  let problems: string[];

  before(function () {
    // This audits what the whole suite did: it needs every other file to have run before it, in this process.
    let root = this.test!.parent!;
    while (root.parent) root = root.parent;
    const loaded = new Set(root.suites.map((s) => s.file).filter((f): f is string => !!f).map((f) => resolve(f)));
    // A file created after this process started cannot be part of this run (someone is adding tests meanwhile).
    const createdDuringRun = (f: string) => statSync(f).birthtimeMs > performance.timeOrigin;
    const missing = integrationFiles().filter((f) => resolve(f) !== resolve(__filename) && !loaded.has(resolve(f)) && !createdDuringRun(f));
    if (missing.length > 0) {
      console.log(
        `\n      SKIPPED: ${basename(__filename)} audits the API requests of the WHOLE integration suite (every grant in deploy/rbac must be used by some test), ` +
          `so it only means something after all of it ran; ${loaded.size <= 1 ? "it ran alone" : `this run left out ${missing.map((f) => relative(REPO, f)).join(", ")}`}. ` +
          "Run `npm run test:integration`, which orders this file last.\n",
      );
      this.skip();
    }
    const last = root.suites[root.suites.length - 1];
    if (!last?.file || resolve(last.file) !== resolve(__filename)) {
      throw new Error(
        `${basename(__filename)} must run after every other integration test file (it audits the whole run), but ${last?.file ? relative(REPO, last.file) : "another suite"} runs after it: ` +
          `list it last in test/mocharc.integration.json's "spec", and keep it out of the glob before it`,
      );
    }
  });

  before(async () => {
    events = (await controlPlane().auditEvents(OPERATOR_USER)) as Event[];
    // The suite itself uses the operator's token with kubectl to show that RBAC is enforced (fixtures.test.ts
    // expects a 403 for pods): those requests are the harness's, not the operator's.
    operatorEvents = events.filter((e) => !e.userAgent?.startsWith("kubectl/"));
    ({ grants, problems } = shippedGrants());
  });

  it("lists what the operator used (apiGroup, resource, verb), with the shipped grant that allowed it", () => {
    const used = new Map<string, { apiGroup: string; resource: string; verb: string; count: number; byApply: number; namespaces: Set<string>; by: Set<string> }>();
    for (const e of operatorEvents) {
      if (!e.objectRef?.resource || e.responseStatus?.code === 403) continue;
      for (const verb of authorizedVerbs(e)) {
        const key = `${groupName(e.objectRef.apiGroup)} ${resourceOf(e)} ${verb}`;
        const u = used.get(key) ?? { apiGroup: groupName(e.objectRef.apiGroup), resource: resourceOf(e), verb, count: 0, byApply: 0, namespaces: new Set<string>(), by: new Set<string>() };
        u.count++;
        if (verb !== e.verb) u.byApply++;
        u.namespaces.add(e.objectRef.namespace ?? "(all / cluster)");
        for (const g of grants.filter((x) => x.verb === verb && covers(x, e))) u.by.add(g.source.replace(/ \(deploy\/rbac\/[^)]*\)/, ""));
        used.set(key, u);
      }
    }
    const rows = [...used.values()].sort((a, b) => a.apiGroup.localeCompare(b.apiGroup) || a.resource.localeCompare(b.resource) || RESOURCE_VERBS.indexOf(a.verb as never) - RESOURCE_VERBS.indexOf(b.verb as never));
    const harness = events.length - operatorEvents.length;
    console.log(
      `\n      The operator's requests in this run: ${operatorEvents.length} (audit log ${controlPlane().auditLogPath}; ${harness} more with its token by kubectl, the suite's own RBAC probes, left out)\n` +
        table([["apiGroup", "resource", "verb", "requests", "namespaces", "allowed by"], ...rows.map((r) => [r.apiGroup, r.resource, r.verb, `${r.count}${r.byApply ? ` (${r.byApply} by a patch that created)` : ""}`, String(r.namespaces.size), [...r.by].join("; ") || "(no shipped grant: a default role)"])])
          .split("\n")
          .map((l) => `      ${l}`)
          .join("\n") +
        "\n",
    );
    expect(operatorEvents.length, "no request of the operator in the audit log: did the suite run the operator?").to.be.greaterThan(0);
    expect(rows.length).to.be.greaterThan(0);
  });

  it("ships no role the operator does not hold and no wildcard", () => {
    expect(problems).to.deep.equal([]);
  });

  it("every shipped grant was used by the operator somewhere in the suite (in the namespace its Role applies to)", () => {
    const unused = grants.filter((g) => !operatorEvents.some((e) => e.responseStatus?.code !== 403 && covers(g, e)));
    const leaseRequests = operatorEvents.filter((e) => e.objectRef?.resource === "leases").length;
    expect(
      unused.map((g) => `${g.verb} ${g.apiGroup}/${g.resource}${g.resourceNames ? ` ${JSON.stringify(g.resourceNames)}` : ""} ${g.namespace ? `in namespace ${g.namespace}` : "(cluster-wide)"}: granted by ${g.source}, never used`),
      `grants no test exercised: remove them from deploy/rbac, or add the scenario that needs them (lease requests by the operator in this run: ${leaseRequests})`,
    ).to.deep.equal([]);
  });

  it("no request of the operator was refused (403) for want of a grant: every scenario ran with the shipped roles alone", () => {
    // An admission policy's refusal is a 403 too (admission-policy.test.ts shows the operator's identity may not change
    // a connection's spec): that is the policy working, not a grant missing.
    const byAdmission = (e: Event) => /ValidatingAdmissionPolicy/.test(e.responseStatus?.message ?? "");
    const refused = operatorEvents.filter((e) => e.responseStatus?.code === 403 && !byAdmission(e));
    // A refusal the shipped roles do not cover: a grant is missing (or the operator asked for something it should not).
    const notGranted = refused.filter((e) => !grants.some((g) => covers(g, e)));
    expect(notGranted.map(describeRequest), "requests the shipped RBAC does not allow").to.deep.equal([]);
    // A refusal of what the shipped roles do grant happens only while a restarting API server has not loaded its RBAC
    // authorizer yet (chaos-apiserver.test.ts restarts it): the same request must have been allowed again afterwards.
    const key = (e: Event) => `${e.verb} ${groupName(e.objectRef?.apiGroup)}/${resourceOf(e)} ${e.objectRef?.namespace ?? ""}/${e.objectRef?.name ?? ""}`;
    const transient = refused.filter((e) => !notGranted.includes(e));
    const neverAllowed = transient.filter((e) => !operatorEvents.some((x) => key(x) === key(e) && x.responseStatus?.code !== 403 && x.requestReceivedTimestamp > e.requestReceivedTimestamp));
    if (transient.length > 0) {
      console.log(`      ${transient.length} request(s) refused although the shipped roles grant them (an API server that had not loaded its RBAC authorizer yet):\n${transient.map((e) => `        ${describeRequest(e)}`).join("\n")}`);
    }
    expect(neverAllowed.map(describeRequest), "refused although granted, and never allowed afterwards: the grant does not work as shipped").to.deep.equal([]);
  });
});
