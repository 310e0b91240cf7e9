/**
 * `kubectl mtls revoke imc/NAME | --serial S | --fingerprint F`: adds an entry to the database's
 * spec.trust.revocations by server-side apply as its own field manager (kubectl-mtls), then waits until the CRL
 * lists the serial (status.trust.revokedSerials). The list is `x-kubernetes-list-type: atomic` in the CRD: an apply
 * owns the whole list, so the apply carries every entry already there plus the new one, under a resourceVersion
 * precondition so an entry added meanwhile is never dropped. What to apply and what counts as done are pure.
 */
import { API_VERSION, IMAGING_CONNECTION, OWNER_LABEL, ownerLabelValue, REVOCATION_REASONS, SECURE_DATABASE, type ImagingConnection, type Revocation, type RevocationReason, type SecureDatabase } from "../api/types";
import { validateSecureDatabase } from "../api/validate";
import { RESOURCES } from "../kube/resources";
import { normalizeFingerprint, normalizeSerialNumber, PkiError } from "../pki";
import type { ConfigMapObject } from "../reconcilers/context";
import { ledgerNames, parseLedger } from "../reconcilers/issued-ledger";
import { booleanFlag, choiceFlag, durationFlag, stringFlag, type Invocation, type Verb, type VerbContext } from "./command";
import { EXIT, PluginError, type ExitCode } from "./errors";
import { follow, type Progress } from "./follow";
import { PLUGIN_FIELD_MANAGER, type Cluster } from "./kube";
import { renderDocument } from "./output";
import { parseResourceRef, SECURE_DATABASE_KIND, IMAGING_CONNECTION_KIND, toResource, type Resource } from "./resources";
import { blockingCondition, rotationTimeoutMessage } from "./rotate";

// ------------------------------------------------------------------------------------------------------ pure

export interface ObjectName {
  readonly namespace: string;
  readonly name: string;
}

/** What the user designates: a serial, a fingerprint, or a whole connection (every certificate it was issued). */
export type Designation = { readonly serial: string } | { readonly fingerprint: string } | { readonly connection: ObjectName };

/** The spec entry for a designation, in the canonical forms (lower-case hex); the reason as given. */
export function revocationEntry(d: Designation, reason: RevocationReason, database: ObjectName): Revocation {
  try {
    if ("serial" in d) return { serialNumber: normalizeSerialNumber(d.serial), reason };
    if ("fingerprint" in d) return { sha256Fingerprint: normalizeFingerprint(d.fingerprint), reason };
  } catch (err) {
    if (err instanceof PkiError) throw new PluginError(`${err.message} (kubectl mtls revoke --help)`);
    throw err;
  }
  const ns = d.connection.namespace === database.namespace ? {} : { connectionNamespace: d.connection.namespace };
  return { connectionName: d.connection.name, ...ns, reason };
}

/** Whether two entries designate the same thing (whatever their reasons and spellings). */
export function sameRevocation(a: Revocation, b: Revocation, databaseNamespace: string): boolean {
  const canon = (r: Revocation): string => {
    try {
      if (r.serialNumber) return `serial:${normalizeSerialNumber(r.serialNumber)}`;
      if (r.sha256Fingerprint) return `fingerprint:${normalizeFingerprint(r.sha256Fingerprint)}`;
    } catch {
      return `invalid:${JSON.stringify(r)}`;
    }
    return `connection:${r.connectionNamespace ?? databaseNamespace}/${r.connectionName ?? ""}`;
  };
  return canon(a) === canon(b);
}

export interface RevocationApply {
  /** The apply configuration: the database's identity and spec.trust.revocations, nothing else. */
  readonly body: {
    apiVersion: typeof API_VERSION;
    kind: typeof SECURE_DATABASE.kind;
    metadata: { name: string; namespace: string; resourceVersion?: string };
    spec: { trust: { revocations: Revocation[] } };
  };
  /** The entry is there already: nothing to apply. */
  readonly alreadyListed: boolean;
}

/**
 * The apply that adds `entry`: every entry already listed, as it is, then the new one (atomic list). With
 * `precondition`, the resourceVersion read, so the API server refuses it if the list changed since.
 */
export function revocationApply(sdb: Pick<SecureDatabase, "metadata" | "spec">, entry: Revocation, precondition: boolean): RevocationApply {
  const namespace = sdb.metadata.namespace ?? "default";
  const existing = sdb.spec.trust?.revocations ?? [];
  const alreadyListed = existing.some((r) => sameRevocation(r, entry, namespace));
  const metadata = { name: sdb.metadata.name, namespace, ...(precondition && sdb.metadata.resourceVersion ? { resourceVersion: sdb.metadata.resourceVersion } : {}) };
  return {
    body: { apiVersion: API_VERSION, kind: SECURE_DATABASE.kind, metadata, spec: { trust: { revocations: alreadyListed ? [...existing] : [...existing, entry] } } },
    alreadyListed,
  };
}

