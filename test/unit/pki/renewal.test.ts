import { expect } from "chai";
import fc from "fast-check";
import {
  CLOCK_SKEW_MS,
  DEFAULT_RENEW_BEFORE_MAX_MS,
  RENEWAL_POLICIES,
  evaluateRenewal,
  expired,
  generateCA,
  issueClientCertificate,
  issueServerCertificate,
  issuerChanged,
  keyAlgorithmChanged,
  keyMismatch,
  keySizeChanged,
  lifetimeExceedsPolicy,
  manualRotationRequested,
  missingData,
  renewalTime,
  renewalWindow,
  renewalTimeReached,
  revoked,
  sansChanged,
  subjectChanged,
  unparsable,
  type CertificateAuthority,
  type DesiredClientCertificate,
  type DesiredServerCertificate,
  type IssuedCertificate,
  type SecretData,
} from "../../../src/pki/index";
import { DAY, throwsWithReason } from "./helpers";

const T0 = new Date("2032-03-01T00:00:00Z");
const at = (ms: number): Date => new Date(T0.getTime() + ms);

function secret(issued: IssuedCertificate): SecretData {
  return { "tls.crt": Buffer.from(issued.chainPem), "tls.key": Buffer.from(issued.keyPkcs8Pem), "ca.crt": Buffer.from("x") };
}

