/**
 * `kubectl mtls status`: every SecureDatabase and ImagingConnection in one table, or one of them in full
 * (conditions, what it waits on, the certificates of the Secrets it names, its events). Exit code 1 when anything
 * shown is not Ready. The rows and the detail are pure functions of what was read; run() only reads.
 */
import { isReason, REASON_DESCRIPTIONS } from "../api/reasons";
import { SECURE_DATABASE, type Condition, type ConditionStatus } from "../api/types";
import { secretBytes } from "../kube/secrets";
import { parseCertificates } from "../pki";
import { certificateView, renderCertificate, secretKeyOrder, type CertificateView } from "./certificates";
import { booleanFlag, choiceFlag, type Invocation, type Verb, type VerbContext } from "./command";
import { EXIT, PluginError, type ExitCode } from "./errors";
import { firstLine, type Cluster, type EventObject } from "./kube";
import { ABSENT, age, daysUntil, OUTPUT_FORMATS, renderDocument, renderFields, renderTable, timestamp, type Output, type OutputFormat } from "./output";
import { KINDS, kindInfo, parseResourceRef, readyCondition, toResource, type KindName, type Resource } from "./resources";

// ------------------------------------------------------------------------------------------------ rows (pure)

/** One line of the table; null where the status does not say. */
export interface StatusRow {
  readonly kind: KindName;
  readonly namespace: string;
  readonly name: string;
  readonly ready: ConditionStatus | null;
  readonly reason: string | null;
  readonly message: string | null;
  readonly certificate: { readonly notAfter: string | null; readonly daysLeft: number | null; readonly renewalTime: string | null };
  readonly lastVerification: string | null;
  /** SecureDatabases only. */
  readonly caRotationPhase: string | null;
  /** SecureDatabases only: serials their CRL revokes. */
  readonly revokedCount: number | null;
}

export function statusRow(resource: Resource, now: Date): StatusRow {
  const ready = readyCondition(resource.status);
  const certificate = resource.kind === SECURE_DATABASE.kind ? resource.status?.serverCertificate : resource.status?.certificate;
  const database = resource.kind === SECURE_DATABASE.kind ? resource.status : undefined;
  return {
    kind: resource.kind,
    namespace: resource.object.metadata.namespace ?? "",
    name: resource.object.metadata.name,
    ready: ready?.status ?? null,
    reason: ready?.reason ?? null,
    message: ready?.message ?? resource.statusProblem ?? null,
    certificate: {
      notAfter: certificate?.notAfter ?? null,
      daysLeft: daysUntil(certificate?.notAfter, now) ?? null,
      renewalTime: certificate?.renewalTime ?? null,
    },
    lastVerification: resource.status?.verification?.lastSuccessTime ?? null,
    caRotationPhase: database?.caRotation?.phase ?? null,
    revokedCount: database?.trust ? (database.trust.revokedSerials?.length ?? 0) : null,
  };
}