/** The operator's own validation of the database with the new list, restricted to the revocations: one line, or undefined. */
export function revocationProblem(sdb: SecureDatabase, revocations: readonly Revocation[]): string | undefined {
  const errors = validateSecureDatabase({ ...sdb, spec: { ...sdb.spec, trust: { ...sdb.spec.trust, revocations } } }).filter((e) => e.field.startsWith("spec.trust.revocations"));
  return errors.length === 0 ? undefined : errors.map((e) => `${e.field}: ${e.message}`).join("; ");
}

/** The serial a ledger (its ConfigMaps' data) records for a fingerprint, or undefined. */
export function serialOfFingerprint(ledgerData: readonly (Readonly<Record<string, string>> | undefined)[], fingerprint: string): string | undefined {
  const wanted = normalizeFingerprint(fingerprint);
  for (const data of ledgerData) {
    for (const [serial, entry] of parseLedger(data)) if (entry.sha256Fingerprint && normalizeFingerprint(entry.sha256Fingerprint) === wanted) return serial;
  }
  return undefined;
}

/** Done when the CRL the operator signed lists the serial. */
export function revocationProgress(serial: string, r: Resource): Progress {
  const trust = r.kind === SECURE_DATABASE.kind ? r.status?.trust : undefined;
  const listed = (trust?.revokedSerials ?? []).some((s) => normalizeSerialNumber(s) === serial);
  if (listed) return { phase: "done", line: `the CRL lists serial ${serial} (CRL number ${trust?.crlNumber ?? "-"})`, done: true };
  const block = blockingCondition(r);
  return {
    phase: `waiting:${block?.key ?? ""}`,
    line: `waiting for the operator to list serial ${serial} in the CRL${block ? ` (${block.text})` : ""}`,
    done: false,
  };
}

/** What --dry-run prints: the apply configuration as YAML, to commit where the database's manifest lives. */
export function renderRevocationApply(a: RevocationApply): string {
  return renderDocument(a.body, "yaml");
}

// ------------------------------------------------------------------------------------------------------ I/O

const HELP = `kubectl mtls revoke: stop a database accepting a client certificate, and wait until its CRL says so.

Usage:
  kubectl mtls revoke [-n NS] imc/NAME [--connection] [--reason R] [--dry-run]
  kubectl mtls revoke [-n NS] --serial S --database sdb/NAME [--reason R] [--dry-run]
  kubectl mtls revoke [-n NS] --fingerprint F --database sdb/NAME [--reason R] [--dry-run]

Adds an entry to the database's spec.trust.revocations:
  imc/NAME         the connection's current certificate (status.certificate.serialNumber), in the database its
                   spec.databaseRef names. The operator re-issues the connection a new certificate with a new key.
  --connection     with imc/NAME: the connection itself (connectionName): every certificate it was issued, and no
                   new one until the entry is removed.
  --serial S       a serial in hex (3f0a…, or 3F:0A:… as openssl x509 -serial prints it)
  --fingerprint F  a SHA-256 fingerprint (openssl x509 -fingerprint -sha256), resolved through the operator's ledger
Then waits until status.trust.revokedSerials lists the serial: the CRL is signed and in the server Secret, and the
operator reloads the server, which refuses the certificate from then on.

The change is a server-side apply with the field manager kubectl-mtls, so GitOps tools see who made it.
spec.trust.revocations is an atomic list in the CRD: the apply carries the whole list, every entry already there
plus the new one, and owns it from then on. If another manager (your GitOps tool) owns the list, the apply is
refused: commit the --dry-run output where your manifests live, or take the list over with --force-conflicts
(the next sync then puts its own list back unless it holds the entry too).

Flags:
      --database sdb/NAME   the database (required with --serial and --fingerprint)
      --reason R            the CRL reason: ${REVOCATION_REASONS.join(", ")} (default unspecified)
      --dry-run             print the apply configuration (YAML, what to commit) and change nothing
      --force-conflicts     take spec.trust.revocations over from the manager that owns it
      --timeout D           how long to wait for the CRL (default 2m)

Exit codes: 0 the CRL lists it (or --dry-run printed it), 1 timed out or the fingerprint designates no certificate
the operator issued, 2 the command failed (a reason not in the list, a missing object, a refused apply).
`;

