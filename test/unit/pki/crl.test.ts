import { expect } from "chai";
import { AsnConvert } from "@peculiar/asn1-schema";
import { CertificateList } from "@peculiar/asn1-x509";
import { X509CrlGenerator } from "@peculiar/x509";
import {
  buildCrlBundle,
  crlDecision,
  decodePem,
  describeKeySpec,
  issueClientCertificate,
  issueCRL,
  nextCRLNumber,
  parseCRL,
  parseCRLs,
  generateCA,
  revocationDatesIn,
} from "../../../src/pki/index";
import { crlFacts } from "../../../src/pki/crl";
import { verifyCRLSignature } from "../../support/pki";
import { ALL_KEY_SPECS, DAY, HOUR, openssl, rejectsWithReason, sharedCA, tempDir, throwsWithReason } from "./helpers";

describe("pki/crl", () => {
  it("issues a v2 CRL with number, AKI and reasons that openssl reads and uses to refuse a revoked client", async () => {
    const ca = await sharedCA();
    const revokedLeaf = await issueClientCertificate(ca, { user: "gone", duration: DAY, now: new Date() });
    const goodLeaf = await issueClientCertificate(ca, { user: "stays", duration: DAY, now: new Date() });
    const now = new Date();
    const crl = await issueCRL(ca, {
      revoked: [
        { serialNumber: revokedLeaf.serialNumber, reason: "keyCompromise", revocationDate: now },
        { serialNumber: "0A:0B", reason: "unspecified", revocationDate: now },
      ],
      crlNumber: 42,
      thisUpdate: new Date(now.getTime() - 60_000),
      nextUpdate: new Date(now.getTime() + DAY),
    });
    const t = tempDir();
    try {
      const crlPath = t.file("ca.crl", crl);
      const caPath = t.file("ca.crt", ca.certPem);
      const text = openssl(["crl", "-in", crlPath, "-noout", "-text"]);
      expect(text.code, text.stderr).to.equal(0);
      expect(text.stdout).to.contain("Version 2");
      expect(text.stdout).to.match(/X509v3 CRL Number:\s+42/);
      expect(text.stdout).to.contain("X509v3 Authority Key Identifier");
      expect(text.stdout).to.contain(revokedLeaf.serialNumber.toUpperCase());
      expect(text.stdout).to.match(/CRL Reason Code:\s+Key Compromise/);
      expect(text.stdout).to.contain("Serial Number: 0A0B");
      expect(openssl(["crl", "-in", crlPath, "-noout", "-CAfile", caPath]).stderr).to.contain("verify OK");
      const revokedCheck = openssl(["verify", "-crl_check", "-CAfile", caPath, "-CRLfile", crlPath, t.file("r.crt", revokedLeaf.certPem)]);
      expect(revokedCheck.code).to.not.equal(0);
      expect(revokedCheck.stdout + revokedCheck.stderr).to.contain("certificate revoked");
      const goodCheck = openssl(["verify", "-crl_check", "-CAfile", caPath, "-CRLfile", crlPath, t.file("g.crt", goodLeaf.certPem)]);
      expect(goodCheck.code, goodCheck.stderr).to.equal(0);
      // No empty crlEntryExtensions SEQUENCE for the entry without a reason (DER requires SIZE 1..MAX).
      const asn1 = openssl(["asn1parse", "-in", crlPath]).stdout;
      expect(asn1).to.contain("X509v3 CRL Reason Code");
      expect(asn1).not.to.match(/l=\s+0 cons: SEQUENCE/);
    } finally {
      t.cleanup();
    }
    const parsed = parseCRL(crl);
    expect(parsed.crlNumber).to.equal(42);
    expect(parsed.authorityKeyId).to.equal(ca.facts.subjectKeyId);
    expect(parsed.revoked.map((r) => r.serialNumber)).to.have.members([revokedLeaf.serialNumber, "0a0b"]);
    expect(parsed.revoked.find((r) => r.serialNumber === revokedLeaf.serialNumber)?.reason).to.equal("keyCompromise");
    expect(parsed.revoked.find((r) => r.serialNumber === "0a0b")?.reason).to.equal(undefined);
    expect(verifyCRLSignature(crl, ca)).to.equal(true);
    expect(verifyCRLSignature(crl, await generateCA({ commonName: "x", duration: DAY, now: new Date() }))).to.equal(false);
  });

  describe("the revoked entries' extensions (why CRLs are not built with @peculiar/x509's X509CrlGenerator)", () => {
    it("X509CrlGenerator writes an empty crlEntryExtensions SEQUENCE on a revoked entry, which openssl refuses", async () => {
      const ca = await sharedCA();
      const now = new Date();
      const crl = await X509CrlGenerator.create({
        issuer: ca.facts.subject,
        thisUpdate: now,
        nextUpdate: new Date(now.getTime() + DAY),
        entries: [{ serialNumber: "0a0b", revocationDate: now }],
        signingKey: ca.keys.privateKey,
        signingAlgorithm: ca.signing,
    });
      // When this fails, the vendor fixed it: issueCRL could then use the generator.
      const t = tempDir();
      try {
        const path = t.file("c.crl", crl.toString("pem"));
        expect(openssl(["asn1parse", "-in", path]).stdout).to.match(/l=\s+0 cons: SEQUENCE/);
        const r = openssl(["crl", "-in", path, "-noout", "-text"]);
        expect(r.code, r.stdout).to.not.equal(0);
      } finally {
        t.cleanup();
      }
    });

    it("issueCRL writes no crlEntryExtensions on an entry without a reason, and a non-empty one with a reason", async () => {
      const ca = await sharedCA();
      const now = new Date();
      const crl = await issueCRL(ca, {
        revoked: [
          { serialNumber: "01", revocationDate: now },
          { serialNumber: "02", reason: "unspecified", revocationDate: now },
          { serialNumber: "03", reason: "superseded", revocationDate: now },
        ],
        crlNumber: 1,
        thisUpdate: now,
        nextUpdate: new Date(now.getTime() + DAY),
      });
      const entries = AsnConvert.parse(decodePem(crl)[0]?.der ?? Buffer.alloc(0), CertificateList).tbsCertList.revokedCertificates ?? [];
      expect(entries.map((e) => e.crlEntryExtensions?.length)).to.deep.equal([undefined, undefined, 1]);
      // The schema parser reads an empty SEQUENCE as absent: the bytes tell them apart.
      const t = tempDir();
      try {
        const path = t.file("c.crl", crl);
        expect(openssl(["asn1parse", "-in", path]).stdout).not.to.match(/l=\s+0 cons: SEQUENCE/);
        expect(openssl(["crl", "-in", path, "-noout", "-text"]).code).to.equal(0);
      } finally {
        t.cleanup();
      }
    });
  });

  it("remembers the facts of a CRL it issues exactly as parsing the CRL gives them", async () => {
    const ca = await sharedCA();
    const now = new Date("2030-01-01T00:00:00.678Z");
    const crl = await issueCRL(ca, {
      revoked: [
        { serialNumber: "FF:01", reason: "keyCompromise", revocationDate: new Date("2029-12-31T10:00:00.500Z") },
        { serialNumber: "0a", reason: "unspecified", revocationDate: now },
        { serialNumber: "0b", revocationDate: now },
      ],
      crlNumber: 7,
      thisUpdate: now,
      nextUpdate: new Date(now.getTime() + DAY),
    });
    expect(crlFacts(decodePem(crl)[0]?.der ?? Buffer.alloc(0))).to.deep.equal(parseCRL(crl));
  });

  for (const spec of ALL_KEY_SPECS) {
    it(`is signed correctly by a ${describeKeySpec(spec)} CA (openssl crl -CAfile)`, async function () {
      this.timeout(30_000);
      const ca = await sharedCA(spec);
      const crl = await issueCRL(ca, { revoked: [], crlNumber: 1, thisUpdate: new Date(), nextUpdate: new Date(Date.now() + DAY) });
      const t = tempDir();
      try {
        const r = openssl(["crl", "-in", t.file("c.crl", crl), "-noout", "-CAfile", t.file("ca.crt", ca.certPem)]);
        expect(r.stderr).to.contain("verify OK");
        expect(parseCRL(crl).revoked).to.have.length(0);
      } finally {
        t.cleanup();
      }
    });
  }

  it("deduplicates serials (earliest date wins) and sorts them", async () => {
    const ca = await sharedCA();
    const crl = await issueCRL(ca, {
      revoked: [
        { serialNumber: "ff", revocationDate: new Date("2030-01-02T00:00:00Z") },
        { serialNumber: "00FF", revocationDate: new Date("2030-01-01T00:00:00Z") },
        { serialNumber: "10", revocationDate: new Date("2030-01-03T00:00:00Z") },
      ],
      crlNumber: 3,
      thisUpdate: new Date("2030-01-04T00:00:00Z"),
      nextUpdate: new Date("2030-01-05T00:00:00Z"),
    });
    const parsed = parseCRL(crl);
    expect(parsed.revoked.map((r) => r.serialNumber)).to.deep.equal(["10", "ff"]);
    expect(parsed.revoked[1]?.revocationDate.toISOString()).to.equal("2030-01-01T00:00:00.000Z");
  });

  it("validates its input", async () => {
    const ca = await sharedCA();
    const base = { revoked: [], thisUpdate: new Date(), nextUpdate: new Date(Date.now() + HOUR) };
    await rejectsWithReason(issueCRL(ca, { ...base, crlNumber: -1 }), "InvalidCRLNumber");
    await rejectsWithReason(issueCRL(ca, { ...base, crlNumber: 1.5 }), "InvalidCRLNumber");
    await rejectsWithReason(issueCRL(ca, { ...base, crlNumber: 1, nextUpdate: base.thisUpdate }), "InvalidArgument");
    await rejectsWithReason(issueCRL(ca, { ...base, crlNumber: 1, revoked: [{ serialNumber: "zz", revocationDate: new Date() }] }), "InvalidSerialNumber");
    throwsWithReason(() => parseCRL("nothing here"), "InvalidCRL");
    throwsWithReason(() => parseCRL("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"), "InvalidCRL");
  });

  describe("crlDecision (the number only goes up on change)", () => {
    const thisUpdate = new Date("2030-06-01T00:00:00Z");
    const nextUpdate = new Date("2030-06-04T00:00:00Z");

    it("MissingCRL when there is none, starting at 1", async () => {
      const ca = await sharedCA();
      const d = crlDecision(undefined, { issuer: ca, revokedSerials: [] }, thisUpdate);
      expect(d).to.include({ reissue: true, reason: "MissingCRL", crlNumber: 1 });
    });

    it("UpToDate when the serials match; RevocationsChanged with number + 1 otherwise", async () => {
      const ca = await sharedCA();
      const crl = await issueCRL(ca, { revoked: [{ serialNumber: "0a", revocationDate: thisUpdate }], crlNumber: 5, thisUpdate, nextUpdate });
      const same = crlDecision(crl, { issuer: ca, revokedSerials: ["0A"] }, new Date("2030-06-01T01:00:00Z"));
      expect(same).to.include({ reissue: false, reason: "UpToDate", crlNumber: 5 });
      expect(same.refreshTime?.toISOString()).to.equal("2030-06-03T00:00:00.000Z");
      const added = crlDecision(crl, { issuer: ca, revokedSerials: ["0a", "0b"] }, thisUpdate);
      expect(added).to.include({ reissue: true, reason: "RevocationsChanged", crlNumber: 6 });
      expect(added.message).to.contain("revoking 0b");
      const removed = crlDecision(crl, { issuer: ca, revokedSerials: [] }, thisUpdate);
      expect(removed).to.include({ reissue: true, reason: "RevocationsChanged", crlNumber: 6 });
    });

    it("CRLRefreshDue before nextUpdate (default: last third; or refreshBefore)", async () => {
      const ca = await sharedCA();
      const crl = await issueCRL(ca, { revoked: [], crlNumber: 9, thisUpdate, nextUpdate });
      expect(crlDecision(crl, { issuer: ca, revokedSerials: [] }, new Date("2030-06-03T00:00:00Z"))).to.include({ reason: "CRLRefreshDue", crlNumber: 10 });
      expect(crlDecision(crl, { issuer: ca, revokedSerials: [], refreshBefore: HOUR }, new Date("2030-06-03T00:00:00Z")).reason).to.equal("UpToDate");
    });

    it("finds this CA's CRL in a bundle, and asks for one when the bundle has only another CA's", async () => {
      const a = await sharedCA();
      const b = await generateCA({ commonName: "Second CA", duration: DAY, now: new Date() });
      const crlA = await issueCRL(a, { revoked: [], crlNumber: 3, thisUpdate, nextUpdate });
      const crlB = await issueCRL(b, { revoked: [], crlNumber: 7, thisUpdate, nextUpdate });
      const bundle = buildCrlBundle([crlB, crlA, crlA]);
      expect(parseCRLs(bundle)).to.have.length(2);
      expect(buildCrlBundle([crlA, crlB])).to.equal(bundle);
      expect(crlDecision(bundle, { issuer: a, revokedSerials: [] }, thisUpdate)).to.include({ reason: "UpToDate", crlNumber: 3 });
      expect(crlDecision(bundle, { issuer: b, revokedSerials: [] }, thisUpdate)).to.include({ reason: "UpToDate", crlNumber: 7 });
      expect(crlDecision(crlA, { issuer: b, revokedSerials: [] }, thisUpdate)).to.include({ reissue: true, reason: "MissingCRL" });
    });

    it("UnparsableCRL on garbage", async () => {
      const ca = await sharedCA();
      expect(crlDecision("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n", { issuer: ca, revokedSerials: [] }, thisUpdate).reason).to.equal(
        "UnparsableCRL",
      );
    });

    it("never goes backwards: the number kept elsewhere (status) is a floor, the file's number counts when higher", async () => {
      const ca = await sharedCA();
      const garbage = "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n";
      expect(crlDecision(undefined, { issuer: ca, revokedSerials: [], lastNumber: 12 }, thisUpdate)).to.include({ reason: "MissingCRL", crlNumber: 13 });
      expect(crlDecision(garbage, { issuer: ca, revokedSerials: [], lastNumber: 12 }, thisUpdate)).to.include({ reason: "UnparsableCRL", crlNumber: 13 });
      const crl = await issueCRL(ca, { revoked: [], crlNumber: 5, thisUpdate, nextUpdate });
      expect(crlDecision(crl, { issuer: ca, revokedSerials: ["0a"], lastNumber: 12 }, thisUpdate)).to.include({ reason: "RevocationsChanged", crlNumber: 13 });
      expect(crlDecision(crl, { issuer: ca, revokedSerials: ["0a"], lastNumber: 2 }, thisUpdate)).to.include({ reason: "RevocationsChanged", crlNumber: 6 });
      // Nothing to change: the file stays as it is, whatever status says.
      expect(crlDecision(crl, { issuer: ca, revokedSerials: [], lastNumber: 12 }, thisUpdate)).to.include({ reissue: false, crlNumber: 5 });
    });

    it("nextCRLNumber: one more than the highest known; nothing known starts at 1", () => {
      const rows: [number | undefined, number | undefined, number][] = [
        [undefined, undefined, 1],
        [undefined, 7, 8],
        [7, undefined, 8],
        [7, 3, 8],
        [3, 7, 8],
        [3, -1, 4],
        [3, 1.5, 4],
      ];
      for (const [inFile, kept, next] of rows) expect(nextCRLNumber(inFile, kept), `${inFile} / ${kept}`).to.equal(next);
    });
  });

  it("revocationDatesIn: each serial's earliest date across a bundle; nothing for an unreadable or empty file", async () => {
    const a = await sharedCA();
    const b = await generateCA({ commonName: "Second CA", duration: DAY, now: new Date() });
    const early = new Date("2030-01-01T00:00:00Z");
    const late = new Date("2030-02-01T00:00:00Z");
    const window = { thisUpdate: new Date("2030-03-01T00:00:00Z"), nextUpdate: new Date("2030-03-02T00:00:00Z"), crlNumber: 1 };
    const crlA = await issueCRL(a, { ...window, revoked: [{ serialNumber: "0a", revocationDate: late }, { serialNumber: "0b", revocationDate: late }] });
    const crlB = await issueCRL(b, { ...window, revoked: [{ serialNumber: "0A", revocationDate: early }] });
    const dates = (m: Map<string, Date>) => [...m].map(([k, d]) => `${k} ${d.toISOString()}`).sort();
    expect(dates(revocationDatesIn(buildCrlBundle([crlA, crlB])))).to.deep.equal([`0a ${early.toISOString()}`, `0b ${late.toISOString()}`]);
    expect(dates(revocationDatesIn(Buffer.from(crlA)))).to.deep.equal([`0a ${late.toISOString()}`, `0b ${late.toISOString()}`]);
    expect(revocationDatesIn(undefined).size).to.equal(0);
    expect(revocationDatesIn("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n").size).to.equal(0);
  });
});
