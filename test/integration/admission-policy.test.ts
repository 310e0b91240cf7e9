/**
 * The admission policies of deploy/admission (as rendered into deploy/install.yaml) on the real API server, with
 * tenants acting through `kubectl --as` and RBAC Roles like a real tenant's, and the operator's own identity. The
 * operator does not run: what is judged here is what `kubectl apply` answers, and that nothing was stored. The
 * grants policy must refuse exactly what decideAccess (src/api/access.ts) refuses, with its reason and message.
 * The bindings are narrowed to this file's namespaces so the rest of the suite, sharing the API server, is not judged.
 */
import { expect } from "chai";
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import { decideAccess } from "../../src/api/access";
import type { SecureDatabase } from "../../src/api/types";
import { FINALIZER } from "../../src/api/common";
import { MERGE_PATCH, RestClient, type ResourceType } from "../../src/kube/rest";
import { OPERATOR_USER, type ControlPlane } from "../support/controlplane";
import { controlPlane } from "../support/hooks";
import { getJson, kubectlOk } from "../support/kubectl-json";
import { castImagingWorkloads, databaseWithGrants } from "../support/manifests";
import { waitFor, type RunResult } from "../support/process";

const REPO = resolve(__dirname, "..", "..");
const GRANTS = "imaging-db-mtls-connection-grants";
const AUTHORIZATION = "imaging-db-mtls-connection-authorization";
const REQUESTER = "imaging-db-mtls-connection-requester";
const TEST_LABEL = "admission-policy-test";

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: Record<string, unknown>;
}

/** The admission objects exactly as deploy/install.yaml ships them. */
async function shippedAdmission(): Promise<Manifest[]> {
  const all = parseAllDocuments(await readFile(join(REPO, "deploy", "install.yaml"), "utf8"))
    .map((d) => d.toJS() as Manifest | null)
    .filter((o): o is Manifest => o !== null);
  return all.filter(
    (o) =>
      o.kind === "ValidatingAdmissionPolicy" ||
      o.kind === "ValidatingAdmissionPolicyBinding" ||
      (o.kind === "ClusterRole" && o.metadata.name === REQUESTER),
  );
}

interface Connection {
  name: string;
  ns: string;
  databaseRef: { name: string; namespace?: string };
  user: string;
  database?: string;
  duration?: string;
  workloads?: { kind: "Deployment" | "StatefulSet"; name: string }[];
}

const connectionJson = (c: Connection): string =>
  JSON.stringify({
    apiVersion: "mtls.imaging.dev/v1alpha1",
    kind: "ImagingConnection",
    metadata: { name: c.name, namespace: c.ns },
    spec: {
      databaseRef: c.databaseRef,
      user: c.user,
      ...(c.database ? { database: c.database } : {}),
      ...(c.duration ? { certificate: { duration: c.duration } } : {}),
      ...(c.workloads ? { workloads: c.workloads } : {}),
    },
  });

/** The policy and message of an admission refusal in kubectl's stderr or an API error (one line). */
function refusal(r: RunResult | Error): { policy: string; message: string } | undefined {
  const m = /ValidatingAdmissionPolicy '([^']+)' with binding '[^']+' denied request: (.*)$/m.exec(r instanceof Error ? r.message : r.stderr);
  return m ? { policy: m[1]!, message: m[2]! } : undefined;
}

const CONNECTIONS: ResourceType = { group: "mtls.imaging.dev", version: "v1alpha1", plural: "imagingconnections", kind: "ImagingConnection", namespaced: true };

