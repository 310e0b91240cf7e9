/**
 * Where a database's CA Secrets live: in the operator's key namespace (--ca-key-namespace, the operator's own by
 * default), never where the database's tenants read Secrets, as cert-manager keeps a ClusterIssuer's CA in its
 * cluster resource namespace. The database's namespace gets only what its server and clients need (their Secrets
 * carry the CA certificate, the trust bundle and the CRL).
 *
 * A CA Secret `<name>` of a database in namespace `<ns>` is `<key namespace>/<ns>.<name>`: namespace names have
 * no dots, so two databases never share one. An owner reference cannot cross namespaces: the owner and
 * owner-namespace labels say whose it is, and the SecureDatabase's finalizer deletes it.
 */
import { createHash } from "node:crypto";
import { OWNER_LABEL, OWNER_NAMESPACE_LABEL, managedLabels, ownerLabelValue } from "../api/types";
import { RESOURCES } from "../kube/resources";
import { isApiError } from "../kube/rest";
import { desiredSecret, secretBytes, type SecretObject } from "../kube/secrets";
import { caSecretData, type CertificateAuthority } from "../pki";
import type { OperatorContext } from "./context";
import { ROTATION_TOKEN_ANNOTATION } from "./rotate-annotation";

export interface SecretLocation {
  namespace: string;
  name: string;
}

const MAX_SECRET_NAME = 253;

/** The Secret in the key namespace that holds CA Secret `name` of a database in `dbNamespace`. */
export function caKeyLocation(keyNamespace: string, dbNamespace: string, name: string): SecretLocation {
  const full = `${dbNamespace}.${name}`;
  if (full.length <= MAX_SECRET_NAME) return { namespace: keyNamespace, name: full };
  // Still unique: a hash of the whole name; the cut keeps a valid DNS subdomain (no trailing "." or "-").
  const hash = createHash("sha256").update(full).digest("hex").slice(0, 10);
  const kept = full.slice(0, MAX_SECRET_NAME - hash.length - 1).replace(/[.-]+$/, "");
  return { namespace: keyNamespace, name: `${kept}-${hash}` };
}

export const describeLocation = (at: SecretLocation): string => `${at.namespace}/${at.name}`;

export function caKeyLabels(dbNamespace: string, sdbName: string): Record<string, string> {
  return { ...managedLabels("SecureDatabase", sdbName), [OWNER_NAMESPACE_LABEL]: dbNamespace };
}

/** Whether a Secret in the key namespace is this database's (both labels: names repeat across namespaces). */
export function isOwnCAKey(secret: SecretObject | undefined, dbNamespace: string, sdbName: string): boolean {
  const labels = secret?.metadata.labels;
  return labels?.[OWNER_LABEL] === ownerLabelValue("SecureDatabase", sdbName) && labels[OWNER_NAMESPACE_LABEL] === dbNamespace;
}

/**
 * What to do with a CA Secret an older operator kept in the database's namespace (`legacy`), given the one in the
 * key namespace (`moved`): copy it over byte for byte (the same CA: nothing is re-issued), then delete it. One whose
 * key differs from the moved one is never deleted: it may be the only copy of a key someone restored.
 */
export type LegacyMove =
  | { action: "none" }
  | { action: "copy" }
  | { action: "deleteLegacy" }
  | { action: "keep"; message: string };

export function planLegacyMove(legacy: SecretObject | undefined, moved: SecretObject | undefined, sdbName: string, at: SecretLocation): LegacyMove {
  if (!legacy || legacy.metadata.labels?.[OWNER_LABEL] !== ownerLabelValue("SecureDatabase", sdbName)) return { action: "none" };
  if (!moved) return { action: "copy" };
  const [a, b] = [secretBytes(legacy), secretBytes(moved)];
  const same = ["tls.crt", "tls.key"].every((k) => (a[k] ?? Buffer.alloc(0)).equals(b[k] ?? Buffer.alloc(0)));
  if (same) return { action: "deleteLegacy" };
  const message =
    `Secret ${legacy.metadata.name} in namespace ${legacy.metadata.namespace} holds another CA than ${describeLocation(at)}, ` +
    "which signs: it is left as it is (it may be the only copy of a key); delete it once you know it is not needed";
  return { action: "keep", message };
}

/** One database's CA Secrets in the key namespace: read from the cache (API when absent), written there only. */
export class CAKeys {
  readonly keyNamespace: string;

  constructor(
    private readonly ctx: OperatorContext,
    readonly dbNamespace: string,
    readonly sdbName: string,
  ) {
    this.keyNamespace = ctx.caKeyNamespace;
  }

  where(name: string): SecretLocation {
    return caKeyLocation(this.keyNamespace, this.dbNamespace, name);
  }

