/**
 * The JSON merge patch (RFC 7386) that turns one document into another: only what changed, `null` for what went.
 * Arrays are replaced whole, as a merge patch applies them.
 */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

const isObject = (v: Json | undefined): v is { [key: string]: Json } => typeof v === "object" && v !== null && !Array.isArray(v);

function same(a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => same(x, b[i]));
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && same(a[k], b[k]));
  }
  return false;
}

/** The patch from `from` to `to` (both objects); an empty object when they are equal. */
export function mergePatchOf(from: { [key: string]: Json }, to: { [key: string]: Json }): { [key: string]: Json } {
  const patch: { [key: string]: Json } = {};
  for (const key of Object.keys(from)) if (!Object.hasOwn(to, key)) patch[key] = null;
  for (const [key, value] of Object.entries(to)) {
    const old = from[key];
    if (isObject(old) && isObject(value)) {
      const inner = mergePatchOf(old, value);
      if (Object.keys(inner).length > 0) patch[key] = inner;
    } else if (!same(old, value)) {
      patch[key] = value;
    }
  }
  return patch;
}
