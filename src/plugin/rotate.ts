/**
 * `kubectl mtls rotate sdb/NAME | imc/NAME [--ca]`: sets the rotate annotation the operator honours once per value
 * (mtls.imaging.dev/rotate, or mtls.imaging.dev/rotate-ca for a database's CA) to a fresh token, by a merge patch of
 * that one annotation, then follows the object until the new certificate is in use. What to patch and what counts
 * as done are pure functions of the object; run() patches and polls.
 */
import { randomBytes } from "node:crypto";
import { resolveSecureDatabase } from "../api/defaults";
import { ROTATE_ANNOTATION, SECURE_DATABASE, type SecureDatabase } from "../api/types";
import { ROTATE_CA_ANNOTATION } from "../reconcilers/secure-database/ca-rotation-plan";
import { booleanFlag, durationFlag, type Invocation, type Verb, type VerbContext } from "./command";
import { EXIT, PluginError, type ExitCode } from "./errors";
import { follow, type Progress } from "./follow";
import type { Cluster } from "./kube";
import { parseResourceRef, readyCondition, toResource, kindInfo, type KindName, type Resource } from "./resources";
import { waitingOn } from "./status";
import { formatDuration } from "../api/duration";

// ------------------------------------------------------------------------------------------------------ pure

/** What is rotated: a database's server certificate, a connection's client certificate, or a database's CA. */
export type RotationTarget = "server" | "client" | "ca";

/** What the object said before the annotation: the progress is judged against it. */
export interface RotationBaseline {
  /** The certificate's serial (server, client) or the CA's (ca). */
  readonly serial: string | undefined;
  /** server: the serial the server was seen serving. */
  readonly served: string | undefined;
}

export function rotationTarget(kind: KindName, ca: boolean): RotationTarget {
  if (kind !== SECURE_DATABASE.kind) {
    if (ca) throw new PluginError("--ca rotates a database's CA: write kubectl mtls rotate sdb/NAME --ca");
    return "client";
  }
  return ca ? "ca" : "server";
}

export function rotationAnnotation(target: RotationTarget): string {
  return target === "ca" ? ROTATE_CA_ANNOTATION : ROTATE_ANNOTATION;
}

/** The merge patch: that one annotation, nothing else of the object. */
export function rotationPatch(target: RotationTarget, token: string): { metadata: { annotations: Record<string, string> } } {
  return { metadata: { annotations: { [rotationAnnotation(target)]: token } } };
}

/** A token no earlier rotation used: the time, as the runbook's `date -u +%Y%m%dT%H%M%SZ`, and a random suffix. */
export function rotationToken(now: Date, random: string): string {
  return `${now.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}Z$/, "Z")}-${random}`;
}

export function rotationBaseline(target: RotationTarget, r: Resource): RotationBaseline {
  if (r.kind !== SECURE_DATABASE.kind) return { serial: r.status?.certificate?.serialNumber, served: undefined };
  if (target === "ca") return { serial: r.status?.ca?.serialNumber, served: undefined };
  return { serial: r.status?.serverCertificate?.serialNumber, served: r.status?.verification?.servedSerialNumber };
}

/** The condition that holds things back, in the operator's own judgement (else the Ready condition), as one phrase. */
export function blockingCondition(r: Resource): { key: string; text: string } | undefined {
  const [first] = waitingOn(r);
  const c = first ?? readyCondition(r.status);
  if (!c || c.status === "True") return undefined;
  return { key: `${c.type}/${c.reason}`, text: `${c.type} ${c.status} ${c.reason}: ${c.message}` };
}

function waiting(phase: string, line: string, r: Resource): Progress {
  const block = blockingCondition(r);
  return { phase: `${phase}:${block?.key ?? ""}`, line: block ? `${line} (${block.text})` : line, done: false };
}

/** Where a rotation stands: requested, issued, served / Ready, or a CA rotation's phase. */
export function rotationProgress(target: RotationTarget, before: RotationBaseline, token: string, r: Resource): Progress {
  if (r.kind !== SECURE_DATABASE.kind) {
    const cert = r.status?.certificate;
    const serial = cert?.serialNumber;
    if (cert?.lastRotationToken !== token || serial === undefined || serial === before.serial) {
      return waiting("requested", `rotation "${token}" requested: waiting for the operator to issue a new client certificate`, r);
    }
    const ready = readyCondition(r.status);
    const verified = r.status?.verification?.serialNumber;
    if (ready?.status !== "True" || (verified !== undefined && verified !== serial)) {
      return waiting(`issued`, `issued client certificate serial ${serial}: waiting for Ready`, r);
    }
    return { phase: "done", line: `client certificate serial ${serial} (was ${before.serial ?? "-"}) is in use: Ready True ${ready.reason}`, done: true };
  }
  if (target === "ca") {
    const phase = r.status?.caRotation?.phase ?? "Idle";
    const serial = r.status?.ca?.serialNumber;
    // The operator's message may start with the phase's name already.
    const message = (r.status?.caRotation?.message ?? "-").replace(new RegExp(`^${phase}: `), "");
    if (phase !== "Idle") return waiting(phase, `CA rotation ${phase}: ${message}`, r);
    if (serial === undefined || serial === before.serial) return waiting("requested", `CA rotation "${token}" requested: waiting for the operator to start it`, r);
    return { phase: "done", line: `the CA is rotated: serial ${serial} (was ${before.serial ?? "-"}), rotation Idle`, done: true };
  }
  const cert = r.status?.serverCertificate;
  const serial = cert?.serialNumber;
  if (cert?.lastRotationToken !== token || serial === undefined || serial === before.serial) {
    return waiting("requested", `rotation "${token}" requested: waiting for the operator to issue a new server certificate`, r);
  }
  const served = r.status?.verification?.servedSerialNumber;
  if (served !== serial || served === before.served) {
    return waiting("issued", `issued server certificate serial ${serial}: waiting for the server to serve it (it serves ${served ?? "-"})`, r);
  }
  return { phase: "done", line: `the server serves the new certificate, serial ${serial} (was ${before.served ?? before.serial ?? "-"})`, done: true };
}

