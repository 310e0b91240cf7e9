import { expect } from "chai";
import { access, copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ImagingConnection, SecureDatabase } from "../../src/api/types";
import { secretBytes, type SecretObject } from "../../src/kube/secrets";
import { parseCertificates, parseCRLs } from "../../src/pki";
import type { LedgerEntry } from "../../src/reconcilers/issued-ledger";
import { controlPlane } from "../support/hooks";
import { getJson, getLedger, kubectlOk, waitForCondition } from "../support/kubectl-json";
import { connectionToDatabaseYaml, imagingConnectionYaml } from "../support/manifests";
import { startOperatorWithDatabase, type OperatorWithDatabase } from "../support/operator-fixture";
import { psql } from "../support/postgres";
import { waitFor } from "../support/process";

/** A client identity as files psql reads, copied away so that a renewal or a deletion cannot take it. */
interface Identity {
  user: string;
  serial: string;
  dir: string;
}

/** What the CRL in the server Secret says: its number and fingerprint, and each serial's revocation date and reason. */
interface CrlView {
  number: number;
  fingerprint: string;
  listed: Map<string, { date: string; reason: string | undefined }>;
}

/**
 * Revocations that outlive everything that designated them: the ledger of issued certificates (`db-issued-0` … `-f`) keeps
 * every serial a connection got, renewals too, and the date each was first revoked. The CRL keeps listing them, with
 * those dates, after the client Secret is deleted, after the ImagingConnection is deleted and across an operator
 * restart; a deleted connection's certificate is revoked by the deletion itself (spec.trust.revokeOnDelete), and so is
 * one that loses access. Real API server, real PostgreSQL, real psql.
 */
const OWN_GRANTS = [{ users: ["app", "gone", "kept"] }];

