import { asReason, type Reason } from "../api/reasons";
import type { ResolvedImagingConnectionSpec } from "../api/defaults";
import { defaultMountPath } from "../api/defaults";
import { FINALIZER, IMAGING_CONNECTION_CONDITIONS as C, OWNER_LABEL, managedLabels, ownerLabelValue, type ImagingConnectionStatus, type WorkloadStatus } from "../api/types";
import { parseEndpoint } from "../api/validate";
import type { ConditionInput } from "../kube/conditions";
import { RESOURCES } from "../kube/resources";
import { desiredSecret, ownerReference, secretBytes, secretHasData, type SecretObject } from "../kube/secrets";
import { connectionDeclaration, inMount } from "../imaging/declaration";
import { CAST_INI_DIR, CAST_INI_FILE, workloadHasExactly } from "../imaging/workload-plan";
import { clientSecretData, evaluateRenewal, issueClientCertificate, loadIssuedCertificate, resolveKeySpec, isIssuedBy, trustBundleContains, trustBundleEntries, type CertificateAuthority, type DesiredCertificate, type IssuedCertificate } from "../pki";
import { probeServer } from "../postgres/probe";
import type { ReconcileResult } from "../runtime/workqueue";
import { resolveConnection, type ConnectionTarget, type TargetProblem } from "./connection-target";
import { workloadMountsConnection, workloadView } from "./connection-workload";
import type { ImagingConnectionObject, OperatorContext, SecureDatabaseObject } from "./context";
import { readDatabaseCA } from "./database-ca";
import { hasAnnotations, rotationAnnotations, rotationRequest } from "./rotate-annotation";
import { addFinalizer, removeFinalizer, requeueAtEarliest, writeStatus } from "./custom-resource";
import { verificationDue } from "./verification-schedule";

const PROBE_TIMEOUT_MS = 10_000;
/** A refused login (a missing role, an hba rule) does not fix itself within a second: retry no sooner than this. */
const LOGIN_RETRY_MIN_MS = 5000;
/** While deleting: how often to look whether the workloads have let go of the Secret. */
const RELEASE_POLL_MS = 2000;

/**
 * Reconciles one ImagingConnection the way a careful admin would: check the database lets this namespace have
 * an identity, issue the client certificate from the database's CA, write it in every format CAST's components
 * read, let the workload reconciler mount it, tell the user what to declare in CAST Imaging, and log in once with
 * it to prove it works.
 */
export class ImagingConnectionReconciler {
  constructor(private readonly ctx: OperatorContext) {}

