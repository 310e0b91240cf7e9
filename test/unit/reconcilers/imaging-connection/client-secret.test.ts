import { expect } from "chai";
import { managedLabels, ROTATE_ANNOTATION, type SecureDatabaseStatus } from "../../../../src/api/types";
import { encodeSecretData, type SecretObject } from "../../../../src/kube/secrets";
import {
  buildTrustBundle,
  clientSecretData,
  generateCA,
  issueClientCertificate,
  resolveKeySpec,
  type CertificateAuthority,
  type IssuedCertificate,
} from "../../../../src/pki";
import type { CARead } from "../../../../src/reconcilers/database-ca";
import {
  planClientSecret,
  planSecretClaim,
  planSecretWrite,
  type ClientSecretIssuance,
  type ClientSecretObserved,
} from "../../../../src/reconcilers/imaging-connection/client-secret";
import { ROTATION_TOKEN_ANNOTATION } from "../../../../src/reconcilers/rotate-annotation";
import { deleted, imagingConnection, NOW, NS, resolved, secureDatabase, target } from "./fixtures";

const DAY = 24 * 3600_000;

describe("the client Secret's plans", () => {
  let ca: CertificateAuthority;
  let previousCA: CertificateAuthority;
  /** A current certificate of `ca` for cast_app, issued a day ago. */
  let current: IssuedCertificate;
  /** One of the previous CA. */
  let fromPrevious: IssuedCertificate;

  before(async () => {
    ca = await generateCA({ commonName: "Imaging DB CA", duration: 365 * DAY, now: new Date(NOW.getTime() - 10 * DAY) });
    previousCA = await generateCA({ commonName: "Imaging DB CA (previous)", duration: 365 * DAY, now: new Date(NOW.getTime() - 10 * DAY) });
    const key = resolveKeySpec(resolved(imagingConnection("app")).certificate.privateKey);
    current = await issueClientCertificate(ca, { user: "cast_app", duration: 90 * DAY, key, now: new Date(NOW.getTime() - DAY) });
    fromPrevious = await issueClientCertificate(
      previousCA,
      { user: "cast_app", duration: 90 * DAY, key, now: new Date(NOW.getTime() - DAY) },
    );
  });

  const acknowledged = (): SecureDatabaseStatus => ({ ca: { fingerprintSHA256: ca.facts.fingerprintSha256 } });
  const ready = (): CARead => ({ state: "ready", ca, provided: false, keySecret: { namespace: "imaging-db-mtls-operator", name: "cast.imaging-db-ca" } });

  async function secretOf(issued: IssuedCertificate, trustBundle: string, annotations?: Record<string, string>): Promise<SecretObject> {
    const data = await clientSecretData({ issued, trustBundlePem: trustBundle });
    return {
      metadata: {
        name: "app-client-tls",
        namespace: NS,
        labels: managedLabels("ImagingConnection", "app"),
        ...(annotations ? { annotations } : {}),
      },
      data: encodeSecretData(data),
    };
  }

  function observed(over: Partial<ClientSecretObserved> & { status?: SecureDatabaseStatus } = {}): ClientSecretObserved {
    const { status, ...rest } = over;
    const imc = rest.imc ?? imagingConnection("app");
    return {
      imc,
      spec: resolved(imc),
      target: target(secureDatabase({}, status ?? acknowledged())),
      ca: ready(),
      trustBundle: ca.certPem,
      ...rest,
    };
  }

  describe("planClientSecret (issue, keep or wait)", () => {
    const waitRows: { name: string; observed: () => ClientSecretObserved; reason: string; message: string }[] = [
      {
        name: "the database has no CA yet",
        observed: () => observed({ ca: { state: "absent" } }),
        reason: "DatabaseNotReady",
        message: `SecureDatabase ${NS}/db has no usable CA yet`,
      },
      {
        name: "the database's CA is unusable",
        observed: () => observed({
          ca: { state: "problem", reason: "CASecretInvalid", message: "Secret db-ca holds a CA the operator cannot use" },
        }),
        reason: "DatabaseNotReady",
        message: `SecureDatabase ${NS}/db has no usable CA yet (CASecretInvalid: Secret db-ca holds a CA the operator cannot use)`,
      },
      {
        name: "the database has not written its trust bundle",
        observed: () => observed({ trustBundle: undefined }),
        reason: "DatabaseNotReady",
        message: `SecureDatabase ${NS}/db has not written its trust bundle yet (Secret db-server-tls)`,
      },
      {
        name: "the Secret name belongs to someone else",
        observed: () => observed({ claim: "Secret app-client-tls exists and was not created by the operator" }),
        reason: "SecretConflict",
        message: "Secret app-client-tls exists and was not created by the operator",
      },
    ];
    for (const row of waitRows) {
      it(`waits a minute: ${row.name}`, () => {
        expect(planClientSecret(row.observed(), NOW)).to.deep.equal({
          ready: false,
          condition: { type: "CertificateReady", status: "False", reason: row.reason, message: row.message },
          requeueAt: NOW.getTime() + 60_000,
        });
      });
    }

    it("waits for trust: a certificate is due but the database has not acknowledged the signing CA", () => {
      const plan = planClientSecret(observed({ status: {} }), NOW);
      expect(plan.ready).to.equal(false);
      if (plan.ready) return;
      expect(plan.condition.reason).to.equal("WaitingForTrust");
      expect(plan.condition.message).to.match(
        new RegExp(
          `^SecureDatabase ${NS}/db signs with CA serial ${ca.facts.serialNumber}, which it does not serve and trust yet; ` +
            "issuing once it does \\(MissingData: ",
        ),
      );
    });

    const decisionRows: {
      name: string;
      observed: () => Promise<ClientSecretObserved>;
      reissue: boolean;
      reason: string;
      rotation: object;
    }[] = [
      { name: "no Secret yet: issue", observed: async () => observed(), reissue: true, reason: "MissingData", rotation: {} },
      {
        name: "a current certificate of the CA: keep it",
        observed: async () => observed({ current: await secretOf(current, ca.certPem) }),
        reissue: false,
        reason: "UpToDate",
        rotation: {},
      },
      {
        name: "a new rotate token: issue",
        observed: async () => {
          const imc = imagingConnection("app", {}, { annotations: { [ROTATE_ANNOTATION]: "1" } });
          return observed({ imc, current: await secretOf(current, ca.certPem) });
        },
        reissue: true,
        reason: "ManualRotationRequested",
        rotation: { rotationToken: "1" },
      },
      {
        name: "a token already satisfied: keep",
        observed: async () => {
          const imc = imagingConnection("app", {}, { annotations: { [ROTATE_ANNOTATION]: "1" } });
          return observed({ imc, current: await secretOf(current, ca.certPem, { [ROTATION_TOKEN_ANNOTATION]: "1" }) });
        },
        reissue: false,
        reason: "UpToDate",
        rotation: { rotationToken: "1", lastRotationToken: "1" },
      },
      {
        name: "a certificate of the previous CA outside an overlap: issue",
        observed: async () => observed({ current: await secretOf(fromPrevious, ca.certPem) }),
        reissue: true,
        reason: "IssuerChanged",
        rotation: {},
      },
      {
        name: "a certificate of the previous CA during the overlap: keep",
        observed: async () => {
          const bundle = buildTrustBundle([ca.certPem, previousCA.certPem]);
          const status = { ...acknowledged(), caRotation: { phase: "Overlap" as const } };
          return observed({ status, trustBundle: bundle, current: await secretOf(fromPrevious, bundle) });
        },
        reissue: false,
        reason: "UpToDate",
        rotation: {},
      },
    ];
    for (const row of decisionRows) {
      it(row.name, async () => {
        const plan = planClientSecret(await row.observed(), NOW);
        expect(plan.ready).to.equal(true);
        if (!plan.ready) return;
        expect({ reissue: plan.decision.reissue, reason: plan.decision.reason, rotation: plan.rotation }).to.deep.equal({
          reissue: row.reissue,
          reason: row.reason,
          rotation: row.rotation,
        });
        expect(plan.ca).to.equal(ca);
      });
    }
  });

  describe("planSecretWrite (write, event, status)", () => {
    async function issuance(o: ClientSecretObserved): Promise<ClientSecretIssuance> {
      const plan = planClientSecret(o, NOW);
      if (!plan.ready) throw new Error(plan.condition.message);
      return plan;
    }

    it("a new certificate: written, one CertificateIssued event, Valid", async () => {
      const o = observed();
      const plan = await issuance(o);
      const data = await clientSecretData({ issued: current, trustBundlePem: ca.certPem });
      const result = planSecretWrite({ spec: o.spec, sdb: o.target.sdb, issuance: plan, issued: current, data }, NOW);
      const renewsAt = new Date(current.notAfter.getTime() - 30 * DAY).toISOString();
      expect(result.write).to.equal(true);
      expect(result.annotations).to.equal(undefined);
      expect(result.events).to.deep.equal([
        {
          type: "Normal",
          reason: "CertificateIssued",
          message:
            `issued client certificate CN=cast_app serial ${current.serialNumber} from the CA of SecureDatabase ${NS}/db, ` +
            `valid until ${current.notAfter.toISOString()}, in Secret app-client-tls (${plan.decision.reason}: ${plan.decision.message})`,
        },
      ]);
      expect(result.certificate.condition).to.deep.equal({
        type: "CertificateReady",
        status: "True",
        reason: "Valid",
        message: `CN=cast_app, serial ${current.serialNumber}, valid until ${current.notAfter.toISOString()}, renews at ${renewsAt}`,
      });
      expect(result.certificate.status).to.deep.equal({
        secretName: "app-client-tls",
        serialNumber: current.serialNumber,
        notBefore: current.notBefore.toISOString(),
        notAfter: current.notAfter.toISOString(),
        renewalTime: renewsAt,
        issuerFingerprintSHA256: ca.facts.fingerprintSha256,
        lastRotationToken: undefined,
      });
      expect(result.certificate.renewalTime).to.deep.equal(new Date(renewsAt));
    });

    it("the certificate kept and the Secret as it is: no write, no event", async () => {
      const secret = await secretOf(current, ca.certPem);
      const o = observed({ current: secret });
      const data = await clientSecretData({
        issued: current,
        trustBundlePem: ca.certPem,
        previous: Object.fromEntries(Object.entries(secret.data!).map(([k, v]) => [k, Buffer.from(v, "base64")])),
      });
      const result = planSecretWrite(
        { spec: o.spec, sdb: o.target.sdb, issuance: await issuance(o), issued: current, data, current: secret },
        NOW,
      );
      expect({ write: result.write, events: result.events }).to.deep.equal({ write: false, events: [] });
    });

    it("the certificate kept but the trust bundle changed: written, no event", async () => {
      const secret = await secretOf(current, ca.certPem);
      const bundle = buildTrustBundle([ca.certPem, previousCA.certPem]);
      const o = observed({ current: secret, trustBundle: bundle });
      const data = await clientSecretData({ issued: current, trustBundlePem: bundle });
      const result = planSecretWrite(
        { spec: o.spec, sdb: o.target.sdb, issuance: await issuance(o), issued: current, data, current: secret },
        NOW,
      );
      expect({ write: result.write, events: result.events }).to.deep.equal({ write: true, events: [] });
    });

    it("a rotation's certificate: the Secret carries the token it satisfies", async () => {
      const imc = imagingConnection("app", {}, { annotations: { [ROTATE_ANNOTATION]: "7" } });
      const o = observed({ imc });
      const data = await clientSecretData({ issued: current, trustBundlePem: ca.certPem });
      const result = planSecretWrite({ spec: o.spec, sdb: o.target.sdb, issuance: await issuance(o), issued: current, data }, NOW);
      expect(result.annotations).to.deep.equal({ [ROTATION_TOKEN_ANNOTATION]: "7" });
      expect(result.certificate.status.lastRotationToken).to.equal("7");
    });

    it("during an overlap: the issuer reported is the CA that signed the certificate", async () => {
      const bundle = buildTrustBundle([ca.certPem, previousCA.certPem]);
      const secret = await secretOf(fromPrevious, bundle);
      const o = observed({ status: { ...acknowledged(), caRotation: { phase: "Overlap" } }, trustBundle: bundle, current: secret });
      const data = await clientSecretData({ issued: fromPrevious, trustBundlePem: bundle });
      const result = planSecretWrite(
        { spec: o.spec, sdb: o.target.sdb, issuance: await issuance(o), issued: fromPrevious, data, current: secret },
        NOW,
      );
      expect(result.certificate.status.issuerFingerprintSHA256).to.equal(previousCA.facts.fingerprintSha256);
    });
  });
});

