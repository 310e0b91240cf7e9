import * as k8s from "@kubernetes/client-node";
import { expect } from "chai";
import fc from "fast-check";
import { Writable } from "node:stream";
import v8 from "node:v8";
import vm from "node:vm";
import winston from "winston";
import { RESOURCES } from "../../src/kube/resources";
import { ApiError, RestClient, resourcePath } from "../../src/kube/rest";
import { Operator } from "../../src/operator";
import { generateCA } from "../../src/pki";
import { controlPlane } from "../support/hooks";
import {
  CAKeyLedger,
  condition,
  duplicatedManagedBlocks,
  garbage,
  mountsMatchStatus,
  orphanedMounts,
  orphanedSecrets,
  readState,
  secretDigest,
  type ClusterState,
  type CustomObject,
} from "../support/invariants";
import { freePort, waitFor } from "../support/process";

/**
 * Chaos item 5: 500 random and adversarial SecureDatabases and ImagingConnections, generated from one seed, applied
 * as the admin to the real API server with the operator running in this process. Each object is either refused at
 * admission (and the API server's message names the field) or ends with a clear Ready condition for its current
 * generation, and no reconcile of it keeps failing; the operator never crashes (no unhandled rejection, and a
 * control database and connection still get Ready at the end), leaves what is not its own alone (other Secrets, the
 * CA key of a database nobody fuzzed), leaves no mount behind and keeps status true to the mounts, lets every object
 * go when deleted (in two waves: what neither works nor holds a mount first, then the rest, which must not notice),
 * restores every PostgreSQL ConfigMap byte for byte, and its heap does not grow when the same 500 objects are
 * applied and deleted a second time.
 *
 * The CRDs declare no x-kubernetes-preserve-unknown-fields, so wrong types (numbers as strings, objects or arrays
 * for strings) must all be refused at admission; unknown fields are refused with fieldValidation=Strict and pruned
 * otherwise (each case picks one).
 *
 * CHAOS_SEED overrides the seed; every failure names the case index, which regenerates the same object.
 */
const SEED = Number(process.env.CHAOS_SEED ?? 20261123);
const COUNT = 500;
const API = "mtls.imaging.dev/v1alpha1";
const HEAP_GROWTH_LIMIT = 20 * 2 ** 20;
const CAMEL_CASE = /^[A-Z][A-Za-z0-9]*$/;

type Kind = "SecureDatabase" | "ImagingConnection";
type Body = Record<string, unknown>;

interface Mutation {
  /** What was done, for reports: `spec.port="5432"`. */
  label: string;
  /** Field paths a refusal must name (one of them). */
  names: string[];
  apply(body: Body): void;
}

interface FuzzCase {
  index: number;
  kind: Kind;
  name: string;
  body: Body;
  mutations: Mutation[];
  strict: boolean;
  /** The per-object PostgreSQL ConfigMap the case references, created before it is applied. */
  configMap?: string;
}

interface Admission {
  accepted: boolean;
  message?: string;
  status?: number;
}

/** What the test environment provides that the generated objects refer to. */
interface Ctx {
  ns: string;
  otherNs: string;
  closedPort: number;
  validCertPem: string;
  otherCertPem: string;
}

// ------------------------------------------------------------------------------------------------ generation

const SPECIALS = [
  "\u202E", // right-to-left override
  "\u200F", // right-to-left mark
  "\u200B", // zero-width space
  "\u200D", // zero-width joiner
  "\uFEFF", // byte order mark
  "\u0000", // NUL
  "\u0085", // next line
  "\u2028", // line separator
  "👩‍💻",
  "🦄",
  "e\u0301",
  "مرحبا",
  "שלום",
  "ＡＢＣ",
  "ǅ",
  "\n",
  "\t",
  " ",
  "'",
  '"',
  "\\",
  "#",
  ",",
  "%00",
  "${jndi:ldap://x/a}",
  "'; DROP ROLE postgres; --",
  "../..",
];

const weird: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...SPECIALS),
  fc.array(fc.constantFrom(...SPECIALS, "a", "Z", "0", "-", ".", "_"), { minLength: 1, maxLength: 12 }).map((a) => a.join("")),
  fc.string({ unit: "binary", minLength: 1, maxLength: 24 }),
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 24 }),
);

const short = (v: unknown): string => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 45)}…(${s.length} chars)` : s;
};

function setPath(body: Body, path: string, value: unknown): void {
  const parts = path.split(".");
  let at: Record<string, unknown> = body;
  for (const p of parts.slice(0, -1)) {
    const next = at[p];
    if (!next || typeof next !== "object" || Array.isArray(next)) at[p] = {};
    at = at[p] as Record<string, unknown>;
  }
  const last = parts[parts.length - 1]!;
  if (value === undefined) delete at[last];
  else at[last] = value;
}

/** A mutation that sets `path` (relative to the object) to each value `arb` gives. */
const put = (path: string, arb: fc.Arbitrary<unknown>, names: string[] = [path]): fc.Arbitrary<Mutation> =>
  arb.map((value) => ({ label: `${path}=${value === undefined ? "(removed)" : short(value)}`, names, apply: (b: Body) => setPath(b, path, structuredClone(value)) }));

const pem = (b64: string) => `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
const names = (n: number, f: (k: number) => unknown) => Array.from({ length: n }, (_, k) => f(k));

function metadataMutations(i: number, maxName: number): fc.Arbitrary<Mutation>[] {
  const rotateValues = fc.oneof(fc.constantFrom("", "r1", "x".repeat(253), "x".repeat(254), "x".repeat(10_000)), weird);
  return [
    fc.constantFrom(maxName, maxName + 1, 63, 64, 253, 254).map((n) => {
      const name = `f${i}-`.padEnd(n, "a");
      return { label: `metadata.name=<${n} chars>`, names: ["metadata.name"], apply: (b: Body) => setPath(b, "metadata.name", name) };
    }),
    fc.oneof(weird.map((w) => `f${i}${w}`), fc.constant(`F${i}`), fc.constant(`f${i}.dotted`), fc.constant(`f${i}_`)).map((name) => ({ label: `metadata.name=${short(name)}`, names: ["metadata.name"], apply: (b: Body) => setPath(b, "metadata.name", name) })),
    fc.constantFrom(1024, 65_536, 200 * 1024, 256 * 1024 - 512, 256 * 1024 + 1).map((n) => ({
      label: `metadata.annotations[fuzz.example/big]=<${n} chars>`,
      names: ["metadata.annotations"],
      apply: (b: Body) => setPath(b, "metadata.annotations", { ...((b.metadata as Body).annotations as object), "fuzz.example/big": "x".repeat(n) }),
    })),
    put("metadata.annotations", weird.map((w) => ({ "fuzz.example/weird": w })), ["metadata.annotations"]),
    put("metadata.annotations", fc.constantFrom("bad key", "ünï/x", "a/b/c", "-x", "x".repeat(64)).map((k) => ({ [k]: "v" })), ["metadata.annotations"]),
    put("metadata.annotations", rotateValues.map((v) => ({ "mtls.imaging.dev/rotate": v })), ["metadata.annotations"]),
    put("metadata.annotations", rotateValues.map((v) => ({ "mtls.imaging.dev/rotate-ca": v })), ["metadata.annotations"]),
    put(
      "metadata.labels",
      fc.constantFrom(
        { "mtls.imaging.dev/owner": "SecureDatabase.base-db" },
        { "app.kubernetes.io/managed-by": "imaging-db-mtls-operator" },
        { x: "bad value!" },
        { x: "a".repeat(64) },
        { "": "x" },
      ),
      ["metadata.labels"],
    ),
  ];
}

