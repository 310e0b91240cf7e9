/** Kubernetes objects read from YAML (rendered manifests, `kubectl kustomize`, `helm template`) and compared. */
import { expect } from "chai";
import { parseAllDocuments } from "yaml";

/** An object as YAML gives it; `F` is what its other fields are taken as (unknown, or any where a test reads deep). */
export type Manifest<F = unknown> = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; managedFields?: { manager?: string }[] };
} & Record<string, F>;

export const manifestId = (o: Manifest<unknown>): string => `${o.kind}/${o.metadata.namespace ? `${o.metadata.namespace}/` : ""}${o.metadata.name}`;

/** Every object of a multi-document YAML text (empty documents left out). */
export function manifests<F = unknown>(text: string): Manifest<F>[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as Manifest<F> | null)
    .filter((o): o is Manifest<F> => o !== null);
}

/** The one object of that kind, name and namespace; fails naming what there is instead. */
export function one<F>(objects: Manifest<F>[], kind: string, name: string, namespace?: string): Manifest<F> {
  const found = objects.filter((o) => o.kind === kind && o.metadata.name === name && o.metadata.namespace === namespace);
  expect(found, `${kind} ${namespace ?? ""}/${name} among ${objects.map(manifestId).join(", ")}`).to.have.length(1);
  return found[0]!;
}

/** The path of the first value that differs between two plain objects, or undefined when they are equal. */
export function firstDifference(a: unknown, b: unknown, path = ""): string | undefined {
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) {
    return a === b ? undefined : `${path}: ${JSON.stringify(a)} != ${JSON.stringify(b)}`;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return `${path}: an array and an object`;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) {
    const d = firstDifference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`);
    if (d) return d;
  }
  return undefined;
}