describe("Revocation that lasts: the ledger of issued certificates (real API server, real PostgreSQL, psql)", function () {
  this.timeout(240_000);
  let env: OperatorWithDatabase;
  let ns: string;
  let otherNs: string;
  const identities: Identity[] = [];
  const crls: CrlView[] = [];
  let step = 0;

  before(async () => {
    const cp = controlPlane();
    ns = await cp.createNamespace("ledger");
    otherNs = await cp.createNamespace("ledger-b");
    env = await startOperatorWithDatabase({
      name: "ledger",
      namespace: ns,
      watch: [ns, otherNs],
      databases: [{ roles: ["app", "gone", "kept", "guest"] }],
      clientSecrets: ["app-client-tls", "gone-client-tls", "kept-client-tls"],
      // The connections of this namespace; "guest" of the other namespace is granted, then not, by the last test.
      secureDatabase: { access: OWN_GRANTS },
    });
  });

  after(async () => {
    for (const id of identities) await rm(id.dir, { recursive: true, force: true });
    await env?.stop();
  });

  const sdb = () => getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns]);
  const ledger = (): Promise<Map<string, LedgerEntry>> => getLedger(ns, "db");

  async function crl(): Promise<CrlView> {
    const [only, ...more] = parseCRLs(secretBytes(await getJson<SecretObject>(["get", "secret", "db-server-tls", "-n", ns]))["ca.crl"]!);
    expect(more, "one CA, one CRL").to.deep.equal([]);
    const listed = new Map(only!.revoked.map((r) => [r.serialNumber, { date: r.revocationDate.toISOString(), reason: r.reason }]));
    return { number: only!.crlNumber!, fingerprint: only!.fingerprintSha256, listed };
  }

  /** Records the CRL as it is now: a new one has a higher number than every CRL before it, the same one the same. */
  async function recordCrl(): Promise<CrlView> {
    const now = await crl();
    const last = crls[crls.length - 1];
    if (last && last.fingerprint !== now.fingerprint) expect(now.number, "a new CRL's number").to.be.greaterThan(last.number);
    if (last && last.fingerprint === now.fingerprint) expect(now.number).to.equal(last.number);
    crls.push(now);
    return now;
  }

  /** Makes the database reconcile (an annotation it sees), then waits until both kinds of reconcile are done. */
  async function settle(): Promise<void> {
    const value = `step-${++step}`;
    await kubectlOk(["annotate", "sdb", "db", "-n", ns, `test.mtls.imaging.dev/step=${value}`, "--overwrite"]);
    await waitFor("the operator to see the step", async () => env.operator.context.cache.secureDatabases.get(ns, "db")?.metadata.annotations?.["test.mtls.imaging.dev/step"] === value, 10_000, 50);
    for (let i = 0; i < 2; i++) {
      await env.operator.secureDatabaseQueue.idle();
      await env.operator.imagingConnectionQueue.idle();
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** Waits for the connection's certificate (serial from status) to be in `dir`, then copies it away. */
  async function identityFrom(dir: string, user: string, serial: string): Promise<Identity> {
    // A volume's first lay-down links its files one by one after the switch (as the kubelet does): wait for all three.
    const present = async (f: string) => access(join(dir, f)).then(() => true, () => false);
    await waitFor(
      `${user}'s files to hold serial ${serial}`,
      async () => parseCertificates(await readFile(join(dir, "client.crt"), "utf8"))[0]?.serialNumber === serial && (await present("client.key")) && (await present("root.crt")),
      20_000,
      100,
    );
    const copy = await mkdtemp(join(tmpdir(), `ledger-${user}-`));
    for (const f of ["client.crt", "client.key", "root.crt"]) await copyFile(join(dir, f), join(copy, f));
    const id = { user, serial, dir: copy };
    identities.push(id);
    return id;
  }

  /** The identity in a Secret, written to files (a connection in a namespace no client folder syncs). */
  async function identityFromSecret(namespace: string, secretName: string, user: string): Promise<Identity> {
    const data = secretBytes(await getJson<SecretObject>(["get", "secret", secretName, "-n", namespace]));
    const dir = await mkdtemp(join(tmpdir(), `ledger-${user}-`));
    await writeFile(join(dir, "client.crt"), data["tls.crt"]!, { mode: 0o600 });
    await writeFile(join(dir, "client.key"), data["tls.key"]!, { mode: 0o600 });
    await writeFile(join(dir, "root.crt"), data["ca.crt"]!, { mode: 0o600 });
    const id = { user, serial: parseCertificates(data["tls.crt"]!)[0]!.serialNumber, dir };
    identities.push(id);
    return id;
  }

  const login = (id: Identity) =>
    psql({
      host: "localhost",
      port: env.pg.port,
      user: id.user,
      sslmode: "verify-full",
      sslcert: join(id.dir, "client.crt"),
      sslkey: join(id.dir, "client.key"),
      sslrootcert: join(id.dir, "root.crt"),
      command: "SELECT current_user",
    });

  async function expectLogin(id: Identity): Promise<void> {
    const r = await login(id);
    expect(r.code, `${id.user} (${id.serial}): ${r.stderr}`).to.equal(0);
    expect(r.stdout.trim()).to.equal(id.user);
  }

  /** Waits for the server to refuse the certificate as revoked (the CRL reaches it after a reload). */
  async function expectRevoked(id: Identity): Promise<void> {
    let last = "";
    await waitFor(
      `the server to refuse ${id.user}'s certificate ${id.serial} as revoked`,
      async () => {
        const r = await login(id);
        last = r.code === 0 ? "accepted" : r.stderr;
        return r.code !== 0 && /certificate revoked/i.test(r.stderr);
      },
      30_000,
      250,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last: ${last}`);
    });
  }

  async function issue(namespace: string, name: string, user: string): Promise<string> {
    const yaml = namespace === ns ? imagingConnectionYaml(ns, name, user) : connectionToDatabaseYaml(namespace, name, user, { name: "db", namespace: ns });
    await kubectlOk(["apply", "-f", "-"], yaml);
    const imc = await waitForCondition<ImagingConnection>("imc", namespace, name, "CertificateReady", (c) => c.status === "True");
    return imc.status!.certificate!.serialNumber!;
  }

  async function deleteConnection(namespace: string, name: string): Promise<void> {
    await kubectlOk(["delete", "imc", name, "-n", namespace, "--wait=true", "--timeout=60s"]);
    await waitFor(`ImagingConnection ${name} to be gone`, async () => (await controlPlane().kubectl(["get", "imc", name, "-n", namespace])).code !== 0, 30_000);
  }

  it("a connection revoked by name stays revoked, renewals included, with the same dates: after its Secret, itself and the operator are gone", async () => {
    const first = await issue(ns, "app", "app");
    const before = await identityFrom(env.clientDirs["app-client-tls"]!, "app", first);
    await expectLogin(before);
    await recordCrl();
    // Every certificate is in the ledger before its Secret is written: who, what, until when.
    const imc = await getJson<ImagingConnection>(["get", "imc", "app", "-n", ns]);
    expect((await ledger()).get(first)).to.include({ namespace: ns, connection: "app", user: "app", notAfter: imc.status!.certificate!.notAfter });

    // Renewed once: two live certificates, both recorded.
    await kubectlOk(["annotate", "imc", "app", "-n", ns, "mtls.imaging.dev/rotate=ledger-1"]);
    const renewed = await waitForCondition<ImagingConnection>("imc", ns, "app", "CertificateReady", (c) => c.status === "True" && !c.message.includes(first));
    const second = renewed.status!.certificate!.serialNumber!;
    const after = await identityFrom(env.clientDirs["app-client-tls"]!, "app", second);
    await expectLogin(after);
    await expectLogin(before);
    const recorded = await ledger();
    for (const serial of [first, second]) {
      expect(recorded.get(serial), serial).to.include({ namespace: ns, connection: "app", user: "app" });
      expect(recorded.get(serial)?.revocationDate, serial).to.equal(undefined);
    }

    // Revoked by name: both serials go into the CRL, and both certificates are refused.
    await kubectlOk(["patch", "sdb", "db", "-n", ns, "--type=merge", "-p", JSON.stringify({ spec: { trust: { revocations: [{ connectionName: "app", reason: "keyCompromise" }] } } })]);
    await waitFor(
      "the CRL to list both of app's serials",
      async () => {
        const { listed } = await crl();
        return listed.has(first) && listed.has(second);
      },
      30_000,
      200,
    );
    const revoked = await recordCrl();
    expect([...revoked.listed.keys()]).to.have.members([first, second]);
    for (const s of [first, second]) expect(revoked.listed.get(s)?.reason).to.equal("keyCompromise");
    await expectRevoked(after);
    await expectRevoked(before);
    await waitFor("status.trust.revokedSerials", async () => ((await sdb()).status?.trust?.revokedSerials ?? []).length === 2, 20_000);
    expect((await sdb()).status?.trust?.revokedSerials).to.have.members([first, second]);
    const dates = new Map([...revoked.listed].map(([s, v]) => [s, v.date]));
    // The ledger holds the dates the CRL carries.
    for (const s of [first, second]) expect((await ledger()).get(s)).to.include({ revocationDate: dates.get(s), reason: "keyCompromise" });

    const stillRevoked = async (what: string) => {
      await settle();
      const now = await recordCrl();
      expect(new Map([...now.listed].map(([s, v]) => [s, v.date])), `the CRL after ${what}`).to.deep.equal(dates);
      expect((await sdb()).status?.trust?.revokedSerials, what).to.have.members([first, second]);
      await expectRevoked(before);
      await expectRevoked(after);
    };

    await kubectlOk(["delete", "secret", "app-client-tls", "-n", ns]);
    await stillRevoked("the client Secret was deleted");
    await deleteConnection(ns, "app");
    await stillRevoked("the ImagingConnection was deleted");
    await env.restartOperator();
    await stillRevoked("an operator restart");
    // A CRL file lost (or unreadable): the next one continues after the number in status, with the same dates.
    const lastNumber = (await sdb()).status!.trust!.crlNumber!;
    await kubectlOk(["patch", "secret", "db-server-tls", "-n", ns, "--type=json", "-p", JSON.stringify([{ op: "remove", path: "/data/ca.crl" }])]);
    await waitFor("a CRL again", async () => secretBytes(await getJson<SecretObject>(["get", "secret", "db-server-tls", "-n", ns]))["ca.crl"] !== undefined, 20_000, 100);
    const reissued = await crl();
    expect(reissued.number).to.equal(lastNumber + 1);
    await stillRevoked("ca.crl was lost");
  });

  it("a connection deleted without a revocation entry: its certificate enters the CRL (revokeOnDelete, cessationOfOperation) and is refused", async () => {
    const serial = await issue(ns, "gone", "gone");
    const id = await identityFrom(env.clientDirs["gone-client-tls"]!, "gone", serial);
    await expectLogin(id);
    await deleteConnection(ns, "gone");
    await waitFor("the CRL to list gone's serial", async () => (await crl()).listed.has(serial), 30_000, 200);
    const now = await recordCrl();
    expect(now.listed.get(serial)?.reason).to.equal("cessationOfOperation");
    expect((await ledger()).get(serial)).to.include({ connection: "gone", reason: "cessationOfOperation", revocationDate: now.listed.get(serial)!.date });
    await expectRevoked(id);
    const events = await getJson<{ items: { reason: string; message: string }[] }>(["get", "events", "-n", ns, "--field-selector", "involvedObject.name=db,reason=CertificatesRevoked"]);
    expect(events.items.map((e) => e.message).join("\n")).to.contain(`ImagingConnection ${ns}/gone (the connection was deleted), reason cessationOfOperation: ${serial}`);
    await waitFor("status.trust.revokedSerials", async () => ((await sdb()).status?.trust?.revokedSerials ?? []).includes(serial), 20_000);
  });

  it("with revokeOnDelete: false a deleted connection's certificate stays valid", async () => {
    await kubectlOk(["patch", "sdb", "db", "-n", ns, "--type=merge", "-p", JSON.stringify({ spec: { trust: { revokeOnDelete: false } } })]);
    await waitFor("the operator to see revokeOnDelete false", async () => env.operator.context.cache.secureDatabases.get(ns, "db")?.spec.trust?.revokeOnDelete === false, 10_000, 50);
    const serial = await issue(ns, "kept", "kept");
    const id = await identityFrom(env.clientDirs["kept-client-tls"]!, "kept", serial);
    await deleteConnection(ns, "kept");
    await settle();
    const now = await recordCrl();
    expect(now.listed.has(serial)).to.equal(false);
    expect((await ledger()).get(serial)?.revocationDate).to.equal(undefined);
    await expectLogin(id);
    await kubectlOk(["patch", "sdb", "db", "-n", ns, "--type=merge", "-p", JSON.stringify({ spec: { trust: { revokeOnDelete: true } } })]);
  });

  it("a connection that loses access (its namespace removed from the grant) has its certificate revoked (affiliationChanged)", async () => {
    const guestGrant = { namespaces: [otherNs], users: ["guest"] };
    await kubectlOk(["patch", "sdb", "db", "-n", ns, "--type=merge", "-p", JSON.stringify({ spec: { access: [...OWN_GRANTS, guestGrant] } })]);
    await waitFor("the operator to see the grant", async () => (env.operator.context.cache.secureDatabases.get(ns, "db")?.spec.access ?? []).some((g) => g.namespaces?.includes(otherNs)), 10_000, 50);
    const serial = await issue(otherNs, "guest", "guest");
    const id = await identityFromSecret(otherNs, "guest-client-tls", "guest");
    expect(id.serial).to.equal(serial);
    await expectLogin(id);
    await kubectlOk(["patch", "sdb", "db", "-n", ns, "--type=merge", "-p", JSON.stringify({ spec: { access: OWN_GRANTS } })]);
    const lost = await waitForCondition<ImagingConnection>("imc", otherNs, "guest", "CertificateReady", (c) => c.status === "False" && c.reason === "NamespaceNotAllowed");
    expect(lost.status?.conditions?.find((c) => c.type === "CertificateReady")?.message).to.contain(`SecureDatabase ${ns}/db grants no identity to namespace "${otherNs}"`);
    await waitFor("the CRL to list guest's serial", async () => (await crl()).listed.has(serial), 30_000, 200);
    const now = await recordCrl();
    expect(now.listed.get(serial)?.reason).to.equal("affiliationChanged");
    await expectRevoked(id);
    const events = await getJson<{ items: { reason: string; message: string }[] }>(["get", "events", "-n", otherNs, "--field-selector", "involvedObject.name=guest,reason=CertificatesRevoked"]);
    expect(events.items.map((e) => e.message).join("\n")).to.contain(`it lost access: NamespaceNotAllowed`);
  });

  it("connections issued at once: every certificate is recorded (the writes never lose each other's entries)", async () => {
    const names = ["burst-1", "burst-2", "burst-3", "burst-4", "burst-5", "burst-6"];
    await kubectlOk(["apply", "-f", "-"], names.map((n) => imagingConnectionYaml(ns, n, "app")).join("---\n"));
    const serials: string[] = [];
    for (const n of names) {
      const imc = await waitForCondition<ImagingConnection>("imc", ns, n, "CertificateReady", (c) => c.status === "True");
      serials.push(imc.status!.certificate!.serialNumber!);
    }
    const recorded = await ledger();
    for (const [i, serial] of serials.entries()) expect(recorded.get(serial), names[i]).to.include({ connection: names[i], user: "app" });
    await kubectlOk(["delete", "imc", ...names, "-n", ns, "--wait=true", "--timeout=60s"]);
    await waitFor(
      "the CRL to list the deleted connections' serials",
      async () => {
        const { listed } = await crl();
        return serials.every((s) => listed.has(s));
      },
      30_000,
      200,
    );
    await recordCrl();
  });

  it("the CRL number went up with every new CRL, never back", () => {
    const distinct = crls.filter((c, i) => i === 0 || c.fingerprint !== crls[i - 1]!.fingerprint).map((c) => c.number);
    expect(distinct.length).to.be.at.least(5);
    for (let i = 1; i < distinct.length; i++) expect(distinct[i], distinct.join(" → ")).to.be.greaterThan(distinct[i - 1]!);
  });
});