describe("pki/renewal", () => {
  let ca: CertificateAuthority;
  let otherCa: CertificateAuthority;
  let sameNameCa: CertificateAuthority;
  let server: IssuedCertificate;
  let client: IssuedCertificate;
  let serverDesired: DesiredServerCertificate;
  let clientDesired: DesiredClientCertificate;

  before(async () => {
    ca = await generateCA({ commonName: "Renewal CA", duration: 365 * DAY, now: at(-DAY) });
    otherCa = await generateCA({ commonName: "Another CA", duration: 365 * DAY, now: at(-DAY) });
    // A CA re-created with the same name but a new key: a rotation must still be noticed.
    sameNameCa = await generateCA({ commonName: "Renewal CA", duration: 365 * DAY, now: at(-DAY) });
    server = await issueServerCertificate(ca, { dnsNames: ["db.svc", "db"], ipAddresses: ["127.0.0.1"], duration: 90 * DAY, now: T0 });
    client = await issueClientCertificate(ca, { user: "app", duration: 90 * DAY, now: T0 });
    serverDesired = {
      kind: "server",
      dnsNames: ["db.svc", "db"],
      ipAddresses: ["127.0.0.1"],
      key: { algorithm: "ECDSA", size: 256 },
      duration: 90 * DAY,
      issuer: ca,
    };
    clientDesired = { kind: "client", user: "app", key: { algorithm: "ECDSA", size: 256 }, duration: 90 * DAY, issuer: ca };
  });

  describe("on a certificate that matches the spec", () => {
    it("no policy fires, and the answer is UpToDate with the renewal time", () => {
      for (const policy of RENEWAL_POLICIES) {
        expect(policy(serverDesired, secret(server), at(DAY)), policy.name).to.equal(undefined);
        expect(policy(clientDesired, secret(client), at(DAY)), policy.name).to.equal(undefined);
      }
      const d = evaluateRenewal(serverDesired, secret(server), at(DAY));
      expect(d.reissue).to.equal(false);
      expect(d.reason).to.equal("UpToDate");
      const lifetime = 90 * DAY + CLOCK_SKEW_MS;
      expect(d.renewalTime?.getTime()).to.equal(server.notAfter.getTime() - Math.floor(lifetime / 3));
      expect(d.message).to.contain(server.serialNumber);
    });
  });

  it("MissingData: no Secret data, or an empty key", () => {
    const none = missingData(serverDesired, {}, at(0));
    expect(none?.reason).to.equal("MissingData");
    expect(none?.reissue).to.equal(true);
    expect(none?.message).to.contain("tls.crt and tls.key");
    const noKey = evaluateRenewal(serverDesired, { "tls.crt": Buffer.from(server.certPem), "tls.key": Buffer.alloc(0) }, at(0));
    expect(noKey.reason).to.equal("MissingData");
    expect(noKey.message).to.contain("tls.key").and.not.to.contain("tls.crt");
  });

  it("Unparsable: garbage certificate or key", () => {
    const badCert = { "tls.crt": Buffer.from("not a cert"), "tls.key": Buffer.from(server.keyPkcs8Pem) };
    expect(unparsable(serverDesired, badCert, at(0))?.reason).to.equal("Unparsable");
    const badKey = { "tls.crt": Buffer.from(server.certPem), "tls.key": Buffer.from("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n") };
    const d = evaluateRenewal(serverDesired, badKey, at(0));
    expect(d.reason).to.equal("Unparsable");
    expect(d.message).to.contain("tls.key");
    expect(missingData(serverDesired, badKey, at(0))).to.equal(undefined);
  });

  it("KeyMismatch: tls.key belongs to another certificate", () => {
    const data = { "tls.crt": Buffer.from(server.certPem), "tls.key": Buffer.from(client.keyPkcs8Pem) };
    expect(keyMismatch(serverDesired, data, at(DAY))?.reason).to.equal("KeyMismatch");
    expect(evaluateRenewal(serverDesired, data, at(DAY)).reason).to.equal("KeyMismatch");
  });

  it("Revoked: by serial in any spelling, or by fingerprint", () => {
    const colon = (server.serialNumber.toUpperCase().match(/../g) ?? []).join(":");
    expect(revoked({ ...serverDesired, revokedSerials: [colon] }, secret(server), at(DAY))?.reason).to.equal("Revoked");
    expect(revoked({ ...serverDesired, revokedSerials: [`00${server.serialNumber}`] }, secret(server), at(DAY))?.reason).to.equal("Revoked");
    const fp = `SHA256 Fingerprint=${(server.fingerprintSha256.toUpperCase().match(/../g) ?? []).join(":")}`;
    expect(revoked({ ...serverDesired, revokedFingerprints: [fp] }, secret(server), at(DAY))?.reason).to.equal("Revoked");
    expect(revoked({ ...serverDesired, revokedSerials: [client.serialNumber] }, secret(server), at(DAY))).to.equal(undefined);
    throwsWithReason(() => revoked({ ...serverDesired, revokedSerials: ["xyz"] }, secret(server), at(DAY)), "InvalidSerialNumber");
  });

  it("Expired: from notAfter on, and it outranks renewal", () => {
    expect(expired(serverDesired, secret(server), new Date(server.notAfter.getTime() - 1))).to.equal(undefined);
    const d = evaluateRenewal(serverDesired, secret(server), server.notAfter);
    expect(d.reason).to.equal("Expired");
    expect(d.message).to.contain(server.notAfter.toISOString());
  });

  it("IssuerChanged: another CA, or a CA with the same name and a new key", () => {
    const other = issuerChanged({ ...serverDesired, issuer: otherCa }, secret(server), at(DAY));
    expect(other?.reason).to.equal("IssuerChanged");
    expect(other?.message).to.contain("Another CA").and.to.contain(ca.facts.subjectKeyId ?? "?");
    const sameName = evaluateRenewal({ ...clientDesired, issuer: sameNameCa }, secret(client), at(DAY));
    expect(sameName.reason).to.equal("IssuerChanged");
  });

  it("IssuerChanged is not raised for a certificate of a CA listed in alsoAcceptedIssuers (a rotation's overlap)", () => {
    expect(issuerChanged({ ...serverDesired, issuer: otherCa, alsoAcceptedIssuers: [ca] }, secret(server), at(DAY))).to.equal(undefined);
    expect(issuerChanged({ ...serverDesired, issuer: otherCa, alsoAcceptedIssuers: [sameNameCa] }, secret(server), at(DAY))?.reason).to.equal("IssuerChanged");
    expect(evaluateRenewal({ ...clientDesired, issuer: sameNameCa, alsoAcceptedIssuers: [ca] }, secret(client), at(DAY)).reason).to.equal("UpToDate");
  });

  it("SubjectChanged: another database user", () => {
    const d = subjectChanged({ ...clientDesired, user: "reporting" }, secret(client), at(DAY));
    expect(d?.reason).to.equal("SubjectChanged");
    expect(d?.message).to.contain('"reporting"');
  });

  it("SubjectChanged: an explicit server common name that differs; but reordering names is not a change", () => {
    expect(subjectChanged({ ...serverDesired, commonName: "PostgreSQL" }, secret(server), at(DAY))?.reason).to.equal("SubjectChanged");
    const reordered = { ...serverDesired, dnsNames: ["db", "db.svc"] };
    expect(evaluateRenewal(reordered, secret(server), at(DAY)).reason).to.equal("UpToDate");
    // The CN "db.svc" dropped from the names: both subject and SANs changed; subject is reported first.
    expect(evaluateRenewal({ ...serverDesired, dnsNames: ["db"] }, secret(server), at(DAY)).reason).to.equal("SubjectChanged");
  });

  it("SANsChanged: names added or removed, compared in canonical form", () => {
    const added = sansChanged({ ...serverDesired, ipAddresses: ["127.0.0.1", "::1"] }, secret(server), at(DAY));
    expect(added?.reason).to.equal("SANsChanged");
    expect(added?.message).to.contain("added IP:::1");
    const removed = evaluateRenewal({ ...serverDesired, ipAddresses: [] }, secret(server), at(DAY));
    expect(removed.reason).to.equal("SANsChanged");
    expect(removed.message).to.contain("removed IP:127.0.0.1");
    expect(sansChanged({ ...serverDesired, dnsNames: ["DB.SVC.", "db"] }, secret(server), at(DAY))).to.equal(undefined);
    expect(sansChanged(clientDesired, secret(client), at(DAY))).to.equal(undefined);
  });

  it("KeyAlgorithmChanged and KeySizeChanged", () => {
    const alg = keyAlgorithmChanged({ ...serverDesired, key: { algorithm: "RSA", size: 2048 } }, secret(server), at(DAY));
    expect(alg?.reason).to.equal("KeyAlgorithmChanged");
    expect(alg?.message).to.contain("ECDSA P-256").and.to.contain("RSA 2048");
    expect(keySizeChanged({ ...serverDesired, key: { algorithm: "RSA", size: 2048 } }, secret(server), at(DAY))).to.equal(undefined);
    const size = evaluateRenewal({ ...serverDesired, key: { algorithm: "ECDSA", size: 384 } }, secret(server), at(DAY));
    expect(size.reason).to.equal("KeySizeChanged");
  });

  it("DurationShortened: only when the certificate outlives the policy's duration by more than a minute", () => {
    // Issued at T0 for 90 days; the policy now says 30 days.
    expect(lifetimeExceedsPolicy({ ...clientDesired, duration: 30 * DAY }, secret(client), at(DAY))?.reason).to.equal("DurationShortened");
    expect(lifetimeExceedsPolicy({ ...clientDesired, duration: 30 * DAY }, secret(client), at(DAY))?.message).to.contain("longer than the 2592000 s the policy now allows");
    // Same policy, a day later: no.
    expect(lifetimeExceedsPolicy(clientDesired, secret(client), at(DAY))).to.equal(undefined);
    // Same policy, right at issuance (the remaining validity equals the duration): no.
    expect(lifetimeExceedsPolicy(clientDesired, secret(client), T0)).to.equal(undefined);
    // 90 days left and a policy of 89 days 23 h 59 min: within the minute of slack → still no.
    expect(lifetimeExceedsPolicy({ ...clientDesired, duration: 90 * DAY - 60_000 }, secret(client), T0)).to.equal(undefined);
    expect(evaluateRenewal({ ...clientDesired, duration: 60_000 }, secret(client), at(DAY)).reason).to.equal("DurationShortened");
  });

  it("ManualRotationRequested: only while the token differs from the last one honoured", () => {
    expect(manualRotationRequested({ ...clientDesired, rotationToken: "2032-03-02" }, secret(client), at(DAY))?.reason).to.equal("ManualRotationRequested");
    expect(manualRotationRequested({ ...clientDesired, rotationToken: "a", lastRotationToken: "a" }, secret(client), at(DAY))).to.equal(undefined);
    expect(manualRotationRequested({ ...clientDesired, rotationToken: "" }, secret(client), at(DAY))).to.equal(undefined);
    expect(evaluateRenewal({ ...clientDesired, rotationToken: "b", lastRotationToken: "a" }, secret(client), at(DAY)).reason).to.equal(
      "ManualRotationRequested",
    );
  });

  describe("RenewalTimeReached", () => {
    it("fires at two thirds of the lifetime by default", () => {
      const due = renewalTime(server.notBefore, server.notAfter);
      expect(renewalTimeReached(serverDesired, secret(server), new Date(due.getTime() - 1))).to.equal(undefined);
      expect(renewalTimeReached(serverDesired, secret(server), due)?.reason).to.equal("RenewalTimeReached");
    });

    it("honours renewBefore and renewBeforePercentage", () => {
      const withBefore = { ...serverDesired, renewBefore: 10 * DAY };
      const due = new Date(server.notAfter.getTime() - 10 * DAY);
      expect(evaluateRenewal(withBefore, secret(server), new Date(due.getTime() - 1)).reason).to.equal("UpToDate");
      expect(evaluateRenewal(withBefore, secret(server), due).reason).to.equal("RenewalTimeReached");
      const withPct = { ...serverDesired, renewBeforePercentage: 50, renewBefore: 1 };
      const half = evaluateRenewal(withPct, secret(server), at(DAY));
      expect(half.renewalTime?.getTime()).to.equal(server.notAfter.getTime() - Math.floor((90 * DAY + CLOCK_SKEW_MS) / 2));
    });
  });

  it("reports the most fundamental problem first", () => {
    const many = { ...serverDesired, issuer: otherCa, key: { algorithm: "RSA", size: 4096 } as const, revokedSerials: [server.serialNumber] };
    expect(evaluateRenewal(many, secret(server), server.notAfter).reason).to.equal("Revoked");
    expect(evaluateRenewal({ ...many, revokedSerials: [] }, secret(server), server.notAfter).reason).to.equal("Expired");
    expect(evaluateRenewal({ ...many, revokedSerials: [] }, secret(server), at(DAY)).reason).to.equal("IssuerChanged");
    expect(evaluateRenewal(many, {}, at(DAY)).reason).to.equal("MissingData");
  });

  describe("renewalWindow (the window a certificate policy asks for)", () => {
    const H = 3600 * 1000;
    const cases: ReadonlyArray<{ name: string; duration: number; policy: { renewBefore?: number; renewBeforePercentage?: number }; window: number }> = [
      { name: "renewBefore as given", duration: 600_000, policy: { renewBefore: 120_000 }, window: 120_000 },
      { name: "renewBefore wins over a percentage", duration: 100 * H, policy: { renewBefore: H, renewBeforePercentage: 50 }, window: H },
      { name: "a percentage of the duration", duration: 100 * H, policy: { renewBeforePercentage: 10 }, window: 10 * H },
      { name: "a percentage, rounded to the ms", duration: 1001, policy: { renewBeforePercentage: 50 }, window: 501 },
      { name: "by default a third of the duration", duration: H, policy: {}, window: 20 * 60_000 },
      { name: "by default at most 720h", duration: 2160 * H, policy: {}, window: 720 * H },
      { name: "by default at most 720h, for a 10-year CA too", duration: 87600 * H, policy: {}, window: 720 * H },
    ];
    for (const c of cases) {
      it(c.name, () => {
        expect(renewalWindow(c.duration, c.policy)).to.equal(c.window);
      });
    }
    it("refuses a percentage outside (0, 100)", () => {
      throwsWithReason(() => renewalWindow(DAY, { renewBeforePercentage: 100 }), "InvalidArgument");
      throwsWithReason(() => renewalWindow(DAY, { renewBeforePercentage: 0 }), "InvalidArgument");
    });
    it("is DEFAULT_RENEW_BEFORE_MAX_MS at most by default", () => {
      expect(DEFAULT_RENEW_BEFORE_MAX_MS).to.equal(720 * H);
    });
  });

  describe("renewalTime", () => {
    const nb = new Date("2030-01-01T00:00:00Z");
    const na = new Date("2030-01-31T00:00:00Z");
    it("defaults to a third of the lifetime before notAfter", () => {
      expect(renewalTime(nb, na).toISOString()).to.equal("2030-01-21T00:00:00.000Z");
    });
    it("uses renewBefore when shorter than the lifetime, else the default", () => {
      expect(renewalTime(nb, na, 5 * DAY).toISOString()).to.equal("2030-01-26T00:00:00.000Z");
      expect(renewalTime(nb, na, 40 * DAY).toISOString()).to.equal("2030-01-21T00:00:00.000Z");
    });
    it("uses a percentage of the lifetime", () => {
      expect(renewalTime(nb, na, { percentage: 10 }).toISOString()).to.equal("2030-01-28T00:00:00.000Z");
    });
    it("rejects nonsense", () => {
      throwsWithReason(() => renewalTime(nb, na, { percentage: 100 }), "InvalidArgument");
      throwsWithReason(() => renewalTime(nb, na, { percentage: 0 }), "InvalidArgument");
      throwsWithReason(() => renewalTime(nb, na, -1), "InvalidArgument");
    });
    it("always lies within the validity (property)", () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 2 ** 40 }),
          fc.integer({ min: 1, max: 2 ** 36 }),
          fc.oneof(
            fc.constant(undefined),
            fc.integer({ min: 1, max: 2 ** 37 }),
            fc.double({ min: 0.01, max: 99.99, noNaN: true }).map((percentage) => ({ percentage })),
          ),
          (start, lifetime, before) => {
            const t = renewalTime(new Date(start), new Date(start + lifetime), before).getTime();
            expect(t).to.be.at.least(start).and.at.most(start + lifetime);
          },
        ),
      );
    });
  });
});
