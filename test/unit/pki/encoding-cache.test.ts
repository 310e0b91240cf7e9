import { expect } from "chai";
import { AsnConvert } from "@peculiar/asn1-schema";
import { Certificate, CertificateList } from "@peculiar/asn1-x509";
import { issuerName } from "../../../src/pki/certificate-builder";
import {
  decodePem,
  generateCA,
  issueCRL,
  issueClientCertificate,
  issueServerCertificate,
  type CertificateAuthority,
} from "../../../src/pki/index";
import { signatureAlgorithmIdentifier } from "../../../src/pki/signature";
import { AlgorithmProvider } from "@peculiar/x509";
import { DAY, sharedCA } from "./helpers";

/** The DER of `der` re-encoded from plain schema objects: what the encoding is without the cached parts. */
function reencoded<T extends object>(der: Uint8Array, type: new () => T): Buffer {
  return Buffer.from(AsnConvert.serialize(AsnConvert.parse(der, type)));
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
        for (const facts of [ca.facts, client.facts, server.facts]) expect(reencoded(facts.der, Certificate)).to.deep.equal(facts.der);
        const crl = await issueCRL(ca, {
          revoked: [{ serialNumber: client.facts.serialNumber, revocationDate: now, reason: "keyCompromise" }],
          crlNumber: 2,
          thisUpdate: now,
          nextUpdate: new Date(now.getTime() + DAY),
        });
        const crlDer = decodePem(crl)[0]?.der ?? Buffer.alloc(0);
        expect(reencoded(crlDer, CertificateList)).to.deep.equal(crlDer);
      }
      expect(cas[0]?.facts.subjectDer).to.not.deep.equal(cas[1]?.facts.subjectDer);
    });
  }
});
