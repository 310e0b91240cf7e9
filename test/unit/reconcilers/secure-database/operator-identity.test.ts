import { expect } from "chai";
import { managedLabels } from "../../../../src/api/types";
import { generateCA, issueClientCertificate } from "../../../../src/pki";
import {
  desiredOperatorIdentity,
  identityToDrop,
  needsOperatorIdentity,
  probeOptions,
} from "../../../../src/reconcilers/secure-database/operator-identity";
import { NOW, resolved } from "./fixtures";

describe("the operator's identity (step 2: only while a SQL reload or the live check needs it)", () => {
  const rows: { name: string; spec: ReturnType<typeof resolved>; needed: boolean }[] = [
    { name: "SQL reload and verification (the defaults)", spec: resolved(), needed: true },
    { name: "SQL reload, no verification", spec: resolved({ verification: { enabled: false } }), needed: true },
    { name: "rollout restart, verification", spec: resolved({ reload: { strategy: "RolloutRestart" } }), needed: true },
    {
      name: "no reload by the operator, no verification",
      spec: resolved({ reload: { strategy: "None" }, verification: { enabled: false } }),
      needed: false,
    },
  ];
  for (const row of rows) {
    it(`${row.name}: ${row.needed ? "needed" : "not needed"}`, () => expect(needsOperatorIdentity(row.spec)).to.equal(row.needed));
  }

  const secret = (labels?: Record<string, string>) => ({
    metadata: { name: "imaging-db-operator-client-tls", ...(labels ? { labels } : {}) },
  });
  const drops: { name: string; current: ReturnType<typeof secret> | undefined; drop: boolean }[] = [
    { name: "none there", current: undefined, drop: false },
    { name: "ours", current: secret(managedLabels("SecureDatabase", "imaging-db")), drop: true },
    { name: "another database's", current: secret(managedLabels("SecureDatabase", "other")), drop: false },
    { name: "someone else's", current: secret(), drop: false },
  ];
  for (const row of drops) {
    it(`an identity not needed, Secret ${row.name}: ${row.drop ? "deleted" : "left"}`, () => {
      expect(identityToDrop(row.current, "imaging-db")).to.equal(row.drop);
    });
  }

  it("is a client certificate for the admin user with the server certificate's key and lifetime, and logs in at the endpoint", async () => {
    const spec = resolved({ reload: { adminUser: "mtls_admin" }, verification: { endpoint: "10.0.0.5:6432" } });
    const ca = await generateCA({ commonName: "imaging-db CA", duration: 365 * 24 * 3600_000, now: NOW });
    expect(desiredOperatorIdentity(spec, ca, [])).to.deep.include({
      kind: "client",
      user: "mtls_admin",
      duration: spec.serverCertificate.durationMs,
      renewBefore: spec.serverCertificate.renewBeforeMs,
      issuer: ca,
    });
    const identity = await issueClientCertificate(ca, { user: "mtls_admin", duration: 3600_000, now: NOW });
    expect(probeOptions(spec, ca.certPem, identity)).to.deep.include({
      host: "10.0.0.5",
      port: 6432,
      user: "mtls_admin",
      database: "postgres",
      ca: ca.certPem,
      cert: identity.chainPem,
      key: identity.keyPkcs8Pem,
      timeoutMs: 10_000,
    });
  });
});
