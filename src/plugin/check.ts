/**
 * `kubectl mtls check imc/NAME`: logs in from this machine with the connection's own certificate, as CAST Imaging
 * would, through the operator's own verify-full session (src/postgres/probe.ts: chain to root.crt, the server
 * certificate must name the declared host), and shows what the server sees: its version, current_user, and
 * pg_stat_ssl. The key never touches the disk: it goes from the Secret to the TLS context in memory. Rendering is
 * pure; run() reads, optionally port-forwards, and connects.
 */
import { isReason, REASON_DESCRIPTIONS } from "../api/reasons";
import { IMAGING_CONNECTION, type ConnectionDeclaration, type ImagingConnection, type SecureDatabase } from "../api/types";
import { secretBytes } from "../kube/secrets";
import { normalizeSerialNumber, parseCertificates, SECRET_KEYS } from "../pki";
import { querySession, type ProbeFailure } from "../postgres/probe";
import { booleanFlag, choiceFlag, durationFlag, stringFlag, type Invocation, type Verb, type VerbContext } from "./command";
import { EXIT, PluginError, type ExitCode } from "./errors";
import type { Cluster } from "./kube";
import { daysUntil, renderDocument, renderFields, timestamp } from "./output";
import { forwardTarget, portForwardArgs, startPortForward, type PortForward } from "./port-forward";
import { IMAGING_CONNECTION_KIND, parseResourceRef, SECURE_DATABASE_KIND } from "./resources";

// ------------------------------------------------------------------------------------------------------ pure

/** Where to connect and which name the server certificate must carry (always the declared host: verify-full). */
export interface CheckEndpoint {
  readonly host: string;
  readonly port: number;
  readonly serverName: string;
}

