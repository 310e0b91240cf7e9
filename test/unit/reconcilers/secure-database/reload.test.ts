import { expect } from "chai";
import type { ConditionStatus, SecureDatabaseStatus } from "../../../../src/api/types";
import type { ReloadResult } from "../../../../src/postgres/probe";
import { planReload, planReloadResult, type ReloadObserved } from "../../../../src/reconcilers/secure-database/reload";
import { TerminalError } from "../../../../src/runtime/errors";
import { at, expectSubset, NOW, resolved } from "./fixtures";

const LOADED = "pg_reload_conf() as postgres at …";
const RESTARTING = "the server did not serve TLS yet; Deployment pg is restarting with the server Secret mounted";
const RELOADED_NOW = `pg_reload_conf() as postgres at ${NOW.toISOString()}`;
const hourAgo = at(-3_600_000).toISOString();
const loaded: SecureDatabaseStatus = {
  reload: { strategy: "SQL", appliedHash: "h1", lastReloadTime: hourAgo, message: LOADED },
  conditions: [{ type: "Reloaded", status: "True", reason: "Reloaded", message: LOADED, lastTransitionTime: hourAgo }],
};
/** The stored status with the last reload `ms` ago, and more. */
const reloadedAgo = (ms: number, more: SecureDatabaseStatus = {}): SecureDatabaseStatus => ({
  ...loaded,
  reload: { ...loaded.reload, lastReloadTime: at(-ms).toISOString() },
  ...more,
});
const failedCheck: SecureDatabaseStatus = {
  ...loaded,
  verification: { lastAttemptTime: at(-500).toISOString(), lastSuccessTime: at(-600_000).toISOString() },
};
const observed = (o: Partial<ReloadObserved> = {}): ReloadObserved => ({
  spec: resolved(),
  status: loaded,
  desiredHash: "h1",
  lastRepeatedReload: undefined,
  canLogIn: true,
  ...o,
});
const reloaded = (status: ConditionStatus, reason: string, message?: string) => ({
  type: "Reloaded",
  status,
  reason,
  ...(message ? { message } : {}),
});
const report = (condition: object, requeueAt?: Date) => ({ action: "report", outcome: { conditions: [condition], events: [], requeueAt } });

describe("planReload (step 5: what to load)", () => {
  const statefulSet = { kind: "StatefulSet" as const, name: "pg" };
  const rows: { name: string; o: ReloadObserved; want: unknown }[] = [
    {
      name: "nothing changed: keeps saying how the files got loaded, so a quiet pass writes nothing",
      o: observed(),
      want: report(reloaded("True", "Reloaded", LOADED)),
    },
    {
      name: "nothing loaded yet and nothing to do: UpToDate with the stored message",
      o: observed({ status: { reload: { appliedHash: "h1", message: "m" } } }),
      want: report(reloaded("True", "UpToDate", "m")),
    },
    {
      name: "the server still serves stale files, reloaded a moment ago: WaitingForFiles",
      o: observed({ status: reloadedAgo(1000, { verification: { matchesCurrent: false } }) }),
      want: report(reloaded("True", "WaitingForFiles", LOADED)),
    },
    { name: "new material, SQL: reload", o: observed({ desiredHash: "h2" }), want: { action: "reload", why: "MaterialChanged" } },
    {
      name: "inside the settle window, due: reload again without a status write",
      o: observed({ status: reloadedAgo(5000) }),
      want: { action: "repeat", outcome: { conditions: [reloaded("True", "Reloaded", LOADED)], events: [], requeueAt: at(3000) } },
    },
    {
      name: "inside the settle window, repeated a second ago: look again when the next one is due",
      o: observed({ status: reloadedAgo(5000), lastRepeatedReload: at(-1000) }),
      want: report(reloaded("True", "Reloaded", LOADED), at(2000)),
    },
    {
      name: "strategy None: the admin reloads",
      o: observed({ spec: resolved({ reload: { strategy: "None" } }), desiredHash: "h2" }),
      want: report(reloaded("Unknown", "ManualReloadRequired")),
    },
    {
      name: "RolloutRestart: the pod-template hash rolls the pods, which counts as the reload",
      o: observed({ spec: resolved({ reload: { strategy: "RolloutRestart" }, workloadRef: statefulSet }), desiredHash: "h2" }),
      want: {
        action: "rollout",
        reload: { strategy: "RolloutRestart", appliedHash: "h2", lastReloadTime: NOW.toISOString() },
        outcome: {
          conditions: [reloaded("True", "RolloutRequested", "rollout of StatefulSet pg requested")],
          events: [
            {
              type: "Normal",
              reason: "RolloutRequested",
              message: "restarting StatefulSet pg so the server loads the new certificate and configuration",
            },
          ],
        },
      },
    },
    {
      name: "the last check failed and its backoff is not over: wait for the server, retried at the backoff measured at the attempt",
      o: observed({ desiredHash: "h2", status: failedCheck }),
      want: report(reloaded("False", "WaitingForServer"), at(-500 + 60_000)),
    },
  ];
  for (const row of rows) it(row.name, () => expectSubset(planReload(row.o, NOW), row.want));

  it("SQL without the operator's identity is a TerminalError", () => {
    expect(() => planReload(observed({ desiredHash: "h2", canLogIn: false }), NOW)).to.throw(TerminalError);
  });
});

