/**
 * The Secret layouts, each produced by exactly one function, so every writer agrees on key names and formats.
 * Type kubernetes.io/tls: tls.crt (leaf + intermediates, PEM), tls.key (PKCS#8 PEM), ca.crt (trust bundle).
 * Server Secrets add ca.crl; client Secrets add the file names CAST Imaging documents.
 */
import { buildPkcs12, generatePfxPassword } from "./pkcs12";
import { isIssuedBy, parseCertificates, type CertificateFacts } from "./certificate";
import type { CertificateAuthority } from "./ca";
import type { IssuedCertificate } from "./leaf";

export const SECRET_KEYS = Object.freeze({
  tlsCrt: "tls.crt",
  tlsKey: "tls.key",
  caCrt: "ca.crt",
  caCrl: "ca.crl",
  /** CAST: the client certificate (PEM). */
  clientCrt: "client.crt",
  /** CAST: the client key, PKCS#8 PEM (libpq). */
  clientKey: "client.key",
  /** CAST: the client key, PKCS#8 DER (PostgreSQL JDBC driver; it rejects PEM). */
  clientPk8: "client.pk8",
  /** CAST: the client key, PKCS#8 PEM, for JDBC configurations that name it so. */
  clientPemPk8: "client.pem.pk8",
  /** CAST: PKCS#12 with key, certificate and issuer chain, for .NET. */
  clientPfx: "client.pfx",
  clientPfxPassword: "client.pfx.password",
  /** CAST: the trusted roots that verify the server. */
  rootCrt: "root.crt",
} as const);

export type SecretPayload = Record<string, Buffer>;
type ReadonlySecretData = Readonly<Record<string, Uint8Array | undefined>>;

function utf8(text: string): Buffer {
  return Buffer.from(text, "utf8");
}

/**
 * { tls.crt, tls.key, ca.crt } for the operator's own client identity: only the operator reads it, as PEM, so none
 * of the formats CAST's components need (and no PKCS#12 to build).
 */
export function operatorIdentitySecretData(input: { issued: IssuedCertificate; trustBundlePem: string }): SecretPayload {
  return {
    [SECRET_KEYS.tlsCrt]: utf8(input.issued.chainPem),
    [SECRET_KEYS.tlsKey]: utf8(input.issued.keyPkcs8Pem),
    [SECRET_KEYS.caCrt]: utf8(input.trustBundlePem),
  };
}

/** { tls.crt, tls.key, ca.crt, ca.crl } for the database server. */
export function serverSecretData(input: { issued: IssuedCertificate; trustBundlePem: string; crlPem: string }): SecretPayload {
  return {
    [SECRET_KEYS.tlsCrt]: utf8(input.issued.chainPem),
    [SECRET_KEYS.tlsKey]: utf8(input.issued.keyPkcs8Pem),
    [SECRET_KEYS.caCrt]: utf8(input.trustBundlePem),
    [SECRET_KEYS.caCrl]: utf8(input.crlPem),
  };
}

export interface ClientSecretInput {
  readonly issued: IssuedCertificate;
  readonly trustBundlePem: string;
  /** The PKCS#12 password; default: the previous Secret's, else a new random one. */
  readonly pfxPassword?: string;
  /**
   * The Secret's current data. PKCS#12 encryption is salted, so rebuilding it always changes the bytes: when
   * certificate, key, bundle and password are unchanged the previous client.pfx is kept, and an unchanged
   * Secret is not rewritten.
   */
  readonly previous?: ReadonlySecretData;
}

/**
 * { tls.crt, tls.key, ca.crt, client.crt, client.key, client.pk8, client.pem.pk8, client.pfx,
 *   client.pfx.password, root.crt } for one client identity.
 */
export async function clientSecretData(input: ClientSecretInput): Promise<SecretPayload> {
  const { issued, trustBundlePem, previous } = input;
  const previousPassword = previous?.[SECRET_KEYS.clientPfxPassword];
  const password =
    input.pfxPassword ?? (previousPassword && previousPassword.length > 0 ? Buffer.from(previousPassword).toString("utf8") : generatePfxPassword());

  const base: SecretPayload = {
    [SECRET_KEYS.tlsCrt]: utf8(issued.chainPem),
    [SECRET_KEYS.tlsKey]: utf8(issued.keyPkcs8Pem),
    [SECRET_KEYS.caCrt]: utf8(trustBundlePem),
    [SECRET_KEYS.clientCrt]: utf8(issued.chainPem),
    [SECRET_KEYS.clientKey]: utf8(issued.keyPkcs8Pem),
    [SECRET_KEYS.clientPk8]: Buffer.from(issued.keyPkcs8Der),
    [SECRET_KEYS.clientPemPk8]: utf8(issued.keyPkcs8Pem),
    [SECRET_KEYS.clientPfxPassword]: utf8(password),
    [SECRET_KEYS.rootCrt]: utf8(trustBundlePem),
  };

  const previousPfx = previous?.[SECRET_KEYS.clientPfx];
  const unchanged =
    previous !== undefined &&
    previousPfx !== undefined &&
    previousPfx.length > 0 &&
    [SECRET_KEYS.tlsCrt, SECRET_KEYS.tlsKey, SECRET_KEYS.caCrt, SECRET_KEYS.clientPfxPassword].every((k) => sameBytes(previous[k], base[k]));
  const pfx = unchanged
    ? Buffer.from(previousPfx)
    : buildPkcs12({
        keyPkcs8Der: issued.keyPkcs8Der,
        certificatePem: issued.certPem,
        caCertificatePems: issuerChain(issued.facts, [...parseCertificates(issued.chainPem).slice(1), ...parseCertificates(trustBundlePem)]).map(
          (c) => c.pem,
        ),
        password,
        ...(issued.subjectCommonName ? { friendlyName: issued.subjectCommonName } : {}),
      });
  return { ...base, [SECRET_KEYS.clientPfx]: pfx };
}

/** { tls.crt, tls.key, ca.crt } for a generated CA (a brought CA's Secret is never rewritten). */
export function caSecretData(ca: CertificateAuthority): SecretPayload {
  const certs = [ca.certPem, ...ca.chainPems].join("");
  return {
    [SECRET_KEYS.tlsCrt]: utf8(certs),
    [SECRET_KEYS.tlsKey]: utf8(ca.keyPkcs8Pem),
    [SECRET_KEYS.caCrt]: utf8(certs),
  };
}

/** Whether two Secret data maps hold exactly the same keys and bytes (to skip writes that change nothing). */
export function secretDataEqual(a: ReadonlySecretData, b: ReadonlySecretData): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) if (!sameBytes(a[k], b[k])) return false;
  return true;
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** The certificates above `leaf`, walking issuer links through `candidates` until a self-issued root. */
function issuerChain(leaf: CertificateFacts, candidates: readonly CertificateFacts[]): CertificateFacts[] {
  const chain: CertificateFacts[] = [];
  let current = leaf;
  for (let depth = 0; depth < 8 && !current.selfIssued; depth++) {
    const parent = candidates.find((c) => c.isCA && !chain.includes(c) && isIssuedBy(current, c));
    if (!parent) break;
    chain.push(parent);
    current = parent;
  }
  return chain;
}
