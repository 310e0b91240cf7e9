/** How the plugin shows a certificate, pure: the facts src/pki parses, in the words and formats a person checks. */
import { SECRET_KEYS, type CertificateFacts } from "../pki";
import { ABSENT, daysUntil, renderFields, timestamp } from "./output";

export interface CertificateView {
  readonly subject: string;
  readonly issuer: string;
  /** DNS names and IP addresses. */
  readonly sans: readonly string[];
  /** Lower-case hex, as status writes serials. */
  readonly serialNumber: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly daysLeft: number;
  readonly keyType: string;
  readonly isCA: boolean;
  readonly sha256Fingerprint: string;
}

export function certificateView(facts: CertificateFacts, now: Date): CertificateView {
  const notAfter = timestamp(facts.notAfter);
  return {
    subject: facts.subject,
    issuer: facts.issuer,
    sans: [...facts.dnsNames, ...facts.ipAddresses],
    serialNumber: facts.serialNumber,
    notBefore: timestamp(facts.notBefore),
    notAfter,
    daysLeft: daysUntil(notAfter, now) ?? 0,
    keyType: facts.key.description,
    isCA: facts.isCA,
    sha256Fingerprint: facts.fingerprintSha256,
  };
}

/** openssl's fingerprint form (AB:CD:…), which is what people compare against. */
export function colonHex(hex: string): string {
  return (hex.toUpperCase().match(/../g) ?? []).join(":");
}

/** A certificate as aligned lines, under a title such as "tls.crt #1". */
export function renderCertificate(title: string, c: CertificateView, indent = "    "): string {
  const validity = `${c.notBefore} → ${c.notAfter} (${c.daysLeft < 0 ? `expired ${-c.daysLeft} days ago` : `${c.daysLeft} days left`})`;
  return (
    `  ${title}${c.isCA ? " (CA)" : ""}\n` +
    renderFields(
      [
        ["subject", c.subject],
        ["SANs", c.sans.length > 0 ? c.sans.join(", ") : ABSENT],
        ["issuer", c.issuer],
        ["serial", c.serialNumber],
        ["validity", validity],
        ["key", c.keyType],
        ["SHA-256", colonHex(c.sha256Fingerprint)],
      ],
      indent,
    )
  );
}

/** The order a Secret's keys are shown in: the kubernetes.io/tls keys first (the certificate the rest is about), then by name. */
export function secretKeyOrder(keys: Iterable<string>): string[] {
  const first: readonly string[] = [SECRET_KEYS.tlsCrt, SECRET_KEYS.tlsKey, SECRET_KEYS.caCrt, SECRET_KEYS.caCrl];
  const rank = (k: string) => (first.includes(k) ? first.indexOf(k) : first.length);
  return [...keys].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}