/** The one line a timeout ends with: how long, where it stood, and the condition that held it back. */
export function rotationTimeoutMessage(progress: Progress, r: Resource, timeoutMs: number): string {
  const block = blockingCondition(r);
  return `timed out after ${formatDuration(timeoutMs)}: ${progress.line.replace(/ \(.*\)$/, "")}; ${block ? `held back by ${block.text}` : "no condition says why: is the operator running and watching this namespace?"}`;
}

// ------------------------------------------------------------------------------------------------------ I/O

const HELP = `kubectl mtls rotate: re-issue a certificate now, and follow it until it is in use.

Usage:
  kubectl mtls rotate [-n NS] sdb/NAME [--ca] [--timeout 2m] [--no-wait]
  kubectl mtls rotate [-n NS] imc/NAME [--timeout 2m] [--no-wait]

Sets the annotation mtls.imaging.dev/rotate (with --ca: mtls.imaging.dev/rotate-ca) to a new token, by a merge patch
of that annotation alone (field manager kubectl-mtls); the operator honours each value once. Then it follows the
object and prints a line each time the rotation moves on:
  sdb/NAME        done when the server serves the new server certificate (status.verification.servedSerialNumber)
  imc/NAME        done when the connection holds a new client certificate and is Ready
  sdb/NAME --ca   a generated CA: Overlap, Reissuing, Finishing, done when back to Idle with a new CA serial
                  (each phase waits spec.ca.propagationDelay, so the default timeout is 15m). A brought CA
                  (mode Provided) is rotated by putting the new CA in its Secret instead.
GitOps: the annotation is a field of the object; commit the same value (or remove it) so a sync does not revert it.

Flags:
      --ca             rotate the database's CA instead of its server certificate
      --timeout D      how long to follow (default 2m, 15m with --ca)
      --no-wait        annotate and return

Exit codes: 0 the new certificate is in use (or requested, with --no-wait), 1 timed out (the condition holding it
back is printed), 2 the command failed.
`;

export const rotateVerb: Verb = {
  name: "rotate",
  summary: "re-issue a server, client or CA certificate now and follow it until it is in use",
  help: HELP,
  options: { ca: { type: "boolean" }, timeout: { type: "string" }, "no-wait": { type: "boolean" } },
  completes: { arguments: { kinds: ["sdb", "imc"] } },
  run,
};

async function run(invocation: Invocation, ctx: VerbContext): Promise<ExitCode> {
  const [ref, ...extra] = invocation.positionals;
  if (ref === undefined || extra.length > 0) throw new PluginError("rotate takes one object: kubectl mtls rotate sdb/NAME | imc/NAME [-n NS]");
  const { kind, name } = parseResourceRef(ref);
  if (kind === undefined) throw new PluginError(`say what to rotate: sdb/${name} (its server certificate, or --ca its CA) or imc/${name} (its client certificate)`);
  const target = rotationTarget(kind, booleanFlag(invocation, "ca"));
  const timeoutMs = durationFlag(invocation, "timeout", target === "ca" ? "15m" : "2m", "rotate");
  const cluster = await ctx.cluster();
  const ns = cluster.namespace;
  const info = kindInfo(kind);
  const what = `${info.names.singular} ${ns}/${name}`;
  const object = await cluster.get<SecureDatabase>(info.type, ns, name);
  if (!object) throw new PluginError(`${what} not found: list them with kubectl mtls status -n ${ns}`);
  if (target === "ca") refuseBroughtCA(object, what);
  const before = rotationBaseline(target, toResource(kind, object));
  const token = rotationToken(ctx.now, randomBytes(3).toString("hex"));
  await cluster.mergePatch(info.type, ns, name, rotationPatch(target, token));
  ctx.out.stdout(`${what} annotated ${rotationAnnotation(target)}=${token}\n`);
  if (booleanFlag(invocation, "no-wait")) {
    ctx.out.stdout(`follow it with kubectl mtls status ${info.names.shortName}/${name} -n ${ns}\n`);
    return EXIT.ok;
  }
  const followed = await follow(() => read(cluster, kind, ns, name, what), (r) => rotationProgress(target, before, token, r), { timeoutMs, out: ctx.out });
  if (followed.done) return EXIT.ok;
  ctx.out.stderr(`${rotationTimeoutMessage(followed.progress, followed.value, timeoutMs)}\n`);
  return EXIT.notReady;
}

function refuseBroughtCA(sdb: SecureDatabase, what: string): void {
  let mode: string;
  try {
    mode = resolveSecureDatabase(sdb).ca.mode;
  } catch {
    return; // a spec the operator cannot resolve: it reports that itself, and the annotation does no harm
  }
  if (mode !== "Generated") {
    throw new PluginError(`${what} brings its own CA (spec.ca.mode ${mode}): rotate it by putting the new CA in its Secret spec.ca.secretName; the operator runs the overlap from there`);
  }
}

async function read(cluster: Cluster, kind: KindName, ns: string, name: string, what: string): Promise<Resource> {
  const object = await cluster.get(kindInfo(kind).type, ns, name);
  if (!object) throw new PluginError(`${what} was deleted while rotating`);
  return toResource(kind, object);
}
