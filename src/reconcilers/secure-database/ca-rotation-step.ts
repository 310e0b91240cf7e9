/**
 * The I/O of a CA rotation (the phase machine is in ca-rotation-plan.ts): reading the `<ca>`, `<ca>-next` and
 * `<ca>-previous` Secrets, writing them in a crash-safe order, probing the server with a certificate of the new CA,
 * and checking every client Secret of the database.
 */
import type { ResolvedSecureDatabaseSpec } from "../../api/defaults";
import { Reason } from "../../api/reasons";
import { OWNER_LABEL, OWNER_NAMESPACE_LABEL, SECURE_DATABASE_CONDITIONS as C } from "../../api/types";
import type { CARotationPhase, CARotationStatus } from "../../api/types";
import type { ConditionInput } from "../../kube/conditions";
import { secretBytes, type SecretObject } from "../../kube/secrets";
import {
  crlIssuedBy,
  generateCA,
  isIssuedBy,
  issueClientCertificate,
  loadCA,
  parseCertificates,
  renewalTime,
  resolveKeySpec,
  trustBundleContains,
  trustBundleEntries,
  type CertificateAuthority,
  type CertificateFacts,
} from "../../pki";
import { probeServer, reloadServer, type ProbeOptions } from "../../postgres/probe";
import { ownClientSecret, resolveConnection } from "../imaging-connection/target";
import { chartDeliveryPending } from "../imaging-connection/chart-delivery";
import { IMC_BY_DATABASE, type OperatorContext, type SecureDatabaseObject } from "../context";
import { ROTATION_TOKEN_ANNOTATION } from "../rotate-annotation";
import { CAKeys, describeLocation, isOwnCAKey } from "../ca-keys";
import { derivePhase, nextCASecretName, nextRotationStep, previousCASecretName, ROTATE_CA_ANNOTATION } from "./ca-rotation-plan";
import { unfinishedPromotion, type Readiness, type RotationStep } from "./ca-rotation-plan";

/**
 * A CA in the trust bundles. A replaced brought CA has no key here (the user took it away): it keeps the last CRL
 * it signed, which stays valid for days, instead of a fresh one.
 */
export interface TrustedCA {
  certPem: string;
  chainPems: readonly string[];
  facts: CertificateFacts;
  /** Present when the operator holds the key and can sign this CA's CRL. */
  signer?: CertificateAuthority;
  /** The last CRL of a CA without a signer. */
  crlPem?: string;
}

const trustedOf = (ca: CertificateAuthority): TrustedCA => ({ certPem: ca.certPem, chainPems: ca.chainPems, facts: ca.facts, signer: ca });

export interface RotationState {
  phase: CARotationPhase;
  /** The CA that signs every leaf now. */
  signing: CertificateAuthority;
  /** The CAs every trust bundle holds, signing first; each also gets a CRL. */
  trusted: TrustedCA[];
  next?: CertificateAuthority;
  previous?: TrustedCA;
  /** Leaves of these CAs are kept as they are in this phase (the overlap of a replaced brought CA). */
  acceptedIssuers: { certPem: string }[];
  /** A rotation step could not write `<ca>-next` or `<ca>-previous`: a Secret of that name is not the operator's. */
  nameConflict?: string;
}

/** A name-conflicted rotation is looked at again after this long (a human renames or deletes that Secret). */
const NAME_CONFLICT_RETRY_MS = 60_000;

/**
 * `<ca>-next` and `<ca>-previous` have fixed names: one that exists and is not this database's is never written
 * over (or deleted). The conflict, or undefined when the name is free or ours.
 */
