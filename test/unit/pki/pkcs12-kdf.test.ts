import { expect } from "chai";
import fc from "fast-check";
import { createHmac } from "node:crypto";
import { bmpPassword, pkcs12Kdf, pkcs12KdfHashOf, pkcs12Mac, type Pkcs12KdfHash } from "../../../src/pki/pkcs12-kdf";
import { openssl } from "./helpers";

/** 64 bytes 0b 30 55 7a …: (i * 37 + 11) mod 256. */
const SALT64 = Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 255));
const SALT8 = Buffer.from("0a58cf64530d823f", "hex");
const PASSWORD = "Yk2m3n4b5v6c7x8z9l0kJhGfDsAqWeRt";

/** `openssl kdf … PKCS12KDF`: OpenSSL's own B.2 implementation, given the BMPString password as hex. */
function opensslKdf(digest: Pkcs12KdfHash, id: number, password: Uint8Array, salt: Uint8Array, iterations: number, length: number): string {
  const r = openssl([
    "kdf", "-keylen", String(length), "-kdfopt", `digest:${digest.toUpperCase()}`, "-kdfopt", `hexpass:${Buffer.from(password).toString("hex")}`,
    "-kdfopt", `hexsalt:${Buffer.from(salt).toString("hex")}`, "-kdfopt", `iter:${iterations}`, "-kdfopt", `id:${id}`, "PKCS12KDF",
  ]);
  expect(r.code, r.stderr).to.equal(0);
  return r.stdout.replace(/[:\s]/g, "").toLowerCase();
}

