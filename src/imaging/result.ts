import type { Reason } from "../api/reasons";

/** Errors of the imaging planners are values: a CamelCase reason and a message a user can act on. */
export interface ImagingError {
  reason: Reason;
  message: string;
}

export type ImagingResult<T> = { ok: true; value: T } | { ok: false; error: ImagingError };

export const ok = <T>(value: T): ImagingResult<T> => ({ ok: true, value });
export const fail = <T>(reason: Reason, message: string): ImagingResult<T> => ({ ok: false, error: { reason, message } });
