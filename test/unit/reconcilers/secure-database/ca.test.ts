import { expect } from "chai";
import { generateCA, type CertificateAuthority } from "../../../../src/pki";
import { planCA, planGeneratedCA } from "../../../../src/reconcilers/secure-database/ca";
import type { CARead } from "../../../../src/reconcilers/database-ca";
import { at, database, expectSubset, NOW } from "./fixtures";

describe("planCA (step 1: the CA that signs)", () => {
  let ca: CertificateAuthority;
  const serial = () => ca.facts.serialNumber;
  before(async () => {
    ca = await generateCA({ commonName: "imaging-db CA", duration: 365 * 24 * 3600_000, now: NOW });
  });

  const rows: { name: string; read: () => CARead; want: () => unknown }[] = [
    { name: "a generated CA that does not exist yet: generate it", read: () => ({ state: "absent" }), want: () => ({ generate: true }) },
    {
      name: "a problem with the CA Secret: CAReady False with its reason, looked at again in a minute",
      read: () => ({ state: "problem", reason: "CASecretNotFound", message: "Secret my-ca does not exist" }),
      want: () => ({
        generate: false,
        ca: undefined,
        outcome: {
          conditions: [{ type: "CAReady", status: "False", reason: "CASecretNotFound", message: "Secret my-ca does not exist" }],
          events: [],
          requeueAt: at(60_000),
        },
      }),
    },
    {
      name: "a brought CA: CAProvided",
      read: () => ({ state: "ready", ca, provided: true }),
      want: () => ({
        generate: false,
        ca,
        outcome: {
          conditions: [
            {
              type: "CAReady",
              status: "True",
              reason: "CAProvided",
              message: `signing with the CA brought in Secret imaging-db-ca (serial ${serial()})`,
            },
          ],
          events: [],
          requeueAt: undefined,
        },
      }),
    },
    {
      name: "the generated CA: CAGenerated",
      read: () => ({ state: "ready", ca, provided: false }),
      want: () => ({
        generate: false,
        outcome: {
          conditions: [
            {
              status: "True",
              reason: "CAGenerated",
              message: `signing with the generated CA in Secret imaging-db-ca (serial ${serial()})`,
            },
          ],
        },
      }),
    },
  ];
  for (const row of rows) it(row.name, () => expectSubset(planCA(row.read(), "imaging-db-ca", NOW), row.want()));

  it("a generated CA goes into a kubernetes.io/tls Secret owned by the database, with a CAGenerated event", () => {
    const { secret, outcome } = planGeneratedCA(database(), "imaging-db-ca", ca);
    expectSubset(secret, {
      type: "kubernetes.io/tls",
      metadata: {
        name: "imaging-db-ca",
        namespace: "cast",
        labels: { "mtls.imaging.dev/owner": "SecureDatabase.imaging-db" },
        ownerReferences: [{ kind: "SecureDatabase", name: "imaging-db", uid: "uid-imaging-db", controller: true }],
      },
    });
    expect(Object.keys(secret.data ?? {}).sort()).to.deep.equal(["ca.crt", "tls.crt", "tls.key"]);
    expect(secret.metadata.annotations).to.equal(undefined);
    const until = ca.facts.notAfter.toISOString();
    expectSubset(outcome, {
      conditions: [{ type: "CAReady", status: "True", reason: "CAGenerated" }],
      events: [
        {
          type: "Normal",
          reason: "CAGenerated",
          message: `generated CA ${ca.facts.subject} (serial ${serial()}, valid until ${until}) in Secret imaging-db-ca`,
        },
      ],
    });
  });
});
