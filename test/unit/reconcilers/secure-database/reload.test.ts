import { expect } from "chai";
import type { SecureDatabaseStatus } from "../../../../src/api/types";
import type { ReloadResult } from "../../../../src/postgres/probe";
import { planReload, planReloadResult, type ReloadObserved } from "../../../../src/reconcilers/secure-database/reload";
import { TerminalError } from "../../../../src/runtime/errors";
import { at, expectSubset, NOW, resolved } from "./fixtures";

const sql = resolved();
const loaded: SecureDatabaseStatus = {
  reload: { strategy: "SQL", appliedHash: "h1", lastReloadTime: at(-3_600_000).toISOString(), message: "pg_reload_conf() as postgres at …" },
  conditions: [{ type: "Reloaded", status: "True", reason: "Reloaded", message: "pg_reload_conf() as postgres at …", lastTransitionTime: at(-3_600_000).toISOString() }],
};
const observed = (o: Partial<ReloadObserved> = {}): ReloadObserved => ({
  spec: sql,
  status: loaded,
  desiredHash: "h1",
  lastRepeatedReload: undefined,
  canLogIn: true,
  ...o,
});

describe("planReload (step 5: what to load)", () => {
  const rows: { name: string; o: ReloadObserved; want: unknown }[] = [
    {
      name: "nothing changed: keeps saying how the files got loaded, so a quiet pass writes nothing",
      o: observed(),
      want: { action: "report", outcome: { conditions: [{ type: "Reloaded", status: "True", reason: "Reloaded", message: "pg_reload_conf() as postgres at …" }], events: [] } },
    },
    {
      name: "nothing loaded yet and nothing to do: UpToDate with the stored message",
      o: observed({ status: { reload: { appliedHash: "h1", message: "m" } } }),
      want: { action: "report", outcome: { conditions: [{ type: "Reloaded", status: "True", reason: "UpToDate", message: "m" }], events: [] } },
    },
    {
      name: "the server still serves stale files, reloaded a moment ago: WaitingForFiles",
      o: observed({ status: { ...loaded, reload: { ...loaded.reload, lastReloadTime: at(-1000).toISOString() }, verification: { matchesCurrent: false } } }),
      want: {
        action: "report",
        outcome: { conditions: [{ type: "Reloaded", status: "True", reason: "WaitingForFiles", message: "pg_reload_conf() as postgres at …" }], events: [] },
      },
    },
    {
      name: "new material, SQL: reload",
      o: observed({ desiredHash: "h2" }),
      want: { action: "reload", why: "MaterialChanged" },
    },
    {
      name: "inside the settle window, due: reload again without a status write",
      o: observed({ status: { ...loaded, reload: { ...loaded.reload, lastReloadTime: at(-5000).toISOString() } } }),
      want: {
        action: "repeat",
        outcome: { conditions: [{ type: "Reloaded", status: "True", reason: "Reloaded", message: "pg_reload_conf() as postgres at …" }], events: [], requeueAt: at(3000) },
      },
    },
    {
      name: "inside the settle window, repeated a second ago: look again when the next one is due",
      o: observed({ status: { ...loaded, reload: { ...loaded.reload, lastReloadTime: at(-5000).toISOString() } }, lastRepeatedReload: at(-1000) }),
      want: {
        action: "report",
        outcome: { conditions: [{ type: "Reloaded", status: "True", reason: "Reloaded", message: "pg_reload_conf() as postgres at …" }], events: [], requeueAt: at(2000) },
      },
    },
    {
      name: "strategy None: the admin reloads",
      o: observed({ spec: resolved({ reload: { strategy: "None" } }), desiredHash: "h2" }),
      want: { action: "report", outcome: { conditions: [{ type: "Reloaded", status: "Unknown", reason: "ManualReloadRequired" }], events: [] } },
    },
    {
      name: "RolloutRestart: the pod-template hash rolls the pods, which counts as the reload",
      o: observed({ spec: resolved({ reload: { strategy: "RolloutRestart" }, workloadRef: { kind: "StatefulSet", name: "pg" } }), desiredHash: "h2" }),
      want: {
        action: "rollout",
        reload: { strategy: "RolloutRestart", appliedHash: "h2", lastReloadTime: NOW.toISOString(), message: "rollout of StatefulSet pg requested" },
        outcome: {
          conditions: [{ type: "Reloaded", status: "True", reason: "RolloutRequested", message: "rollout of StatefulSet pg requested" }],
          events: [{ type: "Normal", reason: "RolloutRequested", message: "restarting StatefulSet pg so the server loads the new certificate and configuration" }],
        },
      },
    },
    {
      name: "the last check failed and its backoff is not over: wait for the server",
      o: observed({
        desiredHash: "h2",
        status: { ...loaded, verification: { lastAttemptTime: at(-500).toISOString(), lastSuccessTime: at(-600_000).toISOString() } },
      }),
      want: { action: "report", outcome: { conditions: [{ type: "Reloaded", status: "False", reason: "WaitingForServer" }], events: [] } },
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      const plan = planReload(row.o, NOW);
      expectSubset(plan, row.want);
    });
  }

  it("a failed check's retry time is the backoff measured at the attempt", () => {
    const o = observed({ desiredHash: "h2", status: { ...loaded, verification: { lastAttemptTime: at(-500).toISOString(), lastSuccessTime: at(-600_000).toISOString() } } });
    const plan = planReload(o, NOW);
    expect(plan.action === "report" && plan.outcome.requeueAt).to.deep.equal(at(-500 + 60_000));
  });

  it("SQL without the operator's identity is a TerminalError", () => {
    expect(() => planReload(observed({ desiredHash: "h2", canLogIn: false }), NOW)).to.throw(TerminalError);
  });
});