/** Databases first, then connections; by namespace and name within each. */
export function sortRows(rows: readonly StatusRow[]): StatusRow[] {
  const order = (r: StatusRow) => KINDS.findIndex((k) => k.kind === r.kind);
  return [...rows].sort((a, b) => order(a) - order(b) || a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
}

/** 1 when anything shown is not Ready (no Ready condition counts as not Ready), else 0. */
export function statusExitCode(rows: readonly Pick<StatusRow, "ready">[]): ExitCode {
  return rows.every((r) => r.ready === "True") ? EXIT.ok : EXIT.notReady;
}

const cell = <T>(v: T | null): T | undefined => v ?? undefined;

export function renderStatusTable(rows: readonly StatusRow[], now: Date): string {
  return renderTable(
    ["kind", "namespace", "name", "ready", "reason", "expires", "days left", "renewal", "verified", "ca rotation", "revoked"],
    rows.map((r) => [
      r.kind,
      r.namespace,
      r.name,
      cell(r.ready),
      cell(r.reason),
      shortTime(r.certificate.notAfter),
      cell(r.certificate.daysLeft),
      shortTime(r.certificate.renewalTime),
      ago(r.lastVerification, now),
      cell(r.caRotationPhase),
      cell(r.revokedCount),
    ]),
  );
}

/** A status time to the second (the operator writes some with milliseconds): the table's columns stay narrow. */
function shortTime(time: string | null): string | undefined {
  const at = time === null ? NaN : Date.parse(time);
  return Number.isFinite(at) ? timestamp(new Date(at)) : cell(time);
}

function ago(time: string | null, now: Date): string | undefined {
  const a = age(time ?? undefined, now);
  return a === undefined ? undefined : `${a} ago`;
}

// ---------------------------------------------------------------------------------------------- detail (pure)

export interface WaitingOn {
  readonly type: string;
  readonly status: ConditionStatus;
  readonly reason: string;
  readonly message: string;
  /** What the reason means, from the operator's vocabulary (src/api/reasons.ts). */
  readonly meaning: string | null;
}

export interface SecretCertificates {
  /** `<namespace>/<name>`. */
  readonly secret: string;
  /** Why it could not be read, when it could not. */
  readonly problem: string | null;
  readonly certificates: readonly (CertificateView & { readonly key: string; readonly index: number })[];
}

export interface EventView {
  readonly type: string | null;
  readonly reason: string | null;
  readonly message: string | null;
  readonly count: number;
  readonly lastSeen: string | null;
}

export interface StatusDetail extends StatusRow {
  readonly conditions: readonly Condition[];
  readonly waitingOn: readonly WaitingOn[];
  readonly secrets: readonly SecretCertificates[];
  readonly events: readonly EventView[];
}

/** What was read of a Secret the resource names: its data, or why not. */
export interface SecretRead {
  readonly namespace: string;
  readonly name: string;
  readonly data?: Readonly<Record<string, Buffer>>;
  readonly problem?: string;
}

/** The Secrets a resource names in its status that live in its namespace (a CA key kept elsewhere is not read). */
export function secretsNamedBy(resource: Resource): string[] {
  const ns = resource.object.metadata.namespace ?? "";
  if (resource.kind !== SECURE_DATABASE.kind) {
    return resource.status?.certificate?.secretName ? [resource.status.certificate.secretName] : [];
  }
  const names: string[] = [];
  if (resource.status?.serverCertificate?.secretName) names.push(resource.status.serverCertificate.secretName);
  const ca = resource.status?.ca;
  // A generated CA's Secret lives in the operator's key namespace; its certificate is in the server Secret's ca.crt.
  if (ca?.secretName && ca.keySecret === `${ns}/${ca.secretName}`) names.push(ca.secretName);
  return names;
}

/** Every certificate of a Secret's PEM keys, once each (client.crt repeats tls.crt): tls.crt's, ca.crt's, then the others'. */
export function secretCertificates(read: SecretRead, now: Date): SecretCertificates {
  const secret = `${read.namespace}/${read.name}`;
  if (!read.data) return { secret, problem: read.problem ?? "not found", certificates: [] };
  const seen = new Set<string>();
  const certificates: SecretCertificates["certificates"][number][] = [];
  for (const key of secretKeyOrder(Object.keys(read.data))) {
    let parsed;
    try {
      parsed = parseCertificates(read.data[key] ?? Buffer.alloc(0), key);
    } catch {
      continue; // not a certificate: inspect secret reports every key
    }
    for (const [i, facts] of parsed.entries()) {
      if (seen.has(facts.fingerprintSha256)) continue;
      seen.add(facts.fingerprintSha256);
      certificates.push({ key, index: i + 1, ...certificateView(facts, now) });
    }
  }
  return { secret, problem: null, certificates };
}

export function eventView(e: EventObject, now: Date): EventView {
  const last = e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata.creationTimestamp;
  return { type: e.type ?? null, reason: e.reason ?? null, message: e.message ?? null, count: e.count ?? 1, lastSeen: age(last ?? undefined, now) ?? null };
}

/** Conditions that keep Ready back, in the operator's own judgement (e.g. Revoked=False and CARotating=False do not). */
export function waitingOn(resource: Resource): WaitingOn[] {
  const info = kindInfo(resource.kind);
  return (resource.status?.conditions ?? [])
    .filter((c) => info.blocks(c))
    .map((c) => ({ type: c.type, status: c.status, reason: c.reason, message: c.message, meaning: isReason(c.reason) ? REASON_DESCRIPTIONS[c.reason] : null }));
}

export function statusDetail(resource: Resource, secrets: readonly SecretRead[], events: readonly EventObject[], now: Date): StatusDetail {
  return {
    ...statusRow(resource, now),
    conditions: resource.status?.conditions ?? [],
    waitingOn: waitingOn(resource),
    secrets: secrets.map((s) => secretCertificates(s, now)),
    events: events.map((e) => eventView(e, now)),
  };
}

/** How many of the latest events the text view shows (-o json/yaml give them all). */
const EVENTS_SHOWN = 10;

export function renderStatusDetail(d: StatusDetail, now: Date): string {
  const expiry = d.certificate.notAfter ? `${shortTime(d.certificate.notAfter)} (${d.certificate.daysLeft ?? ABSENT} days left)` : ABSENT;
  const verified = d.lastVerification ? `${shortTime(d.lastVerification)} (${ago(d.lastVerification, now) ?? ABSENT})` : ABSENT;
  let text = `${d.kind} ${d.namespace}/${d.name}\n`;
  text += renderFields([
    ["Ready", [d.ready ?? ABSENT, d.reason ?? ""].join(" ").trim()],
    ["Message", cell(d.message)],
    ["Certificate expires", expiry],
    ["Renewal", shortTime(d.certificate.renewalTime)],
    ["Last verified", verified],
    ...(d.kind === SECURE_DATABASE.kind
      ? ([
          ["CA rotation", cell(d.caRotationPhase)],
          ["Revoked serials", cell(d.revokedCount)],
        ] as const)
      : []),
  ]);
  text += "\nConditions:\n";
  text +=
    d.conditions.length === 0
      ? "  none yet: the operator has not reported on it (is it running and watching this namespace?)\n"
      : indent(renderTable(["type", "status", "reason", "age", "message"], d.conditions.map((c) => [c.type, c.status, c.reason, age(c.lastTransitionTime, now), c.message])));
  text += "\nWaiting on:\n";
  text +=
    d.waitingOn.length === 0
      ? d.ready === "True"
        ? "  nothing\n"
        : "  no condition says yet\n"
      : d.waitingOn.map((w) => `  ${w.type} ${w.status} ${w.reason}: ${w.message}\n${w.meaning ? `    (${w.reason}: ${w.meaning})\n` : ""}`).join("");
  text += "\nCertificates:\n";
  if (d.secrets.length === 0) text += "  none named in status yet\n";
  for (const s of d.secrets) {
    text += `  Secret ${s.secret}${s.problem ? `: ${s.problem}` : ""}\n`;
    for (const c of s.certificates) text += renderCertificate(`${c.key} #${c.index}`, c, "      ").replace(/^ {2}/, "    ");
  }
  text += "\nEvents:\n";
  const events = d.events.slice(-EVENTS_SHOWN);
  text +=
    events.length === 0
      ? "  none\n"
      : indent(renderTable(["last seen", "type", "reason", "count", "message"], events.map((e) => [e.lastSeen ?? undefined, e.type ?? undefined, e.reason ?? undefined, e.count, e.message ?? undefined])));
  return text;
}

function indent(text: string): string {
  return text.replace(/^(?=.)/gm, "  ");
}

// ------------------------------------------------------------------------------------------------------ I/O

const HELP = `kubectl mtls status: the SecureDatabases and ImagingConnections, Ready or not, and why.

Usage:
  kubectl mtls status [-n NS | -A] [-o table|json|yaml]      every database and connection, one table
  kubectl mtls status [-n NS] NAME | sdb/NAME | imc/NAME     one in full: conditions, what it waits on,
                                                            its certificates, its recent events

Columns: KIND, NAMESPACE, NAME, READY and REASON (the Ready condition), EXPIRES and DAYS LEFT (the server or client
certificate), RENEWAL (when the operator renews it), VERIFIED (the last successful live check), CA ROTATION (the
phase) and REVOKED (serials the CRL revokes): "-" where the status does not say.

Flags:
  -A, --all-namespaces    every namespace
  -o, --output FORMAT     table (default), json or yaml

Exit codes: 0 everything shown is Ready, 1 something is not, 2 the command failed.
`;

export const statusVerb: Verb = {
  name: "status",
  summary: "databases and connections: Ready, reason, certificate expiry, renewal, verification, CA rotation",
  help: HELP,
  options: {
    "all-namespaces": { type: "boolean", short: "A" },
    output: { type: "string", short: "o" },
  },
  completes: { arguments: { kinds: ["sdb", "imc"] }, flags: { output: { words: OUTPUT_FORMATS } } },
  run,
};

async function run(invocation: Invocation, ctx: VerbContext): Promise<ExitCode> {
  const format = choiceFlag(invocation, "output", OUTPUT_FORMATS, "table", "status");
  const all = booleanFlag(invocation, "all-namespaces");
  if (invocation.positionals.length > 1) throw new PluginError(`status takes at most one NAME, got ${invocation.positionals.length}: see kubectl mtls status --help`);
  const ref = invocation.positionals[0];
  if (ref !== undefined && all) throw new PluginError("a NAME is looked up in one namespace: drop -A and give -n NS");
  const cluster = await ctx.cluster();
  return ref === undefined ? listAll(cluster, all ? undefined : cluster.namespace, format, ctx) : showOne(cluster, ref, format, ctx);
}

async function listAll(cluster: Cluster, namespace: string | undefined, format: OutputFormat, ctx: VerbContext): Promise<ExitCode> {
  const lists = await Promise.all(KINDS.map(async (k) => (await cluster.list(k.type, namespace)).map((o) => toResource(k.kind, o))));
  const rows = sortRows(lists.flat().map((r) => statusRow(r, ctx.now)));
  if (format !== "table") ctx.out.stdout(renderDocument({ items: rows }, format));
  else if (rows.length === 0) ctx.out.stderr(`No SecureDatabases or ImagingConnections found${namespace ? ` in namespace ${namespace}` : ""}.\n`);
  else ctx.out.stdout(renderStatusTable(rows, ctx.now));
  return statusExitCode(rows);
}

async function showOne(cluster: Cluster, ref: string, format: OutputFormat, ctx: VerbContext): Promise<ExitCode> {
  const { kind, name } = parseResourceRef(ref);
  const ns = cluster.namespace;
  const kinds = kind ? [kindInfo(kind)] : KINDS;
  const found = (await Promise.all(kinds.map(async (k) => ({ k, object: await cluster.get(k.type, ns, name) })))).flatMap(({ k, object }) =>
    object ? [toResource(k.kind, object)] : [],
  );
  if (found.length === 0) {
    const what = kind ? `${kindInfo(kind).names.singular} ${ns}/${name} not found` : `no securedatabase or imagingconnection named ${name} in namespace ${ns}`;
    throw new PluginError(`${what}: list them with kubectl mtls status -n ${ns}`);
  }
  const details = await Promise.all(found.map((r) => detailOf(cluster, r, ctx.now)));
  writeDetails(details, format, ctx.out, ctx.now);
  return statusExitCode(details);
}

async function detailOf(cluster: Cluster, resource: Resource, now: Date): Promise<StatusDetail> {
  const ns = resource.object.metadata.namespace ?? cluster.namespace;
  const secrets = await Promise.all(secretsNamedBy(resource).map((name) => readSecret(cluster, ns, name)));
  const events = await cluster.events({ kind: resource.kind, metadata: resource.object.metadata });
  return statusDetail(resource, secrets, events, now);
}

async function readSecret(cluster: Cluster, namespace: string, name: string): Promise<SecretRead> {
  try {
    const secret = await cluster.getSecret(namespace, name);
    if (!secret) return { namespace, name, problem: "not found" };
    return { namespace, name, data: secretBytes(secret) };
  } catch (err) {
    // Without read access to Secrets the rest of the detail is still worth showing.
    return { namespace, name, problem: firstLine(err) };
  }
}

function writeDetails(details: readonly StatusDetail[], format: OutputFormat, out: Output, now: Date): void {
  if (format === "table") out.stdout(details.map((d) => renderStatusDetail(d, now)).join("\n"));
  else out.stdout(renderDocument(details.length === 1 ? details[0] : { items: details }, format));
}
