/**
 * Real objects for the plugin's unit tests: a CA, server and client certificates issued by src/pki, the Secrets the
 * operator writes for them (secret-layout.ts), and SecureDatabase / ImagingConnection objects whose status carries
 * those certificates' facts, as the reconcilers would write it.
 */
import { resolveImagingConnection, resolveSecureDatabase } from "../../../src/api/defaults";
import { API_VERSION, type Condition, type ImagingConnectionStatus, type SecureDatabaseStatus } from "../../../src/api/types";
import { connectionDeclaration } from "../../../src/imaging/declaration";
import {
  buildTrustBundle,
  clientSecretData,
  generateCA,
  issueClientCertificate,
  issueCRL,
  issueServerCertificate,
  renewalTime,
  serverSecretData,
  type CertificateAuthority,
  type IssuedCertificate,
  type SecretPayload,
} from "../../../src/pki";
import type { RawObject } from "../../../src/plugin/kube";
import { timestamp } from "../../../src/plugin/output";

export const DAY = 24 * 3600 * 1000;
/** The tests' clock: the certificates are issued at NOW. */
export const NOW = new Date("2026-03-01T12:00:00Z");

export interface Pki {
  readonly ca: CertificateAuthority;
  readonly otherCA: CertificateAuthority;
  readonly server: IssuedCertificate;
  readonly client: IssuedCertificate;
  readonly revokedSerial: string;
  readonly serverSecret: SecretPayload;
  readonly clientSecret: SecretPayload;
  readonly password: string;
}

let shared: Promise<Pki> | undefined;

/** One PKI per test run: key generation is the slow part. */
export function pki(): Promise<Pki> {
  shared ??= (async () => {
    const ca = await generateCA({ commonName: "db CA", duration: 365 * DAY, now: NOW });
    const otherCA = await generateCA({ commonName: "another CA", duration: 365 * DAY, now: NOW });
    const server = await issueServerCertificate(ca, { dnsNames: ["db.cast.svc", "db"], ipAddresses: ["10.0.0.7"], duration: 90 * DAY, now: NOW });
    const client = await issueClientCertificate(ca, { user: "analysis", duration: 60 * DAY, now: NOW });
    const gone = await issueClientCertificate(ca, { user: "gone", duration: 60 * DAY, now: NOW });
    const trustBundlePem = buildTrustBundle([ca.certPem]);
    const crlPem = await issueCRL(ca, {
      revoked: [{ serialNumber: gone.serialNumber, reason: "keyCompromise", revocationDate: NOW }],
      crlNumber: 3,
      thisUpdate: NOW,
      nextUpdate: new Date(NOW.getTime() + DAY),
    });
    const password = "s3cret-Pfx-Password-value";
    return {
      ca,
      otherCA,
      server,
      client,
      revokedSerial: gone.serialNumber,
      serverSecret: serverSecretData({ issued: server, trustBundlePem, crlPem }),
      clientSecret: await clientSecretData({ issued: client, trustBundlePem, pfxPassword: password }),
      password,
    };
  })();
  return shared;
}

export function condition(type: string, status: Condition["status"], reason: string, message = `${type} ${reason}`): Condition {
  return { type, status, reason, message, lastTransitionTime: timestamp(new Date(NOW.getTime() - 3600_000)), observedGeneration: 1 };
}

/** What status says of an issued certificate kept in `secretName`. */
function certificateStatus(c: { serialNumber: string; notBefore: Date; notAfter: Date }, secretName: string) {
  return { secretName, serialNumber: c.serialNumber, notBefore: timestamp(c.notBefore), notAfter: timestamp(c.notAfter), renewalTime: timestamp(renewalTime(c.notBefore, c.notAfter)) };
}

/** A Ready SecureDatabase `db` in `cast` whose status describes `p.server`; `status` overrides fields. */
export function database(p: Pki, status: Partial<SecureDatabaseStatus> = {}, name = "db", namespace = "cast"): RawObject {
  const full: SecureDatabaseStatus = {
    observedGeneration: 1,
    conditions: [
      condition("CAReady", "True", "CAGenerated"),
      condition("CARotating", "False", "Idle"),
      condition("ServerCertificateReady", "True", "Valid"),
      condition("Verified", "True", "ServingCurrentCertificate"),
      condition("Ready", "True", "Secured"),
    ],
    ca: {
      secretName: `${name}-ca`,
      keySecret: `imaging-db-mtls-operator/${namespace}.${name}-ca`,
      serialNumber: p.ca.facts.serialNumber,
      subject: p.ca.facts.subject,
      notBefore: timestamp(p.ca.facts.notBefore),
      notAfter: timestamp(p.ca.facts.notAfter),
      fingerprintSHA256: p.ca.facts.fingerprintSha256,
    },
    serverCertificate: { ...certificateStatus(p.server, `${name}-server-tls`), dnsNames: [...p.server.dnsNames] },
    verification: { lastSuccessTime: timestamp(new Date(NOW.getTime() - 90_000)), servedSerialNumber: p.server.serialNumber, matchesCurrent: true },
    caRotation: { phase: "Idle" },
    trust: { revokedSerials: [p.revokedSerial], crlNumber: 3 },
    ...status,
  };
  return { apiVersion: API_VERSION, kind: "SecureDatabase", metadata: { name, namespace, generation: 1, uid: `uid-${name}` }, status: full };
}

/** A Ready ImagingConnection `analysis` in `cast` whose status describes `p.client` and declares its files. */
export function connection(p: Pki, status: Partial<ImagingConnectionStatus> = {}, name = "analysis", namespace = "cast"): RawObject {
  const db = resolveSecureDatabase({ apiVersion: API_VERSION, kind: "SecureDatabase", metadata: { name: "db", namespace }, spec: { host: "db.cast.svc", port: 5432, postgres: { configMapName: "pg" } } });
  const conn = resolveImagingConnection({ apiVersion: API_VERSION, kind: "ImagingConnection", metadata: { name, namespace }, spec: { databaseRef: { name: "db" }, user: "analysis", database: "imaging" } });
  const full: ImagingConnectionStatus = {
    observedGeneration: 1,
    conditions: [
      condition("CertificateReady", "True", "Valid"),
      condition("ConnectionVerified", "True", "LoggedIn"),
      condition("Revoked", "False", "NotRevoked"),
      condition("WorkloadsPatched", "True", "Patched"),
      condition("Ready", "True", "Connected"),
    ],
    certificate: certificateStatus(p.client, `${name}-client-tls`),
    declaration: connectionDeclaration(db, conn, `/etc/cast-imaging/mtls/${name}`, "/etc/cast-imaging/mtls-ini/cast-connections.ini"),
    verification: { lastSuccessTime: timestamp(new Date(NOW.getTime() - 30_000)), serialNumber: p.client.serialNumber },
    ...status,
  };
  return { apiVersion: API_VERSION, kind: "ImagingConnection", metadata: { name, namespace, generation: 1, uid: `uid-${name}` }, status: full };
}

/** An Output that keeps what was written. */
export function capture(): { stdout: string; stderr: string; out: { stdout(t: string): void; stderr(t: string): void } } {
  const c = {
    stdout: "",
    stderr: "",
    out: {
      stdout: (t: string) => void (c.stdout += t),
      stderr: (t: string) => void (c.stderr += t),
    },
  };
  return c;
}
