/**
 * Invariants of the operator's output that must hold whatever happened before: read from the real API server,
 * judged without the operator's code (except the names it documents), each returning the violations it found
 * in words a report can quote. Used by the chaos tests (fuzzed input, SIGKILLs at random moments).
 */
import { expect } from "chai";
import { createHash, createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, OWNER_LABEL, OWNER_NAMESPACE_LABEL } from "../../src/api/types";
import { BEGIN_MARKER as MANAGED_BLOCK_BEGIN } from "../../src/postgres/managed-block";
import { CAST_INI_VOLUME, connectionVolumeName } from "../../src/imaging/workload-plan";
import { RESOURCES } from "../../src/kube/resources";
import type { RestClient } from "../../src/kube/rest";
import { TEST_KEY_NAMESPACE } from "./operator";
import { waitFor } from "./process";

interface Meta {
  name: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: { kind: string; name: string; uid: string }[];
  managedFields?: { manager?: string; operation?: string; fieldsV1?: unknown }[];
}
export interface StatusCondition {
  type: string;
  status: string;
  reason: string;
  message: string;
  observedGeneration?: number;
}
export interface CustomObject {
  metadata: Meta;
  // Fuzzed objects may hold anything the schema let through: read defensively.
  spec?: Record<string, unknown>;
  status?: { observedGeneration?: number; conditions?: StatusCondition[]; [k: string]: unknown };
}
export interface SecretLike {
  metadata: Meta;
  type?: string;
  data?: Record<string, string>;
}
export interface ConfigMapLike {
  metadata: Meta;
  data?: Record<string, string>;
}
interface Volume {
  name: string;
  secret?: { secretName?: string };
  configMap?: { name?: string };
}
export interface WorkloadLike {
  kind: "Deployment" | "StatefulSet";
  metadata: Meta;
  spec?: { template?: { metadata?: { annotations?: Record<string, string> }; spec?: { volumes?: Volume[]; containers?: { name: string; volumeMounts?: { name: string; mountPath: string }[] }[] } } };
}

/** One consistent-enough view of a namespace: everything the invariants look at. */
export interface ClusterState {
  namespace: string;
  secureDatabases: CustomObject[];
  imagingConnections: CustomObject[];
  secrets: SecretLike[];
  /**
   * The CA Secrets the key namespace holds for this namespace's databases, under the names the databases give them
   * (`db-ca` for `<key namespace>/<ns>.db-ca`), with this namespace.
   */
  caSecrets: SecretLike[];
  /** SecureDatabases listed before or after the CA Secrets (their keys have no owner reference: see orphanedSecrets). */
  databasesAround: ReadonlySet<string>;
  configMaps: ConfigMapLike[];
  workloads: WorkloadLike[];
}

/**
 * Lists what the operator wrote first and the objects it wrote it for second: an owner is always created before
 * what it owns, so a Secret in the first list never misses its owner in the second because of the order of reads.
 */
export async function readState(client: RestClient, namespace: string): Promise<ClusterState> {
  const list = async <T>(type: (typeof RESOURCES)[keyof typeof RESOURCES]) => (await client.list<T>(type, namespace)).items;
  const before = await list<CustomObject>(RESOURCES.SecureDatabase);
  const [secrets, caSecrets, configMaps, deployments, statefulSets] = await Promise.all([
    list<SecretLike>(RESOURCES.Secret),
    listCASecrets(client, namespace),
    list<ConfigMapLike>(RESOURCES.ConfigMap),
    list<WorkloadLike>(RESOURCES.Deployment),
    list<WorkloadLike>(RESOURCES.StatefulSet),
  ]);
  const [secureDatabases, imagingConnections] = await Promise.all([list<CustomObject>(RESOURCES.SecureDatabase), list<CustomObject>(RESOURCES.ImagingConnection)]);
  return {
    namespace,
    secureDatabases,
    imagingConnections,
    secrets,
    caSecrets,
    databasesAround: new Set([...before, ...secureDatabases].map((o) => o.metadata.name)),
    configMaps,
    workloads: [...deployments.map((w) => ({ ...w, kind: "Deployment" as const })), ...statefulSets.map((w) => ({ ...w, kind: "StatefulSet" as const }))],
  };
}

/** A CA Secret of the key namespace as its database names it: `<ns>.db-ca` becomes `db-ca` in namespace `<ns>`. */
export function asDatabaseCASecret<T extends SecretLike>(secret: T): T {
  const namespace = secret.metadata.labels?.[OWNER_NAMESPACE_LABEL] ?? "";
  return { ...secret, metadata: { ...secret.metadata, namespace, name: secret.metadata.name.slice(namespace.length + 1) } };
}

