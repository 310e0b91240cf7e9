/**
 * Opt-in for what the operator did not create (issue 16, item 5; docs/security.md "Opt-in"), against the real API
 * server and a real PostgreSQL: each refusal leaves the object untouched (resourceVersion and bytes), the owner's
 * `kubectl annotate` then lets the operator in, and what it already managed stays managed (grandfathering).
 */
import { expect } from "chai";
import type { SecureDatabase } from "../../src/api/types";
import { generateCA } from "../../src/pki";
import { condition, getJson, kubectlOk, waitForCondition } from "../support/kubectl-json";
import { secureDatabaseWithoutServerYaml } from "../support/manifests";
import { startOperatorWithDatabase, type OperatorWithDatabase } from "../support/operator-fixture";

interface Obj {
  metadata: { resourceVersion: string; annotations?: Record<string, string> };
  data?: Record<string, string>;
  spec?: unknown;
}

const apply = (yaml: string) => kubectlOk(["apply", "-f", "-"], yaml);

describe("opt-in of objects the operator did not create (real API server, real PostgreSQL)", function () {
  this.timeout(180_000);
  let env: OperatorWithDatabase;
  let ns: string;

  before(async () => {
    // Neither the ConfigMap nor the StatefulSet opts in to anything.
    env = await startOperatorWithDatabase({ name: "optin", databases: [{ roles: ["app"], secureDatabases: "" }] });
    ns = env.ns;
  });

  after(async () => env?.stop());

  it("a ConfigMap without the annotation: ConfigApplied OptInMissing with the command, a Warning event, the ConfigMap untouched", async () => {
    const before = await getJson<Obj>(["get", "configmap", "pg-config", "-n", ns]);
    const workloadBefore = await getJson<Obj>(["get", "statefulset", "css", "-n", ns]);
    await apply(env.db.secureDatabaseYaml());
    const sdb = await waitForCondition<SecureDatabase>("sdb", ns, "db", "ConfigApplied", (c) => c.reason === "OptInMissing", 60_000);
    expect(condition(sdb, "ConfigApplied")?.message).to.include(`kubectl annotate -n ${ns} configmap/pg-config mtls.imaging.dev/secure-database=db`);
    const events = await getJson<{ items: { reason: string; type: string }[] }>(["get", "events", "-n", ns, "--field-selector", "involvedObject.name=db"]);
    expect(events.items.some((e) => e.reason === "OptInMissing" && e.type === "Warning")).to.equal(true);
    const after = await getJson<Obj>(["get", "configmap", "pg-config", "-n", ns]);
    expect(after.metadata.resourceVersion).to.equal(before.metadata.resourceVersion);
    expect(after.data).to.deep.equal(before.data);
    expect((await getJson<Obj>(["get", "statefulset", "css", "-n", ns])).metadata.resourceVersion).to.equal(workloadBefore.metadata.resourceVersion);
  });

  it("the ConfigMap opted in but not the workload: the blocks go in, WorkloadPatched OptInMissing, the StatefulSet untouched", async () => {
    const workloadBefore = await getJson<Obj>(["get", "statefulset", "css", "-n", ns]);
    await kubectlOk(["annotate", "-n", ns, "configmap/pg-config", "mtls.imaging.dev/secure-database=db"]);
    const sdb = await waitForCondition<SecureDatabase>("sdb", ns, "db", "WorkloadPatched", (c) => c.reason === "OptInMissing", 60_000);
    expect(condition(sdb, "WorkloadPatched")?.message).to.include(`kubectl annotate -n ${ns} statefulset/css mtls.imaging.dev/secure-database=db`);
    await waitForCondition<SecureDatabase>("sdb", ns, "db", "ConfigApplied", (c) => c.status === "True", 60_000);
    const after = await getJson<Obj>(["get", "statefulset", "css", "-n", ns]);
    expect(after.metadata.resourceVersion).to.equal(workloadBefore.metadata.resourceVersion);
    expect(after.spec).to.deep.equal(workloadBefore.spec);
  });

  it("once the workload's owner opts in too, the database is secured (Ready)", async () => {
    await kubectlOk(["annotate", "-n", ns, "statefulset/css", "mtls.imaging.dev/secure-database=db"]);
    const sdb = await waitForCondition<SecureDatabase>("sdb", ns, "db", "Ready", (c) => c.status === "True", 90_000);
    expect(condition(sdb, "WorkloadPatched")?.reason).to.equal("Mounted");
  });

  it("grandfathering: removing the annotations keeps what the operator already manages (owner label, mounted volume)", async () => {
    await kubectlOk(["annotate", "-n", ns, "configmap/pg-config", "mtls.imaging.dev/secure-database-"]);
    await kubectlOk(["annotate", "-n", ns, "statefulset/css", "mtls.imaging.dev/secure-database-"]);
    await kubectlOk(["annotate", "sdb", "db", "-n", ns, "--overwrite", "poke=1"]);
    await new Promise((r) => setTimeout(r, 3000));
    const sdb = await waitForCondition<SecureDatabase>("sdb", ns, "db", "Ready", (c) => c.status === "True", 60_000);
    expect(condition(sdb, "ConfigApplied")?.status).to.equal("True");
    expect(condition(sdb, "WorkloadPatched")?.reason).to.equal("Mounted");
  });

  it("a brought CA Secret without the annotation is not signed with (CAReady OptInMissing); annotated, it is", async () => {
    const ca = await generateCA({ commonName: "Someone else's CA", duration: 86_400_000, now: new Date() });
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    await apply(JSON.stringify({ apiVersion: "v1", kind: "Secret", metadata: { name: "their-ca", namespace: ns }, type: "kubernetes.io/tls", data: { "tls.crt": b64(ca.certPem), "tls.key": b64(ca.keyPkcs8Pem) } }));
    const before = await getJson<Obj>(["get", "secret", "their-ca", "-n", ns]);
    await apply(secureDatabaseWithoutServerYaml(ns, "brought", { extra: "  ca: { mode: Provided, secretName: their-ca }\n" }));
    const refused = await waitForCondition<SecureDatabase>("sdb", ns, "brought", "CAReady", (c) => c.reason === "OptInMissing", 60_000);
    expect(condition(refused, "CAReady")?.message).to.include(`kubectl annotate -n ${ns} secret/their-ca mtls.imaging.dev/secure-database=brought`);
    expect(refused.status?.serverCertificate).to.equal(undefined);
    expect((await getJson<Obj>(["get", "secret", "their-ca", "-n", ns])).metadata.resourceVersion).to.equal(before.metadata.resourceVersion);
    const issued = await kubectlOk(["get", "secret", "-n", ns, "-l", "mtls.imaging.dev/owner=SecureDatabase.brought", "-o", "name"]);
    expect(issued.trim()).to.equal("");
    await kubectlOk(["annotate", "-n", ns, "secret/their-ca", "mtls.imaging.dev/secure-database=brought"]);
    const signed = await waitForCondition<SecureDatabase>("sdb", ns, "brought", "CAReady", (c) => c.status === "True", 60_000);
    expect(condition(signed, "CAReady")?.reason).to.equal("CAProvided");
  });
});
