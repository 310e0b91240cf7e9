/**
 * Prometheus metrics of the operator (prom-client, its own registry so a host process's metrics never mix in).
 * Certificate expiry, renewals, overdue renewals, the CA-rotation phase and the last successful live verification
 * come from the objects' status, so they are what `kubectl get` shows, never a second source of truth.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { CA_ROTATION_PHASES, type CARotationPhase, type ImagingConnection, type SecureDatabase } from "../api/types";
import { failureReason } from "../runtime/errors";
import type { WorkQueue } from "../runtime/workqueue";

export interface QueueView {
  name: string;
  queue: WorkQueue;
}

/** The certificates of each kind's status, by the role label of their series. */
const CERTIFICATE_ROLES = { SecureDatabase: ["ca", "server"], ImagingConnection: ["client"] } as const;
type Kind = keyof typeof CERTIFICATE_ROLES;
type Role = (typeof CERTIFICATE_ROLES)[Kind][number];
const ROLES: readonly Role[] = Object.values(CERTIFICATE_ROLES).flat();

/** One certificate as status shows it (status.ca has no renewalTime: a CA is renewed by a rotation). */
interface CertificateStatus {
  serialNumber?: string;
  notAfter?: string;
  renewalTime?: string;
}

// Type aliases, not interfaces: prom-client's label values are an index signature.
type ObjectLabels = { kind: Kind; namespace: string; name: string };
type CertificateLabels = ObjectLabels & { role: Role };

/** What the last status of an object said of one of its certificates. */
interface SeenCertificate {
  labels: CertificateLabels;
  /** The last serial seen, kept while status shows none, so that a certificate back after a gap is no first issuance. */
  serial?: string;
  /** renewalTime in ms, while status shows one. */
  renewalAt?: number;
}

const keyOf = (l: Record<keyof CertificateLabels, string>): string => JSON.stringify([l.kind, l.namespace, l.name, l.role]);

/**
 * The CA-rotation phase of a database. status.caRotation is written from a database's first rotation on, so one
 * with a CA and no caRotation has never rotated: Idle. Before it has a CA, no phase.
 */
function rotationPhaseOf(sdb: SecureDatabase): CARotationPhase | undefined {
  return sdb.status?.caRotation?.phase ?? (sdb.status?.ca ? "Idle" : undefined);
}

export class OperatorMetrics {
  readonly registry = new Registry();
  private readonly expiry: Gauge;
  private readonly verified: Gauge;
  private readonly reconciles: Counter;
  private readonly errors: Counter;
  private readonly duration: Histogram;
  private readonly leader: Gauge;
  private readonly renewals: Counter;
  private readonly rotationPhase: Gauge;
  private readonly certificates = new Map<string, SeenCertificate>();

  /** `now`: the clock overdue renewals are judged by, at every scrape. */
  constructor(queues: () => readonly QueueView[], now: () => Date = () => new Date()) {
    collectDefaultMetrics({ register: this.registry, prefix: "imaging_mtls_operator_" });
    this.expiry = new Gauge({
      name: "imaging_mtls_certificate_expiry_timestamp_seconds",
      help: "When a certificate the operator manages expires (Unix time); it is renewed before.",
      labelNames: ["kind", "namespace", "name", "role"],
      registers: [this.registry],
    });
    this.verified = new Gauge({
      name: "imaging_mtls_last_verification_success_timestamp_seconds",
      help: "When a live mTLS connection last succeeded (SecureDatabase: the server served its current certificate; ImagingConnection: the login).",
      labelNames: ["kind", "namespace", "name"],
      registers: [this.registry],
    });
    this.renewals = new Counter({
      name: "imaging_mtls_certificate_renewals_total",
      help: "Certificates replaced by a new one (status shows a new serial): renewals, re-issues and CA rotations. A first issuance is not counted.",
      labelNames: ["kind", "role"],
      registers: [this.registry],
    });
    // Every series from 0, so increase() sees the first renewal after a start too.
    for (const [kind, roles] of Object.entries(CERTIFICATE_ROLES)) for (const role of roles) this.renewals.inc({ kind, role }, 0);
    const certificates = this.certificates;
    new Gauge({
      name: "imaging_mtls_certificate_renewal_overdue",
      help: "1 once a server or client certificate's renewalTime has passed and status still shows that certificate (its renewal has not happened), else 0.",
      labelNames: ["kind", "namespace", "name", "role"],
      registers: [this.registry],
      // At scrape time: renewalTime passes without a status write to tell.
      collect() {
        this.reset();
        const t = now().getTime();
        for (const c of certificates.values()) if (c.renewalAt !== undefined) this.set(c.labels, t >= c.renewalAt ? 1 : 0);
      },
    });
    this.rotationPhase = new Gauge({
      name: "imaging_mtls_ca_rotation_phase",
      help: "The CA-rotation phase of a SecureDatabase (status.caRotation.phase): 1 for the current phase, 0 for the others.",
      labelNames: ["namespace", "name", "phase"],
      registers: [this.registry],
    });
    this.reconciles = new Counter({ name: "imaging_mtls_reconcile_total", help: "Reconciles run, by kind.", labelNames: ["kind"], registers: [this.registry] });
    this.errors = new Counter({
      name: "imaging_mtls_reconcile_errors_total",
      help: "Reconciles that failed, by kind and reason (retried with backoff, or after a change for a terminal failure).",
      labelNames: ["kind", "reason"],
      registers: [this.registry],
    });
    this.duration = new Histogram({
      name: "imaging_mtls_reconcile_duration_seconds",
      help: "How long reconciles take, by kind.",
      labelNames: ["kind"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [this.registry],
    });
    this.leader = new Gauge({
      name: "imaging_mtls_leader",
      help: "1 while this replica holds the leader lease (or runs without leader election) and reconciles.",
      registers: [this.registry],
    });
    const queueGauge = (name: string, help: string, read: (q: WorkQueue) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ["queue"],
        registers: [this.registry],
        collect() {
          for (const q of queues()) this.set({ queue: q.name }, read(q.queue));
        },
      });
    queueGauge("imaging_mtls_workqueue_depth", "Keys waiting in a work queue.", (q) => q.depth);
    queueGauge("imaging_mtls_workqueue_retrying", "Keys whose last reconcile failed and that wait for their retry.", (q) => q.retrying);
  }