function secureDatabaseMutations(i: number, ctx: Ctx): fc.Arbitrary<Mutation>[] {
  const durations = fc.constantFrom("1m", "59s", "0s", "999999h", "1000000h", "1h30m", "90d", "1.5h", "-1h", "", "PT1H", "1h1h", "60000ms", "1m0s0ms", 3600);
  const garbage = (n: number) => `-----BEGIN CERTIFICATE-----${"A".repeat(Math.max(0, n - 52))}-----END CERTIFICATE-----`;
  return [
    ...metadataMutations(i, 48),
    put(
      "spec.host",
      fc.oneof(
        fc.constantFrom("127.0.0.1", "::1", "LOCALHOST", "[::1]", "db:5432", "", " ", "a..b", "-a.b", `${"a".repeat(64)}.x`, `${"a".repeat(61)}.`.repeat(4) + "x", "a".repeat(254), "bücher.example", "xn--bcher-kva.example", "127.1", "1.2.3.4.5", "fe80::1%eth0", "::ffff:127.0.0.1", 123),
        weird,
      ),
    ),
    put("spec.port", fc.constantFrom(0, 1, 65_535, 65_536, -1, "5432", 5432.5, 2 ** 31, null)),
    put(
      "spec.additionalDNSNames",
      fc.oneof(
        fc.constantFrom([], ["a.b", "a.b"], ["*.a.b"], ["*"], ["A.B"], names(33, (k) => `n${k}.x`), ["a".repeat(253)], ["a".repeat(254)], "a.b", {}),
        fc.array(weird, { minLength: 1, maxLength: 3 }),
      ),
    ),
    put("spec.additionalIPAddresses", fc.constantFrom(["::ffff:1.2.3.4"], ["010.1.1.1"], ["1.2.3.4/8"], ["1.2.3.4", "1.2.3.4"], ["255.255.255.255", "::"], [], names(33, (k) => `10.0.0.${k}`))),
    put("spec.ca.duration", durations, ["spec.ca", "spec.serverCertificate.duration"]),
    put("spec.ca.renewBefore", fc.constantFrom("1s", "0s", "999999h", "87600h", "87599h59m59s999ms", "1ms", "720h"), ["spec.ca"]),
    put("spec.ca.renewBeforePercentage", fc.constantFrom(0, 1, 99, 100, "33", 1.5), ["spec.ca"]),
    put(
      "spec.ca.privateKey",
      fc.constantFrom({ algorithm: "RSA", size: 256 }, { algorithm: "ECDSA", size: 384 }, { algorithm: "ECDSA", size: 521 }, { algorithm: "RSA", size: 2048 }, { algorithm: "RSA", size: 4096 }, { algorithm: "EdDSA" }, { size: 4097 }, { algorithm: "ecdsa" }, { algorithm: "RSA" }),
      ["spec.ca"],
    ),
    put(
      "spec.ca",
      fc.constantFrom(
        { mode: "Provided" },
        { mode: "Provided", secretName: "nope-ca" },
        { mode: "Provided", secretName: "foreign-opaque" },
        { mode: "Provided", secretName: "garbage-ca" },
        { mode: "Provided", secretName: "provided-ca" },
        { mode: "Provided", secretName: "base-db-ca" },
        { secretName: "base-db-ca" },
        { secretName: "foreign-tls" },
        { secretName: "Bad_Name" },
        { mode: "provided" },
        "Generated",
        {},
      ),
      ["spec.ca"],
    ),
    put("spec.ca.commonName", fc.oneof(fc.constantFrom("a".repeat(64), "a".repeat(65), "CN=evil,O=x", "x\u0000y", "x\ny"), weird), ["spec.ca"]),
    put("spec.ca.propagationDelay", fc.constantFrom("0s", "999999h", "bad", "1ms", ""), ["spec.ca"]),
    put("spec.ca.rotationPolicy", fc.constantFrom("SameKey", "samekey"), ["spec.ca"]),
    put(
      "spec.serverCertificate.secretName",
      fc.constantFrom("base-db-ca", "base-db-server-tls", "foreign-opaque", "foreign-tls", "provided-ca", `f${i}-ca`, `f${(i + 1) % COUNT}-server-tls`, "base-conn-client-tls", "Bad"),
    ),
    put("spec.serverCertificate.duration", durations, ["spec.serverCertificate"]),
    put("spec.serverCertificate.renewBefore", fc.constantFrom("1s", "2160h", "2159h59m59s", "0s"), ["spec.serverCertificate"]),
    put("spec.serverCertificate.renewBeforePercentage", fc.constantFrom(1, 99, 0, "10"), ["spec.serverCertificate"]),
    put("spec.serverCertificate.privateKey", fc.constantFrom({ algorithm: "RSA", size: 2048 }, { algorithm: "ECDSA", size: 2048 }, { algorithm: "RSA", size: 1024 }, { algorithm: "ECDSA", size: 384 }), ["spec.serverCertificate"]),
    fc.constantFrom({ postgresqlConfKey: ".." }, { postgresqlConfKey: "." }, { hbaConfKey: "postgresql.conf" }, { postgresqlConfKey: "a/b" }, { hbaConfKey: "x".repeat(254) }, { postgresqlConfKey: "custom.conf" }).map((extra) => ({
      label: `spec.postgres+=${short(extra)}`,
      names: ["spec.postgres"],
      apply: (b: Body) => Object.assign(((b.spec as Body).postgres ??= {}) as Body, extra),
    })),
    put("spec.postgres.certificateDirectory", fc.constantFrom("/", "/a/../b", "/a/./b", "relative", "/etc/postgresql/tls/", `/${"a".repeat(511)}`, `/${"a".repeat(512)}`, "/with space", "/ü"), ["spec.postgres"]),
    put("spec.postgres.minTLSVersion", fc.constantFrom("TLSv1.1", "TLSv1.3"), ["spec.postgres"]),
    put(
      "spec.postgres.hba.rules",
      fc.oneof(
        fc.constantFrom(
          [],
          [{}],
          [{ users: ["a b"] }],
          [{ users: ["'x'"] }],
          [{ users: ["+grp"] }],
          [{ users: ["@file"] }],
          [{ users: ["app"] }],
          [{ databases: ["/re"] }],
          [{ addresses: ["all"] }],
          [{ addresses: ["samehost"] }],
          [{ addresses: ["0.0.0.0/33"] }],
          [{ addresses: ["10.0.0.1/8"] }],
          [{ users: ["x", "x"] }],
          [{ clientCertificate: "verify-ca" }],
          names(33, () => ({})),
          {},
        ),
        fc.array(fc.record({ users: fc.array(weird, { minLength: 1, maxLength: 2 }) }), { minLength: 1, maxLength: 2 }),
      ),
      ["spec.postgres"],
    ),
    put(
      "spec.workloadRef",
      fc.constantFrom({ kind: "StatefulSet", name: "pg-sts" }, { kind: "StatefulSet", name: "pg-sts", container: "nope" }, { kind: "Deployment", name: "cast-app" }, { kind: "Deployment", name: "nope" }, { kind: "DaemonSet", name: "x" }, { kind: "StatefulSet" }, { name: "pg-sts" }),
      ["spec.workloadRef"],
    ),
    put("spec.reload", fc.constantFrom({ strategy: "RolloutRestart" }, { strategy: "SQL", adminUser: "a b" }, { adminUser: "+x" }, { strategy: "None", adminUser: "app" }, { strategy: "None", database: "a/b" }, { database: "@x" }, { strategy: "sql" }), ["spec.reload", "spec.postgres.hba"]),
    put(
      "spec.verification",
      fc.constantFrom({ interval: "9s" }, { enabled: false, interval: "10s" }, { enabled: false, interval: "24h" }, { interval: "24h1ms" }, { endpoint: "[::1]:1" }, { endpoint: "host:0" }, { endpoint: "host:99999" }, { endpoint: "HOST:5432" }, { endpoint: "a:b:c" }, { enabled: "false" }, { endpoint: "[::ffff:1.2.3.4]:1" }),
      ["spec.verification"],
    ),
    put("spec.allowedNamespaces", fc.constantFrom(["*"], ["a", "a"], names(65, (k) => `ns-${k}`), [ctx.otherNs], ["Bad"], []), ["spec.allowedNamespaces"]),
    put(
      "spec.trust.allowlist",
      fc.constantFrom(
        [{ name: "garbage", certificate: garbage(200) }],
        [{ name: "two", certificate: ctx.validCertPem + ctx.otherCertPem }],
        [{ name: "valid", certificate: ctx.validCertPem }],
        [{ name: "huge", certificate: garbage(16_384) }],
        [{ name: "toohuge", certificate: garbage(16_385) }],
        [{ name: "dup", certificate: ctx.validCertPem }, { name: "dup", certificate: ctx.otherCertPem }],
        names(33, (k) => ({ name: `c${k}`, certificate: ctx.validCertPem })),
        [{ name: "a", certificate: ctx.validCertPem }, { name: "b", certificate: ctx.validCertPem }],
        [{ name: "trailing", certificate: `${ctx.validCertPem}garbage after the end` }],
        [{ name: "b64", certificate: pem("!!!not base64!!!") }],
        [{ name: "Bad Name", certificate: ctx.validCertPem }],
        [{ name: "nocert" }],
      ),
      ["spec.trust.allowlist"],
    ),
    put(
      "spec.trust.revocations",
      fc.constantFrom(
        [{ serialNumber: "0a1b2c3d4e5f" }],
        [{ sha256Fingerprint: "ab".repeat(32) }],
        [{ connectionName: "nobody" }],
        [{ connectionName: "base-conn" }],
        [{ connectionName: `f${(i + 1) % COUNT}`, connectionNamespace: ctx.otherNs }],
        [{ connectionNamespace: "x" }],
        [{ serialNumber: "01", sha256Fingerprint: "ab".repeat(32) }],
        [{ serialNumber: "01" }, { serialNumber: "01" }],
        names(1024, (k) => ({ serialNumber: (k + 1).toString(16) })),
        names(1025, (k) => ({ serialNumber: (k + 1).toString(16) })),
        [{ serialNumber: "zz" }],
        [{ serialNumber: "00" }],
        [{ serialNumber: "01", reason: "bogus" }],
        [{}],
      ),
      ["spec.trust.revocations"],
    ),
    put("spec.bogusField", fc.constantFrom(1, "x", { nested: true }), ["spec.bogusField"]),
    put("spec.postgres", fc.constantFrom("pg", [], null), ["spec.postgres"]),
    put("spec.trust", fc.constantFrom([], "x"), ["spec.trust"]),
    put("spec.host", fc.constant(undefined)),
    put("spec.postgres.configMapName", fc.constantFrom(undefined, "", "Bad", "x".repeat(254)), ["spec.postgres"]),
  ];
}

