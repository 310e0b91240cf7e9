/**
 * Leaf certificates: the database server's (serverAuth, SANs for verify-full) and a client identity's
 * (clientAuth, CN = the PostgreSQL role that `cert` authentication maps it to).
 */
import { id_kp_clientAuth, id_kp_serverAuth } from "@peculiar/asn1-x509";
import { PkiError } from "./errors";
import { presentedChain, type CertificateAuthority } from "./ca";
import { certificateDersFromPem, certificateToPem, pkcs8DerToPem } from "./encodings";
import { checkKeyPair, rememberKeyPair } from "./key-match";
import {
  normalizeDNSName,
  normalizeIPAddress,
  parseCertificate,
  type CertificateFacts,
} from "./certificate";
import { buildCertificate, type KeyUsageBit } from "./certificate-builder";
import { DEFAULT_KEY_SPEC, factsOfSpec, generateLeafKeyPair, resolveKeySpec, type KeySpec } from "./keys";
import {
  CLOCK_SKEW_MS,
  MAX_COMMON_NAME_LENGTH,
  checkCommonName,
  checkDate,
  checkDuration,
  randomSerialNumber,
  toSecond,
} from "./issuance-rules";

/**
 * A leaf certificate with its freshly generated key, in the forms the Secret layout needs; the certificate's facts
 * the callers read most are on it directly (the serial number is 32 hex digits for certificates we issue).
 */
export interface IssuedCertificate
  extends Pick<
    CertificateFacts,
    | "serialNumber"
    | "serialNumberDecimal"
    | "notBefore"
    | "notAfter"
    | "fingerprintSha256"
    | "subjectCommonName"
    | "dnsNames"
    | "ipAddresses"
    | "key"
  > {
  /** The leaf alone, PEM. */
  readonly certPem: string;
  /** The leaf followed by any intermediate CA certificates (what tls.crt carries; = certPem under a root CA). */
  readonly chainPem: string;
  readonly keyPkcs8Pem: string;
  /** PKCS#8 DER: what the PostgreSQL JDBC driver reads (it rejects PEM keys). */
  readonly keyPkcs8Der: Buffer;
  readonly facts: CertificateFacts;
}

export interface ServerCertificateRequest {
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
  /** Defaults to the first DNS name (≤ 64 characters), else the first IP address. */
  readonly commonName?: string;
  /** Requested lifetime in ms; the certificate never outlives the CA. */
  readonly duration: number;
  readonly key?: KeySpec;
  readonly now: Date;
}

export interface ClientCertificateRequest {
  /** The PostgreSQL role; becomes the subject CN (see databaseUserProblem for the rules). */
  readonly user: string;
  readonly duration: number;
  readonly key?: KeySpec;
  readonly now: Date;
}

export interface ServerNames {
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly commonName: string;
}

/**
 * Canonical server names, shared by issuance and the renewal policy so both agree on what "the same names"
 * means: DNS names lower-cased without trailing dot, IPs in canonical form, duplicates dropped, and an
 * IP address listed among DNS names moved to the IP addresses (verify-full clients match IPs against
 * iPAddress SANs). Throws InvalidDNSName / InvalidIPAddress / NoSubjectAltNames / InvalidCommonName.
 */
export function resolveServerNames(input: {
  readonly dnsNames?: readonly string[] | undefined;
  readonly ipAddresses?: readonly string[] | undefined;
  readonly commonName?: string | undefined;
}): ServerNames {
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  const addIp = (ip: string): void => {
    if (!ipAddresses.includes(ip)) ipAddresses.push(ip);
  };
  for (const raw of input.dnsNames ?? []) {
    const ip = normalizeIPAddress(raw);
    if (ip !== undefined) {
      addIp(ip);
      continue;
    }
    const dns = normalizeDNSName(raw);
    if (dns === undefined) {
      throw new PkiError(
        "InvalidDNSName",
        `"${raw}" is not a valid DNS name: use letters, digits and '-' in dot-separated labels of at most 63 characters ` +
          `(IDNs in xn-- form); a leading "*." wildcard is allowed`,
      );
    }
    if (!dnsNames.includes(dns)) dnsNames.push(dns);
  }
  for (const raw of input.ipAddresses ?? []) {
    const ip = normalizeIPAddress(raw);
    if (ip === undefined) {
      throw new PkiError("InvalidIPAddress", `"${raw}" is not an IPv4 or IPv6 address (zone indexes such as %eth0 are not allowed)`);
    }
    addIp(ip);
  }
  if (dnsNames.length === 0 && ipAddresses.length === 0) {
    throw new PkiError(
      "NoSubjectAltNames",
      "a server certificate needs at least one DNS name or IP address: " +
        "clients using sslmode=verify-full check the host they connect to against them",
    );
  }
  let commonName = input.commonName;
  if (commonName !== undefined) {
    checkCommonName(commonName, "the server certificate common name");
  } else {
    commonName = dnsNames.find((d) => d.length <= MAX_COMMON_NAME_LENGTH) ?? ipAddresses[0];
    if (commonName === undefined) {
      throw new PkiError(
        "InvalidCommonName",
        `every DNS name is longer than ${MAX_COMMON_NAME_LENGTH} characters, too long for a common name: set commonName explicitly`,
      );
    }
  }
  return { dnsNames, ipAddresses, commonName };
}