/** The declared host:port, or what --host / --port say; the server name stays the declared host. */
export function checkEndpoint(declaration: ConnectionDeclaration, flags: { host?: string | undefined; port?: string | undefined }): CheckEndpoint {
  if (!declaration.host || !declaration.port) throw new PluginError("the connection has no host and port in status.declaration yet");
  let port = declaration.port;
  if (flags.port !== undefined) {
    port = Number(flags.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new PluginError(`--port ${flags.port} is not a TCP port (1-65535)`);
  }
  return { host: flags.host ?? declaration.host, port, serverName: declaration.host };
}

/** pg_stat_ssl's client_serial is a decimal number; status writes serials in hex. */
export function serialFromDecimal(decimal: string | null): string | null {
  if (decimal === null || !/^\d+$/.test(decimal)) return null;
  return normalizeSerialNumber(BigInt(decimal).toString(16));
}

/** What the server answered, as shown and as -o json gives it. */
export interface CheckResult {
  readonly connection: string;
  readonly endpoint: string;
  readonly serverName: string;
  readonly latencyMs: number;
  readonly serverVersion: string;
  readonly currentUser: string;
  readonly database: string;
  readonly ssl: boolean;
  readonly tlsVersion: string | null;
  readonly cipher: string | null;
  /** Hex, from pg_stat_ssl.client_serial. */
  readonly clientSerial: string | null;
  readonly clientDN: string | null;
  /** Whether the server saw the certificate status.certificate names. */
  readonly clientSerialMatchesStatus: boolean | null;
  readonly serverCertificate: { readonly subject: string; readonly serialNumber: string; readonly notAfter: string; readonly daysLeft: number | null };
}

export function renderCheck(r: CheckResult): string {
  const match = r.clientSerialMatchesStatus === null ? "" : r.clientSerialMatchesStatus ? " (the connection's current certificate)" : " (NOT the serial in status.certificate)";
  return (
    `${r.connection}: logged in to ${r.endpoint} over mTLS (verify-full, server name ${r.serverName}) in ${r.latencyMs} ms\n` +
    renderFields([
      ["server version", r.serverVersion],
      ["current_user", r.currentUser],
      ["database", r.database],
      ["ssl", `${r.ssl}${r.tlsVersion ? ` (${r.tlsVersion}${r.cipher ? `, ${r.cipher}` : ""})` : ""}`],
      ["client_serial", r.clientSerial === null ? undefined : `${r.clientSerial}${match}`],
      ["client DN", r.clientDN ?? undefined],
      ["server subject", r.serverCertificate.subject],
      ["server serial", r.serverCertificate.serialNumber],
      ["server expires", `${r.serverCertificate.notAfter}${r.serverCertificate.daysLeft === null ? "" : ` (${r.serverCertificate.daysLeft} days left)`}`],
    ])
  );
}

/** Who was refused where, for renderRefusal. */
export interface RefusedLogin {
  readonly connection: string;
  readonly endpoint: string;
  readonly user: string;
  /** The serial of the certificate presented (the Secret's). */
  readonly serial: string | undefined;
  /** The command that shows what the operator sees of it. */
  readonly statusCommand: string;
}

/** A refused login: the server's (or TLS's) own words, what the reason means (src/api/reasons.ts), and what to do. */
export function renderRefusal(login: RefusedLogin, failure: ProbeFailure, revokedBy: string | undefined): string {
  const meaning = isReason(failure.reason) ? REASON_DESCRIPTIONS[failure.reason] : undefined;
  const fix = revokedBy
    ? `serial ${login.serial} is revoked by ${revokedBy} (status.trust.revokedSerials): the operator issues the connection a new certificate unless the connection itself is revoked; ${login.statusCommand}`
    : `${login.statusCommand} shows what the operator sees of the connection and its database`;
  return (
    `${login.connection}: ${login.endpoint} refused the login as ${login.user}${login.serial ? ` with certificate serial ${login.serial}` : ""}\n` +
    renderFields([
      ["server said", failure.message],
      ["reason", `${failure.reason}${meaning ? `: ${meaning}` : ""}`],
      ["likely fix", fix],
    ])
  );
}

// ------------------------------------------------------------------------------------------------------ I/O

const HELP = `kubectl mtls check: log in from this machine with a connection's own certificate, and show what the server sees.

Usage:
  kubectl mtls check [-n NS] imc/NAME [--host H] [--port P] [--port-forward] [-o text|json|yaml]

Reads the connection's Secret (tls.crt, tls.key, root.crt) through the API, keeps the key in memory (it is never
written to disk), and logs in as the declared user to the declared database with sslmode verify-full semantics:
the server certificate must chain to root.crt and name the host of status.declaration, wherever the connection
goes. It goes to status.declaration's host:port, unless:
  --host H, --port P   another address for the same server (a load balancer, a node port)
  --port-forward       kubectl port-forward to the Service the declared host names (<svc>.<ns>.svc, or
                       <pod>.<svc>.<ns>.svc for a pod), on a free local port; kubectl is taken from PATH
                       (or $KUBECTL), with the same --kubeconfig and --context
Prints the server version, current_user, database, ssl (TLS version and cipher) and client_serial from pg_stat_ssl,
and the server certificate's subject, serial and expiry.

Flags:
      --host H          connect here instead of the declared host (the certificate must still name the declared one)
      --port P          connect to this port
      --port-forward    through kubectl port-forward to the declared Service
      --timeout D       how long the login may take (default 10s)
  -o, --output FORMAT   text (default), json or yaml

Exit codes: 0 logged in, 1 the server (or TLS) refused: its words, the reason and the likely fix are printed, 2 the
command failed (usage, a missing connection or Secret, a port-forward that did not start).
`;

const CHECK_FORMATS = ["text", "json", "yaml"] as const;

export const checkVerb: Verb = {
  name: "check",
  summary: "log in with a connection's own certificate from here (verify-full) and show what the server sees",
  help: HELP,
  options: {
    host: { type: "string" },
    port: { type: "string" },
    "port-forward": { type: "boolean" },
    timeout: { type: "string" },
    output: { type: "string", short: "o" },
  },
  completes: { arguments: { kinds: ["imc"] }, flags: { output: { words: CHECK_FORMATS } } },
  run,
};

interface Row {
  version: string;
  user: string;
  database: string;
  ssl: boolean | null;
  tls_version: string | null;
  cipher: string | null;
  client_dn: string | null;
  client_serial: string | null;
}

const QUERY = `SELECT version() AS version, current_user AS "user", current_database() AS database,
  s.ssl, s.version AS tls_version, s.cipher, s.client_dn, s.client_serial::text AS client_serial
  FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()`;

async function run(invocation: Invocation, ctx: VerbContext): Promise<ExitCode> {
  const format = choiceFlag(invocation, "output", CHECK_FORMATS, "text", "check");
  const timeoutMs = durationFlag(invocation, "timeout", "10s", "check");
  const [ref, ...extra] = invocation.positionals;
  if (ref === undefined || extra.length > 0) throw new PluginError("check takes one connection: kubectl mtls check imc/NAME [-n NS]");
  const { kind, name } = parseResourceRef(ref);
  if (kind !== undefined && kind !== IMAGING_CONNECTION.kind) throw new PluginError("check logs in with a connection's certificate: write imc/NAME");
  const forward = booleanFlag(invocation, "port-forward");
  if (forward && stringFlag(invocation, "host") !== undefined) throw new PluginError("--port-forward connects to the forwarded local port: drop --host");

  const cluster = await ctx.cluster();
  const ns = cluster.namespace;
  const what = `imagingconnection ${ns}/${name}`;
  const imc = await cluster.get<ImagingConnection>(IMAGING_CONNECTION_KIND.type, ns, name);
  if (!imc) throw new PluginError(`${what} not found: list them with kubectl mtls status -n ${ns}`);
  const declaration = imc.status?.declaration;
  if (!declaration?.host || !declaration.port || !declaration.user || !declaration.database) {
    throw new PluginError(`${what} has no complete status.declaration yet: see kubectl mtls status imc/${name} -n ${ns}`);
  }
  const endpoint = checkEndpoint(declaration, { host: stringFlag(invocation, "host"), port: stringFlag(invocation, "port") });
  const credentials = await readCredentials(cluster, ns, imc.status?.certificate?.secretName ?? imc.spec.secretName ?? `${name}-client-tls`, name);

  let tunnel: PortForward | undefined;
  if (forward) {
    const target = forwardTarget(declaration.host);
    if (!target) throw new PluginError(`${declaration.host} names no Service (<svc>.<ns>.svc): --port-forward cannot tell where to forward; use --host/--port instead`);
    const args = portForwardArgs(target, endpoint.port, { kubeconfig: stringFlag(invocation, "kubeconfig"), context: stringFlag(invocation, "context") });
    tunnel = await startPortForward(process.env.KUBECTL || "kubectl", args);
  }
  try {
    const host = tunnel ? "127.0.0.1" : endpoint.host;
    const port = tunnel ? tunnel.localPort : endpoint.port;
    const where = `${host}:${port}${tunnel ? ` (port-forward to ${declaration.host}:${endpoint.port})` : ""}`;
    const result = await querySession(
      { host, port, servername: endpoint.serverName, database: declaration.database, user: declaration.user, timeoutMs, applicationName: "kubectl-mtls check", cert: credentials.cert, key: credentials.key, ca: credentials.ca },
      async (client) => (await client.query<Row>(QUERY)).rows[0],
    );
    const status = imc.status?.certificate?.serialNumber;
    const { serial } = credentials;
    if (!result.ok) {
      const revokedBy = serial ? await revokingDatabase(cluster, imc, ns, serial) : undefined;
      const login = { connection: what, endpoint: where, user: declaration.user, serial, statusCommand: `kubectl mtls status imc/${name} -n ${ns}` };
      ctx.out.stdout(renderRefusal(login, result, revokedBy));
      return EXIT.notReady;
    }
    const row = result.value;
    const clientSerial = serialFromDecimal(row?.client_serial ?? null);
    const view: CheckResult = {
      connection: what,
      endpoint: where,
      serverName: endpoint.serverName,
      latencyMs: result.latencyMs,
      serverVersion: row?.version ?? "",
      currentUser: row?.user ?? "",
      database: row?.database ?? "",
      ssl: row?.ssl === true,
      tlsVersion: row?.tls_version ?? null,
      cipher: row?.cipher ?? null,
      clientSerial,
      clientDN: row?.client_dn ?? null,
      clientSerialMatchesStatus: clientSerial === null || !status ? null : clientSerial === normalizeSerialNumber(status),
      serverCertificate: {
        subject: result.servedSubject,
        serialNumber: result.servedSerialNumber,
        notAfter: timestamp(new Date(result.servedNotAfter)),
        daysLeft: daysUntil(result.servedNotAfter, ctx.now) ?? null,
      },
    };
    ctx.out.stdout(format === "text" ? renderCheck(view) : renderDocument(view, format));
    return EXIT.ok;
  } finally {
    tunnel?.stop();
  }
}

/** The PEM material of the connection's Secret: its certificate, its key, and the roots that verify the server. */
async function readCredentials(cluster: Cluster, ns: string, secretName: string, name: string): Promise<{ cert: string; key: string; ca: string; serial: string | undefined }> {
  const secret = await cluster.getSecret(ns, secretName);
  if (!secret) throw new PluginError(`secret ${ns}/${secretName} not found: the operator has not issued imc/${name} a certificate yet (kubectl mtls status imc/${name} -n ${ns})`);
  const data = secretBytes(secret);
  const pick = (...keys: string[]) => keys.map((k) => data[k]).find((v) => v !== undefined && v.length > 0)?.toString("utf8");
  const cert = pick(SECRET_KEYS.tlsCrt, SECRET_KEYS.clientCrt);
  const key = pick(SECRET_KEYS.tlsKey, SECRET_KEYS.clientKey);
  const ca = pick(SECRET_KEYS.rootCrt, SECRET_KEYS.caCrt);
  if (!cert || !key || !ca) throw new PluginError(`secret ${ns}/${secretName} lacks tls.crt, tls.key or root.crt: kubectl mtls inspect secret ${secretName} -n ${ns}`);
  let serial: string | undefined;
  try {
    serial = parseCertificates(Buffer.from(cert, "utf8"), SECRET_KEYS.tlsCrt)[0]?.serialNumber;
  } catch {
    serial = undefined; // the session's own credential check reports an unreadable certificate
  }
  return { cert, key, ca, serial };
}

/** `securedatabase ns/name` when the connection's database lists the serial as revoked; undefined otherwise or unreadable. */
async function revokingDatabase(cluster: Cluster, imc: ImagingConnection, ns: string, serial: string): Promise<string | undefined> {
  const ref = { namespace: imc.spec.databaseRef.namespace ?? ns, name: imc.spec.databaseRef.name };
  try {
    const sdb = await cluster.get<SecureDatabase>(SECURE_DATABASE_KIND.type, ref.namespace, ref.name);
    const revoked = (sdb?.status?.trust?.revokedSerials ?? []).some((s) => normalizeSerialNumber(s) === normalizeSerialNumber(serial));
    return revoked ? `securedatabase ${ref.namespace}/${ref.name}` : undefined;
  } catch {
    return undefined; // only a hint: without read access to the database the refusal still stands on its own
  }
}