function imagingConnectionMutations(i: number, ctx: Ctx): fc.Arbitrary<Mutation>[] {
  return [
    ...metadataMutations(i, 45),
    put(
      "spec.databaseRef",
      fc.constantFrom(
        { name: "base-db" },
        { name: "nope" },
        { name: "base-db", namespace: ctx.otherNs },
        { name: "x", namespace: ctx.otherNs },
        { name: "base-db", namespace: ctx.ns },
        { name: "Bad" },
        {},
        { name: "base-db", namespace: "Bad" },
        { name: `f${(i + 1) % COUNT}` },
        "base-db",
      ),
    ),
    put(
      "spec.user",
      fc.oneof(
        fc.constantFrom("a b", "'x'", '"x"', "x#y", "x,y", "x\\y", "+grp", "@x", "/x", "all", "postgres", "x".repeat(63), "x".repeat(64), "é".repeat(31), "é".repeat(32), "🦄".repeat(15), "🦄".repeat(16), "\u202Eadmin", "ad\u200Bmin", "\u0000", "x\u0000", 42, ""),
        weird,
      ),
    ),
    put("spec.database", fc.oneof(fc.constantFrom("a/b", "db?x", "a=b", "ünï", "all", "x".repeat(64)), weird)),
    put("spec.sslMode", fc.constantFrom("require", "verify-ca", "disable")),
    put(
      "spec.secretName",
      fc.constantFrom("foreign-opaque", "foreign-tls", "base-db-ca", "base-db-server-tls", "base-conn-client-tls", "provided-ca", "shared-client-tls", `f${(i + 2) % COUNT}-client-tls`, `f${(i + 1) % COUNT}-server-tls`, `f${(i + 1) % COUNT}-ca`, "Bad"),
    ),
    put(
      "spec.certificate",
      fc.constantFrom({ duration: "1m" }, { duration: "59s" }, { duration: "999999h" }, { duration: "1m", renewBeforePercentage: 1 }, { renewBefore: "2160h" }, { renewBefore: "1s" }, { privateKey: { algorithm: "RSA", size: 2048 } }, { privateKey: { algorithm: "RSA", size: 384 } }, { renewBeforePercentage: "50" }, "x"),
    ),
    put(
      "spec.workloads",
      fc.constantFrom(
        [],
        [{ kind: "Deployment", name: "cast-app" }],
        [{ kind: "Deployment", name: "cast-app" }, { kind: "Deployment", name: "cast-app" }],
        [{ kind: "StatefulSet", name: "analysis-node", containers: ["nope"] }],
        [{ kind: "Deployment", name: "cast-app", containers: [] }],
        [{ kind: "Deployment", name: "cast-app", containers: ["app", "app"] }],
        [{ kind: "DaemonSet", name: "x" }],
        [{ kind: "Deployment", name: "cast-app", mountPath: "/etc/cast-imaging/mtls-ini" }],
        [{ kind: "Deployment", name: "cast-app", mountPath: "/shared" }],
        [{ kind: "Deployment", name: "foreign-vol" }],
        [{ kind: "StatefulSet", name: "analysis-node" }],
        [{ kind: "Deployment", name: "nope" }],
        names(33, (k) => ({ kind: "Deployment", name: `w${k}` })),
        [{ kind: "Deployment", name: "cast-app", mountPath: "/a/../b" }],
        [{ kind: "StatefulSet", name: "pg-sts" }],
        "cast-app",
      ),
    ),
    put("spec.libpqEnv", fc.constantFrom(true, "true", 1)),
    put("spec.verification", fc.constantFrom({ enabled: true }, { enabled: "yes" }, {})),
    put("spec.bogusField", fc.constantFrom(1, "x", { nested: true })),
    put("spec.user", fc.constant(undefined)),
    put("spec.databaseRef", fc.constant(undefined)),
  ];
}

