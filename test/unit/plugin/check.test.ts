import { expect } from "chai";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkEndpoint, renderCheck, renderRefusal, serialFromDecimal, type CheckResult } from "../../../src/plugin/check";
import { PluginError } from "../../../src/plugin/errors";
import { forwardedPort, forwardTarget, portForwardArgs, startPortForward } from "../../../src/plugin/port-forward";
import type { ConnectionDeclaration } from "../../../src/api/types";

const DECLARATION: ConnectionDeclaration = { host: "db.cast.svc", port: 5432, database: "imaging", user: "analysis", sslMode: "verify-full" };

describe("kubectl mtls check (pure)", () => {
  it("connects where the declaration says, or to --host/--port, and always verifies the declared name", () => {
    expect(checkEndpoint(DECLARATION, {})).to.deep.equal({ host: "db.cast.svc", port: 5432, serverName: "db.cast.svc" });
    expect(checkEndpoint(DECLARATION, { host: "10.0.0.7", port: "30432" })).to.deep.equal({ host: "10.0.0.7", port: 30432, serverName: "db.cast.svc" });
    expect(() => checkEndpoint(DECLARATION, { port: "99999" })).to.throw(PluginError, /--port 99999 is not a TCP port/);
    expect(() => checkEndpoint({ sslMode: "verify-full" }, {})).to.throw(PluginError, /no host and port/);
  });

  it("reads pg_stat_ssl's decimal client_serial as the hex status writes", () => {
    expect(serialFromDecimal("255")).to.equal("ff");
    expect(serialFromDecimal(BigInt("0x7a3f00112233445566778899aabbccddeeff0011").toString(10))).to.equal("7a3f00112233445566778899aabbccddeeff0011");
    expect(serialFromDecimal(null)).to.equal(null);
    expect(serialFromDecimal("abc")).to.equal(null);
  });

  it("shows the server's answer: version, current_user, ssl, client_serial, the server certificate", () => {
    const r: CheckResult = {
      connection: "imagingconnection cast/analysis",
      endpoint: "db.cast.svc:5432",
      serverName: "db.cast.svc",
      latencyMs: 12.5,
      serverVersion: "PostgreSQL 15.8",
      currentUser: "analysis",
      database: "imaging",
      ssl: true,
      tlsVersion: "TLSv1.3",
      cipher: "TLS_AES_256_GCM_SHA384",
      clientSerial: "0abc",
      clientDN: "/CN=analysis",
      clientSerialMatchesStatus: true,
      serverCertificate: { subject: "CN=db.cast.svc", serialNumber: "0def", notAfter: "2026-05-30T12:00:00Z", daysLeft: 89 },
    };
    expect(renderCheck(r)).to.equal(`imagingconnection cast/analysis: logged in to db.cast.svc:5432 over mTLS (verify-full, server name db.cast.svc) in 12.5 ms
  server version:  PostgreSQL 15.8
  current_user:    analysis
  database:        imaging
  ssl:             true (TLSv1.3, TLS_AES_256_GCM_SHA384)
  client_serial:   0abc (the connection's current certificate)
  client DN:       /CN=analysis
  server subject:  CN=db.cast.svc
  server serial:   0def
  server expires:  2026-05-30T12:00:00Z (89 days left)
`);
    expect(renderCheck({ ...r, clientSerialMatchesStatus: false })).to.contain("0abc (NOT the serial in status.certificate)");
  });

  it("a refusal: the server's words, the reason's meaning from the operator's vocabulary, the likely fix", () => {
    const login = { connection: "imagingconnection cast/analysis", endpoint: "localhost:5432", user: "analysis", serial: "0abc", statusCommand: "kubectl mtls status imc/analysis -n cast" };
    const failure = { ok: false as const, reason: "ClientCertificateRejected" as const, message: "the server rejected the client certificate: sslv3 alert certificate revoked (ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED)" };
    const text = renderRefusal(login, failure, "securedatabase cast/db");
    expect(text).to.equal(`imagingconnection cast/analysis: localhost:5432 refused the login as analysis with certificate serial 0abc
  server said:  the server rejected the client certificate: sslv3 alert certificate revoked (ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED)
  reason:       ClientCertificateRejected: the server refused the client certificate
  likely fix:   serial 0abc is revoked by securedatabase cast/db (status.trust.revokedSerials): the operator issues the connection a new certificate unless the connection itself is revoked; kubectl mtls status imc/analysis -n cast
`);
    const role = renderRefusal(login, { ok: false, reason: "RoleMissing", message: 'FATAL: role "analysis" does not exist' }, undefined);
    expect(role).to.contain('server said:  FATAL: role "analysis" does not exist').and.contain("reason:       RoleMissing: the database role does not exist");
    expect(role).to.contain("likely fix:   kubectl mtls status imc/analysis -n cast shows what the operator sees");
  });
});

