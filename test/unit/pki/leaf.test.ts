import { expect } from "chai";
import fc from "fast-check";
import {
  CLOCK_SKEW_MS,
  databaseUserProblem,
  describeKeySpec,
  generateCA,
  issueClientCertificate,
  issueServerCertificate,
  loadIssuedCertificate,
  parseCertificate,
  randomSerialNumber,
  resolveServerNames,
  validateDatabaseUser,
} from "../../../src/pki/index";
import { ALL_KEY_SPECS, DAY, HOUR, openssl, rejectsWithReason, sharedCA, tempDir, throwsWithReason } from "./helpers";

describe("pki/leaf", () => {
  describe("issueServerCertificate", () => {
    it("has serverAuth, SANs, SKI/AKI and verifies against the CA as an SSL server (openssl)", async () => {
      const ca = await sharedCA();
      const leaf = await issueServerCertificate(ca, {
        dnsNames: ["db.imaging.svc", "DB.Example.com."],
        ipAddresses: ["127.0.0.1", "::1"],
        duration: DAY, now: new Date(),
      });
      const t = tempDir();
      try {
        const caPath = t.file("ca.crt", ca.certPem);
        const leafPath = t.file("leaf.crt", leaf.certPem);
        const v = openssl(["verify", "-purpose", "sslserver", "-CAfile", caPath, leafPath]);
        expect(v.code, v.stderr).to.equal(0);
        const text = openssl(["x509", "-in", leafPath, "-noout", "-text"]).stdout;
        expect(text).to.contain("TLS Web Server Authentication");
        expect(text).to.match(/Key Usage: critical\s+Digital Signature\n/);
        expect(text).to.contain("DNS:db.imaging.svc, DNS:db.example.com, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1");
        expect(text).to.contain("X509v3 Subject Key Identifier");
        expect(text).to.contain("X509v3 Authority Key Identifier");
        expect(text).to.contain("Subject: CN = db.imaging.svc");
        expect(openssl(["x509", "-in", leafPath, "-noout", "-checkhost", "db.example.com"]).stdout).to.contain("does match");
        expect(openssl(["x509", "-in", leafPath, "-noout", "-checkip", "127.0.0.1"]).stdout).to.contain("does match");
        expect(openssl(["x509", "-in", leafPath, "-noout", "-checkip", "127.0.0.2"]).stdout).to.contain("does NOT match");
        expect(leaf.facts.authorityKeyId).to.equal(ca.facts.subjectKeyId);
        expect(leaf.facts.subjectKeyId).to.match(/^[0-9a-f]{40}$/);
        expect(leaf.facts.isCA).to.equal(false);
        expect(leaf.dnsNames).to.deep.equal(["db.imaging.svc", "db.example.com"]);
        expect(leaf.ipAddresses).to.deep.equal(["127.0.0.1", "::1"]);
      } finally {
        t.cleanup();
      }
    });

    it("adds keyEncipherment for RSA server keys only", async () => {
      const ca = await sharedCA();
      const rsa = await issueServerCertificate(ca, { dnsNames: ["db"], duration: DAY, key: { algorithm: "RSA", size: 2048 }, now: new Date() });
      expect(rsa.facts.keyUsage).to.deep.equal(["digitalSignature", "keyEncipherment"]);
      const ec = await issueServerCertificate(ca, { dnsNames: ["db"], duration: DAY, now: new Date() });
      expect(ec.facts.keyUsage).to.deep.equal(["digitalSignature"]);
    });

    it("uses an explicit common name, or the first IP when there is no DNS name", async () => {
      const ca = await sharedCA();
      expect((await issueServerCertificate(ca, { dnsNames: ["a"], commonName: "PostgreSQL", duration: DAY, now: new Date() })).subjectCommonName).to.equal("PostgreSQL");
      expect((await issueServerCertificate(ca, { ipAddresses: ["10.0.0.5"], duration: DAY, now: new Date() })).subjectCommonName).to.equal("10.0.0.5");
    });

    it("refuses a certificate without any name, and invalid names", async () => {
      const ca = await sharedCA();
      await rejectsWithReason(issueServerCertificate(ca, { duration: DAY, now: new Date() }), "NoSubjectAltNames");
      await rejectsWithReason(issueServerCertificate(ca, { dnsNames: ["bad name"], duration: DAY, now: new Date() }), "InvalidDNSName");
      await rejectsWithReason(issueServerCertificate(ca, { ipAddresses: ["999.1.1.1"], duration: DAY, now: new Date() }), "InvalidIPAddress");
    });

    for (const spec of ALL_KEY_SPECS) {
      it(`issues ${describeKeySpec(spec)} leaves from a ${describeKeySpec(spec)} CA that openssl verifies`, async function () {
        this.timeout(30_000);
        const ca = await sharedCA(spec);
        const leaf = await issueServerCertificate(ca, { dnsNames: ["db"], duration: DAY, key: spec, now: new Date() });
        expect(leaf.key.algorithm).to.equal(spec.algorithm);
        expect(leaf.key.size).to.equal(spec.size);
        const t = tempDir();
        try {
          const v = openssl(["verify", "-x509_strict", "-CAfile", t.file("ca.crt", ca.certPem), t.file("l.crt", leaf.certPem)]);
          expect(v.code, v.stderr).to.equal(0);
          const k = openssl(["pkey", "-inform", "DER", "-in", t.file("l.pk8", leaf.keyPkcs8Der), "-pubout"]);
          const c = openssl(["x509", "-in", `${t.dir}/l.crt`, "-noout", "-pubkey"]);
          expect(k.stdout).to.equal(c.stdout);
        } finally {
          t.cleanup();
        }
      });
    }
  });

  describe("issueClientCertificate", () => {
    it("has clientAuth, CN = user, and verifies as an SSL client (openssl)", async () => {
      const ca = await sharedCA();
      const leaf = await issueClientCertificate(ca, { user: "imaging_app", duration: DAY, now: new Date() });
      const t = tempDir();
      try {
        const v = openssl(["verify", "-purpose", "sslclient", "-CAfile", t.file("ca.crt", ca.certPem), t.file("c.crt", leaf.certPem)]);
        expect(v.code, v.stderr).to.equal(0);
        const bad = openssl(["verify", "-purpose", "sslserver", "-CAfile", `${t.dir}/ca.crt`, `${t.dir}/c.crt`]);
        expect(bad.code).to.not.equal(0);
        const text = openssl(["x509", "-in", `${t.dir}/c.crt`, "-noout", "-text"]).stdout;
        expect(text).to.contain("TLS Web Client Authentication");
        expect(text).to.contain("Subject: CN = imaging_app");
        expect(text).not.to.contain("Subject Alternative Name");
        expect(leaf.facts.extendedKeyUsage).to.deep.equal(["clientAuth"]);
      } finally {
        t.cleanup();
      }
    });

    it("encodes a non-ASCII user as UTF8String, byte for byte", async () => {
      const ca = await sharedCA();
      const leaf = await issueClientCertificate(ca, { user: "analyste_é", duration: DAY, now: new Date() });
      expect(leaf.subjectCommonName).to.equal("analyste_é");
      const t = tempDir();
      try {
        const parsed = openssl(["asn1parse", "-in", t.file("c.crt", leaf.certPem)]).stdout;
        expect(parsed).to.contain("UTF8STRING");
      } finally {
        t.cleanup();
      }
    });

    it("refuses user names PostgreSQL could never match", async () => {
      const ca = await sharedCA();
      const err = await rejectsWithReason(issueClientCertificate(ca, { user: "a".repeat(64), duration: DAY, now: new Date() }), "InvalidUserName");
      expect(err.message).to.contain("63 bytes");
    });
  });

  describe("validity", () => {
    it("back-dates notBefore by 5 minutes and never outlives the CA", async () => {
      const now = new Date("2031-06-01T00:00:00Z");
      const ca = await generateCA({ commonName: "Short CA", duration: 10 * DAY, now: new Date(now.getTime() - DAY) });
      const leaf = await issueServerCertificate(ca, { dnsNames: ["db"], duration: 365 * DAY, now });
      expect(leaf.notBefore.getTime()).to.equal(now.getTime() - CLOCK_SKEW_MS);
      expect(leaf.notAfter.getTime()).to.equal(ca.facts.notAfter.getTime());
      const short = await issueClientCertificate(ca, { user: "app", duration: HOUR, now });
      expect(short.notAfter.getTime()).to.equal(now.getTime() + HOUR);
    });

    it("never starts before the CA", async () => {
      const now = new Date("2031-06-01T00:00:00Z");
      const ca = await generateCA({ commonName: "Fresh CA", duration: 10 * DAY, now });
      // A node whose clock is 2 minutes behind the one that made the CA: now - 5 min would precede the CA.
      const leaf = await issueClientCertificate(ca, { user: "app", duration: HOUR, now: new Date(now.getTime() - 2 * 60_000) });
      expect(leaf.notBefore.getTime()).to.equal(ca.facts.notBefore.getTime());
    });

    it("refuses to issue from an expired CA", async () => {
      const ca = await generateCA({ commonName: "Old CA", duration: DAY, now: new Date("2020-01-01T00:00:00Z") });
      await rejectsWithReason(issueClientCertificate(ca, { user: "app", duration: HOUR, now: new Date("2020-01-05T00:00:00Z") }), "CAExpired");
    });
  });

  describe("serial numbers", () => {
    it("are 32 lower-case hex digits, positive, first byte non-zero (property)", () => {
      fc.assert(
        fc.property(fc.integer(), () => {
          const s = randomSerialNumber();
          expect(s).to.match(/^[0-9a-f]{32}$/);
          const first = parseInt(s.slice(0, 2), 16);
          expect(first).to.be.within(1, 0x7f);
        }),
        { numRuns: 2000 },
      );
    });

    it("are what the certificate carries, and differ between certificates", async () => {
      const ca = await sharedCA();
      const serials = new Set<string>();
      for (let i = 0; i < 20; i++) {
        const leaf = await issueClientCertificate(ca, { user: "app", duration: HOUR, now: new Date() });
        expect(leaf.serialNumber).to.match(/^[0-7][0-9a-f]{31}$/);
        expect(parseCertificate(leaf.certPem).serialNumber).to.equal(leaf.serialNumber);
        expect(BigInt(leaf.serialNumberDecimal).toString(16).padStart(32, "0")).to.equal(leaf.serialNumber);
        serials.add(leaf.serialNumber);
      }
      expect(serials.size).to.equal(20);
    });
  });

  describe("databaseUserProblem (the CN rule)", () => {
    const ok = ["app", "App", "imaging_service", "user-1.2", "a b", "é", "用户", "a".repeat(63), "é".repeat(31), "x@example.com"];
    for (const user of ok) {
      it(`accepts ${JSON.stringify(user)}`, () => {
        expect(databaseUserProblem(user)).to.equal(undefined);
        expect(() => validateDatabaseUser(user)).not.to.throw();
      });
    }
    const bad: Array<[string, string]> = [
      ["", "empty"],
      ["a".repeat(64), "63 bytes"],
      ["é".repeat(32), "64 bytes"],
      ["a\u0000b", "NUL"],
      ["a\nb", "control"],
      ["a\tb", "control"],
      ["a\u007fb", "control"],
      ["a\u0085b", "control"],
      ["\ud800", "Unicode"],
      [" app", "whitespace"],
      ["app ", "whitespace"],
    ];
    for (const [user, why] of bad) {
      it(`refuses ${JSON.stringify(user)} (${why})`, () => {
        expect(databaseUserProblem(user)).to.contain(why);
        throwsWithReason(() => validateDatabaseUser(user), "InvalidUserName");
      });
    }

    it("accepts exactly the names of at most 63 UTF-8 bytes without control characters (property)", () => {
      fc.assert(
        fc.property(fc.string({ unit: "grapheme", maxLength: 40 }), (user) => {
          const expectedOk =
            user.length > 0 &&
            Buffer.byteLength(user, "utf8") <= 63 &&
            // eslint-disable-next-line no-control-regex
            !/[\u0000-\u001f\u007f-\u009f]/.test(user) &&
            user.trim() === user;
          expect(databaseUserProblem(user) === undefined).to.equal(expectedOk);
        }),
        { numRuns: 500 },
      );
    });
  });

  describe("resolveServerNames", () => {
    it("normalises, deduplicates and moves IPs listed as DNS names", () => {
      expect(resolveServerNames({ dnsNames: ["DB.svc.", "db.svc", "10.0.0.1", "*.Example.com"], ipAddresses: ["0:0::1", "10.0.0.1"] })).to.deep.equal({
        dnsNames: ["db.svc", "*.example.com"],
        ipAddresses: ["10.0.0.1", "::1"],
        commonName: "db.svc",
      });
    });

    it("refuses names that are not DNS names", () => {
      for (const bad of ["a b", "-a", "a-", "a..b", "é.com", `${"a".repeat(64)}.com`, "*"]) {
        throwsWithReason(() => resolveServerNames({ dnsNames: [bad] }), "InvalidDNSName");
      }
      throwsWithReason(() => resolveServerNames({ ipAddresses: ["fe80::1%eth0"] }), "InvalidIPAddress");
    });

    it("needs an explicit common name when every DNS name is too long for one", () => {
      const long = `${"a".repeat(60)}.example.com`;
      throwsWithReason(() => resolveServerNames({ dnsNames: [long] }), "InvalidCommonName");
      expect(resolveServerNames({ dnsNames: [long], commonName: "db" }).commonName).to.equal("db");
    });
  });

  describe("loadIssuedCertificate", () => {
    it("rebuilds an issued certificate from tls.crt/tls.key, and refuses a foreign key", async () => {
      const ca = await sharedCA();
      const a = await issueClientCertificate(ca, { user: "app", duration: DAY, now: new Date() });
      const b = await issueClientCertificate(ca, { user: "app", duration: DAY, now: new Date() });
      const loaded = loadIssuedCertificate(a.chainPem, a.keyPkcs8Pem);
      expect(loaded.serialNumber).to.equal(a.serialNumber);
      expect(loaded.keyPkcs8Der.equals(a.keyPkcs8Der)).to.equal(true);
      expect(loaded.chainPem).to.equal(a.chainPem);
      throwsWithReason(() => loadIssuedCertificate(a.chainPem, b.keyPkcs8Pem), "KeyMismatch");
    });
  });
});
