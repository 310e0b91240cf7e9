/**
 * Step 2: the server's Secret (certificate, key, trust bundle and one CRL per trusted CA), never written over a
 * Secret that is not ours.
 */
import type { ResolvedSecureDatabaseSpec } from "../../api/defaults";
import { Reason } from "../../api/reasons";
import { OWNER_LABEL, SECURE_DATABASE_CONDITIONS as C, managedLabels, ownerLabelValue } from "../../api/types";
import type { ServerCertificateStatus } from "../../api/types";
import { RESOURCES } from "../../kube/resources";
import { desiredSecret, ownerReference, secretBytes, secretHasData, type SecretObject } from "../../kube/secrets";
import {
  buildCrlBundle,
  crlDecision,
  crlIssuedBy,
  evaluateRenewal,
  issueCRL,
  issueServerCertificate,
  loadIssuedCertificate,
  parseCRL,
  resolveKeySpec,
  revocationDatesIn,
  serverSecretData,
  type CertificateAuthority,
  type CRLDecision,
  type DesiredCertificate,
  type IssuedCertificate,
  type RenewalDecision,
  type SecretPayload,
} from "../../pki";
import type { OperatorContext, SecureDatabaseObject } from "../context";
import { hasAnnotations, rotationAnnotations, rotationRequest, type RotationRequest } from "../rotate-annotation";
import type { RotationState } from "./ca-rotation-step";
import { TemporaryError } from "../../runtime/errors";
import { readLedger, updateLedger, type Ledger } from "../issued-ledger";
import { clientLeaves, needsLeaves, planRevocations, type RevocationPlan } from "./revocations";
import { after, outcomeOf, PROBLEM_RETRY_MS, recordEvents, resultOf, type PlannedEvent, type StepOutcome, type StepResult } from "./step";

const CRL_VALIDITY_MS = 7 * 24 * 3600_000;

/** Why the Secret is not ours to write (it exists and is not labelled as this database's), if it is not. */
export function planSecretClaim(
  existing: SecretObject | undefined,
  sdbName: string,
  secretName: string,
  now: Date,
): StepOutcome | undefined {
  const owner = existing?.metadata.labels?.[OWNER_LABEL];
  if (!existing || owner === ownerLabelValue("SecureDatabase", sdbName)) return undefined;
  const field = `Secret ${secretName} (spec.serverCertificate.secretName)`;
  const message = owner
    ? `${field} is already written for ${owner.replace(".", " ")}; give this database another spec.serverCertificate.secretName`
    : `${field} exists and was not created by the operator; ` +
      "delete it or choose another spec.serverCertificate.secretName (it is never overwritten)";
  return {
    conditions: [{ type: C.ServerCertificateReady, status: "False", reason: Reason.SecretConflict, message }],
    events: [{ type: "Warning", reason: Reason.SecretConflict, message }],
    requeueAt: after(now, PROBLEM_RETRY_MS),
  };
}

/** Step 2's guard: reports (and records) a Secret of that name that is not ours; nothing when it is ours or absent. */
export async function ensureSecretClaim(
  ctx: OperatorContext,
  sdb: SecureDatabaseObject,
  name: string,
  now: Date,
): Promise<StepResult | undefined> {
  const namespace = sdb.metadata.namespace!;
  const existing =
    ctx.cache.secrets.get(namespace, name) ?? (await ctx.client.getOptional<SecretObject>(RESOURCES.Secret, { namespace, name }));
  const claim = planSecretClaim(existing, sdb.metadata.name, name, now);
  if (!claim) return undefined;
  await recordEvents(ctx, sdb, claim.events);
  return resultOf(claim);
}

/** What the server Secret step reads: the spec, the CAs of this pass, the Secret as it is and what the CRL lists. */
export interface ServerSecretObserved {
  spec: ResolvedSecureDatabaseSpec;
  rotation: Pick<RotationState, "signing" | "trusted" | "acceptedIssuers">;
  trustBundle: string;
  currentData: Readonly<Record<string, Buffer>>;
  manual: RotationRequest;
  revocations: RevocationPlan;
  /** status.trust.crlNumber: the CRL number never goes below it, even when ca.crl is lost. */
  lastCrlNumber?: number;
}

export interface ServerCertificateDecisions {
  desired: DesiredCertificate;
  renewal: RenewalDecision;
  /** One CRL per trusted CA whose key the operator holds: PostgreSQL refuses a client whose CA has no CRL. */
  crls: { signer: CertificateAuthority; decision: CRLDecision }[];
}