export function rotationNameConflict(existing: SecretObject | undefined, dbNamespace: string, sdbName: string, name: string, caName: string): string | undefined {
  const owner = existing?.metadata.labels?.[OWNER_LABEL];
  if (!existing || isOwnCAKey(existing, dbNamespace, sdbName)) return undefined;
  const role = name === previousCASecretName(caName) ? "the previous CA kept during a rotation" : "the next CA staged during a rotation";
  const where = existing.metadata.namespace ? `${existing.metadata.namespace}/${existing.metadata.name}` : existing.metadata.name;
  const ownerNamespace = existing.metadata.labels?.[OWNER_NAMESPACE_LABEL];
  const of = ownerNamespace && ownerNamespace !== dbNamespace ? ` of namespace ${ownerNamespace}` : "";
  return (
    `Secret ${where} (${role}) exists and ${owner ? `belongs to ${owner.replace(".", " ")}${of}` : "was not created by the operator"}; ` +
    "it is never overwritten: rename or delete it (or give spec.ca.secretName another name); the CA rotation waits"
  );
}

/** What the rest of the reconcile found out about the server in this pass. */
export interface ServerFacts {
  /** The server serves the current leaf, verified live, after loading the current files. */
  verifiedCurrent: boolean;
  /** The current server leaf was issued by the signing CA. */
  leafFromSigning: boolean;
  /** How to log in to the server; absent when the database needs no live check (no SQL reload, no verification). */
  probe?: ProbeOptions | undefined;
}

/** The CAs a phase trusts, signing first. */
function trustedIn(phase: CARotationPhase, signing: CertificateAuthority, next?: CertificateAuthority, previous?: TrustedCA): TrustedCA[] {
  if (phase === "Overlap" && next) return [trustedOf(signing), trustedOf(next)];
  if (phase === "Reissuing" && previous) return [trustedOf(signing), previous];
  return [trustedOf(signing)];
}

/** status.caRotation and the CARotating condition once the step's action is done (`phase`: where it left the rotation). */
export function rotationReport(
  recorded: CARotationStatus | undefined,
  state: RotationState,
  step: RotationStep,
  phase: CARotationPhase,
  now: Date,
): { status: CARotationStatus; condition: ConditionInput; requeueAt?: Date } {
  const overlapping = state.phase === "Overlap" && state.next;
  const moved = phase !== state.phase;
  const samePhase = recorded?.phase === state.phase;
  const status: CARotationStatus = {
    startedTime: recorded?.phase && recorded.phase !== "Idle" && recorded.startedTime ? recorded.startedTime : now.toISOString(),
    oldCASerial: overlapping ? state.signing.facts.serialNumber : (state.previous?.facts.serialNumber ?? recorded?.oldCASerial),
    newCASerial: overlapping ? state.next!.facts.serialNumber : state.signing.facts.serialNumber,
    phase,
    phaseTime: moved ? now.toISOString() : samePhase && recorded?.phaseTime ? recorded.phaseTime : now.toISOString(),
    ...(!moved && step.readySince ? { readyTime: step.readySince.toISOString() } : {}),
    message: step.message,
  };
  const condition: ConditionInput =
    phase === "Idle"
      ? { type: C.CARotating, status: "False", reason: Reason.Idle, message: step.message }
      : { type: C.CARotating, status: "True", reason: phase, message: step.message };
  return { status, condition, ...(moved ? { requeueAt: now } : step.requeueAt ? { requeueAt: step.requeueAt } : {}) };
}

export class CARotator {
  constructor(private readonly ctx: OperatorContext) {}

