import type { OwnerReference } from "../api/types";

export interface SecretObject {
  apiVersion?: string;
  kind?: string;
  type?: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: OwnerReference[];
    resourceVersion?: string;
    uid?: string;
  };
  data?: Record<string, string>;
}

/** A Secret's data as bytes (the API gives base64). */
export function secretBytes(secret: SecretObject | undefined): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(secret?.data ?? {})) out[k] = Buffer.from(v, "base64");
  return out;
}

export function encodeSecretData(data: Readonly<Record<string, Uint8Array>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(data).sort()) out[k] = Buffer.from(data[k]!).toString("base64");
  return out;
}

/** True when the Secret already holds exactly this data (so nothing needs writing). */
export function secretHasData(secret: SecretObject | undefined, data: Readonly<Record<string, Uint8Array>>): boolean {
  const current = secret?.data ?? {};
  const wanted = encodeSecretData(data);
  const keys = new Set([...Object.keys(current), ...Object.keys(wanted)]);
  for (const k of keys) if (current[k] !== wanted[k]) return false;
  return true;
}

export function ownerReference(owner: { apiVersion: string; kind: string; metadata: { name: string; uid?: string } }): OwnerReference {
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: owner.metadata.name,
    uid: owner.metadata.uid ?? "",
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** The Secret we own, as a server-side apply body. */
export function desiredSecret(args: {
  name: string;
  namespace: string;
  type: string;
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  owner?: OwnerReference;
  data: Readonly<Record<string, Uint8Array>>;
}): SecretObject {
  const metadata: SecretObject["metadata"] = { name: args.name, namespace: args.namespace, labels: args.labels };
  if (args.annotations) metadata.annotations = args.annotations;
  if (args.owner) metadata.ownerReferences = [args.owner];
  return { apiVersion: "v1", kind: "Secret", type: args.type, metadata, data: encodeSecretData(args.data) };
}
