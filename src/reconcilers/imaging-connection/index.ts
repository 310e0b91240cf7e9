/**
 * An ImagingConnection, reconciled the way README "What an ImagingConnection does, in order" tells it: may it, the
 * client Secret, the workloads, the declaration, the login. Each step plans from what it observed (a pure
 * function in its own file) and applies that plan; this file only puts them in order and writes the status.
 */
import { defaultMountPath } from "../../api/defaults";
import { Reason } from "../../api/reasons";
import type { ImagingConnectionStatus } from "../../api/types";
import { connectionDeclaration } from "../../imaging/declaration";
import { castIniPath } from "../../imaging/workload-plan";
import type { ConditionInput } from "../../kube/conditions";
import { RESOURCES } from "../../kube/resources";
import type { ReconcileResult } from "../../runtime/workqueue";
import type { ImagingConnectionObject, OperatorContext } from "../context";
import { decodedImagingConnection } from "../../api/validate";
import { addFinalizer, refuseCleanup, requeueAtEarliest, writeStatus } from "../custom-resource";
import { ensureClientSecret } from "./client-secret";
import { finalizeConnection } from "./finalize";
import { revokedMessage, revokeIssued } from "./revoke-issued";
import { verifyLogin } from "./login";
import { recordEvents } from "./planned-event";
import { settingUpQuietly, summarize } from "./status";
import { ownClientSecret, planTarget, resolveConnection } from "./target";
import { reportWorkloads } from "./workloads";
import { chartContracts, connectionTargets, ensureChartSecret } from "./chart-delivery";
import { secretBytes } from "../../kube/secrets";

export { CAST_INI_OWNER, ConnectionWorkloadReconciler } from "./workload-reconciler";

/**
 * Refusals that mean the database no longer admits this identity: its certificates are revoked (revokeOnDelete).
 * A lifetime or a mount the grant does not allow refuses the request, not the identity: what was issued stays valid.
 */
const LOST_ACCESS = new Set<Reason>([
  Reason.NamespaceNotAllowed,
  Reason.UserNotAllowed,
  Reason.DatabaseNotAllowed,
  Reason.AdminRoleNotIssued,
  Reason.UserNotAdmitted,
]);

/** How soon a connection refused the chart's Secret (someone else's) looks whether it was freed. */
const CHART_CLAIM_RECHECK_MS = 10_000;

/** What one pass reports: the status to write, its conditions in order (Ready is added last), when to look again. */
interface Report {
  status: ImagingConnectionStatus;
  conditions: ConditionInput[];
  requeues: number[];
}

export class ImagingConnectionReconciler {
  constructor(private readonly ctx: OperatorContext) {}

  async reconcile(namespace: string, name: string): Promise<ReconcileResult> {
    const imc = this.ctx.cache.imagingConnections.get(namespace, name);
    if (!imc) return {};
    if (imc.metadata.deletionTimestamp) {
      const decoded = decodedImagingConnection(imc);
      return decoded.ok ? finalizeConnection(this.ctx, imc) : refuseCleanup(this.ctx, imc, decoded);
    }
    await addFinalizer(this.ctx, RESOURCES.ImagingConnection, this.ctx.cache.imagingConnections, imc);
    const now = this.ctx.now();
    const report: Report = { status: { ...(imc.status ?? {}) }, conditions: [], requeues: [] };

    // 1. May it? Which database, and may this namespace have an identity from it.
    const resolved = resolveConnection(this.ctx, imc);
    const may = planTarget(resolved);
    report.conditions.push(...may.conditions);
    await recordEvents(this.ctx, imc, may.events);
    if (!resolved.ok) {
      if (resolved.spec && LOST_ACCESS.has(resolved.problem.reason)) {
        const why = `it lost access: ${resolved.problem.reason}`;
        const revoked = await revokeIssued(this.ctx, imc, resolved.spec.databaseRef, "affiliationChanged", why, now);
        const connection = `${namespace}/${name}`;
        if (revoked.length > 0) await this.ctx.events.record(imc, "Normal", Reason.CertificatesRevoked, revokedMessage(connection, revoked, "affiliationChanged", why));
      }
      // The workload reconciler takes the mount away from a connection that no longer resolves: say so, rather
      // than leave the workloads reported as they were.
      if (resolved.spec) {
        const targets = connectionTargets(this.ctx, imc, resolved.spec);
        const workloads = await reportWorkloads(this.ctx, imc, resolved.spec, targets, { unmountedFor: resolved.problem });
        report.status.workloads = workloads.statuses;
        report.conditions.push(workloads.condition);
      }
      return this.finish(imc, report, now);
    }
    const { spec, target } = resolved;

    // 2. The client Secret, from the database's current CA, with its trust bundle.
    const cert = await ensureClientSecret(this.ctx, imc, spec, target, now);
    report.conditions.push(cert.condition);
    if (!cert.ready) {
      const quietUntil = settingUpQuietly(imc, target.sdb, cert.condition.reason, now);
      if (quietUntil !== undefined) return requeueAtEarliest([quietUntil], this.ctx.now());
      report.requeues.push(cert.requeueAt);
      return this.finish(imc, report, now);
    }
    if (cert.renewalTime) report.requeues.push(cert.renewalTime.getTime());
    report.status.certificate = cert.status;

    // 3. The workloads: CAST's chart's own Secret filled for those that copy it at start (the workload reconciler
    // restarts them in turn and mounts the others); here we read how far it got.
    const targets = connectionTargets(this.ctx, imc, spec);
    const contracts = chartContracts(targets);
    const chart =
      contracts.length > 0
        ? await ensureChartSecret(this.ctx, imc, spec, target, contracts, secretBytes(ownClientSecret(this.ctx, imc, spec.secretName)))
        : { events: [] };
    await recordEvents(this.ctx, imc, chart.events);
    // A Secret the operator does not own is not in its cache (nor is the deletion that frees its name): look again.
    if (chart.problem) report.requeues.push(now.getTime() + CHART_CLAIM_RECHECK_MS);
    const workloads = await reportWorkloads(this.ctx, imc, spec, targets, chart.problem ? { chartProblem: chart.problem } : {});
    report.status.workloads = workloads.statuses;
    report.conditions.push(workloads.condition);

    // 4. What to declare in CAST Imaging: where the files are in the containers (the chart's copy directory, if
    // the chart's contract is how they get there).
    const [contract] = contracts;
    report.status.declaration = contract
      ? connectionDeclaration(target.db, spec, contract.filesDir, contract.iniPath)
      : connectionDeclaration(
          target.db,
          spec,
          spec.workloads[0]?.mountPath ?? defaultMountPath(imc.metadata.name),
          castIniPath(targets.find((t) => t.delivery.delivery === "Mount")?.workload),
        );

    // 5. Log in with it.
    const login = await verifyLogin(this.ctx, { imc, spec, target, issued: cert.issued, trustBundle: cert.trustBundle }, now);
    report.status.verification = login.verification;
    report.conditions.push(login.condition);
    if (login.requeueAt) report.requeues.push(login.requeueAt);
    return this.finish(imc, report, now);
  }

  /** Ready from the others, the status written if it changed, and the earliest requeue. */
  private async finish(imc: ImagingConnectionObject, report: Report, now: Date): Promise<ReconcileResult> {
    const conditions = [...report.conditions, summarize(report.conditions)];
    await writeStatus(this.ctx, RESOURCES.ImagingConnection, this.ctx.cache.imagingConnections, imc, report.status, conditions, now);
    return requeueAtEarliest(report.requeues, this.ctx.now());
  }
}
