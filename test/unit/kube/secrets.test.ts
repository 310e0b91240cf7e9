import { expect } from "chai";
import { secretBytes, type SecretObject } from "../../../src/kube/secrets";

describe("secretBytes", () => {
  const secret = (value: string): SecretObject => ({ apiVersion: "v1", kind: "Secret", metadata: { name: "s", namespace: "n" }, data: { "tls.crt": Buffer.from(value).toString("base64") } });

  it("decodes base64 data, once per object, into a record no caller can change", () => {
    const s = secret("certificate");
    const a = secretBytes(s);
    expect(a["tls.crt"]?.toString()).to.equal("certificate");
    expect(secretBytes(s)).to.equal(a);
    expect(Object.isFrozen(a)).to.equal(true);
  });

  it("gives a newer object of the same Secret its own bytes, and nothing for no Secret", () => {
    expect(secretBytes(secret("old"))["tls.crt"]?.toString()).to.equal("old");
    expect(secretBytes(secret("new"))["tls.crt"]?.toString()).to.equal("new");
    expect(secretBytes(undefined)).to.deep.equal({});
  });
});
