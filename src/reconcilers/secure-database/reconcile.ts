/**
 * Reconciles one SecureDatabase the way a careful admin would (README "What a SecureDatabase does, in order"):
 * make sure the CA is there, issue what is due, write the server's files, switch the configuration to
 * certificate-only TLS, mount the files, get the server to load them, and check over a real mTLS connection that
 * it did. Each step plans from what it reads and applies its plan; this file only puts them in order.
 */
import { prepareSecureDatabase, type ResolvedSecureDatabaseSpec } from "../../api/defaults";
import { Reason } from "../../api/reasons";
import { SECURE_DATABASE_CONDITIONS as C, type SecureDatabaseStatus } from "../../api/types";
import { decodedSecureDatabase, formatValidationErrors, parseEndpoint } from "../../api/validate";
import type { ConditionInput } from "../../kube/conditions";
import { RESOURCES } from "../../kube/resources";
import { buildTrustBundle, isIssuedBy } from "../../pki";
import { objectKey } from "../../runtime/informer";
import type { ReconcileResult } from "../../runtime/workqueue";
import type { OperatorContext, SecureDatabaseObject } from "../context";
import { addFinalizer, refuseCleanup, requeueAtEarliest, writeStatus } from "../custom-resource";
import { ensureCA } from "./ca";
import { CARotator } from "./ca-rotation-step";
import { commandLinePlan, configMapOf, ensureConfig } from "./config";
import { checkLayout, readLayoutFacts, refuseLayout } from "./layout";
import { ensureServerConfigMap } from "./server-config-map";
import { finalize, releaseConfigMap } from "./finalize";
import { needsOperatorIdentity, OperatorIdentities, probeOptions } from "./operator-identity";
import { passwordAccess } from "./password-access";
import { endpointProblem, NO_ALLOWANCE } from "./reach";
import { ensureReload, servedMaterialHash } from "./reload";
import { ensureSecretClaim, ensureServerSecret } from "./server-secret";
import { caStatus, summarize, trustStatus } from "./status";
import { recordEvents, type StepResult } from "./step";
import { ensureVerified } from "./verify";
import { ensureWorkloadMount, type ReloadMemory } from "./workload";

/** The Verified condition of a database whose endpoint the operator may not dial (reach.ts), or undefined. */
function dialProblem(ctx: OperatorContext, sdb: SecureDatabaseObject, spec: ResolvedSecureDatabaseSpec): StepResult | undefined {
  const endpoint = parseEndpoint(spec.verification.endpoint) ?? { host: spec.host, port: spec.port };
  const problem = endpointProblem(endpoint.host, sdb.metadata.namespace!, ctx.endpointAllowance ?? NO_ALLOWANCE);
  if (!problem) return undefined;
  return { conditions: [{ type: C.Verified, status: "False", reason: Reason.EndpointNotAllowed, message: problem }] };
}

export class SecureDatabaseReconciler {
  private readonly rotator: CARotator;
  private readonly memory = new Map<string, ReloadMemory>();
  private readonly identities = new OperatorIdentities();

  constructor(private readonly ctx: OperatorContext) {
    this.rotator = new CARotator(ctx);
  }

