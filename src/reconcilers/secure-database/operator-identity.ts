/**
 * The operator's own client identity, for reloads over SQL and live verification. It logs in as
 * spec.reload.adminUser, often a superuser: none is minted when neither happens, and one nobody needs is deleted.
 */
import type { ResolvedSecureDatabaseSpec } from "../../api/defaults";
import { Reason } from "../../api/reasons";
import { OWNER_LABEL, ownerLabelValue } from "../../api/types";
import { RESOURCES } from "../../kube/resources";
import { secretBytes, type SecretObject } from "../../kube/secrets";
import {
  evaluateRenewal,
  issueClientCertificate,
  loadIssuedCertificate,
  operatorIdentitySecretData,
  resolveKeySpec,
  type CertificateAuthority,
  type DesiredCertificate,
  type IssuedCertificate,
} from "../../pki";
import { parseEndpoint } from "../../api/validate";
import type { ProbeOptions } from "../../postgres/probe";
import type { OperatorContext, SecureDatabaseObject } from "../context";
import { writeOwnedSecret } from "./server-secret";

/** How long a live check or a reload may take before it counts as failed. */
export const PROBE_TIMEOUT_MS = 10_000;

export const adminSecretName = (sdb: string): string => `${sdb}-operator-client-tls`;

export function needsOperatorIdentity(spec: ResolvedSecureDatabaseSpec): boolean {
  return spec.reload.strategy === "SQL" || spec.verification.enabled;
}

/** The certificate the identity must hold: the server certificate's key and lifetime, for the admin user. */
export function desiredOperatorIdentity(
  spec: ResolvedSecureDatabaseSpec,
  ca: CertificateAuthority,
  acceptedIssuers: readonly { certPem: string }[],
): DesiredCertificate {
  const cert = spec.serverCertificate;
  return {
    kind: "client",
    user: spec.reload.adminUser,
    key: resolveKeySpec(cert.privateKey),
    duration: cert.durationMs,
    renewBefore: cert.renewBeforeMs,
    issuer: ca,
    alsoAcceptedIssuers: acceptedIssuers,
  };
}

/** A spec that no longer needs the identity: its Secret goes (a certificate nobody uses is one less to steal). */
export function identityToDrop(current: SecretObject | undefined, sdbName: string): boolean {
  return current?.metadata.labels?.[OWNER_LABEL] === ownerLabelValue("SecureDatabase", sdbName);
}

/** Issues the identity when due and writes it; the time to renew it is when to look again. */
export async function ensureOperatorIdentity(
  ctx: OperatorContext,
  sdb: SecureDatabaseObject,
  spec: ResolvedSecureDatabaseSpec,
  ca: CertificateAuthority,
  acceptedIssuers: readonly { certPem: string }[],
  trustBundle: string,
  now: Date,
): Promise<{ issued: IssuedCertificate; requeueAt?: Date }> {
  const name = adminSecretName(sdb.metadata.name);
  const current = ctx.cache.secrets.get(sdb.metadata.namespace, name);
  const currentData = secretBytes(current);
  const desired = desiredOperatorIdentity(spec, ca, acceptedIssuers);
  const issued = evaluateRenewal(desired, currentData, now).reissue
    ? await issueClientCertificate(ca, { user: spec.reload.adminUser, duration: desired.duration, key: desired.key, now })
    : loadIssuedCertificate(currentData["tls.crt"]!, currentData["tls.key"]!);
  const data = operatorIdentitySecretData({ issued, trustBundlePem: trustBundle });
  await writeOwnedSecret(ctx, sdb, name, current, data);
  const renewalTime = evaluateRenewal(desired, data, now).renewalTime;
  return { issued, ...(renewalTime ? { requeueAt: renewalTime } : {}) };
}

export async function dropOperatorIdentity(ctx: OperatorContext, sdb: SecureDatabaseObject): Promise<void> {
  const namespace = sdb.metadata.namespace!;
  const name = adminSecretName(sdb.metadata.name);
  if (!identityToDrop(ctx.cache.secrets.get(namespace, name), sdb.metadata.name)) return;
  await ctx.client.delete(RESOURCES.Secret, { namespace, name });
  const fields = { resource: `SecureDatabase/${sdb.metadata.name}`, namespace, reason: Reason.IdentityNotNeeded };
  ctx.log.info("deleted the operator's client identity: no SQL reload and no verification need it", fields);
}

/** How the operator logs in to the server with its identity (verification.endpoint, else host and port). */
export function probeOptions(spec: ResolvedSecureDatabaseSpec, trustBundle: string, identity: IssuedCertificate): ProbeOptions {
  const endpoint = parseEndpoint(spec.verification.endpoint) ?? { host: spec.host, port: spec.port };
  return {
    host: endpoint.host,
    port: endpoint.port,
    servername: spec.verification.serverName,
    database: spec.reload.database,
    user: spec.reload.adminUser,
    ca: trustBundle,
    cert: identity.chainPem,
    key: identity.keyPkcs8Pem,
    timeoutMs: PROBE_TIMEOUT_MS,
  };
}