export const revokeVerb: Verb = {
  name: "revoke",
  summary: "revoke a connection's certificate (or a serial, a fingerprint) in its database's CRL, by server-side apply",
  help: HELP,
  options: {
    serial: { type: "string" },
    fingerprint: { type: "string" },
    connection: { type: "boolean" },
    database: { type: "string" },
    reason: { type: "string" },
    "dry-run": { type: "boolean" },
    "force-conflicts": { type: "boolean" },
    timeout: { type: "string" },
  },
  completes: { arguments: { kinds: ["imc"] }, flags: { database: { kinds: ["sdb"] }, reason: { words: REVOCATION_REASONS } } },
  run,
};

/** The 409 of a resourceVersion precondition (not a field owned by another manager). */
const MODIFIED = /the object has been modified/i;

/** What the command line designates, resolved against the cluster: the database, the entry, the serial to wait for. */
interface Resolved {
  readonly database: ObjectName;
  readonly designation: Designation;
  /** Undefined: a fingerprint the ledger does not know. */
  readonly serial: string | undefined;
  readonly what: string;
}

async function run(invocation: Invocation, ctx: VerbContext): Promise<ExitCode> {
  const reason = choiceFlag(invocation, "reason", REVOCATION_REASONS, "unspecified", "revoke");
  const timeoutMs = durationFlag(invocation, "timeout", "2m", "revoke");
  const dryRun = booleanFlag(invocation, "dry-run");
  const args = revokeArgs(invocation);
  const cluster = await ctx.cluster();
  const target = await resolve(args, cluster);
  const entry = revocationEntry(target.designation, reason, target.database);
  const sdbWhat = `securedatabase ${target.database.namespace}/${target.database.name}`;

  for (let attempt = 0; ; attempt++) {
    const sdb = await cluster.get<SecureDatabase>(SECURE_DATABASE_KIND.type, target.database.namespace, target.database.name);
    if (!sdb) throw new PluginError(`${sdbWhat} not found: list them with kubectl mtls status -n ${target.database.namespace}`);
    const plan = revocationApply(sdb, entry, !dryRun);
    const problem = revocationProblem(sdb, plan.body.spec.trust.revocations);
    if (problem) throw new PluginError(`${sdbWhat} would not accept it: ${problem}`);
    if (dryRun) {
      ctx.out.stdout(renderRevocationApply(plan));
      ctx.out.stderr(`dry run: nothing changed. Apply it with kubectl apply --server-side --field-manager=${PLUGIN_FIELD_MANAGER} -f FILE, or commit it${plan.alreadyListed ? ` (${target.what} is listed already)` : ""}\n`);
      return EXIT.ok;
    }
    if (plan.alreadyListed) {
      ctx.out.stdout(`${sdbWhat} lists ${target.what} already\n`);
      break;
    }
    const result = await cluster.apply(SECURE_DATABASE_KIND.type, target.database.namespace, target.database.name, plan.body, booleanFlag(invocation, "force-conflicts"));
    if (!("conflict" in result)) {
      ctx.out.stdout(`${sdbWhat}: revoked ${target.what} (spec.trust.revocations, reason ${reason}, field manager ${PLUGIN_FIELD_MANAGER})\n`);
      break;
    }
    // The object changed between the read and the apply: read again, so an entry added meanwhile is not lost.
    if (MODIFIED.test(result.conflict) && attempt < 4) continue;
    throw new PluginError(
      MODIFIED.test(result.conflict)
        ? `${sdbWhat} keeps changing under the apply (${result.conflict}): try again`
        : `${sdbWhat} refused the apply: ${result.conflict}: another manager owns spec.trust.revocations; commit the entry where it is managed ` +
            `(kubectl mtls revoke ... --dry-run prints it) or take the list over with --force-conflicts`,
    );
  }

  if (target.serial === undefined) {
    ctx.out.stderr(`the operator's ledger knows no certificate with fingerprint ${entry.sha256Fingerprint}: it reports the entry as RevocationUnresolved until one is issued (kubectl mtls status sdb/${target.database.name} -n ${target.database.namespace})\n`);
    return EXIT.notReady;
  }
  const serial = target.serial;
  const followed = await follow(
    async () => {
      const sdb = await cluster.get(SECURE_DATABASE_KIND.type, target.database.namespace, target.database.name);
      if (!sdb) throw new PluginError(`${sdbWhat} was deleted while revoking`);
      return toResource(SECURE_DATABASE.kind, sdb);
    },
    (r) => revocationProgress(serial, r),
    { timeoutMs, out: ctx.out },
  );
  if (followed.done) return EXIT.ok;
  ctx.out.stderr(`${rotationTimeoutMessage(followed.progress, followed.value, timeoutMs)}\n`);
  return EXIT.notReady;
}