describe("planReloadResult (step 5: what the reload gave)", () => {
  const withWorkload = observed({ spec: resolved({ workloadRef: { kind: "Deployment", name: "pg" } }), desiredHash: "h2" });
  type Failure = "ServerNotServingTLS" | "ReloadNotPermitted";
  const failed = (reason: Failure, message: string): ReloadResult => ({ ok: false, reason, message });
  const rows: { name: string; result: ReloadResult; o: ReloadObserved; patched: boolean; want: unknown }[] = [
    {
      name: "reloaded: status, condition and event",
      result: { ok: true, configChecked: true },
      o: observed({ desiredHash: "h2" }),
      patched: false,
      want: {
        reload: { strategy: "SQL", appliedHash: "h2", lastReloadTime: NOW.toISOString(), message: RELOADED_NOW },
        outcome: {
          conditions: [reloaded("True", "Reloaded")],
          events: [{ type: "Normal", reason: "Reloaded", message: "reloaded the server over mTLS as postgres (MaterialChanged)" }],
        },
      },
    },
    {
      name: "no TLS yet, workload just patched: its rollout counts as the restart",
      result: failed("ServerNotServingTLS", "no TLS"),
      o: withWorkload,
      patched: true,
      want: {
        rolloutCounts: true,
        restart: undefined,
        outcome: {
          conditions: [reloaded("True", "RolloutRequested", RESTARTING)],
        },
      },
    },
    {
      name: "no TLS yet, workload as it was: restart it once",
      result: failed("ServerNotServingTLS", "no TLS"),
      o: withWorkload,
      patched: false,
      want: {
        restart: "the server did not serve TLS yet, so it could not be reloaded over mTLS",
        outcome: {
          conditions: [reloaded("True", "RolloutRequested", "the server did not serve TLS yet; restarted Deployment pg once")],
          events: [],
        },
      },
    },
    {
      name: "refused: no status.reload, the hint names the right to grant, retried in 30 s",
      result: failed("ReloadNotPermitted", "denied"),
      o: observed({ desiredHash: "h2" }),
      patched: false,
      want: {
        reload: undefined,
        outcome: {
          conditions: [
            reloaded(
              "False",
              "ReloadNotPermitted",
              "could not reload the server: denied; " +
                "grant postgres the right to run pg_reload_conf() or set spec.reload.adminUser to a superuser",
            ),
          ],
          events: [{ type: "Warning", reason: "ReloadNotPermitted" }],
          requeueAt: at(30_000),
        },
      },
    },
  ];
  for (const row of rows) {
    it(row.name, () => expectSubset(planReloadResult(row.result, row.o, "MaterialChanged", row.patched, NOW), row.want));
  }
});
