import { expect } from "chai";
import { DatabaseError } from "pg";
import { classifyError, normalizeSerial, redact } from "../../../src/postgres/probe";

function dbError(severity: string, code: string, message: string, detail?: string): DatabaseError {
  const e = new DatabaseError(message, message.length, "error");
  e.severity = severity;
  e.code = code;
  e.detail = detail;
  return e;
}

function sysError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

describe("postgres/probe (pure parts)", () => {
  describe("normalizeSerial", () => {
    it("normalises openssl, Node and DER-with-sign-byte forms to one string", () => {
      expect(normalizeSerial("0A1B2C")).to.equal("0a1b2c");
      expect(normalizeSerial("0a:1b:2c")).to.equal("0a1b2c");
      expect(normalizeSerial("00ab12")).to.equal("ab12");
      expect(normalizeSerial("AB12")).to.equal("ab12");
      expect(normalizeSerial("a1b2c")).to.equal("0a1b2c");
      expect(normalizeSerial("0x00FF")).to.equal("ff");
      expect(normalizeSerial("00")).to.equal("00");
      expect(normalizeSerial("0000")).to.equal("00");
    });
  });

  describe("redact", () => {
    it("removes PEM blocks and given secrets", () => {
      const key = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49\n-----END PRIVATE KEY-----";
      expect(redact(`bad key ${key} here`)).to.equal("bad key [redacted PEM] here");
      expect(redact("oops -----BEGIN EC PRIVATE KEY-----\nabc")).to.equal("oops [redacted PEM]");
      expect(redact("password was hunter2hunter2hunter2!", ["hunter2hunter2hunter2"])).to.equal("password was [redacted]!");
    });
  });

  describe("classifyError", () => {
    const cases: Array<[string, unknown, string, string | RegExp]> = [
      ["role missing", dbError("FATAL", "28000", 'role "ghost" does not exist'), "RoleMissing", 'FATAL: role "ghost" does not exist'],
      [
        "cert auth failed",
        dbError("FATAL", "28000", 'certificate authentication failed for user "x"'),
        "AuthenticationRejected",
        'FATAL: certificate authentication failed for user "x"',
      ],
      [
        "no hba entry",
        dbError("FATAL", "28000", 'no pg_hba.conf entry for host "127.0.0.1", user "u", database "d", SSL encryption'),
        "HbaRejected",
        /^FATAL: no pg_hba\.conf entry/,
      ],
      ["hba reject", dbError("FATAL", "28000", 'pg_hba.conf rejects connection for host "127.0.0.1"'), "HbaRejected", /^FATAL: pg_hba\.conf rejects/],
      ["password failed", dbError("FATAL", "28P01", 'password authentication failed for user "u"'), "AuthenticationRejected", /password authentication failed/],
      ["database missing", dbError("FATAL", "3D000", 'database "nope" does not exist'), "DatabaseMissing", 'FATAL: database "nope" does not exist'],
      [
        "no connect privilege",
        dbError("FATAL", "42501", 'permission denied for database "d"', "User does not have CONNECT privilege."),
        "PermissionDenied",
        'FATAL: permission denied for database "d" (DETAIL: User does not have CONNECT privilege.)',
      ],
      ["starting up", dbError("FATAL", "57P03", "the database system is starting up"), "ServerNotReady", /starting up/],
      ["too many", dbError("FATAL", "53300", "sorry, too many clients already"), "TooManyConnections", /too many/],
      ["other", dbError("ERROR", "XX000", "boom"), "ServerError", "ERROR: boom"],
      ["refused", sysError("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:1"), "Unreachable", /ECONNREFUSED/],
      ["dns", sysError("ENOTFOUND", "getaddrinfo ENOTFOUND nowhere"), "Unreachable", /ENOTFOUND/],
      ["altname", sysError("ERR_TLS_CERT_ALTNAME_INVALID", "Hostname/IP does not match certificate's altnames"), "HostnameMismatch", /altnames/],
      [
        "unknown issuer",
        sysError("UNABLE_TO_VERIFY_LEAF_SIGNATURE", "unable to verify the first certificate"),
        "ServerCertificateUntrusted",
        /unable to verify/,
      ],
      ["self-signed", sysError("SELF_SIGNED_CERT_IN_CHAIN", "self-signed certificate in certificate chain"), "ServerCertificateUntrusted", /self-signed/],
      ["expired", sysError("CERT_HAS_EXPIRED", "certificate has expired"), "ServerCertificateExpired", /expired/],
      ["client cert unknown CA", sysError("ERR_SSL_TLSV1_ALERT_UNKNOWN_CA", "tlsv1 alert unknown ca"), "ClientCertificateRejected", /unknown ca/],
      ["client cert revoked", sysError("ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED", "sslv3 alert certificate revoked"), "ClientCertificateRejected", /revoked/],
      [
        "OpenSSL 3 alert with its reason",
        Object.assign(
          sysError(
            "ERR_SSL_SSL/TLS_ALERT_CERTIFICATE_REVOKED",
            "406D:error:0A000414:SSL routines:ssl3_read_bytes:ssl/tls alert certificate revoked:rec_layer_s3.c:918:SSL alert number 44\n",
          ),
          { reason: "ssl/tls alert certificate revoked" },
        ),
        "ClientCertificateRejected",
        "the server rejected the client certificate: ssl/tls alert certificate revoked (ERR_SSL_SSL/TLS_ALERT_CERTIFICATE_REVOKED)",
      ],
      ["protocol", sysError("ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION", "tlsv1 alert protocol version"), "TLSHandshakeFailed", /protocol version/],
      ["no ssl", new Error("The server does not support SSL connections"), "ServerNotServingTLS", /does not serve TLS/],
      ["password needed", new Error("SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string"), "PasswordRequired", /password/],
      ["terminated", new Error("Connection terminated unexpectedly"), "ConnectionLost", /terminated/],
      ["reset", sysError("ECONNRESET", "read ECONNRESET"), "ConnectionLost", /ECONNRESET/],
    ];
    for (const [what, err, reason, message] of cases) {
      it(`${what} → ${reason}`, () => {
        const r = classifyError(err, undefined);
        expect(r.ok).to.equal(false);
        expect(r.reason).to.equal(reason);
        if (typeof message === "string") expect(r.message).to.equal(message);
        else expect(r.message).to.match(message);
      });
    }

    it("keeps the SQLSTATE and the served serial, and never echoes key material", () => {
      const r = classifyError(dbError("FATAL", "28000", 'role "x" does not exist'), {
        servedSerialNumber: "0a",
        servedFingerprintSha256: "ff",
        servedSubject: "CN=db",
        servedNotAfter: "2030-01-01T00:00:00.000Z",
      });
      expect(r).to.deep.include({ sqlState: "28000", servedSerialNumber: "0a" });
      const leaky = classifyError(new Error("cannot use -----BEGIN PRIVATE KEY-----\nSECRET\n-----END PRIVATE KEY-----"), undefined);
      expect(leaky.message).to.not.contain("SECRET");
    });
  });
});