describe("planReloadResult (step 5: what the reload gave)", () => {
  const withWorkload = observed({ spec: resolved({ workloadRef: { kind: "Deployment", name: "pg" } }), desiredHash: "h2" });
  const failed = (reason: "ServerNotServingTLS" | "ReloadNotPermitted" | "Unreachable", message: string): ReloadResult => ({ ok: false, reason, message });
  const rows: { name: string; result: ReloadResult; o: ReloadObserved; patched: boolean; want: unknown }[] = [
    {
      name: "reloaded: status, condition and event",
      result: { ok: true, configChecked: true },
      o: observed({ desiredHash: "h2" }),
      patched: false,
      want: {
        reload: { strategy: "SQL", appliedHash: "h2", lastReloadTime: NOW.toISOString(), message: `pg_reload_conf() as postgres at ${NOW.toISOString()}` },
        outcome: {
          conditions: [{ type: "Reloaded", status: "True", reason: "Reloaded" }],
          events: [{ type: "Normal", reason: "Reloaded", message: "reloaded the server over mTLS as postgres (MaterialChanged)" }],
        },
      },
    },
    {
      name: "no TLS yet, workload just patched: its rollout counts as the restart",
      result: failed("ServerNotServingTLS", "no TLS"),
      o: withWorkload,
      patched: true,
      want: { rolloutCounts: true, outcome: { conditions: [{ reason: "RolloutRequested", message: "the server did not serve TLS yet; Deployment pg is restarting with the server Secret mounted" }] } },
    },
    {
      name: "no TLS yet, workload as it was: restart it once",
      result: failed("ServerNotServingTLS", "no TLS"),
      o: withWorkload,
      patched: false,
      want: { restart: "the server did not serve TLS yet, so it could not be reloaded over mTLS", outcome: { conditions: [{ reason: "RolloutRequested" }], events: [] } },
    },
    {
      name: "refused: the hint names the right to grant, retried in 30 s",
      result: failed("ReloadNotPermitted", "permission denied for function pg_reload_conf"),
      o: observed({ desiredHash: "h2" }),
      patched: false,
      want: {
        outcome: {
          conditions: [{ type: "Reloaded", status: "False", reason: "ReloadNotPermitted" }],
          events: [{ type: "Warning", reason: "ReloadNotPermitted" }],
          requeueAt: at(30_000),
        },
      },
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      expectSubset(planReloadResult(row.result, row.o, "MaterialChanged", row.patched, NOW), row.want);
    });
  }

  it("a refused reload writes no status.reload, and its message carries the hint", () => {
    const plan = planReloadResult(failed("ReloadNotPermitted", "denied"), observed(), "MaterialChanged", false, NOW);
    expect(plan.reload).to.equal(undefined);
    expect(plan.outcome.conditions[0]!.message).to.equal(
      "could not reload the server: denied; grant postgres the right to run pg_reload_conf() or set spec.reload.adminUser to a superuser",
    );
  });
});
