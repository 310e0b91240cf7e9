import type { Reason } from "../api/reasons";
import type { Condition, ConditionStatus, ImagingConnectionConditionType, SecureDatabaseConditionType } from "../api/types";

export interface ConditionInput {
  type: SecureDatabaseConditionType | ImagingConnectionConditionType;
  status: ConditionStatus;
  reason: Reason;
  message: string;
}

/**
 * The conditions after setting one: lastTransitionTime moves only when the status changes, so an unchanged
 * condition produces identical status and no write.
 */
export function setCondition(conditions: readonly Condition[] | undefined, input: ConditionInput, generation: number | undefined, now: Date): Condition[] {
  const existing = conditions?.find((c) => c.type === input.type);
  const next: Condition = {
    type: input.type,
    status: input.status,
    reason: input.reason,
    message: input.message,
    lastTransitionTime: existing && existing.status === input.status ? existing.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, "Z"),
  };
  if (generation !== undefined) next.observedGeneration = generation;
  const others = (conditions ?? []).filter((c) => c.type !== input.type);
  return [...others, next].sort((a, b) => a.type.localeCompare(b.type));
}

/** Sets several conditions at once, in order. */
export function setConditions(
  conditions: readonly Condition[] | undefined,
  inputs: readonly ConditionInput[],
  generation: number | undefined,
  now: Date,
): Condition[] {
  return inputs.reduce<Condition[]>((acc, c) => setCondition(acc, c, generation, now), [...(conditions ?? [])]);
}
