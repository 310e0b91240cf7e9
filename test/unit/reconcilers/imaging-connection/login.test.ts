import { expect } from "chai";
import type { Condition, ConnectionVerificationStatus, SecureDatabaseSpec } from "../../../../src/api/types";
import { generateCA, issueClientCertificate, type IssuedCertificate } from "../../../../src/pki";
import type { ProbeResult } from "../../../../src/postgres/probe";
import { planLogin, planLoginResult, type LoginObserved } from "../../../../src/reconcilers/imaging-connection/login";
import { imagingConnection, NOW, NS, resolved, secureDatabase, target } from "./fixtures";

const DAY = 24 * 3600_000;
const INTERVAL = 5 * 60_000;
const ago = (ms: number) => new Date(NOW.getTime() - ms).toISOString();
const WHERE = "cast_app@db.example:5432/postgres";
const dbReady: Condition = { type: "Ready", status: "True", reason: "Secured", message: "", lastTransitionTime: ago(DAY) };

describe("the login's plans (ConnectionVerified)", () => {
  let issued: IssuedCertificate;
  let trustBundle: string;
  before(async () => {
    const ca = await generateCA({ commonName: "Imaging DB CA", duration: 365 * DAY, now: new Date(NOW.getTime() - 10 * DAY) });
    trustBundle = ca.certPem;
    issued = await issueClientCertificate(ca, { user: "cast_app", duration: 90 * DAY, now: new Date(NOW.getTime() - DAY) });
  });

  function observed(
    o: {
      enabled?: boolean;
      verification?: ConnectionVerificationStatus;
      conditions?: Condition[];
      ready?: boolean;
      db?: Partial<SecureDatabaseSpec>;
    } = {},
  ): LoginObserved {
    const status = { ...(o.verification ? { verification: o.verification } : {}), ...(o.conditions ? { conditions: o.conditions } : {}) };
    const imc = imagingConnection("app", o.enabled === false ? { verification: { enabled: false } } : {}, { status });
    const sdb = secureDatabase(o.db ?? {}, o.ready === false ? {} : { conditions: [dbReady] });
    return { imc, spec: resolved(imc), target: target(sdb), issued, trustBundle };
  }
  const succeeded = (at: number, serial = issued.serialNumber): ConnectionVerificationStatus => ({
    serialNumber: serial,
    lastAttemptTime: ago(at),
    lastSuccessTime: ago(at),
    message: `logged in as ${WHERE} over mTLS (verify-full) with certificate serial ${serial}`,
  });
  const failed = (at: number): ConnectionVerificationStatus => ({
    lastAttemptTime: ago(at),
    message: 'FATAL: role "cast_app" does not exist',
  });
  const failing: Condition = {
    type: "ConnectionVerified",
    status: "False",
    reason: "RoleMissing",
    message: "login failed: role missing",
    lastTransitionTime: ago(2000),
  };

  describe("planLogin (report without logging in, or the login to try)", () => {
    /** The login: as the user, with the issued certificate, verifying the server's name against the trust bundle. */
    const probe = (host: string, port: number) => ({
      host,
      port,
      servername: "db.example",
      database: "postgres",
      user: "cast_app",
      ca: trustBundle,
      cert: issued.chainPem,
      key: issued.keyPkcs8Pem,
      timeoutMs: 10_000,
    });
    const rows: { name: string; observed: () => LoginObserved; plan: () => object }[] = [
      {
        name: "disabled: Unknown, status.verification cleared",
        observed: () => observed({ enabled: false, verification: succeeded(1000) }),
        plan: () => ({
          condition: {
            type: "ConnectionVerified",
            status: "Unknown",
            reason: "VerificationDisabled",
            message: "spec.verification.enabled is false",
          },
          verification: undefined,
          events: [],
        }),
      },
      {
        name: "the database not Ready: Unknown, the last attempt kept",
        observed: () => observed({ ready: false, verification: succeeded(1000) }),
        plan: () => ({
          condition: {
            type: "ConnectionVerified",
            status: "Unknown",
            reason: "WaitingForDatabase",
            message: `SecureDatabase ${NS}/db is not Ready yet (no status): logging in is tried once it is`,
          },
          verification: succeeded(1000),
          events: [],
        }),
      },
      {
        name: "never tried: log in with the issued certificate, verify-full",
        observed: () => observed(),
        plan: () => ({ probe: probe("db.example", 5432) }),
      },
      {
        name: "through the database's verification endpoint",
        observed: () => observed({ db: { verification: { endpoint: "10.0.0.5:6432" } } }),
        plan: () => ({ probe: probe("10.0.0.5", 6432) }),
      },
      {
        name: "logged in a minute ago with this certificate: True, next at the interval",
        observed: () => observed({ verification: succeeded(60_000) }),
        plan: () => ({
          condition: { type: "ConnectionVerified", status: "True", reason: "LoggedIn", message: succeeded(60_000).message },
          verification: succeeded(60_000),
          requeueAt: NOW.getTime() - 60_000 + INTERVAL,
          events: [],
        }),
      },
      {
        name: "logged in with an older certificate: log in again",
        observed: () => observed({ verification: succeeded(60_000, "0abc") }),
        plan: () => ({ probe: probe("db.example", 5432) }),
      },
      {
        name: "failed 2 s ago: the failure as it was, retried 5 s after it",
        observed: () => observed({ verification: failed(2000), conditions: [failing] }),
        plan: () => ({
          condition: { type: "ConnectionVerified", status: "False", reason: "RoleMissing", message: "login failed: role missing" },
          verification: failed(2000),
          requeueAt: NOW.getTime() - 2000 + 5000,
          events: [],
        }),
      },
      {
        name: "failed 2 s ago with no condition left to repeat: Pending until the retry",
        observed: () => observed({ verification: failed(2000) }),
        plan: () => ({
          condition: {
            type: "ConnectionVerified",
            status: "Unknown",
            reason: "Pending",
            message: `next login as ${WHERE} at ${new Date(NOW.getTime() + 3000).toISOString()}`,
          },
          verification: failed(2000),
          requeueAt: NOW.getTime() + 3000,
          events: [],
        }),
      },
    ];
    for (const row of rows) {
      it(row.name, () => {
        expect(planLogin(row.observed(), NOW)).to.deep.equal(row.plan());
      });
    }
  });

  describe("planLoginResult (what a login's result means)", () => {
    const refused: ProbeResult = { ok: false, reason: "RoleMissing", message: 'FATAL: role "cast_app" does not exist', sqlState: "28000" };
    const success: ProbeResult = {
      ok: true,
      latencyMs: 12,
      servedSerialNumber: "01",
      servedFingerprintSha256: "ab",
      servedSubject: "CN=db.example",
      servedNotAfter: "2027-01-01T00:00:00Z",
    };
    const failedMessage = () =>
      `login as ${WHERE} with certificate serial ${issued.serialNumber} failed: FATAL: role "cast_app" does not exist`;
    const loggedIn = () => `logged in as ${WHERE} over mTLS (verify-full) with certificate serial ${issued.serialNumber}`;
    /** Logged in now: True, this certificate's success in status, the next check at the interval. */
    const loggedInOutcome = (events: object[]) => ({
      condition: { type: "ConnectionVerified", status: "True", reason: "LoggedIn", message: loggedIn() },
      verification: {
        serialNumber: issued.serialNumber,
        lastAttemptTime: NOW.toISOString(),
        lastSuccessTime: NOW.toISOString(),
        message: loggedIn(),
      },
      requeueAt: NOW.getTime() + INTERVAL,
      events,
    });
    const rows: { name: string; observed: () => LoginObserved; result: ProbeResult; outcome: () => object }[] = [
      {
        name: "a refusal 5 min after a success: False with the server's words, a Warning, retried a minute later",
        observed: () => observed({ verification: succeeded(INTERVAL) }),
        result: refused,
        outcome: () => ({
          condition: { type: "ConnectionVerified", status: "False", reason: "RoleMissing", message: failedMessage() },
          verification: { ...succeeded(INTERVAL), lastAttemptTime: NOW.toISOString(), message: 'FATAL: role "cast_app" does not exist' },
          requeueAt: NOW.getTime() + 60_000,
          events: [{ type: "Warning", reason: "RoleMissing", message: failedMessage() }],
        }),
      },
      {
        name: "the same refusal again: no second event, backoff from when it started failing",
        observed: () => observed({ verification: failed(2000), conditions: [{ ...failing, lastTransitionTime: ago(40_000) }] }),
        result: refused,
        outcome: () => ({
          condition: { type: "ConnectionVerified", status: "False", reason: "RoleMissing", message: failedMessage() },
          verification: { lastAttemptTime: NOW.toISOString(), message: 'FATAL: role "cast_app" does not exist' },
          requeueAt: NOW.getTime() + 10_000,
          events: [],
        }),
      },
      {
        name: "a first success: True, a ConnectionVerified event, next at the interval",
        observed: () => observed({ verification: failed(2000) }),
        result: success,
        outcome: () => loggedInOutcome([{ type: "Normal", reason: "ConnectionVerified", message: loggedIn() }]),
      },
      {
        name: "a success like the last one: no event",
        observed: () => observed({ verification: succeeded(INTERVAL) }),
        result: success,
        outcome: () => loggedInOutcome([]),
      },
    ];
    for (const row of rows) {
      it(row.name, () => {
        expect(planLoginResult(row.observed(), row.result, NOW)).to.deep.equal(row.outcome());
      });
    }
  });
});
