import { expect } from "chai";
import { createPrivateKey } from "node:crypto";
import { issueClientCertificate } from "../../../src/pki";
import { checkKeyPair } from "../../../src/pki/key-match";
import { DAY, sharedCA, throwsWithReason } from "./helpers";

describe("checkKeyPair", () => {
  it("knows the key of a certificate it issued, and gives it back as PKCS#8 DER", async () => {
    const leaf = await issueClientCertificate(await sharedCA(), { user: "km", duration: DAY, now: new Date() });
    const check = checkKeyPair(leaf.facts, leaf.keyPkcs8Pem);
    expect(check.matches).to.equal(true);
    expect(check.matches && check.pkcs8Der.equals(leaf.keyPkcs8Der)).to.equal(true);
  });

  it("refuses another certificate's key, describing that key", async () => {
    const ca = await sharedCA();
    const a = await issueClientCertificate(ca, { user: "a", duration: DAY, now: new Date() });
    const b = await issueClientCertificate(ca, { user: "b", duration: DAY, key: { algorithm: "ECDSA", size: 384 }, now: new Date() });
    const check = checkKeyPair(a.facts, b.keyPkcs8Pem);
    expect(check.matches).to.equal(false);
    expect(!check.matches && check.key.facts.description).to.equal("ECDSA P-384");
  });

  it("reads a matching key written in another form (SEC1) and returns its PKCS#8", async () => {
    const leaf = await issueClientCertificate(await sharedCA(), { user: "sec1", duration: DAY, now: new Date() });
    const sec1 = createPrivateKey({ key: leaf.keyPkcs8Der, format: "der", type: "pkcs8" }).export({ format: "pem", type: "sec1" }).toString();
    const check = checkKeyPair(leaf.facts, sec1);
    expect(check.matches && check.pkcs8Der.equals(leaf.keyPkcs8Der)).to.equal(true);
  });

  it("keeps parsePrivateKey's errors for what is not a usable key", async () => {
    const leaf = await issueClientCertificate(await sharedCA(), { user: "bad", duration: DAY, now: new Date() });
    throwsWithReason(() => checkKeyPair(leaf.facts, "-----BEGIN PRIVATE KEY-----\nAAECAw==\n-----END PRIVATE KEY-----\n"), "UnsupportedKeyFormat");
    throwsWithReason(() => checkKeyPair(leaf.facts, `${leaf.keyPkcs8Pem}${leaf.keyPkcs8Pem}`), "UnsupportedKeyFormat");
  });
});
