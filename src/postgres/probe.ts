/**
 * Live checks against a PostgreSQL server over a real mTLS connection (the `pg` driver).
 *
 * - probeServer: connects with verify-full semantics (chain to `ca`, host name = `servername`), presents the
 *   client certificate, runs SELECT 1, and reports which certificate the server served.
 * - reloadServer: the same connection, then `SELECT pg_reload_conf()`; refuses to reload files the server
 *   itself reports as invalid (when the role may read pg_file_settings / pg_hba_file_rules).
 *
 * Both have a hard timeout, always close the connection, and never throw: failures are values with a
 * CamelCase reason and, for refusals by the server, the server's own words ("FATAL: …"). Messages never
 * contain key material.
 */

import { createHash, createPrivateKey, X509Certificate } from "node:crypto";
import { isIP } from "node:net";
import { checkServerIdentity as tlsCheckServerIdentity, type ConnectionOptions, type PeerCertificate } from "node:tls";
import { Client, DatabaseError } from "pg";
import {
  classifyError,
  errorMessage,
  probeFailure,
  normalizeSerial,
  redact,
  type ProbeFailure,
  type ProbeResult,
  type ReloadFailure,
  type ReloadResult,
  type ServedCertificate,
} from "./probe-result";

export {
  classifyError,
  normalizeSerial,
  redact,
  type ProbeFailure,
  type ProbeFailureReason,
  type ProbeResult,
  type ProbeSuccess,
  type ReloadFailure,
  type ReloadFailureReason,
  type ReloadResult,
  type ReloadSuccess,
  type ServedCertificate,
} from "./probe-result";

export interface ProbeOptions {
  readonly host: string;
  readonly port: number;
  /** The name the server certificate must carry (DNS or IP SAN): verify-full. Sent as SNI when it is a DNS name. */
  readonly servername: string;
  readonly database: string;
  readonly user: string;
  /** PEM trust bundle (one or more CA certificates). */
  readonly ca: string;
  /** PEM client certificate (optionally followed by intermediates). */
  readonly cert: string;
  /** PEM client private key (unencrypted). */
  readonly key: string;
  /** Only for rules that also ask for a password (clientcert=verify-ca with scram-sha-256). */
  readonly password?: string;
  readonly timeoutMs: number;
  /** What pg_stat_activity shows (default: the operator's name). */
  readonly applicationName?: string;
}

