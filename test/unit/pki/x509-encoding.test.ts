import { expect } from "chai";
import fc from "fast-check";
import { readFileSync } from "node:fs";
import { AsnConvert } from "@peculiar/asn1-schema";
import { Name, SubjectAlternativeName } from "@peculiar/asn1-x509";
import { subjectAltName } from "../../../src/pki/certificate-builder";
import { commonNameOf, commonNameOnly, nameToString } from "../../../src/pki/distinguished-name";
import { generateCA, issueCRL, issueServerCertificate, normalizeIPAddress, parseCertificate, parseCRL } from "../../../src/pki/index";
import { DAY, openssl, sharedCA, tempDir } from "./helpers";

describe("pki: X.509 encodings (serials, times, addresses and names as openssl reads them)", () => {
  it("writes serials as positive INTEGERs, with a sign byte when the first bit is set", async () => {
    const ca = await sharedCA();
    const now = new Date();
    const serials = ["7f", "80", "ff", "0100", "00ff00"];
    const crl = await issueCRL(ca, {
      revoked: serials.map((serialNumber) => ({ serialNumber, revocationDate: now })),
      crlNumber: 1,
      thisUpdate: now,
      nextUpdate: new Date(now.getTime() + DAY),
    });
    const t = tempDir();
    try {
      const text = openssl(["crl", "-in", t.file("c.crl", crl), "-noout", "-text"]);
      expect(text.code, text.stderr).to.equal(0);
      for (const s of ["7F", "80", "FF", "0100", "FF00"]) expect(text.stdout).to.match(new RegExp(`Serial Number: ${s}\\n`));
      const asn1 = openssl(["asn1parse", "-in", t.file("c.crl", crl)]).stdout;
      // Two content octets for 80 and FF: 00 and the value.
      expect(asn1).to.contain("l=   2 prim: INTEGER           :80\n");
      expect(asn1).to.contain("l=   2 prim: INTEGER           :FF\n");
      expect(asn1).to.contain("l=   1 prim: INTEGER           :7F\n");
    } finally {
      t.cleanup();
    }
    expect(parseCRL(crl).revoked.map((r) => r.serialNumber)).to.deep.equal(["7f", "80", "ff", "0100", "ff00"]);
  });

  it("writes UTCTime through 2049 and GeneralizedTime from 2050, in whole seconds", async () => {
    const now = new Date("2049-12-31T12:00:00.750Z");
    const ca = await generateCA({ commonName: "Century CA", duration: 2 * DAY, now });
    const t = tempDir();
    try {
      const asn1 = openssl(["asn1parse", "-in", t.file("ca.crt", ca.certPem)]).stdout;
      expect(asn1).to.contain("UTCTIME           :491231115500Z");
      expect(asn1).to.contain("GENERALIZEDTIME   :20500102120000Z");
      const dates = openssl(["x509", "-in", t.file("ca.crt", ca.certPem), "-noout", "-enddate"]).stdout;
      expect(dates).to.contain("notAfter=Jan  2 12:00:00 2050 GMT");
    } finally {
      t.cleanup();
    }
    expect(ca.facts.notBefore.toISOString()).to.equal("2049-12-31T11:55:00.000Z");
    expect(ca.facts.notAfter.toISOString()).to.equal("2050-01-02T12:00:00.000Z");
  });

  it("writes IPv4 and IPv6 SANs as address bytes and reads them back canonical", async () => {
    const leaf = await issueServerCertificate(await sharedCA(), {
      ipAddresses: ["10.0.0.1", "::1", "2001:db8::1:0:0:1"],
      duration: DAY,
      now: new Date(),
    });
    expect(leaf.ipAddresses).to.deep.equal(["10.0.0.1", "::1", "2001:db8::1:0:0:1"]);
    const t = tempDir();
    try {
      const text = openssl(["x509", "-in", t.file("s.crt", leaf.certPem), "-noout", "-ext", "subjectAltName"]).stdout;
      expect(text).to.contain("IP Address:10.0.0.1, IP Address:0:0:0:0:0:0:0:1, IP Address:2001:DB8:0:0:1:0:0:1");
    } finally {
      t.cleanup();
    }
    fc.assert(
      fc.property(fc.ipV6(), (ip) => {
        const canonical = normalizeIPAddress(ip) as string;
        const san = AsnConvert.parse(subjectAltName([], [canonical]).extnValue.buffer, SubjectAlternativeName);
        expect(san[0]?.iPAddress && normalizeIPAddress(san[0].iPAddress)).to.equal(canonical);
      }),
    );
  });

  describe("names", () => {
    const roundTrip = (name: Name): Name => AsnConvert.parse(AsnConvert.serialize(name), Name);

    it("builds CN-only names (PrintableString when possible, else UTF8String) and reads them back", () => {
      expect(nameToString(commonNameOnly("app"))).to.equal("CN=app");
      expect(Buffer.from(AsnConvert.serialize(commonNameOnly("app"))).toString("hex")).to.equal("300e310c300a06035504031303617070");
      const utf8 = Buffer.from(AsnConvert.serialize(commonNameOnly("用户é")));
      expect(utf8.toString("hex")).to.equal("30133111300f06035504030c08e794a8e688b7c3a9");
      expect(commonNameOf(roundTrip(commonNameOnly("用户é")))).to.equal("用户é");
      fc.assert(
        fc.property(fc.string({ unit: "grapheme", minLength: 1, maxLength: 30 }), (cn) => {
          expect(commonNameOf(roundTrip(commonNameOnly(cn)))).to.equal(cn);
        }),
      );
    });

    it("escapes RFC 4514 specials and reads multi-attribute UTF-8 names made by openssl", () => {
      expect(nameToString(commonNameOnly("a,b+c"))).to.equal("CN=a\\,b\\+c");
      const t = tempDir();
      try {
        const out = `${t.dir}/c.der`;
        const r = openssl(["req", "-new", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "/dev/null",
          "-subj", "/C=FR/O=Acme, Inc./CN=Ünïcode", "-utf8", "-config", "/dev/null", "-outform", "DER", "-out", out]);
        expect(r.code, r.stderr).to.equal(0);
        const facts = parseCertificate(readFileSync(out));
        expect(facts.subject).to.equal("C=FR, O=Acme\\, Inc., CN=Ünïcode");
        expect(facts.subjectCommonName).to.equal("Ünïcode");
      } finally {
        t.cleanup();
      }
    });
  });
});
