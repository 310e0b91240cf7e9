import { prepareSecureDatabase, type ResolvedSecureDatabaseSpec } from "../api/defaults";
import { asReason, type Reason } from "../api/reasons";
import { FINALIZER, OWNER_LABEL, SECURE_DATABASE_CONDITIONS as C, managedLabels, ownerLabelValue, STATUS_LIMITS, type AllowlistedStatus, type SecureDatabaseStatus } from "../api/types";
import { formatValidationErrors, parseEndpoint } from "../api/validate";
import type { ConditionInput } from "../kube/conditions";
import { containerNames, foreignVolumeConflict, podTemplateApplyPatch, podTemplateHasPlan, type PodTemplatePlan, type Workload } from "../imaging/pod-template";
import { RESOURCES } from "../kube/resources";
import { isApiError, MERGE_PATCH } from "../kube/rest";
import { desiredSecret, ownerReference, secretBytes, secretHasData, type SecretObject } from "../kube/secrets";
import {
  buildTrustBundle,
  caSecretData,
  operatorIdentitySecretData,
  buildCrlBundle,
  crlDecision,
  crlIssuedBy,
  isIssuedBy,
  parseCertificate,
  evaluateRenewal,
  generateCA,
  issueClientCertificate,
  issueCRL,
  issueServerCertificate,
  loadIssuedCertificate,
  parseCRL,
  resolveKeySpec,
  serverSecretData,
  type CertificateAuthority,
  type DesiredCertificate,
  type IssuedCertificate,
} from "../pki";
import { probePlaintext } from "../postgres/plaintext-probe";
import { probeServer, reloadServer, type ProbeOptions } from "../postgres/probe";
import { objectKey } from "../runtime/informer";
import type { ReconcileResult } from "../runtime/workqueue";
import type { ConfigMapObject, OperatorContext, SecureDatabaseObject } from "./context";
import { CARotator, type RotationState } from "./ca-rotator";
import { readDatabaseCA } from "./database-ca";
import { planRevocations } from "./revocations";
import { hasAnnotations, rotationAnnotations, rotationRequest } from "./rotate-annotation";
import { addFinalizer, removeFinalizer, requeueAtEarliest, writeStatus } from "./custom-resource";
import { failureBackoffMs } from "./verification-schedule";
import { decideReload, decideRemedy, servedMaterialHash, type InsecureFinding } from "./reload-plan";
import { planConfigCleanup, planServerConfig } from "./server-config";

const CRL_VALIDITY_MS = 7 * 24 * 3600_000;
const SERVER_VOLUME = "mtls-server-tls";
/** Root-owned files of mode 0640 are what PostgreSQL accepts for its key when the group is the server's (fsGroup). */
const SERVER_KEY_MODE = 0o640;
const CONFIG_HASH_ANNOTATION = "mtls.imaging.dev/served-material";
/** Set on the database's pod template when the operator restarts the server; its value is when (RFC 3339). */
const RESTARTED_AT_ANNOTATION = "mtls.imaging.dev/restarted-at";
/** A server the operator restarted gets this long to come back before it is restarted again. */
const RESTART_INTERVAL_MS = 120_000;
/**
 * The kubelet lays a changed Secret down within seconds to a minute: while the server still serves the previous
 * certificate, look again every STALE_CHECK_MS and reload again at most every STALE_RETRY_MS.
 */
const STALE_RETRY_MS = 3000;
/** How long after a reload to keep reloading (every STALE_RETRY_MS) for files the kubelet lays down late. */
const SETTLE_WINDOW_MS = 30_000;
const STALE_CHECK_MS = 1000;
const PROBE_TIMEOUT_MS = 10_000;

export const adminSecretName = (sdb: string): string => `${sdb}-operator-client-tls`;

/**
 * The operator logs in to the server as spec.reload.adminUser only to reload it over SQL and to verify it live. A
 * client certificate for that (often superuser) role is a liability: none is minted when neither happens.
 */
export function needsOperatorIdentity(spec: ResolvedSecureDatabaseSpec): boolean {
  return spec.reload.strategy === "SQL" || spec.verification.enabled;
}

interface Step {
  conditions: ConditionInput[];
  /** Ask to run again no later than this. */
  requeueAt?: Date;
}

/** The database workload as this pass found and left it. */
interface WorkloadState {
  conditions: ConditionInput[];
  /** The pod template changed in this pass, so its pods are being replaced. */
  patched: boolean;
  /** When the operator last restarted the server (pod-template annotation; this pass's patch counts). */
  lastRestartAt?: Date;
}

/**
 * Reconciles one SecureDatabase the way a careful admin would: make sure the CA is there, issue what is due,
 * write the server's files, switch the configuration to certificate-only TLS, get the server to load it, and
 * check over a real mTLS connection that it did.
 */
export class SecureDatabaseReconciler {
  private readonly rotator: CARotator;
  /** When each database was last reloaded again inside its settle window (see decideReload). */
  private readonly repeatedReloads = new Map<string, Date>();
  /** When each database was last reloaded because it accepted plain TCP (see decideRemedy). */
  private readonly remedyReloads = new Map<string, Date>();

  constructor(private readonly ctx: OperatorContext) {
    this.rotator = new CARotator(ctx);
  }