describe("pki/pkcs12-kdf (RFC 7292 B.2)", () => {
  it("encodes the password as a BMPString with a trailing NUL (B.1), surrogate pairs beyond the BMP", () => {
    expect(bmpPassword("smeg").toString("hex")).to.equal("0073006d006500670000");
    expect(bmpPassword("").toString("hex")).to.equal("0000");
    expect(bmpPassword("clé 😀").toString("hex")).to.equal("0063006c00e90020d83dde000000");
  });

  it("maps WebCrypto hash names and refuses the others", () => {
    expect(pkcs12KdfHashOf("SHA-256")).to.equal("sha256");
    expect(pkcs12KdfHashOf("sha-1")).to.equal("sha1");
    expect(pkcs12KdfHashOf("SHA-512")).to.equal("sha512");
    expect(pkcs12KdfHashOf("MD5")).to.equal(undefined);
    expect(pkcs12KdfHashOf("toString")).to.equal(undefined);
  });

  // Expected values from OpenSSL 3.0 (`openssl kdf -keylen N -kdfopt digest:… -kdfopt hexpass:<BMPString>
  // -kdfopt hexsalt:… -kdfopt iter:… -kdfopt id:… PKCS12KDF`); the first is the classic vector also found in
  // OpenSSL's and BouncyCastle's test data.
  const vectors: ReadonlyArray<{ name: string; hash: Pkcs12KdfHash; id: number; password: string; salt: Buffer; iterations: number; length: number; expected: string }> = [
    { name: "SHA-1, ID 1, 1 iteration, 24 bytes (two blocks)", hash: "sha1", id: 1, password: "smeg", salt: SALT8, iterations: 1, length: 24, expected: "8aaae6297b6cb04642ab5b077851284eb7128f1a2a7fbca3" },
    { name: "SHA-256 MAC key, 2048 iterations, 64-byte salt (what buildPkcs12 uses)", hash: "sha256", id: 3, password: PASSWORD, salt: SALT64, iterations: 2048, length: 32, expected: "c609f42b7541de1be3c4c6265910c23d39cf5deb28862aec08622f3c952a28b8" },
    { name: "SHA-256, ID 1, 1000 iterations, 80 bytes (three blocks), non-ASCII password", hash: "sha256", id: 1, password: "p@ss wörd", salt: SALT8, iterations: 1000, length: 80, expected: "1c16dd35f27742ae1463a8abcf0ca6290307fc5d4a7e427c77e2c841b2afaf1392f6728f046d19515254c350a1b803c32900d432a37ace63798ceeb73b1eca479d2662be8a77f70c5adcc19b006ab32d" },
    { name: "SHA-512 MAC key (v = 128), 2048 iterations", hash: "sha512", id: 3, password: PASSWORD, salt: SALT64, iterations: 2048, length: 64, expected: "c9dfe2a73936d9578c098b01ca588cd2b0e9f4fadf54ef440372cd42291e72bad929f74f2140a212ce0abe2e8c0224b92e5084c3fb77f6b6315f22f8e64e0db0" },
    { name: "SHA-1 MAC key, password beyond the BMP", hash: "sha1", id: 3, password: "clé 😀", salt: SALT8, iterations: 2048, length: 20, expected: "b533cae42469f03f378a202309254c709eae7c2d" },
    { name: "SHA-256 MAC key, empty password", hash: "sha256", id: 3, password: "", salt: SALT8, iterations: 2048, length: 32, expected: "05216cb6a93265b3b0a47e3839ed00f7a17decd5c90f948b9f9e6cb19dd4bc4f" },
  ];
  for (const v of vectors) {
    it(`matches the known answer: ${v.name}`, () => {
      expect(pkcs12Kdf(v.hash, v.id, bmpPassword(v.password), v.salt, v.iterations, v.length).toString("hex")).to.equal(v.expected);
    });
  }

  it("matches openssl's PKCS12KDF on random inputs (property)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom<Pkcs12KdfHash>("sha1", "sha256", "sha384", "sha512"),
        fc.integer({ min: 1, max: 3 }),
        fc.string({ maxLength: 40, unit: "binary" }),
        fc.uint8Array({ minLength: 1, maxLength: 130 }),
        fc.integer({ min: 1, max: 3000 }),
        fc.integer({ min: 1, max: 150 }),
        (digest, id, password, salt, iterations, length) => {
          const bmp = bmpPassword(password);
          expect(pkcs12Kdf(digest, id, bmp, salt, iterations, length).toString("hex")).to.equal(opensslKdf(digest, id, bmp, salt, iterations, length));
        },
      ),
      { numRuns: 12 },
    );
  });

  it("refuses an iteration count below one", () => {
    expect(() => pkcs12Kdf("sha256", 3, bmpPassword("x"), SALT8, 0, 32)).to.throw(RangeError);
  });

  describe("pkcs12Mac (the MacData digest of a PFX)", () => {
    it("is the HMAC keyed with openssl's PKCS12KDF MAC key (ID 3, hash-sized) (property)", () => {
      fc.assert(
        fc.property(
          fc.string({ maxLength: 24, unit: "grapheme" }),
          fc.uint8Array({ minLength: 1, maxLength: 64 }),
          fc.constantFrom<Pkcs12KdfHash>("sha1", "sha256", "sha384", "sha512"),
          fc.integer({ min: 1, max: 2100 }),
          fc.uint8Array({ maxLength: 300 }),
          (password, salt, hash, iterations, content) => {
            const bmp = bmpPassword(password);
            const keyLength = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 }[hash];
            const key = Buffer.from(opensslKdf(hash, 3, bmp, salt, iterations, keyLength), "hex");
            const expected = createHmac(hash, key).update(content).digest("hex");
            expect(pkcs12Mac(hash, bmp, salt, iterations, content).toString("hex")).to.equal(expected);
          },
        ),
        { numRuns: 12 },
      );
    });

    it("changes with the password, salt, iteration count and content", () => {
      const content = Buffer.from("authenticated safe");
      const mac = (password: string, salt: Uint8Array, iterations: number, data: Uint8Array): string =>
        pkcs12Mac("sha256", bmpPassword(password), salt, iterations, data).toString("hex");
      const base = mac(PASSWORD, SALT64, 2048, content);
      expect(mac(PASSWORD, SALT64, 2048, content)).to.equal(base);
      expect(mac("wrong", SALT64, 2048, content)).to.not.equal(base);
      expect(mac(PASSWORD, SALT8, 2048, content)).to.not.equal(base);
      expect(mac(PASSWORD, SALT64, 2047, content)).to.not.equal(base);
      expect(mac(PASSWORD, SALT64, 2048, Buffer.from("authenticated safE"))).to.not.equal(base);
    });
  });
});