  async reconcile(namespace: string, name: string): Promise<ReconcileResult> {
    const ctx = this.ctx;
    const sdb = ctx.cache.secureDatabases.get(namespace, name);
    if (!sdb) return {};
    if (sdb.metadata.deletionTimestamp) {
      const decoded = decodedSecureDatabase(sdb);
      if (!decoded.ok) return refuseCleanup(ctx, sdb, decoded);
      await finalize(ctx, sdb, this.identities.current(sdb));
      await this.identities.drop(ctx, sdb);
      this.memory.delete(objectKey(namespace, name));
      return {};
    }
    await addFinalizer(ctx, RESOURCES.SecureDatabase, ctx.cache.secureDatabases, sdb);

    const now = ctx.now();
    const prepared = prepareSecureDatabase(sdb);
    if (!prepared.ok) {
      const message = formatValidationErrors(prepared.errors);
      await this.writeStatus(sdb, {}, [{ type: C.Ready, status: "False", reason: Reason.InvalidSpec, message }], now);
      await ctx.events.record(sdb, "Warning", Reason.InvalidSpec, message);
      return {};
    }
    const spec = prepared.spec;
    const status: SecureDatabaseStatus = { ...(sdb.status ?? {}) };
    const conditions: ConditionInput[] = [];
    const requeues: Date[] = [];
    const report = (step: StepResult) => {
      conditions.push(...step.conditions);
      if (step.requeueAt) requeues.push(step.requeueAt);
    };
    const done = async (): Promise<ReconcileResult> => {
      await this.writeStatus(sdb, status, [...conditions, summarize(conditions, status.passwordAccess?.length)], now);
      return requeueAtEarliest(requeues, ctx.now());
    };

    // 0. Where it would dial: nowhere the operator may not reach, before anything is issued or written.
    const unreachable = needsOperatorIdentity(spec) ? dialProblem(ctx, sdb, spec) : undefined;
    if (unreachable) {
      report(unreachable);
      await recordEvents(ctx, sdb, [{ type: "Warning", reason: Reason.EndpointNotAllowed, message: unreachable.conditions[0]!.message }]);
      return done();
    }

    // 1. The CA; a CA rotation in progress decides which CA signs and which CAs every bundle trusts.
    const found = await ensureCA(ctx, sdb, spec, now);
    report(found);
    if (!found.ca) return done();
    const rotation = await this.rotator.prepare(sdb, spec, found.ca, now);
    const ca = rotation.signing;
    status.ca = caStatus(spec.ca.secretName, ca, found.keySecret);
    const trustBundle = buildTrustBundle(
      rotation.trusted.flatMap((t) => [t.certPem, ...t.chainPems]),
      spec.trust.allowlist.map((a) => a.certificate),
    );

    // 2. The server's Secret, never written over a Secret that is not ours; the operator's own identity, when
    //    it reloads over SQL or verifies live.
    const claim = await ensureSecretClaim(ctx, sdb, spec.serverCertificate.secretName, now);
    if (claim) {
      report(claim);
      return done();
    }
    const server = await ensureServerSecret(ctx, sdb, spec, rotation, trustBundle, now);
    report(server.outcome);
    status.serverCertificate = server.status;
    status.trust = trustStatus(status.trust, spec, server.crlNumber, server.revokedSerials);
    const identity = needsOperatorIdentity(spec)
      ? await this.identities.ensure(ctx, sdb, spec, ca, rotation.acceptedIssuers, trustBundle, now)
      : await this.identities.drop(ctx, sdb);
    if (identity?.requeueAt) requeues.push(identity.requeueAt);

    // 3. Where the server reads its configuration, refused before anything is written where the spec's choice would
    //    not take effect or would fight the files' owner; then the configuration itself.
    const facts = await readLayoutFacts(ctx, namespace, name, spec);
    const layout = checkLayout(facts);
    status.server = layout.status;
    if (!layout.ok) {
      report(await refuseLayout(ctx, sdb, layout, now));
      // Blocks written before the owner was known (an older operator) would keep breaking its upgrades: give them back.
      if (layout.reason === Reason.ConfigOwnedByApplier) await releaseConfigMap(ctx, sdb);
      return done();
    }
    const config = spec.postgres.configuration === "ConfigMap" ? await ensureConfig(ctx, sdb, spec, now) : await ensureServerConfigMap(ctx, sdb, spec, now);
    report(config);
    if (config.resourceVersion) status.configMap = { name: configMapOf(spec, name), resourceVersion: config.resourceVersion };
    // Who gets in by password is what the block in force says: unknown (kept as reported) while it cannot be written.
    if (config.applied) status.passwordAccess = passwordAccess(spec.postgres.hba.rules);

    // 4. The database workload mounts the server Secret (optional; CommandLine: also its pg_hba.conf and command).
    const desiredHash = servedMaterialHash([server.data["tls.crt"], server.data["ca.crt"], server.data["ca.crl"], config.renderedHash]);
    const commandLine = spec.postgres.configuration === "CommandLine" && config.applied ? commandLinePlan(spec, name) : undefined;
    const workload = await ensureWorkloadMount(ctx, sdb, spec, facts.workload, desiredHash, commandLine);
    conditions.push(...workload.conditions);

    // 5 and 6. Reload, then verify what the server serves.
    const probe = identity ? probeOptions(spec, trustBundle, identity.issued) : undefined;
    const memory = this.memoryOf(namespace, name);
    let verifiedCurrent = false;
    let verificationFailing = false;
    if (config.applied) {
      const { lastRepeatedReload } = memory;
      const observed = { spec, status: sdb.status, desiredHash, lastRepeatedReload, canLogIn: probe !== undefined, probe };
      const reload = await ensureReload(ctx, sdb, observed, workload, memory, now);
      report(reload);
      if (reload.reload) status.reload = reload.reload;
      const checked = {
        spec,
        status: sdb.status,
        currentSerial: server.issued.serialNumber,
        reloadedNow: reload.reloaded === true,
        repaired: config.repaired === true,
        rotating: rotation.phase !== "Idle",
      };
      const verify = await ensureVerified(ctx, sdb, checked, probe, workload, memory, now);
      report(verify);
      status.verification = verify.verification;
      const verified = verify.conditions.find((c) => c.type === C.Verified);
      verifiedCurrent = status.reload?.appliedHash === desiredHash && verified?.status === "True";
      verificationFailing = verified?.status === "False";
    }

    // 7. A CA rotation moves on once this pass showed its phase is done.
    const leafFromSigning = isIssuedBy(server.issued.facts, ca.facts);
    const progress = await this.rotator.advance(sdb, spec, rotation, { verifiedCurrent, leafFromSigning, probe }, now);
    conditions.push(progress.condition);
    status.caRotation = progress.status;
    // A rotation cannot move on while the server fails its check: the check's own backoff paces the retries.
    if (progress.requeueAt && !verificationFailing) requeues.push(progress.requeueAt);
    return done();
  }

  private writeStatus(sdb: SecureDatabaseObject, status: SecureDatabaseStatus, conditions: ConditionInput[], now: Date): Promise<void> {
    return writeStatus(this.ctx, RESOURCES.SecureDatabase, this.ctx.cache.secureDatabases, sdb, status, conditions, now);
  }

  private memoryOf(namespace: string, name: string): ReloadMemory {
    const key = objectKey(namespace, name);
    let memory = this.memory.get(key);
    if (!memory) this.memory.set(key, (memory = {}));
    return memory;
  }
}
