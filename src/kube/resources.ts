import { GROUP, IMAGING_CONNECTION, SECURE_DATABASE, VERSION } from "../api/types";
import type { ResourceType } from "./rest";

/** Every kind the operator reads or writes, with its URL parts: no discovery calls needed. */
export const RESOURCES = {
  SecureDatabase: { group: GROUP, version: VERSION, plural: SECURE_DATABASE.plural, kind: SECURE_DATABASE.kind, namespaced: true },
  ImagingConnection: { group: GROUP, version: VERSION, plural: IMAGING_CONNECTION.plural, kind: IMAGING_CONNECTION.kind, namespaced: true },
  Secret: { group: "", version: "v1", plural: "secrets", kind: "Secret", namespaced: true },
  ConfigMap: { group: "", version: "v1", plural: "configmaps", kind: "ConfigMap", namespaced: true },
  Event: { group: "", version: "v1", plural: "events", kind: "Event", namespaced: true },
  StatefulSet: { group: "apps", version: "v1", plural: "statefulsets", kind: "StatefulSet", namespaced: true },
  Deployment: { group: "apps", version: "v1", plural: "deployments", kind: "Deployment", namespaced: true },
  Namespace: { group: "", version: "v1", plural: "namespaces", kind: "Namespace", namespaced: false },
  Lease: { group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease", namespaced: true },
} as const satisfies Record<string, ResourceType>;

export type KnownKind = keyof typeof RESOURCES;

export function apiVersionOf(type: ResourceType): string {
  return type.group ? `${type.group}/${type.version}` : type.version;
}
