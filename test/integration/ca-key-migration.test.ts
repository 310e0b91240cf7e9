/**
 * CA keys out of the database's namespace (issue 16, item 4; docs/security.md), against the real API server and a
 * real PostgreSQL: a CA Secret an older operator kept next to the database moves to the key namespace byte for byte,
 * nothing is re-issued and existing certificates keep logging in; a crash between copy and delete heals; a different
 * CA left in the old place is never deleted. A brought CA signs from either place, and CAReady names an exposed key.
 */
import { expect } from "chai";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ImagingConnection, SecureDatabase } from "../../src/api/types";
import { secretBytes, type SecretObject } from "../../src/kube/secrets";
import { generateCA } from "../../src/pki";
import { condition, getCASecret, getJson, kubectlOk, waitForCondition } from "../support/kubectl-json";
import { imagingConnectionYaml, secureDatabaseWithoutServerYaml } from "../support/manifests";
import { caKeySecret } from "../support/operator";
import { startOperatorWithDatabase, type OperatorWithDatabase } from "../support/operator-fixture";
import { psql } from "../support/postgres";
import { waitFor } from "../support/process";

interface EventList {
  items: { reason: string; type: string; message: string }[];
}

describe("CA keys out of the database's namespace (real API server, real PostgreSQL)", function () {
  this.timeout(240_000);
  let env: OperatorWithDatabase;
  let ns: string;

  const secretExists = async (namespace: string, name: string) => (await env.cp.kubectl(["get", "secret", name, "-n", namespace])).code === 0;
  const serials = async () => {
    const [sdb, imc] = [await getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns]), await getJson<ImagingConnection>(["get", "imc", "app", "-n", ns])];
    return { ca: sdb.status?.ca?.serialNumber, server: sdb.status?.serverCertificate?.serialNumber, client: imc.status?.certificate?.serialNumber };
  };
  const events = async (reason: string) =>
    (await getJson<EventList>(["get", "events", "-n", ns, "--field-selector", `involvedObject.name=db,reason=${reason}`])).items;
  /** A CA Secret as an older operator wrote it: in the database's namespace, owned by the SecureDatabase. */
  const legacySecret = (data: Record<string, string>, uid: string) =>
    JSON.stringify({
      apiVersion: "v1",
      kind: "Secret",
      type: "kubernetes.io/tls",
      metadata: {
        name: "db-ca",
        namespace: ns,
        labels: { "app.kubernetes.io/managed-by": "imaging-db-mtls-operator", "mtls.imaging.dev/owner": "SecureDatabase.db" },
        ownerReferences: [{ apiVersion: "mtls.imaging.dev/v1alpha1", kind: "SecureDatabase", name: "db", uid, controller: true, blockOwnerDeletion: true }],
      },
      data,
    });
  /** psql, sslmode=verify-full, with the connection's own Secret as it is now. */
  const loginWithClientSecret = async () => {
    const data = secretBytes(await getJson<SecretObject>(["get", "secret", "app-client-tls", "-n", ns]));
    const dir = await mkdtemp(join(tmpdir(), "ca-move-client-"));
    try {
      for (const f of ["tls.crt", "tls.key", "ca.crt"]) await writeFile(join(dir, f), data[f]!, { mode: 0o600 });
      const files = { sslcert: join(dir, "tls.crt"), sslkey: join(dir, "tls.key"), sslrootcert: join(dir, "ca.crt") };
      return await psql({ host: "localhost", port: env.pg.port, user: "app", sslmode: "verify-full", ...files, command: "SELECT current_user" });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };

  before(async () => {
    env = await startOperatorWithDatabase({ name: "ca-move", databases: [{ roles: ["app"] }], secureDatabase: { access: [{ users: ["app"] }] } });
    ns = env.ns;
    await kubectlOk(["apply", "-f", "-"], imagingConnectionYaml(ns, "app", "app"));
    await waitForCondition<ImagingConnection>("imc", ns, "app", "Ready", (c) => c.status === "True", 90_000);
  });

  after(async () => env?.stop());

  it("an older operator's db-ca in the database's namespace moves to the key namespace: same key, nothing re-issued, the old certificates still log in", async () => {
    const at = caKeySecret(ns, "db-ca");
    const moved = await getCASecret<SecretObject>(ns, "db-ca");
    const sdb = await getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns]);
    const before = await serials();
    const serverBefore = await getJson<SecretObject>(["get", "secret", "db-server-tls", "-n", ns]);
    const clientBefore = await getJson<SecretObject>(["get", "secret", "app-client-tls", "-n", ns]);
    // The state an older operator left: the CA next to the database, nothing in the key namespace.
    await env.stopOperator();
    await kubectlOk(["apply", "--server-side", "--field-manager=imaging-db-mtls-operator", "-f", "-"], legacySecret(moved.data!, sdb.metadata.uid!));
    await kubectlOk(["delete", "secret", at.name, "-n", at.namespace]);
    await env.restartOperator();

    await waitFor("db-ca to leave the database's namespace", async () => !(await secretExists(ns, "db-ca")), 60_000, 200);
    const now = await getCASecret<SecretObject>(ns, "db-ca");
    expect(now.data).to.deep.equal(moved.data);
    expect(now.metadata.labels).to.include({ "mtls.imaging.dev/owner": "SecureDatabase.db", "mtls.imaging.dev/owner-namespace": ns });
    const [event] = await events("CAKeyMoved");
    expect(event?.type).to.equal("Normal");
    expect(event?.message).to.contain(`moved Secret ${ns}/db-ca to ${at.namespace}/${at.name}`).and.contain("nothing is re-issued");
    await waitForCondition<SecureDatabase>("sdb", ns, "db", "Ready", (c) => c.status === "True", 60_000);
    expect((await getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns])).status?.ca?.keySecret).to.equal(`${at.namespace}/${at.name}`);
    expect(await serials()).to.deep.equal(before);
    expect((await getJson<SecretObject>(["get", "secret", "db-server-tls", "-n", ns])).data).to.deep.equal(serverBefore.data);
    expect((await getJson<SecretObject>(["get", "secret", "app-client-tls", "-n", ns])).data).to.deep.equal(clientBefore.data);
    const login = await loginWithClientSecret();
    expect(login.code, login.stderr).to.equal(0);
    expect(login.stdout.trim()).to.equal("app");
  });

  it("a crash between the copy and the delete (both there, the same CA): the old copy is deleted, nothing else changes", async () => {
    const kept = await getCASecret<SecretObject & { metadata: { resourceVersion: string } }>(ns, "db-ca");
    const sdb = await getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns]);
    const before = await serials();
    await kubectlOk(["apply", "--server-side", "--field-manager=imaging-db-mtls-operator", "-f", "-"], legacySecret(kept.data!, sdb.metadata.uid!));
    await waitFor("the old copy to be deleted", async () => !(await secretExists(ns, "db-ca")), 60_000, 200);
    expect((await getCASecret<SecretObject & { metadata: { resourceVersion: string } }>(ns, "db-ca")).metadata.resourceVersion).to.equal(kept.metadata.resourceVersion);
    expect(await serials()).to.deep.equal(before);
  });

  it("another CA left in the database's namespace: never deleted (it may be the only copy), a CAKeyNotMoved Warning, the signing CA unchanged", async () => {
    const kept = await getCASecret<SecretObject & { metadata: { resourceVersion: string } }>(ns, "db-ca");
    const sdb = await getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns]);
    const before = await serials();
    const other = await generateCA({ commonName: "restored from a backup", duration: 365 * 24 * 3600_000, now: new Date() });
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    await kubectlOk(["apply", "--server-side", "--field-manager=imaging-db-mtls-operator", "-f", "-"], legacySecret({ "tls.crt": b64(other.certPem), "tls.key": b64(other.keyPkcs8Pem) }, sdb.metadata.uid!));
    let warning: EventList["items"][number] | undefined;
    await waitFor("a CAKeyNotMoved Warning", async () => (warning = (await events("CAKeyNotMoved"))[0]) !== undefined, 60_000, 200);
    expect(warning!.type).to.equal("Warning");
    expect(warning!.message).to.contain(`Secret db-ca in namespace ${ns} holds another CA than`).and.contain("left as it is");
    expect(await secretExists(ns, "db-ca")).to.equal(true);
    expect((await getCASecret<SecretObject & { metadata: { resourceVersion: string } }>(ns, "db-ca")).metadata.resourceVersion).to.equal(kept.metadata.resourceVersion);
    expect(await serials()).to.deep.equal(before);
    const login = await loginWithClientSecret();
    expect(login.code, login.stderr).to.equal(0);
    await kubectlOk(["delete", "secret", "db-ca", "-n", ns]);
  });

  it("a brought CA: next to the database it signs and CAReady says its key is exposed; moved by an admin to the key namespace it signs from there", async () => {
    const brought = await generateCA({ commonName: "corporate CA", duration: 365 * 24 * 3600_000, now: new Date() });
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    const secret = (namespace: string, name: string) =>
      JSON.stringify({ apiVersion: "v1", kind: "Secret", type: "kubernetes.io/tls", metadata: { name, namespace, annotations: { "mtls.imaging.dev/secure-database": "corp" } }, data: { "tls.crt": b64(brought.certPem), "tls.key": b64(brought.keyPkcs8Pem) } });
    const at = caKeySecret(ns, "corp-ca");
    await kubectlOk(["apply", "-f", "-"], secret(ns, "corp-ca"));
    await kubectlOk(["apply", "-f", "-"], secureDatabaseWithoutServerYaml(ns, "corp", { extra: "  ca: { mode: Provided, secretName: corp-ca }\n  reload: { strategy: None }\n  verification: { enabled: false }\n" }));
    let sdb = await waitForCondition<SecureDatabase>("sdb", ns, "corp", "CAReady", (c) => c.status === "True", 60_000);
    expect(condition(sdb, "CAReady")?.message).to.contain(`signing with the CA brought in Secret ${ns}/corp-ca`).and.contain(`its key is readable by whoever may read Secrets in namespace ${ns}: a cluster admin can move it to ${at.namespace}/${at.name}`);
    expect(sdb.status?.ca?.keySecret).to.equal(`${ns}/corp-ca`);
    // The cluster admin moves it (the key namespace is theirs), then deletes the exposed copy.
    await kubectlOk(["apply", "-f", "-"], secret(at.namespace, at.name));
    await kubectlOk(["delete", "secret", "corp-ca", "-n", ns]);
    // The operator does not watch Secrets it did not write: the next reconcile (the verification interval, here
    // off, or any change of the SecureDatabase) reads the CA again.
    await kubectlOk(["annotate", "sdb", "corp", "-n", ns, "example.com/ca-moved=yes"]);
    sdb = await waitForCondition<SecureDatabase>("sdb", ns, "corp", "CAReady", (c) => c.status === "True" && c.message.includes(`${at.namespace}/${at.name}`), 90_000);
    expect(condition(sdb, "CAReady")?.message).to.not.contain("readable by");
    expect(sdb.status?.ca).to.include({ keySecret: `${at.namespace}/${at.name}`, fingerprintSHA256: brought.facts.fingerprintSha256 });
    // It is the admin's: deleting the database leaves it where it is.
    await kubectlOk(["delete", "sdb", "corp", "-n", ns, "--wait=true", "--timeout=60s"]);
    expect(await secretExists(at.namespace, at.name)).to.equal(true);
    await kubectlOk(["delete", "secret", at.name, "-n", at.namespace]);
  });
});
