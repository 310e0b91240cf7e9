import { expect } from "chai";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { decodeCustomResource, decodeImagingConnection, decodeSecureDatabase } from "../../../src/api/decode";
import { resolveImagingConnection, resolveSecureDatabase } from "../../../src/api/defaults";
import type { ImagingConnection, SecureDatabase } from "../../../src/api/types";
import { BEGIN_MARKER as MANAGED_BLOCK_BEGIN } from "../../../src/postgres/managed-block";
import { validateConnectionAgainstDatabase, validateImagingConnection, validateSecureDatabase } from "../../../src/api/validate";
import { applyDefaults, loadCRD, loadSampleDocs, rootSchema, SAMPLES_DIR, schemaErrors } from "./crd-schema";

const SCHEMAS = {
  SecureDatabase: rootSchema(loadCRD("securedatabases.yaml")),
  ImagingConnection: rootSchema(loadCRD("imagingconnections.yaml")),
};

function only<T>(docs: T[]): T {
  expect(docs).to.have.length(1);
  return docs[0] as T;
}

const sdbSample = (file: string): SecureDatabase => decodeSecureDatabase(only(loadSampleDocs(file)), { strict: true });

describe("api/samples (deploy/samples)", () => {
  const files = readdirSync(SAMPLES_DIR).filter((f) => f.endsWith(".yaml")).sort();

  it("ships the documented samples", () => {
    expect(files).to.include.members([
      "imagingconnection.yaml",
      "imagingconnection-cast-chart.yaml",
      "postgresql-configmap.yaml",
      "securedatabase-generated-ca.yaml",
      "securedatabase-provided-ca.yaml",
    ]);
  });

  for (const file of files) {
    describe(file, () => {
      const docs = loadSampleDocs(file);

      it("parses as YAML into Kubernetes objects without a namespace (apply with -n)", () => {
        expect(docs).to.not.be.empty;
        for (const doc of docs) {
          const o = doc as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
          expect(o.apiVersion).to.be.a("string");
          expect(o.kind).to.be.a("string");
          expect(o.metadata?.name).to.be.a("string");
          expect(o.metadata?.namespace).to.equal(undefined);
        }
      });

      for (const [i, doc] of docs.entries()) {
        const kind = (doc as { kind: string }).kind;
        if (kind !== "SecureDatabase" && kind !== "ImagingConnection") continue;

        it(`document ${i} (${kind}) has the TypeScript shape, with no unknown field`, () => {
          const typed = decodeCustomResource(doc, { strict: true });
          expect(typed.kind).to.equal(kind);
        });

        it(`document ${i} (${kind}) satisfies the CRD schema once defaulted`, () => {
          const schema = SCHEMAS[kind];
          expect(schemaErrors(schema, applyDefaults(schema, doc))).to.deep.equal([]);
        });

        it(`document ${i} (${kind}) passes validation beyond the schema`, () => {
          const typed = decodeCustomResource(doc, { strict: true });
          const errors = typed.kind === "SecureDatabase" ? validateSecureDatabase(typed) : validateImagingConnection(typed);
          expect(errors).to.deep.equal([]);
        });

        it(`document ${i} (${kind}) resolves the same with and without the API server's schema defaults`, () => {
          const schema = SCHEMAS[kind];
          const defaulted = applyDefaults(schema, doc);
          if (kind === "SecureDatabase") {
            expect(resolveSecureDatabase(decodeSecureDatabase(defaulted))).to.deep.equal(resolveSecureDatabase(decodeSecureDatabase(doc)));
          } else {
            expect(resolveImagingConnection(decodeImagingConnection(defaulted))).to.deep.equal(resolveImagingConnection(decodeImagingConnection(doc)));
          }
        });
      }
    });
  }

  it("the ConfigMap sample is the one the generated-CA SecureDatabase manages, with both files and no managed block yet", () => {
    const sdb = sdbSample("securedatabase-generated-ca.yaml");
    const cm = only(loadSampleDocs("postgresql-configmap.yaml")) as { kind: string; metadata: { name: string }; data: Record<string, string> };
    expect(cm.kind).to.equal("ConfigMap");
    expect(cm.metadata.name).to.equal(sdb.spec.postgres.configMapName);
    const spec = resolveSecureDatabase(sdb);
    expect(cm.data[spec.postgres.postgresqlConfKey]).to.match(/listen_addresses/);
    expect(cm.data[spec.postgres.hbaConfKey]).to.match(/^host\s+all/m);
    expect(JSON.stringify(cm.data)).to.not.include(MANAGED_BLOCK_BEGIN);
  });

  it("the generated-CA sample resolves to what its comments promise", () => {
    const spec = resolveSecureDatabase(sdbSample("securedatabase-generated-ca.yaml"));
    expect(spec.ca.mode).to.equal("Generated");
    expect(spec.ca.secretName).to.equal("imaging-analysis-db-ca");
    expect(spec.ca.privateKey).to.deep.equal({ algorithm: "ECDSA", size: 384 });
    expect(spec.serverCertificate.secretName).to.equal("imaging-analysis-db-server-tls");
    expect(spec.serverCertificate.renewBeforeMs).to.equal(720 * 3_600_000);
    expect(spec.serverCertificate.dnsNames).to.deep.equal([
      "imaging-analysis-db.cast-imaging.svc.cluster.local",
      "imaging-analysis-db",
      "imaging-analysis-db.cast-imaging.svc",
    ]);
    expect(spec.workloadRef).to.deep.equal({ kind: "StatefulSet", name: "imaging-analysis-db", container: "postgres" });
    expect(spec.verification.endpoint).to.equal("imaging-analysis-db.cast-imaging.svc.cluster.local:5432");
  });

  it("the provided-CA sample names its CA Secret, trusts a parseable legacy CA and revokes by serial and by connection", () => {
    const spec = resolveSecureDatabase(sdbSample("securedatabase-provided-ca.yaml"));
    expect(spec.ca).to.include({ mode: "Provided", secretName: "external-analysis-db-ca" });
    expect(spec.serverCertificate.privateKey).to.deep.equal({ algorithm: "RSA", size: 3072 });
    expect(spec.serverCertificate.renewBeforeMs).to.equal(Math.round(2160 * 3_600_000 * 0.25));
    expect(spec.serverCertificate.ipAddresses).to.deep.equal(["192.0.2.15"]);
    expect(spec.trust.allowlist.map((a) => a.name)).to.deep.equal(["legacy-ca"]);
    expect(spec.trust.revocations).to.deep.equal([
      { serialNumber: "5A:0C:3E:91:7B:22:4D:10:8F:66:01:AB:CD:EF:12:34", reason: "keyCompromise" },
      { connectionName: "retired-dashboards", connectionNamespace: "cast-imaging-staging", reason: "cessationOfOperation" },
    ]);
  });

  it("the ImagingConnection sample targets CAST's imaging-services Deployment and analysis-node StatefulSet", () => {
    const imc: ImagingConnection = decodeImagingConnection(only(loadSampleDocs("imagingconnection.yaml")), { strict: true });
    const spec = resolveImagingConnection(imc);
    expect(spec.workloads).to.deep.equal([
      { kind: "Deployment", name: "imaging-services", containers: "all", mountPath: "/etc/cast-imaging/mtls/cast-imaging-analysis" },
      { kind: "StatefulSet", name: "analysis-node", containers: "all", mountPath: "/etc/cast-imaging/mtls/analysis" },
    ]);
    expect(spec.secretName).to.equal("cast-imaging-analysis-client-tls");
  });

  it("the ImagingConnection sample is admitted by the generated-CA SecureDatabase's pg_hba.conf rules", () => {
    const imc = decodeImagingConnection(only(loadSampleDocs("imagingconnection.yaml")), { strict: true });
    const sdb = sdbSample("securedatabase-generated-ca.yaml");
    expect(imc.spec.databaseRef.name).to.equal(sdb.metadata.name);
    expect(validateConnectionAgainstDatabase(imc, sdb)).to.deep.equal([]);
  });
});