/** Whether the server certificate and each CRL must be issued again. */
export function planServerCertificate(o: ServerSecretObserved, now: Date): ServerCertificateDecisions {
  const { spec } = o;
  const revokedSerials = o.revocations.entries.map((e) => e.serialNumber);
  const desired: DesiredCertificate = {
    ...o.manual,
    alsoAcceptedIssuers: o.rotation.acceptedIssuers,
    kind: "server",
    key: resolveKeySpec(spec.serverCertificate.privateKey),
    duration: spec.serverCertificate.durationMs,
    renewBefore: spec.serverCertificate.renewBeforeMs,
    issuer: o.rotation.signing,
    dnsNames: spec.serverCertificate.dnsNames,
    ipAddresses: spec.serverCertificate.ipAddresses,
    revokedSerials,
    revokedFingerprints: spec.trust.revocations.flatMap((r) => (r.sha256Fingerprint ? [r.sha256Fingerprint] : [])),
  };
  const signers = o.rotation.trusted.flatMap((t) => (t.signer ? [t.signer] : []));
  return {
    desired,
    renewal: evaluateRenewal(desired, o.currentData, now),
    crls: signers.map((signer) => ({
      signer,
      decision: crlDecision(o.currentData["ca.crl"], { issuer: signer, revokedSerials, lastNumber: o.lastCrlNumber }, now),
    })),
  };
}

export interface ServerMaterial {
  issued: IssuedCertificate;
  crls: { decision: CRLDecision; pem: string }[];
}

/** Issues what the decisions call for; keeps the rest as the Secret holds it. */
export async function issueServerMaterial(o: ServerSecretObserved, d: ServerCertificateDecisions, now: Date): Promise<ServerMaterial> {
  const cert = o.spec.serverCertificate;
  const issued = d.renewal.reissue
    ? await issueServerCertificate(o.rotation.signing, {
        dnsNames: cert.dnsNames,
        ipAddresses: cert.ipAddresses,
        duration: cert.durationMs,
        key: resolveKeySpec(cert.privateKey),
        now,
      })
    : loadIssuedCertificate(o.currentData["tls.crt"]!, o.currentData["tls.key"]!);
  // Each serial keeps the date it was first listed (the ledger's): a re-signed CRL changes no entry.
  const revoked = o.revocations.entries.map((e) => ({ serialNumber: e.serialNumber, revocationDate: e.revocationDate, reason: e.reason }));
  const crls = await Promise.all(
    d.crls.map(async ({ signer, decision }) => ({
      decision,
      pem: decision.reissue
        ? await issueCRL(signer, { revoked, crlNumber: decision.crlNumber, thisUpdate: now, nextUpdate: after(now, CRL_VALIDITY_MS) })
        : crlIssuedBy(o.currentData["ca.crl"], signer)!,
    })),
  );
  return { issued, crls };
}

export interface ServerSecretPlan {
  data: SecretPayload;
  annotations?: Record<string, string>;
  outcome: StepOutcome;
  issued: IssuedCertificate;
  status: ServerCertificateStatus;
  crlNumber: number | undefined;
  revokedSerials: string[];
}

/** The Secret's data, and what to report and when to look again once it is written. */
export function planServerSecret(o: ServerSecretObserved, d: ServerCertificateDecisions, m: ServerMaterial, now: Date): ServerSecretPlan {
  const { issued } = m;
  const entries = o.revocations.entries;
  // A replaced brought CA has no key here: its last CRL stays in the bundle.
  const keptCrls = o.rotation.trusted.flatMap((t) => (!t.signer && t.crlPem ? [t.crlPem] : []));
  const crlPem = buildCrlBundle([...m.crls.map((c) => c.pem), ...keptCrls]);
  const data = serverSecretData({ issued, trustBundlePem: o.trustBundle, crlPem });
  const signingCrl = m.crls[0]!;
  const crlNumber = parseCRL(signingCrl.pem).crlNumber;
  const events: PlannedEvent[] = [];
  if (signingCrl.decision.reissue && signingCrl.decision.reason === "RevocationsChanged") {
    const listed = entries.length ? `: ${entries.map((e) => `${e.serialNumber} (${e.source}, ${e.reason})`).join(", ")}` : "";
    const message = `CRL ${crlNumber} lists ${entries.length} revoked certificate(s)${listed}`;
    events.push({ type: "Normal", reason: Reason.CRLUpdated, message });
  }
  for (const problem of o.revocations.unresolved) events.push({ type: "Warning", reason: Reason.RevocationUnresolved, message: problem });
  if (d.renewal.reissue) {
    const names = [...issued.dnsNames, ...issued.ipAddresses].join(", ");
    const why = `${d.renewal.reason}: ${d.renewal.message}`;
    const until = issued.notAfter.toISOString();
    const message = `issued server certificate serial ${issued.serialNumber} for ${names}, valid until ${until} (${why})`;
    events.push({ type: "Normal", reason: Reason.ServerCertificateIssued, message });
  }
  const renewalTime = evaluateRenewal(d.desired, data, now).renewalTime;
  const refresh = earliest(m.crls.map((c) => (c.decision.reissue ? parseCRL(c.pem).nextUpdate : c.decision.refreshTime)));
  const crlRefreshAt = refresh ? new Date(refresh.getTime() - CRL_VALIDITY_MS / 3) : undefined;
  const requeueAt = earliest([renewalTime, crlRefreshAt]);
  const renews = renewalTime?.toISOString() ?? "unknown";
  const message = `serial ${issued.serialNumber}, valid until ${issued.notAfter.toISOString()}, renews at ${renews}`;
  const annotations = rotationAnnotations(o.manual);
  return {
    data,
    ...(annotations ? { annotations } : {}),
    outcome: outcomeOf([{ type: C.ServerCertificateReady, status: "True", reason: Reason.Valid, message }], requeueAt, events),
    issued,
    status: {
      secretName: o.spec.serverCertificate.secretName,
      serialNumber: issued.serialNumber,
      notBefore: issued.notBefore.toISOString(),
      notAfter: issued.notAfter.toISOString(),
      renewalTime: renewalTime?.toISOString(),
      dnsNames: [...issued.dnsNames],
      ipAddresses: [...issued.ipAddresses],
      lastRotationToken: o.manual.rotationToken ?? o.manual.lastRotationToken,
    },
    crlNumber,
    revokedSerials: entries.map((e) => e.serialNumber),
  };
}

