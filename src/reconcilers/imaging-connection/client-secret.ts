/**
 * Step 2, the client Secret: CN = spec.user, signed by the database's current CA, with its trust bundle, in every
 * format CAST's components read. Renewed by policy, re-written when the trust bundle changes; a Secret of that name
 * that someone else owns is never touched.
 */
import { clientSecretName, type ResolvedImagingConnectionSpec } from "../../api/defaults";
import { Reason } from "../../api/reasons";
import {
  IMAGING_CONNECTION_CONDITIONS as C,
  OWNER_LABEL,
  managedLabels,
  ownerLabelValue,
  type ClientCertificateStatus,
} from "../../api/types";
import type { ConditionInput } from "../../kube/conditions";
import { RESOURCES } from "../../kube/resources";
import { isApiError } from "../../kube/rest";
import { desiredSecret, ownerReference, secretBytes, secretHasData, type SecretObject } from "../../kube/secrets";
import {
  clientSecretData,
  desiredRenewalTime,
  evaluateRenewal,
  isIssuedBy,
  issueClientCertificate,
  loadIssuedCertificate,
  resolveKeySpec,
  trustBundleContains,
  trustBundleEntries,
  type CertificateAuthority,
  type DesiredCertificate,
  type IssuedCertificate,
  type RenewalDecision,
} from "../../pki";
import { IMC_BY_SECRET, type ImagingConnectionObject, type OperatorContext, type SecureDatabaseObject } from "../context";
import { objectKey } from "../../runtime/informer";
import { readDatabaseCA, type CARead } from "../database-ca";
import { issuedEntry, planIssued, readConnectionLedger, revokedSerials, updateLedger } from "../issued-ledger";
import { hasAnnotations, rotationAnnotations, rotationRequest, type RotationRequest } from "../rotate-annotation";
import { recordEvents, type PlannedEvent } from "./planned-event";
import { olderFirst, type ConnectionTarget } from "./target";

/** Database events requeue us too; the timer is for what we cannot watch (a brought CA, a foreign Secret). */
const NOT_READY_RETRY_MS = 60_000;

export interface ClientSecretObserved {
  imc: ImagingConnectionObject;
  spec: ResolvedImagingConnectionSpec;
  target: ConnectionTarget;
  ca: CARead;
  /** ca.crt of the database's server Secret, once the database has written it. */
  trustBundle?: string;
  /** Why this connection may not write its Secret (planSecretClaim), if it may not. */
  claim?: string;
  /** The client Secret as the cache has it. */
  current?: SecretObject;
  /** Serials of this connection the database's ledger holds revoked (a deletion of a namesake, a loss of access). */
  revokedInLedger?: readonly string[];
}

/** No certificate this pass: why, and when to look again. */
export interface ClientSecretNotReady {
  ready: false;
  condition: ConditionInput;
  requeueAt: number;
}

/** What to issue from, and whether to issue. */
export interface ClientSecretIssuance {
  ready: true;
  ca: CertificateAuthority;
  trustBundle: string;
  desired: DesiredCertificate;
  decision: RenewalDecision;
  rotation: RotationRequest;
}

/** The certificate the Secret holds after this pass, and what status says of it. */
export interface ClientCertificate {
  ready: true;
  issued: IssuedCertificate;
  trustBundle: string;
  renewalTime?: Date;
  condition: ConditionInput;
  status: ClientCertificateStatus;
}

const databaseName = (sdb: SecureDatabaseObject): string => `${sdb.metadata.namespace}/${sdb.metadata.name}`;

function notReadyAt(now: Date, reason: Reason, message: string): ClientSecretNotReady {
  return { ready: false, condition: { type: C.CertificateReady, status: "False", reason, message }, requeueAt: now.getTime() + NOT_READY_RETRY_MS };
}

