import { randomBytes } from "node:crypto";
import type { Reason } from "../api/reasons";
import { errorMessage, type LogFields, type Logger } from "../log";
import { RESOURCES } from "./resources";
import type { RestClient } from "./rest";

export type EventType = "Normal" | "Warning";

export interface EventSubject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; uid?: string; resourceVersion?: string };
}

/** Identical events for one object within this window are not repeated: a stuck reconcile must not flood etcd. */
const DEDUPE_WINDOW_MS = 10 * 60_000;
const REPORTING_CONTROLLER = "mtls.imaging.dev/imaging-db-mtls-operator";

/** At most this many remembered events: beyond it the oldest are forgotten even inside the window (bounded memory). */
const MAX_REMEMBERED = 50_000;

/** Records Kubernetes Events (what `kubectl describe` shows) and logs each one as a JSON line. */
export class EventRecorder {
  private readonly recent = new Map<string, number>();

  constructor(
    private readonly client: RestClient,
    private readonly log: Logger,
    /** The dedupe window and the event timestamps read this clock. */
    private readonly now: () => Date,
    private readonly instance = process.env.HOSTNAME ?? "local",
  ) {}

  /** Drops the oldest entries while they are out of the window or too many: amortised O(1), never a scan of all. */
  private forgetExpired(now: number): void {
    for (const [k, t] of this.recent) {
      if (now - t < DEDUPE_WINDOW_MS && this.recent.size < MAX_REMEMBERED) return;
      this.recent.delete(k);
    }
  }

  async record(subject: EventSubject, type: EventType, reason: Reason, message: string): Promise<void> {
    const namespace = subject.metadata.namespace ?? "default";
    const logFields: LogFields = { resource: `${subject.kind}/${subject.metadata.name}`, namespace, reason, message };
    if (type === "Warning") this.log.warn("event", logFields);
    else this.log.info("event", logFields);

    const key = `${subject.metadata.uid}/${type}/${reason}/${message}`;
    const now = this.now().getTime();
    const last = this.recent.get(key);
    if (last !== undefined && now - last < DEDUPE_WINDOW_MS) return;
    this.forgetExpired(now);
    // Deleted first, so the map stays in time order and forgetExpired stops at the first entry still in the window.
    this.recent.delete(key);
    this.recent.set(key, now);

    const timestamp = new Date(now).toISOString();
    try {
      await this.client.create(RESOURCES.Event, namespace, {
        apiVersion: "v1",
        kind: "Event",
        metadata: { name: `${subject.metadata.name}.${randomBytes(8).toString("hex")}`, namespace },
        involvedObject: {
          apiVersion: subject.apiVersion,
          kind: subject.kind,
          name: subject.metadata.name,
          namespace,
          uid: subject.metadata.uid,
          resourceVersion: subject.metadata.resourceVersion,
        },
        type,
        reason,
        message: message.slice(0, 1024),
        firstTimestamp: timestamp,
        lastTimestamp: timestamp,
        count: 1,
        source: { component: "imaging-db-mtls-operator" },
        reportingComponent: REPORTING_CONTROLLER,
        reportingInstance: this.instance,
      });
    } catch (err) {
      // An event is a courtesy: failing to record one must never fail a reconcile.
      this.log.warn("could not record event", { ...logFields, reason: "EventWriteFailed", error: errorMessage(err) } satisfies LogFields);
    }
  }
}
