/**
 * Seeded adversarial SecureDatabases and ImagingConnections for the fuzz chaos test: valid base objects, and for each
 * field catalogues of values the API server must refuse or the operator must answer clearly (wrong types, limits and
 * one past them, Unicode tricks, injection attempts, references to objects that are not theirs).
 */
import fc from "fast-check";
import type { AccessGrant } from "../../src/api/secure-database";

export const FUZZ_API_VERSION = "mtls.imaging.dev/v1alpha1";

export type Kind = "SecureDatabase" | "ImagingConnection";
export type Body = Record<string, unknown>;

export interface Mutation {
  /** What was done, for reports: `spec.port="5432"`. */
  label: string;
  /** Field paths a refusal must name (one of them). */
  names: string[];
  apply(body: Body): void;
}

export interface FuzzCase {
  index: number;
  kind: Kind;
  name: string;
  body: Body;
  mutations: Mutation[];
  strict: boolean;
  /** The per-object PostgreSQL ConfigMap the case references, created before it is applied. */
  configMap?: string;
  /**
   * A connection's identity as generated (before mutations): the database it names, its user, and whether it mounts.
   * The database grants exactly these (fuzzGrants), so unmutated connections are issued and mutated ones are judged.
   */
  grantee?: { database: string; user: string; mounts: boolean };
}

/** What the test environment provides that the generated objects refer to. */
export interface FuzzContext {
  ns: string;
  otherNs: string;
  closedPort: number;
  validCertPem: string;
  otherCertPem: string;
}

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

