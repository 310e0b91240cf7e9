import { expect } from "chai";
import { DecodeError, decodeCustomResource, decodeImagingConnection, decodeSecureDatabase } from "../../../src/api/decode";
import { object, optionalStrings } from "../../../src/api/decoder";
import { API_VERSION } from "../../../src/api/types";

const sdbJson = (spec: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  apiVersion: API_VERSION,
  kind: "SecureDatabase",
  metadata: { name: "db", namespace: "cast", generation: 3, labels: { a: "b" }, managedFields: [{ manager: "kubectl" }] },
  spec: { host: "db.example.com", postgres: { configMapName: "pg" }, ...spec },
  ...extra,
});

describe("api/decode", () => {
  it("returns a typed SecureDatabase, status included", () => {
    const sdb = decodeSecureDatabase(
      sdbJson({}, {
        status: {
          observedGeneration: 3,
          conditions: [{ type: "Ready", status: "True", reason: "Verified", message: "ok", lastTransitionTime: "2026-01-01T00:00:00Z" }],
          serverCertificate: { notAfter: "2026-04-01T00:00:00Z", dnsNames: ["db.example.com"] },
          caRotation: { phase: "Overlap" },
        },
      }),
    );
    expect(sdb.spec.host).to.equal("db.example.com");
    expect(sdb.metadata.generation).to.equal(3);
    expect(sdb.status?.conditions?.[0]?.status).to.equal("True");
    expect(sdb.status?.caRotation?.phase).to.equal("Overlap");
  });

  it("keeps unknown metadata (open object) but drops unknown spec fields unless strict", () => {
    const sdb = decodeSecureDatabase(sdbJson({ hostname: "typo" }));
    expect((sdb.metadata as unknown as Record<string, unknown>).managedFields).to.deep.equal([{ manager: "kubectl" }]);
    expect(sdb.spec).to.not.have.property("hostname");
    expect(() => decodeSecureDatabase(sdbJson({ hostname: "typo" }), { strict: true })).to.throw(
      DecodeError,
      /^spec\.hostname: unknown field \(known fields: host, port,/,
    );
  });

  it("treats null like an absent optional field", () => {
    expect(decodeSecureDatabase(sdbJson({ port: null })).spec).to.not.have.property("port");
  });

  const bad: [string, Record<string, unknown>, string][] = [
    ["a missing host", sdbJson({ host: undefined }), "spec.host: required field is missing"],
    ["a string port", sdbJson({ port: "5432" }), 'spec.port: expected an integer, got string "5432"'],
    ["a fractional port", sdbJson({ port: 54.32 }), "spec.port: expected an integer"],
    [
      "an unknown algorithm",
      sdbJson({ ca: { privateKey: { algorithm: "DSA" } } }),
      'spec.ca.privateKey.algorithm: expected one of "ECDSA", "RSA", got string "DSA"',
    ],
    ["a string instead of a list", sdbJson({ additionalDNSNames: "db" }), "spec.additionalDNSNames: expected an array"],
    [
      "a number in a list",
      sdbJson({ postgres: { configMapName: "pg", hba: { rules: [{ users: ["a", 5] }] } } }),
      "spec.postgres.hba.rules[0].users[1]: expected a string, got number 5",
    ],
    ["a list instead of an object", sdbJson({ reload: [] }), "spec.reload: expected an object, got an array"],
    ["a string boolean", sdbJson({ verification: { enabled: "true" } }), "spec.verification.enabled: expected a boolean"],
    ["a wrong apiVersion", { ...sdbJson({}), apiVersion: "mtls.imaging.dev/v1" }, 'apiVersion: expected one of "mtls.imaging.dev/v1alpha1"'],
    ["a missing metadata.name", { ...sdbJson({}), metadata: {} }, "metadata.name: required field is missing"],
    [
      "a bad condition status",
      sdbJson({}, { status: { conditions: [{ type: "Ready", status: "Yes", reason: "X", message: "", lastTransitionTime: "t" }] } }),
      "status.conditions[0].status: expected one of",
    ],
  ];
  for (const [what, value, message] of bad) {
    it(`reports ${what} with its path`, () => {
      expect(() => decodeSecureDatabase(value)).to.throw(DecodeError).with.property("message").that.includes(message);
    });
  }

  it("decodes an ImagingConnection", () => {
    const imc = decodeImagingConnection({
      apiVersion: API_VERSION,
      kind: "ImagingConnection",
      metadata: { name: "c" },
      spec: { databaseRef: { name: "db" }, user: "operator", workloads: [{ kind: "StatefulSet", name: "analysis-node", containers: ["node"] }] },
      status: {
        workloads: [{ kind: "StatefulSet", name: "analysis-node", state: "Patched" }],
        declaration: { port: 5432, jdbcUrl: "jdbc:postgresql://db:5432/postgres" },
      },
    });
    expect(imc.spec.workloads?.[0]?.containers).to.deep.equal(["node"]);
    expect(imc.status?.declaration?.port).to.equal(5432);
  });

  it("refuses an ImagingConnection without user or with a bad workload kind", () => {
    const base = { apiVersion: API_VERSION, kind: "ImagingConnection", metadata: { name: "c" } };
    expect(() => decodeImagingConnection({ ...base, spec: { databaseRef: { name: "db" } } })).to.throw("spec.user: required field is missing");
    expect(() => decodeImagingConnection({
      ...base,
      spec: { databaseRef: { name: "db" }, user: "u", workloads: [{ kind: "DaemonSet", name: "x" }] },
    })).to.throw(
      "spec.workloads[0].kind: expected one of",
    );
  });

  it("dispatches on kind", () => {
    expect(decodeCustomResource(sdbJson({})).kind).to.equal("SecureDatabase");
    expect(() => decodeCustomResource({ kind: "ConfigMap" })).to.throw('kind: expected SecureDatabase or ImagingConnection, got string "ConfigMap"');
    expect(() => decodeCustomResource(null)).to.throw(DecodeError);
  });

  describe("optionalStrings", () => {
    const decoder = object<{ b?: string; a?: string }>()(optionalStrings("b", "a"));
    const cases: [string, unknown, Record<string, string> | string][] = [
      ["keeps both", { a: "1", b: "2" }, { b: "2", a: "1" }],
      ["accepts neither", {}, {}],
      ["drops a null", { a: null, b: "2" }, { b: "2" }],
      ["refuses a number", { a: 1 }, "x.a: expected a string, got number 1"],
    ];
    for (const [what, value, expected] of cases) {
      it(what, () => {
        if (typeof expected === "string") expect(() => decoder.decode(value, "x", {})).to.throw(DecodeError, expected);
        else expect(decoder.decode(value, "x", {})).to.deep.equal(expected);
      });
    }
    it("lists the keys in the order given, all optional strings", () => {
      expect(decoder.shape).to.deep.equal({
        type: "object",
        open: false,
        properties: { b: { shape: { type: "string" }, required: false }, a: { shape: { type: "string" }, required: false } },
      });
      expect(Object.keys(optionalStrings("b", "a"))).to.deep.equal(["b", "a"]);
    });
  });

  it("does not modify its input", () => {
    const input = sdbJson({ hostname: "typo" });
    const before = JSON.stringify(input);
    decodeSecureDatabase(input);
    expect(JSON.stringify(input)).to.equal(before);
  });
});
