/**
 * Decoder combinators: each checks the shape of an untyped JSON value (types, required fields, enum values) and
 * returns it typed, or throws a DecodeError naming the path. Each decoder also exposes its shape in the
 * vocabulary of OpenAPI schemas, which the unit tests compare with the CRD schemas.
 */

/** What kind of shape problem, named like the matching ValidationReason. */
export type DecodeProblem = "Required" | "Invalid" | "NotSupported";

export class DecodeError extends Error {
  constructor(
    /** JSON path of the offending value, e.g. "spec.postgres.hba.rules[0].users". */
    readonly path: string,
    readonly problem: string,
    readonly reason: DecodeProblem = "Invalid",
  ) {
    super(`${path || "<root>"}: ${problem}`);
    this.name = "DecodeError";
  }
}

export interface DecodeOptions {
  /**
   * Reject properties the types do not know (default false: they are dropped, as the API server prunes them).
   * Use it for hand-written manifests, where an unknown field is a typo.
   */
  strict?: boolean;
}

/** A description of what a decoder accepts, in the vocabulary of OpenAPI schemas. */
export type Shape =
  | { readonly type: "string"; readonly enum?: readonly string[] }
  | { readonly type: "integer" }
  | { readonly type: "boolean" }
  | { readonly type: "array"; readonly items: Shape }
  | { readonly type: "map"; readonly values: Shape }
  | {
      readonly type: "object";
      readonly properties: Readonly<Record<string, { readonly shape: Shape; readonly required: boolean }>>;
      readonly open: boolean;
    };

export interface Decoder<T> {
  readonly shape: Shape;
  decode(value: unknown, path: string, options: DecodeOptions): T;
}

export function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `${typeof value} ${JSON.stringify(value)}`;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const join = (path: string, key: string): string => (path ? `${path}.${key}` : key);

export const string: Decoder<string> = {
  shape: { type: "string" },
  decode(value, path) {
    if (typeof value !== "string") throw new DecodeError(path, `expected a string, got ${describe(value)}`);
    return value;
  },
};

export const integer: Decoder<number> = {
  shape: { type: "integer" },
  decode(value, path) {
    if (typeof value !== "number" || !Number.isSafeInteger(value)) {
      throw new DecodeError(path, `expected an integer, got ${describe(value)}`);
    }
    return value;
  },
};

export const boolean: Decoder<boolean> = {
  shape: { type: "boolean" },
  decode(value, path) {
    if (typeof value !== "boolean") throw new DecodeError(path, `expected a boolean, got ${describe(value)}`);
    return value;
  },
};

export function oneOf<const V extends readonly string[]>(values: V): Decoder<V[number]> {
  return {
    shape: { type: "string", enum: values },
    decode(value, path) {
      if (typeof value !== "string" || !values.includes(value)) {
        const expected = values.map((v) => JSON.stringify(v)).join(", ");
        throw new DecodeError(path, `expected one of ${expected}, got ${describe(value)} (unsupported value)`, "NotSupported");
      }
      return value;
    },
  };
}

export function array<T>(items: Decoder<T>): Decoder<T[]> {
  return {
    shape: { type: "array", items: items.shape },
    decode(value, path, options) {
      if (!Array.isArray(value)) throw new DecodeError(path, `expected an array, got ${describe(value)}`);
      return value.map((v, i) => items.decode(v, `${path}[${i}]`, options));
    },
  };
}

export function map<T>(values: Decoder<T>): Decoder<Record<string, T>> {
  return {
    shape: { type: "map", values: values.shape },
    decode(value, path, options) {
      if (!isRecord(value)) throw new DecodeError(path, `expected an object, got ${describe(value)}`);
      const out: Record<string, T> = {};
      for (const [k, v] of Object.entries(value)) out[k] = values.decode(v, join(path, k), options);
      return out;
    },
  };
}

interface Prop<T, R extends boolean> {
  readonly decoder: Decoder<T>;
  readonly required: R;
}
export function required<T>(decoder: Decoder<T>): Prop<T, true> {
  return { decoder, required: true };
}
export function optional<T>(decoder: Decoder<T>): Prop<T, false> {
  return { decoder, required: false };
}
/** One optional string property for each key, in the order given (the order decode checks them and names them as known fields). */
export function optionalStrings<const K extends string>(...keys: K[]): Record<K, Prop<string, false>> {
  return Object.fromEntries(keys.map((k) => [k, optional(string)])) as Record<K, Prop<string, false>>;
}

type Props = Record<string, Prop<unknown, boolean>>;
type PropType<P> = P extends Prop<infer T, boolean> ? T : never;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
type ObjectOf<P extends Props> = Simplify<
  { [K in keyof P as P[K] extends Prop<unknown, true> ? K : never]: PropType<P[K]> } & {
    [K in keyof P as P[K] extends Prop<unknown, true> ? never : K]?: PropType<P[K]>;
  }
>;
type Equals<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;

/**
 * An object decoder for the interface T. The property list must describe T exactly (same keys, same optionality,
 * same value types): otherwise the call does not compile (it then demands an impossible extra argument).
 * An open object keeps properties it does not list, unchecked (used for metadata).
 */
export function object<T>(open = false) {
  return <P extends Props>(props: P, ...exact: Equals<ObjectOf<P>, T> extends true ? [] : [never]): Decoder<T> => {
    void exact;
    const properties: Record<string, { shape: Shape; required: boolean }> = {};
    for (const [k, p] of Object.entries(props)) properties[k] = { shape: p.decoder.shape, required: p.required };
    return {
      shape: { type: "object", properties, open },
      decode(value, path, options) {
        if (!isRecord(value)) throw new DecodeError(path, `expected an object, got ${describe(value)}`);
        const out: Record<string, unknown> = open ? { ...value } : {};
        for (const [k, p] of Object.entries(props)) {
          const v = value[k];
          if (v === undefined || v === null) {
            if (p.required) throw new DecodeError(join(path, k), "required field is missing", "Required");
            delete out[k];
            continue;
          }
          out[k] = p.decoder.decode(v, join(path, k), options);
        }
        if (options.strict && !open) {
          const unknown = Object.keys(value).filter((k) => !(k in props));
          if (unknown.length > 0) {
            throw new DecodeError(join(path, unknown[0] ?? ""), `unknown field (known fields: ${Object.keys(props).join(", ")})`);
          }
        }
        return out as T;
      },
    };
  };
}

export function literal<const V extends string>(v: V): Decoder<V> {
  return oneOf([v] as const);
}
