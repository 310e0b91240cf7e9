import { expect } from "chai";
import { createPublicKey, webcrypto } from "node:crypto";
import { monitorEventLoopDelay } from "node:perf_hooks";
import {
  DEFAULT_KEY_SPEC,
  describeKeySpec,
  generateKeyPair,
  keySpecOf,
  PkiError,
  resolveKeySpec,
} from "../../../src/pki/index";
import { ALL_KEY_SPECS, throwsWithReason } from "./helpers";

describe("pki/keys", () => {
  describe("resolveKeySpec", () => {
    it("defaults to ECDSA P-256", () => {
      expect(resolveKeySpec()).to.deep.equal({ algorithm: "ECDSA", size: 256 });
      expect(resolveKeySpec({})).to.deep.equal(DEFAULT_KEY_SPEC);
    });

    it("defaults the size per algorithm", () => {
      expect(resolveKeySpec({ algorithm: "RSA" })).to.deep.equal({ algorithm: "RSA", size: 2048 });
      expect(resolveKeySpec({ algorithm: "ECDSA" })).to.deep.equal({ algorithm: "ECDSA", size: 256 });
    });

    it("accepts every supported combination", () => {
      for (const spec of ALL_KEY_SPECS) expect(resolveKeySpec(spec)).to.deep.equal(spec);
    });

    it("rejects sizes that do not fit the algorithm with the allowed values in the message", () => {
      const ec = throwsWithReason(() => resolveKeySpec({ algorithm: "ECDSA", size: 2048 }), "InvalidKeySpec");
      expect(ec.message).to.contain("256 (P-256) or 384 (P-384)");
      const rsa = throwsWithReason(() => resolveKeySpec({ algorithm: "RSA", size: 256 }), "InvalidKeySpec");
      expect(rsa.message).to.contain("2048, 3072 or 4096");
      throwsWithReason(() => resolveKeySpec({ algorithm: "RSA", size: 1024 }), "InvalidKeySpec");
      throwsWithReason(() => resolveKeySpec({ algorithm: "ECDSA", size: 521 }), "InvalidKeySpec");
    });

    it("rejects unknown algorithms", () => {
      const err = throwsWithReason(() => resolveKeySpec({ algorithm: "Ed25519" }), "InvalidKeySpec");
      expect(err).to.be.instanceOf(PkiError);
      expect(err.message).to.contain("ECDSA").and.to.contain("RSA");
    });
  });

  it("describes specs the way status shows them", () => {
    expect(describeKeySpec({ algorithm: "ECDSA", size: 384 })).to.equal("ECDSA P-384");
    expect(describeKeySpec({ algorithm: "RSA", size: 3072 })).to.equal("RSA 3072");
  });

  describe("generateKeyPair", () => {
    for (const spec of ALL_KEY_SPECS) {
      it(`generates ${describeKeySpec(spec)} keys of the right type and size`, async function () {
        this.timeout(30_000);
        const pair = await generateKeyPair(spec);
        expect(pair.privateKey.extractable).to.equal(true);
        const spki = Buffer.from(await webcrypto.subtle.exportKey("spki", pair.publicKey));
        const details = createPublicKey({ key: spki, format: "der", type: "spki" }).asymmetricKeyDetails;
        if (spec.algorithm === "ECDSA") {
          expect(details?.namedCurve).to.equal(spec.size === 256 ? "prime256v1" : "secp384r1");
        } else {
          expect(details?.modulusLength).to.equal(spec.size);
          expect(details?.publicExponent).to.equal(65537n);
        }
      });
    }

    it("does not block the event loop while generating RSA-4096 keys", async function () {
      this.timeout(60_000);
      const histogram = monitorEventLoopDelay({ resolution: 1 });
      histogram.enable();
      const started = performance.now();
      await Promise.all([generateKeyPair({ algorithm: "RSA", size: 4096 }), generateKeyPair({ algorithm: "RSA", size: 4096 })]);
      const elapsed = performance.now() - started;
      histogram.disable();
      const worstMs = histogram.max / 1e6;
      // Synchronous generation would stall the loop for the whole generation (hundreds of ms at least).
      expect(worstMs, `worst event-loop delay ${worstMs.toFixed(1)} ms over ${elapsed.toFixed(0)} ms`).to.be.below(Math.min(100, elapsed / 2));
    });

    it("refuses an invalid spec before generating anything", async () => {
      try {
        await generateKeyPair({ algorithm: "RSA", size: 256 });
        expect.fail("should have thrown");
      } catch (e) {
        expect((e as PkiError).reason).to.equal("InvalidKeySpec");
      }
    });
  });

  it("maps key facts back to specs only for what we issue", () => {
    expect(keySpecOf({ algorithm: "RSA", size: 3072, description: "RSA 3072" })).to.deep.equal({ algorithm: "RSA", size: 3072 });
    expect(keySpecOf({ algorithm: "ECDSA", size: 521, namedCurve: "P-521", description: "ECDSA P-521" })).to.equal(undefined);
    expect(keySpecOf({ algorithm: "Other", size: 0, description: "ed25519" })).to.equal(undefined);
  });
});
