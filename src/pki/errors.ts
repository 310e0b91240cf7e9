/**
 * Typed errors of the PKI core.
 *
 * Every failure carries a CamelCase `reason` (what ends up in a condition's `reason` and an event) and a
 * `message` an administrator can act on. Messages never contain key material: when a library error is
 * wrapped we keep it as `cause` only for certificates (public data), never for private keys.
 */

export type PkiErrorReason =
  | "InvalidKeySpec"
  | "InvalidArgument"
  | "InvalidDuration"
  | "InvalidCommonName"
  | "InvalidDNSName"
  | "InvalidIPAddress"
  | "NoSubjectAltNames"
  | "InvalidUserName"
  | "InvalidCertificate"
  | "UnsupportedKeyFormat"
  | "UnsupportedKeyAlgorithm"
  | "EncryptedKeyUnsupported"
  | "KeyMismatch"
  | "NotACA"
  | "MissingKeyCertSign"
  | "MissingCRLSign"
  | "CAExpired"
  | "InvalidSerialNumber"
  | "InvalidCRL"
  | "InvalidCRLNumber"
  | "EmptyTrustBundle"
  | "InvalidPKCS12";

export class PkiError extends Error {
  override readonly name = "PkiError";
  readonly reason: PkiErrorReason;

  constructor(reason: PkiErrorReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.reason = reason;
  }
}

export function isPkiError(value: unknown): value is PkiError {
  return value instanceof PkiError;
}