  /**
   * Which CA signs and which CAs are trusted in this pass. Finishes a promotion a crash interrupted, and starts a
   * rotation when the annotation asks for one or the CA reaches its renewal time. Brought CAs are rotated by the
   * user replacing their Secret; this covers generated CAs.
   */
  async prepare(
    sdb: SecureDatabaseObject,
    spec: ResolvedSecureDatabaseSpec,
    current: CertificateAuthority,
    now: Date,
  ): Promise<RotationState> {
    const caName = spec.ca.secretName;
    const keys = this.keys(sdb);
    const token = sdb.metadata.annotations?.[ROTATE_CA_ANNOTATION];
    let previous = await this.readPrevious(sdb, previousCASecretName(caName), now);
    if (spec.ca.mode !== "Generated") {
      // A replaced brought CA: Overlap keeps every leaf of the old CA while the new one propagates, then
      // Reissuing, Finishing as for a generated CA. The phase is in status; losing it only repeats the wait.
      const recorded = sdb.status?.caRotation?.phase;
      let nameConflict: string | undefined;
      if (!previous) {
        const kept = await this.keepReplacedBroughtCA(sdb, spec, current);
        if (kept && "conflict" in kept) {
          nameConflict = await this.reportConflict(sdb, kept.conflict);
          previous = kept.kept;
        } else previous = kept;
      }
      const ended: CARotationPhase = recorded === "Reissuing" || recorded === "Finishing" ? "Finishing" : "Idle";
      const phase: CARotationPhase = previous ? (recorded === "Reissuing" ? "Reissuing" : "Overlap") : ended;
      const trusted = previous ? [trustedOf(current), previous] : [trustedOf(current)];
      const acceptedIssuers = phase === "Overlap" && previous ? [previous] : [];
      return { phase, signing: current, trusted, acceptedIssuers, ...(previous ? { previous } : {}), ...(nameConflict ? { nameConflict } : {}) };
    }
    let next = await this.readOwnCA(sdb, nextCASecretName(caName), now);
    let signing = current;
    const serials = () => ({ current: signing.facts.serialNumber, next: next?.facts.serialNumber, previous: previous?.facts.serialNumber });
    for (const step of unfinishedPromotion(serials())) {
      if (step === "replaceCurrent" && next) {
        await keys.writeCA(caName, next, token);
        signing = next;
      }
      if (step === "deleteNext") {
        await keys.delete(nextCASecretName(caName));
        next = undefined;
      }
    }
    let phase = derivePhase(serials(), sdb.status?.caRotation?.phase);
    let nameConflict: string | undefined;
    const trigger = phase === "Idle" ? this.trigger(sdb, spec, signing, now) : undefined;
    if (trigger && spec.ca.rotationPolicy === "SameKey") {
      // Same key and name: every certificate chains to the renewed CA too, so it replaces the old one at once.
      const commonName = signing.facts.subjectCommonName ?? spec.ca.commonName;
      const renewed = await generateCA({ commonName, duration: spec.ca.durationMs, now, reuseKeyOf: signing });
      await keys.writeCA(caName, renewed, token);
      const until = renewed.facts.notAfter.toISOString();
      const change = `serial ${signing.facts.serialNumber} → ${renewed.facts.serialNumber}, valid until ${until}`;
      const message = `${trigger}: renewed the CA with its own key (${change}); existing certificates stay valid, nothing is re-issued`;
      await this.ctx.events.record(sdb, "Normal", Reason.CARenewedSameKey, message);
      signing = renewed;
    } else if (trigger && (nameConflict = await this.nameConflict(sdb, nextCASecretName(caName), caName))) {
      await this.reportConflict(sdb, nameConflict);
    } else if (trigger) {
      const key = resolveKeySpec(spec.ca.privateKey);
      next = await generateCA({ commonName: spec.ca.commonName, duration: spec.ca.durationMs, key, now });
      const name = nextCASecretName(caName);
      await keys.create(name, next);
      const generated = `generated CA serial ${next.facts.serialNumber} in Secret ${describeLocation(keys.where(name))}`;
      const message = `${trigger}: ${generated}; both CAs are trusted until every consumer has the new one (phase Overlap)`;
      await this.ctx.events.record(sdb, "Normal", Reason.CARotationStarted, message);
      phase = "Overlap";
    }
    const acceptedIssuers: { certPem: string }[] = [];
    const trusted = trustedIn(phase, signing, next, previous);
    const conflict = nameConflict ? { nameConflict } : {};
    return { phase, signing, trusted, acceptedIssuers, ...(next ? { next } : {}), ...(previous ? { previous } : {}), ...conflict };
  }

