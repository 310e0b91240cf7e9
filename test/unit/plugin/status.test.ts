import { expect } from "chai";
import { X509Certificate } from "node:crypto";
import { PluginError } from "../../../src/plugin/errors";
import { parseResourceRef, toResource } from "../../../src/plugin/resources";
import {
  renderStatusDetail,
  renderStatusTable,
  secretCertificates,
  secretsNamedBy,
  sortRows,
  statusDetail,
  statusExitCode,
  statusRow,
  waitingOn,
} from "../../../src/plugin/status";
import { condition, connection, database, DAY, NOW, pki, type Pki } from "./fixtures";

describe("kubectl mtls status (pure)", () => {
  let p: Pki;
  before(async () => {
    p = await pki();
  });

  describe("statusRow", () => {
    it("reads a SecureDatabase's Ready, server certificate, verification, CA rotation and revocations from status", () => {
      const row = statusRow(toResource("SecureDatabase", database(p)), NOW);
      expect(row).to.deep.include({ kind: "SecureDatabase", namespace: "cast", name: "db", ready: "True", reason: "Secured", caRotationPhase: "Idle", revokedCount: 1 });
      expect(row.certificate.notAfter).to.equal(p.server.notAfter.toISOString().replace(/\.\d{3}Z$/, "Z"));
      expect(row.lastVerification).to.match(/^2026-03-01T11:58:30Z$/);
      // Days left agree with the certificate itself, read by node:crypto.
      const notAfter = new X509Certificate(p.server.certPem).validToDate;
      expect(row.certificate.daysLeft).to.equal(Math.floor((notAfter.getTime() - NOW.getTime()) / DAY));
      expect(row.certificate.renewalTime).to.be.a("string");
    });

    it("reads an ImagingConnection's client certificate; database-only columns are null", () => {
      const row = statusRow(toResource("ImagingConnection", connection(p)), NOW);
      expect(row).to.deep.include({ kind: "ImagingConnection", ready: "True", reason: "Connected", caRotationPhase: null, revokedCount: null });
      const notAfter = new X509Certificate(p.client.certPem).validToDate;
      expect(row.certificate.daysLeft).to.equal(Math.floor((notAfter.getTime() - NOW.getTime()) / DAY)).and.to.equal(60);
    });

    it("shows null for everything a fresh object's status lacks, and an undecodable status as a message", () => {
      const fresh = statusRow(toResource("ImagingConnection", { metadata: { name: "new", namespace: "cast" } }), NOW);
      expect(fresh).to.deep.include({ ready: null, reason: null, lastVerification: null });
      expect(fresh.certificate).to.deep.equal({ notAfter: null, daysLeft: null, renewalTime: null });
      const broken = statusRow(toResource("SecureDatabase", { metadata: { name: "x", namespace: "cast" }, status: { conditions: "nope" } }), NOW);
      expect(broken.ready).to.equal(null);
      expect(broken.message).to.match(/^unreadable status: status\.conditions: expected an array/);
    });
  });

  describe("statusExitCode", () => {
    it("is 0 when every row is Ready, 1 when any is False, Unknown or has no Ready yet, 0 for none", () => {
      expect(statusExitCode([{ ready: "True" }, { ready: "True" }])).to.equal(0);
      expect(statusExitCode([{ ready: "True" }, { ready: "False" }])).to.equal(1);
      expect(statusExitCode([{ ready: "Unknown" }])).to.equal(1);
      expect(statusExitCode([{ ready: null }])).to.equal(1);
      expect(statusExitCode([])).to.equal(0);
    });
  });

  describe("the table", () => {
    it("lists databases first, then connections, with '-' where the status does not say", () => {
      const notReady = connection(p, {
        conditions: [condition("CertificateReady", "False", "DatabaseNotFound"), condition("Ready", "False", "DatabaseNotFound")],
        certificate: undefined,
        verification: undefined,
      }, "orphan");
      const rows = sortRows([connection(p), notReady, database(p)].map((o) => statusRow(toResource(o.kind === "SecureDatabase" ? "SecureDatabase" : "ImagingConnection", o), NOW)));
      const lines = renderStatusTable(rows, NOW).trimEnd().split("\n");
      expect(lines[0]).to.match(/^KIND\s+NAMESPACE\s+NAME\s+READY\s+REASON\s+EXPIRES\s+DAYS LEFT\s+RENEWAL\s+VERIFIED\s+CA ROTATION\s+REVOKED$/);
      expect(lines[1]).to.match(/^SecureDatabase\s+cast\s+db\s+True\s+Secured\s+\S+Z\s+90\s+\S+Z\s+90s ago\s+Idle\s+1$/);
      expect(lines[2]).to.match(/^ImagingConnection\s+cast\s+analysis\s+True\s+Connected\s+\S+Z\s+60\s+\S+Z\s+30s ago\s+-\s+-$/);
      expect(lines[3]).to.match(/^ImagingConnection\s+cast\s+orphan\s+False\s+DatabaseNotFound\s+-\s+-\s+-\s+-\s+-\s+-$/);
      // Columns line up: every row starts its NAME where the header does.
      const at = lines[0]!.indexOf("NAME ");
      for (const l of lines.slice(1)) expect(l.slice(at, at + 2)).to.match(/^\S/);
    });
  });

  describe("what it waits on", () => {
    it("lists the conditions that hold Ready back, with what their reason means", () => {
      const r = toResource("ImagingConnection", connection(p, {
        conditions: [
          condition("CertificateReady", "False", "DatabaseNotFound", "SecureDatabase cast/nope does not exist"),
          condition("Revoked", "False", "NotRevoked"),
          condition("WorkloadsPatched", "True", "Patched"),
          condition("ConnectionVerified", "Unknown", "VerificationDisabled"),
          condition("Ready", "False", "DatabaseNotFound"),
        ],
      }));
      expect(waitingOn(r)).to.deep.equal([
        { type: "CertificateReady", status: "False", reason: "DatabaseNotFound", message: "SecureDatabase cast/nope does not exist", meaning: "spec.databaseRef names no SecureDatabase" },
      ]);
    });

    it("counts Revoked=True and a database's failing conditions, never CARotating or the choices the user made", () => {
      const imc = toResource("ImagingConnection", connection(p, { conditions: [condition("Revoked", "True", "RevokedByDatabase")] }));
      expect(waitingOn(imc).map((w) => w.type)).to.deep.equal(["Revoked"]);
      const sdb = toResource("SecureDatabase", database(p, {
        conditions: [
          condition("CARotating", "True", "Overlap"),
          condition("Reloaded", "Unknown", "ManualReloadRequired"),
          condition("Verified", "False", "PlaintextAccepted"),
        ],
      }));
      expect(waitingOn(sdb).map((w) => `${w.type}/${w.reason}`)).to.deep.equal(["Verified/PlaintextAccepted"]);
    });
  });

  describe("the detail of one resource", () => {
    it("names the Secrets in its namespace: the server Secret, and a CA Secret only when its key lives there too", () => {
      expect(secretsNamedBy(toResource("SecureDatabase", database(p)))).to.deep.equal(["db-server-tls"]);
      const provided = database(p, { ca: { secretName: "my-ca", keySecret: "cast/my-ca" } });
      expect(secretsNamedBy(toResource("SecureDatabase", provided))).to.deep.equal(["db-server-tls", "my-ca"]);
      expect(secretsNamedBy(toResource("ImagingConnection", connection(p)))).to.deep.equal(["analysis-client-tls"]);
    });

    it("decodes each certificate of the Secret once, with subject, SANs, issuer, serial, validity, key type and fingerprint", () => {
      const s = secretCertificates({ namespace: "cast", name: "db-server-tls", data: p.serverSecret }, NOW);
      expect(s.problem).to.equal(null);
      expect(s.certificates.map((c) => `${c.key}#${c.index}`)).to.deep.equal(["tls.crt#1", "ca.crt#1"]);
      const leaf = s.certificates[0]!;
      const node = new X509Certificate(p.server.certPem);
      expect(leaf).to.deep.include({
        subject: "CN=db.cast.svc",
        issuer: "CN=db CA",
        serialNumber: p.server.serialNumber,
        keyType: "ECDSA P-256",
        isCA: false,
        sha256Fingerprint: node.fingerprint256.replace(/:/g, "").toLowerCase(),
      });
      expect(leaf.sans).to.deep.equal(["db.cast.svc", "db", "10.0.0.7"]);
      expect(s.certificates[1]).to.deep.include({ subject: "CN=db CA", isCA: true });
      // client.crt and root.crt repeat tls.crt and ca.crt: shown once.
      const c = secretCertificates({ namespace: "cast", name: "analysis-client-tls", data: p.clientSecret }, NOW);
      expect(c.certificates.map((x) => `${x.key}: ${x.subject}`)).to.deep.equal(["tls.crt: CN=analysis", "ca.crt: CN=db CA"]);
    });

    it("says why a Secret could not be read instead of failing", () => {
      expect(secretCertificates({ namespace: "cast", name: "gone", problem: "not found" }, NOW)).to.deep.equal({ secret: "cast/gone", problem: "not found", certificates: [] });
    });

    it("renders conditions, what it waits on, the certificates and the events, and never a private key", () => {
      const r = toResource("ImagingConnection", connection(p, {
        conditions: [condition("CertificateReady", "True", "Valid"), condition("ConnectionVerified", "False", "RoleMissing", 'role "analysis" does not exist'), condition("Ready", "False", "RoleMissing")],
      }));
      const events = [
        { type: "Normal", reason: "CertificateIssued", message: "issued serial 01", count: 1, lastTimestamp: "2026-03-01T11:00:00Z", metadata: {} },
        { type: "Warning", reason: "RoleMissing", message: 'role "analysis" does not exist', count: 4, lastTimestamp: "2026-03-01T11:59:00Z", metadata: {} },
      ];
      const detail = statusDetail(r, [{ namespace: "cast", name: "analysis-client-tls", data: p.clientSecret }], events, NOW);
      expect(statusExitCode([detail])).to.equal(1);
      const text = renderStatusDetail(detail, NOW);
      expect(text).to.contain("ImagingConnection cast/analysis\n");
      expect(text).to.match(/Ready:\s+False RoleMissing/);
      expect(text).to.match(/Waiting on:\n {2}ConnectionVerified False RoleMissing: role "analysis" does not exist\n/);
      expect(text).to.contain("Secret cast/analysis-client-tls\n");
      expect(text).to.match(/tls\.crt #1\n\s+subject:\s+CN=analysis/);
      expect(text).to.match(/Events:\n\s+LAST SEEN\s+TYPE\s+REASON\s+COUNT\s+MESSAGE\n\s+60m\s+Normal\s+CertificateIssued\s+1\s+issued serial 01\n\s+60s\s+Warning\s+RoleMissing\s+4/);
      expect(text).to.not.contain("PRIVATE KEY");
      expect(JSON.stringify(detail)).to.not.contain(p.client.keyPkcs8Pem.split("\n")[1]);
    });
  });

  describe("parseResourceRef", () => {
    it("takes kubectl's spellings of both kinds, and a bare name for either", () => {
      expect(parseResourceRef("sdb/db")).to.deep.equal({ kind: "SecureDatabase", name: "db" });
      expect(parseResourceRef("securedatabases.mtls.imaging.dev/db")).to.deep.equal({ kind: "SecureDatabase", name: "db" });
      expect(parseResourceRef("imc/analysis")).to.deep.equal({ kind: "ImagingConnection", name: "analysis" });
      expect(parseResourceRef("ImagingConnection/analysis")).to.deep.equal({ kind: "ImagingConnection", name: "analysis" });
      expect(parseResourceRef("analysis")).to.deep.equal({ name: "analysis" });
    });

    it("refuses another kind or a missing name, saying how to write it", () => {
      expect(() => parseResourceRef("pod/x")).to.throw(PluginError, /name a SecureDatabase as sdb\/NAME or an ImagingConnection as imc\/NAME/);
      expect(() => parseResourceRef("imc/")).to.throw(PluginError, /write imc\/NAME/);
    });
  });
});