  async reconcile(namespace: string, name: string): Promise<ReconcileResult> {
    const sdb = this.ctx.cache.secureDatabases.get(namespace, name);
    if (!sdb) return {};
    if (sdb.metadata.deletionTimestamp) {
      await this.finalize(sdb);
      return {};
    }
    await addFinalizer(this.ctx, RESOURCES.SecureDatabase, this.ctx.cache.secureDatabases, sdb);

    const now = this.ctx.now();
    const prepared = prepareSecureDatabase(sdb);
    if (!prepared.ok) {
      const message = formatValidationErrors(prepared.errors);
      await writeStatus(this.ctx, RESOURCES.SecureDatabase, this.ctx.cache.secureDatabases, sdb, {}, [{ type: C.Ready, status: "False", reason: "InvalidSpec", message }], now);
      await this.ctx.events.record(sdb, "Warning", "InvalidSpec", message);
      return {};
    }
    const spec = prepared.spec;
    const status: SecureDatabaseStatus = { ...(sdb.status ?? {}) };
    const conditions: ConditionInput[] = [];
    const requeues: Date[] = [];
    const done = async (): Promise<ReconcileResult> => {
      conditions.push(summarize(conditions));
      await writeStatus(this.ctx, RESOURCES.SecureDatabase, this.ctx.cache.secureDatabases, sdb, status, conditions, now);
      return requeueAtEarliest(requeues, this.ctx.now());
    };

    // 1. The CA.
    const caStep = await this.ensureCA(sdb, spec, now);
    conditions.push(...caStep.step.conditions);
    if (!caStep.ca) {
      requeues.push(new Date(now.getTime() + 60_000));
      return done();
    }
    // 1b. A CA rotation in progress decides which CA signs and which CAs every bundle trusts.
    const rotation = await this.rotator.prepare(sdb, spec, caStep.ca, now);
    const ca = rotation.signing;
    status.ca = {
      secretName: spec.ca.secretName,
      serialNumber: ca.facts.serialNumber,
      subject: ca.facts.subject,
      notBefore: ca.facts.notBefore.toISOString(),
      notAfter: ca.facts.notAfter.toISOString(),
      fingerprintSHA256: ca.facts.fingerprintSha256,
    };
    const trustBundle = buildTrustBundle(
      rotation.trusted.flatMap((t) => [t.certPem, ...t.chainPems]),
      spec.trust.allowlist.map((a) => a.certificate),
    );

    // 2. The server's Secret: certificate, key, trust bundle and CRL, never written over a Secret that is not ours.
    const claim = await this.foreignSecret(sdb, spec.serverCertificate.secretName);
    if (claim) {
      conditions.push({ type: C.ServerCertificateReady, status: "False", reason: "SecretConflict", message: claim });
      await this.ctx.events.record(sdb, "Warning", "SecretConflict", claim);
      requeues.push(new Date(now.getTime() + 60_000));
      return done();
    }
    const server = await this.ensureServerSecret(sdb, spec, ca, rotation, trustBundle, now);
    conditions.push(...server.step.conditions);
    if (server.step.requeueAt) requeues.push(server.step.requeueAt);
    status.serverCertificate = {
      secretName: spec.serverCertificate.secretName,
      serialNumber: server.issued.serialNumber,
      notBefore: server.issued.notBefore.toISOString(),
      notAfter: server.issued.notAfter.toISOString(),
      renewalTime: server.renewalTime?.toISOString(),
      dnsNames: [...server.issued.dnsNames],
      ipAddresses: [...server.issued.ipAddresses],
      lastRotationToken: server.rotationToken,
    };
    status.trust = { ...status.trust, allowlisted: allowlisted(spec), crlNumber: server.crlNumber, revokedSerials: server.revokedSerials.slice(0, STATUS_LIMITS.revokedSerials) };

    // 3. The operator's own client identity, for reloads and live verification (only when it has those to do).
    const admin = needsOperatorIdentity(spec) ? await this.ensureAdminIdentity(sdb, spec, ca, rotation.acceptedIssuers, trustBundle, now) : await this.dropAdminIdentity(sdb);
    if (admin?.step.requeueAt) requeues.push(admin.step.requeueAt);

    // 4. postgresql.conf and pg_hba.conf.
    const config = await this.ensureConfig(sdb, spec);
    conditions.push(...config.step.conditions);
    if (config.step.requeueAt) requeues.push(config.step.requeueAt);
    if (config.resourceVersion) status.configMap = { name: spec.postgres.configMapName, resourceVersion: config.resourceVersion };

    // 5. The database workload mounts the server Secret (optional).
    const desiredHash = servedMaterialHash([server.data["tls.crt"], server.data["ca.crt"], server.data["ca.crl"], config.renderedHash]);
    const workload = await this.ensureWorkloadMount(sdb, spec, desiredHash);
    conditions.push(...workload.conditions);

    // 6. Reload, then verify what the server serves.
    const probeArgs = admin ? this.probeArgs(spec, trustBundle, admin.issued) : undefined;
    let verifiedCurrent = false;
    let verificationFailing = false;
    if (config.applied) {
      const reload = await this.ensureReload(sdb, spec, status, desiredHash, probeArgs, workload, now);
      conditions.push(...reload.conditions);
      if (reload.requeueAt) requeues.push(reload.requeueAt);
      // After a repair of the blocks, look now: the server may have restarted or reloaded while they were missing.
      // During a CA rotation, look on every pass: each phase moves on what the server does now.
      const verify = await this.verify(sdb, spec, status, server.issued.serialNumber, probeArgs, { reloadedNow: reload.reloaded === true, repaired: config.repaired === true, rotating: rotation.phase !== "Idle" }, workload, now);
      conditions.push(...verify.conditions);
      if (verify.requeueAt) requeues.push(verify.requeueAt);
      verifiedCurrent = status.reload?.appliedHash === desiredHash && verify.conditions.some((c) => c.type === C.Verified && c.status === "True");
      verificationFailing = verify.conditions.some((c) => c.type === C.Verified && c.status === "False");
    }

    // 7. A CA rotation moves on once this pass showed its phase is done.
    const progress = await this.rotator.advance(sdb, spec, rotation, { verifiedCurrent, leafFromSigning: isIssuedBy(server.issued.facts, ca.facts), probe: probeArgs }, now);
    conditions.push(progress.condition);
    status.caRotation = progress.status;
    // A rotation cannot move on while the server fails its check: the check's own backoff paces the retries.
    if (progress.requeueAt && !verificationFailing) requeues.push(progress.requeueAt);
    return done();
  }

  // ------------------------------------------------------------------------------------------------- the CA

  private async ensureCA(sdb: SecureDatabaseObject, spec: ResolvedSecureDatabaseSpec, now: Date): Promise<{ ca?: CertificateAuthority; step: Step }> {
    const ns = sdb.metadata.namespace!;
    const name = spec.ca.secretName;
    const read = await readDatabaseCA(this.ctx, ns, sdb.metadata.name, spec, now);
    if (read.state === "problem") return caProblem(read.reason, read.message);
    if (read.state === "ready") {
      const message = read.provided ? `signing with the CA brought in Secret ${name} (serial ${read.ca.facts.serialNumber})` : `signing with the generated CA in Secret ${name} (serial ${read.ca.facts.serialNumber})`;
      return { ca: read.ca, step: { conditions: [{ type: C.CAReady, status: "True", reason: read.provided ? "CAProvided" : "CAGenerated", message }] } };
    }
    const ca = await generateCA({ commonName: spec.ca.commonName, duration: spec.ca.durationMs, key: resolveKeySpec(spec.ca.privateKey), now });
    const body = desiredSecret({
      name,
      namespace: ns,
      type: "kubernetes.io/tls",
      labels: managedLabels("SecureDatabase", sdb.metadata.name),
      owner: ownerReference(sdb),
      data: caSecretData(ca),
    });
    try {
      const created = await this.ctx.client.create<SecretObject & { metadata: { name: string } }>(RESOURCES.Secret, ns, body);
      this.ctx.cache.secrets.observe(created);
    } catch (err) {
      // Someone (a previous run of ours) created it meanwhile: use theirs on the next pass, never replace it.
      if (isApiError(err, 409)) throw new Error(`CA Secret ${name} appeared while generating a CA; retrying with the existing one`, { cause: err });
      throw err;
    }
    await this.ctx.events.record(sdb, "Normal", "CAGenerated", `generated CA ${ca.facts.subject} (serial ${ca.facts.serialNumber}, valid until ${ca.facts.notAfter.toISOString()}) in Secret ${name}`);
    return { ca, step: { conditions: [{ type: C.CAReady, status: "True", reason: "CAGenerated", message: `signing with the generated CA in Secret ${name} (serial ${ca.facts.serialNumber})` }] } };
  }

