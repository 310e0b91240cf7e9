import { expect } from "chai";
import { prepareImagingConnection, prepareSecureDatabase } from "../../../src/api/defaults";
import type { ImagingConnection, SecureDatabase } from "../../../src/api/types";
import {
  decodedImagingConnection,
  decodedSecureDatabase,
  formatValidationErrors,
  validateConnectionAgainstDatabase,
  type ValidationError,
} from "../../../src/api/validate";
import { imc, sdb } from "./builders";

/** An object as an old CRD may have stored it: the types say nothing about it. */
const raw = <T>(base: T, patch: (o: Record<string, unknown>) => void): T => {
  const copy = JSON.parse(JSON.stringify(base)) as Record<string, unknown>;
  patch(copy);
  return copy as T;
};
const spec = (o: Record<string, unknown>): Record<string, unknown> => o.spec as Record<string, unknown>;

const firstError = (result: { ok: true } | { ok: false; errors: ValidationError[] }): ValidationError => {
  if (result.ok) throw new Error("expected errors, got a valid object");
  expect(result.errors).to.have.length(1);
  return result.errors[0]!;
};

describe("api boundary: malformed objects from the informer", () => {
  const databases: [string, SecureDatabase, string, ValidationError["reason"], string][] = [
    ["no spec", raw(sdb(), (o) => delete o.spec), "spec", "Required", "required field is missing"],
    ["a null spec", raw(sdb(), (o) => (o.spec = null)), "spec", "Required", "required field is missing"],
    ["a spec that is a string", raw(sdb(), (o) => (o.spec = "db")), "spec", "Invalid", "expected an object"],
    ["no metadata", raw(sdb(), (o) => delete o.metadata), "metadata", "Required", "required field is missing"],
    [
      "a numeric name",
      raw(sdb(), (o) => ((o.metadata as Record<string, unknown>).name = 7)),
      "metadata.name",
      "Invalid",
      "expected a string",
    ],
    ["a string port", raw(sdb(), (o) => (spec(o).port = "5432")), "spec.port", "Invalid", 'expected an integer, got string "5432"'],
    ["a numeric host", raw(sdb(), (o) => (spec(o).host = 10)), "spec.host", "Invalid", "expected a string, got number 10"],
    ["no postgres", raw(sdb(), (o) => delete spec(o).postgres), "spec.postgres", "Required", "required field is missing"],
    [
      "hba.rules that are not an array",
      raw(sdb(), (o) => (spec(o).postgres = { configMapName: "pg", hba: { rules: { users: ["all"] } } })),
      "spec.postgres.hba.rules",
      "Invalid",
      "expected an array, got an object",
    ],
    [
      "a number in an hba user list",
      raw(sdb(), (o) => (spec(o).postgres = { configMapName: "pg", hba: { rules: [{ users: [5] }] } })),
      "spec.postgres.hba.rules[0].users[0]",
      "Invalid",
      "expected a string, got number 5",
    ],
    [
      "a string list of DNS names",
      raw(sdb(), (o) => (spec(o).additionalDNSNames = "db")),
      "spec.additionalDNSNames",
      "Invalid",
      "expected an array",
    ],
    [
      "an unknown reload strategy",
      raw(sdb(), (o) => (spec(o).reload = { strategy: "Signal" })),
      "spec.reload.strategy",
      "NotSupported",
      "unsupported value",
    ],
    [
      "a string boolean",
      raw(sdb(), (o) => (spec(o).verification = { enabled: "false" })),
      "spec.verification.enabled",
      "Invalid",
      "expected a boolean",
    ],
    [
      "a revocation list that is an object",
      raw(sdb(), (o) => (spec(o).trust = { revocations: { serialNumber: "01" } })),
      "spec.trust.revocations",
      "Invalid",
      "expected an array",
    ],
  ];
  for (const [what, object, field, reason, message] of databases) {
    it(`a SecureDatabase with ${what} gets one ${reason} error on ${field}`, () => {
      const error = firstError(prepareSecureDatabase(object));
      expect(error.field).to.equal(field);
      expect(error.reason).to.equal(reason);
      expect(error.message).to.include(message);
      expect(formatValidationErrors([error])).to.match(new RegExp(`^${field.replace(/[[\].]/g, "\\$&")}: `));
    });
  }

  const connections: [string, ImagingConnection, string, ValidationError["reason"], string][] = [
    ["no spec", raw(imc(), (o) => delete o.spec), "spec", "Required", "required field is missing"],
    ["a numeric user", raw(imc(), (o) => (spec(o).user = 42)), "spec.user", "Invalid", "expected a string, got number 42"],
    [
      "a databaseRef that is a string",
      raw(imc(), (o) => (spec(o).databaseRef = "imaging-db")),
      "spec.databaseRef",
      "Invalid",
      "expected an object",
    ],
    [
      "workloads that are an object",
      raw(imc(), (o) => (spec(o).workloads = { kind: "Deployment", name: "x" })),
      "spec.workloads",
      "Invalid",
      "expected an array, got an object",
    ],
    [
      "containers that are a string",
      raw(imc(), (o) => (spec(o).workloads = [{ kind: "Deployment", name: "x", containers: "app" }])),
      "spec.workloads[0].containers",
      "Invalid",
      "expected an array",
    ],
    [
      "a workload without a name",
      raw(imc(), (o) => (spec(o).workloads = [{ kind: "Deployment" }])),
      "spec.workloads[0].name",
      "Required",
      "required field is missing",
    ],
    [
      "a numeric certificate duration",
      raw(imc(), (o) => (spec(o).certificate = { duration: 90 })),
      "spec.certificate.duration",
      "Invalid",
      "expected a string",
    ],
  ];
  for (const [what, object, field, reason, message] of connections) {
    it(`an ImagingConnection with ${what} gets one ${reason} error on ${field}`, () => {
      const error = firstError(prepareImagingConnection(object));
      expect(error.field).to.equal(field);
      expect(error.reason).to.equal(reason);
      expect(error.message).to.include(message);
    });
  }

  it("a root that is not an object is an error too", () => {
    for (const value of [null, "x", 5, []]) {
      expect(firstError(prepareSecureDatabase(value as unknown as SecureDatabase)).field).to.equal("<root>");
      expect(firstError(prepareImagingConnection(value as unknown as ImagingConnection)).field).to.equal("<root>");
    }
  });

  it("resolves a decoded object like the typed one (null is absent; status and unknown metadata are kept out of the spec)", () => {
    const withNulls = raw(sdb(), (o) => {
      spec(o).port = null;
      spec(o).reload = null;
      o.status = { conditions: "not checked here" };
    });
    const a = prepareSecureDatabase(withNulls);
    const b = prepareSecureDatabase(sdb());
    expect(a.ok && b.ok && a.spec).to.deep.equal(b.ok && b.spec);
  });

  it("checking a connection against a malformed database reports nothing and leaves it to the database's own check", () => {
    const broken = raw(sdb(), (o) => (spec(o).allowedNamespaces = "staging"));
    expect(validateConnectionAgainstDatabase(imc(), broken)).to.deep.equal([]);
    expect(validateConnectionAgainstDatabase(imc(), raw(sdb(), (o) => delete o.spec))).to.deep.equal([]);
    expect(prepareSecureDatabase(broken).ok).to.equal(false);
  });

  describe("what a deletion may read: the shape, not the rules", () => {
    const cases: [string, unknown, (value: unknown) => { ok: boolean }, boolean][] = [
      ["a valid database", sdb(), decodedSecureDatabase, true],
      ["a database breaking a rule (port out of range)", raw(sdb(), (o) => (spec(o).port = 70000)), decodedSecureDatabase, true],
      ["a database without spec", raw(sdb(), (o) => delete o.spec), decodedSecureDatabase, false],
      ["a database whose postgres is a string", raw(sdb(), (o) => (spec(o).postgres = "pg")), decodedSecureDatabase, false],
      ["a valid connection", imc(), decodedImagingConnection, true],
      ["a connection breaking a rule (user with a space)", raw(imc(), (o) => (spec(o).user = "a b")), decodedImagingConnection, true],
      [
        "a connection whose workloads are an object",
        raw(imc(), (o) => (spec(o).workloads = { kind: "Deployment" })),
        decodedImagingConnection,
        false,
      ],
    ];
    for (const [name, value, decoded, deletable] of cases) {
      it(`${name}: ${deletable ? "cleaned up" : "refused"}`, () => {
        expect(decoded(value).ok).to.equal(deletable);
      });
    }
    it("the rules still refuse what the deletion lets through", () => {
      expect(prepareSecureDatabase(raw(sdb(), (o) => (spec(o).port = 70000))).ok).to.equal(false);
      expect(prepareImagingConnection(raw(imc(), (o) => (spec(o).user = "a b"))).ok).to.equal(false);
    });
  });
});