function describeServed(cert: PeerCertificate): ServedCertificate {
  return {
    servedSerialNumber: normalizeSerial(cert.serialNumber),
    servedFingerprintSha256: createHash("sha256").update(cert.raw).digest("hex"),
    servedSubject: Object.entries(cert.subject ?? {})
      .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join("+") : String(v)}`)
      .join(", "),
    servedNotAfter: new Date(cert.valid_to).toISOString(),
  };
}

/** Parses the credentials up front, so a broken Secret says so instead of surfacing as a TLS error. */
function checkCredentials(o: ProbeOptions): ProbeFailure | undefined {
  const pemBlocks = (pem: string): string[] => pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  const cas = pemBlocks(o.ca ?? "");
  if (cas.length === 0) return probeFailure("ClientCredentialsInvalid", "the trust bundle (ca) holds no PEM certificate");
  for (const [i, pem] of cas.entries()) {
    try {
      new X509Certificate(pem);
    } catch (err) {
      return probeFailure(
        "ClientCredentialsInvalid",
        `certificate ${i + 1} of the trust bundle (ca) cannot be parsed: ${redact(errorMessage(err))}`,
      );
    }
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(o.cert);
  } catch (err) {
    return probeFailure("ClientCredentialsInvalid", `the client certificate cannot be parsed: ${redact(errorMessage(err))}`);
  }
  let key;
  try {
    key = createPrivateKey(o.key);
  } catch {
    // The library's words could in theory quote the input: say only what is actionable.
    return probeFailure("ClientCredentialsInvalid", "the client private key cannot be parsed (expected an unencrypted PEM key)");
  }
  if (!cert.checkPrivateKey(key)) {
    return probeFailure(
      "ClientCredentialsInvalid",
      `the client private key does not belong to the client certificate (subject ${cert.subject.replace(/\n/g, ", ")}, serial ` +
        `${normalizeSerial(cert.serialNumber)})`,
    );
  }
  return undefined;
}

interface SessionOk<T> {
  readonly ok: true;
  readonly value: T;
  readonly served: ServedCertificate;
  readonly latencyMs: number;
}

/** Connects, runs `work`, always closes; never throws; never outlives `timeoutMs` (plus a short close). */
async function session<T, F = never>(o: ProbeOptions, work: (client: Client) => Promise<T>): Promise<SessionOk<T> | ProbeFailure | F> {
  const invalid = checkCredentials(o);
  if (invalid) return invalid;
  const secrets = [o.key, ...(o.password ? [o.password] : [])];
  const expectedName = o.servername || o.host;
  let served: ServedCertificate | undefined;
  const ssl: ConnectionOptions = {
    ca: o.ca,
    cert: o.cert,
    key: o.key,
    rejectUnauthorized: true,
    // Called only after the chain verified; checks the name WE expect, whatever SNI pg chose.
    checkServerIdentity: (_host, cert) => {
      served = describeServed(cert);
      return tlsCheckServerIdentity(expectedName, cert);
    },
  };
  if (isIP(expectedName) === 0) ssl.servername = expectedName;

  const client = new Client({
    host: o.host,
    port: o.port,
    database: o.database,
    user: o.user,
    ...(o.password !== undefined ? { password: o.password } : {}),
    ssl,
    application_name: o.applicationName ?? "imaging-db-mtls-operator",
  });
  // Errors after we stopped listening (e.g. a late socket error) must not crash the process.
  client.on("error", () => undefined);
  const rawSocket = client.connection.stream;

  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), Math.max(1, o.timeoutMs));
  });
  const attempt = (async () => {
    await client.connect();
    const value = await work(client);
    return { value, latencyMs: performance.now() - started };
  })().then(
    (v) => ({ done: v }),
    (err: unknown) => ({ err }),
  );
  try {
    const outcome = await Promise.race([attempt, timeout]);
    if (outcome === "timeout") {
      const stage = served ? "after the TLS handshake (the server did not answer the startup or the query)" : "before the TLS handshake completed";
      return probeFailure(
        "Timeout",
        `no answer from ${o.host}:${o.port} within ${o.timeoutMs} ms, ${stage}`,
        served ? { servedSerialNumber: served.servedSerialNumber } : {},
      );
    }
    if ("err" in outcome) {
      const err = outcome.err;
      if (err instanceof WorkFailure) return err.failure as F;
      return classifyError(err, served, secrets);
    }
    if (!served) return probeFailure("TLSHandshakeFailed", "connected, but the server certificate was never presented for verification");
    return { ok: true, value: outcome.done.value, served, latencyMs: Math.round(outcome.done.latencyMs * 10) / 10 };
  } finally {
    clearTimeout(timer);
    await closeClient(client, rawSocket);
  }
}

async function closeClient(client: Client, rawSocket: { destroy(): unknown }): Promise<void> {
  let t: NodeJS.Timeout | undefined;
  await Promise.race([
    client.end().catch(() => undefined),
    new Promise<void>((resolve) => {
      t = setTimeout(resolve, 1000);
    }),
  ]);
  clearTimeout(t);
  client.connection.stream.destroy();
  rawSocket.destroy();
}

/** A failure decided by the work itself (not a driver error), carried through the session. */
class WorkFailure extends Error {
  constructor(readonly failure: ReloadFailure) {
    super(failure.message);
  }
}

/** The session probeServer opens (verify-full, the same failure reasons), running `work`: kubectl mtls check's queries. */
export async function querySession<T>(
  options: ProbeOptions,
  work: (client: Client) => Promise<T>,
): Promise<ProbeFailure | (ServedCertificate & { readonly ok: true; readonly value: T; readonly latencyMs: number })> {
  const r = await session(options, work);
  return r.ok ? { ok: true, value: r.value, latencyMs: r.latencyMs, ...r.served } : r;
}

/** Connects over mTLS with verify-full, runs SELECT 1, reports the certificate the server served. */
export async function probeServer(options: ProbeOptions): Promise<ProbeResult> {
  const r = await session(options, async (client) => {
    await client.query("SELECT 1");
  });
  if (!r.ok) return r;
  return { ok: true, ...r.served, latencyMs: r.latencyMs };
}

const TRUE_BOOL = /^(on|t|tr|tru|true|y|ye|yes|1)$/i;

interface FileSetting {
  sourcefile: string | null;
  sourceline: number | null;
  name: string | null;
  setting: string | null;
  applied: boolean;
  error: string | null;
}

interface HbaFileRule {
  line_number: number | null;
  type: string | null;
  error: string | null;
}

/**
 * Errors PostgreSQL would meet reloading the files on disk now, or undefined when this role may not read the
 * server's view of them (pg_file_settings, pg_hba_file_rules: superusers by default).
 *
 * pg_hba_file_rules judges hostssl records against the CURRENT `ssl` setting, while a reload applies the
 * pending postgresql.conf first; so the `ssl` value that will be in force decides: pending on → the view's
 * "SSL is disabled" errors do not count; pending off → every hostssl record is an error the view does not show.
 */
async function configFileErrors(client: Client): Promise<string[] | undefined> {
  let settings: FileSetting[];
  let hba: HbaFileRule[];
  let sslSource: string | undefined;
  let sslNow: string | undefined;
  try {
    settings = (await client.query<FileSetting>("SELECT sourcefile, sourceline, name, setting, applied, error FROM pg_file_settings ORDER BY seqno"))
      .rows;
    hba = (await client.query<HbaFileRule>("SELECT line_number, type, error FROM pg_hba_file_rules ORDER BY line_number")).rows;
    const ssl = (await client.query<{ setting: string; source: string }>("SELECT setting, source FROM pg_settings WHERE name = 'ssl'"))
      .rows[0];
    sslSource = ssl?.source;
    sslNow = ssl?.setting;
  } catch (err) {
    if (err instanceof DatabaseError && err.code === "42501") return undefined;
    throw err;
  }
  const where = (r: { sourcefile: string | null; sourceline: number | null }): string =>
    `${r.sourcefile ?? "postgresql.conf"}${r.sourceline !== null ? ` line ${r.sourceline}` : ""}`;
  const errors: string[] = [];
  for (const r of settings) if (r.error !== null) errors.push(`${where(r)}: ${r.error}${r.name ? ` (${r.name})` : ""}`);

  // The ssl value after the reload: the applied file entry, else (not set in any file) the default "off" —
  // unless it comes from a source files cannot override (command line…), which stays.
  const fileSsl = settings.filter((r) => r.name === "ssl" && r.applied && r.error === null).pop();
  const fromFilesOrDefault = sslSource === undefined || sslSource === "configuration file" || sslSource === "default";
  const pendingSsl = fileSsl ? TRUE_BOOL.test(fileSsl.setting ?? "") : fromFilesOrDefault ? false : TRUE_BOOL.test(sslNow ?? "");
  let sslOffReported = false;
  for (const r of hba) {
    if (r.error !== null) {
      if (pendingSsl && /because SSL is disabled/.test(r.error)) continue;
      errors.push(`pg_hba.conf${r.line_number !== null ? ` line ${r.line_number}` : ""}: ${r.error}`);
    } else if (!pendingSsl && r.type === "hostssl" && !sslOffReported) {
      sslOffReported = true;
      const cause = fileSsl ? `${where(fileSsl)} sets ssl = ${fileSsl.setting}` : "no configuration file sets ssl = on";
      errors.push(`pg_hba.conf line ${r.line_number ?? "?"}: hostssl record cannot match because SSL is disabled (${cause})`);
    }
  }
  return errors;
}

/**
 * Connects like probeServer and runs `SELECT pg_reload_conf()`. When the role may read the server's own
 * view of the files on disk (pg_file_settings, pg_hba_file_rules: superusers), files with errors are NOT
 * reloaded (reason ConfigurationInvalid): PostgreSQL would keep its previous pg_hba.conf and apply only
 * part of postgresql.conf, and a restart would fail.
 */
export async function reloadServer(options: ProbeOptions): Promise<ReloadResult> {
  const r = await session<boolean, ReloadFailure>(options, async (client) => {
    const errors = await configFileErrors(client);
    if (errors && errors.length > 0) {
      throw new WorkFailure(
        { ok: false, reason: "ConfigurationInvalid", message: `not reloaded: the server reports errors in its configuration files: ${errors.join("; ")}` },
      );
    }
    try {
      const res = await client.query<{ reloaded: boolean }>("SELECT pg_reload_conf() AS reloaded");
      if (res.rows[0]?.reloaded !== true) {
        throw new WorkFailure(
          { ok: false, reason: "ReloadFailed", message: "pg_reload_conf() returned false: the server could not signal the postmaster" },
        );
      }
    } catch (err) {
      if (err instanceof DatabaseError && err.code === "42501") {
        throw new WorkFailure(
          { ok: false, reason: "ReloadNotPermitted", message: `${err.severity ?? "ERROR"}: ${err.message}`, sqlState: err.code },
        );
      }
      throw err;
    }
    return errors !== undefined;
  });
  if (!r.ok) return r;
  return { ok: true, configChecked: r.value };
}
