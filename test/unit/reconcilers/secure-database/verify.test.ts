import { expect } from "chai";
import type { SecureDatabaseStatus } from "../../../../src/api/types";
import type { ProbeFailure, ProbeSuccess } from "../../../../src/postgres/probe";
import {
  failedCheckRetryAt,
  planPlaintextResult,
  planProbeFailure,
  planServedCertificate,
  planVerify,
  withRemedy,
  type VerifyObserved,
} from "../../../../src/reconcilers/secure-database/verify";
import { at, expectSubset, NOW, resolved } from "./fixtures";

const login = { endpoint: "db.example.com:5432", user: "postgres" };
const verifiedAt = (t: Date): SecureDatabaseStatus => ({
  verification: {
    endpoint: login.endpoint,
    servedSerialNumber: "0a",
    matchesCurrent: true,
    lastAttemptTime: t.toISOString(),
    lastSuccessTime: t.toISOString(),
    message: "serves serial 0a",
  },
});
const failedAt = (t: Date, reason = "Unreachable"): SecureDatabaseStatus => ({
  verification: {
    endpoint: login.endpoint,
    lastAttemptTime: t.toISOString(),
    lastSuccessTime: at(-3_600_000).toISOString(),
    message: "connect ECONNREFUSED",
  },
  conditions: [
    {
      type: "Verified",
      status: "False",
      reason,
      message: "mTLS connection … failed: connect ECONNREFUSED",
      lastTransitionTime: at(-60_000).toISOString(),
    },
  ],
});
const observed = (o: Partial<VerifyObserved> = {}): VerifyObserved & { login: typeof login } => ({
  spec: resolved(),
  status: undefined,
  currentSerial: "0a",
  login,
  reloadedNow: false,
  repaired: false,
  rotating: false,
  ...o,
} as VerifyObserved & { login: typeof login });

describe("planVerify (step 6: probe now, or report)", () => {
  const rows: { name: string; o: VerifyObserved; want: unknown }[] = [
    {
      name: "verification off: Unknown, status.verification cleared",
      o: observed({ spec: resolved({ verification: { enabled: false } }) }),
      want: {
        verification: undefined,
        outcome: { conditions: [{ type: "Verified", status: "Unknown", reason: "VerificationDisabled" }], events: [] },
      },
    },
    { name: "never checked: probe", o: observed(), want: "probe" },
    {
      name: "verified a minute ago, nothing changed: report it until the interval is over",
      o: observed({ status: verifiedAt(at(-60_000)) }),
      want: {
        verification: verifiedAt(at(-60_000)).verification,
        outcome: {
          conditions: [
            {
              type: "Verified",
              status: "True",
              reason: "ServingCurrentCertificate",
              message: "mTLS connection to db.example.com:5432 as postgres: the server presents serial 0a",
            },
          ],
          requeueAt: at(240_000),
        },
      },
    },
    {
      name: "verified, but reloaded in this pass: probe",
      o: observed({ status: verifiedAt(at(-60_000)), reloadedNow: true }),
      want: "probe",
    },
    { name: "verified, but a rotation runs: probe", o: observed({ status: verifiedAt(at(-60_000)), rotating: true }), want: "probe" },
    {
      name: "verified, but the certificate changed: probe",
      o: observed({ status: verifiedAt(at(-60_000)), currentSerial: "0b" }),
      want: "probe",
    },
    { name: "verified longer ago than the interval: probe", o: observed({ status: verifiedAt(at(-300_000)) }), want: "probe" },
    {
      name: "failed half a second ago: keep the failure until its backoff is over",
      o: observed({ status: failedAt(at(-500)) }),
      want: { outcome: { conditions: [{ type: "Verified", status: "False", reason: "Unreachable" }], requeueAt: at(-500 + 60_000) } },
    },
    {
      name: "failed, but the blocks were just repaired: probe",
      o: observed({ status: failedAt(at(-500)), repaired: true }),
      want: "probe",
    },
  ];
  for (const row of rows) it(row.name, () => expectSubset(planVerify(row.o, NOW), row.want));

  it("a failure's retry time does not move as time passes", () => {
    const status = failedAt(at(-500));
    expect(failedCheckRetryAt(status, resolved(), NOW)).to.deep.equal(failedCheckRetryAt(status, resolved(), at(10_000)));
    expect(failedCheckRetryAt(status, resolved(), at(60_000))).to.equal(undefined);
  });
});

