import { expect } from "chai";
import { readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parseAllDocuments } from "yaml";
import type { ImagingConnection, SecureDatabase } from "../../src/api/types";
import { OPERATOR_NAMESPACE } from "../support/controlplane";
import { controlPlane } from "../support/hooks";
import { condition, getJson, kubectlOk, waitForCondition } from "../support/kubectl-json";
import { connectionToDatabaseYaml, secureDatabaseWithoutServerYaml } from "../support/manifests";
import { startOperatorWithDatabase, type OperatorWithDatabase } from "../support/operator-fixture";

const REPO = resolve(__dirname, "..", "..");
const SERVICE_ACCOUNT = "imaging-db-mtls-operator-namespaced";
const USER = `system:serviceaccount:${OPERATOR_NAMESPACE}:${SERVICE_ACCOUNT}`;

interface RoleDoc {
  kind: string;
  metadata: { name: string; namespace?: string };
  rules?: unknown[];
}

/** The rules the namespaced install gives the operator in each watched namespace (deploy/install-namespaced.yaml). */
async function shippedNamespaceRules(): Promise<unknown[]> {
  const docs = parseAllDocuments(await readFile(join(REPO, "deploy", "install-namespaced.yaml"), "utf8")).map((d) => d.toJS() as RoleDoc | null);
  const role = docs.find((d) => d?.kind === "Role" && d.metadata.name === "imaging-db-mtls-operator");
  if (!role?.rules) throw new Error("deploy/install-namespaced.yaml has no Role imaging-db-mtls-operator");
  return role.rules;
}

/**
 * The namespaced mode: the operator watches a list of namespaces and holds nothing cluster-wide, only the shipped
 * per-namespace Role in each. A database in one watched namespace serves a connection in another; a namespace it
 * does not watch is neither read nor written, and a reference into it says so.
 */
describe("Namespaced mode: a list of watched namespaces, Roles only (real API server, real PostgreSQL)", function () {
  this.timeout(150_000);
  let dbNs: string;
  let appNs: string;
  let otherNs: string;
  let env: OperatorWithDatabase;
  const since = new Date();

  before(async () => {
    const cp = controlPlane();
    [dbNs, appNs, otherNs] = [await cp.createNamespace("nsdb"), await cp.createNamespace("nsapp"), await cp.createNamespace("nsother")];
    // Its own ServiceAccount, so the cluster-wide binding of the main one cannot help it.
    await kubectlOk(["create", "serviceaccount", SERVICE_ACCOUNT, "-n", OPERATOR_NAMESPACE]);
    const rules = await shippedNamespaceRules();
    for (const ns of [dbNs, appNs]) {
      const role = { apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: { name: "imaging-db-mtls-operator", namespace: ns }, rules };
      const binding = {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        metadata: { name: "imaging-db-mtls-operator", namespace: ns },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "imaging-db-mtls-operator" },
        subjects: [{ kind: "ServiceAccount", name: SERVICE_ACCOUNT, namespace: OPERATOR_NAMESPACE }],
      };
      await kubectlOk(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: [role, binding] }));
    }
    // And, as deploy/install-namespaced.yaml binds it, the shipped Role on Secrets of the key namespace (the CA keys).
    await kubectlOk(["create", "rolebinding", `${SERVICE_ACCOUNT}-ca-keys`, "-n", OPERATOR_NAMESPACE, "--role=imaging-db-mtls-operator-ca-keys", `--serviceaccount=${OPERATOR_NAMESPACE}:${SERVICE_ACCOUNT}`]);
    const token = (await kubectlOk(["create", "token", SERVICE_ACCOUNT, "-n", OPERATOR_NAMESPACE, "--duration", "2h"])).trim();
    const kubeconfigPath = join(cp.dir, "namespaced-operator.kubeconfig");
    const base = await readFile(cp.operatorKubeconfigPath, "utf8");
    await writeFile(kubeconfigPath, base.replace(/token: "[^"]*"/, `token: "${token}"`));

    env = await startOperatorWithDatabase({
      name: "nsdb",
      namespace: dbNs,
      databases: [{ roles: ["analysis"] }],
      watch: [dbNs, appNs],
      operator: { kubeconfigPath },
      // The connection lives in appNs: the grant names that namespace (not the database's own).
      secureDatabase: { access: [{ namespaces: [appNs], users: ["analysis"] }] },
    });
  });

  after(async () => env?.stop());

  it("serves a connection in one watched namespace from a database in another, logged in over mTLS", async () => {
    await kubectlOk(["apply", "-f", "-"], connectionToDatabaseYaml(appNs, "analysis", "analysis", { name: "db", namespace: dbNs }));
    const imc = await waitForCondition<ImagingConnection>("imc", appNs, "analysis", "Ready", (c) => c.status === "True", 60_000);
    expect(condition(imc, "ConnectionVerified")).to.include({ status: "True", reason: "LoggedIn" });
  });

  it("a reference into a namespace it does not watch: NamespaceNotWatched, saying which namespaces it watches", async () => {
    await kubectlOk(["apply", "-f", "-"], connectionToDatabaseYaml(appNs, "elsewhere", "analysis", { name: "db", namespace: otherNs }));
    const imc = await waitForCondition<ImagingConnection>("imc", appNs, "elsewhere", "CertificateReady", (c) => c.status === "False", 30_000);
    const c = condition(imc, "CertificateReady");
    expect(c?.reason).to.equal("NamespaceNotWatched");
    expect(c?.message).to.contain(`it watches ${dbNs}, ${appNs}`);
  });

  it("leaves an unwatched namespace alone: its SecureDatabase gets no finalizer, no status, no Secret", async () => {
    await kubectlOk(["apply", "-f", "-"], secureDatabaseWithoutServerYaml(otherNs, "untouched"));
    // A watched database of the same shape gets its CA Secret within a second or two; give this one longer.
    await new Promise((r) => setTimeout(r, 4_000));
    const sdb = await getJson<SecureDatabase>(["get", "sdb", "untouched", "-n", otherNs]);
    expect(sdb.metadata.finalizers ?? []).to.deep.equal([]);
    expect(sdb.status).to.equal(undefined);
    expect((await getJson<{ items: unknown[] }>(["get", "secrets", "-n", otherNs, "-l", "app.kubernetes.io/managed-by=imaging-db-mtls-operator"])).items).to.have.length(0);
  });

  it("needed nothing beyond the Roles: no request refused, none outside the watched namespaces but the CA key in the key namespace", async () => {
    const events = await controlPlane().auditEvents(USER, since);
    expect(events.length).to.be.greaterThan(0);
    const refused = events.filter((e) => e.responseStatus?.code === 403).map((e) => `${e.verb} ${e.objectRef?.resource} in ${e.objectRef?.namespace ?? "(cluster)"}`);
    expect(refused).to.deep.equal([]);
    const keys = (e: (typeof events)[number]) => e.objectRef?.namespace === OPERATOR_NAMESPACE && e.objectRef.resource === "secrets";
    const outside = [...new Set(events.filter((e) => ![dbNs, appNs].includes(e.objectRef?.namespace ?? "") && !keys(e)).map((e) => `${e.verb} ${e.objectRef?.resource} in ${e.objectRef?.namespace ?? "(cluster)"}`))];
    expect(outside).to.deep.equal([]);
    expect(events.some((e) => keys(e) && e.verb === "create" && e.responseStatus?.code === 201)).to.equal(true);
    expect((await controlPlane().kubectl(["get", "secret", `${dbNs}.db-ca`, "-n", OPERATOR_NAMESPACE])).code).to.equal(0);
  });
});
