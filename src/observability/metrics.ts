/**
 * Prometheus metrics of the operator (prom-client, its own registry so a host process's metrics never mix in).
 * Certificate expiry and the last successful live verification come from the objects' status, so they are
 * what `kubectl get` shows, never a second source of truth.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { ImagingConnection, SecureDatabase } from "../api/types";
import { failureReason } from "../runtime/errors";
import type { WorkQueue } from "../runtime/workqueue";

export interface QueueView {
  name: string;
  queue: WorkQueue;
}

export class OperatorMetrics {
  readonly registry = new Registry();
  private readonly expiry: Gauge;
  private readonly verified: Gauge;
  private readonly reconciles: Counter;
  private readonly errors: Counter;
  private readonly duration: Histogram;
  private readonly leader: Gauge;

  constructor(queues: () => readonly QueueView[]) {
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
    const base = { kind: "SecureDatabase", namespace: sdb.metadata.namespace ?? "", name: sdb.metadata.name };
    this.setTime(this.expiry, { ...base, role: "ca" }, sdb.status?.ca?.notAfter);
    this.setTime(this.expiry, { ...base, role: "server" }, sdb.status?.serverCertificate?.notAfter);
    this.setTime(this.verified, base, sdb.status?.verification?.lastSuccessTime);
  }

  observeImagingConnection(imc: ImagingConnection): void {
    const base = { kind: "ImagingConnection", namespace: imc.metadata.namespace ?? "", name: imc.metadata.name };
    this.setTime(this.expiry, { ...base, role: "client" }, imc.status?.certificate?.notAfter);
    this.setTime(this.verified, base, imc.status?.verification?.lastSuccessTime);
  }

  /** Drops every series of a deleted object. */
  forget(kind: string, namespace: string, name: string): void {
    for (const role of ["ca", "server", "client"]) this.expiry.remove({ kind, namespace, name, role });
    this.verified.remove({ kind, namespace, name });
  }

  private setTime(gauge: Gauge, labels: Record<string, string>, iso: string | undefined): void {
    const t = iso ? Date.parse(iso) : NaN;
    if (Number.isFinite(t)) gauge.set(labels, t / 1000);
    else gauge.remove(labels);
  }
}
