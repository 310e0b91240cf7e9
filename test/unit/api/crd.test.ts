import { expect } from "chai";
import { imagingConnectionSpec, imagingConnectionStatus, secureDatabaseSpec, secureDatabaseStatus, type Shape } from "../../../src/api/decode";
import { DEFAULTS } from "../../../src/api/defaults";
import { CRD_DURATION_PATTERN } from "../../../src/api/duration";
import {
  API_VERSION,
  CATEGORY,
  GROUP,
  IMAGING_CONNECTION,
  MAX_NAME_LENGTH,
  SECURE_DATABASE,
  VERSION,
} from "../../../src/api/types";
import { applyDefaults, at, loadCRD, rootSchema, schemaErrors, walk, type CRD, type Schema } from "./crd-schema";

const crds: [string, CRD, typeof SECURE_DATABASE | typeof IMAGING_CONNECTION][] = [
  ["securedatabases.yaml", loadCRD("securedatabases.yaml"), SECURE_DATABASE],
  ["imagingconnections.yaml", loadCRD("imagingconnections.yaml"), IMAGING_CONNECTION],
];

/** Compares a decoder's shape with a CRD schema node; returns the differences. */
function shapeDiff(shape: Shape, schema: Schema, path: string): string[] {
  const diffs: string[] = [];
  switch (shape.type) {
    case "object": {
      if (schema.type !== "object") return [`${path}: decoder object, CRD ${schema.type}`];
      const decoderKeys = Object.keys(shape.properties).sort();
      const crdKeys = Object.keys(schema.properties ?? {}).sort();
      for (const k of decoderKeys) if (!crdKeys.includes(k)) diffs.push(`${path}.${k}: in the TypeScript types, not in the CRD`);
      for (const k of crdKeys) if (!decoderKeys.includes(k)) diffs.push(`${path}.${k}: in the CRD, not in the TypeScript types`);
      for (const k of decoderKeys) {
        const sub = schema.properties?.[k];
        const prop = shape.properties[k];
        if (!sub || !prop) continue;
        const crdRequired = (schema.required ?? []).includes(k);
        if (crdRequired !== prop.required) diffs.push(`${path}.${k}: required in ${crdRequired ? "CRD" : "types"} only`);
        diffs.push(...shapeDiff(prop.shape, sub, `${path}.${k}`));
      }
      return diffs;
    }
    case "array":
      if (schema.type !== "array" || !schema.items) return [`${path}: decoder array, CRD ${schema.type}`];
      return shapeDiff(shape.items, schema.items, `${path}[]`);
    case "map":
      if (schema.type !== "object" || typeof schema.additionalProperties !== "object") return [`${path}: decoder map, CRD ${schema.type} without additionalProperties`];
      return shapeDiff(shape.values, schema.additionalProperties, `${path}{}`);
    case "string": {
      if (schema.type !== "string") return [`${path}: decoder string, CRD ${schema.type}`];
      const a = JSON.stringify([...(shape.enum ?? [])].sort());
      const b = JSON.stringify([...((schema.enum as string[] | undefined) ?? [])].sort());
      return a === b ? [] : [`${path}: enum ${a} in types, ${b} in CRD`];
    }
    default:
      return schema.type === shape.type ? [] : [`${path}: decoder ${shape.type}, CRD ${schema.type}`];
  }
}

