import { expect } from "chai";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ImagingConnection, SecureDatabase } from "../../src/api/types";
import type { SecretObject } from "../../src/kube/secrets";
import { secretBytes } from "../../src/kube/secrets";
import { generateCA, loadIssuedCertificate } from "../../src/pki";
import { OPERATOR_USER } from "../support/controlplane";
import { controlPlane } from "../support/hooks";
import { condition, getCASecret, getJson, kubectlOk, waitForCondition, type ConditionView } from "../support/kubectl-json";
import { castImagingWorkloads, imagingConnectionYaml } from "../support/manifests";
import { startOperatorWithDatabase, type OperatorWithDatabase } from "../support/operator-fixture";
import { jdbcConnect, psql, type PostgresServer } from "../support/postgres";
import { run, waitFor } from "../support/process";

type Json = Record<string, unknown>;
interface WorkloadJson {
  metadata: { name: string; generation?: number; managedFields?: { manager: string }[]; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { template: { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> }; spec: { containers: Json[]; volumes?: Json[] } } } & Json;
}

const WRITE_VERBS = new Set(["create", "update", "patch", "delete", "deletecollection"]);
const MOUNT = "/etc/cast-imaging/mtls/analysis";

const kubectl = (args: string[], input?: string) => kubectlOk(args, input);
const waitForImc = (ns: string, name: string, type: string, predicate: (c: ConditionView) => boolean, timeoutMs?: number) => waitForCondition<ImagingConnection>("imc", ns, name, type, predicate, timeoutMs);


/** A template with everything the operator added taken out again: volumes mtls-*, the .ini volume, its mounts, env and annotation. */
function withoutOurs(template: WorkloadJson["spec"]["template"]): WorkloadJson["spec"]["template"] {
  const ours = (n: unknown) => typeof n === "string" && (n.startsWith("mtls-") || n === "cast-imaging-mtls-ini");
  const copy = JSON.parse(JSON.stringify(template)) as WorkloadJson["spec"]["template"];
  copy.spec.volumes = (copy.spec.volumes ?? []).filter((v) => !ours(v.name));
  if (copy.spec.volumes.length === 0) delete copy.spec.volumes;
  for (const c of copy.spec.containers) {
    c.volumeMounts = ((c.volumeMounts as Json[] | undefined) ?? []).filter((m) => !ours(m.name));
    if ((c.volumeMounts as Json[]).length === 0) delete c.volumeMounts;
    c.env = ((c.env as Json[] | undefined) ?? []).filter((e) => e.name !== "CASTCONNECTIONEXTRAPARAMETERS" && !String(e.name).startsWith("PGSSL"));
    if ((c.env as Json[]).length === 0) delete c.env;
  }
  if (copy.metadata?.annotations) {
    delete copy.metadata.annotations["mtls.imaging.dev/connections"];
    if (Object.keys(copy.metadata.annotations).length === 0) delete copy.metadata.annotations;
  }
  return copy;
}

