/**
 * Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics: a lease is taken over only after
 * it went unrenewed for its whole duration *as measured on our own clock* (the holder's renewTime is never compared
 * with our clock, so clock skew between nodes cannot make two leaders); the leader renews every retry period and
 * gives up when it could not renew within the renew deadline; a graceful shutdown releases the lease so a standby
 * takes over at its next retry instead of after a full lease duration.
 */
import { isApiError, resourcePath, type RestClient } from "../kube/rest";
import { RESOURCES } from "../kube/resources";
import type { Reason } from "../api/reasons";
import { errorMessage, type LogFields, type Logger } from "../log";

export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number | null;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number | null;
}

export interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string> };
  spec?: LeaseSpec;
}

/** What we last saw of the lease, and when (on our clock). */
export interface Observation {
  holder: string;
  renewTime: string;
  observedAtMs: number;
}

export type LeaseAction =
  | { action: "create" }
  | { action: "acquire"; reason: Extract<Reason, "Released" | "Expired"> }
  | { action: "renew" }
  | { action: "wait"; holder: string; expiresInMs: number };

/**
 * The decision of one election round, pure: create a missing lease, take over a released or expired one, renew our
 * own, or wait for another holder. `observation` must be the result of `observe()` on this same lease.
 */
export function leaseAction(lease: Lease | undefined, identity: string, observation: Observation | undefined, nowMs: number): LeaseAction {
  if (!lease) return { action: "create" };
  const holder = lease.spec?.holderIdentity ?? "";
  if (holder === identity) return { action: "renew" };
  if (holder === "") return { action: "acquire", reason: "Released" };
  const durationMs = (lease.spec?.leaseDurationSeconds ?? 0) * 1000;
  const since = observation?.observedAtMs ?? nowMs;
  const expiresInMs = since + durationMs - nowMs;
  return expiresInMs <= 0 ? { action: "acquire", reason: "Expired" } : { action: "wait", holder, expiresInMs };
}

/** Resets the local clock of a lease whenever its holder or renewTime changes. */
export function observe(previous: Observation | undefined, lease: Lease | undefined, nowMs: number): Observation | undefined {
  if (!lease) return undefined;
  const holder = lease.spec?.holderIdentity ?? "";
  const renewTime = lease.spec?.renewTime ?? "";
  if (previous && previous.holder === holder && previous.renewTime === renewTime) return previous;
  return { holder, renewTime, observedAtMs: nowMs };
}

/** Lease times are MicroTime: RFC 3339 with microseconds. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/** The lease spec we write when we create, take over or renew a lease. */
export function leaderLeaseSpec(current: LeaseSpec | undefined, identity: string, leaseDurationSeconds: number, now: Date): LeaseSpec {
  const ours = current?.holderIdentity === identity;
  return {
    holderIdentity: identity,
    leaseDurationSeconds,
    acquireTime: ours ? (current?.acquireTime ?? microTime(now)) : microTime(now),
    renewTime: microTime(now),
    leaseTransitions: ours || !current ? (current?.leaseTransitions ?? 0) : (current.leaseTransitions ?? 0) + 1,
  };
}

/** The log reason of a takeover says which lease was taken: one its holder released, or one left to expire. */
const TAKEOVER_LOG_REASON = { Released: "LeaseReleased", Expired: "LeaseExpired" } as const satisfies Record<string, Reason>;

/** Which Lease, who we are, and the timings: what the command line decides. */
export interface LeaderElectionConfig {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

export interface LeaderElectionOptions extends LeaderElectionConfig {
  client: RestClient;
  log: Logger;
  /** Our own clock: lease expiry is measured on it, never on the holder's renewTime. */
  now: () => Date;
  onStartedLeading: () => void;
  /** Called once when leadership is lost (not on release): the caller must stop reconciling at once. */
  onStoppedLeading: () => void;
}

export function validateTimings(o: Pick<LeaderElectionOptions, "leaseDurationMs" | "renewDeadlineMs" | "retryPeriodMs">): string | undefined {
  if (!(o.retryPeriodMs > 0)) return "the retry period must be positive";
  if (!(o.renewDeadlineMs > o.retryPeriodMs)) return "the renew deadline must be longer than the retry period";
  if (!(o.leaseDurationMs > o.renewDeadlineMs)) return "the lease duration must be longer than the renew deadline";
  if (o.leaseDurationMs % 1000 !== 0) return "the lease duration must be whole seconds";
  return undefined;
}

export class LeaderElector {
  private observation: Observation | undefined;
  private lease: Lease | undefined;
  private leading = false;
  private lastRenewMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private round: Promise<void> = Promise.resolve();
  private readonly path: string;