/** What the command line asks for, checked before any cluster is contacted. */
export type RevokeArgs =
  | { readonly connection: string; readonly whole: boolean; readonly database: string | undefined }
  | { readonly serial: string; readonly database: string }
  | { readonly fingerprint: string; readonly database: string };

export function revokeArgs(invocation: Invocation): RevokeArgs {
  const serial = stringFlag(invocation, "serial");
  const fingerprint = stringFlag(invocation, "fingerprint");
  const database = stringFlag(invocation, "database");
  const whole = booleanFlag(invocation, "connection");
  const [ref, ...extra] = invocation.positionals;
  const given = [ref !== undefined, serial !== undefined, fingerprint !== undefined].filter(Boolean).length;
  if (given !== 1 || extra.length > 0) throw new PluginError("revoke takes one of imc/NAME, --serial S or --fingerprint F (kubectl mtls revoke --help)");
  if (ref !== undefined) {
    const { kind, name } = parseResourceRef(ref);
    if (kind !== undefined && kind !== IMAGING_CONNECTION.kind) throw new PluginError("revoke takes a connection (imc/NAME), or --serial / --fingerprint with --database sdb/NAME");
    return { connection: name, whole, database };
  }
  if (whole) throw new PluginError("--connection revokes a connection: write kubectl mtls revoke imc/NAME --connection");
  if (database === undefined) throw new PluginError(`--${serial !== undefined ? "serial" : "fingerprint"} needs the database whose CRL lists it: add --database sdb/NAME`);
  return serial !== undefined ? { serial, database } : { fingerprint: fingerprint ?? "", database };
}

/** Reads what the command line names: the connection and its database and serial, or the database and the ledger. */
async function resolve(args: RevokeArgs, cluster: Cluster): Promise<Resolved> {
  const ns = cluster.namespace;
  const database = args.database === undefined ? undefined : databaseRef(args.database, ns);
  if ("serial" in args || "fingerprint" in args) {
    const db = database ?? databaseRef(args.database, ns);
    if ("serial" in args) {
      const designation = { serial: args.serial };
      const serial = revocationEntry(designation, "unspecified", db).serialNumber;
      return { database: db, designation, serial, what: `serial ${serial}` };
    }
    const designation = { fingerprint: args.fingerprint };
    const canonical = revocationEntry(designation, "unspecified", db).sha256Fingerprint ?? "";
    const ledger = await cluster.list<ConfigMapObject>(RESOURCES.ConfigMap, db.namespace, { labelSelector: `${OWNER_LABEL}=${ownerLabelValue(SECURE_DATABASE.kind, db.name)}` });
    const names = new Set(ledgerNames(db.name));
    const found = serialOfFingerprint(ledger.filter((cm) => names.has(cm.metadata.name)).map((cm) => cm.data), canonical);
    return { database: db, designation, serial: found, what: `fingerprint ${canonical}${found ? ` (serial ${found})` : ""}` };
  }
  const name = args.connection;
  const imc = await cluster.get<ImagingConnection>(IMAGING_CONNECTION_KIND.type, ns, name);
  if (!imc) throw new PluginError(`imagingconnection ${ns}/${name} not found: list them with kubectl mtls status -n ${ns}`);
  const own = { namespace: imc.spec.databaseRef.namespace ?? ns, name: imc.spec.databaseRef.name };
  if (database && (database.namespace !== own.namespace || database.name !== own.name)) {
    throw new PluginError(`imagingconnection ${ns}/${name} connects to securedatabase ${own.namespace}/${own.name}, not ${database.namespace}/${database.name}: drop --database`);
  }
  const current = imc.status?.certificate?.serialNumber;
  if (!current) throw new PluginError(`imagingconnection ${ns}/${name} has no certificate yet (status.certificate.serialNumber): see kubectl mtls status imc/${name} -n ${ns}`);
  const serial = normalizeSerialNumber(current);
  if (args.whole) return { database: own, designation: { connection: { namespace: ns, name } }, serial, what: `imagingconnection ${ns}/${name} (every certificate it was issued)` };
  return { database: own, designation: { serial: current }, serial, what: `certificate serial ${current} of imagingconnection ${ns}/${name}` };
}

/** `sdb/NAME` (or a bare NAME) → the database, in the command's namespace. */
function databaseRef(value: string, namespace: string): ObjectName {
  const { kind, name } = parseResourceRef(value);
  if (kind !== undefined && kind !== SECURE_DATABASE.kind) throw new PluginError(`--database names a SecureDatabase: write --database sdb/NAME, not ${value}`);
  return { namespace, name };
}
