import { randomBytes } from "node:crypto";
import type { Logger } from "../log";
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

/** Records Kubernetes Events (what `kubectl describe` shows) and logs each one as a JSON line. */
export class EventRecorder {
  private readonly recent = new Map<string, number>();

  constructor(
    private readonly client: RestClient,
    private readonly log: Logger,
    private readonly instance = process.env.HOSTNAME ?? "local",
  ) {}

  async record(subject: EventSubject, type: EventType, reason: string, message: string): Promise<void> {
    const namespace = subject.metadata.namespace ?? "default";
    const logFields = { resource: `${subject.kind}/${subject.metadata.name}`, namespace, reason, message };
    if (type === "Warning") this.log.warn("event", logFields);
    else this.log.info("event", logFields);

    const key = `${subject.metadata.uid}/${type}/${reason}/${message}`;
    const now = Date.now();
    const last = this.recent.get(key);
    if (last !== undefined && now - last < DEDUPE_WINDOW_MS) return;
    this.recent.set(key, now);
    if (this.recent.size > 10_000) for (const [k, t] of this.recent) if (now - t >= DEDUPE_WINDOW_MS) this.recent.delete(k);

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
      this.log.warn("could not record event", { ...logFields, reason: "EventWriteFailed", error: err instanceof Error ? err.message : String(err) });
    }
  }
}
