import { expect } from "chai";
import fc from "fast-check";
import { readFileSync } from "node:fs";
import { children, content, decodeOid, decodeTime, der, readTlv, DerError } from "../../../src/pki/der.js";
import { commonNameOf, commonNameOnly, nameToString } from "../../../src/pki/names.js";
import { ipAddressBytes } from "../../../src/pki/x509-build.js";
import { normalizeIPAddress, parseCertificate } from "../../../src/pki/index.js";
import { openssl, tempDir } from "./helpers.js";

describe("pki/der (the DER reader and writer behind certificates and CRLs)", () => {
  it("round-trips OIDs, and encodes them as openssl does", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 39 }), fc.array(fc.nat({ max: 2 ** 31 }), { maxLength: 8 }), (a, b, rest) => {
        const oid = [a, b, ...rest].join(".");
        const enc = der.oid(oid);
        expect(decodeOid(enc, readTlv(enc, 0))).to.equal(oid);
      }),
    );
    const t = tempDir();
    try {
      const out = `${t.dir}/oid.der`;
      expect(openssl(["asn1parse", "-genstr", "OID:1.2.840.113549.1.1.11", "-out", out, "-noout"]).code).to.equal(0);
      expect(readFileSync(out).equals(der.oid("1.2.840.113549.1.1.11"))).to.equal(true);
    } finally {
      t.cleanup();
    }
  });

  it("encodes non-negative integers minimally, with a sign byte when needed", () => {
    expect(der.integer(0).toString("hex")).to.equal("020100");
    expect(der.integer(127).toString("hex")).to.equal("02017f");
    expect(der.integer(128).toString("hex")).to.equal("02020080");
    expect(der.unsignedInteger(Buffer.from("0000ff", "hex")).toString("hex")).to.equal("020200ff");
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 160n) - 1n }), (n) => {
        const enc = der.integer(n);
        const body = content(enc, readTlv(enc, 0));
        expect(((body[0] as number) & 0x80) === 0).to.equal(true);
        expect(BigInt(`0x${body.toString("hex")}`)).to.equal(n);
        if (body.length > 1) expect(body[0] === 0 && ((body[1] as number) & 0x80) === 0).to.equal(false);
      }),
    );
  });

  it("encodes long lengths and nests", () => {
    const big = der.octetString(Buffer.alloc(70_000, 1));
    const t = readTlv(big, 0);
    expect(t.end - t.start).to.equal(70_000);
    const seq = der.sequence(der.boolean(true), der.null(), big);
    expect(children(seq, readTlv(seq, 0)).map((c) => c.tag)).to.deep.equal([1, 5, 4]);
  });

  it("round-trips times: UTCTime before 2050, GeneralizedTime after", () => {
    fc.assert(
      fc.property(fc.date({ min: new Date("1950-01-01T00:00:00Z"), max: new Date("9999-12-31T23:59:59Z"), noInvalidDate: true }), (d) => {
        const enc = der.time(d);
        const t = readTlv(enc, 0);
        expect(t.tag).to.equal(d.getUTCFullYear() < 2050 ? 23 : 24);
        expect(decodeTime(enc, t).getTime()).to.equal(Math.floor(d.getTime() / 1000) * 1000);
      }),
    );
  });

  it("rejects truncated input, indefinite lengths and overruns", () => {
    expect(() => readTlv(Buffer.from([0x30]), 0)).to.throw(DerError);
    expect(() => readTlv(Buffer.from([0x30, 0x80, 0, 0]), 0)).to.throw(DerError);
    expect(() => readTlv(Buffer.from([0x04, 0x05, 1, 2]), 0)).to.throw(DerError);
  });

  it("canonical IP addresses to bytes and back", () => {
    expect(ipAddressBytes("10.0.0.1").toString("hex")).to.equal("0a000001");
    expect(ipAddressBytes("::1").toString("hex")).to.equal(`${"00".repeat(15)}01`);
    expect(ipAddressBytes("2001:db8::1:0:0:1").toString("hex")).to.equal("20010db8000000000001000000000001");
    fc.assert(
      fc.property(fc.ipV6(), (ip) => {
        const canonical = normalizeIPAddress(ip) as string;
        const bytes = ipAddressBytes(canonical);
        const groups: string[] = [];
        for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
        expect(normalizeIPAddress(groups.join(":"))).to.equal(canonical);
      }),
    );
  });

  describe("names", () => {
    it("builds CN-only names (PrintableString when possible, else UTF8String) and reads them back", () => {
      expect(nameToString(commonNameOnly("app"))).to.equal("CN=app");
      const utf8 = commonNameOnly("用户é");
      expect(commonNameOf(utf8)).to.equal("用户é");
      expect(utf8.includes(Buffer.from([0x0c]))).to.equal(true);
      fc.assert(
        fc.property(fc.string({ unit: "grapheme", minLength: 1, maxLength: 30 }), (cn) => {
          expect(commonNameOf(commonNameOnly(cn))).to.equal(cn);
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