  async reconcile(namespace: string, name: string): Promise<ReconcileResult> {
    const imc = this.ctx.cache.imagingConnections.get(namespace, name);
    if (!imc) return {};
    if (imc.metadata.deletionTimestamp) return this.finalize(imc);
    await addFinalizer(this.ctx, RESOURCES.ImagingConnection, this.ctx.cache.imagingConnections, imc);
    const now = this.ctx.now();
    const status: ImagingConnectionStatus = { ...(imc.status ?? {}) };
    const conditions: ConditionInput[] = [];
    const requeues: number[] = [];
    const done = async (): Promise<ReconcileResult> => {
      conditions.push(summarize(conditions));
      await writeStatus(this.ctx, RESOURCES.ImagingConnection, this.ctx.cache.imagingConnections, imc, status, conditions, now);
      return requeueAtEarliest(requeues, this.ctx.now());
    };

    // 1. Which database, and may this namespace have an identity from it?
    const resolved = resolveConnection(this.ctx, imc);
    if (!resolved.ok) {
      const { reason, message } = resolved.problem;
      conditions.push({ type: C.CertificateReady, status: "False", reason, message });
      conditions.push({ type: C.Revoked, status: reason === "Revoked" ? "True" : "False", reason: reason === "Revoked" ? "RevokedByDatabase" : "NotRevoked", message: reason === "Revoked" ? message : "the database does not revoke this connection" });
      await this.ctx.events.record(imc, "Warning", reason, message);
      // The workload reconciler takes the mount away from a connection that no longer resolves: say so, rather
      // than leave the workloads reported as they were.
      if (resolved.spec) {
        const workloads = this.workloadStates(imc, resolved.spec, resolved.problem);
        status.workloads = workloads.map((w) => w.status);
        conditions.push(workloadsCondition(workloads));
      }
      return done();
    }
    const { spec, target } = resolved;
    conditions.push({ type: C.Revoked, status: "False", reason: "NotRevoked", message: "the database does not revoke this connection" });

    // 2. The client certificate, from the database's current CA, with its trust bundle.
    const cert = await this.ensureClientSecret(imc, spec, target, now);
    conditions.push(cert.condition);
    if (!cert.issued) {
      const quietUntil = settingUpQuietly(imc, target.sdb, cert.condition.reason, now);
      if (quietUntil !== undefined) return requeueAtEarliest([quietUntil], this.ctx.now());
      requeues.push(cert.requeueAt);
      return done();
    }
    const issued = cert.issued;
    if (cert.renewalTime) requeues.push(cert.renewalTime.getTime());
    status.certificate = {
      secretName: spec.secretName,
      serialNumber: issued.serialNumber,
      notBefore: issued.notBefore.toISOString(),
      notAfter: issued.notAfter.toISOString(),
      renewalTime: cert.renewalTime?.toISOString(),
      issuerFingerprintSHA256: cert.issuerFingerprint,
      lastRotationToken: cert.rotationToken,
    };

    // 3. The workloads (patched by the workload reconciler; here we read how far it got).
    const workloads = this.workloadStates(imc, spec);
    status.workloads = workloads.map((w) => w.status);
    conditions.push(workloadsCondition(workloads));
    for (const w of workloads) if (w.problem) await this.ctx.events.record(imc, "Warning", w.problem.reason, w.problem.message);

    // 4. What to declare in CAST Imaging.
    const mountPath = spec.workloads[0]?.mountPath ?? defaultMountPath(imc.metadata.name);
    status.declaration = connectionDeclaration(target.db, spec, mountPath, inMount(CAST_INI_DIR, CAST_INI_FILE));

    // 5. Log in with it.
    const verified = await this.verify(imc, spec, target, issued, cert.trustBundle, status, now);
    conditions.push(verified.condition);
    if (verified.requeueAt) requeues.push(verified.requeueAt);
    return done();
  }

  // ------------------------------------------------------------------------------------ the client Secret