describe("Admission: ValidatingAdmissionPolicies for ImagingConnections (deploy/admission, real API server, tenants via kubectl --as)", function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let dbNs: string;
  let appNs: string;
  let shipped: Manifest[];
  const run = randomBytes(4).toString("hex");

  const as = (user: string, args: string[], input?: string): Promise<RunResult> =>
    cp.kubectl([...args, "--as", user], input === undefined ? {} : { input });
  /** A merge patch as the operator sends it (its own client and ServiceAccount; it has patch on connections, no get). */
  const asOperator = async (ns: string, name: string, body: unknown, subresource?: string): Promise<Error | undefined> => {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(cp.operatorKubeconfigPath);
    try {
      await new RestClient(kc).patch(CONNECTIONS, { namespace: ns, name }, body, MERGE_PATCH, subresource);
      return undefined;
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    }
  };
  const exists = async (ns: string, name: string) => (await cp.kubectl(["get", "imagingconnection", name, "-n", ns])).code === 0;
  const database = (ns: string, name: string) => getJson<SecureDatabase>(["get", "securedatabase", name, "-n", ns]);

  /** What the operator itself would say about this connection, as the admission message: "<reason>: <message>". */
  const decided = async (c: Connection): Promise<string> => {
    const ref = { name: c.databaseRef.name, namespace: c.databaseRef.namespace ?? c.ns };
    const sdb = await database(ref.namespace, ref.name);
    const d = decideAccess(
      { namespace: ref.namespace, name: ref.name, spec: sdb.spec },
      { namespace: c.ns, user: c.user, database: c.database ?? "postgres", duration: c.duration ?? "2160h", mounts: (c.workloads ?? []).length > 0 },
    );
    if (d.allowed) throw new Error(`decideAccess allows ${c.ns}/${c.name}: the test expects a refusal`);
    return `${d.reason}: ${d.message}`;
  };

  /** Applies as `user`, expects the policy's refusal with exactly `message`, and that no such connection exists. */
  const expectRefused = async (user: string, c: Connection, policy: string, message: string) => {
    const r = await as(user, ["apply", "-f", "-"], connectionJson(c));
    expect(r.code, `kubectl apply as ${user} succeeded: ${r.stdout}`).to.not.equal(0);
    expect(refusal(r), r.stderr).to.deep.equal({ policy, message });
    expect(await exists(c.ns, c.name), `${c.ns}/${c.name} was stored`).to.equal(false);
  };

  const expectCreated = async (user: string, c: Connection) => {
    const r = await as(user, ["apply", "-f", "-"], connectionJson(c));
    expect(r.code, `kubectl apply as ${user}: ${r.stderr}`).to.equal(0);
    expect(await exists(c.ns, c.name)).to.equal(true);
  };

  before(async () => {
    cp = controlPlane();
    dbNs = await cp.createNamespace("adm-db");
    appNs = await cp.createNamespace("adm-app");
    for (const ns of [dbNs, appNs]) await kubectlOk(["label", "namespace", ns, `${TEST_LABEL}=${run}`]);

    shipped = await shippedAdmission();
    for (const o of shipped) {
      const object = structuredClone(o);
      // Judge only this file's namespaces: the rest of the suite shares the API server.
      if (object.kind === "ValidatingAdmissionPolicyBinding") {
        object.spec = { ...object.spec, matchResources: { namespaceSelector: { matchLabels: { [TEST_LABEL]: run } } } };
      }
      await kubectlOk(["apply", "--server-side", "--field-manager=admission-test", "-f", "-"], JSON.stringify(object));
    }

    // The database's owner grants: reporting/viewer on analysis for 720h; imaging, mountable, for the default
    // 2160h; reporting to the other namespace. "remote-only" grants nothing to its own namespace.
    await kubectlOk(["apply", "-f", "-"], databaseWithGrants(dbNs, "db", [
      { users: ["reporting", "viewer"], databases: ["analysis"], maxDuration: "720h" },
      { namespaces: [dbNs], users: ["imaging", "viewer"], mountIntoWorkloads: true },
      { namespaces: [appNs], users: ["reporting"] },
    ]));
    await kubectlOk(["apply", "-f", "-"], JSON.stringify({
      apiVersion: "mtls.imaging.dev/v1alpha1",
      kind: "SecureDatabase",
      metadata: { name: "remote-only", namespace: dbNs },
      spec: { host: `remote-only.${dbNs}.svc`, postgres: { configMapName: "absent" }, allowedNamespaces: [dbNs], access: [{ namespaces: [appNs], users: ["reporting"] }] },
    }));
    const { deployment, statefulSet } = castImagingWorkloads(dbNs);
    for (const o of [deployment, statefulSet]) await kubectlOk(["apply", "-f", "-"], JSON.stringify(o));

    // Tenants: alice may write connections in both namespaces, `use` the databases of dbNs (the shipped ClusterRole)
    // and patch the Deployment imaging-services only; bob may write connections, nothing more.
    const rbac: unknown[] = [];
    for (const ns of [dbNs, appNs]) {
      rbac.push({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: { name: "connection-author", namespace: ns }, rules: [
        { apiGroups: ["mtls.imaging.dev"], resources: ["imagingconnections"], verbs: ["get", "list", "create", "update", "patch", "delete"] },
      ] });
      rbac.push({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", metadata: { name: "connection-author", namespace: ns },
        subjects: ["alice", "bob"].map((name) => ({ kind: "User", name, apiGroup: "rbac.authorization.k8s.io" })),
        roleRef: { kind: "Role", name: "connection-author", apiGroup: "rbac.authorization.k8s.io" } });
    }
    rbac.push({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", metadata: { name: "alice-uses-databases", namespace: dbNs },
      subjects: [{ kind: "User", name: "alice", apiGroup: "rbac.authorization.k8s.io" }],
      roleRef: { kind: "ClusterRole", name: REQUESTER, apiGroup: "rbac.authorization.k8s.io" } });
    rbac.push({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: { name: "patch-imaging-services", namespace: dbNs }, rules: [
      { apiGroups: ["apps"], resources: ["deployments"], resourceNames: ["imaging-services"], verbs: ["get", "patch"] },
    ] });
    rbac.push({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", metadata: { name: "patch-imaging-services", namespace: dbNs },
      subjects: [{ kind: "User", name: "alice", apiGroup: "rbac.authorization.k8s.io" }],
      roleRef: { kind: "Role", name: "patch-imaging-services", apiGroup: "rbac.authorization.k8s.io" } });
    for (const o of rbac) await kubectlOk(["apply", "-f", "-"], JSON.stringify(o));

    // A new policy takes effect once the API server's informers have it (and its params): probe with dry runs.
    const probe = { name: "probe", ns: dbNs, databaseRef: { name: "db" }, user: "postgres" };
    await waitFor("both admission policies in effect", async () => {
      const grants = refusal(await as("alice", ["apply", "--dry-run=server", "-f", "-"], connectionJson(probe)));
      const authorization = refusal(await as("bob", ["apply", "--dry-run=server", "-f", "-"], connectionJson({ ...probe, user: "imaging" })));
      return grants?.policy === GRANTS && grants.message.startsWith("AdminRoleNotIssued:") && authorization?.policy === AUTHORIZATION;
    }, 30_000, 250);
  });

  after(async () => {
    for (const o of shipped ?? []) await cp?.kubectl(["delete", o.kind, o.metadata.name, "--ignore-not-found"]);
    for (const ns of [dbNs, appNs]) if (ns) await cp?.kubectl(["delete", "namespace", ns, "--wait=false"]);
  });

  it("ships two policies, their bindings (Deny, the grants one over every SecureDatabase of the request's namespace) and the requester ClusterRole", () => {
    const kinds = shipped.map((o) => `${o.kind}/${o.metadata.name}`);
    expect(kinds).to.have.members([
      `ValidatingAdmissionPolicy/${GRANTS}`, `ValidatingAdmissionPolicyBinding/${GRANTS}`,
      `ValidatingAdmissionPolicy/${AUTHORIZATION}`, `ValidatingAdmissionPolicyBinding/${AUTHORIZATION}`,
      `ClusterRole/${REQUESTER}`,
    ]);
    const binding = shipped.find((o) => o.kind === "ValidatingAdmissionPolicyBinding" && o.metadata.name === GRANTS)!;
    expect(binding.spec).to.deep.equal({ policyName: GRANTS, validationActions: ["Deny"], paramRef: { selector: {}, parameterNotFoundAction: "Allow" } });
    expect(shipped.find((o) => o.kind === "ClusterRole")).to.deep.include({ rules: [{ apiGroups: ["mtls.imaging.dev"], resources: ["securedatabases"], verbs: ["use"] }] });
  });

  it("the reload admin role: AdminRoleNotIssued, as the operator would say it, nothing stored", async () => {
    const c: Connection = { name: "superuser", ns: dbNs, databaseRef: { name: "db" }, user: "postgres", duration: "87000h" };
    const message = await decided(c);
    expect(message).to.match(/^AdminRoleNotIssued: "postgres" is the role SecureDatabase /);
    await expectRefused("alice", c, GRANTS, message);
  });

  it("a namespace no grant names (the database's own; allowedNamespaces grants nothing): NamespaceNotAllowed", async () => {
    const c: Connection = { name: "unlisted", ns: dbNs, databaseRef: { name: "remote-only" }, user: "reporting" };
    const message = await decided(c);
    expect(message).to.equal(
      `NamespaceNotAllowed: SecureDatabase ${dbNs}/remote-only grants no identity to namespace "${dbNs}" (it lists the namespace in ` +
        `spec.allowedNamespaces, which grants nothing since spec.access exists): its owner must add a grant for it to spec.access (namespaces, users)`,
    );
    await expectRefused("alice", c, GRANTS, message);
  });

  it("a user no grant of the namespace names: UserNotAllowed, listing the users granted (each once)", async () => {
    const c: Connection = { name: "mallory", ns: dbNs, databaseRef: { name: "db" }, user: "mallory", database: "analysis" };
    const message = await decided(c);
    expect(message).to.equal(`UserNotAllowed: SecureDatabase ${dbNs}/db grants namespace "${dbNs}" the users "reporting", "viewer", "imaging" (spec.access), not "mallory"`);
    await expectRefused("alice", c, GRANTS, message);
  });

  it("a database the user's grants do not name: DatabaseNotAllowed", async () => {
    const c: Connection = { name: "elsewhere", ns: dbNs, databaseRef: { name: "db" }, user: "reporting", database: "postgres", duration: "720h" };
    const message = await decided(c);
    expect(message).to.equal(`DatabaseNotAllowed: SecureDatabase ${dbNs}/db grants user "reporting" in namespace "${dbNs}" the databases "analysis" (spec.access), not "postgres"`);
    await expectRefused("alice", c, GRANTS, message);
  });

  it("a lifetime longer than the grant's maxDuration (the default 2160h asked of a 720h grant too): DurationNotAllowed", async () => {
    for (const duration of ["721h", undefined]) {
      const c: Connection = { name: "long", ns: dbNs, databaseRef: { name: "db" }, user: "reporting", database: "analysis", ...(duration ? { duration } : {}) };
      const message = await decided(c);
      expect(message).to.equal(`DurationNotAllowed: spec.certificate.duration ${duration ?? "2160h"} is longer than SecureDatabase ${dbNs}/db allows this identity: at most 720h (spec.access[0].maxDuration)`);
      await expectRefused("alice", c, GRANTS, message);
    }
  });

  it("workloads under a grant without mountIntoWorkloads (alice may patch the Deployment): MountNotAllowed", async () => {
    const c: Connection = { name: "mounted", ns: dbNs, databaseRef: { name: "db" }, user: "reporting", database: "analysis", duration: "720h", workloads: [{ kind: "Deployment", name: "imaging-services" }] };
    const message = await decided(c);
    expect(message).to.match(/^MountNotAllowed: .*\(spec\.access\[0\]\.mountIntoWorkloads is not true\)/);
    await expectRefused("alice", c, GRANTS, message);
  });

  it("a tenant without `use` on the SecureDatabase: UseNotAllowed, in its namespace and across namespaces", async () => {
    const useMessage = (ns: string) =>
      `UseNotAllowed: bob may not use SecureDatabase ${ns}/db (verb use on securedatabases.mtls.imaging.dev), so may not request an identity ` +
      `from its CA: a cluster admin grants it by binding the ClusterRole ${REQUESTER} in namespace ${ns}`;
    // A request the grants allow: only the requester's missing permission refuses it.
    await expectRefused("bob", { name: "bobs", ns: dbNs, databaseRef: { name: "db" }, user: "imaging" }, AUTHORIZATION, useMessage(dbNs));
    await expectRefused("bob", { name: "bobs", ns: appNs, databaseRef: { name: "db", namespace: dbNs }, user: "reporting" }, AUTHORIZATION, useMessage(dbNs));
  });

  it("a tenant without `patch` on one listed workload: WorkloadPatchNotAllowed", async () => {
    const c: Connection = { name: "both", ns: dbNs, databaseRef: { name: "db" }, user: "imaging", workloads: [{ kind: "Deployment", name: "imaging-services" }, { kind: "StatefulSet", name: "analysis-node" }] };
    await expectRefused("alice", c, AUTHORIZATION,
      `WorkloadPatchNotAllowed: alice may not patch each workload spec.workloads lists in namespace ${dbNs} (deployment/imaging-services, ` +
        `statefulset/analysis-node): an ImagingConnection changes the workloads it lists, so its author must be allowed to patch them`);
  });

  it("admits what a grant allows, asked by a tenant holding the requester role and patch on the workload", async () => {
    await expectCreated("alice", { name: "imaging", ns: dbNs, databaseRef: { name: "db" }, user: "imaging", workloads: [{ kind: "Deployment", name: "imaging-services" }] });
    await expectCreated("alice", { name: "reporting", ns: dbNs, databaseRef: { name: "db" }, user: "reporting", database: "analysis", duration: "720h" });
  });

  it("leaves to the reconciler what it cannot see: a SecureDatabase not there yet, and the grants of one in another namespace", async () => {
    // alice holds `use` on every SecureDatabase of dbNs, and appNs has no SecureDatabase: no param, no judgement.
    await expectCreated("alice", { name: "early", ns: dbNs, databaseRef: { name: "not-yet" }, user: "anyone" });
    await expectCreated("alice", { name: "remote", ns: appNs, databaseRef: { name: "db", namespace: dbNs }, user: "reporting" });
    const ungranted: Connection = { name: "remote-mallory", ns: appNs, databaseRef: { name: "db", namespace: dbNs }, user: "mallory" };
    expect(await decided(ungranted)).to.match(/^UserNotAllowed: /);
    await expectCreated("alice", ungranted);
  });

  it("the operator's identity (no `use`) writes finalizers and status, also on a connection its database has since narrowed; not spec", async () => {
    // The owner withdraws mountIntoWorkloads: "imaging" would now be refused, but metadata and status writes are not judged.
    await kubectlOk(["patch", "securedatabase", "db", "-n", dbNs, "--type=json", "-p", JSON.stringify([{ op: "replace", path: "/spec/access/1/mountIntoWorkloads", value: false }])]);
    await waitFor("the narrowed grant in effect", async () => refusal(await as("alice", ["apply", "--dry-run=server", "-f", "-"], connectionJson({ name: "imaging-probe", ns: dbNs, databaseRef: { name: "db" }, user: "imaging", workloads: [{ kind: "Deployment", name: "imaging-services" }] })))?.message.startsWith("MountNotAllowed:") === true, 30_000, 250);
    expect(await asOperator(dbNs, "imaging", { metadata: { finalizers: [FINALIZER], labels: { "mtls.imaging.dev/database": "db" } } })).to.equal(undefined);
    const condition = { type: "CertificateReady", status: "False", reason: "MountNotAllowed", message: "narrowed", lastTransitionTime: "2026-01-01T00:00:00Z" };
    expect(await asOperator(dbNs, "imaging", { status: { conditions: [condition] } }, "status")).to.equal(undefined);
    const stored = await getJson<{ metadata: { finalizers?: string[] }; status?: { conditions?: { reason: string }[] } }>(["get", "imagingconnection", "imaging", "-n", dbNs]);
    expect(stored.metadata.finalizers).to.deep.equal([FINALIZER]);
    expect(stored.status?.conditions?.map((c) => c.reason)).to.deep.equal(["MountNotAllowed"]);
    // The same identity changing spec is judged like anyone: it holds patch on connections, not use on databases
    // (a change the grants allow, on a connection they allow, so that only the authorization policy speaks).
    const spec = await asOperator(dbNs, "reporting", { spec: { libpqEnv: true } });
    expect(spec, "the operator's spec patch was admitted").to.be.instanceOf(Error);
    expect(refusal(spec!)).to.deep.equal({
      policy: AUTHORIZATION,
      message: `UseNotAllowed: ${OPERATOR_USER} may not use SecureDatabase ${dbNs}/db (verb use on securedatabases.mtls.imaging.dev), so may not request ` +
        `an identity from its CA: a cluster admin grants it by binding the ClusterRole ${REQUESTER} in namespace ${dbNs}`,
    });
    // The finalizer's removal (as when the connection is deleted) is an UPDATE of metadata: not judged either.
    expect(await asOperator(dbNs, "imaging", { metadata: { finalizers: null } })).to.equal(undefined);
    expect((await getJson<{ metadata: { finalizers?: string[] } }>(["get", "imagingconnection", "imaging", "-n", dbNs])).metadata.finalizers).to.equal(undefined);
  });

  it("a spec update that widens the request is refused, and the stored connection keeps its spec", async () => {
    const c: Connection = { name: "reporting", ns: dbNs, databaseRef: { name: "db" }, user: "reporting", database: "analysis", duration: "5000h" };
    const message = await decided(c);
    expect(message).to.match(/^DurationNotAllowed: spec.certificate.duration 5000h is longer than .* at most 720h/);
    const r = await as("alice", ["patch", "imagingconnection", "reporting", "-n", dbNs, "--type=merge", "-p", JSON.stringify({ spec: { certificate: { duration: "5000h" } } })]);
    expect(r.code).to.not.equal(0);
    expect(refusal(r)).to.deep.equal({ policy: GRANTS, message });
    const stored = await getJson<{ spec: { certificate: { duration: string } } }>(["get", "imagingconnection", "reporting", "-n", dbNs]);
    expect(stored.spec.certificate.duration).to.equal("720h");
    // And to a user the grant does not name.
    const user = await as("alice", ["patch", "imagingconnection", "reporting", "-n", dbNs, "--type=merge", "-p", JSON.stringify({ spec: { user: "postgres" } })]);
    expect(refusal(user)?.message).to.match(/^AdminRoleNotIssued: "postgres"/);
  });

  it("refuses nothing but ImagingConnections: a ConfigMap and a SecureDatabase in the judged namespace are created as usual", async () => {
    await kubectlOk(["create", "configmap", "unrelated", "-n", dbNs, "--from-literal=k=v"]);
    await kubectlOk(["apply", "-f", "-"], JSON.stringify({ apiVersion: "mtls.imaging.dev/v1alpha1", kind: "SecureDatabase", metadata: { name: "another", namespace: dbNs }, spec: { host: "another", postgres: { configMapName: "absent" } } }));
  });
});