  // ------------------------------------------------------------------------------------- the server Secret

  /** Why the Secret `name` is not ours to write (it exists and is not labelled as this database's), if it is not. */
  private async foreignSecret(sdb: SecureDatabaseObject, name: string): Promise<string | undefined> {
    const ns = sdb.metadata.namespace!;
    const existing = this.ctx.cache.secrets.get(ns, name) ?? (await this.ctx.client.getOptional<SecretObject>(RESOURCES.Secret, { namespace: ns, name }));
    const owner = existing?.metadata.labels?.[OWNER_LABEL];
    if (!existing || owner === ownerLabelValue("SecureDatabase", sdb.metadata.name)) return undefined;
    return owner
      ? `Secret ${name} (spec.serverCertificate.secretName) is already written for ${owner.replace(".", " ")}; give this database another spec.serverCertificate.secretName`
      : `Secret ${name} (spec.serverCertificate.secretName) exists and was not created by the operator; delete it or choose another spec.serverCertificate.secretName (it is never overwritten)`;
  }

  private async ensureServerSecret(sdb: SecureDatabaseObject, spec: ResolvedSecureDatabaseSpec, ca: CertificateAuthority, rotation: RotationState, trustBundle: string, now: Date) {
    const trusted = rotation.trusted;
    const ns = sdb.metadata.namespace!;
    const name = spec.serverCertificate.secretName;
    const current = this.ctx.cache.secrets.get(ns, name);
    const currentData = secretBytes(current);
    const manual = rotationRequest(sdb, current);
    const revocations = planRevocations(this.ctx, spec);
    const desired: DesiredCertificate = {
      ...manual,
      alsoAcceptedIssuers: rotation.acceptedIssuers,
      kind: "server",
      key: resolveKeySpec(spec.serverCertificate.privateKey),
      duration: spec.serverCertificate.durationMs,
      renewBefore: spec.serverCertificate.renewBeforeMs,
      issuer: ca,
      dnsNames: spec.serverCertificate.dnsNames,
      ipAddresses: spec.serverCertificate.ipAddresses,
      revokedSerials: revocations.entries.map((e) => e.serialNumber),
      revokedFingerprints: spec.trust.revocations.flatMap((r) => (r.sha256Fingerprint ? [r.sha256Fingerprint] : [])),
    };
    const decision = evaluateRenewal(desired, currentData, now);
    let issued: IssuedCertificate;
    if (decision.reissue) {
      issued = await issueServerCertificate(ca, { dnsNames: spec.serverCertificate.dnsNames, ipAddresses: spec.serverCertificate.ipAddresses, duration: spec.serverCertificate.durationMs, key: resolveKeySpec(spec.serverCertificate.privateKey), now });
    } else {
      issued = loadIssuedCertificate(currentData["tls.crt"]!, currentData["tls.key"]!);
    }

    // One CRL per trusted CA: PostgreSQL refuses a client whose CA has no CRL in ssl_crl_file.
    const revokedSerials = revocations.entries.map((e) => e.serialNumber);
    const crls = await Promise.all(
      trusted.flatMap((t) => (t.signer ? [t.signer] : [])).map(async (signer) => {
        const d = crlDecision(currentData["ca.crl"], { issuer: signer, revokedSerials }, now);
        const pem = d.reissue
          ? await issueCRL(signer, {
              revoked: revocations.entries.map((e) => ({ serialNumber: e.serialNumber, revocationDate: now, reason: e.reason })),
              crlNumber: d.crlNumber,
              thisUpdate: now,
              nextUpdate: new Date(now.getTime() + CRL_VALIDITY_MS),
            })
          : crlIssuedBy(currentData["ca.crl"], signer)!;
        return { decision: d, pem };
      }),
    );
    const crl = crls[0]!.decision;
    // A replaced brought CA has no key here: its last CRL stays in the bundle.
    const crlPem = buildCrlBundle([...crls.map((c) => c.pem), ...trusted.flatMap((t) => (!t.signer && t.crlPem ? [t.crlPem] : []))]);
    const signingCrlPem = crls[0]!.pem;
    const data = serverSecretData({ issued, trustBundlePem: trustBundle, crlPem });
    await this.writeOwnedSecret(sdb, name, current, data, rotationAnnotations(manual));
    if (crl.reissue && crl.reason === "RevocationsChanged") {
      await this.ctx.events.record(sdb, "Normal", "CRLUpdated", `CRL ${parseCRL(signingCrlPem).crlNumber} lists ${revocations.entries.length} revoked certificate(s)${revocations.entries.length ? `: ${revocations.entries.map((e) => `${e.serialNumber} (${e.source}, ${e.reason})`).join(", ")}` : ""}`);
    }
    for (const problem of revocations.unresolved) await this.ctx.events.record(sdb, "Warning", "RevocationUnresolved", problem);
    if (decision.reissue) {
      await this.ctx.events.record(sdb, "Normal", "ServerCertificateIssued", `issued server certificate serial ${issued.serialNumber} for ${[...issued.dnsNames, ...issued.ipAddresses].join(", ")}, valid until ${issued.notAfter.toISOString()} (${decision.reason}: ${decision.message})`);
    }
    const renewal = evaluateRenewal(desired, data, now);
    const refresh = crls
      .map((c) => (c.decision.reissue ? parseCRL(c.pem).nextUpdate : c.decision.refreshTime))
      .filter((d): d is Date => d !== undefined)
      .sort((a, b) => a.getTime() - b.getTime())[0];
    const crlRefreshAt = refresh ? new Date(refresh.getTime() - CRL_VALIDITY_MS / 3) : undefined;
    const requeueAt = [renewal.renewalTime, crlRefreshAt].filter((d): d is Date => d !== undefined).sort((a, b) => a.getTime() - b.getTime())[0];
    const step: Step = {
      conditions: [{ type: C.ServerCertificateReady, status: "True", reason: "Valid", message: `serial ${issued.serialNumber}, valid until ${issued.notAfter.toISOString()}, renews at ${renewal.renewalTime?.toISOString() ?? "unknown"}` }],
    };
    if (requeueAt) step.requeueAt = requeueAt;
    return { issued, data, crlNumber: parseCRL(signingCrlPem).crlNumber, revokedSerials, step, renewalTime: renewal.renewalTime, rotationToken: manual.rotationToken ?? manual.lastRotationToken };
  }