describe("kubectl mtls check --port-forward", () => {
  it("forwards to the Service (or the pod) the declared host names, and to nothing else", () => {
    expect(forwardTarget("db.cast.svc")).to.deep.equal({ namespace: "cast", resource: "service/db" });
    expect(forwardTarget("db.cast")).to.deep.equal({ namespace: "cast", resource: "service/db" });
    expect(forwardTarget("db.cast.svc.cluster.local.")).to.deep.equal({ namespace: "cast", resource: "service/db" });
    expect(forwardTarget("css-0.css.cast.svc.cluster.local")).to.deep.equal({ namespace: "cast", resource: "pod/css-0" });
    for (const host of ["localhost", "10.0.0.7", "db.example.com", "db"]) expect(forwardTarget(host), host).to.equal(undefined);
  });

  it("runs kubectl port-forward on loopback with the same kubeconfig and context, on a port kubectl picks", () => {
    expect(portForwardArgs({ namespace: "cast", resource: "service/db" }, 5432, { kubeconfig: "/k", context: "prod" })).to.deep.equal([
      "--kubeconfig", "/k", "--context", "prod", "port-forward", "--namespace", "cast", "--address", "127.0.0.1", "service/db", ":5432",
    ]);
    expect(forwardedPort("Forwarding from 127.0.0.1:43127 -> 5432\nForwarding from [::1]:43127 -> 5432\n")).to.equal(43127);
    expect(forwardedPort("Handling connection for 43127\n")).to.equal(undefined);
  });

  describe("startPortForward (a stand-in kubectl)", () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "pf-"));
    });
    after(() => rm(dir, { recursive: true, force: true }));

    async function fakeKubectl(name: string, body: string): Promise<string> {
      const path = join(dir, name);
      await writeFile(path, `#!/bin/sh\n${body}\n`);
      await chmod(path, 0o755);
      return path;
    }

    it("resolves with the local port once kubectl listens, and stops it", async () => {
      const kubectl = await fakeKubectl("listens", 'echo "Forwarding from 127.0.0.1:40123 -> 5432"; exec sleep 30');
      const pf = await startPortForward(kubectl, []);
      expect(pf.localPort).to.equal(40123);
      pf.stop();
    });

    it("a kubectl that exits says why in one line; one that stays silent times out", async () => {
      const fails = await fakeKubectl("fails", 'echo "error: services \\"db\\" not found" >&2; exit 1');
      let err: unknown;
      await startPortForward(fails, []).catch((e: unknown) => (err = e));
      expect(err).to.be.instanceOf(PluginError);
      expect((err as Error).message).to.equal('kubectl port-forward exited (1): error: services "db" not found');
      const silent = await fakeKubectl("silent", "exec sleep 30");
      await startPortForward(silent, [], 300).catch((e: unknown) => (err = e));
      expect((err as Error).message).to.equal("kubectl port-forward did not start listening within 0.3s");
      await startPortForward(join(dir, "absent"), []).catch((e: unknown) => (err = e));
      expect((err as Error).message).to.match(/^cannot run .*absent port-forward: .*ENOENT.*: put kubectl on PATH \(or set KUBECTL\)$/);
    });
  });
});