  /**
   * The user replaced the brought CA (its Secret now holds another CA than the one in use): it signs from now on,
   * so keep trusting the old one, with its last CRL, until every certificate is re-issued (phase Reissuing). The
   * old certificate comes from the server's current trust bundle; without it there is nothing to keep.
   */
  private async keepReplacedBroughtCA(
    sdb: SecureDatabaseObject,
    spec: ResolvedSecureDatabaseSpec,
    current: CertificateAuthority,
  ): Promise<TrustedCA | { conflict: string; kept: TrustedCA } | undefined> {
    const inUse = sdb.status?.ca?.fingerprintSHA256;
    if (!inUse || inUse === current.facts.fingerprintSha256) return undefined;
    const server = secretBytes(this.ctx.cache.secrets.get(sdb.metadata.namespace, spec.serverCertificate.secretName));
    const old = server["ca.crt"] ? trustBundleEntries(server["ca.crt"]).find((c) => c.fingerprintSha256 === inUse) : undefined;
    if (!old) return undefined;
    const crlPem = crlIssuedBy(server["ca.crl"], { certPem: old.pem });
    const name = previousCASecretName(spec.ca.secretName);
    const conflict = await this.nameConflict(sdb, name, spec.ca.secretName);
    // Not kept in a Secret, still trusted in this pass: the old CA's leaves keep working while a human resolves it.
    if (conflict) return { conflict, kept: { certPem: old.pem, chainPems: [], facts: old, ...(crlPem ? { crlPem } : {}) } };
    const data = { "tls.crt": Buffer.from(old.pem), ...(crlPem ? { "ca.crl": Buffer.from(crlPem) } : {}) };
    await this.keys(sdb).write(name, "Opaque", data);
    const message =
      `Secret ${spec.ca.secretName} now holds another CA (serial ${current.facts.serialNumber}): both are trusted ` +
      `(the replaced one, serial ${old.serialNumber}, with its last CRL) and existing certificates are kept until every consumer ` +
      "trusts the new CA, then re-issued from it (phase Overlap)";
    await this.ctx.events.record(sdb, "Normal", Reason.CARotationStarted, message);
    return { certPem: old.pem, chainPems: [], facts: old, ...(crlPem ? { crlPem } : {}) };
  }