/** PostgreSQL's NAMEDATALEN - 1: the longest role name, in bytes. */
export const MAX_DATABASE_USER_BYTES = 63;

/**
 * Why a name cannot be a client certificate's CN for PostgreSQL `cert` authentication, or undefined if it can.
 *
 * The rule. PostgreSQL compares the CN, byte for byte, with the role name the client logs in as (case
 * matters: a role created unquoted is lower-case). So the name must be:
 *  - non-empty;
 *  - well-formed Unicode (no unpaired surrogates): it is encoded as UTF-8 (PrintableString when plain ASCII
 *    suffices), which is what a UTF-8 server compares against;
 *  - at most 63 bytes in UTF-8 (NAMEDATALEN - 1): PostgreSQL truncates longer login names, so the CN would
 *    never match;
 *  - free of NUL (PostgreSQL rejects a CN with an embedded NUL) and other control characters (C0, DEL, C1),
 *    which cannot be carried reliably through connection strings, .ini files and logs;
 *  - without leading or trailing whitespace, which .ini parsers and connection-string tools strip.
 */
export function databaseUserProblem(user: string): string | undefined {
  if (typeof user !== "string" || user.length === 0) return "the database user must not be empty";
  if (!user.isWellFormed()) {
    return "the database user contains invalid Unicode (an unpaired surrogate) that cannot be encoded as UTF-8";
  }
  if (user.includes("\u0000")) {
    return "the database user contains a NUL character; PostgreSQL refuses certificates whose CN embeds one";
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0001-\u001f\u007f-\u009f]/.test(user)) {
    return "the database user contains control characters (such as newline or tab), which cannot be matched reliably";
  }
  const bytes = Buffer.byteLength(user, "utf8");
  if (bytes > MAX_DATABASE_USER_BYTES) {
    return (
      `the database user is ${bytes} bytes in UTF-8; PostgreSQL role names are at most ${MAX_DATABASE_USER_BYTES} bytes ` +
      "(NAMEDATALEN-1) and longer login names are truncated, so the certificate CN would never match"
    );
  }
  if (user.trim() !== user) {
    return (
      "the database user starts or ends with whitespace, which .ini files and connection strings strip, " +
      "so the login name would not match the CN"
    );
  }
  return undefined;
}

/** Throws PkiError(InvalidUserName) when databaseUserProblem finds one. */
export function validateDatabaseUser(user: string): void {
  const problem = databaseUserProblem(user);
  if (problem !== undefined) throw new PkiError("InvalidUserName", problem);
}

/** Issues a server certificate: EKU serverAuth, keyUsage digitalSignature (+ keyEncipherment for RSA), SANs. */
export async function issueServerCertificate(
  ca: CertificateAuthority,
  request: ServerCertificateRequest,
): Promise<IssuedCertificate> {
  const names = resolveServerNames(request);
  const spec = resolveKeySpec(request.key ?? DEFAULT_KEY_SPEC);
  return issueLeaf(ca, {
    commonName: names.commonName,
    spec,
    // keyEncipherment only matters for TLS 1.2 RSA key exchange, which only a server with an RSA key can do.
    usage: spec.algorithm === "RSA" ? ["digitalSignature", "keyEncipherment"] : ["digitalSignature"],
    eku: id_kp_serverAuth,
    names,
    duration: request.duration,
    now: request.now,
  });
}