  setLeader(leading: boolean): void {
    this.leader.set(leading ? 1 : 0);
  }

  /** Wraps a reconcile function: counts it, times it, counts its errors by reason (the error still reaches the queue). */
  instrument<T>(kind: string, reconcile: (key: string) => Promise<T>): (key: string) => Promise<T> {
    return async (key) => {
      const end = this.duration.startTimer({ kind });
      this.reconciles.inc({ kind });
      try {
        return await reconcile(key);
      } catch (err) {
        this.errors.inc({ kind, reason: failureReason(err) });
        throw err;
      } finally {
        end();
      }
    };
  }

  observeSecureDatabase(sdb: SecureDatabase): void {
    const base: ObjectLabels = { kind: "SecureDatabase", namespace: sdb.metadata.namespace ?? "", name: sdb.metadata.name };
    this.observeCertificate({ ...base, role: "ca" }, sdb.status?.ca);
    this.observeCertificate({ ...base, role: "server" }, sdb.status?.serverCertificate);
    this.setTime(this.verified, base, sdb.status?.verification?.lastSuccessTime);
    this.setRotationPhase(base.namespace, base.name, rotationPhaseOf(sdb));
  }

  observeImagingConnection(imc: ImagingConnection): void {
    const base: ObjectLabels = { kind: "ImagingConnection", namespace: imc.metadata.namespace ?? "", name: imc.metadata.name };
    this.observeCertificate({ ...base, role: "client" }, imc.status?.certificate);
    this.setTime(this.verified, base, imc.status?.verification?.lastSuccessTime);
  }

  /** Drops every series of a deleted object. */
  forget(kind: string, namespace: string, name: string): void {
    for (const role of ROLES) {
      const labels = { kind, namespace, name, role };
      this.expiry.remove(labels);
      this.certificates.delete(keyOf(labels));
    }
    this.verified.remove({ kind, namespace, name });
    // The phase series have no kind label: an ImagingConnection of the same name must leave its database's alone.
    if (kind === "SecureDatabase") this.setRotationPhase(namespace, name, undefined);
  }

  /**
   * Expiry, renewal count and renewal time of one certificate. A renewal is a serial replacing one this process
   * saw: it cannot know what status showed before it started, so its first sight of a certificate is not counted
   * (else every certificate would count as renewed at every start of every replica, standbys included). The cost:
   * a renewal while the process did not run is not counted by it.
   */
  private observeCertificate(labels: CertificateLabels, cert: CertificateStatus | undefined): void {
    this.setTime(this.expiry, labels, cert?.notAfter);
    const key = keyOf(labels);
    const seen = this.certificates.get(key);
    const serial = cert?.serialNumber ?? seen?.serial;
    if (seen?.serial !== undefined && serial !== seen.serial) this.renewals.inc({ kind: labels.kind, role: labels.role });
    const renewalAt = cert?.renewalTime ? Date.parse(cert.renewalTime) : NaN;
    this.certificates.set(key, { labels, serial, renewalAt: Number.isFinite(renewalAt) ? renewalAt : undefined });
  }

  /** One series per phase the code defines, 1 for the current one; none while the phase is unknown. */
  private setRotationPhase(namespace: string, name: string, current: CARotationPhase | undefined): void {
    for (const phase of CA_ROTATION_PHASES) {
      if (current) this.rotationPhase.set({ namespace, name, phase }, phase === current ? 1 : 0);
      else this.rotationPhase.remove({ namespace, name, phase });
    }
  }

  private setTime(gauge: Gauge, labels: Record<string, string>, iso: string | undefined): void {
    const t = iso ? Date.parse(iso) : NaN;
    if (Number.isFinite(t)) gauge.set(labels, t / 1000);
    else gauge.remove(labels);
  }
}