  constructor(private readonly opts: LeaderElectionOptions) {
    const problem = validateTimings(opts);
    if (problem) throw new Error(`leader election: ${problem}`);
    this.path = resourcePath(RESOURCES.Lease, { namespace: opts.namespace, name: opts.name });
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.schedule(0);
  }

  /** Stops campaigning; a leader hands the lease back (holder cleared) so a standby need not wait for it to expire. */
  async release(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.round;
    if (!this.leading || !this.lease) return;
    this.leading = false;
    const spec: LeaseSpec = { ...this.lease.spec, holderIdentity: "", leaseDurationSeconds: 1, renewTime: microTime(this.opts.now()) };
    try {
      await this.opts.client.request("PUT", this.path, { body: { ...this.lease, spec }, signal: AbortSignal.timeout(this.opts.retryPeriodMs) });
      this.log("info", "released the leader lease", "LeaseReleased");
    } catch (err) {
      this.log("warn", "could not release the leader lease; the other replica takes over when it expires", "LeaseReleaseFailed", err);
    }
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.round = this.tryOnce().finally(() => this.schedule(this.opts.retryPeriodMs));
    }, delayMs);
  }

  private async tryOnce(): Promise<void> {
    const now = this.opts.now().getTime();
    try {
      // Each request may take at most one retry period, so a hung API server cannot stretch the renew deadline.
      const signal = AbortSignal.timeout(this.opts.retryPeriodMs);
      const current = await this.opts.client.request<Lease>("GET", this.path, { signal }).catch((err: unknown) => {
        if (isApiError(err, 404)) return undefined;
        throw err;
      });
      this.observation = observe(this.observation, current, now);
      this.lease = current;
      const decision = leaseAction(current, this.opts.identity, this.observation, now);
      if (decision.action === "wait") {
        if (this.leading) this.lose(`the lease is now held by ${decision.holder}`);
        return;
      }
      const spec = leaderLeaseSpec(current?.spec, this.opts.identity, this.opts.leaseDurationMs / 1000, this.opts.now());
      const written =
        decision.action === "create"
          ? await this.opts.client.request<Lease>("POST", resourcePath(RESOURCES.Lease, { namespace: this.opts.namespace }), {
              body: { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name: this.opts.name, namespace: this.opts.namespace }, spec },
              signal,
            })
          : await this.opts.client.request<Lease>("PUT", this.path, { body: { ...current, spec }, signal });
      this.lease = written;
      this.observation = observe(this.observation, written, this.opts.now().getTime());
      this.lastRenewMs = now;
      if (!this.leading) {
        this.leading = true;
        this.log("info", "became the leader", decision.action === "acquire" ? TAKEOVER_LOG_REASON[decision.reason] : "LeaseCreated");
        this.opts.onStartedLeading();
      }
    } catch (err) {
      // 409: someone else wrote the lease first; anything else: the API server is slow or away. Either way, retry.
      const sinceRenewMs = this.opts.now().getTime() - this.lastRenewMs;
      const overdue = this.leading && sinceRenewMs >= this.opts.renewDeadlineMs;
      if (overdue) this.lose("the lease could not be renewed within the renew deadline", err);
      else if (!isApiError(err, 409)) this.log("warn", "leader election round failed", "LeaseError", err);
    }
  }

  private lose(why: string, err?: unknown): void {
    this.leading = false;
    this.stopped = true;
    this.log("error", `lost leadership: ${why}`, "LeadershipLost", err);
    this.opts.onStoppedLeading();
  }

  private log(level: "info" | "warn" | "error", message: string, reason: Reason, err?: unknown): void {
    const fields: LogFields = {
      reason,
      resource: `Lease/${this.opts.name}`,
      namespace: this.opts.namespace,
      identity: this.opts.identity,
      ...(err ? { error: errorMessage(err) } : {}),
    };
    this.opts.log.log(level, message, fields);
  }
}