  private async ensureAdminIdentity(sdb: SecureDatabaseObject, spec: ResolvedSecureDatabaseSpec, ca: CertificateAuthority, acceptedIssuers: { certPem: string }[], trustBundle: string, now: Date) {
    const ns = sdb.metadata.namespace!;
    const name = adminSecretName(sdb.metadata.name);
    const current = this.ctx.cache.secrets.get(ns, name);
    const currentData = secretBytes(current);
    const desired: DesiredCertificate = { kind: "client", user: spec.reload.adminUser, key: resolveKeySpec(spec.serverCertificate.privateKey), duration: spec.serverCertificate.durationMs, renewBefore: spec.serverCertificate.renewBeforeMs, issuer: ca, alsoAcceptedIssuers: acceptedIssuers };
    const decision = evaluateRenewal(desired, currentData, now);
    const issued = decision.reissue
      ? await issueClientCertificate(ca, { user: spec.reload.adminUser, duration: spec.serverCertificate.durationMs, key: resolveKeySpec(spec.serverCertificate.privateKey), now })
      : loadIssuedCertificate(currentData["tls.crt"]!, currentData["tls.key"]!);
    const data = operatorIdentitySecretData({ issued, trustBundlePem: trustBundle });
    await this.writeOwnedSecret(sdb, name, current, data);
    const step: Step = { conditions: [] };
    const renewal = evaluateRenewal(desired, data, now);
    if (renewal.renewalTime) step.requeueAt = renewal.renewalTime;
    return { issued, step };
  }

  /** A spec that no longer needs the identity: its Secret goes (a certificate nobody uses is one less to steal). */
  private async dropAdminIdentity(sdb: SecureDatabaseObject): Promise<undefined> {
    const ns = sdb.metadata.namespace!;
    const name = adminSecretName(sdb.metadata.name);
    const current = this.ctx.cache.secrets.get(ns, name);
    if (current?.metadata.labels?.[OWNER_LABEL] !== ownerLabelValue("SecureDatabase", sdb.metadata.name)) return undefined;
    await this.ctx.client.delete(RESOURCES.Secret, { namespace: ns, name });
    this.ctx.log.info("deleted the operator's client identity: no SQL reload and no verification need it", { resource: `SecureDatabase/${sdb.metadata.name}`, namespace: ns, reason: "IdentityNotNeeded" });
    return undefined;
  }

  /** Server-side applies a kubernetes.io/tls Secret we own, only when its data differs from what is there. */
  private async writeOwnedSecret(sdb: SecureDatabaseObject, name: string, current: SecretObject | undefined, data: Readonly<Record<string, Uint8Array>>, annotations?: Record<string, string>): Promise<void> {
    if (secretHasData(current, data) && hasAnnotations(current, annotations)) return;
    const namespace = sdb.metadata.namespace!;
    const written = await this.ctx.client.apply<SecretObject & { metadata: { name: string } }>(
      RESOURCES.Secret,
      { namespace, name },
      desiredSecret({ name, namespace, type: "kubernetes.io/tls", labels: managedLabels("SecureDatabase", sdb.metadata.name), ...(annotations ? { annotations } : {}), owner: ownerReference(sdb), data }),
    );
    this.ctx.cache.secrets.observe(written);
  }

  // ------------------------------------------------------------------------------------------- the config

  /** `repaired`: the blocks were ours already and someone changed or removed them; they are back as they were. */
  private async ensureConfig(sdb: SecureDatabaseObject, spec: ResolvedSecureDatabaseSpec): Promise<{ step: Step; applied: boolean; repaired?: boolean; renderedHash?: string; resourceVersion?: string }> {
    const ns = sdb.metadata.namespace!;
    const name = spec.postgres.configMapName;
    const owner = ownerLabelValue("SecureDatabase", sdb.metadata.name);
    for (let attempt = 0; ; attempt++) {
      const cm = attempt === 0 ? (this.ctx.cache.configMaps.get(ns, name) ?? (await this.getConfigMap(ns, name))) : await this.getConfigMap(ns, name);
      if (!cm) return configProblem("ConfigMapNotFound", `ConfigMap ${name} (spec.postgres.configMapName) does not exist in namespace ${ns}`);
      const claimedBy = cm.metadata.labels?.[OWNER_LABEL];
      if (claimedBy && claimedBy !== owner) {
        return configProblem("ConfigMapClaimed", `ConfigMap ${name} is already managed by ${claimedBy}; two SecureDatabases cannot configure the same PostgreSQL instance`);
      }
      const plan = planServerConfig(cm.data, name, spec);
      if (!plan.ok) return configProblem(plan.problem.reason, plan.problem.message);
      const renderedHash = servedMaterialHash([plan.data[spec.postgres.postgresqlConfKey], plan.data[spec.postgres.hbaConfKey]]);
      if (!plan.changed && claimedBy === owner) return { applied: true, renderedHash, resourceVersion: cm.metadata.resourceVersion, step: configApplied() };
      try {
        const written = await this.ctx.client.patch<ConfigMapObject>(
          RESOURCES.ConfigMap,
          { namespace: ns, name },
          { metadata: { resourceVersion: cm.metadata.resourceVersion, labels: { [OWNER_LABEL]: owner } }, data: plan.data },
          MERGE_PATCH,
        );
        this.ctx.cache.configMaps.observe(written);
        if (plan.changed) await this.ctx.events.record(sdb, "Normal", "ConfigApplied", `wrote the managed blocks of ${spec.postgres.postgresqlConfKey} (ssl = on, certificate files under ${spec.postgres.certificateDirectory}) and ${spec.postgres.hbaConfKey} (certificate-only TLS) in ConfigMap ${name}`);
        return { applied: true, repaired: plan.changed && claimedBy === owner, renderedHash, resourceVersion: written.metadata.resourceVersion, step: configApplied() };
      } catch (err) {
        // Someone else edited the ConfigMap between our read and our write: read again and redo, never clobber.
        if (isApiError(err, 409) && attempt < 4) continue;
        throw err;
      }
    }
  }

