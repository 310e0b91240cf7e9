import { expect } from "chai";
import { generateCA, type CertificateAuthority } from "../../../../src/pki";
import { generatedCAOutcome, keyNamespaceUnavailable, planCA } from "../../../../src/reconcilers/secure-database/ca";
import type { CARead } from "../../../../src/reconcilers/database-ca";
import { at, expectSubset, NOW } from "./fixtures";

const HOME = { namespace: "imaging-db-mtls-operator", name: "cast.imaging-db-ca" };

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
      read: () => ({ state: "ready", ca, provided: true, keySecret: HOME }),
      want: () => ({
        generate: false,
        ca,
        outcome: {
          conditions: [
            {
              type: "CAReady",
              status: "True",
              reason: "CAProvided",
              message: `signing with the CA brought in Secret imaging-db-mtls-operator/cast.imaging-db-ca (serial ${serial()})`,
            },
          ],
          events: [],
          requeueAt: undefined,
        },
      }),
    },
    {
      name: "the generated CA: CAGenerated",
      read: () => ({ state: "ready", ca, provided: false, keySecret: HOME }),
      want: () => ({
        generate: false,
        outcome: {
          conditions: [
            {
              status: "True",
              reason: "CAGenerated",
              message: `signing with the generated CA in Secret imaging-db-mtls-operator/cast.imaging-db-ca (serial ${serial()})`,
            },
          ],
        },
      }),
    },
    {
      name: "a brought CA in the database's namespace: it signs, and the message says who can read its key and where it belongs",
      read: () => ({ state: "ready", ca, provided: true, keySecret: { namespace: "cast", name: "corp-ca" } }),
      want: () => ({
        generate: false,
        keySecret: { namespace: "cast", name: "corp-ca" },
        outcome: {
          conditions: [
            {
              reason: "CAProvided",
              message:
                `signing with the CA brought in Secret cast/corp-ca (serial ${serial()}); its key is readable by whoever may read ` +
                "Secrets in namespace cast: a cluster admin can move it to imaging-db-mtls-operator/cast.imaging-db-ca, out of tenants' reach",
            },
          ],
        },
      }),
    },
  ];
  for (const row of rows) it(row.name, () => expectSubset(planCA(row.read(), HOME, NOW), row.want()));

  it("a generated CA: CAReady True and a CAGenerated event naming where its key is kept", () => {
    const outcome = generatedCAOutcome(ca, HOME);
    const until = ca.facts.notAfter.toISOString();
    expectSubset(outcome, {
      conditions: [{ type: "CAReady", status: "True", reason: "CAGenerated" }],
      events: [
        {
          type: "Normal",
          reason: "CAGenerated",
          message: `generated CA ${ca.facts.subject} (serial ${serial()}, valid until ${until}) in Secret imaging-db-mtls-operator/cast.imaging-db-ca`,
        },
      ],
    });
  });

  it("a key namespace that is missing or closed to the operator: CAReady False KeyNamespaceUnavailable, nothing generated", () => {
    const missing = keyNamespaceUnavailable("keys", true, NOW);
    expectSubset(missing, { conditions: [{ type: "CAReady", status: "False", reason: "KeyNamespaceUnavailable" }], requeueAt: at(60_000) });
    expect(missing.conditions[0]!.message).to.contain("namespace keys").and.contain("it does not exist");
    expect(keyNamespaceUnavailable("keys", false, NOW).conditions[0]!.message).to.contain("may not create Secrets there");
  });
});