function fuzzCases(ctx: Ctx): FuzzCase[] {
  // Drawn in two steps (kind and base first, then mutations for that index) so each case stays reproducible from
  // the seed alone.
  const shapes = fc.sample(
    fc.record({
      kind: fc.constantFrom<Kind>("SecureDatabase", "ImagingConnection"),
      strict: fc.boolean(),
      configMap: fc.constantFrom("own", "own", "own", "own", "missing", "missing", "missing", "shared", "weird"),
      weird: fc.integer({ min: 0, max: 6 }),
      reload: fc.constantFrom("None", "None", "None", "None", "None", "None", "SQL", "SQL", "RolloutRestart"),
      verify: fc.constantFrom(false, false, false, true),
      workloadRef: fc.constantFrom("none", "none", "none", "none", "none", "none", "pg-sts", "pg-sts", "cast-app", "missing"),
      database: fc.constantFrom("base-db", "base-db", "base-db", "base-db", "base-db", "fuzz", "fuzz", "fuzz", "missing"),
      peer: fc.integer({ min: 0, max: COUNT - 1 }),
      workloads: fc.constantFrom("none", "none", "none", "cast-app", "analysis-node"),
      mutationCount: fc.constantFrom(0, 1, 1, 1, 2, 2, 3),
    }),
    { seed: SEED, numRuns: COUNT },
  );
  return shapes.map((shape, index) => {
    const name = `f${index}`;
    const kind = shape.kind;
    let body: Body;
    let configMap: string | undefined;
    if (kind === "SecureDatabase") {
      configMap = shape.configMap === "own" ? `pg-obj-${index}` : undefined;
      const cmName = shape.configMap === "own" ? `pg-obj-${index}` : shape.configMap === "missing" ? `pg-missing-${index}` : shape.configMap === "shared" ? "pg-shared" : `pg-weird-${shape.weird}`;
      const workloadRef = shape.workloadRef === "pg-sts" ? { kind: "StatefulSet", name: "pg-sts" } : shape.workloadRef === "cast-app" ? { kind: "Deployment", name: "cast-app" } : shape.workloadRef === "missing" ? { kind: "StatefulSet", name: `missing-${index}` } : undefined;
      body = {
        apiVersion: API,
        kind,
        metadata: { name, namespace: ctx.ns },
        spec: {
          host: `${name}.fuzz.svc`,
          port: ctx.closedPort,
          postgres: { configMapName: cmName },
          reload: { strategy: shape.reload === "RolloutRestart" && !workloadRef ? "None" : shape.reload },
          verification: shape.verify ? { endpoint: `127.0.0.1:${ctx.closedPort}` } : { enabled: false },
          ...(workloadRef ? { workloadRef } : {}),
        },
      };
    } else {
      const db = shape.database === "base-db" ? "base-db" : shape.database === "fuzz" ? `f${shape.peer}` : `missing-${index}`;
      body = {
        apiVersion: API,
        kind,
        metadata: { name, namespace: ctx.ns },
        spec: {
          databaseRef: { name: db },
          user: `u${index}`,
          verification: { enabled: shape.verify },
          ...(shape.workloads === "none" ? {} : { workloads: [{ kind: shape.workloads === "cast-app" ? "Deployment" : "StatefulSet", name: shape.workloads }] }),
        },
      };
    }
    const catalogue = kind === "SecureDatabase" ? secureDatabaseMutations(index, ctx) : imagingConnectionMutations(index, ctx);
    const mutations = shape.mutationCount === 0 ? [] : fc.sample(fc.array(fc.oneof(...catalogue), { minLength: shape.mutationCount, maxLength: shape.mutationCount }), { seed: SEED + 7919 * (index + 1), numRuns: 1 })[0]!;
    for (const m of mutations) m.apply(body);
    const finalName = (body.metadata as { name?: unknown }).name;
    return { index, kind, name: typeof finalName === "string" ? finalName : name, body, mutations, strict: shape.strict, ...(configMap ? { configMap } : {}) };
  });
}

// ------------------------------------------------------------------------------------------------ the test

const describeCase = (c: FuzzCase): string => `#${c.index} ${c.kind} ${short(c.name)}${c.strict ? " (fieldValidation=Strict)" : ""}: ${c.mutations.map((m) => m.label).join("; ") || "no mutation"}`;
const stripIndexes = (s: string): string => s.replace(/\[\d+\]/g, "");

/** Why an object's status is not (yet) a clear answer for its current generation, or undefined. */
function unclear(o: CustomObject): string | undefined {
  const generation = o.metadata.generation;
  if (o.status?.observedGeneration !== generation) return `status.observedGeneration ${o.status?.observedGeneration} != metadata.generation ${generation}`;
  const ready = condition(o, "Ready");
  if (!ready) return "no Ready condition";
  if (!["True", "False", "Unknown"].includes(ready.status)) return `Ready status ${ready.status}`;
  if (!CAMEL_CASE.test(ready.reason)) return `Ready reason ${JSON.stringify(ready.reason)} is not CamelCase`;
  if (!ready.message?.trim()) return "Ready message is empty";
  if (ready.observedGeneration !== generation) return `Ready.observedGeneration ${ready.observedGeneration} != ${generation}`;
  for (const c of o.status?.conditions ?? []) if (!c.message?.trim() || !CAMEL_CASE.test(c.reason)) return `condition ${c.type} has reason ${JSON.stringify(c.reason)} / message ${JSON.stringify(c.message)}`;
  return undefined;
}

