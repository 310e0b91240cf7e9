/**
 * src/postgres against a REAL PostgreSQL 15: the rendered blocks configure the server, real libpq clients
 * (psql) and the operator's probe connect through them. Certificates come from the openssl CLI.
 *
 * Run alone: npx mocha --node-option import=tsx --timeout 120000 test/integration/postgres-probe.test.ts
 */
import { expect } from "chai";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isConfigError, removeManagedBlock } from "../../src/postgres/managed-block";
import type { HbaRule } from "../../src/postgres/pg-hba";
import { auditHba, findOverrides, upsertHba, upsertPostgresqlConf } from "../support/postgres-config";
import { normalizeSerial, probeServer, reloadServer, type ProbeOptions } from "../../src/postgres/probe";
import { cleanPgEnv, psql, startPostgres, type PostgresServer } from "../support/postgres";
import { freePort, run, runOk, waitFor, type RunResult } from "../support/process";

/** Certificates made with the openssl CLI: an EC P-256 CA, a server leaf, client leaves. */
interface Pki {
  dir: string;
  ca: string;
  otherCa: string;
  serverCert: string;
  serverKey: string;
  crl: string;
  /** PEM cert + key per client name; files `<name>.crt` / `<name>.key` in dir. */
  client: Record<string, { cert: string; key: string }>;
}

async function openssl(dir: string, args: string[]): Promise<string> {
  return runOk("openssl", args, { cwd: dir });
}

async function makeCa(dir: string, name: string, cn: string): Promise<void> {
  await openssl(dir, [
    "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", `${name}.key`, "-out", `${name}.crt`, "-days", "2", "-subj", `/CN=${cn}`,
    "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
    "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    "-addext", "subjectKeyIdentifier=hash",
  ]);
}

async function makeLeaf(dir: string, ca: string, name: string, cn: string, ext: string, serial: string): Promise<void> {
  await openssl(dir, ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${cn}`]);
  await writeFile(join(dir, `${name}.ext`), `${ext}\nauthorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\nbasicConstraints=critical,CA:FALSE\n`);
  await openssl(dir, ["x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.crt`, "-CAkey", `${ca}.key`, "-set_serial", serial, "-days", "2", "-sha256", "-extfile", `${name}.ext`, "-out", `${name}.crt`]);
}

function randomSerial(firstByte: string): string {
  const bytes = Array.from({ length: 15 }, () => Math.floor(Math.random() * 256).toString(16).padStart(2, "0")).join("");
  return `0x${firstByte}${bytes}`;
}

async function makePki(): Promise<Pki> {
  const dir = await mkdtemp(join(tmpdir(), "pg-probe-pki-"));
  await makeCa(dir, "ca", "imaging-db-mtls test CA");
  await makeCa(dir, "other-ca", "some other CA");
  // A serial starting with 0x0a: openssl prints "0A…", the canonical form keeps the byte "0a…".
  await makeLeaf(dir, "ca", "server", "localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature", randomSerial("0a"));
  const clientExt = "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature";
  for (const cn of ["postgres", "app", "ghost"]) await makeLeaf(dir, "ca", cn, cn, clientExt, randomSerial("8f"));
  await makeLeaf(dir, "ca", "revoked", "app", clientExt, randomSerial("42"));
  await makeLeaf(dir, "other-ca", "stranger", "postgres", clientExt, randomSerial("11"));
  // A CRL revoking "revoked", with openssl's CA database.
  await writeFile(join(dir, "index.txt"), "");
  await writeFile(join(dir, "crlnumber"), "01\n");
  await writeFile(join(dir, "ca.cnf"), `[ ca ]\ndefault_ca = d\n[ d ]\ndatabase = ${dir}/index.txt\ncrlnumber = ${dir}/crlnumber\ndefault_md = sha256\ndefault_crl_days = 2\n`);
  await openssl(dir, ["ca", "-config", "ca.cnf", "-cert", "ca.crt", "-keyfile", "ca.key", "-revoke", "revoked.crt"]);
  await openssl(dir, ["ca", "-config", "ca.cnf", "-cert", "ca.crt", "-keyfile", "ca.key", "-gencrl", "-out", "ca.crl"]);
  const read = (f: string): Promise<string> => readFile(join(dir, f), "utf8");
  const client: Pki["client"] = {};
  for (const name of ["postgres", "app", "ghost", "revoked", "stranger"]) client[name] = { cert: await read(`${name}.crt`), key: await read(`${name}.key`) };
  return { dir, ca: await read("ca.crt"), otherCa: await read("other-ca.crt"), serverCert: await read("server.crt"), serverKey: await read("server.key"), crl: await read("ca.crl"), client };
}