export const short = (v: unknown): string => {
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
  arb.map(
    (value) => ({
      label: `${path}=${value === undefined ? "(removed)" : short(value)}`,
      names,
      apply: (b: Body) => setPath(b, path, structuredClone(value)),
    }),
  );

const pem = (b64: string) => `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
const names = (n: number, f: (k: number) => unknown) => Array.from({ length: n }, (_, k) => f(k));

function metadataMutations(i: number, maxName: number): fc.Arbitrary<Mutation>[] {
  const rotateValues = fc.oneof(fc.constantFrom("", "r1", "x".repeat(253), "x".repeat(254), "x".repeat(10_000)), weird);
  return [
    fc.constantFrom(maxName, maxName + 1, 63, 64, 253, 254).map((n) => {
      const name = `f${i}-`.padEnd(n, "a");
      return { label: `metadata.name=<${n} chars>`, names: ["metadata.name"], apply: (b: Body) => setPath(b, "metadata.name", name) };
    }),
    fc.oneof(
      weird.map((w) => `f${i}${w}`), fc.constant(`F${i}`), fc.constant(`f${i}.dotted`), fc.constant(`f${i}_`),
    ).map(
      (name) => ({
        label: `metadata.name=${short(name)}`,
        names: ["metadata.name"],
        apply: (b: Body) => setPath(b, "metadata.name", name),
      }),
    ),
    fc.constantFrom(1024, 65_536, 200 * 1024, 256 * 1024 - 512, 256 * 1024 + 1).map((n) => ({
      label: `metadata.annotations[fuzz.example/big]=<${n} chars>`,
      names: ["metadata.annotations"],
      apply: (b: Body) => setPath(
        b,
        "metadata.annotations",
        { ...((b.metadata as Body).annotations as object), "fuzz.example/big": "x".repeat(n) },
      ),
    })),
    put("metadata.annotations", weird.map((w) => ({ "fuzz.example/weird": w })), ["metadata.annotations"]),
    put(
      "metadata.annotations",
      fc.constantFrom("bad key", "ünï/x", "a/b/c", "-x", "x".repeat(64)).map((k) => ({ [k]: "v" })),
      ["metadata.annotations"],
    ),
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

function secureDatabaseMutations(i: number, ctx: FuzzContext, count: number): fc.Arbitrary<Mutation>[] {
  const durations = fc.constantFrom(
    "1m", "59s", "0s", "999999h", "1000000h", "1h30m", "90d", "1.5h", "-1h", "", "PT1H", "1h1h", "60000ms", "1m0s0ms", 3600,
  );
  const garbage = (n: number) => `-----BEGIN CERTIFICATE-----${"A".repeat(Math.max(0, n - 52))}-----END CERTIFICATE-----`;
  return [
    ...metadataMutations(i, 48),
    put(
      "spec.host",
      fc.oneof(
        fc.constantFrom(
          "127.0.0.1", "::1", "LOCALHOST", "[::1]", "db:5432", "", " ", "a..b", "-a.b", `${"a".repeat(64)}.x`,
          `${"a".repeat(61)}.`.repeat(4) + "x", "a".repeat(254), "bücher.example", "xn--bcher-kva.example", "127.1", "1.2.3.4.5",
          "fe80::1%eth0", "::ffff:127.0.0.1", 123,
        ),
        weird,
      ),
    ),
    put("spec.port", fc.constantFrom(0, 1, 65_535, 65_536, -1, "5432", 5432.5, 2 ** 31, null)),
    put(
      "spec.additionalDNSNames",
      fc.oneof(
        fc.constantFrom(
          [], ["a.b", "a.b"], ["*.a.b"], ["*"], ["A.B"], names(33, (k) => `n${k}.x`), ["a".repeat(253)], ["a".repeat(254)], "a.b", {},
        ),
        fc.array(weird, { minLength: 1, maxLength: 3 }),
      ),
    ),
    put(
      "spec.additionalIPAddresses",
      fc.constantFrom(
        ["::ffff:1.2.3.4"], ["010.1.1.1"], ["1.2.3.4/8"], ["1.2.3.4", "1.2.3.4"], ["255.255.255.255", "::"], [],
        names(33, (k) => `10.0.0.${k}`),
      ),
    ),
    put("spec.ca.duration", durations, ["spec.ca", "spec.serverCertificate.duration"]),
    put("spec.ca.renewBefore", fc.constantFrom("1s", "0s", "999999h", "87600h", "87599h59m59s999ms", "1ms", "720h"), ["spec.ca"]),
    put("spec.ca.renewBeforePercentage", fc.constantFrom(0, 1, 99, 100, "33", 1.5), ["spec.ca"]),
    put(
      "spec.ca.privateKey",
      fc.constantFrom(
        { algorithm: "RSA", size: 256 }, { algorithm: "ECDSA", size: 384 }, { algorithm: "ECDSA", size: 521 },
        { algorithm: "RSA", size: 2048 }, { algorithm: "RSA", size: 4096 }, { algorithm: "EdDSA" }, { size: 4097 }, { algorithm: "ecdsa" },
        { algorithm: "RSA" },
      ),
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
    put(
      "spec.ca.commonName",
      fc.oneof(fc.constantFrom("a".repeat(64), "a".repeat(65), "CN=evil,O=x", "x\u0000y", "x\ny"), weird),
      ["spec.ca"],
    ),
    put("spec.ca.propagationDelay", fc.constantFrom("0s", "999999h", "bad", "1ms", ""), ["spec.ca"]),
    put("spec.ca.rotationPolicy", fc.constantFrom("SameKey", "samekey"), ["spec.ca"]),
    put(
      "spec.serverCertificate.secretName",
      fc.constantFrom(
        "base-db-ca", "base-db-server-tls", "foreign-opaque", "foreign-tls", "provided-ca", `f${i}-ca`, `f${(i + 1) % count}-server-tls`,
        "base-conn-client-tls", "Bad",
      ),
    ),
    put("spec.serverCertificate.duration", durations, ["spec.serverCertificate"]),
    put("spec.serverCertificate.renewBefore", fc.constantFrom("1s", "2160h", "2159h59m59s", "0s"), ["spec.serverCertificate"]),
    put("spec.serverCertificate.renewBeforePercentage", fc.constantFrom(1, 99, 0, "10"), ["spec.serverCertificate"]),
    put(
      "spec.serverCertificate.privateKey",
      fc.constantFrom(
        { algorithm: "RSA", size: 2048 }, { algorithm: "ECDSA", size: 2048 }, { algorithm: "RSA", size: 1024 },
        { algorithm: "ECDSA", size: 384 },
      ),
      ["spec.serverCertificate"],
    ),
    fc.constantFrom(
      { postgresqlConfKey: ".." }, { postgresqlConfKey: "." }, { hbaConfKey: "postgresql.conf" }, { postgresqlConfKey: "a/b" },
      { hbaConfKey: "x".repeat(254) }, { postgresqlConfKey: "custom.conf" },
    ).map((extra) => ({
      label: `spec.postgres+=${short(extra)}`,
      names: ["spec.postgres"],
      apply: (b: Body) => Object.assign(((b.spec as Body).postgres ??= {}) as Body, extra),
    })),
    put(
      "spec.postgres.certificateDirectory",
      fc.constantFrom(
        "/", "/a/../b", "/a/./b", "relative", "/etc/postgresql/tls/", `/${"a".repeat(511)}`, `/${"a".repeat(512)}`, "/with space", "/ü",
      ),
      ["spec.postgres"],
    ),
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
      fc.constantFrom(
        { kind: "StatefulSet", name: "pg-sts" },
        { kind: "StatefulSet", name: "pg-sts", container: "nope" },
        { kind: "Deployment", name: "cast-app" },
        { kind: "Deployment", name: "nope" },
        { kind: "DaemonSet", name: "x" },
        { kind: "StatefulSet" },
        { name: "pg-sts" },
      ),
      ["spec.workloadRef"],
    ),
    put(
      "spec.reload",
      fc.constantFrom(
        { strategy: "RolloutRestart" }, { strategy: "SQL", adminUser: "a b" }, { adminUser: "+x" }, { strategy: "None", adminUser: "app" },
        { strategy: "None", database: "a/b" }, { database: "@x" }, { strategy: "sql" },
      ),
      ["spec.reload", "spec.postgres.hba"],
    ),
    put(
      "spec.verification",
      fc.constantFrom(
        { interval: "9s" }, { enabled: false, interval: "10s" }, { enabled: false, interval: "24h" }, { interval: "24h1ms" },
        { endpoint: "[::1]:1" }, { endpoint: "host:0" }, { endpoint: "host:99999" }, { endpoint: "HOST:5432" }, { endpoint: "a:b:c" },
        { enabled: "false" }, { endpoint: "[::ffff:1.2.3.4]:1" },
      ),
      ["spec.verification"],
    ),
    put(
      "spec.allowedNamespaces",
      fc.constantFrom(["*"], ["a", "a"], names(65, (k) => `ns-${k}`), [ctx.otherNs], ["Bad"], []),
      ["spec.allowedNamespaces"],
    ),
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
        [{ connectionName: `f${(i + 1) % count}`, connectionNamespace: ctx.otherNs }],
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
    put(
      "spec.access",
      fc.constantFrom(
        [{ users: ["postgres"] }], [{ users: ["all"] }], [{ users: ["+readers"] }], [{ users: [] }], [{ users: ["a b"] }],
        [{ namespaces: ["*"], users: [`u${i}`] }], [{ namespaces: [], users: [`u${i}`] }], [{ users: [`u${i}`], databases: ["all"] }],
        [{ users: [`u${i}`], maxDuration: "59s" }], [{ users: [`u${i}`], maxDuration: "90d" }], [{ users: [`u${i}`, `u${i}`] }],
        [{ namespaces: [ctx.otherNs], users: [`u${(i + 1) % count}`], mountIntoWorkloads: true }], [{ databases: ["postgres"] }],
        names(33, (k) => ({ users: [`u${k}`] })), [{ users: names(65, (k) => `u${k}`) }], [{ users: ["u1"], mountIntoWorkloads: "yes" }],
        [], "u1", undefined,
      ),
      ["spec.access"],
    ),
    put("spec.bogusField", fc.constantFrom(1, "x", { nested: true }), ["spec.bogusField"]),
    put("spec.postgres", fc.constantFrom("pg", [], null), ["spec.postgres"]),
    put("spec.trust", fc.constantFrom([], "x"), ["spec.trust"]),
    put("spec.host", fc.constant(undefined)),
    put("spec.postgres.configMapName", fc.constantFrom(undefined, "", "Bad", "x".repeat(254)), ["spec.postgres"]),
  ];
}

function imagingConnectionMutations(i: number, ctx: FuzzContext, count: number): fc.Arbitrary<Mutation>[] {
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
        { name: `f${(i + 1) % count}` },
        "base-db",
      ),
    ),
    put(
      "spec.user",
      fc.oneof(
        fc.constantFrom(
          "a b", "'x'", '"x"', "x#y", "x,y", "x\\y", "+grp", "@x", "/x", "all", "postgres", "x".repeat(63), "x".repeat(64), "é".repeat(31),
          "é".repeat(32), "🦄".repeat(15), "🦄".repeat(16), "\u202Eadmin", "ad\u200Bmin", "\u0000", "x\u0000", 42, "",
        ),
        weird,
      ),
    ),
    put("spec.database", fc.oneof(fc.constantFrom("a/b", "db?x", "a=b", "ünï", "all", "x".repeat(64)), weird)),
    put("spec.sslMode", fc.constantFrom("require", "verify-ca", "disable")),
    put(
      "spec.secretName",
      fc.constantFrom(
        "foreign-opaque", "foreign-tls", "base-db-ca", "base-db-server-tls", "base-conn-client-tls", "provided-ca", "shared-client-tls",
        `f${(i + 2) % count}-client-tls`, `f${(i + 1) % count}-server-tls`, `f${(i + 1) % count}-ca`, "Bad",
      ),
    ),
    put(
      "spec.certificate",
      fc.constantFrom(
        { duration: "1m" },
        { duration: "59s" },
        { duration: "999999h" },
        { duration: "1m", renewBeforePercentage: 1 },
        { renewBefore: "2160h" },
        { renewBefore: "1s" },
        { privateKey: { algorithm: "RSA", size: 2048 } },
        { privateKey: { algorithm: "RSA", size: 384 } },
        { renewBeforePercentage: "50" },
        "x",
      ),
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

/**
 * `count` cases drawn from `seed`: a kind and a valid base object each, then 0 to 3 mutations from that kind's
 * catalogue. Case `index` is reproducible from the seed alone.
 */
export function fuzzCases(ctx: FuzzContext, { seed, count }: { seed: number; count: number }): FuzzCase[] {
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
      peer: fc.integer({ min: 0, max: count - 1 }),
      workloads: fc.constantFrom("none", "none", "none", "cast-app", "analysis-node"),
      mutationCount: fc.constantFrom(0, 1, 1, 1, 2, 2, 3),
    }),
    { seed, numRuns: count },
  );
  const bases = shapes.map((shape, index) => {
    const name = `f${index}`;
    const kind = shape.kind;
    let body: Body;
    let configMap: string | undefined;
    let grantee: FuzzCase["grantee"];
    if (kind === "SecureDatabase") {
      configMap = shape.configMap === "own" ? `pg-obj-${index}` : undefined;
      const cmName =
        shape.configMap === "own" ? `pg-obj-${index}`
        : shape.configMap === "missing" ? `pg-missing-${index}`
        : shape.configMap === "shared" ? "pg-shared"
        : `pg-weird-${shape.weird}`;
      const workloadRef =
        shape.workloadRef === "pg-sts" ? { kind: "StatefulSet", name: "pg-sts" }
        : shape.workloadRef === "cast-app" ? { kind: "Deployment", name: "cast-app" }
        : shape.workloadRef === "missing" ? { kind: "StatefulSet", name: `missing-${index}` }
        : undefined;
      body = {
        apiVersion: FUZZ_API_VERSION,
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
      const workloadKind = shape.workloads === "cast-app" ? "Deployment" : "StatefulSet";
      body = {
        apiVersion: FUZZ_API_VERSION,
        kind,
        metadata: { name, namespace: ctx.ns },
        spec: {
          databaseRef: { name: db },
          user: `u${index}`,
          verification: { enabled: shape.verify },
          ...(shape.workloads === "none" ? {} : { workloads: [{ kind: workloadKind, name: shape.workloads }] }),
        },
      };
      grantee = { database: db, user: `u${index}`, mounts: shape.workloads !== "none" };
    }
    return { shape, index, name, kind, body, configMap, grantee };
  });
  const all = bases.map(({ index, kind, grantee }) => ({ index, kind, ...(grantee ? { grantee } : {}) }));
  for (const { kind, name, body } of bases) {
    const access = kind === "SecureDatabase" ? fuzzGrants(all, name) : [];
    if (access.length > 0) (body.spec as Body).access = access;
  }
  return bases.map(({ shape, index, name, kind, body, configMap, grantee }) => {
    const catalogue = (kind === "SecureDatabase" ? secureDatabaseMutations : imagingConnectionMutations)(index, ctx, count);
    const drawn = fc.array(fc.oneof(...catalogue), { minLength: shape.mutationCount, maxLength: shape.mutationCount });
    const mutations = shape.mutationCount === 0 ? [] : fc.sample(drawn, { seed: seed + 7919 * (index + 1), numRuns: 1 })[0]!;
    for (const m of mutations) m.apply(body);
    const finalName = (body.metadata as { name?: unknown }).name;
    return {
      index,
      kind,
      name: typeof finalName === "string" ? finalName : name,
      body,
      mutations,
      strict: shape.strict,
      ...(configMap ? { configMap } : {}),
      ...(grantee ? { grantee } : {}),
    };
  });
}

/**
 * The spec.access of the database `database`: exactly the users of the generated connections that name it, those
 * that mount into workloads in grants that allow it, at most 64 users a grant (the schema's limit).
 */
export function fuzzGrants(cases: readonly Pick<FuzzCase, "grantee">[], database: string): AccessGrant[] {
  const grants: AccessGrant[] = [];
  for (const mounts of [false, true]) {
    const users = cases.flatMap((c) => (c.grantee?.database === database && c.grantee.mounts === mounts ? [c.grantee.user] : []));
    for (let k = 0; k < users.length; k += 64) grants.push({ users: users.slice(k, k + 64), ...(mounts ? { mountIntoWorkloads: true } : {}) });
  }
  return grants;
}
