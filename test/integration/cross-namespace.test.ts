import { expect } from "chai";
import type { ImagingConnection, SecureDatabase } from "../../src/api/types";
import type { SecretObject } from "../../src/kube/secrets";
import { secretBytes } from "../../src/kube/secrets";
import { loadIssuedCertificate } from "../../src/pki";
import { controlPlane } from "../support/hooks";
import { getJson, kubectlOk, waitForCondition } from "../support/kubectl-json";
import { connectionToDatabaseYaml, secureDatabaseWithoutServerYaml } from "../support/manifests";
import { startOperatorInNamespace, type OperatorInNamespace } from "../support/operator-fixture";
import { waitFor } from "../support/process";

const kubectl = (args: string[], input?: string) => kubectlOk(args, input);
const waitForCertificateReady = (ns: string, name: string, status: string) => waitForCondition<ImagingConnection>("imc", ns, name, "CertificateReady", (c) => c.status === status);

/**
 * A connection in one namespace, its database in another: only a grant in the database's own spec.access that names
 * the connection's namespace can let it have an identity from its CA (the deprecated spec.allowedNamespaces grants
 * nothing). Runs the operator across all namespaces, as a cluster install does.
 */
describe("ImagingConnection across namespaces (real API server, operator watching every namespace)", function () {
  this.timeout(120_000);
  let env: OperatorInNamespace;
  let dbNs: string;
  let appNs: string;

  before(async () => {
    env = await startOperatorInNamespace({ name: "xdb", watch: "all" });
    dbNs = env.ns;
    appNs = await env.cp.createNamespace("xapp");
    // The database need not be reachable for its CA and trust bundle to exist: those come first.
    // It grants "reporting" to its own namespace only (a grant's default namespace).
    await kubectl(["apply", "-f", "-"], secureDatabaseWithoutServerYaml(dbNs, "shared", { host: `shared-db.${dbNs}.svc`, access: [{ users: ["reporting"] }] }));
    await waitFor("the database's trust bundle", async () => (await controlPlane().kubectl(["get", "secret", "shared-server-tls", "-n", dbNs])).code === 0, 60_000, 200);
  });

  after(async () => env?.stop());

  it("refuses a connection from a namespace no grant of the database names: NamespaceNotAllowed, nothing issued", async () => {
    await kubectl(["apply", "-f", "-"], connectionToDatabaseYaml(appNs, "reporting", "reporting", { name: "shared", namespace: dbNs }));
    const imc = await waitForCertificateReady(appNs, "reporting", "False");
    const c = imc.status?.conditions?.find((x) => x.type === "CertificateReady");
    expect(c?.reason).to.equal("NamespaceNotAllowed");
    expect(c?.message).to.contain(`SecureDatabase ${dbNs}/shared grants no identity to namespace "${appNs}": its owner must add a grant for it to spec.access`);
    expect((await controlPlane().kubectl(["get", "secret", "reporting-client-tls", "-n", appNs])).code).to.not.equal(0);
    const events = await getJson<{ items: { reason: string }[] }>(["get", "events", "-n", appNs, "--field-selector", "involvedObject.name=reporting"]);
    expect(events.items.map((e) => e.reason)).to.include("NamespaceNotAllowed");
  });

  it("still refuses once the database lists the namespace only in the deprecated spec.allowedNamespaces, and says so", async () => {
    await kubectl(["patch", "sdb", "shared", "-n", dbNs, "--type=merge", "-p", JSON.stringify({ spec: { allowedNamespaces: [appNs] } })]);
    const imc = await waitForCondition<ImagingConnection>("imc", appNs, "reporting", "CertificateReady", (c) => c.message?.includes("allowedNamespaces") === true);
    const c = imc.status?.conditions?.find((x) => x.type === "CertificateReady");
    expect(c).to.include({ status: "False", reason: "NamespaceNotAllowed" });
    expect(c?.message).to.contain(`grants no identity to namespace "${appNs}" (it lists the namespace in spec.allowedNamespaces, which grants nothing since spec.access exists)`);
    expect((await controlPlane().kubectl(["get", "secret", "reporting-client-tls", "-n", appNs])).code).to.not.equal(0);
  });

  it("issues once a grant names the namespace: the Secret lands in the connection's namespace, signed by the database's CA", async () => {
    const access = [{ namespaces: [appNs], users: ["reporting"] }];
    await kubectl(["patch", "sdb", "shared", "-n", dbNs, "--type=merge", "-p", JSON.stringify({ spec: { allowedNamespaces: null, access } })]);
    const imc = await waitForCertificateReady(appNs, "reporting", "True");
    const secret = await getJson<SecretObject>(["get", "secret", "reporting-client-tls", "-n", appNs]);
    const data = secretBytes(secret);
    expect(loadIssuedCertificate(data["tls.crt"]!, data["tls.key"]!).subjectCommonName).to.equal("reporting");
    const server = secretBytes(await getJson<SecretObject>(["get", "secret", "shared-server-tls", "-n", dbNs]));
    expect(data["ca.crt"]!.equals(server["ca.crt"]!)).to.equal(true);
    // The database is not Ready (its ConfigMap does not exist), so the login check waits instead of failing.
    expect(imc.status?.conditions?.find((x) => x.type === "ConnectionVerified")).to.include({ status: "Unknown", reason: "WaitingForDatabase" });
    expect(imc.status?.declaration?.host).to.equal(`shared-db.${dbNs}.svc`);
  });

  it("a database run as a Deployment (spec.workloadRef kind Deployment) that does not exist yet: WorkloadNotFound, with an event", async () => {
    const extra = "  workloadRef: { kind: Deployment, name: css-single }\n";
    await kubectl(["apply", "-f", "-"], secureDatabaseWithoutServerYaml(dbNs, "as-deployment", { extra }));
    await waitFor(
      "WorkloadNotFound event",
      async () => (await getJson<{ items: { reason: string; message: string }[] }>(["get", "events", "-n", dbNs, "--field-selector", "involvedObject.name=as-deployment"])).items.some((e) => e.reason === "WorkloadNotFound" && e.message.includes("Deployment css-single (spec.workloadRef) does not exist")),
      30_000,
      200,
    );
  });

  it("never writes its server certificate over a Secret that is not its own: SecretConflict, the Secret untouched", async () => {
    await kubectl(["create", "secret", "generic", "someone-elses", "-n", dbNs, "--from-literal=tls.crt=mine"]);
    const extra = "  serverCertificate: { secretName: someone-elses }\n";
    await kubectl(["apply", "-f", "-"], secureDatabaseWithoutServerYaml(dbNs, "squatter", { extra }));
    const sdb = await waitForCondition<SecureDatabase>("sdb", dbNs, "squatter", "ServerCertificateReady", (c) => c.status === "False");
    const c = sdb.status?.conditions?.find((x) => x.type === "ServerCertificateReady");
    expect(c?.reason).to.equal("SecretConflict");
    expect(c?.message).to.contain("Secret someone-elses (spec.serverCertificate.secretName) exists and was not created by the operator");
    const secret = await getJson<SecretObject>(["get", "secret", "someone-elses", "-n", dbNs]);
    expect(Object.keys(secret.data ?? {})).to.deep.equal(["tls.crt"]);
    expect(secretBytes(secret)["tls.crt"]!.toString()).to.equal("mine");
    expect(secret.metadata.ownerReferences ?? []).to.deep.equal([]);
  });

  it("deleting a database that only had a VolumeConflict on a workload leaves the other database's mount there", async () => {
    await kubectl(["apply", "-f", "-"], JSON.stringify({
      apiVersion: "apps/v1",
      kind: "StatefulSet",
      metadata: { name: "shared-css", namespace: dbNs, annotations: { "mtls.imaging.dev/secure-database": "mounter,second" } },
      spec: { serviceName: "shared-css", selector: { matchLabels: { app: "shared-css" } }, template: { metadata: { labels: { app: "shared-css" } }, spec: { containers: [{ name: "postgres", image: "postgres:15" }] } } },
    }));
    const extra = "  workloadRef: { kind: StatefulSet, name: shared-css }\n";
    const sdbYaml = (name: string) => secureDatabaseWithoutServerYaml(dbNs, name, { extra });
    const volumes = async () => (await getJson<{ spec: { template: { spec: { volumes?: { name: string; secret?: { secretName: string } }[] } } } }>(["get", "statefulset", "shared-css", "-n", dbNs])).spec.template.spec.volumes ?? [];
    await kubectl(["apply", "-f", "-"], sdbYaml("mounter"));
    await waitFor("mounter's volume", async () => (await volumes()).some((v) => v.secret?.secretName === "mounter-server-tls"), 30_000, 200);
    await kubectl(["apply", "-f", "-"], sdbYaml("second"));
    const second = await waitForCondition<SecureDatabase>("sdb", dbNs, "second", "WorkloadPatched", (c) => c.status === "False");
    expect(second.status?.conditions?.find((x) => x.type === "WorkloadPatched")?.reason).to.equal("VolumeConflict");
    await kubectl(["delete", "sdb", "second", "-n", dbNs, "--wait=true", "--timeout=30s"]);
    expect((await volumes()).map((v) => v.secret?.secretName)).to.deep.equal(["mounter-server-tls"]);
  });

  it("a database in a namespace that does not hold it: DatabaseNotFound", async () => {
    await kubectl(["apply", "-f", "-"], connectionToDatabaseYaml(appNs, "lost", "reporting", { name: "shared" }));
    const imc = await waitForCertificateReady(appNs, "lost", "False");
    expect(imc.status?.conditions?.find((x) => x.type === "CertificateReady")?.reason).to.equal("DatabaseNotFound");
  });
});
