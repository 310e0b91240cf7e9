/**
 * Test helpers: read crds/*.yaml and apply a subset of the API server's structural-schema behaviour offline
 * (defaulting, and the type/required/enum/pattern/bounds checks), so unit tests can check samples and defaults
 * against the very schema the cluster gets. CEL rules are only checked by the integration suite.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parse, parseAllDocuments } from "yaml";

export const REPO = resolve(__dirname, "..", "..", "..");
export const CRD_DIR = join(REPO, "crds");
export const SAMPLES_DIR = join(REPO, "deploy", "samples");

export interface Validation {
  rule: string;
  message?: string;
  messageExpression?: string;
}

export interface Schema {
  type?: string;
  description?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
  required?: string[];
  enum?: unknown[];
  default?: unknown;
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  "x-kubernetes-validations"?: Validation[];
  "x-kubernetes-list-type"?: string;
  "x-kubernetes-list-map-keys"?: string[];
}

export interface PrinterColumn {
  name: string;
  type: string;
  jsonPath: string;
  priority?: number;
  description?: string;
}

export interface CRD {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: {
    group: string;
    scope: string;
    names: { kind: string; listKind: string; plural: string; singular: string; shortNames: string[]; categories: string[] };
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      subresources?: { status?: object };
      additionalPrinterColumns?: PrinterColumn[];
      schema: { openAPIV3Schema: Schema };
    }[];
  };
}

export function loadCRD(file: "securedatabases.yaml" | "imagingconnections.yaml"): CRD {
  return parse(readFileSync(join(CRD_DIR, file), "utf8")) as CRD;
}

export function rootSchema(crd: CRD): Schema {
  const v = crd.spec.versions[0];
  if (!v) throw new Error(`${crd.metadata.name} has no version`);
  return v.schema.openAPIV3Schema;
}

/** Every YAML document of a sample file, parsed. */
export function loadSampleDocs(file: string): unknown[] {
  return parseAllDocuments(readFileSync(join(SAMPLES_DIR, file), "utf8")).map((d) => {
    if (d.errors.length > 0) throw new Error(`${file}: ${d.errors.map((e) => e.message).join("; ")}`);
    return d.toJS() as unknown;
  });
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const clone = <T>(v: T): T => structuredClone(v);

/** Structural defaulting as the API server does it: fill missing properties from `default`, then recurse. */
export function applyDefaults(schema: Schema, value: unknown): unknown {
  if (isRecord(value) && schema.properties) {
    const out: Record<string, unknown> = { ...value };
    for (const [k, prop] of Object.entries(schema.properties)) {
      if (out[k] === undefined && prop.default !== undefined) out[k] = clone(prop.default);
    }
    for (const [k, v] of Object.entries(out)) {
      const prop = schema.properties[k];
      if (prop) out[k] = applyDefaults(prop, v);
    }
    return out;
  }
  if (Array.isArray(value) && schema.items) {
    const items = schema.items;
    return value.map((v) => applyDefaults(items, v));
  }
  return value;
}

/** The schema checks that are not CEL. Returns "path: problem" strings. metadata is not checked. */
export function schemaErrors(schema: Schema, value: unknown, path = ""): string[] {
  const errors: string[] = [];
  const at = path || "<root>";
  switch (schema.type) {
    case "object": {
      if (!isRecord(value)) return [`${at}: expected object`];
      for (const r of schema.required ?? []) if (value[r] === undefined) errors.push(`${path ? `${path}.` : ""}${r}: required`);
      if (schema.properties) {
        for (const [k, v] of Object.entries(value)) {
          const prop = schema.properties[k];
          const p = path ? `${path}.${k}` : k;
          if (!prop) errors.push(`${p}: unknown field`);
          else if (!(path === "" && k === "metadata")) errors.push(...schemaErrors(prop, v, p));
        }
      }
      break;
    }
    case "array": {
      if (!Array.isArray(value)) return [`${at}: expected array`];
      if (schema.minItems !== undefined && value.length < schema.minItems) errors.push(`${at}: fewer than ${schema.minItems} items`);
      if (schema.maxItems !== undefined && value.length > schema.maxItems) errors.push(`${at}: more than ${schema.maxItems} items`);
      if (schema["x-kubernetes-list-type"] === "set" && new Set(value.map((v) => JSON.stringify(v))).size !== value.length) {
        errors.push(`${at}: duplicate items`);
      }
      const keys = schema["x-kubernetes-list-map-keys"];
      if (keys && new Set(value.map((v) => JSON.stringify(keys.map((k) => (isRecord(v) ? v[k] : undefined))))).size !== value.length) {
        errors.push(`${at}: duplicate map keys`);
      }
      const items = schema.items;
      if (items) value.forEach((v, i) => errors.push(...schemaErrors(items, v, `${path}[${i}]`)));
      break;
    }
    case "string":
      if (typeof value !== "string") return [`${at}: expected string`];
      if (schema.minLength !== undefined && value.length < schema.minLength) errors.push(`${at}: shorter than ${schema.minLength}`);
      if (schema.maxLength !== undefined && value.length > schema.maxLength) errors.push(`${at}: longer than ${schema.maxLength}`);
      if (schema.pattern !== undefined && !new RegExp(schema.pattern).test(value)) errors.push(`${at}: does not match ${schema.pattern}`);
      break;
    case "integer":
      if (typeof value !== "number" || !Number.isInteger(value)) return [`${at}: expected integer`];
      if (schema.minimum !== undefined && value < schema.minimum) errors.push(`${at}: below ${schema.minimum}`);
      if (schema.maximum !== undefined && value > schema.maximum) errors.push(`${at}: above ${schema.maximum}`);
      break;
    case "boolean":
      if (typeof value !== "boolean") return [`${at}: expected boolean`];
      break;
    default:
      break;
  }
  if (schema.enum && !schema.enum.includes(value)) errors.push(`${at}: not one of ${JSON.stringify(schema.enum)}`);
  return errors;
}

/** Walks every schema node with its path ("spec.postgres.hba.rules[]"). */
export function walk(schema: Schema, visit: (node: Schema, path: string, parent: Schema | undefined) => void, path = "", parent?: Schema): void {
  visit(schema, path, parent);
  for (const [k, prop] of Object.entries(schema.properties ?? {})) walk(prop, visit, path ? `${path}.${k}` : k, schema);
  if (schema.items) walk(schema.items, visit, `${path}[]`, schema);
}

/** The schema node at a dotted path ("spec.ca.duration"; "[]" steps into items). */
export function at(schema: Schema, path: string): Schema {
  let node: Schema | undefined = schema;
  for (const step of path.split(".")) {
    const [name, ...arrays] = step.split("[]");
    if (name) node = node?.properties?.[name];
    for (let i = 0; i < arrays.length; i++) node = node?.items;
    if (!node) throw new Error(`no schema at ${path}`);
  }
  return node;
}