  private getConfigMap(namespace: string, name: string): Promise<ConfigMapObject | undefined> {
    return this.ctx.client.getOptional<ConfigMapObject>(RESOURCES.ConfigMap, { namespace, name });
  }

  // ------------------------------------------------------------------------------------- the workload

  private async ensureWorkloadMount(sdb: SecureDatabaseObject, spec: ResolvedSecureDatabaseSpec, desiredHash: string): Promise<WorkloadState> {
    const ref = spec.workloadRef;
    if (!ref) return { conditions: [], patched: false };
    const ns = sdb.metadata.namespace!;
    const workload = await this.ctx.client.getOptional<Workload>(RESOURCES[ref.kind], { namespace: ns, name: ref.name });
    if (!workload) {
      const message = `${ref.kind} ${ref.name} (spec.workloadRef) does not exist in namespace ${ns}`;
      await this.ctx.events.record(sdb, "Warning", "WorkloadNotFound", message);
      return { conditions: [{ type: C.WorkloadPatched, status: "False", reason: "WorkloadNotFound", message }], patched: false };
    }
    const containers = containerNames(workload);
    const container = ref.container ?? containers[0];
    if (!container || !containers.includes(container)) {
      const message = `${ref.kind} ${ref.name} has no container "${ref.container}" (it has: ${containers.join(", ") || "none"})`;
      return { conditions: [{ type: C.WorkloadPatched, status: "False", reason: "ContainerNotFound", message }], patched: false };
    }
    const plan: PodTemplatePlan = {
      mounts: [{ volumeName: SERVER_VOLUME, source: { secretName: spec.serverCertificate.secretName }, defaultMode: SERVER_KEY_MODE, mountPath: spec.postgres.certificateDirectory, containers: [container] }],
      env: [],
      annotations: spec.reload.strategy === "RolloutRestart" ? { [CONFIG_HASH_ANNOTATION]: desiredHash } : {},
    };
    const conflict = foreignVolumeConflict(workload, plan);
    if (conflict) return { conditions: [{ type: C.WorkloadPatched, status: "False", reason: "VolumeConflict", message: `${ref.kind} ${ref.name}: ${conflict}` }], patched: false };
    const patched = !podTemplateHasPlan(workload, plan);
    if (patched) {
      await this.ctx.client.apply(RESOURCES[ref.kind], { namespace: ns, name: ref.name }, podTemplateApplyPatch(ref.kind, ref.name, ns, plan));
      await this.ctx.events.record(sdb, "Normal", "WorkloadPatched", `mounted Secret ${spec.serverCertificate.secretName} at ${spec.postgres.certificateDirectory} in container ${container} of ${ref.kind} ${ref.name}`);
    }
    const restartedAt = Date.parse(workload.spec?.template?.metadata?.annotations?.[RESTARTED_AT_ANNOTATION] ?? "");
    return {
      conditions: [{ type: C.WorkloadPatched, status: "True", reason: "Mounted", message: `${ref.kind} ${ref.name} mounts the server Secret at ${spec.postgres.certificateDirectory}` }],
      patched,
      ...(Number.isFinite(restartedAt) ? { lastRestartAt: new Date(restartedAt) } : {}),
    };
  }

  // ---------------------------------------------------------------------------------- reload and verify

  private probeArgs(spec: ResolvedSecureDatabaseSpec, trustBundle: string, admin: IssuedCertificate): ProbeOptions {
    const endpoint = parseEndpoint(spec.verification.endpoint) ?? { host: spec.host, port: spec.port };
    return {
      host: endpoint.host,
      port: endpoint.port,
      servername: spec.verification.serverName,
      database: spec.reload.database,
      user: spec.reload.adminUser,
      ca: trustBundle,
      cert: admin.chainPem,
      key: admin.keyPkcs8Pem,
      timeoutMs: PROBE_TIMEOUT_MS,
    };
  }

