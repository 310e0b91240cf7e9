import { expect } from "chai";
import { ownerLabelValue, OWNER_LABEL } from "../../../../src/api/types";
import type { ConfigMapObject, SecureDatabaseObject } from "../../../../src/reconcilers/context";
import { BEGIN_MARKER } from "../../../../src/postgres/managed-block";
import { planServerConfig } from "../../../../src/reconcilers/secure-database/config";
import { planConfigRelease, workloadToRelease } from "../../../../src/reconcilers/secure-database/finalize";
import { TerminalError } from "../../../../src/runtime/errors";
import { database, expectSubset, resolved } from "./fixtures";

const ours = { [OWNER_LABEL]: ownerLabelValue("SecureDatabase", "imaging-db") };
const before = { "postgresql.conf": "max_connections = 100\n", "pg_hba.conf": "local all all trust\n" };
const blocksIn = (data: Record<string, string>, spec = resolved()) => {
  const plan = planServerConfig(data, "pg-config", spec);
  if (!plan.ok) throw new Error(plan.problem.message);
  return plan.data;
};
const configMap = (data: Record<string, string>, labels?: Record<string, string>): ConfigMapObject => ({
  metadata: { name: "pg-config", namespace: "cast", resourceVersion: "42", ...(labels ? { labels } : {}) },
  data,
});

describe("planConfigRelease (deletion: the ConfigMap as it was)", () => {
  const custom = { configMapName: "pg-config", postgresqlConfKey: "custom.conf", hbaConfKey: "custom_hba.conf" };
  const customBefore = { "custom.conf": "port = 5432\n", "custom_hba.conf": "local all all peer\n" };
  const rows: { name: string; spec?: Parameters<typeof database>[0]; cm: ConfigMapObject | undefined; want: unknown }[] = [
    { name: "no ConfigMap: nothing to take back", cm: undefined, want: { action: "none" } },
    { name: "a ConfigMap that is not ours: left alone", cm: configMap(blocksIn(before)), want: { action: "none" } },
    {
      name: "ours: the blocks and the claim go, guarded by the resourceVersion read",
      cm: configMap(blocksIn(before), ours),
      want: {
        action: "patch",
        patch: { metadata: { resourceVersion: "42", labels: { [OWNER_LABEL]: null } }, data: before },
        event: { type: "Normal", reason: "ConfigRestored", message: "removed the managed blocks from ConfigMap pg-config" },
      },
    },
    {
      name: "the keys are the spec's (not postgresql.conf / pg_hba.conf) when it names others",
      spec: { postgres: custom },
      cm: configMap(blocksIn(customBefore, resolved({ postgres: custom })), ours),
      want: { action: "patch", patch: { data: customBefore } },
    },
    {
      name: "a block broken by hand: refused with a warning, the finalizer stays",
      cm: configMap({ ...before, "pg_hba.conf": `${BEGIN_MARKER}\nhostssl all all 0.0.0.0/0 cert\n` }, ours),
      want: { action: "refuse", event: { type: "Warning", reason: "ManagedBlockCorrupt" } },
    },
  ];
  for (const row of rows) it(row.name, () => expectSubset(planConfigRelease(database(row.spec), row.cm), row.want));

  it("a refusal is a TerminalError: retrying cannot fix a broken block", () => {
    const plan = planConfigRelease(database(), configMap({ ...before, "pg_hba.conf": "# END mtls.imaging.dev managed block\n" }, ours));
    expect(plan.action === "refuse" && plan.error).to.be.instanceOf(TerminalError).and.to.include({ reason: "ManagedBlockCorrupt" });
  });
});

describe("workloadToRelease (deletion: the server mount)", () => {
  const ref = { kind: "StatefulSet" as const, name: "pg" };
  const me = database({ workloadRef: ref });
  const deleting = (o: SecureDatabaseObject) =>
    ({ ...o, metadata: { ...o.metadata, deletionTimestamp: "2026-11-23T12:00:00Z" } }) as unknown as SecureDatabaseObject;
  const other = database({ workloadRef: ref }, undefined, "other");
  const rows: { name: string; sdb: ReturnType<typeof database>; others: ReturnType<typeof database>[]; want: unknown }[] = [
    { name: "no workloadRef: nothing to unmount", sdb: database(), others: [], want: undefined },
    { name: "the only database naming it: unmount", sdb: me, others: [me], want: ref },
    { name: "another live database names it too: leave it (one field manager for both)", sdb: me, others: [me, other], want: undefined },
    { name: "the other one is being deleted too: unmount", sdb: me, others: [me, deleting(other)], want: ref },
    {
      name: "another database names another workload: unmount",
      sdb: me,
      others: [database({ workloadRef: { kind: "Deployment", name: "pg" } }, undefined, "other")],
      want: ref,
    },
  ];
  for (const row of rows) it(row.name, () => expect(workloadToRelease(row.sdb, row.others)).to.deep.equal(row.want));
});