/** The heap after forcing full collections (gc is exposed at runtime: mocha's --expose-gc cannot be set per file). */
async function settledHeap(): Promise<number> {
  v8.setFlagsFromString("--expose-gc");
  const gc = vm.runInNewContext("gc") as () => void;
  for (let k = 0; k < 4; k++) {
    gc();
    await new Promise((r) => setTimeout(r, 100));
  }
  return process.memoryUsage().heapUsed;
}

const MiB = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

describe("Chaos: 500 fuzzed SecureDatabases and ImagingConnections against the real API server (seeded)", function () {
  this.timeout(300_000);
  let ns: string;
  let admin: RestClient;
  let operator: Operator;
  let cases: FuzzCase[];
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => rejections.push(reason);
  /** Last error the operator logged per resource ("SecureDatabase/f12"), and how many. */
  const operatorErrors = new Map<string, { count: number; last: string }>();
  const originalConfigMaps = new Map<string, Record<string, string>>();
  const weirdConfigMaps = new Set<string>();
  const untouchable = new Map<string, string>();
  const ledger = new CAKeyLedger();
  const admissions: Admission[][] = [];
  const heap: Record<string, number> = {};
  const t0 = Date.now();

  const apply = async (c: FuzzCase): Promise<Admission> => {
    const type = RESOURCES[c.kind];
    try {
      await admin.request("POST", resourcePath(type, { namespace: ns }), { body: c.body, query: { fieldValidation: c.strict ? "Strict" : "Warn", fieldManager: "chaos-fuzz" } });
      return { accepted: true };
    } catch (err) {
      if (err instanceof ApiError) return { accepted: false, status: err.status, message: err.message };
      throw err;
    }
  };

  const inBatches = async <T>(items: readonly T[], width: number, fn: (item: T) => Promise<void>): Promise<void> => {
    let next = 0;
    await Promise.all(Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }));
  };

  const state = (): Promise<ClusterState> => readState(admin, ns);
  const operatorIdle = (): boolean => [operator.secureDatabaseQueue, operator.imagingConnectionQueue, operator.workloadQueue].every((q) => q.depth === 0 && q.inFlight === 0);
  /** Just the custom objects: cheap enough to poll every second while the operator works. */
  const customObjects = async (): Promise<Record<Kind, CustomObject[]>> => {
    const [SecureDatabase, ImagingConnection] = await Promise.all([admin.list<CustomObject>(RESOURCES.SecureDatabase, ns), admin.list<CustomObject>(RESOURCES.ImagingConnection, ns)]);
    return { SecureDatabase: SecureDatabase.items, ImagingConnection: ImagingConnection.items };
  };
  /** Creates a fixture as the test (RestClient.create would write as the operator's field manager). */
  const create = (type: (typeof RESOURCES)[keyof typeof RESOURCES], body: object) => admin.request("POST", resourcePath(type, { namespace: ns }), { body, query: { fieldManager: "chaos-fuzz" } });

  /** Polls until every accepted case has a clear status, or nothing changed for `stallMs`; what is left unclear. */
  const converge = async (accepted: FuzzCase[], deadlineMs: number, stallMs: number): Promise<Map<FuzzCase, string>> => {
    const start = Date.now();
    let lastKey = "";
    let lastChange = Date.now();
    for (;;) {
      const byKind = await customObjects();
      const open = new Map<FuzzCase, string>();
      for (const c of accepted) {
        const o = byKind[c.kind].find((x) => x.metadata.name === c.name);
        const why = o ? unclear(o) : "the object is gone";
        if (why) open.set(c, why);
      }
      const key = [...open.entries()].map(([c, w]) => `${c.index}:${w}`).join("|");
      if (key !== lastKey) {
        lastKey = key;
        lastChange = Date.now();
      }
      // Stalled means: nothing changed for stallMs and the operator has nothing queued or running.
      if (open.size === 0 || (Date.now() - lastChange > stallMs && operatorIdle()) || Date.now() - start > deadlineMs) return open;
      await new Promise((r) => setTimeout(r, 1000));
    }
  };

  /** Deletes the cases' objects and waits for them to be gone; those still there (with finalizers) after all. */
  const deleteAndWait = async (list: FuzzCase[], deadlineMs: number): Promise<string[]> => {
    await inBatches(list, 16, async (c) => admin.delete(RESOURCES[c.kind], { namespace: ns, name: c.name }));
    const start = Date.now();
    let lastKey = "";
    let lastChange = Date.now();
    for (;;) {
      const byKind = await customObjects();
      const stuck: string[] = [];
      for (const c of list) {
        const o = byKind[c.kind].find((x) => x.metadata.name === c.name);
        if (o) stuck.push(`${describeCase(c)} still exists (deletionTimestamp ${o.metadata.deletionTimestamp}, finalizers ${JSON.stringify(o.metadata.finalizers)}, Ready ${short(condition(o, "Ready")?.reason)}); operator: ${operatorErrors.get(`${c.kind}/${c.name}`)?.last ?? "no error logged"}`);
      }
      if (stuck.join() !== lastKey) {
        lastKey = stuck.join();
        lastChange = Date.now();
      }
      if (stuck.length === 0 || Date.now() - start > deadlineMs || (Date.now() - lastChange > 20_000 && operatorIdle())) return stuck;
      await new Promise((r) => setTimeout(r, 1000));
    }
  };

  /** The test control plane runs no garbage collector: delete what the owner references of deleted objects hold. */
  const collectGarbage = async (): Promise<number> => {
    const orphans = await garbage(admin, await state());
    await inBatches(orphans, 16, async (x) => admin.delete(RESOURCES.Secret, { namespace: ns, name: x.metadata.name }));
    return orphans.length;
  };

  /** Until the operator has nothing to do (its queues idle twice, a second apart). */
  const quiet = async (): Promise<void> => {
    for (let k = 0; k < 2; k++) {
      await new Promise((r) => setTimeout(r, 1000));
      await Promise.all([operator.secureDatabaseQueue.idle(), operator.imagingConnectionQueue.idle(), operator.workloadQueue.idle()]);
    }
  };

  /** Untouchable Secrets unchanged and the base database's CA key never replaced. */
  const safety = async (): Promise<string[]> => {
    const s = await state();
    ledger.observeState(s);
    const out = [...ledger.violations];
    for (const [name, digest] of untouchable) {
      const now = secretDigest(s.secrets.find((x) => x.metadata.name === name));
      if (now !== digest) {
        const x = s.secrets.find((y) => y.metadata.name === name);
        out.push(`Secret ${name}, which no fuzzed object owns, changed (digest ${digest} → ${now}; labels now ${JSON.stringify(x?.metadata.labels)}, keys ${Object.keys(x?.data ?? {}).join(",")})`);
      }
    }
    return out;
  };

  /** A violation naming an object, with the fuzz case behind it and its Ready condition now. */
  const explain = (violation: string, s: ClusterState): string => {
    const m = /^(SecureDatabase|ImagingConnection) (\S+) /.exec(violation);
    const c = m && cases.find((x) => x.kind === m[1] && x.name === m[2]);
    if (!c) return violation;
    const o = (c.kind === "SecureDatabase" ? s.secureDatabases : s.imagingConnections).find((x) => x.metadata.name === c.name);
    const ready = condition(o, "Ready");
    return `${violation} [${describeCase(c)}; now Ready=${ready?.status} ${ready?.reason}: ${short(ready?.message)}]`;
  };

  const operatorErrorsFor = (list: string[]): string[] => list.map((r) => `${r}: ${operatorErrors.get(r)?.count ?? 0} reconcile error(s), last: ${operatorErrors.get(r)?.last ?? "-"}`);

  const runBatch = async (batch: number): Promise<{ accepted: FuzzCase[]; holding: Set<FuzzCase>; unclear: string[]; misnamed: string[]; reasons: Map<string, number> }> => {
    // Per-object PostgreSQL ConfigMaps as the user had them (back to these bytes after each deletion).
    await inBatches(cases.filter((c) => c.configMap), 16, async (c) => {
      const existing = await admin.getOptional<{ data?: Record<string, string> }>(RESOURCES.ConfigMap, { namespace: ns, name: c.configMap! });
      if (!existing) await create(RESOURCES.ConfigMap, { metadata: { name: c.configMap }, data: originalConfigMaps.get(c.configMap!) });
    });
    const results: Admission[] = new Array(cases.length);
    const tApply = Date.now();
    await inBatches(cases, 8, async (c) => {
      results[c.index] = await apply(c);
    });
    admissions[batch] = results;
    const accepted = cases.filter((c) => results[c.index]!.accepted);
    const misnamed: string[] = [];
    const byField = new Map<string, { count: number; example: string }>();
    for (const c of cases) {
      const r = results[c.index]!;
      if (r.accepted) continue;
      const message = stripIndexes(r.message ?? "");
      const named = c.mutations.flatMap((m) => m.names).find((n) => message.includes(n));
      if (!named) misnamed.push(`${describeCase(c)} → ${r.status} ${short(r.message?.slice(0, 400))}`);
      const field = named ?? "(no mutated field named)";
      const entry = byField.get(field) ?? { count: 0, example: (r.message ?? "").replace(/^POST \S+: /, "").slice(0, 150) };
      entry.count++;
      byField.set(field, entry);
    }
    const appliedMs = Date.now() - tApply;
    const open = await converge(accepted, 150_000, 12_000);
    const s = await state();
    const reasons = new Map<string, number>();
    for (const c of accepted) {
      const o = (c.kind === "SecureDatabase" ? s.secureDatabases : s.imagingConnections).find((x) => x.metadata.name === c.name);
      const ready = condition(o, "Ready");
      const k = `${c.kind} Ready=${ready?.status ?? "-"} ${ready?.reason ?? "(no status)"}`;
      reasons.set(k, (reasons.get(k) ?? 0) + 1);
    }
    console.log(`      batch ${batch + 1}: applied ${cases.length} in ${appliedMs} ms: ${cases.length - accepted.length} rejected at admission, ${accepted.length} accepted (${accepted.filter((c) => c.kind === "SecureDatabase").length} SecureDatabases, ${accepted.filter((c) => c.kind === "ImagingConnection").length} ImagingConnections); statuses settled ${Date.now() - tApply} ms after the first apply`);
    if (batch === 0) {
      console.log("        refused at admission, by the mutated field the API server named (one example message each):");
      for (const [field, e] of [...byField.entries()].sort((a, b) => b[1].count - a[1].count)) console.log(`        ${String(e.count).padStart(3)} × ${field}: ${JSON.stringify(e.example)}`);
      console.log("        reconciled, by Ready condition:");
    }
    for (const [k, n] of [...reasons.entries()].sort()) console.log(`        ${String(n).padStart(3)} × ${k}`);
    const unclearList = [...open.entries()].map(([c, why]) => `${describeCase(c)}: ${why}; operator: ${operatorErrors.get(`${c.kind}/${c.name}`)?.last ?? "no error logged"}`);
    // What works or holds a mount: these survive the first deletion wave, which must not disturb them.
    const holding = new Set(
      accepted.filter((c) => {
        const o = (c.kind === "SecureDatabase" ? s.secureDatabases : s.imagingConnections).find((x) => x.metadata.name === c.name);
        const workloads = Array.isArray(o?.status?.workloads) ? (o.status.workloads as { state?: string }[]) : [];
        return condition(o, "Ready")?.status === "True" || condition(o, "WorkloadPatched")?.status === "True" || workloads.some((w) => w.state === "Patched");
      }),
    );
    return { accepted, holding, unclear: unclearList, misnamed, reasons };
  };

  let batch1: Awaited<ReturnType<typeof runBatch>>;

  before(async function () {
    this.timeout(120_000);
    process.on("unhandledRejection", onRejection);
    const cp = controlPlane();
    ns = await cp.createNamespace("fuzz");
    const otherNs = await cp.createNamespace("fuzz-other");
    admin = new RestClient(cp.kubeConfig);
    const closedPort = await freePort();
    const [valid, other, provided] = await Promise.all([
      generateCA({ commonName: "allowlisted CA", duration: 24 * 3600_000, now: new Date() }),
      generateCA({ commonName: "another allowlisted CA", duration: 24 * 3600_000, now: new Date() }),
      generateCA({ commonName: "brought CA", duration: 24 * 3600_000, now: new Date() }),
    ]);
    const ctx: Ctx = { ns, otherNs, closedPort, validCertPem: valid.certPem, otherCertPem: other.certPem };
    const tGen = Date.now();
    cases = fuzzCases(ctx);
    console.log(`      generated ${cases.length} cases from seed ${SEED} in ${Date.now() - tGen} ms (${cases.filter((c) => c.kind === "SecureDatabase").length} SecureDatabases, ${cases.filter((c) => c.mutations.length === 0).length} unmutated)`);

    // What the objects refer to: ConfigMaps (plain, shared, adversarial), Secrets that are not theirs, workloads.
    const conf = "listen_addresses = '*'\nmax_connections = 100\n";
    const hba = "local all all trust\nhost all all 0.0.0.0/0 scram-sha-256\n";
    for (const c of cases) if (c.configMap) originalConfigMaps.set(c.configMap, { "postgresql.conf": conf, "pg_hba.conf": hba });
    const BEGIN = "# BEGIN mtls.imaging.dev managed block (do not edit)";
    const END = "# END mtls.imaging.dev managed block";
    const weirdData: Record<string, string>[] = [
      { "postgresql.conf": `${conf}${BEGIN}\nssl = off\n${END}\n`, "pg_hba.conf": hba },
      { "postgresql.conf": `${conf}${BEGIN}\nssl = on\n${END}\n${BEGIN}\nssl = off\n${END}\n`, "pg_hba.conf": hba },
      { "postgresql.conf": `${conf}${BEGIN}\nssl = on\n`, "pg_hba.conf": `${END}\n${hba}` },
      { "postgresql.conf": conf.replace(/\n/g, "\r\n"), "pg_hba.conf": `\uFEFF${hba}\u0000\n` },
      { "postgresql.conf": `${conf}${"# padding\n".repeat(90_000)}`, "pg_hba.conf": hba },
      {},
      { "postgresql.conf": "include 'other.conf'\nssl = on # mine\n\u202Eevil = 1\n", "pg_hba.conf": "hostssl all all 0.0.0.0/0 trust\n" },
    ];
    for (const [k, data] of weirdData.entries()) {
      await create(RESOURCES.ConfigMap, { metadata: { name: `pg-weird-${k}` }, data });
      weirdConfigMaps.add(`pg-weird-${k}`);
    }
    await create(RESOURCES.ConfigMap, { metadata: { name: "pg-shared" }, data: { "postgresql.conf": conf, "pg_hba.conf": hba } });
    await create(RESOURCES.ConfigMap, { metadata: { name: "pg-control" }, data: { "postgresql.conf": conf, "pg_hba.conf": hba } });
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    await create(RESOURCES.Secret, { metadata: { name: "foreign-opaque" }, data: { hello: b64("world") } });
    await create(RESOURCES.Secret, { metadata: { name: "foreign-tls" }, type: "kubernetes.io/tls", data: { "tls.crt": b64(other.certPem), "tls.key": b64(other.keyPkcs8Pem) } });
    await create(RESOURCES.Secret, { metadata: { name: "provided-ca" }, type: "kubernetes.io/tls", data: { "tls.crt": b64(provided.certPem), "tls.key": b64(provided.keyPkcs8Pem) } });
    await create(RESOURCES.Secret, { metadata: { name: "garbage-ca" }, type: "kubernetes.io/tls", data: { "tls.crt": b64("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"), "tls.key": b64("\u0000garbage") } });
    const template = (app: string, containers: object[], volumes: object[] = []) => ({ metadata: { labels: { app } }, spec: { containers, volumes } });
    await create(RESOURCES.Deployment, { metadata: { name: "cast-app" }, spec: { selector: { matchLabels: { app: "cast-app" } }, template: template("cast-app", [{ name: "app", image: "cast/imaging-services" }, { name: "sidecar", image: "busybox" }]) } });
    await create(RESOURCES.Deployment, {
      metadata: { name: "foreign-vol" },
      spec: {
        selector: { matchLabels: { app: "foreign-vol" } },
        template: template("foreign-vol", [{ name: "app", image: "x", env: [{ name: "PGSSLMODE", value: "disable" }, { name: "CASTCONNECTIONEXTRAPARAMETERS", value: "/mine.ini" }], volumeMounts: [{ name: "cast-imaging-mtls-ini", mountPath: "/etc/cast-imaging/mtls-ini" }] }], [{ name: "cast-imaging-mtls-ini", configMap: { name: "theirs" } }]),
      },
    });
    await create(RESOURCES.StatefulSet, { metadata: { name: "analysis-node" }, spec: { serviceName: "analysis-node", selector: { matchLabels: { app: "analysis-node" } }, template: template("analysis-node", [{ name: "analysis-node", image: "cast/analysis-node" }]) } });
    await create(RESOURCES.StatefulSet, { metadata: { name: "pg-sts" }, spec: { serviceName: "pg-sts", selector: { matchLabels: { app: "pg-sts" } }, template: template("pg-sts", [{ name: "postgres", image: "postgres:15" }]) } });

    // The operator in this process, as startOperator runs it, with its error lines kept for the report.
    const kubeConfig = new k8s.KubeConfig();
    kubeConfig.loadFromFile(cp.operatorKubeconfigPath);
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString("utf8").split("\n")) {
          if (!line.trim()) continue;
          try {
            const entry = JSON.parse(line) as { level?: string; message?: string; resource?: string; error?: string; reason?: string };
            if (entry.level !== "error" || !entry.resource) continue;
            const e = operatorErrors.get(entry.resource) ?? { count: 0, last: "" };
            e.count++;
            e.last = `${entry.message}: ${(entry.error ?? entry.reason ?? "").slice(0, 600)}`;
            operatorErrors.set(entry.resource, e);
          } catch {
            // not one of the operator's JSON lines
          }
        }
        done();
      },
    });
    const log = winston.createLogger({ level: "error", format: winston.format.json(), transports: [new winston.transports.Stream({ stream: sink })] });
    operator = new Operator({ kubeConfig, log, namespaces: [ns], concurrency: 2 });
    await operator.start();

    // A database and a connection that are not fuzzed: their CA key and mounts must survive everything.
    await create(RESOURCES.SecureDatabase, {
      apiVersion: API,
      kind: "SecureDatabase",
      metadata: { name: "base-db" },
      spec: { host: "127.0.0.1", port: closedPort, postgres: { configMapName: "pg-shared" }, reload: { strategy: "None" }, verification: { enabled: false }, allowedNamespaces: [otherNs] },
    });
    await create(RESOURCES.ImagingConnection, { apiVersion: API, kind: "ImagingConnection", metadata: { name: "base-conn" }, spec: { databaseRef: { name: "base-db" }, user: "base", verification: { enabled: false }, workloads: [{ kind: "Deployment", name: "cast-app" }] } });
    await waitFor("base-db and base-conn Ready", async () => {
      const s = await state();
      return [...s.secureDatabases, ...s.imagingConnections].every((o) => condition(o, "Ready")?.status === "True") && s.imagingConnections.length === 1;
    }, 60_000, 200);
    const s = await state();
    ledger.track(`${ns}/base-db-ca`);
    ledger.observeState(s);
    for (const name of ["foreign-opaque", "foreign-tls", "provided-ca", "garbage-ca", "base-db-ca", "base-db-server-tls", "base-db-operator-client-tls", "base-conn-client-tls"]) {
      untouchable.set(name, secretDigest(s.secrets.find((x) => x.metadata.name === name)));
    }
    heap.start = await settledHeap();
  });

  after(async () => {
    process.off("unhandledRejection", onRejection);
    await operator?.stop();
    console.log(`      chaos-fuzz total ${Math.round((Date.now() - t0) / 1000)} s`);
  });

  it("batch 1: every object is refused at admission naming the field, or ends with a clear Ready condition for its generation", async () => {
    batch1 = await runBatch(0);
    const retrying = { SecureDatabase: operator.secureDatabaseQueue.retrying, ImagingConnection: operator.imagingConnectionQueue.retrying, Workload: operator.workloadQueue.retrying };
    console.log(`      keys failing in the operator's queues: ${JSON.stringify(retrying)}`);
    const failing = [...operatorErrors.keys()].filter((r) => batch1.accepted.some((c) => `${c.kind}/${c.name}` === r));
    expect(batch1.misnamed, `refusals that do not name a mutated field (seed ${SEED}):\n${batch1.misnamed.join("\n")}`).to.deep.equal([]);
    expect(batch1.unclear, `objects without a clear status for their generation (seed ${SEED}):\n${batch1.unclear.join("\n")}`).to.deep.equal([]);
    expect(retrying, `reconciles still failing (seed ${SEED}):\n${operatorErrorsFor(failing).join("\n")}`).to.deep.equal({ SecureDatabase: 0, ImagingConnection: 0, Workload: 0 });
  });

  it("batch 1: nothing the fuzzed objects do not own is touched; no orphan, no duplicated managed block; status matches the mounts", async () => {
    const s = await state();
    const violations = [...(await safety()), ...orphanedSecrets(s), ...orphanedMounts(s), ...duplicatedManagedBlocks(s, weirdConfigMaps), ...mountsMatchStatus(s)].map((v) => explain(v, s));
    expect(violations, `seed ${SEED}:\n${violations.join("\n")}`).to.deep.equal([]);
  });

  it("batch 1: deleting in two waves (first the objects that neither work nor hold a mount, then the others) lets every object go, leaves the survivors' mounts in place and their statuses true, and restores each ConfigMap byte for byte", async () => {
    const accepted = batch1.accepted;
    const wave1 = accepted.filter((c) => !batch1.holding.has(c));
    const wave2 = accepted.filter((c) => batch1.holding.has(c));
    const stuck1 = await deleteAndWait(wave1, 90_000);
    await quiet();
    const mid = await state();
    // Deleting a refused or broken object must not disturb a working one, and survivors' statuses must say what is so.
    const afterWave1 = [...mountsMatchStatus(mid), ...orphanedMounts(mid), ...(await safety())];
    for (const c of wave2) {
      const o = (c.kind === "SecureDatabase" ? mid.secureDatabases : mid.imagingConnections).find((x) => x.metadata.name === c.name);
      const why = o ? unclear(o) : "gone";
      if (why) afterWave1.push(`${describeCase(c)}: ${why}`);
    }
    const stuck2 = await deleteAndWait(wave2, 90_000);
    const collected = await collectGarbage();
    const s = await state();
    const restored: string[] = [];
    for (const [name, data] of originalConfigMaps) {
      const cm = s.configMaps.find((x) => x.metadata.name === name);
      if (!cm) restored.push(`ConfigMap ${name} is gone`);
      else if (JSON.stringify(Object.entries(cm.data ?? {}).sort()) !== JSON.stringify(Object.entries(data).sort())) restored.push(`ConfigMap ${name} was not restored: ${short(cm.data)}`);
      else if (cm.metadata.labels?.["mtls.imaging.dev/owner"]) restored.push(`ConfigMap ${name} still claimed by ${cm.metadata.labels["mtls.imaging.dev/owner"]}`);
    }
    console.log(`      deleted ${wave1.length} + ${wave2.length} objects; emulated GC removed ${collected} Secrets of deleted owners`);
    expect(stuck1, `stuck in deletion (wave 1):\n${stuck1.join("\n")}`).to.deep.equal([]);
    expect(stuck2, `stuck in deletion (wave 2):\n${stuck2.join("\n")}`).to.deep.equal([]);
    expect(afterWave1.map((v) => explain(v, mid)), `after deleting the ${wave1.length} objects that neither worked nor held a mount, seed ${SEED}:\n${afterWave1.map((v) => explain(v, mid)).join("\n")}`).to.deep.equal([]);
    const end = [...restored, ...orphanedMounts(s), ...(await safety())];
    expect(end, end.join("\n")).to.deep.equal([]);
  });

  it("batch 2: the same 500 objects again get the same admissions and clear statuses, are deleted again, and the heap does not grow", async () => {
    await quiet();
    heap.afterBatch1 = await settledHeap();
    const batch2 = await runBatch(1);
    const differing = cases.filter((c) => admissions[0]![c.index]!.accepted !== admissions[1]![c.index]!.accepted).map(describeCase);
    const stuck = await deleteAndWait(batch2.accepted, 120_000);
    await collectGarbage();
    await quiet();
    heap.afterBatch2 = await settledHeap();
    const growth = heap.afterBatch2 - heap.afterBatch1;
    console.log(`      heap used after forced GC: before batch 1 ${MiB(heap.start!)}, after batch 1 ${MiB(heap.afterBatch1)}, after batch 2 ${MiB(heap.afterBatch2)}: growth over the second batch ${MiB(growth)} (limit ${MiB(HEAP_GROWTH_LIMIT)})`);
    expect(differing, "admission decided differently the second time").to.deep.equal([]);
    expect(batch2.misnamed, batch2.misnamed.join("\n")).to.deep.equal([]);
    expect(batch2.unclear, `batch 2, objects without a clear status (seed ${SEED}):\n${batch2.unclear.join("\n")}`).to.deep.equal([]);
    expect(stuck, `batch 2, stuck in deletion:\n${stuck.join("\n")}`).to.deep.equal([]);
    expect(growth, "heap growth over the second batch (bytes)").to.be.below(HEAP_GROWTH_LIMIT);
  });

  it("the operator never crashed: no unhandled rejection, caches synced, and it still reconciles a control database and connection", async () => {
    expect(operator.hasSynced()).to.equal(true);
    await create(RESOURCES.SecureDatabase, { apiVersion: API, kind: "SecureDatabase", metadata: { name: "control-db" }, spec: { host: "control.fuzz.svc", postgres: { configMapName: "pg-control" }, reload: { strategy: "None" }, verification: { enabled: false } } });
    await create(RESOURCES.ImagingConnection, { apiVersion: API, kind: "ImagingConnection", metadata: { name: "control-conn" }, spec: { databaseRef: { name: "control-db" }, user: "control", verification: { enabled: false }, workloads: [{ kind: "StatefulSet", name: "analysis-node" }] } });
    const t = Date.now();
    await waitFor("control-db and control-conn Ready", async () => {
      const s = await state();
      const db = s.secureDatabases.find((o) => o.metadata.name === "control-db");
      const conn = s.imagingConnections.find((o) => o.metadata.name === "control-conn");
      return condition(db, "Ready")?.status === "True" && condition(conn, "Ready")?.status === "True";
    }, 30_000, 200);
    console.log(`      control database + connection Ready ${Date.now() - t} ms after apply; unhandled rejections: ${rejections.length}`);
    expect(rejections.map(String), "unhandled rejections").to.deep.equal([]);
  });

  it("at the end: the Secrets no fuzzed object owns are as they were, the base database's CA key never changed, no operator mount is left behind", async () => {
    const s = await state();
    const violations = [...orphanedMounts(s), ...(await safety()), ...ledger.finalViolations()];
    expect(violations, violations.join("\n")).to.deep.equal([]);
  });
});

