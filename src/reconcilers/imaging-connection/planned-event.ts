import type { Reason } from "../../api/reasons";
import type { EventType } from "../../kube/events";
import type { ImagingConnectionObject, OperatorContext } from "../context";

/** An event a plan asks for, recorded on the connection in the order planned. */
export interface PlannedEvent {
  type: EventType;
  reason: Reason;
  message: string;
}

export async function recordEvents(ctx: OperatorContext, imc: ImagingConnectionObject, events: readonly PlannedEvent[]): Promise<void> {
  for (const e of events) await ctx.events.record(imc, e.type, e.reason, e.message);
}