describe("api/CRDs (offline structure)", () => {
  for (const [file, crd, names] of crds) {
    describe(file, () => {
      const root = rootSchema(crd);
      const version = crd.spec.versions[0];

      it("declares the fixed group, version, names, scope and category", () => {
        expect(crd.apiVersion).to.equal("apiextensions.k8s.io/v1");
        expect(crd.metadata.name).to.equal(`${names.plural}.${GROUP}`);
        expect(crd.spec.group).to.equal(GROUP);
        expect(crd.spec.scope).to.equal("Namespaced");
        expect(crd.spec.names).to.deep.equal({
          kind: names.kind,
          listKind: names.listKind,
          plural: names.plural,
          singular: names.singular,
          shortNames: [names.shortName],
          categories: [CATEGORY],
        });
        expect(crd.spec.versions).to.have.length(1);
        expect(version?.name).to.equal(VERSION);
        expect(version?.served).to.equal(true);
        expect(version?.storage).to.equal(true);
        expect(version?.subresources).to.deep.equal({ status: {} });
        expect(API_VERSION).to.equal(`${GROUP}/${VERSION}`);
      });

      it("has a description on every field", () => {
        const missing: string[] = [];
        walk(root, (node, path, parent) => {
          const isProperty = parent?.properties !== undefined && !path.endsWith("[]");
          if (path === "metadata" || !isProperty) return;
          if (!node.description || node.description.trim().length < 8) missing.push(path);
        });
        expect(missing).to.deep.equal([]);
        expect(root.description).to.have.length.above(100);
      });

      it("bounds every string and list (CEL cost budget)", () => {
        const unbounded: string[] = [];
        walk(root, (node, path) => {
          if (path === "apiVersion" || path === "kind") return;
          if (node.type === "string" && node.maxLength === undefined && node.enum === undefined && node.format !== "date-time") unbounded.push(path);
          if (node.type === "array" && node.maxItems === undefined) unbounded.push(path);
        });
        expect(unbounded).to.deep.equal([]);
      });

      it("gives every CEL rule a message", () => {
        const rules: string[] = [];
        walk(root, (node, path) => {
          for (const v of node["x-kubernetes-validations"] ?? []) {
            if (!v.message || v.message.length < 20) rules.push(`${path}: ${v.rule}`);
          }
        });
        expect(rules).to.deep.equal([]);
      });

      it("checks duration fields with the same grammar as isCRDDuration", () => {
        let durations = 0;
        walk(root, (node, path) => {
          if (!/(duration|renewBefore|interval)$/.test(path) || node.type !== "string") return;
          durations++;
          const rules = (node["x-kubernetes-validations"] ?? []).map((v) => v.rule);
          expect(rules.some((r) => r.includes(`self.matches('${CRD_DURATION_PATTERN.source}')`)), path).to.equal(true);
        });
        expect(durations).to.be.at.least(2);
      });

      it("limits metadata.name so the owner label value fits in 63 characters", () => {
        const rule = root["x-kubernetes-validations"]?.[0]?.rule;
        expect(rule).to.equal(`self.metadata.name.size() <= ${MAX_NAME_LENGTH[names.kind]}`);
        expect(`${names.kind}.`.length + MAX_NAME_LENGTH[names.kind]).to.equal(63);
      });

      it("uses the standard metav1.Condition schema, keyed by type", () => {
        const conditions = at(root, "status.conditions");
        expect(conditions["x-kubernetes-list-type"]).to.equal("map");
        expect(conditions["x-kubernetes-list-map-keys"]).to.deep.equal(["type"]);
        const item = at(root, "status.conditions[]");
        expect(item.required).to.have.members(["type", "status", "lastTransitionTime", "reason", "message"]);
        expect(at(root, "status.conditions[].status").enum).to.deep.equal(["True", "False", "Unknown"]);
        expect(at(root, "status.conditions[].lastTransitionTime").format).to.equal("date-time");
      });
    });
  }

  it("prints Ready, Reason, Host, Port (wide), Configuration (wide), Expires and Age for sdb", () => {
    const cols = crds[0]?.[1].spec.versions[0]?.additionalPrinterColumns ?? [];
    expect(cols.map((c) => [c.name, c.jsonPath, c.priority ?? 0])).to.deep.equal([
      ["Ready", '.status.conditions[?(@.type=="Ready")].status', 0],
      ["Reason", '.status.conditions[?(@.type=="Ready")].reason', 0],
      ["Host", ".spec.host", 0],
      ["Port", ".spec.port", 1],
      ["Configuration", ".status.server.configuration", 1],
      ["Expires", ".status.serverCertificate.notAfter", 0],
      ["Age", ".metadata.creationTimestamp", 0],
    ]);
    // A future timestamp in a "date" column prints as "<invalid>", so Expires is a string.
    expect(cols.find((c) => c.name === "Expires")?.type).to.equal("string");
  });

  it("prints Ready, Reason, User, Database, Expires and Age for imc", () => {
    const cols = crds[1]?.[1].spec.versions[0]?.additionalPrinterColumns ?? [];
    expect(cols.map((c) => [c.name, c.jsonPath, c.priority ?? 0])).to.deep.equal([
      ["Ready", '.status.conditions[?(@.type=="Ready")].status', 0],
      ["Reason", '.status.conditions[?(@.type=="Ready")].reason', 0],
      ["User", ".spec.user", 0],
      ["Database", ".spec.databaseRef.name", 0],
      ["Expires", ".status.certificate.notAfter", 0],
      ["Age", ".metadata.creationTimestamp", 0],
    ]);
  });

  describe("TypeScript types and CRD schemas name the same fields", () => {
    const sdb = rootSchema(loadCRD("securedatabases.yaml"));
    const imc = rootSchema(loadCRD("imagingconnections.yaml"));
    it("SecureDatabase spec", () => expect(shapeDiff(secureDatabaseSpec.shape, at(sdb, "spec"), "spec")).to.deep.equal([]));
    it("SecureDatabase status", () => expect(shapeDiff(secureDatabaseStatus.shape, at(sdb, "status"), "status")).to.deep.equal([]));
    it("ImagingConnection spec", () => expect(shapeDiff(imagingConnectionSpec.shape, at(imc, "spec"), "spec")).to.deep.equal([]));
    it("ImagingConnection status", () => expect(shapeDiff(imagingConnectionStatus.shape, at(imc, "status"), "status")).to.deep.equal([]));
    it("reports a difference when there is one", () => {
      const shape: Shape = { type: "object", open: false, properties: { a: { shape: { type: "string" }, required: true } } };
      expect(shapeDiff(shape, { type: "object", properties: { b: { type: "string" } } }, "x")).to.deep.equal([
        "x.a: in the TypeScript types, not in the CRD",
        "x.b: in the CRD, not in the TypeScript types",
      ]);
    });
  });

  describe("schema defaults match DEFAULTS in src/api/defaults.ts", () => {
    const sdb = rootSchema(loadCRD("securedatabases.yaml"));
    const imc = rootSchema(loadCRD("imagingconnections.yaml"));
    const expectations: [Schema, string, unknown][] = [
      [sdb, "spec.port", DEFAULTS.port],
      [sdb, "spec.ca.mode", DEFAULTS.caMode],
      [sdb, "spec.ca.duration", DEFAULTS.caDuration],
      [sdb, "spec.ca.privateKey.algorithm", DEFAULTS.keyAlgorithm],
      [sdb, "spec.serverCertificate.duration", DEFAULTS.serverCertificateDuration],
      [sdb, "spec.serverCertificate.privateKey.algorithm", DEFAULTS.keyAlgorithm],
      [sdb, "spec.postgres.postgresqlConfKey", DEFAULTS.postgresqlConfKey],
      [sdb, "spec.postgres.hbaConfKey", DEFAULTS.hbaConfKey],
      [sdb, "spec.postgres.certificateDirectory", DEFAULTS.certificateDirectory],
      [sdb, "spec.postgres.minTLSVersion", DEFAULTS.minTLSVersion],
      [sdb, "spec.postgres.hba.rules[].databases", DEFAULTS.hbaDatabases],
      [sdb, "spec.postgres.hba.rules[].users", DEFAULTS.hbaUsers],
      [sdb, "spec.postgres.hba.rules[].addresses", DEFAULTS.hbaAddresses],
      [sdb, "spec.postgres.hba.rules[].clientCertificate", DEFAULTS.hbaClientCertificate],
      [sdb, "spec.reload.strategy", DEFAULTS.reloadStrategy],
      [sdb, "spec.reload.adminUser", DEFAULTS.reloadAdminUser],
      [sdb, "spec.reload.database", DEFAULTS.reloadDatabase],
      [sdb, "spec.verification.enabled", DEFAULTS.verificationEnabled],
      [sdb, "spec.verification.interval", DEFAULTS.verificationInterval],
      [sdb, "spec.trust.revocations[].reason", DEFAULTS.revocationReason],
      [sdb, "spec.trust.revokeOnDelete", DEFAULTS.revokeOnDelete],
      [imc, "spec.database", DEFAULTS.connectionDatabase],
      [imc, "spec.sslMode", DEFAULTS.sslMode],
      [imc, "spec.certificate.duration", DEFAULTS.clientCertificateDuration],
      [imc, "spec.certificate.privateKey.algorithm", DEFAULTS.keyAlgorithm],
      [imc, "spec.libpqEnv", DEFAULTS.libpqEnv],
      [imc, "spec.verification.enabled", DEFAULTS.connectionVerificationEnabled],
    ];
    for (const [schema, path, value] of expectations) {
      it(`${path} defaults to ${JSON.stringify(value)}`, () => expect(at(schema, path).default).to.deep.equal(value));
    }

    it("leaves operator-computed defaults out of the schema (secret names, key size, renewBefore, mount path)", () => {
      for (const path of [
        "spec.ca.secretName",
        "spec.ca.commonName",
        "spec.ca.renewBefore",
        "spec.ca.privateKey.size",
        "spec.serverCertificate.secretName",
        "spec.serverCertificate.renewBefore",
        "spec.verification.endpoint",
      ]) {
        expect(at(sdb, path).default, path).to.equal(undefined);
      }
      for (const path of [
        "spec.secretName",
        "spec.certificate.renewBefore",
        "spec.workloads[].mountPath",
        "spec.workloads[].containers",
        "spec.databaseRef.namespace",
      ]) {
        expect(at(imc, path).default, path).to.equal(undefined);
      }
    });

    it("a minimal object, defaulted by the schema, satisfies the schema", () => {
      const minimalSdb = applyDefaults(sdb, {
        apiVersion: API_VERSION,
        kind: "SecureDatabase",
        metadata: { name: "db" },
        spec: { host: "db.example.com", postgres: { configMapName: "pg" } },
      });
      expect(schemaErrors(sdb, minimalSdb)).to.deep.equal([]);
      const minimalImc = applyDefaults(imc, {
        apiVersion: API_VERSION,
        kind: "ImagingConnection",
        metadata: { name: "c" },
        spec: { databaseRef: { name: "db" }, user: "operator" },
      });
      expect(schemaErrors(imc, minimalImc)).to.deep.equal([]);
    });
  });
});

describe("api/CRDs: kubectl explain does not show schema defaults, so descriptions do", () => {
  for (const file of ["securedatabases.yaml", "imagingconnections.yaml"] as const) {
    it(`every defaulted scalar of ${file} names its default in its description`, () => {
      const missing: string[] = [];
      walk(rootSchema(loadCRD(file)), (node, path) => {
        const d = node.default;
        if (d === undefined || typeof d === "object") return;
        const text = node.description ?? "";
        if (!/default/i.test(text) || !text.includes(String(d))) missing.push(`${path} (default ${JSON.stringify(d)})`);
      });
      expect(missing).to.deep.equal([]);
    });
  }
});
