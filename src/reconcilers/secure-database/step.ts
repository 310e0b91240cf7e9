/** What every step of a SecureDatabase pass hands back: its plans return a StepOutcome, its thin parts apply it. */
import type { Reason } from "../../api/reasons";
import type { ConditionInput } from "../../kube/conditions";
import type { EventType } from "../../kube/events";
import type { OperatorContext, SecureDatabaseObject } from "../context";

/** An event a plan asks to record on the SecureDatabase. */
export interface PlannedEvent {
  type: EventType;
  reason: Reason;
  message: string;
}

/** What a step reports: its conditions, and when to look again at the latest. */
export interface StepResult {
  conditions: ConditionInput[];
  requeueAt?: Date;
}

/** A plan's decision besides its writes: the step's result and the events to record once the writes are done. */
export interface StepOutcome extends StepResult {
  events: PlannedEvent[];
}

/** A problem only a human can fix (a missing Secret, a claimed ConfigMap) is looked at again after this long. */
export const PROBLEM_RETRY_MS = 60_000;

/**
 * The kubelet lays a changed Secret down within seconds to a minute: while the server still serves the previous
 * files, reload again (and remedy a plain-TCP path) at most this often.
 */
export const STALE_RETRY_MS = 3000;

export const after = (now: Date, ms: number): Date => new Date(now.getTime() + ms);

export async function recordEvents(ctx: OperatorContext, sdb: SecureDatabaseObject, events: readonly PlannedEvent[]): Promise<void> {
  for (const e of events) await ctx.events.record(sdb, e.type, e.reason, e.message);
}

export function outcomeOf(conditions: ConditionInput[], requeueAt?: Date, events: PlannedEvent[] = []): StepOutcome {
  return { conditions, events, ...(requeueAt ? { requeueAt } : {}) };
}

/** The result of an outcome whose events are recorded. */
export const resultOf = ({ conditions, requeueAt }: StepOutcome): StepResult => (requeueAt ? { conditions, requeueAt } : { conditions });