  private async ensureReload(
    sdb: SecureDatabaseObject,
    spec: ResolvedSecureDatabaseSpec,
    status: SecureDatabaseStatus,
    desiredHash: string,
    probeArgs: ProbeOptions | undefined,
    workload: WorkloadState,
    now: Date,
  ): Promise<{ conditions: ConditionInput[]; requeueAt?: Date; reloaded?: boolean }> {
    const strategy = spec.reload.strategy;
    const decision = decideReload({
      strategy,
      desiredHash,
      appliedHash: status.reload?.appliedHash,
      lastReloadTime: status.reload?.lastReloadTime ? new Date(status.reload.lastReloadTime) : undefined,
      servingStale: status.verification?.matchesCurrent === false,
      now,
      retryAfterMs: STALE_RETRY_MS,
      settleWindowMs: Math.max(SETTLE_WINDOW_MS, spec.ca.propagationDelayMs),
      lastRepeatTime: this.repeatedReloads.get(objectKey(sdb.metadata.namespace, sdb.metadata.name)),
      lastCheckFailed: lastCheckFailed(sdb),
    });
    const reloaded = (reason: Reason, message: string) => ({ reloaded: true, conditions: [{ type: C.Reloaded, status: "True" as const, reason, message }] });
    // Nothing new to load: keep saying how the current files got loaded, so a quiet reconcile writes nothing.
    const earlier = sdb.status?.conditions?.find((c) => c.type === C.Reloaded && c.status === "True");
    const unchanged = (): ConditionInput[] =>
      earlier ? [{ type: C.Reloaded, status: "True", reason: asReason(earlier.reason), message: earlier.message }] : [{ type: C.Reloaded, status: "True", reason: "UpToDate", message: status.reload?.message ?? "the server has loaded the current files" }];
    if (!decision.reload) {
      if (decision.reason === "UpToDate") return { conditions: unchanged(), ...(decision.retryAt ? { requeueAt: decision.retryAt } : {}) };
      return { conditions: [{ type: C.Reloaded, status: "True", reason: decision.reason, message: status.reload?.message ?? "the server has loaded the current files" }] };
    }
    if (strategy === "None") {
      // Unknown, not False: whether the admin has reloaded is for the live verification to tell (Verified).
      return { conditions: [{ type: C.Reloaded, status: "Unknown", reason: "ManualReloadRequired", message: "reload.strategy is None: reload the server yourself (SELECT pg_reload_conf(), or restart it) once the kubelet has updated the files; Verified shows whether it serves the current certificate" }] };
    }
    if (strategy === "RolloutRestart") {
      // The pod template annotation carries the hash: ensureWorkloadMount has already started the rollout.
      const message = `rollout of ${spec.workloadRef?.kind} ${spec.workloadRef?.name} requested`;
      status.reload = { strategy, appliedHash: desiredHash, lastReloadTime: now.toISOString(), message };
      await this.ctx.events.record(sdb, "Normal", "RolloutRequested", `restarting ${spec.workloadRef?.kind} ${spec.workloadRef?.name} so the server loads the new certificate and configuration`);
      return reloaded("RolloutRequested", message);
    }
    if (!probeArgs) throw new Error("reload.strategy SQL without the operator's client identity (needsOperatorIdentity)");
    // A server that failed its last check (down, or refusing us) is asked again on that check's backoff, not on
    // every pass that something else woke.
    const waitForServer = failedCheckRetryAt(sdb, spec, now);
    if (waitForServer) {
      const failed = sdb.status?.conditions?.find((c) => c.type === C.Reloaded && c.status === "False");
      const message = failed?.message ?? "the server failed its last check; reloading once it answers again";
      return { conditions: [{ type: C.Reloaded, status: "False", reason: failed ? asReason(failed.reason) : "WaitingForServer", message }], requeueAt: waitForServer };
    }
    if (decision.reason === "AwaitingKubelet") {
      // Same files as far as we know; the kubelet may only now have laid them down. Not worth a status write.
      this.repeatedReloads.set(objectKey(sdb.metadata.namespace, sdb.metadata.name), now);
      const result = await reloadServer(probeArgs);
      if (!result.ok) this.ctx.log.warn("repeated reload failed", { resource: `SecureDatabase/${sdb.metadata.name}`, namespace: sdb.metadata.namespace, reason: result.reason, message: result.message });
      return { conditions: unchanged(), requeueAt: new Date(now.getTime() + STALE_RETRY_MS) };
    }
    const result = await reloadServer(probeArgs);
    if (result.ok) {
      const message = `pg_reload_conf() as ${spec.reload.adminUser} at ${now.toISOString()}`;
      status.reload = { strategy, appliedHash: desiredHash, lastReloadTime: now.toISOString(), message };
      await this.ctx.events.record(sdb, "Normal", "Reloaded", `reloaded the server over mTLS as ${spec.reload.adminUser} (${decision.reason})`);
      return reloaded("Reloaded", message);
    }
    if (result.reason === "ServerNotServingTLS" && spec.workloadRef) {
      // First switch-over: a server without TLS cannot be reached over mTLS, so restart it once.
      const message = workload.patched
        ? `the server did not serve TLS yet; ${spec.workloadRef.kind} ${spec.workloadRef.name} is restarting with the server Secret mounted`
        : `the server did not serve TLS yet; restarted ${spec.workloadRef.kind} ${spec.workloadRef.name} once`;
      status.reload = { strategy, appliedHash: desiredHash, lastReloadTime: now.toISOString(), message };
      // Mounting the server Secret just now already rolls the pods: a second restart would only add downtime.
      if (workload.patched) workload.lastRestartAt = now;
      else await this.restartServer(sdb, spec, workload, now, "the server did not serve TLS yet, so it could not be reloaded over mTLS");
      return reloaded("RolloutRequested", message);
    }
    const hint =
      result.reason === "ServerNotServingTLS"
        ? "; the server does not serve TLS yet, so it cannot be reloaded over mTLS: restart it once (or set spec.workloadRef, or reload.strategy: RolloutRestart)"
        : result.reason === "ReloadNotPermitted"
          ? `; grant ${spec.reload.adminUser} the right to run pg_reload_conf() or set spec.reload.adminUser to a superuser`
          : "";
    const message = `could not reload the server: ${result.message}${hint}`;
    await this.ctx.events.record(sdb, "Warning", result.reason, message);
    return { conditions: [{ type: C.Reloaded, status: "False", reason: result.reason, message }], requeueAt: new Date(now.getTime() + 30_000) };
  }

  /** Restarts the database's pods (a rollout, as `kubectl rollout restart` does) by stamping the pod template. */
  private async restartServer(sdb: SecureDatabaseObject, spec: ResolvedSecureDatabaseSpec, workload: WorkloadState, now: Date, why: string): Promise<void> {
    const ref = spec.workloadRef!;
    await this.ctx.client.patch(RESOURCES[ref.kind], { namespace: sdb.metadata.namespace!, name: ref.name }, { spec: { template: { metadata: { annotations: { [RESTARTED_AT_ANNOTATION]: now.toISOString() } } } } }, MERGE_PATCH);
    workload.lastRestartAt = now;
    await this.ctx.events.record(sdb, "Normal", "RolloutRequested", `restarting ${ref.kind} ${ref.name}: ${why}`);
  }

  /**
   * The server has dropped the managed configuration (it restarted or reloaded while the blocks were missing from
   * its ConfigMap): get it to load the configuration again, no more often than a restart or reload can show.
   * Returns what was done, for the Verified message.
   */
  private async remedy(sdb: SecureDatabaseObject, spec: ResolvedSecureDatabaseSpec, finding: InsecureFinding, probeArgs: ProbeOptions, workload: WorkloadState, now: Date): Promise<string> {
    const key = objectKey(sdb.metadata.namespace, sdb.metadata.name);
    const decision = decideRemedy({
      finding,
      strategy: spec.reload.strategy,
      hasWorkload: spec.workloadRef !== undefined,
      lastRestartAt: workload.lastRestartAt,
      lastReloadAt: this.remedyReloads.get(key),
      now,
      restartIntervalMs: RESTART_INTERVAL_MS,
      reloadIntervalMs: STALE_RETRY_MS,
    });
    const ref = spec.workloadRef;
    switch (decision.action) {
      case "Manual":
        return decision.why;
      case "Wait":
        return `waiting for the ${ref && (finding === "ServerNotServingTLS" || spec.reload.strategy === "RolloutRestart") ? `restart of ${ref.kind} ${ref.name}` : "reload"} requested earlier (checking again, next remedy not before ${decision.until.toISOString()})`;
      case "Restart":
        await this.restartServer(sdb, spec, workload, now, finding === "ServerNotServingTLS" ? "the server no longer serves TLS (it started without the managed configuration)" : "the server accepts connections without TLS");
        return `restarting ${ref!.kind} ${ref!.name} so it loads the managed configuration again`;
      case "Reload": {
        this.remedyReloads.set(key, now);
        const result = await reloadServer(probeArgs);
        return result.ok ? "reloaded it over mTLS so it loads the managed pg_hba.conf again" : `could not reload it: ${result.message}`;
      }
    }
  }

