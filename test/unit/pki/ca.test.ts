import { expect } from "chai";
import { readFileSync } from "node:fs";
import {
  CLOCK_SKEW_MS,
  describeKeySpec,
  generateCA,
  isIssuedBy,
  issueClientCertificate,
  issueServerCertificate,
  loadCA,
  parseCertificate,
  type CertificateAuthority,
} from "../../../src/pki/index";
import { ALL_KEY_SPECS, DAY, openssl, rejectsWithReason, sharedCA, tempDir } from "./helpers";

describe("pki/ca", () => {
  describe("generateCA", () => {
    it("makes a self-signed CA with the required extensions (checked by openssl)", async () => {
      const t = tempDir();
      try {
        const ca = await sharedCA();
        const path = t.file("ca.crt", ca.certPem);
        const text = openssl(["x509", "-in", path, "-noout", "-text"]).stdout;
        expect(text).to.match(/X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
        expect(text).to.match(/X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign/);
        expect(text).to.contain("X509v3 Subject Key Identifier");
        expect(text).to.contain("Subject: CN = Unit Test CA ECDSA-256");
        const verify = openssl(["verify", "-x509_strict", "-CAfile", path, path]);
        expect(verify.code, verify.stderr).to.equal(0);
        expect(ca.facts.isCA).to.equal(true);
        expect(ca.facts.pathLength).to.equal(0);
        expect(ca.facts.selfIssued).to.equal(true);
        expect(ca.facts.authorityKeyId).to.equal(ca.facts.subjectKeyId);
        expect(ca.origin).to.equal("Generated");
      } finally {
        t.cleanup();
      }
    });

    it("back-dates notBefore for clock skew and ends after the requested duration", async () => {
      const now = new Date("2030-01-01T12:00:00.500Z");
      const ca = await generateCA({ commonName: "Dated", duration: 10 * DAY, now });
      expect(ca.facts.notBefore.getTime()).to.equal(Date.parse("2030-01-01T12:00:00Z") - CLOCK_SKEW_MS);
      expect(ca.facts.notAfter.toISOString()).to.equal("2030-01-11T12:00:00.000Z");
    });

    for (const spec of ALL_KEY_SPECS) {
      it(`signs with the hash matched to its ${describeKeySpec(spec)} key`, async function () {
        this.timeout(30_000);
        const ca = await sharedCA(spec);
        const t = tempDir();
        try {
          const text = openssl(["x509", "-in", t.file("ca.crt", ca.certPem), "-noout", "-text"]).stdout;
          const expected = spec.algorithm === "RSA" ? "sha256WithRSAEncryption" : spec.size === 384 ? "ecdsa-with-SHA384" : "ecdsa-with-SHA256";
          expect(text).to.contain(`Signature Algorithm: ${expected}`);
          expect(ca.facts.key.algorithm).to.equal(spec.algorithm);
          expect(ca.facts.key.size).to.equal(spec.size);
        } finally {
          t.cleanup();
        }
      });
    }

    it("rejects an empty common name and a non-positive duration", async () => {
      await rejectsWithReason(generateCA({ commonName: "", duration: DAY, now: new Date() }), "InvalidCommonName");
      await rejectsWithReason(generateCA({ commonName: "x", duration: 0, now: new Date() }), "InvalidDuration");
      await rejectsWithReason(generateCA({ commonName: "x", duration: Number.NaN, now: new Date() }), "InvalidDuration");
    });
  });

  describe("loadCA (a CA brought by the user)", () => {
    let t: ReturnType<typeof tempDir>;
    beforeEach(() => {
      t = tempDir();
    });
    afterEach(() => t.cleanup());

    /** An openssl-made CA with the given extensions and key command. */
    function opensslCA(keyArgs: string[], exts: string[], subject = "/CN=Brought CA"): { cert: string; key: string } {
      const keyPath = `${t.dir}/ca.key`;
      const certPath = `${t.dir}/ca.crt`;
      // genrsa wants the size last.
      const k = openssl(keyArgs[0] === "genrsa" ? ["genrsa", "-out", keyPath, ...keyArgs.slice(1)] : [...keyArgs, "-out", keyPath]);
      expect(k.code, k.stderr).to.equal(0);
      const r = openssl([
        "req", "-x509", "-new", "-key", keyPath, "-subj", subject, "-days", "30", "-out", certPath,
        "-config", "/dev/null", ...exts.flatMap((e) => ["-addext", e]),
      ]);
      expect(r.code, r.stderr).to.equal(0);
      return { cert: readFileSync(certPath, "utf8"), key: readFileSync(keyPath, "utf8") };
    }
    const CA_EXTS = ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign", "subjectKeyIdentifier=hash"];

    it("accepts an openssl CA with a traditional EC PRIVATE KEY (and EC PARAMETERS block) and signs leaves with it", async () => {
      const { cert, key } = opensslCA(["ecparam", "-name", "prime256v1", "-genkey"], CA_EXTS);
      expect(key).to.contain("EC PARAMETERS").and.to.contain("BEGIN EC PRIVATE KEY");
      const ca = await loadCA(cert, key, new Date());
      expect(ca.origin).to.equal("Brought");
      expect(ca.keyPkcs8Pem).to.contain("BEGIN PRIVATE KEY");
      const leaf = await issueServerCertificate(ca, { dnsNames: ["db"], duration: DAY, now: new Date() });
      const v = openssl(["verify", "-CAfile", t.file("b.crt", cert), t.file("leaf.crt", leaf.certPem)]);
      expect(v.code, v.stderr).to.equal(0);
    });

    it("accepts a traditional RSA PRIVATE KEY", async () => {
      const { cert, key } = opensslCA(["genrsa", "-traditional", "2048"], CA_EXTS);
      expect(key).to.contain("BEGIN RSA PRIVATE KEY");
      const ca = await loadCA(Buffer.from(cert), Buffer.from(key), new Date());
      expect(ca.facts.key.description).to.equal("RSA 2048");
      expect(ca.signing).to.deep.equal({ name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" });
    });

    it("accepts a CA without a keyUsage extension (as OpenSSL does)", async () => {
      const { cert, key } = opensslCA(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"], ["basicConstraints=critical,CA:TRUE"]);
      const ca = await loadCA(cert, key, new Date());
      expect(ca.facts.keyUsage).to.equal(undefined);
      expect(ca.signing.hash).to.equal("SHA-384");
    });

    it("signs with a brought P-521 CA (ECDSA with SHA-512)", async () => {
      const { cert, key } = opensslCA(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"], CA_EXTS);
      const ca = await loadCA(cert, key, new Date());
      expect(ca.signing).to.deep.equal({ name: "ECDSA", hash: "SHA-512" });
      const leaf = await issueServerCertificate(ca, { dnsNames: ["db"], duration: DAY, now: new Date() });
      const v = openssl(["verify", "-x509_strict", "-CAfile", t.file("p521.crt", cert), t.file("leaf.crt", leaf.certPem)]);
      expect(v.code, v.stderr).to.equal(0);
      expect(openssl(["x509", "-in", `${t.dir}/leaf.crt`, "-noout", "-text"]).stdout).to.contain("ecdsa-with-SHA512");
    });

    it("UnsupportedKeyAlgorithm: an RSA-PSS CA key", async () => {
      const { cert, key } = opensslCA(["genpkey", "-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048"], CA_EXTS);
      await rejectsWithReason(loadCA(cert, key, new Date()), "UnsupportedKeyAlgorithm");
    });

    it("round-trips a generated CA (what the operator reads back from its own Secret)", async () => {
      const generated = await sharedCA();
      const loaded = await loadCA(generated.certPem, generated.keyPkcs8Pem, new Date());
      expect(loaded.facts.fingerprintSha256).to.equal(generated.facts.fingerprintSha256);
      expect(loaded.keyPkcs8Pem).to.equal(generated.keyPkcs8Pem);
    });

    it("KeyMismatch: the key of another CA", async () => {
      const a = await sharedCA();
      const b = await generateCA({ commonName: "Other", duration: DAY, now: new Date() });
      const err = await rejectsWithReason(loadCA(a.certPem, b.keyPkcs8Pem, new Date()), "KeyMismatch");
      expect(err.message).to.contain("does not belong to");
      expect(err.message).not.to.contain(b.keyPkcs8Pem.split("\n")[1] ?? "-");
    });

    it("NotACA: a leaf certificate", async () => {
      const { cert, key } = opensslCA(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], ["basicConstraints=critical,CA:FALSE"]);
      const err = await rejectsWithReason(loadCA(cert, key, new Date()), "NotACA");
      expect(err.message).to.contain("CA:TRUE");
    });

    it("MissingKeyCertSign: keyUsage without keyCertSign", async () => {
      const { cert, key } = opensslCA(
        ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,digitalSignature,cRLSign"],
      );
      await rejectsWithReason(loadCA(cert, key, new Date()), "MissingKeyCertSign");
    });

    it("MissingCRLSign: keyUsage without cRLSign (PostgreSQL would reject the CRL it signs)", async () => {
      const { cert, key } = opensslCA(
        ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign"],
      );
      const err = await rejectsWithReason(loadCA(cert, key, new Date()), "MissingCRLSign");
      expect(err.message).to.contain("ssl_crl_file");
    });

    it("CAExpired: expired, and not yet valid", async () => {
      const past = await generateCA({ commonName: "Old", duration: DAY, now: new Date("2020-01-01T00:00:00Z") });
      const expired = await rejectsWithReason(loadCA(past.certPem, past.keyPkcs8Pem, new Date("2020-01-03T00:00:00Z")), "CAExpired");
      expect(expired.message).to.contain("expired at 2020-01-02T00:00:00.000Z");
      const early = await rejectsWithReason(loadCA(past.certPem, past.keyPkcs8Pem, new Date("2019-12-01T00:00:00Z")), "CAExpired");
      expect(early.message).to.contain("not valid before");
      const ok = await loadCA(past.certPem, past.keyPkcs8Pem, new Date("2020-01-01T12:00:00Z"));
      expect(ok.facts.serialNumber).to.equal(past.facts.serialNumber);
    });

    it("EncryptedKeyUnsupported: PKCS#8 ENCRYPTED PRIVATE KEY and a legacy Proc-Type: ENCRYPTED key", async () => {
      const ca = await sharedCA();
      const keyPath = t.file("plain.key", ca.keyPkcs8Pem);
      const enc = openssl(["pkey", "-in", keyPath, "-aes256", "-passout", "pass:secret"]);
      expect(enc.stdout).to.contain("ENCRYPTED PRIVATE KEY");
      const err = await rejectsWithReason(loadCA(ca.certPem, enc.stdout, new Date()), "EncryptedKeyUnsupported");
      expect(err.message).to.contain("unencrypted");
      const legacy = openssl(["ec", "-in", keyPath, "-aes256", "-passout", "pass:secret"]);
      expect(legacy.stdout).to.contain("Proc-Type: 4,ENCRYPTED");
      await rejectsWithReason(loadCA(ca.certPem, legacy.stdout, new Date()), "EncryptedKeyUnsupported");
    });

    it("UnsupportedKeyFormat: no key block, a damaged key, or two keys", async () => {
      const ca: CertificateAuthority = await sharedCA();
      const none = await rejectsWithReason(loadCA(ca.certPem, ca.certPem, new Date()), "UnsupportedKeyFormat");
      expect(none.message).to.contain("found: CERTIFICATE");
      await rejectsWithReason(loadCA(ca.certPem, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", new Date()), "UnsupportedKeyFormat");
      await rejectsWithReason(loadCA(ca.certPem, "just some text", new Date()), "UnsupportedKeyFormat");
      await rejectsWithReason(loadCA(ca.certPem, ca.keyPkcs8Pem + ca.keyPkcs8Pem, new Date()), "UnsupportedKeyFormat");
    });

    it("UnsupportedKeyAlgorithm: an Ed25519 CA", async () => {
      const { cert, key } = opensslCA(["genpkey", "-algorithm", "ed25519"], CA_EXTS);
      const err = await rejectsWithReason(loadCA(cert, key, new Date()), "UnsupportedKeyAlgorithm");
      expect(err.message).to.contain("ed25519");
    });

    it("InvalidCertificate: no certificate, or garbage in the block", async () => {
      const ca = await sharedCA();
      await rejectsWithReason(loadCA("", ca.keyPkcs8Pem, new Date()), "InvalidCertificate");
      await rejectsWithReason(loadCA("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", ca.keyPkcs8Pem, new Date()), "InvalidCertificate");
    });

    it("an intermediate CA with its root: leaves carry the intermediate, the root stays out of the chain", async () => {
      // A corporate root made by openssl (our generated CAs are pathlen:0 and cannot sign intermediates).
      const root = opensslCA(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], CA_EXTS, "/CN=Corporate Root");
      const keyPath = `${t.dir}/int.key`;
      expect(openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", keyPath]).code).to.equal(0);
      const csr = openssl(["req", "-new", "-key", keyPath, "-subj", "/CN=Imaging Intermediate", "-config", "/dev/null"]);
      const ext = t.file("ext.cnf", "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n");
      const signed = openssl(
        ["x509", "-req", "-CA", t.file("root.crt", root.cert), "-CAkey", `${t.dir}/ca.key`, "-set_serial", "1", "-days", "10", "-extfile", ext],
        csr.stdout,
      );
      expect(signed.code, signed.stderr).to.equal(0);
      const intermediate = await loadCA(signed.stdout + root.cert, readFileSync(keyPath, "utf8"), new Date());
      expect(intermediate.chainPems).to.have.length(1);
      expect(parseCertificate(intermediate.chainPems[0] as string).subjectCommonName).to.equal("Corporate Root");
      const leaf = await issueServerCertificate(intermediate, { dnsNames: ["db"], duration: DAY, now: new Date() });
      expect(leaf.chainPem.match(/BEGIN CERTIFICATE/g)).to.have.length(2);
      const chainPath = t.file("chain.crt", leaf.chainPem);
      const v = openssl(["verify", "-CAfile", `${t.dir}/root.crt`, "-untrusted", chainPath, chainPath]);
      expect(v.code, v.stderr + v.stdout).to.equal(0);
    });
  });
});

describe("pki/ca: renewing a CA with its own key", () => {
  it("gives a new certificate (new serial, same name, key and key id) that the old CA's certificates chain to", async () => {
    const old = await generateCA({ commonName: "Same Key CA", duration: 30 * DAY, now: new Date() });
    const leaf = await issueClientCertificate(old, { user: "app", duration: DAY, now: new Date() });
    const renewed = await generateCA({ commonName: "Same Key CA", duration: 365 * DAY, reuseKeyOf: old, key: { algorithm: "RSA", size: 2048 }, now: new Date() });
    expect(renewed.facts.serialNumber).to.not.equal(old.facts.serialNumber);
    expect(renewed.facts.subject).to.equal(old.facts.subject);
    expect(renewed.facts.subjectKeyId).to.equal(old.facts.subjectKeyId);
    expect(renewed.keyPkcs8Pem).to.equal(old.keyPkcs8Pem);
    expect(renewed.facts.notAfter.getTime()).to.be.greaterThan(old.facts.notAfter.getTime());
    expect(isIssuedBy(leaf.facts, renewed.facts)).to.equal(true);
  });
});