/** Issue, keep, or wait (no usable CA, no trust bundle, a Secret of someone else's, a CA not trusted yet). */
export function planClientSecret(observed: ClientSecretObserved, now: Date): ClientSecretNotReady | ClientSecretIssuance {
  const { imc, spec, target, ca: read, trustBundle, claim, current } = observed;
  const dbName = databaseName(target.sdb);
  const notReady = (reason: Reason, message: string): ClientSecretNotReady => notReadyAt(now, reason, message);
  if (read.state !== "ready") {
    const why = read.state === "problem" ? ` (${read.reason}: ${read.message})` : "";
    return notReady(Reason.DatabaseNotReady, `SecureDatabase ${dbName} has no usable CA yet${why}`);
  }
  if (!trustBundle) {
    const message = `SecureDatabase ${dbName} has not written its trust bundle yet (Secret ${target.db.serverCertificate.secretName})`;
    return notReady(Reason.DatabaseNotReady, message);
  }
  if (claim) return notReady(Reason.SecretConflict, claim);

  const rotation = rotationRequest(imc, current);
  // Never issue from a CA the server does not trust yet (a brought CA just replaced, before the database has
  // put it in its bundle), and during a rotation's overlap keep a certificate of any CA the database trusts:
  // it is re-issued in the next phase, once the new CA has reached everyone.
  // "Trusted" also needs the database to have acknowledged this CA in its status: it writes the server Secret
  // before its status, so a bundle may already hold a CA the server has not loaded yet.
  const signingTrusted =
    trustBundleContains(trustBundle, read.ca.certPem) && target.sdb.status?.ca?.fingerprintSHA256 === read.ca.facts.fingerprintSha256;
  const overlap = target.sdb.status?.caRotation?.phase === "Overlap" || !signingTrusted;
  const alsoAcceptedIssuers = overlap ? trustBundleEntries(trustBundle).map((e) => ({ certPem: e.pem })) : [];
  const desired: DesiredCertificate = { ...desiredCertificate(spec, target, read.ca, observed.revokedInLedger ?? []), ...rotation, alsoAcceptedIssuers };
  const decision = evaluateRenewal(desired, secretBytes(current), now);
  if (decision.reissue && !signingTrusted) {
    const message =
      `SecureDatabase ${dbName} signs with CA serial ${read.ca.facts.serialNumber}, which it does not serve and trust yet; ` +
      `issuing once it does (${decision.reason}: ${decision.message})`;
    return notReady(Reason.WaitingForTrust, message);
  }
  return { ready: true, ca: read.ca, trustBundle, desired, decision, rotation };
}

function desiredCertificate(
  spec: ResolvedImagingConnectionSpec,
  target: ConnectionTarget,
  ca: CertificateAuthority,
  revokedInLedger: readonly string[],
): DesiredCertificate {
  const revocations = target.db.trust.revocations;
  return {
    kind: "client",
    user: spec.user,
    key: resolveKeySpec(spec.certificate.privateKey),
    duration: spec.certificate.durationMs,
    renewBefore: spec.certificate.renewBeforeMs,
    issuer: ca,
    // A certificate revoked once stays revoked (the ledger): one that regained access gets a new one.
    revokedSerials: [...revocations.flatMap((r) => (r.serialNumber ? [r.serialNumber] : [])), ...revokedInLedger],
    revokedFingerprints: revocations.flatMap((r) => (r.sha256Fingerprint ? [r.sha256Fingerprint] : [])),
  };
}

export interface SecretWriteObserved {
  spec: ResolvedImagingConnectionSpec;
  sdb: SecureDatabaseObject;
  issuance: ClientSecretIssuance;
  /** The certificate issued this pass, or the one the Secret holds. */
  issued: IssuedCertificate;
  /** The Secret's data with that certificate and the current trust bundle. */
  data: Readonly<Record<string, Uint8Array>>;
  current?: SecretObject;
}