  private async verify(
    sdb: SecureDatabaseObject,
    spec: ResolvedSecureDatabaseSpec,
    status: SecureDatabaseStatus,
    currentSerial: string,
    probeArgs: ProbeOptions | undefined,
    { reloadedNow, repaired, rotating }: { reloadedNow: boolean; repaired: boolean; rotating: boolean },
    workload: WorkloadState,
    now: Date,
  ): Promise<{ conditions: ConditionInput[]; requeueAt?: Date }> {
    if (!spec.verification.enabled || !probeArgs) {
      status.verification = undefined;
      return { conditions: [{ type: C.Verified, status: "Unknown", reason: "VerificationDisabled", message: "spec.verification.enabled is false" }] };
    }
    const previous = status.verification;
    // A failed check is retried on its backoff, whatever else woke this reconcile (a rotation step, a Secret event).
    const failing = sdb.status?.conditions?.find((c) => c.type === C.Verified && c.status === "False");
    const retryAt = reloadedNow || repaired ? undefined : failedCheckRetryAt(sdb, spec, now);
    if (failing && retryAt) return { conditions: [{ type: C.Verified, status: "False", reason: asReason(failing.reason), message: failing.message }], requeueAt: retryAt };
    const dueAt = previous?.lastAttemptTime ? new Date(previous.lastAttemptTime).getTime() + spec.verification.intervalMs : 0;
    if (!reloadedNow && !repaired && !rotating && previous?.matchesCurrent === true && previous.servedSerialNumber === currentSerial && now.getTime() < dueAt) {
      // Verified recently and nothing changed since: probing again now would only churn status.
      return {
        conditions: [{ type: C.Verified, status: "True", reason: "ServingCurrentCertificate", message: `mTLS connection to ${previous.endpoint} as ${probeArgs.user}: the server presents serial ${currentSerial}` }],
        requeueAt: new Date(dueAt),
      };
    }
    const result = await probeServer(probeArgs);
    const endpoint = `${probeArgs.host}:${probeArgs.port}`;
    if (!result.ok) {
      // Back off against a server that is down: 1 s, then a quarter of how long it has been failing.
      const delay = failureBackoffMs({ lastAttemptTime: now.toISOString(), lastSuccessTime: previous?.lastSuccessTime, failingSince: failing?.lastTransitionTime }, spec.verification.intervalMs, now);
      status.verification = { ...previous, endpoint, lastAttemptTime: now.toISOString(), matchesCurrent: undefined, message: result.message };
      if (previous?.message !== result.message) await this.ctx.events.record(sdb, "Warning", "VerificationFailed", `mTLS connection to ${endpoint} failed: ${result.message}`);
      // A server that served TLS before and no longer does started or reloaded without the managed configuration.
      // (Before its first success, the switch-over's own restart is still under way: see ensureReload.)
      const remedy = result.reason === "ServerNotServingTLS" && !reloadedNow && previous?.lastSuccessTime ? `; ${await this.remedy(sdb, spec, "ServerNotServingTLS", probeArgs, workload, now)}` : "";
      return { conditions: [{ type: C.Verified, status: "False", reason: result.reason, message: `mTLS connection to ${endpoint} as ${probeArgs.user} failed: ${result.message}${remedy}` }], requeueAt: new Date(now.getTime() + delay) };
    }
    const matches = result.servedSerialNumber === currentSerial;
    status.verification = {
      endpoint,
      servedSerialNumber: result.servedSerialNumber,
      matchesCurrent: matches,
      lastAttemptTime: now.toISOString(),
      lastSuccessTime: matches ? now.toISOString() : previous?.lastSuccessTime,
      message: matches ? `serves serial ${currentSerial}` : `serves serial ${result.servedSerialNumber}, expected ${currentSerial}`,
    };
    if (!matches) {
      return {
        conditions: [{ type: C.Verified, status: "False", reason: "ServingPreviousCertificate", message: `the server at ${endpoint} still presents serial ${result.servedSerialNumber}, not the current ${currentSerial}: waiting for the kubelet to update the mounted Secret and for the reload` }],
        requeueAt: new Date(now.getTime() + STALE_CHECK_MS),
      };
    }
    // Serving TLS is not enough: the managed pg_hba.conf also leaves no way in over plain TCP.
    const plaintext = await probePlaintext({ host: probeArgs.host, port: probeArgs.port, user: probeArgs.user, database: probeArgs.database, timeoutMs: PROBE_TIMEOUT_MS });
    if (plaintext.verdict === "Accepted") {
      const message = `the server at ${endpoint} serves serial ${currentSerial} over mTLS, but ${plaintext.message} (as ${probeArgs.user}): it has not loaded the managed pg_hba.conf; ${await this.remedy(sdb, spec, "PlaintextAccepted", probeArgs, workload, now)}`;
      status.verification = { ...status.verification, matchesCurrent: undefined, message: `accepts plain TCP: ${plaintext.message}` };
      await this.ctx.events.record(sdb, "Warning", "PlaintextAccepted", message);
      return { conditions: [{ type: C.Verified, status: "False", reason: "PlaintextAccepted", message }], requeueAt: new Date(now.getTime() + STALE_RETRY_MS) };
    }
    if (previous?.matchesCurrent !== true || previous.servedSerialNumber !== currentSerial) {
      await this.ctx.events.record(sdb, "Normal", "Verified", `the server at ${endpoint} serves certificate serial ${currentSerial} and accepted the operator's client certificate`);
    }
    return {
      conditions: [{ type: C.Verified, status: "True", reason: "ServingCurrentCertificate", message: `mTLS connection to ${endpoint} as ${probeArgs.user}: the server presents serial ${currentSerial}` }],
      requeueAt: new Date(now.getTime() + spec.verification.intervalMs),
    };
  }

  // --------------------------------------------------------------------------------- finalizer and status

