/** Reading a SecureDatabase's CA from its Secret: the one place that decides whether a CA can be signed with. */
import type { ResolvedSecureDatabaseSpec } from "../api/defaults";
import { Reason } from "../api/reasons";
import { OWNER_LABEL, ownerLabelValue, type CAStatus } from "../api/types";
import { RESOURCES } from "../kube/resources";
import { secretBytes, type SecretObject } from "../kube/secrets";
import { isPkiError, loadCA, type CertificateAuthority } from "../pki";
import type { OperatorContext } from "./context";
import { caSecretOptIn } from "./secure-database/opt-in";

export type CARead =
  | { state: "ready"; ca: CertificateAuthority; provided: boolean }
  /** A generated CA that does not exist yet (the SecureDatabase reconciler creates it). */
  | { state: "absent" }
  | { state: "problem"; reason: Reason; message: string };

const problem = (reason: Reason, message: string): CARead => ({ state: "problem", reason, message });

/**
 * `inUse`: the SecureDatabase's status.ca, the CA it signed with so far: a brought CA it already signs with counts as
 * opted in (grandfathering).
 */
export async function readDatabaseCA(
  ctx: OperatorContext,
  namespace: string,
  sdbName: string,
  spec: ResolvedSecureDatabaseSpec,
  now: Date,
  inUse?: Pick<CAStatus, "secretName" | "fingerprintSHA256">,
): Promise<CARead> {
  const name = spec.ca.secretName;
  if (spec.ca.mode === "Provided") {
    const secret = await ctx.client.getOptional<SecretObject>(RESOURCES.Secret, { namespace, name });
    if (!secret) {
      const message =
        `Secret ${name} (spec.ca.secretName) does not exist in namespace ${namespace}; ` + "create it with tls.crt and tls.key of your CA";
      return problem(Reason.CASecretNotFound, message);
    }
    // Any CA-shaped Secret of the namespace (another database's CA, a cert-manager issuer's) signs only once its
    // owner opts in: nothing of it is read before, unless this database already signs with it.
    const listed = caSecretOptIn(secret.metadata, namespace, sdbName, name, undefined, "");
    if (!listed.ok && inUse?.secretName !== name) return problem(listed.reason, listed.message);
    const data = secretBytes(secret);
    if (!data["tls.crt"] || !data["tls.key"]) {
      const has = Object.keys(data).sort().join(", ") || "nothing";
      return problem(Reason.CASecretIncomplete, `Secret ${name} must hold tls.crt and tls.key (has: ${has})`);
    }
    try {
      const ca = await loadCA(data["tls.crt"], data["tls.key"], now);
      const optIn = caSecretOptIn(secret.metadata, namespace, sdbName, name, inUse, ca.facts.fingerprintSha256);
      if (!optIn.ok) return problem(optIn.reason, optIn.message);
      return { state: "ready", ca, provided: true };
    } catch (err) {
      if (isPkiError(err)) return problem(err.reason, `Secret ${name}: ${err.message}`);
      throw err;
    }
  }
  const secret =
    ctx.cache.secrets.get(namespace, name) ?? (await ctx.client.getOptional<SecretObject>(RESOURCES.Secret, { namespace, name }));
  if (!secret) return { state: "absent" };
  if (secret.metadata.labels?.[OWNER_LABEL] !== ownerLabelValue("SecureDatabase", sdbName)) {
    const message =
      `Secret ${name} exists but was not generated for this SecureDatabase; ` +
      "set spec.ca.mode: Provided to sign with it, or choose another spec.ca.secretName";
    return problem(Reason.CASecretNotOurs, message);
  }
  const data = secretBytes(secret);
  try {
    const ca = await loadCA(data["tls.crt"] ?? Buffer.alloc(0), data["tls.key"] ?? Buffer.alloc(0), now);
    return { state: "ready", ca, provided: false };
  } catch (err) {
    // Never overwrite a CA key we cannot read: it may be the only copy. Say so and wait for a human.
    if (!isPkiError(err)) throw err;
    const message =
      `Secret ${name} holds a CA the operator cannot use (${err.message}); restore it from backup, ` +
      "or delete the Secret to generate a new CA (every client certificate will be re-issued)";
    return problem(Reason.CASecretInvalid, message);
  }
}