/** Whether the Secret must be written, the event of a new certificate, and what the certificate is now. */
export function planSecretWrite(
  observed: SecretWriteObserved,
  now: Date,
): { write: boolean; annotations?: Record<string, string>; events: PlannedEvent[]; certificate: ClientCertificate } {
  const { spec, issuance, issued, data, current } = observed;
  const { decision, rotation, trustBundle } = issuance;
  const annotations = rotationAnnotations(rotation);
  const events: PlannedEvent[] = [];
  if (decision.reissue) {
    const message =
      `issued client certificate CN=${spec.user} serial ${issued.serialNumber} ` +
      `from the CA of SecureDatabase ${databaseName(observed.sdb)}, valid until ${issued.notAfter.toISOString()}, ` +
      `in Secret ${spec.secretName} (${decision.reason}: ${decision.message})`;
    events.push({ type: "Normal", reason: Reason.CertificateIssued, message });
  }
  // A certificate issued this pass is what `desired` asks for: only its renewal time is left to work out.
  const renewalTime = decision.reissue ? desiredRenewalTime(issuance.desired, issued) : evaluateRenewal(issuance.desired, data, now).renewalTime;
  // During an overlap the certificate may still come from the previous CA: report the one that signed it.
  const issuerFingerprint =
    trustBundleEntries(trustBundle).find((ca) => isIssuedBy(issued.facts, ca))?.fingerprintSha256 ?? issuance.ca.facts.fingerprintSha256;
  const notAfter = issued.notAfter.toISOString();
  const renewsAt = renewalTime?.toISOString() ?? "unknown";
  return {
    write: !secretHasData(current, data) || !hasAnnotations(current, annotations),
    ...(annotations ? { annotations } : {}),
    events,
    certificate: {
      ready: true,
      issued,
      trustBundle,
      renewalTime,
      condition: {
        type: C.CertificateReady,
        status: "True",
        reason: Reason.Valid,
        message: `CN=${spec.user}, serial ${issued.serialNumber}, valid until ${notAfter}, renews at ${renewsAt}`,
      },
      status: {
        secretName: spec.secretName,
        serialNumber: issued.serialNumber,
        notBefore: issued.notBefore.toISOString(),
        notAfter,
        renewalTime: renewalTime?.toISOString(),
        issuerFingerprintSHA256: issuerFingerprint,
        lastRotationToken: rotation.rotationToken ?? rotation.lastRotationToken,
      },
    },
  };
}

/**
 * Why this connection may not write its Secret, or undefined. A Secret of that name belongs to whoever made it
 * first; between two connections that both want a name not written yet, the older one wins, so the answer
 * never depends on which reconcile ran first.
 */
export function planSecretClaim(
  imc: ImagingConnectionObject,
  secretName: string,
  existing: SecretObject | undefined,
  neighbours: readonly ImagingConnectionObject[],
): string | undefined {
  const owner = existing?.metadata.labels?.[OWNER_LABEL];
  if (existing && owner !== ownerLabelValue("ImagingConnection", imc.metadata.name)) {
    return owner
      ? `Secret ${secretName} is already written for ${owner.replace(".", " ")}; give this connection another spec.secretName`
      : `Secret ${secretName} exists and was not created by the operator; ` +
          "delete it or choose another spec.secretName (it is never overwritten)";
  }
  if (existing) return undefined;
  const rival = neighbours.find(
    (o) =>
      o.metadata.name !== imc.metadata.name &&
      !o.metadata.deletionTimestamp &&
      (o.spec.secretName ?? clientSecretName(o.metadata.name)) === secretName &&
      olderFirst(o, imc) < 0,
  );
  if (!rival) return undefined;
  return `ImagingConnection ${rival.metadata.name} (older) also writes Secret ${secretName}; give this connection another spec.secretName`;
}

/** Reads what planClientSecret needs, stopping at the first thing missing (no API read for a Secret never written). */
async function observeClientSecret(
  ctx: OperatorContext,
  imc: ImagingConnectionObject,
  spec: ResolvedImagingConnectionSpec,
  target: ConnectionTarget,
  now: Date,
): Promise<ClientSecretObserved> {
  const { sdb, db } = target;
  const ca = await readDatabaseCA(ctx, sdb.metadata.namespace!, sdb.metadata.name, db, now, sdb.status?.ca);
  const observed: ClientSecretObserved = { imc, spec, target, ca };
  if (ca.state !== "ready") return observed;
  const serverSecret = ctx.cache.secrets.get(sdb.metadata.namespace, db.serverCertificate.secretName);
  observed.trustBundle = secretBytes(serverSecret)["ca.crt"]?.toString("utf8");
  if (!observed.trustBundle) return observed;
  const ns = imc.metadata.namespace!;
  const ref = { namespace: ns, name: spec.secretName };
  // The cache holds only our Secrets. A foreign one of that name is met when the create fails (createClientSecret);
  // from then on this connection's status says so, and it is looked for before anything is issued.
  const existing =
    ctx.cache.secrets.get(ns, spec.secretName) ??
    (lastRefusedForConflict(imc) ? await ctx.client.getOptional<SecretObject>(RESOURCES.Secret, ref) : undefined);
  // Only a Secret not written yet can have rivals: the connections that name the same Secret.
  const neighbours = existing ? [] : ctx.cache.imagingConnections.byIndex(IMC_BY_SECRET, objectKey(ns, spec.secretName));
  observed.claim = planSecretClaim(imc, spec.secretName, existing, neighbours);
  if (!observed.claim) observed.current = ctx.cache.secrets.get(ns, spec.secretName);
  const connection = { namespace: ns, name: imc.metadata.name };
  observed.revokedInLedger = revokedSerials(readConnectionLedger(ctx, sdb, connection), now, connection);
  return observed;
}

