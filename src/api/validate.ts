/**
 * Validation beyond (and in defence of) the CRD schema, at the boundary where objects from the informer enter.
 *
 * A raw object is first decoded (decode.ts: types, required fields, enum values), so one that slipped past the
 * schema (written before a CRD change) yields errors, never a TypeError. The CRDs already reject most bad input at
 * admission; the rules here repeat the ones whose failure would be dangerous if an old CRD let them through
 * (pg_hba.conf injection, unsafe paths, bad durations) and add what a schema cannot know: that a PEM certificate
 * really parses, that the server Secret does not overwrite the CA Secret, that some pg_hba.conf rule admits the
 * operator's own login. (Whether a connection may have its identity at all is access.ts.) Pure; an empty error list means valid.
 */
import { decodeImagingConnectionInput, decodeSecureDatabaseInput } from "./decode";
import { DecodeError } from "./decoder";
import { imagingConnectionRules } from "./imaging-connection-rules";
import { secureDatabaseRules } from "./secure-database-rules";
import type { ImagingConnection, SecureDatabase } from "./types";
import { decodeErrorToValidationError, hbaAdmits, ValidationErrors, type ValidationError } from "./validation";

export * from "./field-checks";
export { formatValidationErrors, hbaAdmits, type ValidationError, type ValidationReason } from "./validation";

/** A raw object decoded and validated: the typed object, or every problem found. */
export type Checked<T> = { ok: true; value: T } | Invalid;
/** What is wrong with an object. */
export type Invalid = { ok: false; errors: ValidationError[] };

function decodedOrUndefined<T>(decode: (value: unknown) => T, value: unknown): T | undefined {
  try {
    return decode(value);
  } catch (err) {
    if (err instanceof DecodeError) return undefined;
    throw err;
  }
}

function check<T>(decode: (value: unknown) => T, rules: (typed: T, errors: ValidationErrors) => void, value: unknown): Checked<T> {
  let typed: T;
  try {
    typed = decode(value);
  } catch (err) {
    if (err instanceof DecodeError) return { ok: false, errors: [decodeErrorToValidationError(err)] };
    throw err;
  }
  const errors = new ValidationErrors();
  rules(typed, errors);
  return errors.list.length > 0 ? { ok: false, errors: errors.list } : { ok: true, value: typed };
}

/**
 * Decodes only, checks no rule: what a deletion may read. An object that breaks a rule must still be deletable;
 * one whose shape is broken cannot be cleaned up safely.
 */
export function decodedSecureDatabase(value: unknown): Checked<SecureDatabase> {
  return check(decodeSecureDatabaseInput, () => undefined, value);
}

/** The ImagingConnection counterpart of decodedSecureDatabase. */
export function decodedImagingConnection(value: unknown): Checked<ImagingConnection> {
  return check(decodeImagingConnectionInput, () => undefined, value);
}

/** Decodes a SecureDatabase from the informer (or a test) and checks every rule. */
export function checkSecureDatabase(value: unknown): Checked<SecureDatabase> {
  return check(decodeSecureDatabaseInput, secureDatabaseRules, value);
}

/** Decodes an ImagingConnection from the informer (or a test) and checks every rule. */
export function checkImagingConnection(value: unknown): Checked<ImagingConnection> {
  return check(decodeImagingConnectionInput, imagingConnectionRules, value);
}

export function validateSecureDatabase(value: unknown): ValidationError[] {
  const checked = checkSecureDatabase(value);
  return checked.ok ? [] : checked.errors;
}

export function validateImagingConnection(value: unknown): ValidationError[] {
  const checked = checkImagingConnection(value);
  return checked.ok ? [] : checked.errors;
}

// ---------------------------------------------------------------------------------------------------------------
// A connection against its database

/**
 * Checks an ImagingConnection against the SecureDatabase it references: the namespace must be allowed, the
 * connection must not be revoked, and the database's pg_hba.conf rules must be able to admit its user.
 */
export function validateConnectionAgainstDatabase(rawImc: ImagingConnection, rawSdb: SecureDatabase): ValidationError[] {
  // A malformed object is reported by its own validation (prepare…), not here.
  const imc = decodedOrUndefined(decodeImagingConnectionInput, rawImc);
  const sdb = decodedOrUndefined(decodeSecureDatabaseInput, rawSdb);
  if (!imc || !sdb) return [];
  const e = new ValidationErrors();
  const imcNamespace = imc.metadata.namespace ?? "default";
  const sdbNamespace = sdb.metadata.namespace ?? "default";
  const revoked = (sdb.spec.trust?.revocations ?? []).some(
    (r) => r.connectionName === imc.metadata.name && (r.connectionNamespace ?? sdbNamespace) === imcNamespace,
  );
  if (revoked) {
    e.add(
      "metadata.name",
      "Forbidden",
      `SecureDatabase ${sdbNamespace}/${sdb.metadata.name} revokes this connection (spec.trust.revocations[].connectionName): no ` +
        `certificate is issued until that entry is removed`,
    );
  }
  const database = imc.spec.database ?? "postgres";
  if (imc.spec.user && hbaAdmits(sdb.spec.postgres.hba?.rules, imc.spec.user, database) === "none") {
    e.add(
      "spec.user",
      "Invalid",
      `no pg_hba.conf rule of SecureDatabase ${sdbNamespace}/${sdb.metadata.name} admits user ${JSON.stringify(imc.spec.user)} on ` +
        `database ${JSON.stringify(database)}: add it to spec.postgres.hba.rules there`,
    );
  }
  return e.list;
}
