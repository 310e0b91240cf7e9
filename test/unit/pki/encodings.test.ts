import { expect } from "chai";
import fc from "fast-check";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { PKCS12Attribute } from "@peculiar/asn1-pfx";
import {
  buildPkcs12,
  decodePem,
  encodePem,
  generatePfxPassword,
  issueClientCertificate,
  parsePrivateKey,
  pkcs8DerToPem,
  pkcs8PemToDer,
} from "../../../src/pki/index";
import { parsePkcs12 } from "../../support/pki";
import { DAY, openssl, rejectsWithReason, sharedCA, tempDir, throwsWithReason } from "./helpers";

describe("pki/encodings", () => {
  describe("PEM", () => {
    it("round-trips arbitrary bytes with 64-column lines (property)", () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
          const pem = encodePem(bytes, "TEST DATA");
          expect(pem.split("\n").every((l) => l.length <= 64)).to.equal(true);
          const [block] = decodePem(pem);
          expect(block?.label).to.equal("TEST DATA");
          expect(Buffer.compare(block?.der ?? Buffer.alloc(1), Buffer.from(bytes))).to.equal(0);
        }),
      );
    });

    it("reads CRLF files and skips text between blocks", () => {
      const text = `hello\r\n${encodePem(Buffer.from("a"), "A").replace(/\n/g, "\r\n")}junk\n${encodePem(Buffer.from("b"), "B")}`;
      expect(decodePem(text).map((b) => [b.label, b.der.toString()])).to.deep.equal([
        ["A", "a"],
        ["B", "b"],
      ]);
    });

    it("rejects a block that is not base64", () => {
      throwsWithReason(() => decodePem("-----BEGIN X-----\n!!!\n-----END X-----\n"), "InvalidArgument");
    });
  });

  describe("PKCS#8", () => {
    it("PEM and DER carry the same key; openssl reads the DER (what pgjdbc needs)", async () => {
      const leaf = await issueClientCertificate(await sharedCA(), { user: "app", duration: DAY, now: new Date() });
      expect(leaf.keyPkcs8Pem).to.match(/^-----BEGIN PRIVATE KEY-----\n/);
      expect(pkcs8PemToDer(leaf.keyPkcs8Pem).equals(leaf.keyPkcs8Der)).to.equal(true);
      expect(pkcs8DerToPem(leaf.keyPkcs8Der)).to.equal(leaf.keyPkcs8Pem);
      const t = tempDir();
      try {
        const der = openssl(["pkey", "-inform", "DER", "-in", t.file("k.pk8", leaf.keyPkcs8Der), "-outform", "PEM"]);
        expect(der.code, der.stderr).to.equal(0);
        expect(der.stdout).to.equal(leaf.keyPkcs8Pem);
        const pub = openssl(["pkey", "-in", t.file("k.pem", leaf.keyPkcs8Pem), "-pubout"]).stdout;
        expect(pub).to.equal(openssl(["x509", "-in", t.file("c.pem", leaf.certPem), "-noout", "-pubkey"]).stdout);
      } finally {
        t.cleanup();
      }
    });

    it("converts traditional keys to PKCS#8 and reads PKCS#8 DER", () => {
      const t = tempDir();
      try {
        const path = `${t.dir}/rsa.key`;
        expect(openssl(["genrsa", "-traditional", "-out", path, "2048"]).code).to.equal(0);
        const pem = openssl(["rsa", "-in", path, "-traditional"]).stdout;
        expect(pem).to.contain("BEGIN RSA PRIVATE KEY");
        const parsed = parsePrivateKey(pem);
        expect(parsed.sourceFormat).to.equal("RSA PRIVATE KEY");
        expect(parsed.facts.description).to.equal("RSA 2048");
        const fromDer = parsePrivateKey(parsed.pkcs8Der);
        expect(fromDer.sourceFormat).to.equal("DER");
        expect(fromDer.pkcs8Der.equals(parsed.pkcs8Der)).to.equal(true);
      } finally {
        t.cleanup();
      }
    });

    it("never quotes key bytes in errors", () => {
      const body = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg";
      const err = throwsWithReason(() => parsePrivateKey(`-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\n`), "UnsupportedKeyFormat");
      expect(err.message).not.to.contain(body.slice(0, 12));
      expect(JSON.stringify(err)).not.to.contain(body.slice(0, 12));
      expect((err as Error & { cause?: unknown }).cause).to.equal(undefined);
    });
  });

  describe("PKCS#12", () => {
    it("generates 32-character base64url passwords that never start like a command-line option", () => {
      const a = generatePfxPassword();
      expect(a).to.match(/^[A-Za-z0-9_-]{32}$/);
      expect(generatePfxPassword()).not.to.equal(a);
      // A leading "-" made `keytool -storepass -J…` pass the rest to the JVM (1 password in 64 before).
      const firsts = new Set(Array.from({ length: 4000 }, () => generatePfxPassword()[0]));
      expect([...firsts].filter((c) => c === "-" || c === "_")).to.deep.equal([]);
      expect(firsts.size).to.be.greaterThan(55);
    });

    it("is readable by openssl pkcs12 -nodes with PBES2/AES-256-CBC and an HMAC-SHA256 MAC", async () => {
      const ca = await sharedCA();
      const leaf = await issueClientCertificate(ca, { user: "dotnet", duration: DAY, now: new Date() });
      const password = generatePfxPassword();
      const pfx = buildPkcs12({ keyPkcs8Der: leaf.keyPkcs8Der, certificatePem: leaf.certPem, caCertificatePems: [ca.certPem], password, friendlyName: "dotnet" });
      const t = tempDir();
      try {
        const path = t.file("c.pfx", pfx);
        const info = openssl(["pkcs12", "-in", path, "-passin", `pass:${password}`, "-nodes", "-info"]);
        expect(info.code, info.stderr).to.equal(0);
        // One iteration for the MAC (the ASN.1 default, so DER leaves it out) and for the key: the password is random.
        expect(info.stderr).to.contain("MAC: sha256, Iteration 1\n");
        expect(info.stderr).to.contain("PBES2, PBKDF2, AES-256-CBC, Iteration 1,");
        expect(info.stderr).to.contain("PRF hmacWithSHA256");
        expect(info.stdout).to.contain("friendlyName: dotnet");
        expect(info.stdout).to.contain("localKeyID");
        expect(info.stdout).to.contain(leaf.certPem.trim());
        expect(info.stdout).to.contain(ca.certPem.trim());
        // The key openssl extracts is ours.
        const key = openssl(["pkcs12", "-in", path, "-passin", `pass:${password}`, "-nodes", "-nocerts"]);
        const pub = openssl(["pkey", "-pubout"], key.stdout).stdout;
        expect(pub).to.equal(openssl(["x509", "-in", t.file("c.crt", leaf.certPem), "-noout", "-pubkey"]).stdout);
        const wrong = openssl(["pkcs12", "-in", path, "-passin", "pass:wrong", "-nodes"]);
        expect(wrong.code).to.not.equal(0);
      } finally {
        t.cleanup();
      }
    });

    it("@peculiar/asn1-pfx's PKCS12Attribute constructor drops its parameters (why buildPkcs12 sets them itself)", () => {
      // When this fails, the vendor fixed it and buildPkcs12 could use the constructor.
      expect(new PKCS12Attribute({ attrId: "1.2.840.113549.1.9.20", attrValues: [] }).attrId).to.equal("");
    });

    it("parses back (ours and openssl's), and tells a wrong password", async () => {
      const ca = await sharedCA();
      const leaf = await issueClientCertificate(ca, { user: "app", duration: DAY, now: new Date() });
      const pfx = buildPkcs12({ keyPkcs8Der: leaf.keyPkcs8Der, certificatePem: leaf.chainPem, caCertificatePems: [ca.certPem], password: "p@ss wörd" });
      const back = await parsePkcs12(pfx, "p@ss wörd");
      expect(back.keysPkcs8Der).to.have.length(1);
      expect(back.keysPkcs8Der[0]?.equals(leaf.keyPkcs8Der)).to.equal(true);
      expect(back.certificatePems).to.deep.equal([leaf.certPem, ca.certPem]);
      const err = await rejectsWithReason(parsePkcs12(pfx, "nope"), "InvalidPKCS12");
      expect(err.message).to.contain("wrong password");
      await rejectsWithReason(parsePkcs12(Buffer.from("garbage"), "x"), "InvalidPKCS12");

      const t = tempDir();
      try {
        // A file made by openssl itself (OpenSSL 3 defaults: PBES2, AES-256-CBC, SHA-256 MAC).
        const out = `${t.dir}/o.pfx`;
        const made = openssl([
          "pkcs12", "-export", "-inkey", t.file("k.pem", leaf.keyPkcs8Pem), "-in", t.file("c.pem", leaf.certPem),
          "-passout", "pass:fromopenssl", "-out", out,
        ]);
        expect(made.code, made.stderr).to.equal(0);
        const fromOpenssl = await parsePkcs12(readFileSync(out), "fromopenssl");
        expect(fromOpenssl.certificatePems).to.deep.equal([leaf.certPem]);
        expect(parsePrivateKey(fromOpenssl.keysPkcs8Der[0] ?? Buffer.alloc(0)).pkcs8Der.equals(leaf.keyPkcs8Der)).to.equal(true);
      } finally {
        t.cleanup();
      }
    });

    it("verifies the MAC of openssl -export files made with -macalg sha256, sha1 and sha512", async () => {
      const ca = await sharedCA();
      const leaf = await issueClientCertificate(ca, { user: "macalg", duration: DAY, now: new Date() });
      const t = tempDir();
      try {
        const key = t.file("k.pem", leaf.keyPkcs8Pem);
        const cert = t.file("c.pem", leaf.certPem);
        for (const macalg of ["sha256", "sha1", "sha512"]) {
          const out = `${t.dir}/${macalg}.pfx`;
          const made = openssl(["pkcs12", "-export", "-inkey", key, "-in", cert, "-macalg", macalg, "-passout", "pass:fromopenssl", "-out", out]);
          expect(made.code, made.stderr).to.equal(0);
          expect(openssl(["pkcs12", "-in", out, "-passin", "pass:fromopenssl", "-noout", "-info"]).stderr).to.contain(`MAC: ${macalg}`);
          const parsed = await parsePkcs12(readFileSync(out), "fromopenssl");
          expect(parsed.certificatePems, macalg).to.deep.equal([leaf.certPem]);
          expect(parsePrivateKey(parsed.keysPkcs8Der[0] ?? Buffer.alloc(0)).pkcs8Der.equals(leaf.keyPkcs8Der), macalg).to.equal(true);
          const err = await rejectsWithReason(parsePkcs12(readFileSync(out), "fromopenssL"), "InvalidPKCS12");
          expect(err.message, macalg).to.contain("wrong password");
        }
      } finally {
        t.cleanup();
      }
    });

    it("openssl verifies our MAC (HMAC-SHA256, one iteration) and refuses it under a wrong password", async () => {
      const ca = await sharedCA({ algorithm: "RSA", size: 2048 });
      const leaf = await issueClientCertificate(ca, { user: "rsa", duration: DAY, key: { algorithm: "RSA", size: 2048 }, now: new Date() });
      const password = generatePfxPassword();
      const pfx = buildPkcs12({ keyPkcs8Der: leaf.keyPkcs8Der, certificatePem: leaf.certPem, caCertificatePems: [ca.certPem], password, friendlyName: "rsa" });
      const t = tempDir();
      try {
        const path = t.file("r.pfx", pfx);
        const info = openssl(["pkcs12", "-in", path, "-passin", `pass:${password}`, "-nokeys", "-info"]);
        expect(info.code, info.stderr).to.equal(0);
        expect(info.stderr).to.contain("MAC: sha256, Iteration 1\n");
        expect(info.stderr).to.contain("MAC length: 32");
        expect(info.stdout).to.contain(leaf.certPem.trim());
        const wrong = openssl(["pkcs12", "-in", path, "-passin", `pass:${password}x`, "-nokeys", "-noout"]);
        expect(wrong.code).to.not.equal(0);
        expect(wrong.stderr).to.match(/mac verify/i);
      } finally {
        t.cleanup();
      }
    });

    it("tells a damaged file from a wrong password", async () => {
      const ca = await sharedCA();
      const leaf = await issueClientCertificate(ca, { user: "damaged", duration: DAY, now: new Date() });
      const pfx = buildPkcs12({ keyPkcs8Der: leaf.keyPkcs8Der, certificatePem: leaf.certPem, password: "right" });
      const wrong = await rejectsWithReason(parsePkcs12(pfx, "wrong"), "InvalidPKCS12");
      expect(wrong.message).to.contain("wrong password");
      for (const damaged of [pfx.subarray(0, pfx.length - 40), Buffer.from("garbage"), Buffer.alloc(0)]) {
        const err = await rejectsWithReason(parsePkcs12(damaged, "right"), "InvalidPKCS12");
        expect(err.message).to.contain("not a DER-encoded PFX");
        expect(err.message).not.to.contain("wrong password");
      }
      // A flipped bit inside the MAC-protected content is caught by the MAC.
      const altered = Buffer.from(pfx);
      const at = Math.floor(pfx.length / 3); // inside the encrypted certificate bag
      altered[at] = (altered[at] as number) ^ 1;
      const err = await rejectsWithReason(parsePkcs12(altered, "right"), "InvalidPKCS12");
      expect(err.message).to.contain("altered");
    });

    it("stores the certificate and key bytes as given, and refuses input that is not DER", async () => {
      const ca = await sharedCA();
      const leaf = await issueClientCertificate(ca, { user: "bytes", duration: DAY, now: new Date() });
      const pfx = buildPkcs12({ keyPkcs8Der: leaf.keyPkcs8Der, certificatePem: leaf.certPem, caCertificatePems: [ca.certPem], password: "pw" });
      const back = await parsePkcs12(pfx, "pw");
      expect(back.certificatePems).to.deep.equal([leaf.certPem, ca.certPem]);
      expect(back.keysPkcs8Der[0]?.equals(leaf.keyPkcs8Der)).to.equal(true);
      throwsWithReason(
        () => buildPkcs12({ keyPkcs8Der: Buffer.concat([leaf.keyPkcs8Der, Buffer.from([0])]), certificatePem: leaf.certPem, password: "pw" }),
        "UnsupportedKeyFormat",
      );
      throwsWithReason(() => buildPkcs12({ keyPkcs8Der: Buffer.alloc(0), certificatePem: leaf.certPem, password: "pw" }), "UnsupportedKeyFormat");
      const notDer = "-----BEGIN CERTIFICATE-----\nAAECAw==\n-----END CERTIFICATE-----\n";
      throwsWithReason(() => buildPkcs12({ keyPkcs8Der: leaf.keyPkcs8Der, certificatePem: notDer, password: "pw" }), "InvalidCertificate");
      throwsWithReason(
        () => buildPkcs12({ keyPkcs8Der: leaf.keyPkcs8Der, certificatePem: leaf.certPem, caCertificatePems: [notDer], password: "pw" }),
        "InvalidCertificate",
      );
    });

    it("is readable by Java keytool (the JDK PKCS12 KeyStore), P-256 and RSA-2048", async function () {
      if (spawnSync("keytool", ["-help"]).error) this.skip();
      this.timeout(60_000);
      const t = tempDir();
      try {
        for (const key of [{ algorithm: "ECDSA", size: 256 }, { algorithm: "RSA", size: 2048 }] as const) {
          const ca = await sharedCA(key);
          const leaf = await issueClientCertificate(ca, { user: "jdbc_user", duration: DAY, key, now: new Date() });
          const password = generatePfxPassword();
          const pfx = buildPkcs12({ keyPkcs8Der: leaf.keyPkcs8Der, certificatePem: leaf.certPem, caCertificatePems: [ca.certPem], password, friendlyName: "jdbc_user" });
          const path = t.file(`${key.algorithm}.pfx`, pfx);
          const list = spawnSync("keytool", ["-list", "-v", "-keystore", path, "-storetype", "PKCS12", "-storepass", password], { encoding: "utf8", timeout: 30_000 });
          expect(list.status, list.stdout + list.stderr).to.equal(0);
          expect(list.stdout).to.contain("Alias name: jdbc_user");
          expect(list.stdout).to.contain("Entry type: PrivateKeyEntry");
          expect(list.stdout).to.contain("Certificate chain length: 2");
          const wrong = spawnSync("keytool", ["-list", "-keystore", path, "-storetype", "PKCS12", "-storepass", `${password}x`], { encoding: "utf8", timeout: 30_000 });
          expect(wrong.status).to.not.equal(0);
        }
      } finally {
        t.cleanup();
      }
    });
  });
});
