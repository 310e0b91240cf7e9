import { expect } from "chai";
import { managedLabels } from "../../../../src/api/types";
import type { SecretObject } from "../../../../src/kube/secrets";
import { generateCA, parseCRL, type CertificateAuthority } from "../../../../src/pki";
import type { RotationState } from "../../../../src/reconcilers/secure-database/ca-rotation-step";
import type { RevocationPlan } from "../../../../src/reconcilers/secure-database/revocations";
import {
  issueServerMaterial,
  planSecretClaim,
  planServerCertificate,
  planServerSecret,
  type ServerSecretObserved,
} from "../../../../src/reconcilers/secure-database/server-secret";
import { at, expectSubset, NOW, resolved } from "./fixtures";

const secret = (labels?: Record<string, string>): SecretObject => ({
  metadata: { name: "imaging-db-server-tls", namespace: "cast", ...(labels ? { labels } : {}) },
});

describe("planSecretClaim (step 2: never over a Secret that is not ours)", () => {
  const rows: { name: string; existing: SecretObject | undefined; want: unknown }[] = [
    { name: "no Secret yet: ours to write", existing: undefined, want: undefined },
    { name: "ours: ours to write", existing: secret(managedLabels("SecureDatabase", "imaging-db")), want: undefined },
    {
      name: "another database's: SecretConflict naming it",
      existing: secret(managedLabels("SecureDatabase", "other")),
      want: {
        conditions: [
          {
            type: "ServerCertificateReady",
            status: "False",
            reason: "SecretConflict",
            message:
              "Secret imaging-db-server-tls (spec.serverCertificate.secretName) is already written for SecureDatabase other; " +
              "give this database another spec.serverCertificate.secretName",
          },
        ],
        events: [{ type: "Warning", reason: "SecretConflict" }],
        requeueAt: at(60_000),
      },
    },
    {
      name: "someone else's: SecretConflict, never overwritten",
      existing: secret(),
      want: {
        conditions: [
          {
            reason: "SecretConflict",
            message:
              "Secret imaging-db-server-tls (spec.serverCertificate.secretName) exists and was not created by the operator; " +
              "delete it or choose another spec.serverCertificate.secretName (it is never overwritten)",
          },
        ],
        requeueAt: at(60_000),
      },
    },
  ];
  for (const row of rows) it(
    row.name,
    () => expectSubset(planSecretClaim(row.existing, "imaging-db", "imaging-db-server-tls", NOW), row.want),
  );
});