  private async ensureClientSecret(imc: ImagingConnectionObject, spec: ResolvedImagingConnectionSpec, target: ConnectionTarget, now: Date): Promise<ClientSecretOutcome> {
    const { sdb, db } = target;
    const dbName = `${sdb.metadata.namespace}/${sdb.metadata.name}`;
    // Database events requeue us too; the timer is for what we cannot watch (a brought CA, a foreign Secret).
    const notReady = (reason: Reason, message: string): ClientSecretOutcome => ({ condition: { type: C.CertificateReady, status: "False", reason, message }, requeueAt: now.getTime() + 60_000 });

    const read = await readDatabaseCA(this.ctx, sdb.metadata.namespace!, sdb.metadata.name, db, now);
    if (read.state !== "ready") return notReady("DatabaseNotReady", `SecureDatabase ${dbName} has no usable CA yet${read.state === "problem" ? ` (${read.reason}: ${read.message})` : ""}`);
    const serverSecret = this.ctx.cache.secrets.get(sdb.metadata.namespace, db.serverCertificate.secretName);
    const trustBundle = secretBytes(serverSecret)["ca.crt"]?.toString("utf8");
    if (!trustBundle) return notReady("DatabaseNotReady", `SecureDatabase ${dbName} has not written its trust bundle yet (Secret ${db.serverCertificate.secretName})`);

    const claim = await this.secretClaim(imc, spec.secretName);
    if (claim) return notReady("SecretConflict", claim);

    const ns = imc.metadata.namespace!;
    const current = this.ctx.cache.secrets.get(ns, spec.secretName);
    const currentData = secretBytes(current);
    const rotation = rotationRequest(imc, current);
    // Never issue from a CA the server does not trust yet (a brought CA just replaced, before the database has
    // put it in its bundle), and during a rotation's overlap keep a certificate of any CA the database trusts:
    // it is re-issued in the next phase, once the new CA has reached everyone.
    // "Trusted" also needs the database to have acknowledged this CA in its status: it writes the server Secret
    // before its status, so a bundle may already hold a CA the server has not loaded yet.
    const signingTrusted = trustBundleContains(trustBundle, read.ca.certPem) && target.sdb.status?.ca?.fingerprintSHA256 === read.ca.facts.fingerprintSha256;
    const overlap = target.sdb.status?.caRotation?.phase === "Overlap" || !signingTrusted;
    const alsoAcceptedIssuers = overlap ? trustBundleEntries(trustBundle).map((e) => ({ certPem: e.pem })) : [];
    const desired: DesiredCertificate = { ...this.desiredCertificate(spec, target, read.ca), ...rotation, alsoAcceptedIssuers };
    const annotations = rotationAnnotations(rotation);
    const decision = evaluateRenewal(desired, currentData, now);
    if (decision.reissue && !signingTrusted) {
      return notReady("WaitingForTrust", `SecureDatabase ${dbName} signs with CA serial ${read.ca.facts.serialNumber}, which it does not serve and trust yet; issuing once it does (${decision.reason}: ${decision.message})`);
    }
    const key = resolveKeySpec(spec.certificate.privateKey);
    const issued: IssuedCertificate = decision.reissue
      ? await issueClientCertificate(read.ca, { user: spec.user, duration: spec.certificate.durationMs, key, now })
      : loadIssuedCertificate(currentData["tls.crt"]!, currentData["tls.key"]!);
    const data = await clientSecretData({ issued, trustBundlePem: trustBundle, previous: currentData });
    if (!secretHasData(current, data) || !hasAnnotations(current, annotations)) {
      const written = await this.ctx.client.apply<SecretObject & { metadata: { name: string } }>(
        RESOURCES.Secret,
        { namespace: ns, name: spec.secretName },
        desiredSecret({ name: spec.secretName, namespace: ns, type: "kubernetes.io/tls", labels: managedLabels("ImagingConnection", imc.metadata.name), ...(annotations ? { annotations } : {}), owner: ownerReference(imc), data }),
      );
      this.ctx.cache.secrets.observe(written);
    }
    if (decision.reissue) {
      await this.ctx.events.record(imc, "Normal", "CertificateIssued", `issued client certificate CN=${spec.user} serial ${issued.serialNumber} from the CA of SecureDatabase ${dbName}, valid until ${issued.notAfter.toISOString()}, in Secret ${spec.secretName} (${decision.reason}: ${decision.message})`);
    }
    const renewalTime = evaluateRenewal(desired, data, now).renewalTime;
    return {
      issued,
      trustBundle,
      renewalTime,
      // During an overlap the certificate may still come from the previous CA: report the one that signed it.
      issuerFingerprint: trustBundleEntries(trustBundle).find((ca) => isIssuedBy(issued.facts, ca))?.fingerprintSha256 ?? read.ca.facts.fingerprintSha256,
      rotationToken: rotation.rotationToken ?? rotation.lastRotationToken,
      condition: { type: C.CertificateReady, status: "True", reason: "Valid", message: `CN=${spec.user}, serial ${issued.serialNumber}, valid until ${issued.notAfter.toISOString()}, renews at ${renewalTime?.toISOString() ?? "unknown"}` },
    };
  }

  private desiredCertificate(spec: ResolvedImagingConnectionSpec, target: ConnectionTarget, ca: CertificateAuthority): DesiredCertificate {
    const revocations = target.db.trust.revocations;
    return {
      kind: "client",
      user: spec.user,
      key: resolveKeySpec(spec.certificate.privateKey),
      duration: spec.certificate.durationMs,
      renewBefore: spec.certificate.renewBeforeMs,
      issuer: ca,
      revokedSerials: revocations.flatMap((r) => (r.serialNumber ? [r.serialNumber] : [])),
      revokedFingerprints: revocations.flatMap((r) => (r.sha256Fingerprint ? [r.sha256Fingerprint] : [])),
    };
  }

