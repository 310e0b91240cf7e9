/**
 * The PKI core against the real programs: a PostgreSQL 15 server configured for certificate authentication
 * (hostssl … cert clientcert=verify-full, no TCP path without a client certificate), the libpq client (psql)
 * and the PostgreSQL JDBC driver CAST's Java components use. Every certificate, key, trust bundle and CRL
 * here comes from src/pki through the Secret layout functions, written out as a kubelet would.
 */
import { expect } from "chai";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  buildCrlBundle,
  buildTrustBundle,
  clientSecretData,
  generateCA,
  issueClientCertificate,
  issueCRL,
  issueServerCertificate,
  parseCertificate,
  serialNumberFromDecimal,
  serverSecretData,
  type CertificateAuthority,
  type IssuedCertificate,
  type KeySpec,
  type SecretPayload,
} from "../../src/pki/index";
import { jdbcConnect, psql, startPostgres, type PostgresServer } from "../support/postgres";
import { run, waitFor } from "../support/process";

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const USER = "app";
const NON_ASCII_USER = "analyste_é";

interface ClientFiles {
  readonly dir: string;
  readonly crt: string;
  readonly key: string;
  readonly pk8: string;
  readonly root: string;
}

describe("PKI against a real PostgreSQL, psql and JDBC", function () {
  this.timeout(120_000);
  this.slow(10_000);

  let pg: PostgresServer;
  let workDir: string;
  let initialConf: string;
  let clientCount = 0;

  before(async () => {
    // 127.0.0.2 too, so a client can reach the server under a name the certificate does not carry.
    pg = await startPostgres({ name: "pki", listenAddresses: "127.0.0.1,127.0.0.2" });
    workDir = mkdtempSync(join(tmpdir(), "pki-clients-"));
    initialConf = readFileSync(join(pg.dataDir, "postgresql.conf"), "utf8");
    await pg.sql(`CREATE ROLE ${USER} LOGIN`);
    await pg.sql(`CREATE ROLE "${NON_ASCII_USER}" LOGIN`);
    await pg.sql("CREATE ROLE other LOGIN");
  });

  after(async () => {
    await pg?.stop();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  /** Lays a server Secret's files into the data dir, points PostgreSQL at them, reloads and waits for it. */
  async function installServer(input: { issued: IssuedCertificate; trustBundlePem: string; crlPem: string }): Promise<void> {
    const data = serverSecretData(input);
    const path = async (key: string): Promise<string> =>
      pg.writeFile(`tls/${key}`, data[key] ?? Buffer.alloc(0), key === "tls.key" ? 0o600 : 0o644);
    const block = [
      "# BEGIN mtls.imaging.dev managed block (do not edit)",
      "ssl = on",
      `ssl_cert_file = '${await path("tls.crt")}'`,
      `ssl_key_file = '${await path("tls.key")}'`,
      `ssl_ca_file = '${await path("ca.crt")}'`,
      `ssl_crl_file = '${await path("ca.crl")}'`,
      "ssl_min_protocol_version = 'TLSv1.2'",
      "# END mtls.imaging.dev managed block",
      "",
    ].join("\n");
    const pgHba = [
      "local all all trust",
      "hostssl all all 127.0.0.1/32 cert clientcert=verify-full",
      "hostnossl all all 0.0.0.0/0 reject",
      "",
    ].join("\n");
    const before = (await pg.sql("SELECT pg_conf_load_time()")).trim();
    await pg.setConfig({ postgresqlConf: `${initialConf}\n${block}`, pgHba });
    await pg.reload();
    await waitFor("PostgreSQL to reload its configuration", async () => (await pg.sql("SELECT pg_conf_load_time()")).trim() !== before, 15_000);
    expect((await pg.sql("SHOW ssl")).trim()).to.equal("on");
    const served = await servedCertificate();
    expect(served.serialNumber, "the server serves the certificate just installed").to.equal(input.issued.serialNumber);
  }

  /** The certificate the server presents, read with openssl s_client's PostgreSQL STARTTLS. */
  async function servedCertificate(): Promise<ReturnType<typeof parseCertificate>> {
    const r = await run("openssl", ["s_client", "-starttls", "postgres", "-connect", `127.0.0.1:${pg.port}`], { input: "", timeoutMs: 20_000 });
    return parseCertificate(r.stdout, "the certificate served by PostgreSQL");
  }

  /** Writes a client Secret's files with mode 0600, as a volume mount would (libpq refuses looser keys). */
  async function writeClient(issued: IssuedCertificate, trustBundlePem: string): Promise<ClientFiles> {
    const data: SecretPayload = await clientSecretData({ issued, trustBundlePem });
    const dir = join(workDir, `client-${++clientCount}`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = (name: string): string => {
      const p = join(dir, name);
      writeFileSync(p, data[name] ?? Buffer.alloc(0), { mode: 0o600 });
      return p;
    };
    return { dir, crt: file("client.crt"), key: file("client.key"), pk8: file("client.pk8"), root: file("root.crt") };
  }

  function connect(files: ClientFiles, opts: { user?: string; host?: string; command?: string } = {}) {
    return psql({
      host: opts.host ?? "localhost",
      port: pg.port,
      user: opts.user ?? USER,
      sslmode: "verify-full",
      sslrootcert: files.root,
      sslcert: files.crt,
      sslkey: files.key,
      command: opts.command ?? "SELECT current_user",
    });
  }

  function jdbc(files: ClientFiles, key: string, user = USER) {
    return jdbcConnect({
      url: `jdbc:postgresql://localhost:${pg.port}/postgres`,
      user,
      sslcert: files.crt,
      sslkey: key,
      sslrootcert: files.root,
      sslmode: "verify-full",
      query: "SELECT current_user || ' ' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    });
  }

  const SSL_INFO = "SELECT client_dn || '|' || client_serial FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

  for (const variant of [
    { name: "ECDSA", ca: { algorithm: "ECDSA", size: 256 }, server: { algorithm: "ECDSA", size: 256 } },
    { name: "RSA", ca: { algorithm: "RSA", size: 3072 }, server: { algorithm: "RSA", size: 2048 } },
  ] as const) {
    describe(`with an ${variant.name} CA and server certificate`, () => {
      let ca: CertificateAuthority;
      let bundle: string;
      let server: IssuedCertificate;
      let ecClient: ClientFiles;
      let ecIssued: IssuedCertificate;
      let rsaClient: ClientFiles;
      let rsaIssued: IssuedCertificate;
      let revokedClient: ClientFiles;
      let revokedIssued: IssuedCertificate;

      const crlFor = (authority: CertificateAuthority, serials: string[], number: number) =>
        issueCRL(authority, {
          revoked: serials.map((serialNumber) => ({ serialNumber, reason: "keyCompromise" as const, revocationDate: new Date() })),
          crlNumber: number,
          thisUpdate: new Date(Date.now() - 60_000),
          nextUpdate: new Date(Date.now() + DAY),
        });

      before(async () => {
        // Made "3 hours ago" so the expired-certificate case can be issued from it in the past.
        ca = await generateCA({ commonName: `Imaging ${variant.name} Test CA`, duration: 30 * DAY, key: variant.ca as KeySpec, now: new Date(Date.now() - 3 * HOUR) });
        bundle = buildTrustBundle([ca.certPem]);
        server = await issueServerCertificate(ca, { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], duration: 7 * DAY, key: variant.server as KeySpec, now: new Date() });
        ecIssued = await issueClientCertificate(ca, { user: USER, duration: DAY, key: { algorithm: "ECDSA", size: 256 }, now: new Date() });
        rsaIssued = await issueClientCertificate(ca, { user: USER, duration: DAY, key: { algorithm: "RSA", size: 2048 }, now: new Date() });
        revokedIssued = await issueClientCertificate(ca, { user: USER, duration: DAY, now: new Date() });
        ecClient = await writeClient(ecIssued, bundle);
        rsaClient = await writeClient(rsaIssued, bundle);
        revokedClient = await writeClient(revokedIssued, bundle);
        await installServer({ issued: server, trustBundlePem: bundle, crlPem: await crlFor(ca, [], 1) });
      });

      it("psql with verify-full and an ECDSA client certificate logs in as the CN, with the issued serial", async () => {
        const r = await connect(ecClient, { command: SSL_INFO });
        expect(r.stderr).to.equal("");
        expect(r.code).to.equal(0);
        const [dn, serial] = r.stdout.trim().split("|");
        expect(dn).to.equal(`/CN=${USER}`);
        expect(serial).to.equal(ecIssued.serialNumberDecimal);
        expect(serialNumberFromDecimal(serial ?? "")).to.equal(ecIssued.serialNumber);
      });

      it("psql with an RSA client certificate logs in too", async () => {
        const r = await connect(rsaClient, { command: SSL_INFO });
        expect(r.code, r.stderr).to.equal(0);
        expect(r.stdout.trim()).to.equal(`/CN=${USER}|${rsaIssued.serialNumberDecimal}`);
      });

      it("JDBC logs in with the PKCS#8 DER key (client.pk8), and fails with the PEM key", async () => {
        const der = await jdbc(ecClient, ecClient.pk8);
        expect(der.stderr).to.equal("");
        expect(der.stdout.trim()).to.equal(`${USER} true`);
        const rsa = await jdbc(rsaClient, rsaClient.pk8);
        expect(rsa.stdout.trim(), rsa.stderr).to.equal(`${USER} true`);
        // Documented behaviour of pgjdbc 42.5: it only reads PKCS#8 DER; this is why client.pk8 exists.
        const pem = await jdbc(ecClient, ecClient.key);
        expect(pem.code).to.not.equal(0);
        expect(pem.stderr).to.contain("PSQLException: Could not read SSL key file");
      });

      it("refuses a connection without a client certificate", async () => {
        const r = await psql({ host: "localhost", port: pg.port, user: USER, sslmode: "verify-full", sslrootcert: ecClient.root, command: "SELECT 1" });
        expect(r.code).to.not.equal(0);
        expect(r.stderr).to.contain("connection requires a valid client certificate");
      });

      it("refuses TCP without TLS", async () => {
        const r = await psql({ host: "127.0.0.1", port: pg.port, user: USER, sslmode: "disable", command: "SELECT 1" });
        expect(r.code).to.not.equal(0);
        expect(r.stderr).to.contain("pg_hba.conf rejects connection").and.to.contain("no encryption");
      });

      it("refuses a certificate from another CA", async () => {
        const stranger = await generateCA({ commonName: "Stranger CA", duration: DAY, now: new Date() });
        const foreign = await writeClient(await issueClientCertificate(stranger, { user: USER, duration: DAY, now: new Date() }), bundle);
        const r = await connect(foreign);
        expect(r.code).to.not.equal(0);
        expect(r.stderr).to.contain("unknown ca");
      });

      it("refuses an expired client certificate", async () => {
        const old = await issueClientCertificate(ca, { user: USER, duration: HOUR, now: new Date(Date.now() - 2 * HOUR) });
        expect(old.notAfter.getTime()).to.be.below(Date.now());
        const r = await connect(await writeClient(old, bundle));
        expect(r.code).to.not.equal(0);
        expect(r.stderr).to.contain("certificate expired");
      });

      it("refuses a client whose CN is not the user it logs in as", async () => {
        const r = await connect(ecClient, { user: "other" });
        expect(r.code).to.not.equal(0);
        expect(r.stderr).to.contain('certificate authentication failed for user "other"');
      });

      it("refuses a server reached under a name its certificate does not carry (verify-full)", async () => {
        const ok = await connect(ecClient, { host: "127.0.0.1" });
        expect(ok.code, ok.stderr).to.equal(0);
        const r = await connect(ecClient, { host: "127.0.0.2" });
        expect(r.code).to.not.equal(0);
        expect(r.stderr).to.contain('does not match host name "127.0.0.2"');
      });

      it("refuses a revoked client once the CRL is installed, and still admits the others", async () => {
        const before = await connect(revokedClient);
        expect(before.code, before.stderr).to.equal(0);
        await installServer({ issued: server, trustBundlePem: bundle, crlPem: await crlFor(ca, [revokedIssued.serialNumber], 2) });
        const r = await connect(revokedClient);
        expect(r.code).to.not.equal(0);
        expect(r.stderr).to.contain("certificate revoked");
        const other = await connect(ecClient);
        expect(other.code, other.stderr).to.equal(0);
      });
    });
  }

  describe("with two trusted CAs (a CA rotation in progress)", () => {
    it("needs one CRL per CA in ssl_crl_file: a client of a CA without a CRL is refused", async () => {
      const oldCa = await generateCA({ commonName: "Rotation Old CA", duration: 30 * DAY, now: new Date() });
      const newCa = await generateCA({ commonName: "Rotation New CA", duration: 30 * DAY, now: new Date() });
      const bundle = buildTrustBundle([oldCa.certPem, newCa.certPem]);
      const server = await issueServerCertificate(newCa, { dnsNames: ["localhost"], duration: DAY, now: new Date() });
      const oldClient = await writeClient(await issueClientCertificate(oldCa, { user: USER, duration: DAY, now: new Date() }), bundle);
      const newClient = await writeClient(await issueClientCertificate(newCa, { user: USER, duration: DAY, now: new Date() }), bundle);
      const crl = (ca: CertificateAuthority) =>
        issueCRL(ca, { revoked: [], crlNumber: 1, thisUpdate: new Date(Date.now() - 60_000), nextUpdate: new Date(Date.now() + DAY) });

      await installServer({ issued: server, trustBundlePem: bundle, crlPem: await crl(newCa) });
      expect((await connect(newClient)).code).to.equal(0);
      const missing = await connect(oldClient);
      expect(missing.code).to.not.equal(0);
      // The client only sees "unknown ca" (the server log says "certificate verify failed"): exactly like an
      // untrusted CA, which is why the operator must keep one CRL per trusted CA in ca.crl.
      expect(missing.stderr).to.contain("unknown ca");

      await installServer({ issued: server, trustBundlePem: bundle, crlPem: buildCrlBundle([await crl(oldCa), await crl(newCa)]) });
      const both = await connect(oldClient);
      expect(both.code, both.stderr).to.equal(0);
      expect((await connect(newClient)).code).to.equal(0);
    });
  });

  it("accepts a non-ASCII database user (CN as UTF8String, compared byte for byte)", async () => {
    const ca = await generateCA({ commonName: "Unicode CA", duration: DAY, now: new Date() });
    const bundle = buildTrustBundle([ca.certPem]);
    await installServer({
      issued: await issueServerCertificate(ca, { dnsNames: ["localhost"], duration: DAY, now: new Date() }),
      trustBundlePem: bundle,
      crlPem: await issueCRL(ca, { revoked: [], crlNumber: 1, thisUpdate: new Date(Date.now() - 60_000), nextUpdate: new Date(Date.now() + DAY) }),
    });
    const files = await writeClient(await issueClientCertificate(ca, { user: NON_ASCII_USER, duration: DAY, now: new Date() }), bundle);
    const r = await connect(files, { user: NON_ASCII_USER });
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout.trim()).to.equal(NON_ASCII_USER);
  });
});
