import { expect } from "chai";
import fc from "fast-check";
import { readFileSync } from "node:fs";
import { factsFromDer } from "../../../src/pki/certificate";
import {
  generateCA,
  issueClientCertificate,
  issueServerCertificate,
  normalizeDNSName,
  normalizeFingerprint,
  normalizeIPAddress,
  normalizeSerialNumber,
  parseCertificate,
  parseCertificates,
  serialNumberFromDecimal,
  serialNumberToDecimal,
} from "../../../src/pki/index";
import { DAY, openssl, sharedCA, tempDir, throwsWithReason } from "./helpers";

describe("pki/certificate", () => {
  it("reads the facts of an openssl-made certificate the same way openssl does", () => {
    const t = tempDir();
    try {
      const key = `${t.dir}/k.pem`;
      const crt = `${t.dir}/c.pem`;
      openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072", "-out", key]);
      const r = openssl([
        "req", "-x509", "-new", "-key", key, "-subj", "/O=Acme/CN=db.example.com", "-days", "3", "-out", crt, "-config", "/dev/null",
        "-addext", "subjectAltName=DNS:db.example.com,IP:10.1.2.3,IP:2001:db8::1", "-addext", "extendedKeyUsage=serverAuth,clientAuth",
        "-addext", "keyUsage=critical,digitalSignature,keyEncipherment", "-set_serial", "0x00ff01",
      ]);
      expect(r.code, r.stderr).to.equal(0);
      const pem = readFileSync(crt, "utf8");
      const f = parseCertificate(pem);
      expect(f.serialNumber).to.equal("ff01");
      expect(f.serialNumberDecimal).to.equal("65281");
      expect(f.subjectCommonName).to.equal("db.example.com");
      expect(f.subject).to.contain("O=Acme");
      expect(f.dnsNames).to.deep.equal(["db.example.com"]);
      expect(f.ipAddresses).to.deep.equal(["10.1.2.3", "2001:db8::1"]);
      expect(f.key).to.deep.include({ algorithm: "RSA", size: 3072 });
      expect(f.keyUsage).to.deep.equal(["digitalSignature", "keyEncipherment"]);
      expect(f.extendedKeyUsage).to.deep.equal(["serverAuth", "clientAuth"]);
      expect(f.selfIssued).to.equal(true);
      const fp = openssl(["x509", "-in", crt, "-noout", "-fingerprint", "-sha256"]).stdout;
      expect(normalizeFingerprint(fp.trim())).to.equal(f.fingerprintSha256);
      const ski = openssl(["x509", "-in", crt, "-noout", "-ext", "subjectKeyIdentifier"]).stdout.split("\n")[1]?.trim() ?? "";
      expect(f.subjectKeyId).to.equal(ski.replace(/:/g, "").toLowerCase());
      const dates = openssl(["x509", "-in", crt, "-noout", "-enddate"]).stdout;
      expect(new Date(dates.replace("notAfter=", "").trim()).getTime()).to.equal(f.notAfter.getTime());
    } finally {
      t.cleanup();
    }
  });

  it("parses every certificate of a chain and accepts DER", async () => {
    const ca = await sharedCA();
    const leaf = await issueServerCertificate(ca, { dnsNames: ["db"], duration: DAY, now: new Date() });
    expect(parseCertificates(leaf.certPem + ca.certPem).map((c) => c.subjectCommonName)).to.deep.equal(["db", ca.facts.subjectCommonName]);
    expect(parseCertificate(leaf.facts.der).fingerprintSha256).to.equal(leaf.fingerprintSha256);
    throwsWithReason(() => parseCertificate("no certificate"), "InvalidCertificate");
  });

  describe("canonical forms", () => {
    it("serial numbers: any spelling, whole bytes, no sign byte", () => {
      expect(normalizeSerialNumber("0A:1B")).to.equal("0a1b");
      expect(normalizeSerialNumber("0x00ff")).to.equal("ff");
      expect(normalizeSerialNumber("a1b")).to.equal("0a1b");
      expect(normalizeSerialNumber("00")).to.equal("00");
      throwsWithReason(() => normalizeSerialNumber("12g4"), "InvalidSerialNumber");
      throwsWithReason(() => normalizeSerialNumber(""), "InvalidSerialNumber");
    });

    it("serial numbers: decimal (as PostgreSQL shows them) and back (property)", () => {
      fc.assert(
        fc.property(fc.bigInt({ min: 1n, max: (1n << 127n) - 1n }), (n) => {
          const hex = normalizeSerialNumber(n.toString(16));
          expect(serialNumberToDecimal(hex)).to.equal(n.toString());
          expect(serialNumberFromDecimal(n.toString())).to.equal(hex);
        }),
      );
      throwsWithReason(() => serialNumberFromDecimal("12a"), "InvalidSerialNumber");
    });

    it("fingerprints", () => {
      const hex = "ab".repeat(32);
      expect(normalizeFingerprint(`SHA256:${"AB:".repeat(31)}AB`)).to.equal(hex);
      expect(normalizeFingerprint(`sha256 Fingerprint=${"AB:".repeat(31)}AB`)).to.equal(hex);
      throwsWithReason(() => normalizeFingerprint("abcd"), "InvalidArgument");
    });

    it("IP addresses", () => {
      expect(normalizeIPAddress("0:0:0:0:0:0:0:1")).to.equal("::1");
      expect(normalizeIPAddress("2001:DB8:0::1")).to.equal("2001:db8::1");
      expect(normalizeIPAddress("::ffff:10.0.0.1")).to.equal("::ffff:a00:1");
      expect(normalizeIPAddress("10.0.0.1")).to.equal("10.0.0.1");
      expect(normalizeIPAddress("010.0.0.1")).to.equal(undefined);
      expect(normalizeIPAddress("db")).to.equal(undefined);
    });

    it("DNS names", () => {
      expect(normalizeDNSName("DB.Example.COM.")).to.equal("db.example.com");
      expect(normalizeDNSName("*.svc.cluster.local")).to.equal("*.svc.cluster.local");
      expect(normalizeDNSName("my_host")).to.equal("my_host");
      expect(normalizeDNSName("a.*.b")).to.equal(undefined);
      expect(normalizeDNSName("")).to.equal(undefined);
    });
  });
});

describe("pki/certificate: the facts of what we issue", () => {
  it("are exactly what parsing the certificate gives (CA, server with IPv4/IPv6 SANs, RSA and ECDSA clients)", async () => {
    const now = new Date();
    const ca = await generateCA({ commonName: "Facts CA", duration: 30 * DAY, now });
    const server = await issueServerCertificate(ca, { dnsNames: ["db.example.com", "10.0.0.7"], ipAddresses: ["2001:db8::1"], duration: DAY, now });
    const rsa = await issueClientCertificate(ca, { user: "用户", duration: DAY, key: { algorithm: "RSA", size: 2048 }, now });
    const ec = await issueClientCertificate(ca, { user: "app", duration: DAY, now });
    for (const facts of [ca.facts, server.facts, rsa.facts, ec.facts]) {
      expect(factsFromDer(facts.der), facts.subject).to.deep.equal(facts);
    }
  });
});
