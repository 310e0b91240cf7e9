import { expect } from "chai";
import { ownerLabelValue, OWNER_LABEL } from "../../../../src/api/types";
import type { ConfigMapObject } from "../../../../src/reconcilers/context";
import { planConfig, planServerConfig, type ConfigObserved } from "../../../../src/reconcilers/secure-database/config";
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