  /**
   * Why this connection may not write its Secret, or undefined. A Secret of that name belongs to whoever made it
   * first; between two connections that both want a name not written yet, the older one wins, so the answer
   * never depends on which reconcile ran first.
   */
  private async secretClaim(imc: ImagingConnectionObject, secretName: string): Promise<string | undefined> {
    const ns = imc.metadata.namespace!;
    const mine = ownerLabelValue("ImagingConnection", imc.metadata.name);
    const existing = this.ctx.cache.secrets.get(ns, secretName) ?? (await this.ctx.client.getOptional<SecretObject>(RESOURCES.Secret, { namespace: ns, name: secretName }));
    const owner = existing?.metadata.labels?.[OWNER_LABEL];
    if (existing && owner !== mine) {
      return owner
        ? `Secret ${secretName} is already written for ${owner.replace(".", " ")}; give this connection another spec.secretName`
        : `Secret ${secretName} exists and was not created by the operator; delete it or choose another spec.secretName (it is never overwritten)`;
    }
    if (existing) return undefined;
    const rival = this.ctx.cache.imagingConnections
      .list(ns)
      .filter((o) => o.metadata.name !== imc.metadata.name && !o.metadata.deletionTimestamp && (o.spec.secretName ?? `${o.metadata.name}-client-tls`) === secretName)
      .find((o) => olderThan(o, imc));
    return rival ? `ImagingConnection ${rival.metadata.name} (older) also writes Secret ${secretName}; give this connection another spec.secretName` : undefined;
  }

  // ---------------------------------------------------------------------------------------- workloads

  /** How far each listed workload is; `unmountedFor` is why the connection is not mountable (it does not resolve). */
  private workloadStates(imc: ImagingConnectionObject, spec: ResolvedImagingConnectionSpec, unmountedFor?: TargetProblem): { status: WorkloadStatus; problem?: { reason: Reason; message: string } }[] {
    const ns = imc.metadata.namespace!;
    return spec.workloads.map((w) => {
      const view = workloadView(this.ctx, w.kind, ns, w.name);
      const base = { kind: w.kind, name: w.name, mountPath: w.mountPath };
      if (!view.workload) {
        const message = `${w.kind} ${w.name} does not exist in namespace ${ns}`;
        return { status: { ...base, state: "NotFound" as const, message }, problem: { reason: "WorkloadNotFound", message } };
      }
      const refused = view.admission.refused.get(imc.metadata.name);
      if (refused) {
        const state = refused.reason === "ContainerNotFound" || refused.reason === "NoContainers" ? ("NotFound" as const) : ("Conflict" as const);
        return { status: { ...base, state, message: refused.message }, problem: refused };
      }
      if (unmountedFor) {
        return { status: { ...base, state: "Pending" as const, message: `not mounted while the connection has no certificate (${unmountedFor.reason}); mounted again once it has` }, problem: { reason: unmountedFor.reason, message: unmountedFor.message } };
      }
      const patched = view.admission.admitted.includes(imc.metadata.name) && workloadHasExactly(view.workload, view.admission.plan);
      return patched
        ? { status: { ...base, state: "Patched" as const, message: `mounts Secret ${spec.secretName} at ${w.mountPath} and the CAST .ini at ${inMount(CAST_INI_DIR, CAST_INI_FILE)}` } }
        : { status: { ...base, state: "Pending" as const, message: "waiting for the operator to patch the pod template" } };
    });
  }

  // ------------------------------------------------------------------------------------ verification

