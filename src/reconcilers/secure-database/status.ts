/** The status summary: what the steps found, in the words `kubectl get` and `kubectl describe` show. */
import { describeLocation, type SecretLocation } from "../ca-keys";
import type { ResolvedSecureDatabaseSpec } from "../../api/defaults";
import { Reason } from "../../api/reasons";
import { SECURE_DATABASE_CONDITIONS as C, STATUS_LIMITS, type AllowlistedStatus, type CAStatus, type TrustStatus } from "../../api/types";
import type { ConditionInput } from "../../kube/conditions";
import { parseCertificate, type CertificateAuthority } from "../../pki";

/** What the user chose not to have the operator do or check: not a reason to withhold Ready. */
const NOT_BLOCKING = new Set<Reason>([Reason.VerificationDisabled, Reason.ManualReloadRequired, Reason.ConfigPublished]);

/**
 * Ready sums up the others: the first condition that is not True explains why not. `passwordRules`: how many
 * password rules are in force (status.passwordAccess), which Ready then owns up to.
 */
export function summarize(conditions: readonly ConditionInput[], passwordRules = 0): ConditionInput {
  // CARotating says what a rotation does; the database stays secured throughout one.
  const chosen = (c: ConditionInput) => c.status === "Unknown" && NOT_BLOCKING.has(c.reason);
  const blocking = conditions.find((c) => c.type !== C.CARotating && c.status !== "True" && !chosen(c));
  if (blocking) return { type: C.Ready, status: "False", reason: blocking.reason, message: `${blocking.type}: ${blocking.message}` };
  const message =
    passwordRules === 0
      ? "the server requires client certificates and serves the current certificate"
      : `the server requires TLS, and client certificates except for ${passwordRules} password ` +
        `${passwordRules === 1 ? "rule" : "rules"} (status.passwordAccess), and serves the current certificate`;
  return { type: C.Ready, status: "True", reason: Reason.Secured, message };
}

export function caStatus(secretName: string, ca: CertificateAuthority, keySecret: SecretLocation | undefined): CAStatus {
  return {
    secretName,
    ...(keySecret ? { keySecret: describeLocation(keySecret) } : {}),
    serialNumber: ca.facts.serialNumber,
    subject: ca.facts.subject,
    notBefore: ca.facts.notBefore.toISOString(),
    notAfter: ca.facts.notAfter.toISOString(),
    fingerprintSHA256: ca.facts.fingerprintSha256,
  };
}

/** What the database trusts besides its CAs, and what its CRL lists. */
export function trustStatus(
  previous: TrustStatus | undefined,
  spec: ResolvedSecureDatabaseSpec,
  crlNumber: number | undefined,
  revokedSerials: readonly string[],
): TrustStatus {
  return { ...previous, allowlisted: allowlisted(spec), crlNumber, revokedSerials: revokedSerials.slice(0, STATUS_LIMITS.revokedSerials) };
}

/** What each allowlist entry trusts, by fingerprint (the spec is validated: every entry is one PEM certificate). */
function allowlisted(spec: ResolvedSecureDatabaseSpec): AllowlistedStatus[] {
  return spec.trust.allowlist.map((a) => {
    const facts = parseCertificate(a.certificate);
    return { name: a.name, fingerprintSHA256: facts.fingerprintSha256, subject: facts.subject, notAfter: facts.notAfter.toISOString() };
  });
}
