import { expect } from "chai";
import { id_encryptedData } from "@peculiar/asn1-cms";
import { AuthenticatedSafe, PFX, PKCS8ShroudedKeyBag, SafeContents } from "@peculiar/asn1-pfx";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import { Certificate, CertificateList, type AlgorithmIdentifier } from "@peculiar/asn1-x509";
import { issuerName } from "../../../src/pki/certificate-builder";
import {
  decodePem,
  generateCA,
  issueCRL,
  issueClientCertificate,
  issueServerCertificate,
  parseCRL,
  parseCertificate,
  type CertificateAuthority,
} from "../../../src/pki/index";
import { CmsEncryptedData, Pbes2Params, Pbkdf2Params, buildPkcs12 } from "../../../src/pki/pkcs12";
import { signatureAlgorithmIdentifier } from "../../../src/pki/signature";
import { AlgorithmProvider } from "@peculiar/x509";
import { parsePkcs12 } from "../../support/pki";
import { DAY, sharedCA } from "./helpers";

/** `der` is what the vendor schema `type` writes for the values it reads from `der` (the encoding without cached parts). */
function expectReencodes<T extends object>(der: ArrayBuffer | Uint8Array, type: new () => T): void {
  const bytes = Buffer.from(der instanceof ArrayBuffer ? new Uint8Array(der) : der);
  expect(Buffer.from(AsnConvert.serialize(AsnConvert.parse(bytes, type)))).to.deep.equal(bytes);
}

describe("pki: parts converted once per CA or kind encode as the uncached schema values", () => {
  const now = new Date();

  it("the signature AlgorithmIdentifier and the issuer Name", async () => {
    const ca = await sharedCA();
    for (const alg of [ca.signing, { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as const]) {
      expect(Buffer.from(AsnConvert.serialize(signatureAlgorithmIdentifier(alg)))).to.deep.equal(
        Buffer.from(AsnConvert.serialize(new AlgorithmProvider().toAsnAlgorithm(alg))),
      );
    }
    expect(Buffer.from(AsnConvert.serialize(issuerName(ca.facts)))).to.deep.equal(ca.facts.subjectDer);
  });

  for (const key of [{ algorithm: "ECDSA", size: 256 }, { algorithm: "RSA", size: 2048 }] as const) {
    it(`certificates and CRLs issued twice (cold and warm caches) are their uncached encoding (${key.algorithm})`, async () => {
      const cas: CertificateAuthority[] = [];
      for (let i = 0; i < 2; i++) {
        const ca = await generateCA({ commonName: `Cache CA ${i}`, duration: 10 * DAY, now, key });
        cas.push(ca);
        const client = await issueClientCertificate(ca, { user: "app_user", duration: DAY, now });
        const server = await issueServerCertificate(ca, { dnsNames: ["db.example"], ipAddresses: ["10.0.0.1"], duration: DAY, now });
        for (const facts of [ca.facts, client.facts, server.facts]) expectReencodes(facts.der, Certificate);
        const crl = await issueCRL(ca, {
          revoked: [{ serialNumber: client.facts.serialNumber, revocationDate: now, reason: "keyCompromise" }],
          crlNumber: 2,
          thisUpdate: now,
          nextUpdate: new Date(now.getTime() + DAY),
        });
        const crlDer = decodePem(crl)[0]?.der ?? Buffer.alloc(0);
        expectReencodes(crlDer, CertificateList);
        // The per-CA parts are this CA's, not the previous one's.
        expect(parseCertificate(client.certPem).authorityKeyId).to.equal(ca.facts.subjectKeyId);
        expect(parseCertificate(client.certPem).issuer).to.equal(`CN=Cache CA ${i}`);
        expect(parseCRL(crl).authorityKeyId).to.equal(ca.facts.subjectKeyId);
        expect(parseCRL(crl).revoked[0]?.reason).to.equal("keyCompromise");
      }
      expect(cas[0]?.facts.subjectDer).to.not.deep.equal(cas[1]?.facts.subjectDer);
    });
  }

  it("PKCS#12: the typed PBES2 parameters and bags encode as asn1-pfx's generic schemas read them back", async () => {
    const ca = await sharedCA();
    const client = await issueClientCertificate(ca, { user: "app_user", duration: DAY, now });
    const pfx = buildPkcs12({
      keyPkcs8Der: client.keyPkcs8Der,
      certificatePem: client.certPem,
      caCertificatePems: [ca.certPem],
      password: "pw",
      friendlyName: "app_user",
    });
    const pbes2 = (algorithm: AlgorithmIdentifier): void => {
      const encoded = algorithm.parameters ?? new ArrayBuffer(0);
      expectReencodes(encoded, Pbes2Params);
      expectReencodes(AsnConvert.parse(encoded, Pbes2Params).keyDerivationFunc.parameters ?? new ArrayBuffer(0), Pbkdf2Params);
    };
    expectReencodes(pfx, PFX);
    const authSafe = new Uint8Array(AsnConvert.parse(AsnConvert.parse(pfx, PFX).authSafe.content, OctetString).buffer);
    expectReencodes(authSafe, AuthenticatedSafe);
    for (const content of AsnConvert.parse(authSafe, AuthenticatedSafe)) {
      if (content.contentType === id_encryptedData) {
        expectReencodes(content.content, CmsEncryptedData);
        pbes2(AsnConvert.parse(content.content, CmsEncryptedData).encryptedContentInfo.contentEncryptionAlgorithm);
      } else {
        const bags = new Uint8Array(AsnConvert.parse(content.content, OctetString).buffer);
        expectReencodes(bags, SafeContents);
        for (const bag of AsnConvert.parse(bags, SafeContents)) pbes2(AsnConvert.parse(bag.bagValue, PKCS8ShroudedKeyBag).encryptionAlgorithm);
      }
    }
    // The key we exported ourselves skips the PKCS#8 check; a copy of it is checked, and both files hold the same key.
    const copy = buildPkcs12({ keyPkcs8Der: Buffer.from(client.keyPkcs8Der), certificatePem: client.certPem, password: "pw" });
    expect((await parsePkcs12(copy, "pw")).keysPkcs8Der).to.deep.equal((await parsePkcs12(pfx, "pw")).keysPkcs8Der);
  });
});