/** Issues a client certificate: EKU clientAuth, keyUsage digitalSignature, subject CN = the database user. */
export async function issueClientCertificate(
  ca: CertificateAuthority,
  request: ClientCertificateRequest,
): Promise<IssuedCertificate> {
  validateDatabaseUser(request.user);
  const spec = resolveKeySpec(request.key ?? DEFAULT_KEY_SPEC);
  return issueLeaf(ca, {
    commonName: request.user,
    spec,
    usage: ["digitalSignature"],
    eku: id_kp_clientAuth,
    names: { dnsNames: [], ipAddresses: [] },
    duration: request.duration,
    now: request.now,
  });
}

interface LeafTemplate {
  readonly commonName: string;
  readonly spec: KeySpec;
  readonly usage: readonly KeyUsageBit[];
  readonly eku: string;
  readonly names: Pick<ServerNames, "dnsNames" | "ipAddresses">;
  readonly duration: number;
  readonly now: Date;
}

async function issueLeaf(ca: CertificateAuthority, t: LeafTemplate): Promise<IssuedCertificate> {
  checkDuration(t.duration, "the certificate duration");
  checkDate(t.now, "now");
  const now = t.now.getTime();
  const caFacts = ca.facts;
  if (now >= caFacts.notAfter.getTime()) {
    throw new PkiError(
      "CAExpired",
      `the CA "${caFacts.subject}" expired at ${caFacts.notAfter.toISOString()}: rotate the CA before issuing`,
    );
  }
  if (now < caFacts.notBefore.getTime()) {
    throw new PkiError("CAExpired", `the CA "${caFacts.subject}" is not valid before ${caFacts.notBefore.toISOString()}`);
  }

  const keys = await generateLeafKeyPair(t.spec);
  const facts = await buildCertificate({
    serialNumberHex: randomSerialNumber(),
    subjectCommonName: t.commonName,
    issuer: caFacts,
    notBefore: toSecond(Math.max(now - CLOCK_SKEW_MS, caFacts.notBefore.getTime())),
    // Never outlive the signer: a leaf valid after its CA expired would be rejected anyway, silently.
    notAfter: toSecond(Math.min(now + t.duration, caFacts.notAfter.getTime())),
    spkiDer: keys.spkiDer,
    key: factsOfSpec(t.spec),
    caPathLength: undefined,
    keyUsage: t.usage,
    extendedKeyUsage: [t.eku],
    dnsNames: t.names.dnsNames,
    ipAddresses: t.names.ipAddresses,
    signingKey: ca.keys.privateKey,
    signing: ca.signing,
  });
  rememberKeyPair(facts.der, keys.pkcs8Der);
  return toIssued(facts, [facts.pem, ...presentedChain(ca)].join(""), keys.pkcs8Der);
}

function toIssued(facts: CertificateFacts, chainPem: string, keyPkcs8Der: Buffer): IssuedCertificate {
  return {
    certPem: facts.pem,
    chainPem,
    keyPkcs8Pem: pkcs8DerToPem(keyPkcs8Der),
    keyPkcs8Der,
    serialNumber: facts.serialNumber,
    serialNumberDecimal: facts.serialNumberDecimal,
    notBefore: facts.notBefore,
    notAfter: facts.notAfter,
    fingerprintSha256: facts.fingerprintSha256,
    subjectCommonName: facts.subjectCommonName,
    dnsNames: facts.dnsNames,
    ipAddresses: facts.ipAddresses,
    key: facts.key,
    facts,
  };
}

/**
 * Rebuilds an IssuedCertificate from an existing Secret's tls.crt (leaf first, then chain) and tls.key, so an
 * up-to-date certificate can be re-rendered (e.g. when only the trust bundle changed) without re-issuing.
 * Throws InvalidCertificate, UnsupportedKeyFormat, EncryptedKeyUnsupported or KeyMismatch.
 */
export function loadIssuedCertificate(certPem: string | Uint8Array, keyPem: string | Uint8Array): IssuedCertificate {
  const facts = parseCertificate(certPem, "tls.crt");
  const chain = certificateDersFromPem(certPem).map((der) => certificateToPem(der));
  const key = checkKeyPair(facts, keyPem);
  if (!key.matches) {
    throw new PkiError("KeyMismatch", `tls.key does not belong to the certificate "${facts.subject}" in tls.crt`);
  }
  return toIssued(facts, chain.join(""), key.pkcs8Der);
}