  /** After the server pass: move the rotation on when its phase is done; status, condition and when to look again. */
  async advance(
    sdb: SecureDatabaseObject,
    spec: ResolvedSecureDatabaseSpec,
    state: RotationState,
    server: ServerFacts,
    now: Date,
  ): Promise<{ status?: CARotationStatus; condition: ConditionInput; requeueAt?: Date }> {
    const recorded = sdb.status?.caRotation;
    if (state.nameConflict) return this.conflicted(recorded, state.nameConflict, now);
    if (state.phase === "Idle") {
      const message = "no CA rotation in progress";
      const condition: ConditionInput = { type: C.CARotating, status: "False", reason: Reason.Idle, message };
      return { condition, ...(recorded ? { status: { ...recorded, phase: "Idle", message, readyTime: undefined } } : {}) };
    }
    const samePhase = recorded?.phase === state.phase;
    const step = nextRotationStep({
      phase: state.phase,
      now,
      delayMs: spec.ca.propagationDelayMs,
      ...(samePhase && recorded?.readyTime ? { readySince: new Date(recorded.readyTime) } : {}),
      server: await this.serverReady(state, server, now),
      clients: this.clientsReady(sdb, state),
    });
    let phase: CARotationPhase = state.phase;
    const caName = spec.ca.secretName;
    const keys = this.keys(sdb);
    const record = (reason: Reason, message: string) => this.ctx.events.record(sdb, "Normal", reason, message);
    if (step.action === "promote" && !state.next) {
      const serial = state.signing.facts.serialNumber;
      const message =
        `every consumer trusts CA serial ${serial}: ` + "re-issuing the server and every client certificate from it (phase Reissuing)";
      await record(Reason.CARotationPromoted, message);
      phase = "Reissuing";
    } else if (step.action === "promote" && state.next) {
      const conflict = await this.nameConflict(sdb, previousCASecretName(caName), caName);
      if (conflict) return this.conflicted(recorded, await this.reportConflict(sdb, conflict), now);
      // Crash-safe order: keep the old CA, then make the new one sign, then drop the staging copy.
      await keys.writeCA(previousCASecretName(caName), state.signing);
      await keys.writeCA(caName, state.next, sdb.metadata.annotations?.[ROTATE_CA_ANNOTATION]);
      await keys.delete(nextCASecretName(caName));
      const serial = state.next.facts.serialNumber;
      const message = `CA serial ${serial} signs from now on; re-issuing the server and every client certificate (phase Reissuing)`;
      await record(Reason.CARotationPromoted, message);
      phase = "Reissuing";
    } else if (step.action === "retire" && state.previous) {
      await keys.delete(previousCASecretName(caName));
      const key = state.previous.signer ? " and destroyed its key" : "";
      const removed = `removed CA serial ${state.previous.facts.serialNumber} from every trust bundle${key}`;
      await record(Reason.CARotationRetiredOldCA, `${removed} (Secret ${describeLocation(keys.where(previousCASecretName(caName)))}) (phase Finishing)`);
      phase = "Finishing";
    } else if (step.action === "complete") {
      // The last reload, after the propagation delay: from here on the server cannot still trust the old CA.
      const reload = spec.reload.strategy === "SQL" && server.probe ? await reloadServer(server.probe) : { ok: true as const };
      if (reload.ok) {
        const serial = state.signing.facts.serialNumber;
        await record(Reason.CARotationCompleted, `CA rotation complete: CA serial ${serial} alone is trusted and signs every certificate`);
        phase = "Idle";
      } else {
        step.message = `Finishing: could not reload the server so that it drops the old CA (${reload.reason}: ${reload.message}); retrying`;
        step.requeueAt = new Date(now.getTime() + 5000);
      }
    }
    return rotationReport(recorded, state, step, phase, now);
  }

  private async serverReady(state: RotationState, server: ServerFacts, now: Date): Promise<boolean> {
    if (!server.verifiedCurrent || !server.probe) return false;
    if (state.phase === "Overlap") {
      // A certificate from the new CA must log in: the server has loaded the new trust bundle and its CRL.
      const probe = await issueClientCertificate(state.next ?? state.signing, { user: server.probe.user, duration: 10 * 60_000, now });
      const result = await probeServer({ ...server.probe, cert: probe.chainPem, key: probe.keyPkcs8Pem });
      return result.ok;
    }
    if (state.phase === "Reissuing") return server.leafFromSigning;
    return true;
  }

  /** Overlap: client Secrets that trust the new CA; Reissuing: client Secrets whose leaf the new CA signed. */
  private clientsReady(sdb: SecureDatabaseObject, state: RotationState): Readiness {
    const readiness: Readiness = { ready: 0, total: 0, waiting: [] };
    for (const imc of this.ctx.cache.imagingConnections.byIndex(IMC_BY_DATABASE, `${sdb.metadata.namespace}/${sdb.metadata.name}`)) {
      if (imc.metadata.deletionTimestamp) continue;
      const resolved = resolveConnection(this.ctx, imc);
      if (!resolved.ok) continue;
      const secret = ownClientSecret(this.ctx, imc, resolved.spec.secretName);
      if (!secret) continue;
      const data = secretBytes(secret);
      readiness.total++;
      // Pods that copy the files at start (CAST's chart) hold the new bundle only once restarted with it.
      const pending = clientReady(state, data) ? chartDeliveryPending(this.ctx, imc, resolved.spec, data) : undefined;
      if (clientReady(state, data) && pending === undefined) readiness.ready++;
      else readiness.waiting.push(`${imc.metadata.namespace}/${imc.metadata.name}${pending ? ` (waiting for ${pending})` : ""}`);
    }
    return readiness;
  }