describe("api/samples (the full examples in README.md)", () => {
  const readme = readFileSync(join(__dirname, "..", "..", "..", "README.md"), "utf8");
  const examples = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => parse(m[1]!) as { kind?: string }).filter((d) => d.kind === "SecureDatabase" || d.kind === "ImagingConnection");

  it("has full examples of both kinds (a SecureDatabase in full and one for CAST's console-postgres; a plain ImagingConnection, then one for CAST's chart)", () => {
    expect(examples.map((d) => d.kind).sort()).to.deep.equal(["ImagingConnection", "ImagingConnection", "SecureDatabase", "SecureDatabase"]);
  });

  for (const doc of examples) {
    it(`the ${doc.kind} example has the TypeScript shape, satisfies the CRD schema and passes validation`, () => {
      const typed = decodeCustomResource(doc, { strict: true });
      const schema = SCHEMAS[typed.kind];
      expect(schemaErrors(schema, applyDefaults(schema, doc))).to.deep.equal([]);
      expect(typed.kind === "SecureDatabase" ? validateSecureDatabase(typed) : validateImagingConnection(typed)).to.deep.equal([]);
    });
  }

  it("the ImagingConnection example is admitted by the SecureDatabase example", () => {
    const sdb = decodeSecureDatabase(examples.find((d) => d.kind === "SecureDatabase"), { strict: true });
    const imc = decodeImagingConnection(examples.find((d) => d.kind === "ImagingConnection"), { strict: true });
    expect(validateConnectionAgainstDatabase(imc, sdb)).to.deep.equal([]);
  });
});
