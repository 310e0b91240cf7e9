import { expect } from "chai";
import { resolveSecureDatabase, type ResolvedSecureDatabaseSpec } from "../../../../src/api/defaults";
import type { SecureDatabase, SecureDatabaseStatus } from "../../../../src/api/types";
import type { SecureDatabaseObject } from "../../../../src/reconcilers/context";
import { sdb } from "../../api/builders";

export const NOW = new Date("2026-11-23T12:00:00Z");
export const at = (offsetMs: number): Date => new Date(NOW.getTime() + offsetMs);

/** A SecureDatabase as the informer hands it over: named, with a uid, the given spec and stored status. */
export function database(
  spec: Partial<SecureDatabase["spec"]> = {},
  status?: SecureDatabaseStatus,
  name = "imaging-db",
): SecureDatabaseObject {
  const base = sdb(spec, name);
  const metadata = { ...base.metadata, name, uid: `uid-${name}`, resourceVersion: "7" };
  return { ...base, metadata, ...(status ? { status } : {}) } as unknown as SecureDatabaseObject;
}

export function resolved(spec: Partial<SecureDatabase["spec"]> = {}): ResolvedSecureDatabaseSpec {
  return resolveSecureDatabase(sdb(spec));
}

/** Every field `want` names has that value in `actual` (arrays: same length, element by element); others are free. */
export function expectSubset(actual: unknown, want: unknown, path = "plan"): void {
  if (Array.isArray(want)) {
    expect(actual, path).to.be.an("array").with.lengthOf(want.length);
    want.forEach((w, i) => expectSubset((actual as unknown[])[i], w, `${path}[${i}]`));
  } else if (want === null || typeof want !== "object" || want instanceof Date) {
    expect(actual, path).to.deep.equal(want);
  } else if (Object.getPrototypeOf(want) !== Object.prototype) {
    // A class instance the plan passes through (a CA, a certificate): the very same object.
    expect(actual, path).to.equal(want);
  } else {
    expect(actual, path).to.be.an("object");
    for (const [k, v] of Object.entries(want)) expectSubset((actual as Record<string, unknown>)[k], v, `${path}.${k}`);
  }
}