  private trigger(
    sdb: SecureDatabaseObject,
    spec: ResolvedSecureDatabaseSpec,
    current: CertificateAuthority,
    now: Date,
  ): string | undefined {
    const token = sdb.metadata.annotations?.[ROTATE_CA_ANNOTATION];
    const honoured = this.keys(sdb).cachedAnnotations(spec.ca.secretName)?.[ROTATION_TOKEN_ANNOTATION];
    if (token && token !== honoured) return `the annotation ${ROTATE_CA_ANNOTATION} asks for rotation "${token}"`;
    const at = renewalTime(current.facts.notBefore, current.facts.notAfter, spec.ca.renewBeforeMs);
    if (now < at) return undefined;
    const ca = `the CA (serial ${current.facts.serialNumber}, valid until ${current.facts.notAfter.toISOString()})`;
    return `${ca} reached its renewal time ${at.toISOString()}`;
  }

  /** A fixed-name Secret of the rotation that is not this database's (cache first; one without our labels: API). */
  private async nameConflict(sdb: SecureDatabaseObject, name: string, caName: string): Promise<string | undefined> {
    return rotationNameConflict(await this.keys(sdb).read(name), sdb.metadata.namespace!, sdb.metadata.name, name, caName);
  }

  private keys(sdb: SecureDatabaseObject): CAKeys {
    return new CAKeys(this.ctx, sdb.metadata.namespace!, sdb.metadata.name);
  }

  private async reportConflict(sdb: SecureDatabaseObject, message: string): Promise<string> {
    await this.ctx.events.record(sdb, "Warning", Reason.NameConflict, message);
    return message;
  }

  /** CARotating False NameConflict: the phase stays where it was, nothing written. */
  private conflicted(recorded: CARotationStatus | undefined, message: string, now: Date): { status?: CARotationStatus; condition: ConditionInput; requeueAt: Date } {
    const condition: ConditionInput = { type: C.CARotating, status: "False", reason: Reason.NameConflict, message };
    return { condition, requeueAt: new Date(now.getTime() + NAME_CONFLICT_RETRY_MS), ...(recorded ? { status: { ...recorded, message } } : {}) };
  }

  /** `<ca>-previous`: the old CA with its key (generated), or its certificate and last CRL (a replaced brought CA). */
  private async readPrevious(sdb: SecureDatabaseObject, name: string, now: Date): Promise<TrustedCA | undefined> {
    const withKey = await this.readOwnCA(sdb, name, now);
    if (withKey) return trustedOf(withKey);
    const data = this.ownSecretData(sdb, name);
    const [facts] = data?.["tls.crt"] ? trustBundleEntries(data["tls.crt"]) : [];
    if (!facts) return undefined;
    return { certPem: facts.pem, chainPems: [], facts, ...(data?.["ca.crl"] ? { crlPem: data["ca.crl"].toString("utf8") } : {}) };
  }

  private async readOwnCA(sdb: SecureDatabaseObject, name: string, now: Date): Promise<CertificateAuthority | undefined> {
    const data = this.ownSecretData(sdb, name);
    if (!data?.["tls.crt"] || !data["tls.key"]) return undefined;
    return loadCA(data["tls.crt"], data["tls.key"], now);
  }

  /** The data of a CA Secret this database owns, from the cache. */
  private ownSecretData(sdb: SecureDatabaseObject, name: string): Record<string, Buffer> | undefined {
    return this.keys(sdb).ownData(name);
  }
}

function clientReady(state: RotationState, data: Record<string, Buffer>): boolean {
  try {
    if (state.phase === "Overlap") return trustBundleContains(data["ca.crt"] ?? "", (state.next ?? state.signing).certPem);
    if (state.phase !== "Reissuing") return true;
    const [leaf] = parseCertificates(data["tls.crt"] ?? "");
    return leaf !== undefined && isIssuedBy(leaf, state.signing.facts);
  } catch {
    return false;
  }
}