  private async verify(
    imc: ImagingConnectionObject,
    spec: ResolvedImagingConnectionSpec,
    target: ConnectionTarget,
    issued: IssuedCertificate,
    trustBundle: string,
    status: ImagingConnectionStatus,
    now: Date,
  ): Promise<{ condition: ConditionInput; requeueAt?: number }> {
    if (!spec.verification.enabled) {
      status.verification = undefined;
      return { condition: { type: C.ConnectionVerified, status: "Unknown", reason: "VerificationDisabled", message: "spec.verification.enabled is false" } };
    }
    const { sdb, db } = target;
    const dbReady = sdb.status?.conditions?.find((c) => c.type === "Ready");
    if (dbReady?.status !== "True") {
      return { condition: { type: C.ConnectionVerified, status: "Unknown", reason: "WaitingForDatabase", message: `SecureDatabase ${sdb.metadata.namespace}/${sdb.metadata.name} is not Ready yet (${dbReady?.reason ?? "no status"}): logging in is tried once it is` } };
    }
    const previous = status.verification;
    const lastOk = previous?.lastAttemptTime !== undefined && previous.lastAttemptTime === previous.lastSuccessTime;
    const due = verificationDue(
      { lastAttemptTime: previous?.lastAttemptTime, lastSuccessTime: previous?.lastSuccessTime, lastSucceeded: previous?.lastAttemptTime ? lastOk : undefined, verifiedSerial: previous?.serialNumber, failingSince: failingSince(imc) },
      issued.serialNumber,
      db.verification.intervalMs,
      now,
      LOGIN_RETRY_MIN_MS,
    );
    const endpoint = parseEndpoint(db.verification.endpoint) ?? { host: db.host, port: db.port };
    const where = `${spec.user}@${endpoint.host}:${endpoint.port}/${spec.database}`;
    if (!due.probe) {
      // Not due: report the last attempt as it was (it is in status.verification), whatever said the condition since.
      const earlier = imc.status?.conditions?.find((c) => c.type === C.ConnectionVerified && c.status === "False");
      const condition: ConditionInput =
        lastOk && previous?.serialNumber === issued.serialNumber
          ? { type: C.ConnectionVerified, status: "True", reason: "LoggedIn", message: previous.message ?? `logged in as ${where}` }
          : earlier
            ? { type: C.ConnectionVerified, status: "False", reason: asReason(earlier.reason), message: earlier.message }
            : { type: C.ConnectionVerified, status: "Unknown", reason: "Pending", message: `next login as ${where} at ${due.nextAt.toISOString()}` };
      return { condition, requeueAt: due.nextAt.getTime() };
    }
    const result = await probeServer({
      host: endpoint.host,
      port: endpoint.port,
      servername: db.verification.serverName,
      database: spec.database,
      user: spec.user,
      ca: trustBundle,
      cert: issued.chainPem,
      key: issued.keyPkcs8Pem,
      timeoutMs: PROBE_TIMEOUT_MS,
    });
    if (!result.ok) {
      status.verification = { ...previous, lastAttemptTime: now.toISOString(), message: result.message };
      if (previous?.message !== result.message) await this.ctx.events.record(imc, "Warning", result.reason, `login as ${where} with certificate serial ${issued.serialNumber} failed: ${result.message}`);
      const retry = verificationDue({ lastAttemptTime: now.toISOString(), lastSuccessTime: previous?.lastSuccessTime, lastSucceeded: false, failingSince: failingSince(imc) }, issued.serialNumber, db.verification.intervalMs, now, LOGIN_RETRY_MIN_MS);
      return { condition: { type: C.ConnectionVerified, status: "False", reason: result.reason, message: `login as ${where} with certificate serial ${issued.serialNumber} failed: ${result.message}` }, requeueAt: retry.nextAt.getTime() };
    }
    const message = `logged in as ${where} over mTLS (verify-full) with certificate serial ${issued.serialNumber}`;
    if (previous?.serialNumber !== issued.serialNumber || !lastOk) await this.ctx.events.record(imc, "Normal", "ConnectionVerified", message);
    status.verification = { serialNumber: issued.serialNumber, lastAttemptTime: now.toISOString(), lastSuccessTime: now.toISOString(), message };
    return { condition: { type: C.ConnectionVerified, status: "True", reason: "LoggedIn", message }, requeueAt: now.getTime() + db.verification.intervalMs };
  }

  // --------------------------------------------------------------------------------- finalizer and status

  /**
   * A deleted connection leaves every workload plan at once (the workload reconciler skips it); the finalizer
   * goes when no workload mounts its Secret any more. The Secret itself goes with its ownerReference.
   */
  private async finalize(imc: ImagingConnectionObject): Promise<ReconcileResult> {
    if (!imc.metadata.finalizers?.includes(FINALIZER)) return {};
    const ns = imc.metadata.namespace!;
    const secretName = imc.spec.secretName ?? `${imc.metadata.name}-client-tls`;
    const holding = (imc.spec.workloads ?? []).filter((w) => workloadMountsConnection(this.ctx.cache.workloads[w.kind]?.get(ns, w.name), imc.metadata.name, secretName));
    if (holding.length > 0) return { requeueAfterMs: RELEASE_POLL_MS };
    await removeFinalizer(this.ctx, RESOURCES.ImagingConnection, imc);
    this.ctx.log.info("finalized", { resource: `ImagingConnection/${imc.metadata.name}`, namespace: ns, reason: "Finalized" });
    return {};
  }
}

