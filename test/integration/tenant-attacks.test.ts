import { expect } from "chai";
import type { ImagingConnection, SecureDatabase } from "../../src/api/types";
import { secretBytes, type SecretObject } from "../../src/kube/secrets";
import { loadIssuedCertificate } from "../../src/pki";
import { controlPlane } from "../support/hooks";
import { getCASecret, getJson, getLedger, kubectlOk, waitForCondition } from "../support/kubectl-json";
import { caKeySecret } from "../support/operator";
import { databaseWithGrants, plainDeployment } from "../support/manifests";
import { startOperatorInNamespace, type OperatorInNamespace } from "../support/operator-fixture";
import { waitFor } from "../support/process";

/**
 * A tenant, acting as a real tenant does (kubectl --as tenant, with the RBAC Roles a cluster admin would give:
 * ImagingConnections, Deployments and Secrets of its own namespaces, `use` on the database), tries to obtain more
 * than the database's owner granted. The admission policy is not installed here: this is the reconcile-time line,
 * which must hold on its own (admission-policy.test.ts proves the first line). Each attempt is refused with the
 * reason naming the rule, nothing is issued (no Secret, no ledger entry), and the tenant's legitimate connection
 * keeps its certificate throughout.
 */
describe("Tenant attacks: who may obtain which database identity (kubectl --as tenant, real API server)", function () {
  this.timeout(180_000);
  let env: OperatorInNamespace;
  let dbNs: string;
  let tenantNs: string;
  let otherNs: string;
  let legitSerial: string;

  const admin = (args: string[], input?: string) => kubectlOk(args, input);
  const asTenant = (args: string[], input?: string) => controlPlane().kubectl([...args, "--as", "tenant"], input === undefined ? {} : { input });
  const connection = (ns: string, name: string, spec: Record<string, unknown>) =>
    JSON.stringify({ apiVersion: "mtls.imaging.dev/v1alpha1", kind: "ImagingConnection", metadata: { name, namespace: ns }, spec: { databaseRef: { name: "db", namespace: dbNs }, ...spec } });
  const ledgerSerials = async () => [...(await getLedger(dbNs, "db")).keys()].sort();
  const secretExists = async (ns: string, name: string) => (await controlPlane().kubectl(["get", "secret", name, "-n", ns])).code === 0;

  /** Applies as the tenant (accepted by RBAC and the CRD), then waits for the operator's refusal. */
  const refused = async (ns: string, name: string, spec: Record<string, unknown>, reason: string, message: RegExp) => {
    const before = await ledgerSerials();
    const applied = await asTenant(["apply", "-f", "-"], connection(ns, name, spec));
    expect(applied.code, applied.stderr).to.equal(0);
    const imc = await waitForCondition<ImagingConnection>("imc", ns, name, "CertificateReady", (c) => c.status === "False" && c.reason === reason, 30_000);
    expect(imc.status?.conditions?.find((c) => c.type === "CertificateReady")?.message).to.match(message);
    const events = await getJson<{ items: { reason: string; type: string }[] }>(["get", "events", "-n", ns, "--field-selector", `involvedObject.name=${name}`]);
    expect(events.items.filter((e) => e.type === "Warning").map((e) => e.reason)).to.include(reason);
    expect(await secretExists(ns, `${name}-client-tls`), "a client Secret was written").to.equal(false);
    expect(await ledgerSerials(), "the CA issued a certificate").to.deep.equal(before);
  };

  before(async () => {
    env = await startOperatorInNamespace({ name: "tenant-db", watch: "all" });
    dbNs = env.ns;
    tenantNs = await env.cp.createNamespace("tenant-app");
    otherNs = await env.cp.createNamespace("tenant-other");
    // The tenant's Role in its namespaces, and `use` of the database (the shipped requester ClusterRole's rule).
    for (const ns of [tenantNs, otherNs]) {
      await admin(["create", "role", "tenant", "-n", ns, "--verb=get,list,watch,create,update,patch,delete", "--resource=imagingconnections.mtls.imaging.dev,deployments.apps,secrets,configmaps"]);
      await admin(["create", "rolebinding", "tenant", "-n", ns, "--role=tenant", "--user=tenant"]);
    }
    await admin(["apply", "-f", "-"], JSON.stringify({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name: "requester", namespace: dbNs },
      rules: [{ apiGroups: ["mtls.imaging.dev"], resources: ["securedatabases"], verbs: ["use", "get"] }],
    }));
    await admin(["create", "rolebinding", "requester", "-n", dbNs, "--role=requester", "--user=tenant"]);
    // The database owner's grants: reporting (mountable, up to 720h, its database only) and viewer (not mountable).
    await admin(["apply", "-f", "-"], databaseWithGrants(dbNs, "db", [
      { namespaces: [tenantNs], users: ["reporting"], databases: ["reporting_db"], maxDuration: "720h", mountIntoWorkloads: true },
      { namespaces: [tenantNs], users: ["viewer"] },
    ]));
    await waitFor("the database's trust bundle", async () => secretExists(dbNs, "db-server-tls"), 60_000, 200);
    await admin(["apply", "-f", "-"], JSON.stringify(plainDeployment(tenantNs, "web", "app")));
    const ok = await asTenant(["apply", "-f", "-"], connection(tenantNs, "legit", { user: "reporting", database: "reporting_db", certificate: { duration: "720h" } }));
    expect(ok.code, ok.stderr).to.equal(0);
    await waitForCondition<ImagingConnection>("imc", tenantNs, "legit", "CertificateReady", (c) => c.status === "True", 60_000);
    legitSerial = (await getJson<ImagingConnection>(["get", "imc", "legit", "-n", tenantNs])).status!.certificate!.serialNumber!;
  });

  after(async () => env?.stop());

  it("1. the database superuser (the operator's reload role), the issue's own example: AdminRoleNotIssued", async () => {
    await refused(tenantNs, "evil", { user: "postgres", database: "postgres", certificate: { duration: "87000h" } }, "AdminRoleNotIssued", /"postgres" is the role SecureDatabase .*\/db reloads and verifies the server with/);
  });

  it("2. a role the grants do not name: UserNotAllowed, naming the roles granted", async () => {
    await refused(tenantNs, "other-role", { user: "cast_admin" }, "UserNotAllowed", /grants namespace "tenant-app-\w+" the users "reporting", "viewer" \(spec.access\), not "cast_admin"/);
  });

  it("3. the keyword all as a role: UserNotAllowed (a grant can never name it)", async () => {
    await refused(tenantNs, "everyone", { user: "all" }, "UserNotAllowed", /not "all"/);
  });

  it("4. a ten-year certificate for a granted role: DurationNotAllowed, the grant's maxDuration named", async () => {
    await refused(tenantNs, "forever", { user: "reporting", database: "reporting_db", certificate: { duration: "87000h" } }, "DurationNotAllowed", /at most 720h \(spec.access\[0\].maxDuration\)/);
  });

  it("5. a database the grant does not name: DatabaseNotAllowed", async () => {
    await refused(tenantNs, "wrong-db", { user: "reporting", database: "postgres", certificate: { duration: "720h" } }, "DatabaseNotAllowed", /the databases "reporting_db" \(spec.access\), not "postgres"/);
  });

  it("6. a namespace the grants do not name, though the tenant may write there: NamespaceNotAllowed", async () => {
    await refused(otherNs, "elsewhere", { user: "reporting", database: "reporting_db" }, "NamespaceNotAllowed", /grants no identity to namespace "tenant-other-\w+"/);
  });

  it("7. mounting a role whose grant does not allow workloads: MountNotAllowed, the Deployment untouched", async () => {
    await refused(tenantNs, "viewer-mounted", { user: "viewer", workloads: [{ kind: "Deployment", name: "web" }] }, "MountNotAllowed", /mountIntoWorkloads is not true/);
    const web = await getJson<{ spec: { template: { spec: { volumes?: unknown[] } } } }>(["get", "deployment", "web", "-n", tenantNs]);
    expect(web.spec.template.spec.volumes ?? []).to.deep.equal([]);
  });

  it("8. mounting over the container's programs (/usr/local/bin): MountPathNotAllowed, the Deployment untouched", async () => {
    await refused(tenantNs, "hide-bin", { user: "reporting", database: "reporting_db", certificate: { duration: "720h" }, workloads: [{ kind: "Deployment", name: "web", mountPath: "/usr/local/bin" }] }, "MountPathNotAllowed", /outside \/etc\/cast-imaging\//);
    const web = await getJson<{ spec: { template: { spec: { volumes?: unknown[] } } } }>(["get", "deployment", "web", "-n", tenantNs]);
    expect(web.spec.template.spec.volumes ?? []).to.deep.equal([]);
  });

  it("9. widening the grants: the tenant cannot edit the SecureDatabase (RBAC), which stays as its owner wrote it", async () => {
    const before = await getJson<SecureDatabase>(["get", "sdb", "db", "-n", dbNs]);
    const patch = JSON.stringify({ spec: { access: [{ namespaces: [tenantNs], users: ["cast_admin"], maxDuration: "87000h" }] } });
    const attempt = await asTenant(["patch", "sdb", "db", "-n", dbNs, "--type=merge", "-p", patch]);
    expect(attempt.code).to.not.equal(0);
    expect(attempt.stderr).to.match(/forbidden/i);
    const after = await getJson<SecureDatabase>(["get", "sdb", "db", "-n", dbNs]);
    expect(after.metadata.generation).to.equal(before.metadata.generation);
    expect(after.spec.access).to.deep.equal(before.spec.access);
  });

  it("10. the keys: the tenant cannot read the server key; the CA key is in no Secret of the database's namespace, even for who may read them; the admin identity is in no Secret at all", async () => {
    const read = await asTenant(["get", "secret", "db-server-tls", "-n", dbNs, "-o", "name"]);
    expect(read.code).to.not.equal(0);
    expect(read.stderr).to.match(/forbidden/i);
    // Someone who may read every Secret of the database's namespace (its owner's team, a backup tool) finds no CA key there.
    await admin(["create", "role", "db-reader", "-n", dbNs, "--verb=get,list", "--resource=secrets"]);
    await admin(["create", "rolebinding", "db-reader", "-n", dbNs, "--role=db-reader", "--user=db-reader"]);
    const listed = await controlPlane().kubectl(["get", "secrets", "-n", dbNs, "-o", "json", "--as", "db-reader"]);
    expect(listed.code, listed.stderr).to.equal(0);
    const visible = (JSON.parse(listed.stdout) as { items: SecretObject[] }).items;
    const caKey = secretBytes(await getCASecret<SecretObject>(dbNs, "db-ca"))["tls.key"]!;
    expect(visible.map((x) => x.metadata.name)).to.include("db-server-tls");
    expect(visible.filter((x) => Object.values(secretBytes(x)).some((v) => v.equals(caKey))).map((x) => x.metadata.name), "Secrets holding the CA key").to.deep.equal([]);
    // Nor in the key namespace, for either of them.
    const at = caKeySecret(dbNs, "db-ca");
    for (const user of ["tenant", "db-reader"]) {
      const r = await controlPlane().kubectl(["get", "secret", at.name, "-n", at.namespace, "--as", user]);
      expect(r.code, user).to.not.equal(0);
      expect(r.stderr, user).to.match(/forbidden/i);
    }
    // The operator reloads and verifies with an identity held in its memory only: nothing to read, whoever reads.
    expect(visible.map((x) => x.metadata.name).filter((n) => n.endsWith("-operator-client-tls"))).to.deep.equal([]);
  });

  it("11. taking over the legitimate connection's Secret name: SecretConflict, that Secret untouched", async () => {
    const before = await getJson<SecretObject>(["get", "secret", "legit-client-tls", "-n", tenantNs]);
    const applied = await asTenant(["apply", "-f", "-"], connection(tenantNs, "copycat", { user: "reporting", database: "reporting_db", certificate: { duration: "720h" }, secretName: "legit-client-tls" }));
    expect(applied.code, applied.stderr).to.equal(0);
    const imc = await waitForCondition<ImagingConnection>("imc", tenantNs, "copycat", "CertificateReady", (c) => c.status === "False", 30_000);
    expect(imc.status?.conditions?.find((c) => c.type === "CertificateReady")?.reason).to.equal("SecretConflict");
    const after = await getJson<SecretObject>(["get", "secret", "legit-client-tls", "-n", tenantNs]);
    expect(after.metadata.resourceVersion).to.equal(before.metadata.resourceVersion);
  });

  it("12. a Secret planted under the name older operators kept their identity in: never read, never overwritten, never deleted", async () => {
    // The planter here is whoever may write Secrets in the database's namespace (not this tenant: RBAC refuses it).
    const plant = await asTenant(["create", "secret", "generic", "db2-operator-client-tls", "-n", dbNs, "--from-literal=tls.crt=x"]);
    expect(plant.code).to.not.equal(0);
    await admin(["create", "secret", "generic", "db2-operator-client-tls", "-n", dbNs, "--from-literal=note=planted"]);
    const before = await getJson<SecretObject>(["get", "secret", "db2-operator-client-tls", "-n", dbNs]);
    await admin(["apply", "-f", "-"], JSON.stringify({ apiVersion: "mtls.imaging.dev/v1alpha1", kind: "SecureDatabase", metadata: { name: "db2", namespace: dbNs }, spec: { host: `db2.${dbNs}.svc`, postgres: { configMapName: "absent" } } }));
    // Reconciled past the step that mints the identity: its server certificate is issued.
    await waitForCondition<SecureDatabase>("sdb", dbNs, "db2", "ServerCertificateReady", (c) => c.status === "True", 30_000);
    const after = await getJson<SecretObject>(["get", "secret", "db2-operator-client-tls", "-n", dbNs]);
    expect(after.metadata.resourceVersion).to.equal(before.metadata.resourceVersion);
    expect(Object.keys(after.data ?? {})).to.deep.equal(["note"]);
  });

  it("13. a grant the owner withdraws: the connection is refused and its live certificate revoked (affiliationChanged)", async () => {
    const ok = await asTenant(["apply", "-f", "-"], connection(tenantNs, "viewer-ok", { user: "viewer" }));
    expect(ok.code, ok.stderr).to.equal(0);
    const issued = await waitForCondition<ImagingConnection>("imc", tenantNs, "viewer-ok", "CertificateReady", (c) => c.status === "True", 30_000);
    const serial = issued.status!.certificate!.serialNumber!;
    await admin(["patch", "sdb", "db", "-n", dbNs, "--type=json", "-p", JSON.stringify([{ op: "remove", path: "/spec/access/1" }])]);
    await waitForCondition<ImagingConnection>("imc", tenantNs, "viewer-ok", "CertificateReady", (c) => c.status === "False" && c.reason === "UserNotAllowed", 30_000);
    await waitFor("the viewer's serial in the database's revocation list", async () => {
      const sdb = await getJson<SecureDatabase>(["get", "sdb", "db", "-n", dbNs]);
      return (sdb.status?.trust?.revokedSerials ?? []).map((s) => s.toLowerCase().replace(/:/g, "")).includes(serial.toLowerCase().replace(/:/g, ""));
    }, 30_000, 200);
  });

  it("14. the operator as a port scanner: a database whose endpoint is not a Service of its namespace nor allowed is not dialed (EndpointNotAllowed)", async () => {
    for (const [name, endpoint] of [["probe-ip", "10.96.0.1:443"], ["probe-ssh", "ssh.corp.invalid:22"]] as const) {
      await admin(["apply", "-f", "-"], JSON.stringify({
        apiVersion: "mtls.imaging.dev/v1alpha1",
        kind: "SecureDatabase",
        metadata: { name, namespace: dbNs },
        spec: { host: `${name}.${dbNs}.svc`, postgres: { configMapName: "absent" }, verification: { endpoint } },
      }));
      const sdb = await waitForCondition<SecureDatabase>("sdb", dbNs, name, "Verified", (c) => c.reason === "EndpointNotAllowed", 30_000);
      const host = endpoint.slice(0, endpoint.lastIndexOf(":"));
      expect(sdb.status?.conditions?.find((c) => c.type === "Verified")?.message).to.contain(`the operator dials only Services of namespace ${dbNs}`).and.contain(`not ${host}:`);
      // Nothing issued for it, and no connection error from that host in status for its author to read.
      const caAt = caKeySecret(dbNs, `${name}-ca`);
      expect(await secretExists(caAt.namespace, caAt.name)).to.equal(false);
      expect(sdb.status?.verification).to.equal(undefined);
    }
  });

  it("15. a grant by namespace labels: the tenant cannot label its namespace into it; the admin can, and taking the label away revokes", async () => {
    await admin(["patch", "sdb", "db", "-n", dbNs, "--type=json", "-p", JSON.stringify([{ op: "add", path: "/spec/access/-", value: { namespaceSelector: { matchLabels: { "mtls.example/team": "reporting" } }, users: ["labelled"] } }])]);
    const selfLabel = await asTenant(["label", "namespace", otherNs, "mtls.example/team=reporting"]);
    expect(selfLabel.code).to.not.equal(0);
    expect(selfLabel.stderr).to.match(/forbidden/i);
    await refused(otherNs, "by-label", { user: "labelled" }, "NamespaceNotAllowed", /grants no identity to namespace "tenant-other-\w+"/);
    await admin(["label", "namespace", otherNs, "mtls.example/team=reporting"]);
    const issued = await waitForCondition<ImagingConnection>("imc", otherNs, "by-label", "CertificateReady", (c) => c.status === "True", 30_000);
    const serial = issued.status!.certificate!.serialNumber!.toLowerCase().replace(/:/g, "");
    await admin(["label", "namespace", otherNs, "mtls.example/team-"]);
    await waitForCondition<ImagingConnection>("imc", otherNs, "by-label", "CertificateReady", (c) => c.status === "False" && c.reason === "NamespaceNotAllowed", 30_000);
    await waitFor("the labelled connection's serial in the database's revocation list", async () => {
      const sdb = await getJson<SecureDatabase>(["get", "sdb", "db", "-n", dbNs]);
      return (sdb.status?.trust?.revokedSerials ?? []).map((s) => s.toLowerCase().replace(/:/g, "")).includes(serial);
    }, 30_000, 200);
  });

  it("16. mounting into a workload of its namespace that did not opt in: OptInMissing, the Deployment untouched", async () => {
    const unmarked = plainDeployment(tenantNs, "unmarked", "app");
    delete (unmarked.metadata as { annotations?: unknown }).annotations;
    await admin(["apply", "-f", "-"], JSON.stringify(unmarked));
    const before = await getJson<{ metadata: { resourceVersion: string } }>(["get", "deployment", "unmarked", "-n", tenantNs]);
    const applied = await asTenant(["apply", "-f", "-"], connection(tenantNs, "intruder", { user: "reporting", database: "reporting_db", certificate: { duration: "720h" }, workloads: [{ kind: "Deployment", name: "unmarked" }] }));
    expect(applied.code, applied.stderr).to.equal(0);
    const imc = await waitForCondition<ImagingConnection>("imc", tenantNs, "intruder", "WorkloadsPatched", (c) => c.status === "False", 30_000);
    const workload = imc.status?.workloads?.find((w) => w.name === "unmarked");
    expect(workload?.message ?? "").to.contain("mtls.imaging.dev/imaging-connections");
    const after = await getJson<{ metadata: { resourceVersion: string } }>(["get", "deployment", "unmarked", "-n", tenantNs]);
    expect(after.metadata.resourceVersion).to.equal(before.metadata.resourceVersion);
  });

  it("throughout: the legitimate connection kept its certificate, CN reporting, signed by the database's CA", async () => {
    const imc = await getJson<ImagingConnection>(["get", "imc", "legit", "-n", tenantNs]);
    expect(imc.status?.conditions?.find((c) => c.type === "CertificateReady")).to.include({ status: "True" });
    expect(imc.status?.certificate?.serialNumber).to.equal(legitSerial);
    const data = secretBytes(await getJson<SecretObject>(["get", "secret", "legit-client-tls", "-n", tenantNs]));
    expect(loadIssuedCertificate(data["tls.crt"]!, data["tls.key"]!).subjectCommonName).to.equal("reporting");
    const sdb = await getJson<SecureDatabase>(["get", "sdb", "db", "-n", dbNs]);
    const revoked = (sdb.status?.trust?.revokedSerials ?? []).map((s) => s.toLowerCase().replace(/:/g, ""));
    expect(revoked).to.not.include(legitSerial.toLowerCase().replace(/:/g, ""));
  });
});
