import { expect } from "chai";
import {
  DEFAULTS,
  defaultCACommonName,
  defaultRenewBeforeMs,
  joinHostPort,
  prepareImagingConnection,
  prepareSecureDatabase,
  resolveImagingConnection,
  resolveSecureDatabase,
} from "../../../src/api/defaults";
import { describePolicy } from "../../support/certificate-policy";
import { imc, sdb } from "./builders";

const H = 3_600_000;

function deepFreeze<T>(o: T): T {
  if (typeof o === "object" && o !== null) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

describe("api/defaults", () => {
  describe("resolveSecureDatabase", () => {
    it("fills every default of a minimal spec", () => {
      expect(resolveSecureDatabase(sdb())).to.deep.equal({
        host: "db.example.com",
        port: 5432,
        additionalDNSNames: [],
        additionalIPAddresses: [],
        ca: {
          mode: "Generated",
          secretName: "imaging-db-ca",
          propagationDelayMs: 120_000,
          rotationPolicy: "NewKey",
          commonName: "imaging-db.cast mTLS CA",
          duration: "87600h",
          durationMs: 87600 * H,
          renewBeforeMs: 720 * H,
          privateKey: { algorithm: "ECDSA", size: 256 },
        },
        serverCertificate: {
          secretName: "imaging-db-server-tls",
          duration: "2160h",
          durationMs: 2160 * H,
          renewBeforeMs: 720 * H,
          privateKey: { algorithm: "ECDSA", size: 256 },
          dnsNames: ["db.example.com"],
          ipAddresses: [],
        },
        postgres: {
          configMapName: "pg-config",
          postgresqlConfKey: "postgresql.conf",
          hbaConfKey: "pg_hba.conf",
          certificateDirectory: "/etc/postgresql/tls",
          configuration: "ConfigMap",
          configDirectory: "/etc/postgresql/mtls",
          entrypoint: "docker-entrypoint.sh",
          minTLSVersion: "TLSv1.2",
          hba: { rules: [{ databases: ["all"], users: ["all"], addresses: ["0.0.0.0/0", "::/0"], clientCertificate: "verify-full" }] },
        },
        reload: { strategy: "SQL", adminUser: "postgres", database: "postgres" },
        verification: { enabled: true, interval: "5m", intervalMs: 300_000, endpoint: "db.example.com:5432", serverName: "db.example.com" },
        allowedNamespaces: [],
        trust: { allowlist: [], revocations: [], revokeOnDelete: true },
      });
    });

    it("never modifies its input, and shares no arrays with it", () => {
      const input = deepFreeze(
        sdb({
          additionalDNSNames: ["db"],
          postgres: { configMapName: "pg", hba: { rules: [{ users: ["operator"] }] } },
          allowedNamespaces: ["staging"],
          trust: { revocations: [{ connectionName: "old" }] },
        }),
      );
      const before = JSON.stringify(input);
      const out = resolveSecureDatabase(input);
      expect(JSON.stringify(input)).to.equal(before);
      out.additionalDNSNames.push("x");
      out.postgres.hba.rules[0]?.users.push("x");
      out.allowedNamespaces.push("x");
      expect(JSON.stringify(input)).to.equal(before);
      const out2 = resolveSecureDatabase(sdb());
      out2.postgres.hba.rules[0]?.databases.push("x");
      expect(resolveSecureDatabase(sdb()).postgres.hba.rules[0]?.databases).to.deep.equal(["all"]);
      expect(DEFAULTS.hbaDatabases).to.deep.equal(["all"]);
    });

    it("puts an IP host into the IP SANs and brackets an IPv6 endpoint", () => {
      const out = resolveSecureDatabase(sdb({ host: "fd00::7", port: 6432, additionalDNSNames: ["db"], additionalIPAddresses: ["10.0.0.7", "fd00::7"] }));
      expect(out.serverCertificate.dnsNames).to.deep.equal(["db"]);
      expect(out.serverCertificate.ipAddresses).to.deep.equal(["fd00::7", "10.0.0.7"]);
      expect(out.verification.endpoint).to.equal("[fd00::7]:6432");
      expect(out.verification.serverName).to.equal("fd00::7");
    });

    it("deduplicates SANs that repeat the host", () => {
      const out = resolveSecureDatabase(sdb({ additionalDNSNames: ["db.example.com", "db"] }));
      expect(out.serverCertificate.dnsNames).to.deep.equal(["db.example.com", "db"]);
    });

    it("keeps an explicit verification endpoint, but still verifies against host", () => {
      const out = resolveSecureDatabase(sdb({ verification: { endpoint: "db-svc.cast.svc:5432", interval: "30s", enabled: false } }));
      expect(out.verification).to.deep.equal({
        enabled: false,
        interval: "30s",
        intervalMs: 30_000,
        endpoint: "db-svc.cast.svc:5432",
        serverName: "db.example.com",
      });
    });

    it("defaults the key size per algorithm", () => {
      const out = resolveSecureDatabase(sdb({
        ca: { privateKey: { algorithm: "RSA" } },
        serverCertificate: { privateKey: { algorithm: "ECDSA", size: 384 } },
      }));
      expect(out.ca.privateKey).to.deep.equal({ algorithm: "RSA", size: 2048 });
      expect(out.serverCertificate.privateKey).to.deep.equal({ algorithm: "ECDSA", size: 384 });
    });

    it("keeps the CA Secret of a provided CA and the names written in the spec", () => {
      const out = resolveSecureDatabase(sdb({
        ca: { mode: "Provided", secretName: "corp-ca", commonName: "Corp CA" },
        serverCertificate: { secretName: "db-tls" },
      }));
      expect(out.ca).to.include({ mode: "Provided", secretName: "corp-ca", commonName: "Corp CA" });
      expect(out.serverCertificate.secretName).to.equal("db-tls");
    });

    it("defaults a revocation's connection namespace to the SecureDatabase's, and its reason", () => {
      const out = resolveSecureDatabase(sdb({ trust: { revocations: [{ connectionName: "old" }, { serialNumber: "0a", reason: "superseded" }] } }));
      expect(out.trust.revocations).to.deep.equal([
        { connectionName: "old", connectionNamespace: "cast", reason: "unspecified" },
        { serialNumber: "0a", reason: "superseded" },
      ]);
    });

    it("keeps a workloadRef, with or without container", () => {
      expect(resolveSecureDatabase(sdb({ workloadRef: { kind: "StatefulSet", name: "pg" } })).workloadRef).to.deep.equal({ kind: "StatefulSet", name: "pg" });
      expect(resolveSecureDatabase(sdb()).workloadRef).to.equal(undefined);
    });
  });

  describe("renewal windows", () => {
    it("defaults to min(720h, duration / 3)", () => {
      expect(defaultRenewBeforeMs(2160 * H)).to.equal(720 * H);
      expect(defaultRenewBeforeMs(87600 * H)).to.equal(720 * H);
      expect(defaultRenewBeforeMs(H)).to.equal(20 * 60_000);
      expect(defaultRenewBeforeMs(60_000)).to.equal(20_000);
    });

    it("uses renewBefore or renewBeforePercentage when set", () => {
      const a = resolveSecureDatabase(sdb({ serverCertificate: { duration: "10m", renewBefore: "2m" } })).serverCertificate;
      expect(a).to.include({ duration: "10m", durationMs: 600_000, renewBefore: "2m", renewBeforeMs: 120_000 });
      const b = resolveSecureDatabase(sdb({ serverCertificate: { duration: "100h", renewBeforePercentage: 10 } })).serverCertificate;
      expect(b).to.include({ renewBeforePercentage: 10, renewBeforeMs: 10 * H });
      expect(b.renewBefore).to.equal(undefined);
    });

    it("describes a policy for humans", () => {
      expect(describePolicy(resolveSecureDatabase(sdb()).serverCertificate)).to.equal("duration 2160h, renews 720h before expiry");
    });
  });

  describe("CA common name", () => {
    it("is <name>.<namespace> mTLS CA, or <name> mTLS CA when that exceeds 64 characters", () => {
      expect(defaultCACommonName("db", "cast")).to.equal("db.cast mTLS CA");
      const longNs = "n".repeat(60);
      expect(defaultCACommonName("db", longNs)).to.equal("db mTLS CA");
      expect(defaultCACommonName("d".repeat(48), longNs).length).to.be.at.most(64);
    });
  });

  describe("joinHostPort", () => {
    it("brackets IPv6 only", () => {
      expect(joinHostPort("db", 5432)).to.equal("db:5432");
      expect(joinHostPort("10.0.0.1", 5432)).to.equal("10.0.0.1:5432");
      expect(joinHostPort("::1", 5432)).to.equal("[::1]:5432");
    });
  });

  describe("resolveImagingConnection", () => {
    it("fills every default of a minimal spec", () => {
      expect(resolveImagingConnection(imc())).to.deep.equal({
        databaseRef: { name: "imaging-db", namespace: "cast" },
        user: "operator",
        database: "postgres",
        sslMode: "verify-full",
        secretName: "analysis-client-tls",
        certificate: { duration: "2160h", durationMs: 2160 * H, renewBeforeMs: 720 * H, privateKey: { algorithm: "ECDSA", size: 256 } },
        workloads: [],
        chartSecretName: "ssl-certs",
        libpqEnv: false,
        verification: { enabled: true },
      });
    });

    it("targets a release or a selector, and names the chart's Secret", () => {
      const byRelease = resolveImagingConnection(imc({ castImaging: { release: "castimaging-v3", secretName: "pg-client" } }));
      expect(byRelease.castImaging).to.deep.equal({ release: "castimaging-v3" });
      expect(byRelease.chartSecretName).to.equal("pg-client");
      const bySelector = resolveImagingConnection(imc({ castImaging: { selector: { matchLabels: { app: "castimaging" } } } }));
      expect(bySelector.castImaging).to.deep.equal({ matchLabels: { app: "castimaging" } });
      expect(bySelector.chartSecretName).to.equal("ssl-certs");
    });

    it("defaults each workload's containers to all and its mount path to the connection's directory", () => {
      const input = deepFreeze(
        imc({
          databaseRef: { name: "db", namespace: "data" },
          workloads: [
            { kind: "Deployment", name: "imaging-services" },
            { kind: "StatefulSet", name: "analysis-node", containers: ["node"], mountPath: "/opt/mtls" },
          ],
        }),
      );
      const out = resolveImagingConnection(input);
      expect(out.databaseRef).to.deep.equal({ name: "db", namespace: "data" });
      expect(out.workloads).to.deep.equal([
        { kind: "Deployment", name: "imaging-services", containers: "all", mountPath: "/etc/cast-imaging/mtls/analysis" },
        { kind: "StatefulSet", name: "analysis-node", containers: ["node"], mountPath: "/opt/mtls" },
      ]);
      const containers = out.workloads[1]?.containers;
      if (Array.isArray(containers)) containers.push("x");
      expect(input.spec.workloads?.[1]?.containers).to.deep.equal(["node"]);
    });
  });

  describe("prepare*", () => {
    it("returns the resolved spec when valid", () => {
      const r = prepareSecureDatabase(sdb());
      expect(r.ok).to.equal(true);
      if (r.ok) expect(r.spec.ca.secretName).to.equal("imaging-db-ca");
      const c = prepareImagingConnection(imc());
      expect(c.ok && c.spec.secretName).to.equal("analysis-client-tls");
    });

    it("returns the errors, without throwing, when invalid", () => {
      const r = prepareSecureDatabase(sdb({ serverCertificate: { duration: "10d" } }));
      expect(r.ok).to.equal(false);
      if (!r.ok) expect(r.errors.map((e) => e.field)).to.deep.equal(["spec.serverCertificate.duration"]);
      const c = prepareImagingConnection(imc({ user: "bad user" }));
      expect(c.ok).to.equal(false);
    });
  });

  describe("prepared once per content", () => {
    const versioned = (resourceVersion: string) => {
      const o = sdb();
      o.metadata.resourceVersion = resourceVersion;
      return o;
    };
    it("the same informer object at the same resourceVersion is prepared once", () => {
      const o = versioned("10");
      expect(prepareSecureDatabase(o)).to.equal(prepareSecureDatabase(o));
    });
    it("a new resourceVersion of the same object is prepared again, and sees the change", () => {
      const o = versioned("10");
      const first = prepareSecureDatabase(o);
      o.metadata.resourceVersion = "11";
      o.spec.port = 6543;
      const second = prepareSecureDatabase(o);
      expect(second).to.not.equal(first);
      expect(second.ok && second.spec.port).to.equal(6543);
    });
    it("an object without resourceVersion (a test, a manifest) is prepared every time", () => {
      const o = imc();
      expect(prepareImagingConnection(o)).to.not.equal(prepareImagingConnection(o));
      expect(prepareImagingConnection(o)).to.deep.equal(prepareImagingConnection(o));
    });
  });
});
