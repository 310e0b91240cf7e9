/**
 * The operator's own client identity, for reloads over SQL and live verification. It logs in as
 * spec.reload.adminUser, often a superuser: it is held in memory only, minted only when one of them happens, and
 * forgotten when neither does.
 */
import type { ResolvedSecureDatabaseSpec } from "../../api/defaults";
import { Reason } from "../../api/reasons";
import { OWNER_LABEL, ownerLabelValue } from "../../api/types";
import { RESOURCES } from "../../kube/resources";
import type { SecretObject } from "../../kube/secrets";
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

/** How long a live check or a reload may take before it counts as failed. */
export const PROBE_TIMEOUT_MS = 10_000;

/** Where operators before 0.2 kept the identity (deleted on sight, see dropLegacySecret). */
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

/** The legacy identity Secret is ours to delete (labelled as this database's). */
export function identityToDrop(current: SecretObject | undefined, sdbName: string): boolean {
  return current?.metadata.labels?.[OWNER_LABEL] === ownerLabelValue("SecureDatabase", sdbName);
}

/**
 * The identities in force, by database (`<namespace>/<name>`): in this process's memory only. The operator is their
 * only reader, so no Secret holds a key that logs in as the admin role; a restarted operator mints a new one.
 */
export class OperatorIdentities {
  private readonly held = new Map<string, Readonly<Record<string, Uint8Array>>>();

  /** The identity issued for this database, when this process holds one. */
  current(sdb: SecureDatabaseObject): IssuedCertificate | undefined {
    const data = this.held.get(keyOf(sdb));
    return data ? loadIssuedCertificate(Buffer.from(data["tls.crt"]!), Buffer.from(data["tls.key"]!)) : undefined;
  }

  /** Issues the identity when due (first use, renewal time, a new signing CA) and holds it; when to look again. */
  async ensure(
    ctx: OperatorContext,
    sdb: SecureDatabaseObject,
    spec: ResolvedSecureDatabaseSpec,
    ca: CertificateAuthority,
    acceptedIssuers: readonly { certPem: string }[],
    trustBundle: string,
    now: Date,
  ): Promise<{ issued: IssuedCertificate; requeueAt?: Date }> {
    await dropLegacySecret(ctx, sdb);
    const held = this.held.get(keyOf(sdb));
    const current = held ? Object.fromEntries(Object.entries(held).map(([k, v]) => [k, Buffer.from(v)])) : {};
    const desired = desiredOperatorIdentity(spec, ca, acceptedIssuers);
    const issued = evaluateRenewal(desired, current, now).reissue
      ? await issueClientCertificate(ca, { user: spec.reload.adminUser, duration: desired.duration, key: desired.key, now })
      : loadIssuedCertificate(current["tls.crt"]!, current["tls.key"]!);
    const data = operatorIdentitySecretData({ issued, trustBundlePem: trustBundle });
    this.held.set(keyOf(sdb), data);
    const renewalTime = evaluateRenewal(desired, data, now).renewalTime;
    return { issued, ...(renewalTime ? { requeueAt: renewalTime } : {}) };
  }

  /** A database that no longer needs it (or is gone): forgotten, and an older operator's Secret of it deleted. */
  async drop(ctx: OperatorContext, sdb: SecureDatabaseObject): Promise<void> {
    this.held.delete(keyOf(sdb));
    await dropLegacySecret(ctx, sdb);
  }
}

const keyOf = (sdb: SecureDatabaseObject): string => `${sdb.metadata.namespace}/${sdb.metadata.name}`;

/**
 * Operators before 0.2 kept the identity in the Secret `<name>-operator-client-tls` of the database's namespace, where
 * whoever may read Secrets there could log in as the admin role: deleted (only when it is ours).
 */
async function dropLegacySecret(ctx: OperatorContext, sdb: SecureDatabaseObject): Promise<void> {
  const namespace = sdb.metadata.namespace!;
  const name = adminSecretName(sdb.metadata.name);
  if (!identityToDrop(ctx.cache.secrets.get(namespace, name), sdb.metadata.name)) return;
  await ctx.client.delete(RESOURCES.Secret, { namespace, name });
  ctx.cache.secrets.forget(namespace, name);
  const fields = { resource: `SecureDatabase/${sdb.metadata.name}`, namespace, reason: Reason.IdentityNotNeeded };
  ctx.log.info("deleted the Secret an older operator kept its client identity in: the identity lives in memory now", fields);
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