async function listCASecrets(client: RestClient, namespace: string): Promise<SecretLike[]> {
  const { items } = await client.list<SecretLike>(RESOURCES.Secret, TEST_KEY_NAMESPACE, { labelSelector: `${OWNER_NAMESPACE_LABEL}=${namespace}` });
  return items.map(asDatabaseCASecret);
}

// ------------------------------------------------------------------------------------------------ helpers

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
const obj = (v: unknown): Record<string, unknown> => (v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const b64 = (s: SecretLike, key: string): Buffer | undefined => (s.data?.[key] !== undefined ? Buffer.from(s.data[key], "base64") : undefined);

export const caSecretNameOf = (sdb: CustomObject): string => str(obj(sdb.spec?.ca).secretName) ?? `${sdb.metadata.name}-ca`;
export const serverSecretNameOf = (sdb: CustomObject): string => str(obj(sdb.spec?.serverCertificate).secretName) ?? `${sdb.metadata.name}-server-tls`;
export const clientSecretNameOf = (imc: CustomObject): string => str(imc.spec?.secretName) ?? `${imc.metadata.name}-client-tls`;
const databaseRefOf = (imc: CustomObject, ns: string): { namespace: string; name: string } => ({ namespace: str(obj(imc.spec?.databaseRef).namespace) ?? ns, name: str(obj(imc.spec?.databaseRef).name) ?? "" });
const targets = (imc: CustomObject): { kind: string; name: string }[] =>
  (Array.isArray(imc.spec?.workloads) ? (imc.spec.workloads as unknown[]) : []).map((w) => ({ kind: str(obj(w).kind) ?? "", name: str(obj(w).name) ?? "" }));

export function condition(o: CustomObject | undefined, type: string): StatusCondition | undefined {
  return o?.status?.conditions?.find((c) => c.type === type);
}

/** SHA-256 of the public key (SPKI DER) of a PEM private key: the key's identity, whatever its encoding. */
export function keyFingerprint(keyPem: Buffer | string | undefined): string {
  if (keyPem === undefined || keyPem.length === 0) return "absent";
  try {
    const spki = createPublicKey(createPrivateKey(keyPem)).export({ type: "spki", format: "der" });
    return createHash("sha256").update(spki).digest("hex").slice(0, 16);
  } catch {
    return `unparseable:${createHash("sha256").update(keyPem).digest("hex").slice(0, 16)}`;
  }
}

/** Every certificate of a PEM bundle (unparseable blocks are skipped). */
export function pemCertificates(pem: Buffer | string | undefined): X509Certificate[] {
  const blocks = (pem?.toString("utf8") ?? "").match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  const out: X509Certificate[] = [];
  for (const b of blocks) {
    try {
      out.push(new X509Certificate(b));
    } catch {
      // not a certificate: the bundle check below says what is missing
    }
  }
  return out;
}

/** Whether some certificate of the bundle issued (and signed) `leaf`. */
export function bundleHasIssuerOf(bundle: X509Certificate[], leaf: X509Certificate): boolean {
  return bundle.some((ca) => leaf.checkIssued(ca) && leaf.verify(ca.publicKey));
}

/**
 * Operator-managed volume names on a workload, from the managedFields of the operator's field managers (it adds
 * volumes by server-side apply only; a test that writes with the same manager name must use another one).
 */
export function operatorVolumes(w: WorkloadLike): string[] {
  const names: string[] = [];
  for (const mf of w.metadata.managedFields ?? []) {
    if (!mf.manager?.startsWith(MANAGED_BY_VALUE) || mf.operation !== "Apply") continue;
    const volumes = obj(obj(obj(obj(obj(mf.fieldsV1)["f:spec"])["f:template"])["f:spec"])["f:volumes"]);
    for (const k of Object.keys(volumes)) {
      const m = /^k:(\{.*\})$/.exec(k);
      if (!m) continue;
      try {
        const name = str((JSON.parse(m[1]!) as { name?: unknown }).name);
        if (name) names.push(name);
      } catch {
        // not a key we can read
      }
    }
  }
  return [...new Set(names)];
}

// ------------------------------------------------------------------------------------------------ invariants

/**
 * Every Secret labelled as the operator's names an owner (`<Kind>.<name>`) that exists. With `pendingGc`, a Secret
 * whose owner is gone but which carries an ownerReference to it is not an orphan yet: the garbage collector (which
 * the test control plane does not run) deletes it. A CA Secret of the key namespace has no owner reference: its
 * database's finalizer deletes it, so its database exists (seen before or after it was listed) while it does.
 */
export function orphanedSecrets(s: ClusterState, opts: { pendingGc?: boolean } = {}): string[] {
  const out: string[] = [];
  const exists = (kind: string, name: string) => (kind === "SecureDatabase" ? s.secureDatabases : kind === "ImagingConnection" ? s.imagingConnections : []).some((o) => o.metadata.name === name);
  for (const secret of s.secrets) {
    if (secret.metadata.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE) continue;
    const owner = secret.metadata.labels?.[OWNER_LABEL];
    const dot = owner?.indexOf(".") ?? -1;
    if (!owner || dot < 0) {
      out.push(`Secret ${secret.metadata.name} is labelled ${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE} but has no ${OWNER_LABEL} label`);
      continue;
    }
    const [kind, name] = [owner.slice(0, dot), owner.slice(dot + 1)];
    if (exists(kind, name)) continue;
    const collectable = secret.metadata.ownerReferences?.some((r) => r.kind === kind && r.name === name);
    if (!opts.pendingGc || !collectable) out.push(`Secret ${secret.metadata.name} is orphaned: its owner ${owner} does not exist${collectable ? "" : " and no ownerReference lets the garbage collector delete it"}`);
  }
  for (const secret of s.caSecrets) {
    const owner = secret.metadata.labels?.[OWNER_LABEL] ?? "";
    if (!s.databasesAround.has(owner.slice("SecureDatabase.".length))) {
      out.push(`CA Secret ${TEST_KEY_NAMESPACE}/${s.namespace}.${secret.metadata.name} is orphaned: its owner ${owner || "(no owner label)"} does not exist, and nothing will delete it`);
    }
  }
  return out;
}

/**
 * Every volume the operator's field managers own on a workload belongs to an existing object that targets that
 * workload: the server Secret volume to a SecureDatabase whose workloadRef names it, a connection volume to the
 * ImagingConnection it is named after (which lists the workload), the .ini volume to at least one such connection.
 */
export function orphanedMounts(s: ClusterState): string[] {
  const out: string[] = [];
  for (const w of s.workloads) {
    const where = `${w.kind} ${w.metadata.name}`;
    const volumes = w.spec?.template?.spec?.volumes ?? [];
    const targeting = s.imagingConnections.filter((imc) => !imc.metadata.deletionTimestamp && targets(imc).some((t) => t.kind === w.kind && t.name === w.metadata.name));
    for (const name of operatorVolumes(w)) {
      const vol = volumes.find((v) => v.name === name);
      if (!vol) continue;
      if (name === "mtls-server-tls") {
        const owner = s.secureDatabases.find((sdb) => {
          const ref = obj(sdb.spec?.workloadRef);
          return ref.kind === w.kind && ref.name === w.metadata.name && serverSecretNameOf(sdb) === vol.secret?.secretName;
        });
        if (!owner) out.push(`${where} mounts server Secret ${vol.secret?.secretName} (volume ${name}) but no SecureDatabase with that server Secret has it as workloadRef`);
      } else if (name === CAST_INI_VOLUME) {
        if (targeting.length === 0) out.push(`${where} still mounts the CAST .ini (volume ${name}) but no ImagingConnection targets it`);
      } else {
        const owner = targeting.find((imc) => connectionVolumeName(imc.metadata.name) === name && clientSecretNameOf(imc) === vol.secret?.secretName);
        if (!owner) out.push(`${where} has operator volume ${name} (Secret ${vol.secret?.secretName}) but no existing ImagingConnection targeting it owns that volume`);
      }
    }
  }
  return out;
}

/**
 * Status tells the truth about mounts: a SecureDatabase reporting WorkloadPatched=True has its server Secret
 * volume on its workload, and an ImagingConnection reporting a workload as Patched has its volume there.
 * Meaningful once statuses have settled.
 */
export function mountsMatchStatus(s: ClusterState): string[] {
  const out: string[] = [];
  const workload = (kind: unknown, name: unknown) => s.workloads.find((w) => w.kind === kind && w.metadata.name === name);
  for (const sdb of s.secureDatabases) {
    if (sdb.metadata.deletionTimestamp || condition(sdb, "WorkloadPatched")?.status !== "True") continue;
    const ref = obj(sdb.spec?.workloadRef);
    const vol = workload(ref.kind, ref.name)?.spec?.template?.spec?.volumes?.find((v) => v.name === "mtls-server-tls");
    if (vol?.secret?.secretName !== serverSecretNameOf(sdb)) {
      out.push(`SecureDatabase ${sdb.metadata.name} reports WorkloadPatched=True but ${String(ref.kind)} ${String(ref.name)} ${vol ? `mounts Secret ${vol.secret?.secretName}` : "has no mtls-server-tls volume"}`);
    }
  }
  for (const imc of s.imagingConnections) {
    if (imc.metadata.deletionTimestamp) continue;
    const states = Array.isArray(imc.status?.workloads) ? (imc.status.workloads as { kind?: string; name?: string; state?: string }[]) : [];
    for (const st of states) {
      if (st.state !== "Patched") continue;
      const vol = workload(st.kind, st.name)?.spec?.template?.spec?.volumes?.find((v) => v.name === connectionVolumeName(imc.metadata.name));
      if (vol?.secret?.secretName !== clientSecretNameOf(imc)) out.push(`ImagingConnection ${imc.metadata.name} reports ${st.kind} ${st.name} as Patched but it does not mount Secret ${clientSecretNameOf(imc)}`);
    }
  }
  return out;
}

/** No ConfigMap value holds the managed block's BEGIN marker more than once (`except`: fixtures made that way). */
export function duplicatedManagedBlocks(s: ClusterState, except: ReadonlySet<string> = new Set()): string[] {
  const out: string[] = [];
  for (const cm of s.configMaps) {
    if (except.has(cm.metadata.name)) continue;
    for (const [key, value] of Object.entries(cm.data ?? {})) {
      const n = value.split(MANAGED_BLOCK_BEGIN).length - 1;
      if (n > 1) out.push(`ConfigMap ${cm.metadata.name} key ${key} holds the managed block ${n} times`);
    }
  }
  return out;
}

/**
 * Trust between each connection and its database, from the Secrets alone: the client's ca.crt holds the CA that
 * issued the server's current certificate (so the client can verify the server), and the server's ca.crt holds
 * the CA that issued the client's certificate (so the server accepts it). Connections without a Secret yet, or
 * whose database or server Secret is missing, are skipped: there is nothing to trust yet.
 */
export function trustMismatches(s: ClusterState): string[] {
  const out: string[] = [];
  for (const secret of s.secrets) {
    const owner = secret.metadata.labels?.[OWNER_LABEL] ?? "";
    if (!owner.startsWith("ImagingConnection.")) continue;
    const imc = s.imagingConnections.find((o) => o.metadata.name === owner.slice("ImagingConnection.".length));
    if (!imc || clientSecretNameOf(imc) !== secret.metadata.name) continue;
    const ref = databaseRefOf(imc, s.namespace);
    if (ref.namespace !== s.namespace) continue;
    const sdb = s.secureDatabases.find((o) => o.metadata.name === ref.name);
    const server = sdb && s.secrets.find((x) => x.metadata.name === serverSecretNameOf(sdb) && x.metadata.labels?.[OWNER_LABEL] === `SecureDatabase.${sdb.metadata.name}`);
    const serverLeaf = pemCertificates(server && b64(server, "tls.crt"))[0];
    const clientLeaf = pemCertificates(b64(secret, "tls.crt"))[0];
    if (!serverLeaf || !clientLeaf) continue;
    if (!bundleHasIssuerOf(pemCertificates(b64(secret, "ca.crt")), serverLeaf)) {
      out.push(`client Secret ${secret.metadata.name} (ImagingConnection ${imc.metadata.name}) does not trust the CA that issued the server certificate of SecureDatabase ${sdb!.metadata.name} (serial ${serverLeaf.serialNumber}, issuer ${serverLeaf.issuer.replace(/\n/g, ", ")})`);
    }
    if (!bundleHasIssuerOf(pemCertificates(b64(server!, "ca.crt")), clientLeaf)) {
      out.push(`server Secret ${server!.metadata.name} does not trust the CA that issued client Secret ${secret.metadata.name} (serial ${clientLeaf.serialNumber})`);
    }
  }
  return out;
}

/** Objects that are not Ready=True, with their reason. */
export function notReady(s: ClusterState, names?: { secureDatabases?: readonly string[]; imagingConnections?: readonly string[] }): string[] {
  const out: string[] = [];
  const check = (kind: string, list: CustomObject[], only?: readonly string[]) => {
    for (const o of list) {
      if (only && !only.includes(o.metadata.name)) continue;
      const ready = condition(o, "Ready");
      if (ready?.status !== "True") out.push(`${kind} ${o.metadata.name} is not Ready: ${ready ? `${ready.status} ${ready.reason}: ${ready.message}` : "no Ready condition"}`);
      else if (o.status?.observedGeneration !== o.metadata.generation) out.push(`${kind} ${o.metadata.name} is Ready for generation ${o.status?.observedGeneration}, not ${o.metadata.generation}`);
    }
  };
  check("SecureDatabase", s.secureDatabases, names?.secureDatabases);
  check("ImagingConnection", s.imagingConnections, names?.imagingConnections);
  return out;
}

/**
 * What the garbage collector would delete now: Secrets whose ownerReferences name an object that is gone (checked
 * by name and uid with a GET, so an owner created after the list is never taken for a deleted one).
 */
export async function garbage(client: RestClient, s: ClusterState): Promise<SecretLike[]> {
  const out: SecretLike[] = [];
  const live = new Set([...s.secureDatabases, ...s.imagingConnections].map((o) => o.metadata.uid));
  const uidNow = new Map<string, string | undefined>();
  for (const secret of s.secrets) {
    for (const ref of secret.metadata.ownerReferences ?? []) {
      if ((ref.kind !== "SecureDatabase" && ref.kind !== "ImagingConnection") || live.has(ref.uid)) continue;
      const key = `${ref.kind}/${ref.name}`;
      if (!uidNow.has(key)) uidNow.set(key, (await client.getOptional<CustomObject>(RESOURCES[ref.kind], { namespace: s.namespace, name: ref.name }))?.metadata.uid);
      if (uidNow.get(key) !== ref.uid) {
        out.push(secret);
        break;
      }
    }
  }
  return out;
}

/**
 * Until the cluster's garbage collector has deleted what the owner references of deleted objects hold (bounded);
 * how many were still waiting for it when asked.
 */
export async function collectGarbage(client: RestClient, state: () => Promise<ClusterState>): Promise<number> {
  const waiting = (await garbage(client, await state())).length;
  let left: string[] = [];
  await waitFor("the garbage collector to delete the Secrets of deleted owners", async () => {
    left = (await garbage(client, await state())).map((x) => x.metadata.name);
    return left.length === 0;
  }, 120_000, 500).catch((err: Error) => {
    throw new Error(`${err.message}; still there: ${left.join(", ")}`);
  });
  return waiting;
}

// ------------------------------------------------------------------------------------------------ CA keys

interface CAHistory {
  /** Distinct key fingerprints `<ca>` has held, in order. */
  keys: string[];
  /** Distinct key fingerprints `<ca>-next` has held since the last promotion. */
  nextKeys: string[];
  /** Rotations the test triggered that have not yet replaced the key. */
  pending: number;
  deleted: boolean;
}

/**
 * Follows the key of every generated CA Secret (fed every version the test sees, from a watch or from lists, as
 * asDatabaseCASecret names it): a
 * CA key may only change by a rotation the test triggered, exactly once per rotation, to the key the `<ca>-next`
 * Secret of that rotation held; the CA Secret is never deleted and `<ca>-next` is never replaced by another key.
 * CA Secrets are named `<namespace>/<name>`.
 */
export class CAKeyLedger {
  private readonly cas = new Map<string, CAHistory>();
  readonly violations: string[] = [];

  /** Follow the CA Secret `<namespace>/<name>` (generated, so the operator writes it). */
  track(caSecret: string): void {
    if (!this.cas.has(caSecret)) this.cas.set(caSecret, { keys: [], nextKeys: [], pending: 0, deleted: false });
  }

  /** Stop following a CA whose SecureDatabase the test deleted (its Secrets go with it). */
  forget(caSecret: string): void {
    this.cas.delete(caSecret);
  }

  /** The test triggered a CA rotation of this CA: its key may change once more. */
  expectRotation(caSecret: string): void {
    this.track(caSecret);
    this.cas.get(caSecret)!.pending++;
  }

  current(caSecret: string): string | undefined {
    return this.cas.get(caSecret)?.keys.at(-1);
  }

  history(caSecret: string): { keys: readonly string[]; pending: number } {
    const h = this.cas.get(caSecret);
    return { keys: h?.keys ?? [], pending: h?.pending ?? 0 };
  }

  observe(secret: SecretLike, deleted = false): void {
    const name = `${secret.metadata.namespace ?? ""}/${secret.metadata.name}`;
    const key = keyFingerprint(b64(secret, "tls.key"));
    const base = this.cas.get(name);
    if (base) {
      if (deleted) {
        if (!base.deleted) this.violations.push(`CA Secret ${name} was deleted (its key ${base.keys.at(-1)} is lost)`);
        base.deleted = true;
        return;
      }
      const last = base.keys.at(-1);
      if (last === undefined) base.keys.push(key);
      else if (key !== last) {
        if (base.pending === 0) this.violations.push(`CA Secret ${name}: key replaced from ${last} to ${key} without a rotation being asked for`);
        else if (!base.nextKeys.includes(key)) this.violations.push(`CA Secret ${name}: key replaced from ${last} to ${key}, which is not the new CA the rotation announced in ${name}-next (${base.nextKeys.join(", ") || "none seen"})`);
        else base.pending--;
        base.keys.push(key);
        base.nextKeys = [];
      }
      return;
    }
    if (name.endsWith("-next")) {
      const owner = this.cas.get(name.slice(0, -"-next".length));
      if (!owner || deleted) return;
      if (owner.pending === 0 && key !== owner.keys.at(-1)) this.violations.push(`${name} appeared with key ${key} although no rotation of ${name.slice(0, -5)} was asked for`);
      if (!owner.nextKeys.includes(key)) {
        if (owner.nextKeys.length > 0 && key !== owner.keys.at(-1)) this.violations.push(`${name}: the new CA key changed from ${owner.nextKeys.join(", ")} to ${key} within one rotation`);
        owner.nextKeys.push(key);
      }
      return;
    }
    if (name.endsWith("-previous")) {
      const owner = this.cas.get(name.slice(0, -"-previous".length));
      if (!owner || deleted) return;
      if (!owner.keys.includes(key)) this.violations.push(`${name} holds key ${key}, which ${name.slice(0, -9)} never held`);
    }
  }

  /**
   * Feeds one listed namespace: `<ca>-next` first, so a promotion seen in a single list (new key in `<ca>`) is
   * judged against the announcement it follows; a tracked CA Secret of that namespace missing from the list counts
   * as deleted.
   */
  observeState(s: ClusterState): void {
    const rank = (n: string) => (n.endsWith("-next") ? 0 : n.endsWith("-previous") ? 2 : 1);
    for (const secret of [...s.caSecrets].sort((a, b) => rank(a.metadata.name) - rank(b.metadata.name))) this.observe(secret);
    for (const [name, h] of this.cas) {
      const [namespace, secretName] = [name.slice(0, name.indexOf("/")), name.slice(name.indexOf("/") + 1)];
      if (namespace === s.namespace && h.keys.length > 0 && !s.caSecrets.some((x) => x.metadata.name === secretName)) this.observe({ metadata: { name: secretName, namespace } }, true);
    }
  }

  /** Every triggered rotation replaced the key exactly once; CAs nobody rotated still have their first key. */
  finalViolations(): string[] {
    const out = [...this.violations];
    for (const [name, h] of this.cas) {
      if (h.pending > 0) out.push(`CA Secret ${name}: ${h.pending} triggered rotation(s) never replaced the key (keys seen: ${h.keys.join(" → ")})`);
    }
    return out;
  }
}

/** What to report about a Secret the test must never see changed: its type, labels and data, hashed. */
export function secretDigest(secret: SecretLike | undefined): string {
  if (!secret) return "absent";
  const data = Object.entries(secret.data ?? {}).sort(([a], [b]) => a.localeCompare(b));
  return createHash("sha256").update(JSON.stringify([secret.type, secret.metadata.labels ?? {}, data])).digest("hex").slice(0, 16);
}

/** A CA rotation's phases, as polled, only ever move forward (polling may miss a short one, never reorder them), and at least one was seen. */
export function expectPhaseOrder(phases: string[]): void {
  const order = ["Idle", "Overlap", "Reissuing", "Finishing", "Idle"];
  let at = 0;
  for (const p of phases) {
    const next = order.indexOf(p, at);
    expect(next, phases.join(" → ")).to.be.at.least(at);
    at = next;
  }
  expect(phases.filter((p) => p !== "Idle"), phases.join(" → ")).to.not.be.empty;
}