function text(r: unknown): string {
  if (isConfigError(r)) throw new Error(`${(r as { reason: string }).reason}: ${(r as { message: string }).message}`);
  return r as string;
}

/** The operator's probe from the outside: verify-full against "localhost" on the loopback IP. */
function probeOpts(server: PostgresServer, pki: Pki, user: string, overrides: Partial<ProbeOptions> = {}): ProbeOptions {
  const id = pki.client[user] ?? pki.client.postgres!;
  return { host: server.host, port: server.port, servername: "localhost", database: "postgres", user, ca: pki.ca, cert: id.cert, key: id.key, timeoutMs: 10_000, ...overrides };
}

/** psql with any conninfo (e.g. replication=true), a refusal being a result. */
function psqlRaw(conninfo: string, command: string): Promise<RunResult> {
  return run("psql", ["-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-c", command], { env: cleanPgEnv(), timeoutMs: 30_000 });
}

describe("postgres: rendered config + probe against a real PostgreSQL 15", function () {
  this.timeout(120_000);
  let server: PostgresServer;
  let pki: Pki;
  let originalConf: string;
  let originalHba: string;
  const CERT_DIR = "certs/it's a \\ dir";
  const CONF_INPUT = { certificateDirectory: CERT_DIR, minTLSVersion: "TLSv1.2" as const, crl: true };
  const FULL: HbaRule[] = [{ databases: ["all"], users: ["all"], addresses: ["127.0.0.1/32", "::1"], clientCertificate: "verify-full" }];

  const certFile = (f: string): string => join(pki.dir, f);
  const withCert = (name: string) => ({ sslcert: certFile(`${name}.crt`), sslkey: certFile(`${name}.key`) });
  const verifyFull = { sslmode: "verify-full", sslrootcert: "" };

  async function applyHba(rules: HbaRule[]): Promise<void> {
    await server.setConfig({ pgHba: text(upsertHba(await readFile(join(server.dataDir, "pg_hba.conf"), "utf8"), rules)) });
    await server.reload();
  }

  /** Waits until psql as postgres with its certificate gets in (the server has processed a reload). */
  async function waitForMtls(): Promise<void> {
    await waitFor(
      "the server to accept mTLS",
      async () => (await psql({ host: server.host, port: server.port, user: "postgres", ...verifyFull, ...withCert("postgres"), command: "SELECT 1" })).stdout.trim() === "1",
      15_000,
    );
  }

  before(async function () {
    pki = await makePki();
    verifyFull.sslrootcert = certFile("ca.crt");
    server = await startPostgres({ name: "probe" });
    originalConf = await readFile(join(server.dataDir, "postgresql.conf"), "utf8");
    originalHba = await readFile(join(server.dataDir, "pg_hba.conf"), "utf8");
    await server.sql("CREATE ROLE app LOGIN");

    // Before the operator: initdb's file lets plain TCP in, replication included.
    const plain = await psqlRaw(`host=${server.host} port=${server.port} user=postgres dbname=postgres sslmode=disable replication=true`, "IDENTIFY_SYSTEM");
    expect(plain.code, plain.stderr).to.equal(0);

    await server.writeFile(`${CERT_DIR}/tls.crt`, pki.serverCert, 0o600);
    await server.writeFile(`${CERT_DIR}/tls.key`, pki.serverKey, 0o600);
    await server.writeFile(`${CERT_DIR}/ca.crt`, pki.ca, 0o600);
    await server.writeFile(`${CERT_DIR}/ca.crl`, pki.crl, 0o600);
    await server.setConfig({ postgresqlConf: text(upsertPostgresqlConf(originalConf, CONF_INPUT)), pgHba: text(upsertHba(originalHba, FULL)) });
    // ssl was off: a reload turns it on (postgresql.conf is applied before pg_hba.conf is parsed).
    await server.reload();
    await waitForMtls();
  });

  after(async () => {
    await server?.stop();
    if (pki) await rm(pki.dir, { recursive: true, force: true });
  });

  describe("the rendered files on the server", () => {
    it("loaded our settings from the block, with the quoted directory (relative to the data directory)", async () => {
      const rows = await server.sql("SELECT name || '=' || setting FROM pg_settings WHERE name IN ('ssl','ssl_cert_file','ssl_crl_file','ssl_min_protocol_version') ORDER BY name");
      expect(rows.trim().split("\n")).to.deep.equal([
        "ssl=on",
        `ssl_cert_file=${CERT_DIR}/tls.crt`,
        `ssl_crl_file=${CERT_DIR}/ca.crl`,
        "ssl_min_protocol_version=TLSv1.2",
      ]);
      expect((await server.sql("SELECT count(*) FROM pg_file_settings WHERE error IS NOT NULL")).trim()).to.equal("0");
      expect((await server.sql("SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL")).trim()).to.equal("0");
      const conf = await readFile(join(server.dataDir, "postgresql.conf"), "utf8");
      expect(findOverrides(conf)).to.deep.equal([]);
      expect(auditHba(await readFile(join(server.dataDir, "pg_hba.conf"), "utf8"))).to.deep.equal([]);
    });

    it("lets psql in with a client certificate and verify-full, over TLS", async () => {
      const r = await psql({ host: server.host, port: server.port, user: "postgres", ...verifyFull, ...withCert("postgres"), command: "SELECT ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()" });
      expect(r.stderr).to.equal("");
      expect(r.stdout.trim()).to.equal("t|/CN=postgres");
      const byName = await psql({ host: "localhost", port: server.port, user: "app", ...verifyFull, ...withCert("app"), command: "SELECT current_user" });
      expect(byName.stdout.trim(), byName.stderr).to.equal("app");
    });

    it("refuses a TLS client without a certificate", async () => {
      const r = await psql({ host: server.host, port: server.port, user: "postgres", ...verifyFull, command: "SELECT 1" });
      expect(r.code).to.not.equal(0);
      expect(r.stderr).to.contain("connection requires a valid client certificate");
    });

    it("refuses a certificate whose CN is another role (cert maps CN to the role)", async () => {
      const r = await psql({ host: server.host, port: server.port, user: "postgres", ...verifyFull, ...withCert("app"), command: "SELECT 1" });
      expect(r.code).to.not.equal(0);
      expect(r.stderr).to.contain('certificate authentication failed for user "postgres"');
    });

    it("refuses plain TCP (sslmode=disable) with hostnossl reject, replication connections included", async () => {
      const r = await psql({ host: server.host, port: server.port, user: "postgres", sslmode: "disable", command: "SELECT 1" });
      expect(r.code).to.not.equal(0);
      expect(r.stderr).to.contain("pg_hba.conf rejects connection").and.to.contain("no encryption");
      const repl = await psqlRaw(`host=${server.host} port=${server.port} user=postgres dbname=postgres sslmode=disable replication=true`, "IDENTIFY_SYSTEM");
      expect(repl.code).to.not.equal(0);
      expect(repl.stderr).to.contain("pg_hba.conf rejects replication connection").and.to.contain("no encryption");
    });

    it("refuses a client certificate revoked in the CRL and one from another CA", async () => {
      const revoked = await psql({ host: server.host, port: server.port, user: "app", ...verifyFull, ...withCert("revoked"), command: "SELECT 1" });
      expect(revoked.code).to.not.equal(0);
      expect(revoked.stderr).to.match(/certificate revoked/);
      const stranger = await psql({ host: server.host, port: server.port, user: "postgres", ...verifyFull, ...withCert("stranger"), command: "SELECT 1" });
      expect(stranger.code).to.not.equal(0);
      expect(stranger.stderr).to.match(/unknown ca/i);
    });

    it("keeps unix-socket (local) access untouched", async () => {
      expect((await server.sql("SELECT 1")).trim()).to.equal("1");
    });
  });

  describe("probeServer", () => {
    it("connects with verify-full and reports the served certificate (serial as openssl prints it, normalised)", async () => {
      const r = await probeServer(probeOpts(server, pki, "postgres"));
      expect(r.ok, JSON.stringify(r)).to.equal(true);
      if (!r.ok) return;
      const serial = (await openssl(pki.dir, ["x509", "-in", "server.crt", "-noout", "-serial"])).trim().replace(/^serial=/, "");
      expect(serial).to.match(/^0A/);
      expect(r.servedSerialNumber).to.equal(normalizeSerial(serial));
      expect(r.servedSerialNumber).to.equal(serial.toLowerCase());
      const fp = (await openssl(pki.dir, ["x509", "-in", "server.crt", "-noout", "-fingerprint", "-sha256"])).trim().replace(/^.*=/, "");
      expect(r.servedFingerprintSha256).to.equal(fp.replace(/:/g, "").toLowerCase());
      expect(r.servedSubject).to.equal("CN=localhost");
      expect(r.latencyMs).to.be.greaterThan(0).and.lessThan(10_000);
    });

    it("verifies against an IP SAN too (no SNI for an IP)", async () => {
      const r = await probeServer(probeOpts(server, pki, "postgres", { servername: "127.0.0.1" }));
      expect(r.ok, JSON.stringify(r)).to.equal(true);
    });

    it("reports a role that does not exist with the server's words", async () => {
      const r = await probeServer(probeOpts(server, pki, "ghost"));
      expect(r).to.deep.include({ ok: false, reason: "RoleMissing", message: 'FATAL: role "ghost" does not exist', sqlState: "28000" });
      // The handshake completed, so we still know what the server serves.
      expect(r.ok === false && r.servedSerialNumber).to.be.a("string");
    });

    it("reports a CN that is not the role as AuthenticationRejected", async () => {
      const r = await probeServer(probeOpts(server, pki, "postgres", { cert: pki.client.app!.cert, key: pki.client.app!.key }));
      expect(r).to.deep.include({ ok: false, reason: "AuthenticationRejected", message: 'FATAL: certificate authentication failed for user "postgres"' });
    });

    it("reports a missing database", async () => {
      const r = await probeServer(probeOpts(server, pki, "postgres", { database: "nope" }));
      expect(r).to.deep.include({ ok: false, reason: "DatabaseMissing", message: 'FATAL: database "nope" does not exist' });
    });

    it("refuses a server certificate from another CA (ServerCertificateUntrusted)", async () => {
      const r = await probeServer(probeOpts(server, pki, "postgres", { ca: pki.otherCa }));
      expect(r.ok).to.equal(false);
      expect(r.ok === false && r.reason).to.equal("ServerCertificateUntrusted");
      expect(r.ok === false && r.message).to.match(/unable to verify|self-signed|issuer/i);
    });

    it("refuses a server certificate that does not carry the expected name (HostnameMismatch)", async () => {
      const r = await probeServer(probeOpts(server, pki, "postgres", { servername: "db.example.com" }));
      expect(r.ok === false && r.reason, JSON.stringify(r)).to.equal("HostnameMismatch");
      expect(r.ok === false && r.message).to.contain("db.example.com");
    });

    it("reports a client certificate the server rejects (revoked, other CA)", async () => {
      const revoked = await probeServer(probeOpts(server, pki, "app", { cert: pki.client.revoked!.cert, key: pki.client.revoked!.key }));
      expect(revoked.ok === false && revoked.reason, JSON.stringify(revoked)).to.equal("ClientCertificateRejected");
      expect(revoked.ok === false && revoked.message).to.equal("the server rejected the client certificate: ssl/tls alert certificate revoked (ERR_SSL_SSL/TLS_ALERT_CERTIFICATE_REVOKED)");
      const stranger = await probeServer(probeOpts(server, pki, "postgres", { cert: pki.client.stranger!.cert, key: pki.client.stranger!.key }));
      expect(stranger.ok === false && stranger.reason, JSON.stringify(stranger)).to.equal("ClientCertificateRejected");
    });

    it("refuses a key that does not match the certificate before connecting, without echoing the key", async () => {
      const key = pki.client.app!.key;
      const r = await probeServer(probeOpts(server, pki, "postgres", { key }));
      expect(r.ok === false && r.reason).to.equal("ClientCredentialsInvalid");
      expect(JSON.stringify(r)).to.not.contain(key.split("\n")[1]!);
    });

    it("reports a port nobody listens on as Unreachable, quickly", async () => {
      const started = Date.now();
      const r = await probeServer(probeOpts(server, pki, "postgres", { port: await freePort() }));
      expect(r.ok === false && r.reason).to.equal("Unreachable");
      expect(r.ok === false && r.message).to.contain("ECONNREFUSED");
      expect(Date.now() - started).to.be.lessThan(2000);
    });

    it("gives up after timeoutMs on a server that never answers, and closes the connection", async () => {
      const sockets: Socket[] = [];
      const closed = new Set<Socket>();
      const silent: Server = createServer((s) => {
        sockets.push(s);
        s.on("close", () => closed.add(s));
        s.on("error", () => undefined);
        s.resume();
      });
      await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
      const port = (silent.address() as { port: number }).port;
      try {
        const started = Date.now();
        const r = await probeServer(probeOpts(server, pki, "postgres", { port, timeoutMs: 500 }));
        const elapsed = Date.now() - started;
        expect(r.ok === false && r.reason).to.equal("Timeout");
        expect(elapsed).to.be.within(450, 2500);
        expect(sockets).to.have.length(1);
        await waitFor("the probe to close its socket", async () => closed.size === sockets.length, 3000);
      } finally {
        for (const s of sockets) s.destroy();
        await new Promise((resolve) => silent.close(resolve));
      }
    });

    it("reports a server without TLS as ServerNotServingTLS", async () => {
      const plain = await startPostgres({ name: "plain" });
      try {
        const r = await probeServer(probeOpts(plain, pki, "postgres"));
        expect(r.ok === false && r.reason).to.equal("ServerNotServingTLS");
      } finally {
        await plain.stop();
      }
    });
  });

  describe("reloadServer", () => {
    it("reloads as postgres (superuser), having checked the files", async () => {
      const r = await reloadServer(probeOpts(server, pki, "postgres"));
      expect(r).to.deep.equal({ ok: true, configChecked: true });
    });

    it("reports ReloadNotPermitted for a role without the right, in the server's words", async () => {
      const r = await reloadServer(probeOpts(server, pki, "app"));
      expect(r).to.deep.include({ ok: false, reason: "ReloadNotPermitted", message: "ERROR: permission denied for function pg_reload_conf", sqlState: "42501" });
    });

    it("reports connection failures like the probe", async () => {
      const r = await reloadServer(probeOpts(server, pki, "ghost"));
      expect(r.ok === false && r.reason).to.equal("RoleMissing");
    });

    it("refuses to reload files the server reports as invalid (and the server keeps its working rules)", async () => {
      const hbaPath = join(server.dataDir, "pg_hba.conf");
      const good = await readFile(hbaPath, "utf8");
      await server.writeFile("pg_hba.conf", `hostssl all all 127.0.0.1/32 cert clientcert=verify-ca\n${good}`);
      try {
        const r = await reloadServer(probeOpts(server, pki, "postgres"));
        expect(r.ok === false && r.reason).to.equal("ConfigurationInvalid");
        expect(r.ok === false && r.message).to.contain('pg_hba.conf line 1: clientcert can only be set to "verify-full" when using "cert" authentication');
      } finally {
        await server.writeFile("pg_hba.conf", good);
      }
      expect((await probeServer(probeOpts(server, pki, "postgres"))).ok).to.equal(true);
    });

    it("an admin line after the conf block overrides it: findOverrides says so, reloadServer refuses it, upsert moves the block last again", async () => {
      const confPath = join(server.dataDir, "postgresql.conf");
      const ours = await readFile(confPath, "utf8");
      const edited = `${ours}ssl = off\n`;
      try {
        await server.writeFile("postgresql.conf", edited);
        const findings = findOverrides(edited);
        expect(findings.map((f) => f.reason)).to.deep.equal(["SettingOverridden"]);
        expect(findings[0]?.message).to.contain("(ssl = off)");
        // With ssl off, the server would reject every hostssl record: reloadServer does not apply that.
        const r = await reloadServer(probeOpts(server, pki, "postgres"));
        expect(r.ok === false && r.reason, JSON.stringify(r)).to.equal("ConfigurationInvalid");
        expect(r.ok === false && r.message).to.contain("hostssl record cannot match because SSL is disabled").and.to.contain("sets ssl = off");
        const fixed = text(upsertPostgresqlConf(edited, CONF_INPUT));
        expect(fixed.startsWith(`${originalConf}ssl = off\n`)).to.equal(true);
        expect(findOverrides(fixed)).to.deep.equal([]);
        await server.writeFile("postgresql.conf", fixed);
        expect((await reloadServer(probeOpts(server, pki, "postgres"))).ok).to.equal(true);
        expect((await server.sql("SHOW ssl")).trim()).to.equal("on");
      } finally {
        await server.writeFile("postgresql.conf", ours);
        await server.reload();
        await waitForMtls();
      }
    });
  });

  describe("clientCertificate verify-ca on PostgreSQL 15", () => {
    const PASSWORD = "correct horse battery staple";
    const VERIFY_CA: HbaRule[] = [
      { databases: ["all"], users: ["postgres"], addresses: ["127.0.0.1/32"], clientCertificate: "verify-full" },
      { databases: ["all"], users: ["app"], addresses: ["127.0.0.1/32"], clientCertificate: "verify-ca" },
    ];

    before(async () => {
      await server.sql(`ALTER ROLE app PASSWORD '${PASSWORD}'`);
    });

    after(async () => {
      await applyHba(FULL);
      await waitForMtls();
    });

    it("rejects `cert clientcert=verify-ca` as a configuration error (so we never render it)", async () => {
      const good = await readFile(join(server.dataDir, "pg_hba.conf"), "utf8");
      await server.writeFile("pg_hba.conf", `hostssl all app 127.0.0.1/32 cert clientcert=verify-ca\n${good}`);
      try {
        const err = await server.sql("SELECT error FROM pg_hba_file_rules WHERE line_number = 1");
        expect(err.trim()).to.equal('clientcert can only be set to "verify-full" when using "cert" authentication');
      } finally {
        await server.writeFile("pg_hba.conf", good);
      }
    });

    it("default rendering (scram-sha-256 clientcert=verify-ca): needs a certificate from the CA, with any CN, AND the role's password", async () => {
      await applyHba(VERIFY_CA);
      await waitFor("the verify-ca rules", async () => (await probeServer(probeOpts(server, pki, "app", { cert: pki.client.postgres!.cert, key: pki.client.postgres!.key, password: PASSWORD }))).ok, 15_000);
      // Certificate CN=postgres (not "app"): accepted, the CN is not compared with the role.
      const other = await probeServer(probeOpts(server, pki, "app", { cert: pki.client.postgres!.cert, key: pki.client.postgres!.key, password: PASSWORD }));
      expect(other.ok, JSON.stringify(other)).to.equal(true);
      const noPassword = await probeServer(probeOpts(server, pki, "app"));
      expect(noPassword.ok === false && noPassword.reason, JSON.stringify(noPassword)).to.equal("PasswordRequired");
      const wrong = await probeServer(probeOpts(server, pki, "app", { password: "wrong" }));
      expect(wrong).to.deep.include({ ok: false, reason: "AuthenticationRejected", message: 'FATAL: password authentication failed for user "app"' });
      // The password alone is not enough: no certificate, no entry.
      const noCert = await psqlRaw(`host=${server.host} port=${server.port} user=app dbname=postgres sslmode=verify-full sslrootcert='${certFile("ca.crt")}' sslcert=/nonexistent/x.crt sslkey=/nonexistent/x.key password='${PASSWORD}'`, "SELECT 1");
      expect(noCert.code).to.not.equal(0);
      expect(noCert.stderr).to.contain("connection requires a valid client certificate");
      // Nor a revoked one.
      const revoked = await probeServer(probeOpts(server, pki, "app", { cert: pki.client.revoked!.cert, key: pki.client.revoked!.key, password: PASSWORD }));
      expect(revoked.ok === false && revoked.reason).to.equal("ClientCertificateRejected");
      // postgres keeps verify-full.
      expect((await probeServer(probeOpts(server, pki, "postgres"))).ok).to.equal(true);
    });

    it("explicit trust clientcert=verify-ca: ANY certificate from the CA logs in as the rule's roles, no password", async () => {
      await applyHba([VERIFY_CA[0]!, { ...VERIFY_CA[1]!, verifyCaMethod: "trust" }]);
      await waitFor("the trust rules", async () => (await probeServer(probeOpts(server, pki, "app", { cert: pki.client.ghost!.cert, key: pki.client.ghost!.key }))).ok, 15_000);
      // The certificate is a bearer token: CN=ghost (no such role) and CN=postgres both get in as app.
      for (const holder of ["ghost", "postgres"]) {
        const r = await probeServer(probeOpts(server, pki, "app", { cert: pki.client[holder]!.cert, key: pki.client[holder]!.key }));
        expect(r.ok, `${holder}: ${JSON.stringify(r)}`).to.equal(true);
      }
      const noCert = await psqlRaw(`host=${server.host} port=${server.port} user=app dbname=postgres sslmode=verify-full sslrootcert='${certFile("ca.crt")}' sslcert=/nonexistent/x.crt sslkey=/nonexistent/x.key`, "SELECT 1");
      expect(noCert.code).to.not.equal(0);
      expect(noCert.stderr).to.contain("connection requires a valid client certificate");
      const stranger = await probeServer(probeOpts(server, pki, "app", { cert: pki.client.stranger!.cert, key: pki.client.stranger!.key }));
      expect(stranger.ok === false && stranger.reason).to.equal("ClientCertificateRejected");
    });
  });

  describe("removal", () => {
    it("removing the blocks restores both files byte for byte, and the original access", async () => {
      const conf = await readFile(join(server.dataDir, "postgresql.conf"), "utf8");
      const hba = await readFile(join(server.dataDir, "pg_hba.conf"), "utf8");
      expect(conf).to.not.equal(originalConf);
      expect(hba).to.not.equal(originalHba);
      const restoredConf = text(removeManagedBlock(conf));
      const restoredHba = text(removeManagedBlock(hba));
      expect(Buffer.from(restoredConf).equals(Buffer.from(originalConf))).to.equal(true);
      expect(Buffer.from(restoredHba).equals(Buffer.from(originalHba))).to.equal(true);
      await server.setConfig({ postgresqlConf: restoredConf, pgHba: restoredHba });
      await server.reload();
      await waitFor(
        "plain TCP to work again",
        async () => (await psql({ host: server.host, port: server.port, user: "postgres", sslmode: "disable", command: "SELECT 1" })).stdout.trim() === "1",
        15_000,
      );
      expect((await server.sql("SHOW ssl")).trim()).to.equal("off");
    });
  });
});