  /** Takes back exactly what we added, then lets the object go. Secrets go with their owner. */
  private async finalize(sdb: SecureDatabaseObject): Promise<void> {
    if (!sdb.metadata.finalizers?.includes(FINALIZER)) return;
    const ns = sdb.metadata.namespace!;
    const spec = sdb.spec;
    const owner = ownerLabelValue("SecureDatabase", sdb.metadata.name);
    const cmName = spec.postgres?.configMapName;
    const keys = [spec.postgres?.postgresqlConfKey ?? "postgresql.conf", spec.postgres?.hbaConfKey ?? "pg_hba.conf"];
    for (let attempt = 0; cmName; attempt++) {
      const cm = await this.getConfigMap(ns, cmName);
      if (!cm || cm.metadata.labels?.[OWNER_LABEL] !== owner) break;
      const cleanup = planConfigCleanup(cm.data, keys);
      if (!cleanup.ok) {
        // A block someone broke by hand: removing "our" lines could remove theirs. Keep the finalizer, say why.
        await this.ctx.events.record(sdb, "Warning", cleanup.problem.reason, `cannot remove the managed blocks from ConfigMap ${cmName}: ${cleanup.problem.message}; fix or remove the block by hand`);
        throw new Error(`ConfigMap ${cmName}: ${cleanup.problem.message}`);
      }
      try {
        await this.ctx.client.patch(RESOURCES.ConfigMap, { namespace: ns, name: cmName }, { metadata: { resourceVersion: cm.metadata.resourceVersion, labels: { [OWNER_LABEL]: null } }, data: cleanup.data }, MERGE_PATCH);
        await this.ctx.events.record(sdb, "Normal", "ConfigRestored", `removed the managed blocks from ConfigMap ${cmName}`);
        break;
      } catch (err) {
        if (isApiError(err, 409) && attempt < 4) continue;
        throw err;
      }
    }
    if (spec.workloadRef) {
      const ref = spec.workloadRef;
      // Every SecureDatabase applies its mount under the same field manager, so an empty apply would also take out
      // the mount of another database that names this workload (this one then only had a VolumeConflict).
      const sharedWith = this.ctx.cache.secureDatabases
        .list(ns)
        .find((o) => o.metadata.name !== sdb.metadata.name && !o.metadata.deletionTimestamp && o.spec?.workloadRef?.kind === ref.kind && o.spec.workloadRef.name === ref.name);
      const exists = !sharedWith && (await this.ctx.client.getOptional(RESOURCES[ref.kind], { namespace: ns, name: ref.name }));
      if (exists) await this.ctx.client.apply(RESOURCES[ref.kind], { namespace: ns, name: ref.name }, podTemplateApplyPatch(ref.kind, ref.name, ns, { mounts: [], env: [], annotations: {} }));
    }
    await this.reloadAfterCleanup(sdb);
    await removeFinalizer(this.ctx, RESOURCES.SecureDatabase, sdb);
    this.repeatedReloads.delete(objectKey(ns, sdb.metadata.name));
    this.remedyReloads.delete(objectKey(ns, sdb.metadata.name));
    this.ctx.log.info("finalized", { resource: `SecureDatabase/${sdb.metadata.name}`, namespace: ns, reason: "Finalized" });
  }

  /** With the SQL strategy, ask the server to drop our settings now (best effort: it may already be gone). */
  private async reloadAfterCleanup(sdb: SecureDatabaseObject): Promise<void> {
    const prepared = prepareSecureDatabase(sdb);
    if (!prepared.ok || prepared.spec.reload.strategy !== "SQL") return;
    const admin = this.ctx.cache.secrets.get(sdb.metadata.namespace!, adminSecretName(sdb.metadata.name));
    const data = secretBytes(admin);
    if (!data["tls.crt"] || !data["tls.key"] || !data["ca.crt"]) return;
    const issued = loadIssuedCertificate(data["tls.crt"], data["tls.key"]);
    const result = await reloadServer(this.probeArgs(prepared.spec, data["ca.crt"].toString("utf8"), issued));
    if (!result.ok) await this.ctx.events.record(sdb, "Warning", "ReloadAfterCleanupFailed", `could not reload the server after removing the managed blocks: ${result.message}; reload or restart it yourself`);
  }
}

/** When the last live check failed and its backoff is not over yet: the time to try again; otherwise undefined. */
function failedCheckRetryAt(sdb: SecureDatabaseObject, spec: ResolvedSecureDatabaseSpec, now: Date): Date | undefined {
  const v = sdb.status?.verification;
  if (!lastCheckFailed(sdb) || !v?.lastAttemptTime) return undefined;
  const failing = sdb.status?.conditions?.find((c) => c.type === C.Verified && c.status === "False");
  const at = new Date(v.lastAttemptTime);
  const retryAt = at.getTime() + failureBackoffMs({ lastAttemptTime: v.lastAttemptTime, lastSuccessTime: v.lastSuccessTime, failingSince: failing?.lastTransitionTime }, spec.verification.intervalMs, at);
  return now.getTime() < retryAt ? new Date(retryAt) : undefined;
}

/** The last live check of the server failed (it was down, or refused us); a success or a stale serial is not that. */
function lastCheckFailed(sdb: SecureDatabaseObject): boolean {
  const v = sdb.status?.verification;
  return v?.lastAttemptTime !== undefined && v.matchesCurrent === undefined && v.lastAttemptTime !== v.lastSuccessTime;
}

function caProblem(reason: Reason, message: string): { step: Step } {
  return { step: { conditions: [{ type: C.CAReady, status: "False", reason, message }] } };
}

function configProblem(reason: Reason, message: string): { step: Step; applied: false } {
  return { applied: false, step: { conditions: [{ type: C.ConfigApplied, status: "False", reason, message }], requeueAt: new Date(Date.now() + 60_000) } };
}

function configApplied(): Step {
  return { conditions: [{ type: C.ConfigApplied, status: "True", reason: "Applied", message: "postgresql.conf enables TLS with the operator's files; pg_hba.conf admits TCP clients only with a client certificate" }] };
}

/** What each allowlist entry trusts, by fingerprint (the spec is validated: every entry is one PEM certificate). */
function allowlisted(spec: ResolvedSecureDatabaseSpec): AllowlistedStatus[] {
  return spec.trust.allowlist.map((a) => {
    const facts = parseCertificate(a.certificate);
    return { name: a.name, fingerprintSHA256: facts.fingerprintSha256, subject: facts.subject, notAfter: facts.notAfter.toISOString() };
  });
}

/** What the user chose not to have the operator do or check: not a reason to withhold Ready. */
const NOT_BLOCKING = new Set(["VerificationDisabled", "ManualReloadRequired"]);

/** Ready sums up the others: the first condition that is not True explains why not. */
export function summarize(conditions: readonly ConditionInput[]): ConditionInput {
  // CARotating says what a rotation does; the database stays secured throughout one.
  const blocking = conditions.find((c) => c.type !== C.CARotating && c.status !== "True" && !(c.status === "Unknown" && NOT_BLOCKING.has(c.reason)));
  if (blocking) return { type: C.Ready, status: "False", reason: blocking.reason, message: `${blocking.type}: ${blocking.message}` };
  return { type: C.Ready, status: "True", reason: "Secured", message: "the server requires client certificates and serves the current certificate" };
}

