import { expect } from "chai";
import { ownerLabelValue, OWNER_LABEL, type SecureDatabase } from "../../../../src/api/types";
import type { ConfigMapObject } from "../../../../src/reconcilers/context";
import { planConfig, planServerConfig, type ConfigObserved } from "../../../../src/reconcilers/secure-database/config";
import { passwordAccess } from "../../../../src/reconcilers/secure-database/password-access";
import { at, expectSubset, NOW, resolved } from "./fixtures";

const spec = resolved();
const ours = { [OWNER_LABEL]: ownerLabelValue("SecureDatabase", "imaging-db") };
const plain = { "postgresql.conf": "max_connections = 100\n", "pg_hba.conf": "local all all trust\n" };
const managed = (() => {
  const plan = planServerConfig(plain, "pg-config", spec);
  if (!plan.ok) throw new Error(plan.problem.message);
  return plan.data;
})();
const configMap = (data: Record<string, string> | undefined, labels?: Record<string, string>): ConfigMapObject => ({
  metadata: { name: "pg-config", namespace: "cast", resourceVersion: "42", ...(labels ? { labels } : {}) },
  ...(data ? { data } : {}),
});
const observed = (cm: ConfigMapObject | undefined, o: Partial<ConfigObserved> = {}): ConfigObserved => ({
  configMap: cm,
  spec,
  namespace: "cast",
  sdbName: "imaging-db",
  ...o,
});
const applied = { type: "ConfigApplied", status: "True", reason: "Applied" };

describe("planConfig (step 3: the managed blocks in the ConfigMap)", () => {
  const rows: { name: string; o: ConfigObserved; want: unknown }[] = [
    {
      name: "no ConfigMap: ConfigMapNotFound, looked at again in a minute",
      o: observed(undefined),
      want: {
        applied: false,
        outcome: {
          conditions: [
            {
              type: "ConfigApplied",
              status: "False",
              reason: "ConfigMapNotFound",
              message: "ConfigMap pg-config (spec.postgres.configMapName) does not exist in namespace cast",
            },
          ],
          events: [],
          requeueAt: at(60_000),
        },
      },
    },
    {
      name: "another SecureDatabase's ConfigMap: ConfigMapClaimed, nothing written",
      o: observed(configMap(plain, { [OWNER_LABEL]: ownerLabelValue("SecureDatabase", "other") })),
      want: { applied: false, outcome: { conditions: [{ status: "False", reason: "ConfigMapClaimed" }], requeueAt: at(60_000) } },
    },
    {
      name: "a key missing: ConfigKeyMissing",
      o: observed(configMap({ "postgresql.conf": "" })),
      want: { applied: false, outcome: { conditions: [{ status: "False", reason: "ConfigKeyMissing" }] } },
    },
    {
      name: "a ConfigMap of the admin's: blocks written, ConfigMap claimed, ConfigApplied event",
      o: observed(configMap(plain)),
      want: {
        applied: true,
        repaired: false,
        patch: { metadata: { resourceVersion: "42", labels: ours }, data: managed },
        outcome: { conditions: [applied], events: [{ type: "Normal", reason: "ConfigApplied" }] },
      },
    },
    {
      name: "ours, as we left it: nothing to write, its resourceVersion reported",
      o: observed(configMap(managed, ours)),
      want: { applied: true, repaired: false, patch: undefined, resourceVersion: "42", outcome: { conditions: [applied], events: [] } },
    },
    {
      name: "ours, the blocks removed by hand: written back, repaired",
      o: observed(configMap(plain, ours)),
      want: { applied: true, repaired: true, patch: { data: managed }, outcome: { events: [{ reason: "ConfigApplied" }] } },
    },
    {
      name: "the blocks already there but the claim lost: only the label is written, no event",
      o: observed(configMap(managed)),
      want: { applied: true, repaired: false, patch: { metadata: { labels: ours }, data: managed }, outcome: { events: [] } },
    },
  ];
  for (const row of rows) it(row.name, () => expectSubset(planConfig(row.o, NOW), row.want));

  it("the rendered hash is that of both files as written: it changes with what the blocks say", () => {
    const hash = (o: Partial<ConfigObserved>) => {
      const plan = planConfig(observed(configMap(plain), o), NOW);
      return plan.applied ? plan.renderedHash : undefined;
    };
    expect(hash({})).to.be.a("string").and.to.equal(hash({}));
    expect(hash({ spec: resolved({ postgres: { configMapName: "pg-config", minTLSVersion: "TLSv1.3" } }) })).to.not.equal(hash({}));
  });
});

