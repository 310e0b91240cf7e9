/** Reading a SecureDatabase's CA from its Secret: the one place that decides whether a CA can be signed with. */
import type { ResolvedSecureDatabaseSpec } from "../api/defaults";
import { Reason } from "../api/reasons";
import { OWNER_LABEL, ownerLabelValue, type CAStatus } from "../api/types";
import { RESOURCES } from "../kube/resources";
import { secretBytes, type SecretObject } from "../kube/secrets";
import { isPkiError, loadCA, type CertificateAuthority } from "../pki";
import { CAKeys, describeLocation, isOwnCAKey, type SecretLocation } from "./ca-keys";
import type { OperatorContext } from "./context";
import { caSecretOptIn } from "./secure-database/opt-in";

export type CARead =
  /** `keySecret`: where the CA's private key is, for status and the on-call engineer. */
  | { state: "ready"; ca: CertificateAuthority; provided: boolean; keySecret: SecretLocation }
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
  const keys = new CAKeys(ctx, namespace, sdbName);
  if (spec.ca.mode === "Provided") return readBroughtCA(ctx, keys, name, now, inUse);
  const moved = await keys.read(name);
  // An older operator kept it in the database's namespace: signing goes on with it until the SecureDatabase's
  // reconcile has moved it.
  const legacy = moved ? undefined : ctx.cache.secrets.get(namespace, name);
  const ours = legacy?.metadata.labels?.[OWNER_LABEL] === ownerLabelValue("SecureDatabase", sdbName);
  const secret = moved ?? (ours ? legacy : undefined);
  if (!secret) return { state: "absent" };
  const at = moved ? keys.where(name) : { namespace, name };
  if (moved && !isOwnCAKey(moved, namespace, sdbName)) {
    const message =
      `Secret ${describeLocation(at)} (where this database's generated CA is kept) exists but was not generated for it; ` +
      "set spec.ca.mode: Provided to sign with it, or choose another spec.ca.secretName";
    return problem(Reason.CASecretNotOurs, message);
  }
  const data = secretBytes(secret);
  try {
    const ca = await loadCA(data["tls.crt"] ?? Buffer.alloc(0), data["tls.key"] ?? Buffer.alloc(0), now);
    return { state: "ready", ca, provided: false, keySecret: at };
  } catch (err) {
    // Never overwrite a CA key we cannot read: it may be the only copy. Say so and wait for a human.
    if (!isPkiError(err)) throw err;
    const message =
      `Secret ${describeLocation(at)} holds a CA the operator cannot use (${err.message}); restore it from backup, ` +
      "or delete the Secret to generate a new CA (every client certificate will be re-issued)";
    return problem(Reason.CASecretInvalid, message);
  }
}

/**
 * A brought CA: in the database's namespace as spec.ca.secretName says, else in the key namespace under its location
 * name, where a cluster admin puts it to keep its key out of tenants' reach (a copy left next to the database is
 * used, and CAReady says its key is exposed).
 */
async function readBroughtCA(
  ctx: OperatorContext,
  keys: CAKeys,
  name: string,
  now: Date,
  inUse: Pick<CAStatus, "secretName" | "fingerprintSHA256"> | undefined,
): Promise<CARead> {
  const beside = await ctx.client.getOptional<SecretObject>(RESOURCES.Secret, { namespace: keys.dbNamespace, name });
  const at = beside ? { namespace: keys.dbNamespace, name } : keys.where(name);
  const secret = beside ?? (await keys.read(name));
  if (!secret) {
    const message =
      `Secret ${name} (spec.ca.secretName) does not exist in namespace ${keys.dbNamespace} (nor as ${describeLocation(keys.where(name))}); ` +
      "create it with tls.crt and tls.key of your CA";
    return problem(Reason.CASecretNotFound, message);
  }
  // Any CA-shaped Secret of the namespace (another database's CA, a cert-manager issuer's) signs only once its
  // owner opts in: nothing of it is read before, unless this database already signs with it.
  const listed = caSecretOptIn(secret.metadata, at.namespace, keys.sdbName, at.name, undefined, "");
  if (!listed.ok && inUse?.secretName !== name) return problem(listed.reason, listed.message);
  const data = secretBytes(secret);
  if (!data["tls.crt"] || !data["tls.key"]) {
    const has = Object.keys(data).sort().join(", ") || "nothing";
    return problem(Reason.CASecretIncomplete, `Secret ${describeLocation(at)} must hold tls.crt and tls.key (has: ${has})`);
  }
  try {
    const ca = await loadCA(data["tls.crt"], data["tls.key"], now);
    const grandfather = inUse?.secretName === name ? inUse : undefined;
    const optIn = caSecretOptIn(secret.metadata, at.namespace, keys.sdbName, at.name, grandfather && { ...grandfather, secretName: at.name }, ca.facts.fingerprintSha256);
    if (!optIn.ok) return problem(optIn.reason, optIn.message);
    return { state: "ready", ca, provided: true, keySecret: at };
  } catch (err) {
    if (isPkiError(err)) return problem(err.reason, `Secret ${describeLocation(at)}: ${err.message}`);
    throw err;
  }
}