describe("ImagingConnection end to end (real API server, real PostgreSQL, psql and JDBC)", function () {
  this.timeout(180_000);
  let env: OperatorWithDatabase;
  let ns: string;
  let pg: PostgresServer;
  let clientDir: string;
  let originalDeployment: WorkloadJson;
  let originalStatefulSet: WorkloadJson;
  let helmTemplate: WorkloadJson["spec"]["template"];

  before(async () => {
    env = await startOperatorWithDatabase({
      name: "imc",
      databases: [{ roles: ["analysis"] }],
      // The "kubelet" of a CAST Imaging pod: lays the client Secret down where JDBC and psql read it.
      clientSecrets: ["analysis-client-tls"],
      beforeOperator: async ({ ns }) => {
        const { deployment, statefulSet } = castImagingWorkloads(ns);
        await kubectl(["apply", "-f", "-"], JSON.stringify(deployment));
        await kubectl(["apply", "-f", "-"], JSON.stringify(statefulSet));
        originalDeployment = await getJson<WorkloadJson>(["get", "deployment", "imaging-services", "-n", ns]);
        originalStatefulSet = await getJson<WorkloadJson>(["get", "statefulset", "analysis-node", "-n", ns]);
      },
      // analysis is mounted into the CAST workloads; ghost (a role the server lacks) only needs its certificate.
      secureDatabase: { access: [{ users: ["analysis"], mountIntoWorkloads: true }, { users: ["ghost"] }] },
    });
    ({ ns, pg } = env);
    clientDir = env.clientDirs["analysis-client-tls"]!;
  });

  after(async () => env?.stop());

  it("issues the client certificate, patches both workloads and logs in: Ready", async () => {
    await kubectl(
      ["apply", "-f", "-"],
      imagingConnectionYaml(ns, "analysis", "analysis", `  workloads:
    - { kind: Deployment, name: imaging-services, containers: [app] }
    - { kind: StatefulSet, name: analysis-node }
`),
    );
    const imc = await waitForImc(ns, "analysis", "Ready", (c) => c.status === "True");
    expect(condition(imc, "CertificateReady")?.status).to.equal("True");
    expect(condition(imc, "WorkloadsPatched")).to.include({ status: "True", reason: "Patched" });
    expect(condition(imc, "ConnectionVerified")).to.include({ status: "True", reason: "LoggedIn" });
    expect(condition(imc, "Revoked")?.status).to.equal("False");
    expect(imc.status?.verification?.serialNumber).to.equal(imc.status?.certificate?.serialNumber);
    expect(imc.status?.workloads?.map((w) => [w.kind, w.name, w.state])).to.deep.equal([
      ["Deployment", "imaging-services", "Patched"],
      ["StatefulSet", "analysis-node", "Patched"],
    ]);
    expect(imc.metadata.finalizers).to.include("mtls.imaging.dev/cleanup");
  });

  it("writes the Secret in every format CAST's components read, CN = the user, signed by the database's CA", async () => {
    const imc = await getJson<ImagingConnection>(["get", "imc", "analysis", "-n", ns]);
    const secret = await getJson<SecretObject>(["get", "secret", "analysis-client-tls", "-n", ns]);
    expect(Object.keys(secret.data ?? {}).sort()).to.deep.equal(["ca.crt", "client.crt", "client.key", "client.pem.pk8", "client.pfx", "client.pfx.password", "client.pk8", "root.crt", "tls.crt", "tls.key"]);
    expect(secret.type).to.equal("kubernetes.io/tls");
    expect(secret.metadata.labels).to.include({ "app.kubernetes.io/managed-by": "imaging-db-mtls-operator", "mtls.imaging.dev/owner": "ImagingConnection.analysis" });
    expect(secret.metadata.ownerReferences?.[0]).to.include({ kind: "ImagingConnection", name: "analysis", uid: imc.metadata.uid, controller: true });
    const data = secretBytes(secret);
    const cert = loadIssuedCertificate(data["tls.crt"]!, data["tls.key"]!);
    expect(cert.subjectCommonName).to.equal("analysis");
    expect(cert.serialNumber).to.equal(imc.status?.certificate?.serialNumber);
    // The trust bundle is the database's, byte for byte.
    const server = secretBytes(await getJson<SecretObject>(["get", "secret", "db-server-tls", "-n", ns]));
    expect(data["root.crt"]!.equals(server["ca.crt"]!)).to.equal(true);
    const ca = secretBytes(await getCASecret<SecretObject>(ns, "db-ca"));
    const dir = await mkdtemp(join(tmpdir(), "imc-verify-"));
    try {
      await writeFile(join(dir, "ca.crt"), ca["tls.crt"]!);
      await writeFile(join(dir, "client.crt"), data["client.crt"]!);
      const r = await run("openssl", ["verify", "-CAfile", join(dir, "ca.crt"), join(dir, "client.crt")]);
      expect(r.stdout.trim()).to.equal(`${join(dir, "client.crt")}: OK`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    // PKCS#8 DER and PEM hold the same key as tls.key.
    expect(data["client.pk8"]![0]).to.equal(0x30);
    expect(data["client.pem.pk8"]!.toString()).to.equal(data["tls.key"]!.toString());
  });

  it("patches exactly our volumes, mounts and env into the workloads, and leaves every other field as it was", async () => {
    const dep = await getJson<WorkloadJson>(["get", "deployment", "imaging-services", "-n", ns]);
    const t = dep.spec.template;
    expect(t.spec.volumes).to.deep.include({ name: "mtls-analysis", secret: { secretName: "analysis-client-tls", defaultMode: 0o440 } });
    expect(t.spec.volumes).to.deep.include({ name: "cast-imaging-mtls-ini", configMap: { name: "cast-mtls-ini-deployment-imaging-services", defaultMode: 0o444 } });
    const app = t.spec.containers.find((c) => c.name === "app")!;
    expect(app.volumeMounts).to.deep.equal([
      { name: "config", mountPath: "/opt/config" },
      { name: "mtls-analysis", mountPath: MOUNT, readOnly: true },
      { name: "cast-imaging-mtls-ini", mountPath: "/etc/cast-imaging/mtls-ini", readOnly: true },
    ]);
    expect(app.env).to.deep.equal([
      { name: "JAVA_OPTS", value: "-Xmx2g" },
      { name: "CASTCONNECTIONEXTRAPARAMETERS", value: "/etc/cast-imaging/mtls-ini/cast-connections.ini" },
    ]);
    // The sidecar was not selected: untouched.
    expect(t.spec.containers.find((c) => c.name === "sidecar")).to.deep.equal(originalDeployment.spec.template.spec.containers.find((c) => c.name === "sidecar"));
    // Nothing else changed: take ours out and the template is the chart's again; labels and annotations stay.
    expect(withoutOurs(t)).to.deep.equal(originalDeployment.spec.template);
    expect(dep.metadata.labels).to.deep.equal(originalDeployment.metadata.labels);
    expect(dep.spec.replicas).to.equal(1);
    const withFields = await getJson<WorkloadJson>(["get", "deployment", "imaging-services", "-n", ns, "--show-managed-fields"]);
    expect(withFields.metadata.managedFields?.map((m) => m.manager)).to.include("imaging-db-mtls-operator-connections");
    const sts = await getJson<WorkloadJson>(["get", "statefulset", "analysis-node", "-n", ns]);
    expect(withoutOurs(sts.spec.template)).to.deep.equal(originalStatefulSet.spec.template);
    expect(sts.spec.template.spec.containers[0]!.volumeMounts).to.deep.equal([
      { name: "mtls-analysis", mountPath: MOUNT, readOnly: true },
      { name: "cast-imaging-mtls-ini", mountPath: "/etc/cast-imaging/mtls-ini", readOnly: true },
    ]);
  });

  it("renders the CAST .ini: one [host:port] section with the mounted paths", async () => {
    const cm = await getJson<{ data: Record<string, string>; metadata: { ownerReferences?: { kind: string; name: string }[] } }>(["get", "configmap", "cast-mtls-ini-deployment-imaging-services", "-n", ns]);
    expect(cm.data).to.deep.equal({
      "cast-connections.ini": `[localhost:${pg.port}]\nssl=true\nsslmode=verify-full\nsslcert=${MOUNT}/client.crt\nsslkey=${MOUNT}/client.pk8\nsslrootcert=${MOUNT}/root.crt\n`,
    });
    expect(cm.metadata.ownerReferences?.[0]).to.include({ kind: "Deployment", name: "imaging-services" });
  });

  it("tells what to declare in CAST Imaging (status.declaration) and shows it in kubectl get", async () => {
    const imc = await getJson<ImagingConnection>(["get", "imc", "analysis", "-n", ns]);
    expect(imc.status?.declaration).to.deep.equal({
      host: "localhost",
      port: pg.port,
      database: "postgres",
      user: "analysis",
      sslMode: "verify-full",
      certificatePath: `${MOUNT}/client.crt`,
      keyPath: `${MOUNT}/client.pk8`,
      keyPemPath: `${MOUNT}/client.key`,
      rootCertificatePath: `${MOUNT}/root.crt`,
      pfxPath: `${MOUNT}/client.pfx`,
      pfxPasswordSecretKey: "client.pfx.password",
      iniPath: "/etc/cast-imaging/mtls-ini/cast-connections.ini",
      jdbcUrl: `jdbc:postgresql://localhost:${pg.port}/postgres?ssl=true&sslmode=verify-full&sslcert=${MOUNT}/client.crt&sslkey=${MOUNT}/client.pk8&sslrootcert=${MOUNT}/root.crt`,
    });
    const table = await kubectl(["get", "imc", "analysis", "-n", ns]);
    expect(table.split("\n")[0]).to.match(/^NAME\s+READY\s+REASON\s+USER\s+DATABASE\s+EXPIRES\s+AGE$/);
    expect(table).to.contain(imc.status!.certificate!.notAfter!);
    expect(table).to.match(/analysis\s+True\s+Connected\s+analysis\s+db\s+\d{4}-\d\d-\d\dT/);
  });

  it("connects with the mounted files: JDBC with the PKCS#8 DER key and psql with the PEM key, verify-full; pg_stat_ssl shows the issued serial", async () => {
    const imc = await getJson<ImagingConnection>(["get", "imc", "analysis", "-n", ns]);
    const serialDecimal = BigInt(`0x${imc.status!.certificate!.serialNumber!}`).toString();
    await waitFor("client files laid down", async () => (await readFile(join(clientDir, "client.pk8")).catch(() => undefined)) !== undefined, 10_000);
    const query = "SELECT current_user || ' ' || client_serial || ' ' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    // The URL exactly as declared, with the in-container folder replaced by where the "kubelet" put the files.
    const url = imc.status!.declaration!.jdbcUrl!.replaceAll(MOUNT, clientDir);
    const jdbc = await jdbcConnect({ url, user: "analysis", sslcert: join(clientDir, "client.crt"), sslkey: join(clientDir, "client.pk8"), sslrootcert: join(clientDir, "root.crt"), sslmode: "verify-full", query });
    expect(jdbc.stderr.trim(), jdbc.stderr).to.equal("");
    expect(jdbc.stdout.trim()).to.equal(`analysis ${serialDecimal} true`);
    const viaPsql = await psql({ host: "localhost", port: pg.port, user: "analysis", sslmode: "verify-full", sslcert: join(clientDir, "client.crt"), sslkey: join(clientDir, "client.key"), sslrootcert: join(clientDir, "root.crt"), command: query });
    expect(viaPsql.stderr.trim(), viaPsql.stderr).to.equal("");
    expect(viaPsql.stdout.trim()).to.equal(`analysis ${serialDecimal} true`);
    // Without the certificate there is no way in.
    const none = await psql({ host: "localhost", port: pg.port, user: "analysis", sslmode: "verify-full", sslrootcert: join(clientDir, "root.crt"), command: "SELECT 1" });
    expect(none.code).to.not.equal(0);
    expect(none.stderr).to.match(/certificate|pg_hba\.conf/);
  });

  it("puts the mounts back after a Helm upgrade replaces the pod template, and says so in an event", async () => {
    const { deployment } = castImagingWorkloads(ns);
    const before = await getJson<WorkloadJson>(["get", "deployment", "imaging-services", "-n", ns]);
    // What `helm upgrade --force` or a GitOps sync with Replace=true does: the whole object, without our fields.
    const upgraded = { ...deployment, spec: { ...deployment.spec, template: { ...deployment.spec.template, metadata: { ...deployment.spec.template.metadata, annotations: { "chart/checksum": "def" } } } } };
    const replaced = JSON.parse(await kubectl(["replace", "-o", "json", "-f", "-"], JSON.stringify(upgraded))) as WorkloadJson;
    expect(replaced.spec.template.spec.volumes?.map((v) => v.name)).to.deep.equal(["config"]);
    expect(replaced.metadata.generation).to.be.greaterThan(before.metadata.generation!);
    helmTemplate = { ...originalDeployment.spec.template, metadata: { ...originalDeployment.spec.template.metadata, annotations: { "chart/checksum": "def" } } };
    await waitFor(
      "mounts restored",
      async () => {
        const d = await getJson<WorkloadJson>(["get", "deployment", "imaging-services", "-n", ns]);
        return (d.spec.template.spec.volumes ?? []).some((v) => v.name === "mtls-analysis") && d.spec.template.metadata?.annotations?.["chart/checksum"] === "def";
      },
      20_000,
      100,
    );
    const events = await getJson<{ items: { reason: string; type: string; message: string }[] }>(["get", "events", "-n", ns, "--field-selector", "involvedObject.name=analysis,involvedObject.kind=ImagingConnection"]);
    expect(events.items.find((e) => e.reason === "MountsRestored")).to.include({ type: "Warning" });
    const imc = await waitForImc(ns, "analysis", "WorkloadsPatched", (c) => c.status === "True");
    expect(condition(imc, "Ready")?.status).to.equal("True");
  });

  it("makes no writes at all while nothing changes", async () => {
    const since = new Date();
    await new Promise((r) => setTimeout(r, 3000));
    const writes = (await controlPlane().auditEvents(OPERATOR_USER, since)).filter((e) => WRITE_VERBS.has(e.verb));
    expect(writes.map((w) => `${w.verb} ${w.objectRef?.resource}/${w.objectRef?.name}`)).to.deep.equal([]);
  });

  it("follows the database's trust bundle: an allowlisted certificate reaches root.crt without re-issuing the client certificate", async () => {
    const before = await getJson<ImagingConnection>(["get", "imc", "analysis", "-n", ns]);
    const partner = await generateCA({ commonName: "partner system", duration: 24 * 3600_000, now: new Date() });
    await kubectl(["patch", "sdb", "db", "-n", ns, "--type=merge", "-p", JSON.stringify({ spec: { trust: { allowlist: [{ name: "partner", certificate: partner.certPem }] } } })]);
    let root = "";
    await waitFor(
      "root.crt with the partner certificate",
      async () => {
        root = secretBytes(await getJson<SecretObject>(["get", "secret", "analysis-client-tls", "-n", ns]))["root.crt"]!.toString();
        return root.includes(partner.certPem.trim());
      },
      30_000,
      200,
    );
    const server = secretBytes(await getJson<SecretObject>(["get", "secret", "db-server-tls", "-n", ns]));
    expect(root).to.equal(server["ca.crt"]!.toString());
    expect(root.match(/BEGIN CERTIFICATE/g)).to.have.length(2);
    const after = await waitForImc(ns, "analysis", "Ready", (c) => c.status === "True");
    expect(after.status?.certificate?.serialNumber).to.equal(before.status?.certificate?.serialNumber);
    const sdb = await getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns]);
    expect(sdb.status?.trust?.allowlisted).to.deep.equal([{ name: "partner", fingerprintSHA256: partner.facts.fingerprintSha256, subject: partner.facts.subject, notAfter: partner.facts.notAfter.toISOString() }]);
    // And back: removing the entry removes the trust.
    await kubectl(["patch", "sdb", "db", "-n", ns, "--type=json", "-p", JSON.stringify([{ op: "remove", path: "/spec/trust" }])]);
    await waitFor(
      "root.crt without the partner certificate",
      async () => !secretBytes(await getJson<SecretObject>(["get", "secret", "analysis-client-tls", "-n", ns]))["root.crt"]!.toString().includes(partner.certPem.trim()),
      30_000,
      200,
    );
  });

  describe("bad input: a condition, an event, nothing issued or lost", () => {
    it("a missing SecureDatabase: DatabaseNotFound, no Secret", async () => {
      await kubectl(["apply", "-f", "-"], imagingConnectionYaml(ns, "orphan", "analysis").replace("name: db }", "name: nowhere }"));
      const imc = await waitForImc(ns, "orphan", "CertificateReady", (c) => c.status === "False");
      expect(condition(imc, "CertificateReady")?.reason).to.equal("DatabaseNotFound");
      expect(condition(imc, "Ready")).to.include({ status: "False", reason: "DatabaseNotFound" });
      const r = await controlPlane().kubectl(["get", "secret", "orphan-client-tls", "-n", ns]);
      expect(r.code).to.not.equal(0);
      const events = await getJson<{ items: { reason: string }[] }>(["get", "events", "-n", ns, "--field-selector", "involvedObject.name=orphan"]);
      expect(events.items.map((e) => e.reason)).to.include("DatabaseNotFound");
      await kubectl(["delete", "imc", "orphan", "-n", ns, "--wait=true"]);
    });

    it("a role the server does not know: ConnectionVerified False with the server's own words", async () => {
      await kubectl(["apply", "-f", "-"], imagingConnectionYaml(ns, "ghost", "ghost"));
      const imc = await waitForImc(ns, "ghost", "ConnectionVerified", (c) => c.status === "False");
      expect(condition(imc, "ConnectionVerified")?.reason).to.equal("RoleMissing");
      expect(condition(imc, "ConnectionVerified")?.message).to.contain('FATAL: role "ghost" does not exist');
      expect(condition(imc, "CertificateReady")?.status).to.equal("True");
      expect(condition(imc, "WorkloadsPatched")?.reason).to.equal("NoWorkloads");
      // Bounded retries: the failure is not retried on every status write.
      const since = new Date();
      await new Promise((r) => setTimeout(r, 3000));
      const writes = (await controlPlane().auditEvents(OPERATOR_USER, since)).filter((e) => WRITE_VERBS.has(e.verb) && e.objectRef?.name === "ghost");
      expect(writes.length).to.be.at.most(1);
      await kubectl(["delete", "imc", "ghost", "-n", ns, "--wait=true"]);
    });

    it("two connections writing the same Secret: the newer one is refused, the older one keeps working", async () => {
      await kubectl(["apply", "-f", "-"], imagingConnectionYaml(ns, "copycat", "analysis", "  secretName: analysis-client-tls\n"));
      const imc = await waitForImc(ns, "copycat", "CertificateReady", (c) => c.status === "False");
      expect(condition(imc, "CertificateReady")?.reason).to.equal("SecretConflict");
      expect(condition(imc, "CertificateReady")?.message).to.contain("ImagingConnection analysis");
      const secret = await getJson<SecretObject>(["get", "secret", "analysis-client-tls", "-n", ns]);
      expect(secret.metadata.labels?.["mtls.imaging.dev/owner"]).to.equal("ImagingConnection.analysis");
      await kubectl(["delete", "imc", "copycat", "-n", ns, "--wait=true"]);
    });

    it("a Secret of that name the operator did not create: SecretConflict, looked for before anything is issued again, never touched; once it is gone, Ready", async () => {
      await kubectl(["create", "secret", "generic", "squatted-tls", "-n", ns, "--from-literal=note=mine"]);
      const before = await getJson<SecretObject>(["get", "secret", "squatted-tls", "-n", ns]);
      const since = new Date();
      await kubectl(["apply", "-f", "-"], imagingConnectionYaml(ns, "squatter", "analysis", "  secretName: squatted-tls\n"));
      const imc = await waitForImc(ns, "squatter", "CertificateReady", (c) => c.status === "False");
      expect(condition(imc, "CertificateReady")?.reason).to.equal("SecretConflict");
      expect(condition(imc, "CertificateReady")?.message).to.contain("Secret squatted-tls exists and was not created by the operator");
      // Reconciled again (its own status write wakes it): it reads the name first and writes nothing more to it.
      await new Promise((r) => setTimeout(r, 3000));
      const creates = (await controlPlane().auditEvents(OPERATOR_USER, since)).filter((e) => e.objectRef?.resource === "secrets" && e.objectRef.name === "squatted-tls" && WRITE_VERBS.has(e.verb));
      expect(creates.map((e) => `${e.verb} ${e.responseStatus?.code}`)).to.deep.equal(["create 409"]);
      const after = await getJson<SecretObject>(["get", "secret", "squatted-tls", "-n", ns]);
      expect(after.metadata.resourceVersion).to.equal(before.metadata.resourceVersion);
      expect(Object.keys(after.data ?? {})).to.deep.equal(["note"]);

      await kubectl(["delete", "secret", "squatted-tls", "-n", ns]);
      // The operator watches only its own Secrets: the next pass (a minute, or any change) finds the name free.
      await kubectl(["annotate", "imc", "squatter", "-n", ns, "example.com/nudge=1"]);
      await waitForImc(ns, "squatter", "CertificateReady", (c) => c.status === "True");
      const secret = await getJson<SecretObject>(["get", "secret", "squatted-tls", "-n", ns]);
      expect(secret.metadata.labels?.["mtls.imaging.dev/owner"]).to.equal("ImagingConnection.squatter");
      await kubectl(["delete", "imc", "squatter", "-n", ns, "--wait=true"]);
    });

    it("a workload or container that does not exist, then appears: NotFound, then Patched", async () => {
      await kubectl(["apply", "-f", "-"], imagingConnectionYaml(ns, "later", "analysis", "  libpqEnv: true\n  workloads:\n    - { kind: Deployment, name: dashboards }\n    - { kind: StatefulSet, name: analysis-node, containers: [missing] }\n"));
      let imc = await waitForImc(ns, "later", "WorkloadsPatched", (c) => c.status === "False");
      expect(imc.status?.workloads?.map((w) => [w.name, w.state])).to.deep.equal([
        ["dashboards", "NotFound"],
        ["analysis-node", "NotFound"],
      ]);
      expect(imc.status?.workloads?.[1]?.message).to.contain('has no container "missing"');
      expect(condition(imc, "WorkloadsPatched")?.reason).to.equal("WorkloadNotFound");
      await kubectl(["apply", "-f", "-"], JSON.stringify({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "dashboards", namespace: ns, annotations: { "mtls.imaging.dev/imaging-connections": "*" } }, spec: { selector: { matchLabels: { app: "d" } }, template: { metadata: { labels: { app: "d" } }, spec: { containers: [{ name: "dashboards", image: "castimaging/dashboards" }] } } } }));
      await kubectl(["patch", "imc", "later", "-n", ns, "--type=json", "-p", JSON.stringify([{ op: "remove", path: "/spec/workloads/1" }])]);
      imc = await waitForImc(ns, "later", "WorkloadsPatched", (c) => c.status === "True");
      expect(imc.status?.workloads?.map((w) => [w.name, w.state])).to.deep.equal([["dashboards", "Patched"]]);
      const dashboards = await getJson<WorkloadJson>(["get", "deployment", "dashboards", "-n", ns]);
      expect(dashboards.spec.template.spec.volumes?.map((v) => v.name)).to.deep.equal(["mtls-later", "cast-imaging-mtls-ini"]);
      // libpqEnv: the PGSSL* defaults for libpq-based tools, with the PEM key (libpq does not read PKCS#8 DER).
      expect(dashboards.spec.template.spec.containers[0]!.env).to.deep.equal([
        { name: "CASTCONNECTIONEXTRAPARAMETERS", value: "/etc/cast-imaging/mtls-ini/cast-connections.ini" },
        { name: "PGSSLMODE", value: "verify-full" },
        { name: "PGSSLCERT", value: "/etc/cast-imaging/mtls/later/client.crt" },
        { name: "PGSSLKEY", value: "/etc/cast-imaging/mtls/later/client.key" },
        { name: "PGSSLROOTCERT", value: "/etc/cast-imaging/mtls/later/root.crt" },
      ]);
    });

    it("a second identity for the same instance in one workload: refused there (ConflictingInstance), the first keeps it", async () => {
      await kubectl(["patch", "imc", "later", "-n", ns, "--type=json", "-p", JSON.stringify([{ op: "add", path: "/spec/workloads/-", value: { kind: "StatefulSet", name: "analysis-node" } }])]);
      const imc = await waitForImc(ns, "later", "WorkloadsPatched", (c) => c.status === "False");
      expect(condition(imc, "WorkloadsPatched")?.reason).to.equal("ConflictingInstance");
      expect(imc.status?.workloads?.map((w) => [w.name, w.state])).to.deep.equal([
        ["dashboards", "Patched"],
        ["analysis-node", "Conflict"],
      ]);
      const sts = await getJson<WorkloadJson>(["get", "statefulset", "analysis-node", "-n", ns]);
      expect(sts.spec.template.spec.volumes?.map((v) => v.name)).to.deep.equal(["mtls-analysis", "cast-imaging-mtls-ini"]);
      const events = await getJson<{ items: { reason: string }[] }>(["get", "events", "-n", ns, "--field-selector", "involvedObject.name=later"]);
      expect(events.items.map((e) => e.reason)).to.include("ConflictingInstance");
    });

    it("a database that goes away: the mount is withdrawn and status.workloads says so; it comes back with the database", async () => {
      await kubectl(["patch", "imc", "later", "-n", ns, "--type=merge", "-p", JSON.stringify({ spec: { databaseRef: { name: "gone" } } })]);
      let imc = await waitForImc(ns, "later", "WorkloadsPatched", (c) => c.status === "False" && c.reason === "DatabaseNotFound");
      expect(imc.status?.workloads?.map((w) => [w.name, w.state])).to.deep.equal([
        ["dashboards", "Pending"],
        ["analysis-node", "Pending"],
      ]);
      expect(imc.status?.workloads?.[0]?.message).to.contain("not mounted while the connection has no certificate (DatabaseNotFound)");
      await waitFor(
        "the mount of a connection without a database withdrawn",
        async () => !((await getJson<WorkloadJson>(["get", "deployment", "dashboards", "-n", ns])).spec.template.spec.volumes ?? []).some((v) => v.name === "mtls-later"),
        30_000,
        250,
      );
      await kubectl(["patch", "imc", "later", "-n", ns, "--type=merge", "-p", JSON.stringify({ spec: { databaseRef: { name: "db" } } })]);
      imc = await waitForImc(ns, "later", "WorkloadsPatched", (c) => c.reason === "ConflictingInstance");
      expect(imc.status?.workloads?.map((w) => [w.name, w.state])).to.deep.equal([
        ["dashboards", "Patched"],
        ["analysis-node", "Conflict"],
      ]);
      const dashboards = await getJson<WorkloadJson>(["get", "deployment", "dashboards", "-n", ns]);
      expect(dashboards.spec.template.spec.volumes?.map((v) => v.name)).to.deep.equal(["mtls-later", "cast-imaging-mtls-ini"]);
    });

    it("a volume of our name that is not ours: Conflict, the workload is not touched", async () => {
      await kubectl(["apply", "-f", "-"], JSON.stringify({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "viewer", namespace: ns, annotations: { "mtls.imaging.dev/imaging-connections": "*" } }, spec: { selector: { matchLabels: { app: "v" } }, template: { metadata: { labels: { app: "v" } }, spec: { containers: [{ name: "viewer", image: "castimaging/imaging-viewer" }], volumes: [{ name: "mtls-squatter", emptyDir: {} }] } } } }));
      const original = await getJson<WorkloadJson>(["get", "deployment", "viewer", "-n", ns]);
      await kubectl(["apply", "-f", "-"], imagingConnectionYaml(ns, "squatter", "analysis", "  workloads:\n    - { kind: Deployment, name: viewer }\n"));
      const imc = await waitForImc(ns, "squatter", "WorkloadsPatched", (c) => c.status === "False");
      expect(condition(imc, "WorkloadsPatched")?.reason).to.equal("WorkloadConflict");
      expect(imc.status?.workloads?.[0]?.message).to.contain('already has a volume named "mtls-squatter"');
      const after = await getJson<WorkloadJson>(["get", "deployment", "viewer", "-n", ns]);
      expect(after.metadata.generation).to.equal(original.metadata.generation);
      expect(after.spec.template).to.deep.equal(original.spec.template);
      await kubectl(["delete", "imc", "squatter", "-n", ns, "--wait=true"]);
    });
  });

  describe("deletion", () => {
  it("deleting a patched workload takes its .ini ConfigMap with it (owner reference, real garbage collector); recreated, it is patched again", async () => {
    const ini = "cast-mtls-ini-deployment-dashboards";
    const cm = await getJson<{ metadata: { ownerReferences?: { kind: string; name: string; uid: string }[] } }>(["get", "configmap", ini, "-n", ns]);
    const dashboards = await getJson<WorkloadJson & { metadata: { uid: string } }>(["get", "deployment", "dashboards", "-n", ns]);
    expect(cm.metadata.ownerReferences?.[0]).to.include({ kind: "Deployment", name: "dashboards", uid: dashboards.metadata.uid });
    await kubectl(["delete", "deployment", "dashboards", "-n", ns, "--wait=true", "--timeout=60s"]);
    await waitFor(`the garbage collector to delete ${ini}`, async () => (await controlPlane().kubectl(["get", "configmap", ini, "-n", ns])).code !== 0, 90_000, 500);
    await kubectl(["apply", "-f", "-"], JSON.stringify({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "dashboards", namespace: ns, annotations: { "mtls.imaging.dev/imaging-connections": "*" } }, spec: { selector: { matchLabels: { app: "d" } }, template: { metadata: { labels: { app: "d" } }, spec: { containers: [{ name: "dashboards", image: "castimaging/dashboards" }] } } } }));
    await waitFor(`${ini} to be written again for the new Deployment`, async () => {
      const again = await controlPlane().kubectl(["get", "configmap", ini, "-n", ns, "-o", "jsonpath={.metadata.ownerReferences[0].uid}"]);
      const uid = (await getJson<{ metadata: { uid: string } }>(["get", "deployment", "dashboards", "-n", ns])).metadata.uid;
      return again.code === 0 && again.stdout === uid;
    }, 60_000, 500);
    const imc = await getJson<ImagingConnection>(["get", "imc", "later", "-n", ns]);
    expect(imc.status?.workloads?.map((w) => [w.name, w.state])).to.deep.include(["dashboards", "Patched"]);
    const again = await getJson<WorkloadJson>(["get", "deployment", "dashboards", "-n", ns]);
    expect(again.spec.template.spec.volumes?.map((v) => v.name)).to.deep.equal(["mtls-later", "cast-imaging-mtls-ini"]);
  });

  it("deleting a connection takes back exactly what it added: the workloads return to their own spec", async () => {
    await kubectl(["delete", "imc", "later", "-n", ns, "--wait=true", "--timeout=60s"]);
    const dashboards = await getJson<WorkloadJson>(["get", "deployment", "dashboards", "-n", ns]);
    expect(dashboards.spec.template.spec.volumes).to.equal(undefined);
    expect(dashboards.spec.template.metadata?.annotations).to.equal(undefined);
    await kubectl(["delete", "imc", "analysis", "-n", ns, "--wait=true", "--timeout=60s"]);
    const dep = await getJson<WorkloadJson>(["get", "deployment", "imaging-services", "-n", ns]);
    expect(dep.spec.template).to.deep.equal(helmTemplate);
    const sts = await getJson<WorkloadJson>(["get", "statefulset", "analysis-node", "-n", ns]);
    expect(sts.spec.template).to.deep.equal(originalStatefulSet.spec.template);
    for (const cm of ["cast-mtls-ini-deployment-imaging-services", "cast-mtls-ini-statefulset-analysis-node", "cast-mtls-ini-deployment-dashboards"]) {
      const r = await controlPlane().kubectl(["get", "configmap", cm, "-n", ns]);
      expect(r.code, `${cm} should be gone`).to.not.equal(0);
    }
    // The client Secrets, owned by the deleted connections, go too: the cluster's garbage collector follows their owner reference.
    let left = "";
    await waitFor("the garbage collector to delete the deleted connections' Secrets", async () => {
      const g = await controlPlane().kubectl(["get", "secret", "-n", ns, "-o", 'jsonpath={range .items[*]}{.metadata.name}={.metadata.labels.mtls\\.imaging\\.dev/owner}{" "}{end}']);
      left = g.stdout.split(" ").filter((x) => /=ImagingConnection\.(analysis|later)$/.test(x)).join(" ");
      return g.code === 0 && left === "";
    }, 90_000, 500).catch((err: Error) => expect.fail(`${err.message}; still there: ${left}`));
  });
  });
});