describe("planConfig with password rules (clientCertificate none)", () => {
  const CERT = { users: ["postgres", "operator"], databases: ["all"] };
  const KEYCLOAK = { clientCertificate: "none" as const, users: ["keycloak_user"], databases: ["keycloak_db"], addresses: ["10.42.0.0/16"] };
  const withRules = (rules: NonNullable<SecureDatabase["spec"]["postgres"]["hba"]>["rules"]) =>
    resolved({ postgres: { configMapName: "pg-config", hba: { rules } } });
  /** The ConfigMap as the operator leaves it for `s`: ours, blocks written. */
  const writtenFor = (s: ReturnType<typeof resolved>) => {
    const plan = planServerConfig(plain, "pg-config", s);
    if (!plan.ok) throw new Error(plan.problem.message);
    return configMap(plan.data, ours);
  };
  const plan = (cm: ConfigMapObject, s: ReturnType<typeof resolved>) => planConfig(observed(cm, { spec: s }), NOW);
  const reasons = (p: ReturnType<typeof planConfig>) => p.outcome.events.map((e) => `${e.type} ${e.reason}`);
  const eventOf = (p: ReturnType<typeof planConfig>, reason: string) => p.outcome.events.find((e) => e.reason === reason);

  const secured = withRules([CERT, KEYCLOAK]);

  it("writes the password rule after the certificate rule and says so in the condition and the events", () => {
    const p = plan(configMap(plain), secured);
    expect(p.applied).to.equal(true);
    if (!p.applied || !p.patch) throw new Error("expected a write");
    const hba = p.patch.data["pg_hba.conf"]!;
    expect(hba).to.contain("hostssl all postgres,operator 0.0.0.0/0 cert clientcert=verify-full\n");
    expect(hba).to.contain("hostssl keycloak_db keycloak_user 10.42.0.0/16 scram-sha-256\n");
    expect(hba.indexOf("cert clientcert")).to.be.lessThan(hba.indexOf("scram-sha-256"));
    expect(hba).to.contain("hostnossl all,replication all 0.0.0.0/0 reject");
    const [condition] = p.outcome.conditions;
    expect(condition).to.include({ type: "ConfigApplied", status: "True", reason: "Applied" });
    expect(condition!.message).to.equal(
      "postgresql.conf enables TLS with the operator's files; pg_hba.conf admits TCP clients only over TLS, with a client " +
        "certificate except for 1 password rule (clientCertificate none, status.passwordAccess), whose roles log in with their " +
        "password: spec.postgres.hba.rules[1]: user keycloak_user on database keycloak_db from 10.42.0.0/16",
    );
    expect(reasons(p)).to.deep.equal(["Normal ConfigApplied", "Warning PasswordOverTLS"]);
    expect(eventOf(p, "ConfigApplied")!.message).to.contain("(TLS only; a client certificate except for 1 password rule (status.passwordAccess))");
    expect(eventOf(p, "PasswordOverTLS")!.message).to.equal(
      "pg_hba.conf now lets these roles in with a password over TLS, without a client certificate: " +
        "spec.postgres.hba.rules[1]: user keycloak_user on database keycloak_db from 10.42.0.0/16",
    );
  });

  it("says nothing again while the block stays as it is, but keeps the condition's words", () => {
    const p = plan(writtenFor(secured), secured);
    expectSubset(p, { applied: true, patch: undefined, outcome: { events: [] } });
    expect(p.outcome.conditions[0]!.message).to.contain("except for 1 password rule");
  });

  it("another certificate rule changes the block but not the password records: no PasswordOverTLS", () => {
    const more = withRules([CERT, KEYCLOAK, { users: ["analysis"], databases: ["analysis"] }]);
    expect(reasons(plan(writtenFor(secured), more))).to.deep.equal(["Normal ConfigApplied"]);
  });

  it("another address of the password rule is a new set of password records: PasswordOverTLS again", () => {
    const wider = withRules([CERT, { ...KEYCLOAK, addresses: ["10.42.0.0/16", "fd00::/8"] }]);
    const p = plan(writtenFor(secured), wider);
    expect(reasons(p)).to.deep.equal(["Normal ConfigApplied", "Warning PasswordOverTLS"]);
    expect(eventOf(p, "PasswordOverTLS")!.message).to.contain("from 10.42.0.0/16, fd00::/8");
  });

  it("the last password rule removed: a Normal PasswordOverTLS, and the certificate-only words again", () => {
    const p = plan(writtenFor(secured), withRules([CERT]));
    expect(reasons(p)).to.deep.equal(["Normal ConfigApplied", "Normal PasswordOverTLS"]);
    expect(eventOf(p, "PasswordOverTLS")!.message).to.contain("no longer admits any role by password");
    expect(p.outcome.conditions[0]!.message).to.equal(
      "postgresql.conf enables TLS with the operator's files; pg_hba.conf admits TCP clients only with a client certificate",
    );
  });

  it("the block removed by hand: written back with its events", () => {
    const cm = writtenFor(secured);
    const p = plan({ ...cm, data: plain }, secured);
    expectSubset(p, { applied: true, repaired: true });
    expect(reasons(p)).to.deep.equal(["Normal ConfigApplied", "Warning PasswordOverTLS"]);
  });

  it("overlapping rules: PasswordRuleShadowed when the block changes, and the condition names them", () => {
    const shadowed = withRules([{ users: ["all"], databases: ["all"], addresses: ["0.0.0.0/0"] }, KEYCLOAK]);
    const p = plan(configMap(plain), shadowed);
    expect(reasons(p)).to.deep.equal(["Normal ConfigApplied", "Warning PasswordOverTLS", "Warning PasswordRuleShadowed"]);
    const message =
      "spec.postgres.hba.rules[1] (password) never applies: spec.postgres.hba.rules[0] before it matches every user, database and " +
      "address it names first";
    expect(eventOf(p, "PasswordRuleShadowed")!.message).to.equal(message);
    expect(p.outcome.conditions[0]!.message).to.contain(`. Overlapping rules: ${message}`);
    expect(plan(writtenFor(shadowed), shadowed).outcome.events).to.deep.equal([]);
  });

  it("a certificate rule after the password rule naming its user: PasswordRuleShadowed says the certificate rule never applies there", () => {
    const later = withRules([CERT, KEYCLOAK, { users: ["keycloak_user"], databases: ["keycloak_db"] }]);
    const p = plan(writtenFor(secured), later);
    expect(reasons(p)).to.deep.equal(["Normal ConfigApplied", "Warning PasswordRuleShadowed"]);
    expect(eventOf(p, "PasswordRuleShadowed")!.message).to.match(
      /^spec\.postgres\.hba\.rules\[2\] \(certificate\) never applies for user keycloak_user on database keycloak_db from 10\.42\.0\.0\/16: spec\.postgres\.hba\.rules\[1\] \(password\)/,
    );
  });

  it("status.passwordAccess lists the password rules by index, and is absent without one", () => {
    expect(passwordAccess(secured.postgres.hba.rules)).to.deep.equal([
      { rule: 1, users: ["keycloak_user"], databases: ["keycloak_db"], addresses: ["10.42.0.0/16"] },
    ]);
    expect(passwordAccess(withRules([CERT]).postgres.hba.rules)).to.equal(undefined);
  });

  it("bounds the condition message whatever the rules say", () => {
    const users = Array.from({ length: 32 }, (_, i) => `${"u".repeat(60)}${String(i).padStart(2, "0")}`);
    const databases = Array.from({ length: 32 }, (_, i) => `${"d".repeat(60)}${String(i).padStart(2, "0")}`);
    const addresses = Array.from({ length: 32 }, (_, i) => `fd00:${i.toString(16)}::/32`);
    const rules = Array.from({ length: 32 }, () => ({ clientCertificate: "none" as const, users, databases, addresses }));
    const p = plan(configMap(plain), withRules(rules));
    expect(p.outcome.conditions[0]!.message.length).to.be.at.most(32768);
    expect(p.outcome.conditions[0]!.message).to.contain("… (see status.passwordAccess). Overlapping rules: spec.postgres.hba.rules[1] (password) never applies");
  });
});