type ClientSecretOutcome =
  | { condition: ConditionInput; issued?: undefined; requeueAt: number }
  | { condition: ConditionInput; issued: IssuedCertificate; trustBundle: string; renewalTime?: Date; issuerFingerprint: string; rotationToken?: string };

/** When the login check started failing (its condition's transition), if it is failing. */
function failingSince(imc: ImagingConnectionObject): string | undefined {
  const c = imc.status?.conditions?.find((x) => x.type === C.ConnectionVerified);
  return c?.status === "False" ? c.lastTransitionTime : undefined;
}

function olderThan(a: ImagingConnectionObject, b: ImagingConnectionObject): boolean {
  const ta = a.metadata.creationTimestamp ? new Date(a.metadata.creationTimestamp).getTime() : 0;
  const tb = b.metadata.creationTimestamp ? new Date(b.metadata.creationTimestamp).getTime() : 0;
  return ta < tb || (ta === tb && a.metadata.name < b.metadata.name);
}

/** The longest a new connection waits without a word for its database's first report (then it reports anyway). */
export const DATABASE_SETUP_GRACE_MS = 10 * 60_000;

/**
 * A connection created together with its database (one `kubectl apply -f` of both) would otherwise report
 * DatabaseNotReady, then WaitingForTrust, and only then its certificate: status writes that tell nothing. While
 * it has no status yet and its database has not reported anything either (the operator has not finished its first
 * pass over it: in a storm of new databases that can take minutes), wait quietly: the database's status write
 * requeues it. Once the database has spoken, or past the grace, or for any other reason, say so. Returns when to
 * look again, or undefined.
 */
export function settingUpQuietly(imc: ImagingConnectionObject, sdb: SecureDatabaseObject, reason: string, now: Date): Date | undefined {
  if ((imc.status?.conditions?.length ?? 0) > 0) return undefined;
  if (reason !== "DatabaseNotReady" && reason !== "WaitingForTrust") return undefined;
  if ((sdb.status?.conditions?.length ?? 0) > 0) return undefined;
  const created = Date.parse(imc.metadata.creationTimestamp ?? "");
  if (!Number.isFinite(created) || now.getTime() >= created + DATABASE_SETUP_GRACE_MS) return undefined;
  return new Date(created + DATABASE_SETUP_GRACE_MS);
}

/** WorkloadsPatched: True when every listed workload mounts the Secret; otherwise the first that does not, and why. */
export function workloadsCondition(workloads: readonly { status: WorkloadStatus; problem?: { reason: Reason } }[]): ConditionInput {
  if (workloads.length === 0) return { type: C.WorkloadsPatched, status: "True", reason: "NoWorkloads", message: "spec.workloads is empty: mount the client Secret yourself (status.declaration gives the file names)" };
  const blocking = workloads.find((w) => w.status.state !== "Patched");
  if (!blocking) return { type: C.WorkloadsPatched, status: "True", reason: "Patched", message: `${workloads.map((w) => `${w.status.kind} ${w.status.name}`).join(", ")} mount${workloads.length === 1 ? "s" : ""} the client Secret and the CAST .ini` };
  const reason = blocking.problem?.reason ?? asReason(String(blocking.status.state));
  return { type: C.WorkloadsPatched, status: "False", reason, message: `${blocking.status.kind} ${blocking.status.name}: ${blocking.status.message ?? blocking.status.state}` };
}

/** Ready sums up the others: the first condition that is not True explains why not. */
export function summarize(conditions: readonly ConditionInput[]): ConditionInput {
  const blocking = conditions.find((c) => (c.type === C.Revoked ? c.status === "True" : c.status !== "True" && c.reason !== "VerificationDisabled"));
  if (blocking) return { type: C.Ready, status: "False", reason: blocking.reason, message: `${blocking.type}: ${blocking.message}` };
  return { type: C.Ready, status: "True", reason: "Connected", message: "the client certificate is issued, mounted where listed, and logs in to the database" };
}