/** Issues or keeps the client certificate, writes the Secret when its data or rotate token changed. */
export async function ensureClientSecret(
  ctx: OperatorContext,
  imc: ImagingConnectionObject,
  spec: ResolvedImagingConnectionSpec,
  target: ConnectionTarget,
  now: Date,
): Promise<ClientSecretNotReady | ClientCertificate> {
  const observed = await observeClientSecret(ctx, imc, spec, target, now);
  const issuance = planClientSecret(observed, now);
  if (!issuance.ready) return issuance;
  const { current } = observed;
  const currentData = secretBytes(current);
  const issued = issuance.decision.reissue
    ? await issueClientCertificate(issuance.ca, { user: spec.user, duration: spec.certificate.durationMs, key: issuance.desired.key, now })
    : loadIssuedCertificate(currentData["tls.crt"]!, currentData["tls.key"]!);
  // Recorded before the Secret is written, so no certificate leaves the operator unrecorded; one issued before the
  // ledger existed is recorded at its first pass (no API call once it is there).
  const connection = { namespace: imc.metadata.namespace!, name: imc.metadata.name };
  const entry = issuedEntry(connection, issued.facts, issuance.decision.reissue ? now : issued.notBefore);
  await updateLedger(ctx, target.sdb, (ledger) => planIssued(ledger, issued.serialNumber, entry));
  const data = await clientSecretData({ issued, trustBundlePem: issuance.trustBundle, previous: currentData });
  const plan = planSecretWrite({ spec, sdb: target.sdb, issuance, issued, data, current }, now);
  if (plan.write) {
    const ns = imc.metadata.namespace!;
    const desired = desiredSecret({
      name: spec.secretName,
      namespace: ns,
      type: "kubernetes.io/tls",
      labels: managedLabels("ImagingConnection", imc.metadata.name),
      ...(plan.annotations ? { annotations: plan.annotations } : {}),
      owner: ownerReference(imc),
      data,
    });
    const written = current ? await applySecret(ctx, desired) : await createClientSecret(ctx, imc, desired, now);
    if (!("metadata" in written)) return written;
    ctx.cache.secrets.observe(written);
  }
  await recordEvents(ctx, imc, plan.events);
  return plan.certificate;
}

type WrittenSecret = SecretObject & { metadata: { name: string } };

function applySecret(ctx: OperatorContext, desired: SecretObject): Promise<WrittenSecret> {
  return ctx.client.apply<WrittenSecret>(RESOURCES.Secret, { namespace: desired.metadata.namespace!, name: desired.metadata.name! }, desired);
}

/**
 * A Secret the cache does not have is created: one request where a read and an apply were two, and a create is
 * the cheaper write for the API server. If one exists after all, it is read: someone else's is never touched (the
 * certificate just recorded in the ledger is then never handed out), ours that the cache had not seen yet is applied.
 */
async function createClientSecret(ctx: OperatorContext, imc: ImagingConnectionObject, desired: SecretObject, now: Date): Promise<WrittenSecret | ClientSecretNotReady> {
  const ref = { namespace: desired.metadata.namespace!, name: desired.metadata.name! };
  try {
    return await ctx.client.create<WrittenSecret>(RESOURCES.Secret, ref.namespace, desired);
  } catch (err) {
    if (!isApiError(err, 409)) throw err;
  }
  const existing = await ctx.client.getOptional<SecretObject>(RESOURCES.Secret, ref);
  const claim = planSecretClaim(imc, ref.name, existing, []);
  return claim ? notReadyAt(now, Reason.SecretConflict, claim) : applySecret(ctx, desired);
}

/** Whether this connection's last pass found its Secret's name taken (so the next one looks before it issues). */
function lastRefusedForConflict(imc: ImagingConnectionObject): boolean {
  return imc.status?.conditions?.some((c) => c.type === C.CertificateReady && c.reason === Reason.SecretConflict) ?? false;
}