  /** The Secret at `name`'s location, whoever's it is. */
  async read(name: string): Promise<SecretObject | undefined> {
    const at = this.where(name);
    return this.ctx.cache.secrets.get(at.namespace, at.name) ?? (await this.ctx.client.getOptional<SecretObject>(RESOURCES.Secret, at));
  }

  /** The data of `name` when it is this database's (cache only: ours carry the managed-by label). */
  ownData(name: string): Record<string, Buffer> | undefined {
    const at = this.where(name);
    const secret = this.ctx.cache.secrets.get(at.namespace, at.name);
    return isOwnCAKey(secret, this.dbNamespace, this.sdbName) ? secretBytes(secret) : undefined;
  }

  cachedAnnotations(name: string): Record<string, string> | undefined {
    const at = this.where(name);
    return this.ctx.cache.secrets.get(at.namespace, at.name)?.metadata.annotations;
  }

  body(name: string, type: string, data: Readonly<Record<string, Uint8Array>>, token?: string): SecretObject {
    const at = this.where(name);
    const annotations = token ? { annotations: { [ROTATION_TOKEN_ANNOTATION]: token } } : {};
    return desiredSecret({ ...at, type, labels: caKeyLabels(this.dbNamespace, this.sdbName), ...annotations, data });
  }

  /** Creates `name` holding `ca`; a 409 means someone (a previous run) created it meanwhile. */
  async create(name: string, ca: CertificateAuthority): Promise<void> {
    const body = this.body(name, "kubernetes.io/tls", caSecretData(ca));
    const created = await this.ctx.client.create<SecretObject>(RESOURCES.Secret, this.keyNamespace, body);
    this.ctx.cache.secrets.observe(created);
  }

  async write(name: string, type: string, data: Readonly<Record<string, Uint8Array>>, token?: string): Promise<void> {
    const written = await this.ctx.client.apply<SecretObject>(RESOURCES.Secret, this.where(name), this.body(name, type, data, token));
    this.ctx.cache.secrets.observe(written);
  }

  writeCA(name: string, ca: CertificateAuthority, token?: string): Promise<void> {
    return this.write(name, "kubernetes.io/tls", caSecretData(ca), token);
  }

  async delete(name: string): Promise<void> {
    const at = this.where(name);
    await this.ctx.client.delete(RESOURCES.Secret, at);
    this.ctx.cache.secrets.forget(at.namespace, at.name);
  }

  /** Deletes `name` when it is this database's: never a Secret someone else put at its location. */
  async deleteOwn(name: string): Promise<void> {
    if (isOwnCAKey(await this.read(name), this.dbNamespace, this.sdbName)) await this.delete(name);
  }

  /**
   * Moves CA Secret `name` out of the database's namespace, where an older operator kept it: copy, then delete
   * (a crash between the two leaves two equal copies, and the next pass deletes the old one). Answers what it did,
   * for the event, or undefined when there was nothing to move.
   */
  async moveLegacy(name: string): Promise<{ type: "Normal" | "Warning"; message: string } | undefined> {
    // The cache first: nothing to move (every pass but the first after an upgrade) costs no API call.
    const legacy = this.ctx.cache.secrets.get(this.dbNamespace, name);
    if (!legacy) return undefined;
    let plan = planLegacyMove(legacy, await this.read(name), this.sdbName, this.where(name));
    if (plan.action === "none") return undefined;
    if (plan.action === "keep") return { type: "Warning", message: plan.message };
    const from = `${this.dbNamespace}/${name}`;
    if (plan.action === "copy") {
      const token = legacy.metadata.annotations?.[ROTATION_TOKEN_ANNOTATION];
      try {
        const created = await this.ctx.client.create<SecretObject>(RESOURCES.Secret, this.keyNamespace, this.body(name, legacy.type ?? "Opaque", secretBytes(legacy), token));
        this.ctx.cache.secrets.observe(created);
      } catch (err) {
        if (!isApiError(err, 409)) throw err;
      }
      plan = planLegacyMove(legacy, await this.read(name), this.sdbName, this.where(name));
      if (plan.action !== "deleteLegacy") return plan.action === "keep" ? { type: "Warning", message: plan.message } : undefined;
    }
    await this.ctx.client.delete(RESOURCES.Secret, { namespace: this.dbNamespace, name });
    this.ctx.cache.secrets.forget(this.dbNamespace, name);
    const message =
      `moved Secret ${from} to ${describeLocation(this.where(name))}: the CA's key is no longer readable in namespace ` +
      `${this.dbNamespace}; the same CA signs, nothing is re-issued`;
    return { type: "Normal", message };
  }
}