describe("planProbeFailure, planServedCertificate, planPlaintextResult (step 6: what the probes found)", () => {
  const down: ProbeFailure = { ok: false, reason: "Unreachable", message: "connect ECONNREFUSED" };
  const noTLS: ProbeFailure = { ok: false, reason: "ServerNotServingTLS", message: "the server does not support SSL" };
  const served = (serial: string): ProbeSuccess => ({
    ok: true,
    servedSerialNumber: serial,
    servedFingerprintSha256: "ff",
    servedSubject: "CN=db",
    servedNotAfter: "",
    latencyMs: 3,
  });

  const failures: { name: string; result: ProbeFailure; o: VerifyObserved & { login: typeof login }; want: unknown }[] = [
    {
      name: "a first failure: event, False, retried after a second",
      result: down,
      o: observed(),
      want: {
        verification: {
          endpoint: login.endpoint,
          lastAttemptTime: NOW.toISOString(),
          matchesCurrent: undefined,
          message: "connect ECONNREFUSED",
        },
        outcome: {
          conditions: [
            {
              type: "Verified",
              status: "False",
              reason: "Unreachable",
              message: "mTLS connection to db.example.com:5432 as postgres failed: connect ECONNREFUSED",
            },
          ],
          events: [
            {
              type: "Warning",
              reason: "VerificationFailed",
              message: "mTLS connection to db.example.com:5432 failed: connect ECONNREFUSED",
            },
          ],
          requeueAt: at(1000),
        },
      },
    },
    {
      name: "the same failure again: no second event",
      result: down,
      o: observed({ status: failedAt(at(-5000)) }),
      want: { outcome: { events: [] } },
    },
    {
      name: "no TLS any more after a success: the remedy is due",
      result: noTLS,
      o: observed({ status: verifiedAt(at(-60_000)) }),
      want: { remedy: "ServerNotServingTLS", outcome: { requeueAt: at(15_000) } },
    },
    {
      name: "no TLS before any success (the switch-over's restart is under way): no remedy",
      result: noTLS,
      o: observed(),
      want: { remedy: undefined },
    },
    {
      name: "no TLS right after a reload: no remedy",
      result: noTLS,
      o: observed({ status: verifiedAt(at(-60_000)), reloadedNow: true }),
      want: { remedy: undefined },
    },
  ];
  for (const row of failures) it(row.name, () => expectSubset(planProbeFailure(row.result, row.o, NOW), row.want));

  it("an older certificate: False, looked at again in a second", () => {
    expectSubset(planServedCertificate(served("09"), observed(), NOW), {
      verification: {
        servedSerialNumber: "09",
        matchesCurrent: false,
        message: "serves serial 09, expected 0a",
        lastSuccessTime: undefined,
      },
      outcome: {
        conditions: [{ type: "Verified", status: "False", reason: "ServingPreviousCertificate" }],
        events: [],
        requeueAt: at(1000),
      },
    });
  });

  it("the current certificate: plain TCP is checked next", () => {
    expectSubset(planServedCertificate(served("0a"), observed(), NOW), {
      checkPlaintext: true,
      verification: { matchesCurrent: true, lastSuccessTime: NOW.toISOString(), message: "serves serial 0a" },
    });
  });

  const current = {
    endpoint: login.endpoint,
    servedSerialNumber: "0a",
    matchesCurrent: true,
    lastAttemptTime: NOW.toISOString(),
    lastSuccessTime: NOW.toISOString(),
  };
  const plaintextRows: { name: string; verdict: "Refused" | "Accepted"; o: VerifyObserved & { login: typeof login }; want: unknown }[] = [
    {
      name: "plain TCP refused, first success: Verified event, next check after the interval",
      verdict: "Refused",
      o: observed(),
      want: {
        verification: current,
        outcome: {
          conditions: [{ status: "True", reason: "ServingCurrentCertificate" }],
          events: [{ type: "Normal", reason: "Verified" }],
          requeueAt: at(300_000),
        },
      },
    },
    {
      name: "plain TCP refused, as before: no event",
      verdict: "Refused",
      o: observed({ status: verifiedAt(at(-400_000)) }),
      want: { outcome: { events: [] } },
    },
    {
      name: "plain TCP accepted: False with the remedy, matchesCurrent cleared",
      verdict: "Accepted",
      o: observed(),
      want: {
        remedy: "PlaintextAccepted",
        verification: { matchesCurrent: undefined, message: "accepts plain TCP: the server sent AuthenticationOk" },
        outcome: {
          conditions: [{ status: "False", reason: "PlaintextAccepted" }],
          events: [{ type: "Warning", reason: "PlaintextAccepted" }],
          requeueAt: at(3000),
        },
      },
    },
  ];
  for (const row of plaintextRows) {
    it(row.name, () => {
      const plaintext = {
        verdict: row.verdict,
        message: row.verdict === "Accepted" ? "the server sent AuthenticationOk" : "the server refused",
      };
      expectSubset(planPlaintextResult(plaintext, row.o, { ...current }, NOW), row.want);
    });
  }

  it("the remedy's words end the condition and the event", () => {
    const plan = planPlaintextResult({ verdict: "Accepted", message: "ok" }, observed(), { ...current }, NOW);
    const done = withRemedy(plan.outcome, "reloaded it");
    expect(done.conditions[0]!.message).to.match(/has not loaded the managed pg_hba.conf; reloaded it$/);
    expect(done.events[0]!.message).to.equal(done.conditions[0]!.message);
    expect(withRemedy(plan.outcome, undefined)).to.equal(plan.outcome);
  });
});