describe("planServerCertificate → issueServerMaterial → planServerSecret (step 2: the server's files)", () => {
  const spec = resolved();
  let ca: CertificateAuthority;
  let rotation: RotationState;
  const none: RevocationPlan = { entries: [], unresolved: [], ledgerChanges: new Map() };
  const observed = (currentData: Record<string, Buffer>, revocations = none): ServerSecretObserved => ({
    spec,
    rotation,
    trustBundle: ca.certPem,
    currentData,
    manual: {},
    revocations,
  });
  const pass = async (o: ServerSecretObserved, now = NOW) => {
    const decisions = planServerCertificate(o, now);
    return { decisions, plan: planServerSecret(o, decisions, await issueServerMaterial(o, decisions, now), now) };
  };

  before(async () => {
    ca = await generateCA({ commonName: "imaging-db CA", duration: 3650 * 24 * 3600_000, now: at(-3_600_000) });
    rotation = {
      phase: "Idle",
      signing: ca,
      trusted: [{ certPem: ca.certPem, chainPems: [], facts: ca.facts, signer: ca }],
      acceptedIssuers: [],
    };
  });

  it("an empty Secret: a certificate and a CRL are issued; it renews at two thirds, the CRL is refreshed before that", async () => {
    const { decisions, plan } = await pass(observed({}));
    expect(decisions.renewal).to.include({ reissue: true, reason: "MissingData" });
    expect(decisions.crls.map((c) => c.decision.reason)).to.deep.equal(["MissingCRL"]);
    expect(Object.keys(plan.data).sort()).to.deep.equal(["ca.crl", "ca.crt", "tls.crt", "tls.key"]);
    const renewsAt = at(60 * 24 * 3600_000);
    expectSubset(plan, {
      crlNumber: 1,
      revokedSerials: [],
      status: {
        secretName: "imaging-db-server-tls",
        serialNumber: plan.issued.serialNumber,
        dnsNames: ["db.example.com"],
        renewalTime: renewsAt.toISOString(),
      },
      outcome: {
        conditions: [{ type: "ServerCertificateReady", status: "True", reason: "Valid" }],
        events: [{ type: "Normal", reason: "ServerCertificateIssued" }],
        // The CRL lives 7 days and is refreshed with a third of that left: before the certificate's renewal.
        requeueAt: at((7 * 24 * 3600_000 * 2) / 3),
      },
    });
    const issued = /^issued server certificate serial [0-9a-f]+ for db\.example\.com, valid until .* \(MissingData: /;
    expect(plan.outcome.events[0]!.message).to.match(issued);
  });

  it("a pass over what it wrote: nothing issued, the same bytes, no event", async () => {
    const first = (await pass(observed({}))).plan;
    const { decisions, plan } = await pass(observed(first.data), at(60_000));
    expect(decisions.renewal.reissue).to.equal(false);
    expect(decisions.crls.map((c) => c.decision.reissue)).to.deep.equal([false]);
    expect(plan.data).to.deep.equal(first.data);
    expect(plan.outcome.events).to.deep.equal([]);
    expect(plan.status.serialNumber).to.equal(first.status.serialNumber);
  });

  it("a revocation: the CRL is signed again with the next number and says what it lists; unresolved entries are warned about", async () => {
    const first = (await pass(observed({}))).plan;
    const revocations: RevocationPlan = {
      entries: [{ serialNumber: "0abc", reason: "keyCompromise", revocationDate: at(-3_600_000), source: "serial" }],
      unresolved: ["ImagingConnection cast/gone has no certificate the operator can see"],
      ledgerChanges: new Map(),
    };
    const { decisions, plan } = await pass(observed(first.data, revocations), at(60_000));
    expect(decisions.renewal.reissue).to.equal(false);
    expect(decisions.crls.map((c) => c.decision.reason)).to.deep.equal(["RevocationsChanged"]);
    expect(parseCRL(plan.data["ca.crl"]!).revoked.map((r) => r.serialNumber)).to.deep.equal(["0abc"]);
    expectSubset(plan, {
      crlNumber: 2,
      revokedSerials: ["0abc"],
      outcome: {
        events: [
          { type: "Normal", reason: "CRLUpdated", message: "CRL 2 lists 1 revoked certificate(s): 0abc (serial, keyCompromise)" },
          {
            type: "Warning",
            reason: "RevocationUnresolved",
            message: "ImagingConnection cast/gone has no certificate the operator can see",
          },
        ],
      },
    });
  });

  it("every CRL signed again carries each serial's first revocation date, not the time of signing", async () => {
    const first = (await pass(observed({}))).plan;
    const since = new Date("2026-11-01T08:30:00Z");
    const revocations: RevocationPlan = {
      entries: [{ serialNumber: "0abc", reason: "cessationOfOperation", revocationDate: since, source: "ImagingConnection cast/gone" }],
      unresolved: [],
      ledgerChanges: new Map(),
    };
    const second = (await pass(observed(first.data, revocations), at(60_000))).plan;
    // Six days on the CRL is due for its refresh: signed again, number + 1, the same date.
    const { decisions, plan } = await pass(observed(second.data, revocations), at(6 * 24 * 3600_000));
    expect(decisions.crls.map((c) => c.decision.reason)).to.deep.equal(["CRLRefreshDue"]);
    for (const p of [second, plan]) {
      expect(parseCRL(p.data["ca.crl"]!).revoked).to.deep.equal([{ serialNumber: "0abc", revocationDate: since, reason: "cessationOfOperation" }]);
    }
    expect(plan.crlNumber).to.equal(3);
  });

  it("the CRL number never goes backwards: a lost ca.crl continues after status.trust.crlNumber", async () => {
    const lost = { ...observed({}), lastCrlNumber: 41 };
    const { decisions, plan } = await pass(lost);
    expect(decisions.crls.map((c) => [c.decision.reason, c.decision.crlNumber])).to.deep.equal([["MissingCRL", 42]]);
    expect(plan.crlNumber).to.equal(42);
    // An unreadable one too; and a status behind the file does not pull the number down.
    const unreadable = { ...observed({ ...plan.data, "ca.crl": Buffer.from("-----BEGIN X509 CRL-----\n!!\n-----END X509 CRL-----\n") }), lastCrlNumber: 42 };
    expect(planServerCertificate(unreadable, at(60_000)).crls[0]!.decision).to.include({ reason: "UnparsableCRL", crlNumber: 43 });
    const revocations: RevocationPlan = { entries: [{ serialNumber: "0a", reason: "unspecified", revocationDate: NOW, source: "serial" }], unresolved: [], ledgerChanges: new Map() };
    const behind = { ...observed(plan.data, revocations), lastCrlNumber: 7 };
    expect(planServerCertificate(behind, at(60_000)).crls[0]!.decision).to.include({ reason: "RevocationsChanged", crlNumber: 43 });
  });

  it("a rotate request: re-issued, and the Secret carries the token it satisfies", async () => {
    const first = (await pass(observed({}))).plan;
    const o = { ...observed(first.data), manual: { rotationToken: "2026-11-23" } };
    const { decisions, plan } = await pass(o, at(60_000));
    expect(decisions.renewal).to.include({ reissue: true, reason: "ManualRotationRequested" });
    expect(plan.annotations).to.deep.equal({ "mtls.imaging.dev/rotation-token": "2026-11-23" });
    expect(plan.status.lastRotationToken).to.equal("2026-11-23");
    expect(plan.status.serialNumber).to.not.equal(first.status.serialNumber);
  });
});
