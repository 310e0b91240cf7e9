import type { Reason } from "./reasons";

/**
 * The result shape of the pure planners, renderers and checks: a value, or a refusal with a CamelCase reason and a
 * message a user can act on. Refusals are values, never thrown.
 */
export interface Refusal<R extends Reason = Reason> {
  readonly ok: false;
  readonly reason: R;
  readonly message: string;
}

export type Result<T, R extends Reason = Reason> = { readonly ok: true; readonly value: T } | Refusal<R>;

export const ok = <T>(value: T): Result<T, never> => ({ ok: true, value });

export const fail = <R extends Reason>(reason: R, message: string): Refusal<R> => ({ ok: false, reason, message });