function earliest(times: readonly (Date | undefined)[]): Date | undefined {
  return times.filter((d): d is Date => d !== undefined).sort((a, b) => a.getTime() - b.getTime())[0];
}

/** Reads what step 2 needs, issues what is due, writes the Secret and reports. */
export async function ensureServerSecret(
  ctx: OperatorContext,
  sdb: SecureDatabaseObject,
  spec: ResolvedSecureDatabaseSpec,
  rotation: RotationState,
  trustBundle: string,
  now: Date,
): Promise<ServerSecretPlan> {
  const name = spec.serverCertificate.secretName;
  const current = ctx.cache.secrets.get(sdb.metadata.namespace, name);
  const currentData = secretBytes(current);
  const observed: ServerSecretObserved = {
    spec,
    rotation,
    trustBundle,
    currentData,
    manual: rotationRequest(sdb, current),
    revocations: await recordRevocations(ctx, sdb, spec, currentData["ca.crl"], now),
    ...(sdb.status?.trust?.crlNumber !== undefined ? { lastCrlNumber: sdb.status.trust.crlNumber } : {}),
  };
  const decisions = planServerCertificate(observed, now);
  const plan = planServerSecret(observed, decisions, await issueServerMaterial(observed, decisions, now), now);
  await writeOwnedSecret(ctx, sdb, name, current, plan.data, plan.annotations);
  await recordEvents(ctx, sdb, plan.outcome.events);
  return plan;
}

/**
 * What the CRL lists, once the ledger holds the first revocation date of each serial (written before any CRL
 * carries the date, so a crash in between cannot give a serial another date) and has dropped expired entries.
 */
export async function recordRevocations(
  ctx: OperatorContext,
  sdb: SecureDatabaseObject,
  spec: ResolvedSecureDatabaseSpec,
  currentCrl: Uint8Array | undefined,
  now: Date,
): Promise<RevocationPlan> {
  const leaves = needsLeaves(spec) ? clientLeaves(ctx) : [];
  const listedSince = revocationDatesIn(currentCrl);
  const plan = (ledger: Ledger) => planRevocations({ spec, ledger, leaves, listedSince }, now);
  const cached = plan(readLedger(ctx, sdb.metadata.namespace!, sdb.metadata.name));
  if (cached.ledgerChanges.size === 0) return cached;
  try {
    return plan(await updateLedger(ctx, sdb, (ledger) => plan(ledger).ledgerChanges));
  } catch (err) {
    // A ConfigMap of the ledger's name that is not ours: the revocations still go into the CRL (dates not kept).
    if (!(err instanceof TemporaryError) || err.reason !== Reason.LedgerNotOurs) throw err;
    await ctx.events.record(sdb, "Warning", Reason.LedgerNotOurs, err.message);
    return cached;
  }
}

/** Server-side applies a kubernetes.io/tls Secret we own, only when its data differs from what is there. */
export async function writeOwnedSecret(
  ctx: OperatorContext,
  sdb: SecureDatabaseObject,
  name: string,
  current: SecretObject | undefined,
  data: Readonly<Record<string, Uint8Array>>,
  annotations?: Record<string, string>,
): Promise<void> {
  if (secretHasData(current, data) && hasAnnotations(current, annotations)) return;
  const namespace = sdb.metadata.namespace!;
  const labels = managedLabels("SecureDatabase", sdb.metadata.name);
  const owner = ownerReference(sdb);
  const body = desiredSecret({ name, namespace, type: "kubernetes.io/tls", labels, ...(annotations ? { annotations } : {}), owner, data });
  const written = await ctx.client.apply<SecretObject & { metadata: { name: string } }>(RESOURCES.Secret, { namespace, name }, body);
  ctx.cache.secrets.observe(written);
}