describe("planSecretClaim (whose Secret name is it?)", () => {
  const me = imagingConnection("app", {}, { created: "2026-11-02T00:00:00Z" });
  const secret = (labels?: Record<string, string>): SecretObject => ({
    metadata: { name: "app-client-tls", namespace: NS, ...(labels ? { labels } : {}) },
  });
  const older = imagingConnection("first", { secretName: "app-client-tls" }, { created: "2026-11-01T00:00:00Z" });
  const younger = imagingConnection("later", { secretName: "app-client-tls" }, { created: "2026-11-03T00:00:00Z" });
  const deleting = deleted(older);
  const rows: { name: string; existing?: SecretObject; neighbours: ReturnType<typeof imagingConnection>[]; claim?: string }[] = [
    { name: "nobody has it", neighbours: [me] },
    { name: "it is mine", existing: secret(managedLabels("ImagingConnection", "app")), neighbours: [me, older] },
    {
      name: "another connection wrote it",
      existing: secret(managedLabels("ImagingConnection", "first")),
      neighbours: [me, older],
      claim: "Secret app-client-tls is already written for ImagingConnection first; give this connection another spec.secretName",
    },
    {
      name: "someone else created it",
      existing: secret(),
      neighbours: [me],
      claim:
        "Secret app-client-tls exists and was not created by the operator; " +
        "delete it or choose another spec.secretName (it is never overwritten)",
    },
    {
      name: "not written yet, and an older connection wants it",
      neighbours: [younger, me, older],
      claim: "ImagingConnection first (older) also writes Secret app-client-tls; give this connection another spec.secretName",
    },
    { name: "not written yet, and only a younger connection wants it", neighbours: [younger, me] },
    { name: "not written yet, and the older one is being deleted", neighbours: [deleting, me] },
  ];
  for (const row of rows) {
    it(row.name, () => {
      expect(planSecretClaim(me, "app-client-tls", row.existing, row.neighbours)).to.equal(row.claim);
    });
  }
});
