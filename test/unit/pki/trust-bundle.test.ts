import { expect } from "chai";
import fc from "fast-check";
import {
  buildTrustBundle,
  generateCA,
  issueClientCertificate,
  parseCertificate,
  trustBundleContains,
  trustBundleEntries,
  trustBundleFingerprints,
  type CertificateAuthority,
} from "../../../src/pki/index";
import { DAY, openssl, sharedCA, tempDir, throwsWithReason } from "./helpers";

describe("pki/trust-bundle", () => {
  let cas: CertificateAuthority[];
  let allow: string;

  before(async () => {
    cas = await Promise.all(["A", "B", "C", "D"].map((n) => generateCA({ commonName: `Bundle CA ${n}`, duration: DAY, now: new Date() })));
    allow = (await issueClientCertificate(await sharedCA(), { user: "pinned", duration: DAY, now: new Date() })).certPem;
  });

  it("contains every CA and allowlisted certificate once, as valid PEM openssl reads", () => {
    const bundle = buildTrustBundle(
      cas.map((c) => c.certPem),
      [allow, cas[0]?.certPem ?? ""],
    );
    expect(bundle.match(/BEGIN CERTIFICATE/g)).to.have.length(5);
    expect(trustBundleFingerprints(bundle)).to.have.members([...cas.map((c) => c.facts.fingerprintSha256), parseCertificate(allow).fingerprintSha256]);
    expect(trustBundleContains(bundle, allow)).to.equal(true);
    expect(trustBundleEntries(bundle).map((e) => e.subjectCommonName)).to.include("pinned");
    const t = tempDir();
    try {
      const p = t.file("b.pem", bundle);
      const v = openssl(["verify", "-CAfile", p, t.file("ca.pem", cas[1]?.certPem ?? "")]);
      expect(v.code, v.stderr).to.equal(0);
      expect(openssl(["crl2pkcs7", "-nocrl", "-certfile", p]).code).to.equal(0);
    } finally {
      t.cleanup();
    }
  });

  it("orders by fingerprint and normalises encoding (CRLF, chains, stray text)", () => {
    const messy = `Bag Attributes: whatever\r\n${(cas[2]?.certPem ?? "").replace(/\n/g, "\r\n")}`;
    const a = buildTrustBundle([messy, `${cas[3]?.certPem ?? ""}${cas[0]?.certPem ?? ""}`]);
    const fps = trustBundleFingerprints(a);
    expect(fps).to.deep.equal([...fps].sort());
    expect(a).not.to.contain("\r");
    expect(a).not.to.contain("Bag Attributes");
  });

  it("produces identical bytes for the same set in any order, with any duplicates (property)", () => {
    const pems = [...cas.map((c) => c.certPem), allow];
    const reference = buildTrustBundle(pems.slice(0, 4), pems.slice(4));
    fc.assert(
      fc.property(
        fc.shuffledSubarray(pems, { minLength: pems.length, maxLength: pems.length }),
        fc.array(fc.nat({ max: pems.length - 1 }), { maxLength: 6 }),
        fc.nat({ max: pems.length }),
        (shuffled, dupIdx, split) => {
          const withDups = [...shuffled, ...dupIdx.map((i) => pems[i] as string)];
          const out = buildTrustBundle(withDups.slice(0, split), withDups.slice(split));
          expect(out).to.equal(reference);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("changes when the set changes", () => {
    const two = buildTrustBundle([cas[0]?.certPem ?? "", cas[1]?.certPem ?? ""]);
    const three = buildTrustBundle([cas[0]?.certPem ?? "", cas[1]?.certPem ?? "", cas[2]?.certPem ?? ""]);
    expect(two).not.to.equal(three);
  });

  it("refuses an empty bundle and entries without a certificate", () => {
    throwsWithReason(() => buildTrustBundle([], []), "EmptyTrustBundle");
    const err = throwsWithReason(() => buildTrustBundle([cas[0]?.certPem ?? ""], ["-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n"]), "InvalidCertificate");
    expect(err.message).to.contain("allowlisted certificate #1");
  });
});
