import { expect } from "chai";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ImagingConnection, SecureDatabase } from "../../../src/api/types";
import {
  absolutePathProblem,
  databaseNameProblem,
  formatValidationErrors,
  hbaAdmits,
  hbaTokenProblem,
  isCIDR,
  isDNSLabel,
  isDNSSubdomain,
  isIPAddress,
  parseEndpoint,
  pemCertificateProblem,
  roleNameProblem,
  validateConnectionAgainstDatabase,
  validateImagingConnection,
  validateSecureDatabase,
  type ValidationError,
} from "../../../src/api/validate";
import { SAMPLES_DIR } from "./crd-schema";
import { imc, sdb } from "./builders";

const pg = (extra: Partial<SecureDatabase["spec"]["postgres"]>): SecureDatabase["spec"]["postgres"] => ({ configMapName: "pg-config", ...extra });

/** A real certificate (the one in the provided-CA sample). */
const PEM = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(
  readFileSync(join(SAMPLES_DIR, "securedatabase-provided-ca.yaml"), "utf8").replace(/^ +/gm, ""),
)?.[0] ?? "";

function expectError(errors: ValidationError[], field: string, message: string | RegExp): void {
  const hit = errors.find((e) => e.field === field && (typeof message === "string" ? e.message.includes(message) : message.test(e.message)));
  expect(hit, `expected an error on ${field} matching ${String(message)}, got ${JSON.stringify(errors, null, 1)}`).to.not.equal(undefined);
}

describe("api/validate", () => {
  describe("building blocks", () => {
    it("DNS names", () => {
      for (const ok of ["db", "db.example.com", "a-b.c1", "1.2.3.4", "x".repeat(63)]) expect(isDNSSubdomain(ok), ok).to.equal(true);
      for (const bad of ["", "Db", "db_1", "-db", "db-", "db..x", `${"x".repeat(64)}.com`, "db.", "*.db", `${"a.".repeat(127)}a`]) {
        expect(isDNSSubdomain(bad), bad).to.equal(false);
      }
      expect(isDNSLabel("cast-imaging")).to.equal(true);
      expect(isDNSLabel("cast.imaging")).to.equal(false);
    });

    it("IP addresses and CIDRs", () => {
      for (const ok of ["10.0.0.1", "::1", "fd00::7", "FD00::7", "64:ff9b::1.2.3.4"]) expect(isIPAddress(ok), ok).to.equal(true);
      for (const bad of ["10.0.0", "10.0.0.256", "010.0.0.1", "::ffff:10.0.0.1", "0:0:0:0:0:ffff:a00:1", "fe80::1%eth0", "[::1]", "db", "10.0.0.0/8"]) {
        expect(isIPAddress(bad), bad).to.equal(false);
      }
      for (const ok of ["10.0.0.0/8", "0.0.0.0/0", "::/0", "fd00::/8", "10.1.2.3/32", "::1/128"]) expect(isCIDR(ok), ok).to.equal(true);
      for (const bad of ["10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/08", "10.0.0.0", "all", "samenet", "db/24", "::ffff:10.0.0.0/104"]) {
        expect(isCIDR(bad), bad).to.equal(false);
      }
    });

    it("pg_hba.conf tokens refuse everything that could inject syntax", () => {
      for (const ok of ["all", "sameuser", "replication", "+readers", "operator", "keycloak_v3", "Müller", "a.b-c$"]) {
        expect(hbaTokenProblem(ok), ok).to.equal(undefined);
      }
      for (const bad of [
        "",
        "a b",
        "a\tb",
        "a\nhost all all 0.0.0.0/0 trust",
        "a#b",
        '"all"',
        "it's",
        "a,b",
        "a\\b",
        "a\u0000b",
        "a\u00a0b",
        "a\u2028b",
        "@admins",
        "/^.*$",
      ]) {
        expect(hbaTokenProblem(bad), JSON.stringify(bad)).to.be.a("string");
      }
    });

    it("role names: tokens without '+', at most 63 bytes", () => {
      expect(roleNameProblem("operator")).to.equal(undefined);
      expect(roleNameProblem("+group")).to.match(/\+/);
      expect(roleNameProblem("é".repeat(32))).to.match(/63 bytes/);
      expect(roleNameProblem("é".repeat(31))).to.equal(undefined);
    });

    it("database names also refuse URL and .ini metacharacters", () => {
      expect(databaseNameProblem("postgres")).to.equal(undefined);
      for (const bad of ["a/b", "a?b", "a&b", "a;b", "a=b", "a b"]) expect(databaseNameProblem(bad), bad).to.be.a("string");
    });

    it("absolute paths", () => {
      expect(absolutePathProblem("/etc/postgresql/tls")).to.equal(undefined);
      for (const bad of ["etc/tls", "/", "/etc/../x", "/etc/./x", "/etc/tls/", "/etc/t ls", "/etc/t'ls", "//etc"]) {
        expect(absolutePathProblem(bad), bad).to.be.a("string");
      }
    });

    it("endpoints", () => {
      expect(parseEndpoint("db.svc:5432")).to.deep.equal({ host: "db.svc", port: 5432 });
      expect(parseEndpoint("10.0.0.1:1")).to.deep.equal({ host: "10.0.0.1", port: 1 });
      expect(parseEndpoint("[fd00::7]:65535")).to.deep.equal({ host: "fd00::7", port: 65535 });
      for (const bad of ["db", "db:0", "db:65536", "fd00::7:5432", "[db]:5432", "Db:5432", ":5432", "db:54a"]) {
        expect(parseEndpoint(bad), bad).to.equal(undefined);
      }
    });

    it("PEM certificates are parsed, one per entry", () => {
      expect(PEM).to.match(/^-----BEGIN CERTIFICATE-----\n/);
      expect(pemCertificateProblem(PEM)).to.equal(undefined);
      expect(pemCertificateProblem(`${PEM}\n${PEM}`)).to.match(/exactly one certificate, found 2/);
      expect(pemCertificateProblem("hello")).to.match(/BEGIN CERTIFICATE/);
      expect(pemCertificateProblem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----")).to.match(/does not parse/);
    });

    it("formats errors on one line", () => {
      expect(formatValidationErrors([
        { field: "spec.a", reason: "Invalid", message: "x" },
        { field: "spec.b", reason: "Required", message: "y" },
      ])).to.equal("spec.a: x; spec.b: y");
    });
  });

  describe("hbaAdmits", () => {
    it("follows first-match order, keywords and groups", () => {
      expect(hbaAdmits(undefined, "postgres", "postgres")).to.equal("certificate");
      expect(hbaAdmits([{ users: ["operator"] }], "postgres", "postgres")).to.equal("none");
      expect(hbaAdmits([{ users: ["postgres"], clientCertificate: "verify-ca" }, { users: ["all"] }], "postgres", "postgres")).to.equal("password");
      expect(hbaAdmits([{ users: ["+admins"] }], "postgres", "postgres")).to.equal("unknown");
      expect(hbaAdmits([{ databases: ["sameuser"] }], "postgres", "postgres")).to.equal("certificate");
      expect(hbaAdmits([{ databases: ["sameuser"] }], "operator", "postgres")).to.equal("none");
      expect(hbaAdmits([{ databases: ["samerole"] }], "operator", "postgres")).to.equal("unknown");
      const password = { users: ["keycloak"], databases: ["keycloak"], clientCertificate: "none" as const };
      expect(hbaAdmits([password, { users: ["all"] }], "keycloak", "keycloak")).to.equal("passwordOnly");
      expect(hbaAdmits([password, { users: ["all"] }], "keycloak", "postgres")).to.equal("certificate");
      expect(hbaAdmits([{ users: ["keycloak"] }, password], "keycloak", "keycloak")).to.equal("certificate");
    });
  });

  describe("validateSecureDatabase", () => {
    it("accepts a minimal spec and a full one", () => {
      expect(validateSecureDatabase(sdb())).to.deep.equal([]);
      expect(
        validateSecureDatabase(
          sdb({
            host: "10.0.0.7",
            port: 6432,
            additionalDNSNames: ["db", "*.db.svc"],
            additionalIPAddresses: ["fd00::7"],
            ca: { mode: "Provided", secretName: "corp-ca" },
            serverCertificate: { duration: "1m", renewBefore: "20s", privateKey: { algorithm: "RSA", size: 4096 } },
            postgres: pg({ hba: { rules: [{ users: ["postgres", "+admins"], databases: ["postgres"], addresses: ["10.0.0.0/8", "::1"] }] } }),
            workloadRef: { kind: "StatefulSet", name: "pg", container: "postgres" },
            reload: { strategy: "RolloutRestart" },
            verification: { interval: "10s", endpoint: "[fd00::7]:6432" },
            allowedNamespaces: ["staging"],
            trust: {
              allowlist: [{ name: "legacy", certificate: PEM }],
              revocations: [
                { serialNumber: "0A:1B" },
                { sha256Fingerprint: "ab".repeat(32) },
                { connectionName: "old", connectionNamespace: "staging" },
              ],
            },
          }),
        ),
      ).to.deep.equal([]);
    });

    const cases: [string, Partial<SecureDatabase["spec"]>, string, string | RegExp][] = [
      ["an uppercase host", { host: "DB.example.com" }, "spec.host", "lowercase DNS name"],
      ["a host with a port", { host: "db:5432" }, "spec.host", "without brackets or port"],
      ["only DNS names too long for a common name", { host: `${"a".repeat(60)}.example.com` }, "spec.host", "add a DNS name of at most 64 characters"],
      ["a bracketed IPv6 host", { host: "[fd00::1]" }, "spec.host", "IP address"],
      ["an empty host", { host: "" }, "spec.host", "required"],
      ["port 0", { port: 0 }, "spec.port", "1 to 65535"],
      ["port 70000", { port: 70000 }, "spec.port", "1 to 65535"],
      ["a bad DNS SAN", { additionalDNSNames: ["db_1"] }, "spec.additionalDNSNames[0]", "lowercase DNS name"],
      ["a duplicate DNS SAN", { additionalDNSNames: ["db", "db"] }, "spec.additionalDNSNames[1]", "duplicate"],
      ["a CIDR as IP SAN", { additionalIPAddresses: ["10.0.0.0/8"] }, "spec.additionalIPAddresses[0]", "IPv4 or IPv6"],
      ["a provided CA without Secret", { ca: { mode: "Provided" } }, "spec.ca.secretName", "required when ca.mode is Provided"],
      ["a CA duration in days", { ca: { duration: "3650d" } }, "spec.ca.duration", "days are not supported"],
      ["a 30s certificate", { serverCertificate: { duration: "30s" } }, "spec.serverCertificate.duration", "at least 1m"],
      ["a CA for 999999h (the CRD pattern's maximum)", { ca: { duration: "999999h" } }, "spec.ca.duration", "at most 876000h (100 years)"],
      [
        "renewBefore ≥ duration",
        { serverCertificate: { duration: "1h", renewBefore: "1h" } },
        "spec.serverCertificate.renewBefore",
        "shorter than serverCertificate.duration",
      ],
      [
        "renewBefore and percentage",
        { serverCertificate: { renewBefore: "1h", renewBeforePercentage: 10 } },
        "spec.serverCertificate.renewBeforePercentage",
        "mutually exclusive",
      ],
      ["percentage 100", { serverCertificate: { renewBeforePercentage: 100 } }, "spec.serverCertificate.renewBeforePercentage", "1 to 99"],
      [
        "a sub-second percentage window",
        { serverCertificate: { duration: "1m", renewBeforePercentage: 1 } },
        "spec.serverCertificate.renewBeforePercentage",
        "under 1s",
      ],
      ["renewBefore 500ms", { ca: { renewBefore: "500ms" } }, "spec.ca.renewBefore", "at least 1s"],
      [
        "RSA 256",
        { serverCertificate: { privateKey: { algorithm: "RSA", size: 256 } } },
        "spec.serverCertificate.privateKey.size",
        "RSA key size must be 2048, 3072 or 4096",
      ],
      ["ECDSA 2048", { ca: { privateKey: { size: 2048 } } }, "spec.ca.privateKey.size", "ECDSA key size must be 256 (P-256) or 384 (P-384)"],
      [
        "a server certificate outliving the CA",
        { ca: { duration: "100h" }, serverCertificate: { duration: "200h" } },
        "spec.serverCertificate.duration",
        "must not exceed ca.duration",
      ],
      [
        "server Secret = default CA Secret",
        { serverCertificate: { secretName: "imaging-db-ca" } },
        "spec.serverCertificate.secretName",
        "would overwrite the CA",
      ],
      [
        "server Secret = CA Secret",
        { ca: { secretName: "x" }, serverCertificate: { secretName: "x" } },
        "spec.serverCertificate.secretName",
        'must name different Secrets (both are "x")',
      ],
      ["a ConfigMap name with uppercase", { postgres: pg({ configMapName: "PG" }) }, "spec.postgres.configMapName", "RFC 1123 subdomain"],
      ["the same key twice", { postgres: pg({ hbaConfKey: "postgresql.conf" }) }, "spec.postgres.hbaConfKey", "different keys"],
      ["a relative certificate directory", { postgres: pg({ certificateDirectory: "tls" }) }, "spec.postgres.certificateDirectory", "absolute path"],
      ["a certificate directory with ..", { postgres: pg({ certificateDirectory: "/etc/../root" }) }, "spec.postgres.certificateDirectory", '".."'],
      [
        "a quote in the certificate directory",
        { postgres: pg({ certificateDirectory: "/etc/x' ssl = off" }) },
        "spec.postgres.certificateDirectory",
        "absolute path",
      ],
      ["no hba rules", { postgres: pg({ hba: { rules: [] } }) }, "spec.postgres.hba.rules", "at least one rule"],
      [
        "an hba line injected through a user",
        { postgres: pg({ hba: { rules: [{ users: ["x\nhost all all 0.0.0.0/0 trust"] }] } }) },
        "spec.postgres.hba.rules[0].users[0]",
        "single pg_hba.conf token",
      ],
      [
        "a comment injected through a database",
        { postgres: pg({ hba: { rules: [{ databases: ["all # x"] }] } }) },
        "spec.postgres.hba.rules[0].databases[0]",
        "single pg_hba.conf token",
      ],
      ["two users in one token", { postgres: pg({ hba: { rules: [{ users: ["a,postgres"] }] } }) }, "spec.postgres.hba.rules[0].users[0]", "commas"],
      ["a quoted database", { postgres: pg({ hba: { rules: [{ databases: ['"all"'] }] } }) }, "spec.postgres.hba.rules[0].databases[0]", "quotes"],
      ["an @file inclusion", { postgres: pg({ hba: { rules: [{ users: ["@users.txt"] }] } }) }, "spec.postgres.hba.rules[0].users[0]", "file inclusion"],
      [
        "a host name as address",
        { postgres: pg({ hba: { rules: [{ addresses: ["app.example.com"] }] } }) },
        "spec.postgres.hba.rules[0].addresses[0]",
        "IP addresses or CIDR ranges",
      ],
      [
        "samenet as address",
        { postgres: pg({ hba: { rules: [{ addresses: ["samenet"] }] } }) },
        "spec.postgres.hba.rules[0].addresses[0]",
        "keywords are not allowed",
      ],
      ["an empty user list", { postgres: pg({ hba: { rules: [{ users: [] }] } }) }, "spec.postgres.hba.rules[0].users", "must not be empty"],
      [
        "a bogus client certificate mode",
        { postgres: pg({ hba: { rules: [{ clientCertificate: "trust" as "verify-ca" }] } }) },
        "spec.postgres.hba.rules[0].clientCertificate",
        "unsupported value",
      ],
      ["a restart without workload", { reload: { strategy: "RolloutRestart" } }, "spec.reload.strategy", "requires workloadRef"],
      ["an admin user with a space", { reload: { adminUser: "post gres" } }, "spec.reload.adminUser", "single pg_hba.conf token"],
      ["a group as admin user", { reload: { adminUser: "+admins" } }, "spec.reload.adminUser", "'+'"],
      [
        "an admin no rule admits",
        { postgres: pg({ hba: { rules: [{ users: ["operator"] }] } }) },
        "spec.postgres.hba.rules",
        'no pg_hba.conf rule admits reload.adminUser "postgres"',
      ],
      [
        "an admin first matched by a password rule",
        { postgres: pg({ hba: { rules: [{ users: ["all"], clientCertificate: "verify-ca" }] } }) },
        "spec.postgres.hba.rules",
        "also demands a password",
      ],
      ["a 1s verification interval", { verification: { interval: "1s" } }, "spec.verification.interval", "between 10s and 24h"],
      ["an endpoint without port", { verification: { endpoint: "db" } }, "spec.verification.endpoint", "host:port"],
      ["an allowed namespace wildcard", { allowedNamespaces: ["*"] }, "spec.allowedNamespaces[0]", "list every namespace explicitly"],
      ["an allowed namespace with a dot", { allowedNamespaces: ["a.b"] }, "spec.allowedNamespaces[0]", "RFC 1123 label"],
      [
        "an allowlist entry that is not PEM",
        { trust: { allowlist: [{ name: "x", certificate: "hello" }] } },
        "spec.trust.allowlist[0].certificate",
        "BEGIN CERTIFICATE",
      ],
      [
        "two allowlist entries with one name",
        { trust: { allowlist: [{ name: "x", certificate: PEM }, { name: "x", certificate: PEM }] } },
        "spec.trust.allowlist[1]",
        "duplicate",
      ],
      [
        "a revocation naming nothing",
        { trust: { revocations: [{}] } },
        "spec.trust.revocations[0]",
        "exactly one of serialNumber, sha256Fingerprint or connectionName",
      ],
      ["a revocation naming two things", { trust: { revocations: [{ serialNumber: "01", connectionName: "x" }] } }, "spec.trust.revocations[0]", "exactly one"],
      [
        "a namespace without connection",
        { trust: { revocations: [{ serialNumber: "01", connectionNamespace: "x" }] } },
        "spec.trust.revocations[0].connectionNamespace",
        "only valid together with connectionName",
      ],
      ["a non-hex serial", { trust: { revocations: [{ serialNumber: "xyz" }] } }, "spec.trust.revocations[0].serialNumber", "hex"],
      ["a short fingerprint", { trust: { revocations: [{ sha256Fingerprint: "abcd" }] } }, "spec.trust.revocations[0].sha256Fingerprint", "64 hex digits"],
    ];
    for (const [what, spec, field, message] of cases) {
      it(`rejects ${what}`, () => expectError(validateSecureDatabase(sdb(spec)), field, message));
    }

    describe("password rules (clientCertificate none)", () => {
      const CERT = { users: ["postgres"], databases: ["postgres"] };
      const password = (rule: Partial<NonNullable<NonNullable<SecureDatabase["spec"]["postgres"]["hba"]>["rules"]>[number]>) =>
        sdb({ postgres: pg({ hba: { rules: [CERT, { clientCertificate: "none", ...rule }] } }) });

      it("accepts named users on named databases, in any order with certificate rules", () => {
        expect(validateSecureDatabase(password({ users: ["keycloak_user", "Keycloak"], databases: ["keycloak_db", "ALL"] }))).to.deep.equal([]);
        const first = sdb({ postgres: pg({ hba: { rules: [{ clientCertificate: "none", users: ["app"], databases: ["app"] }, CERT] } }) });
        expect(validateSecureDatabase(first)).to.deep.equal([]);
      });

      const refusals: [string, Parameters<typeof password>[0], string, string][] = [
        ["users omitted (they would default to all)", { databases: ["keycloak_db"] }, "spec.postgres.hba.rules[1].users", "must name the roles it admits"],
        ["databases omitted", { users: ["keycloak_user"] }, "spec.postgres.hba.rules[1].databases", "must name the databases it admits to"],
        ["users all", { users: ["keycloak_user", "all"], databases: ["keycloak_db"] }, "spec.postgres.hba.rules[1].users[1]", 'not "all"'],
        ["a +group", { users: ["+readers"], databases: ["keycloak_db"] }, "spec.postgres.hba.rules[1].users[0]", 'not the group "+readers"'],
      ];
      for (const keyword of ["all", "replication", "sameuser", "samerole", "samegroup"]) {
        refusals.push([`databases ${keyword}`, { users: ["u"], databases: ["db", keyword] }, "spec.postgres.hba.rules[1].databases[1]", `not the keyword "${keyword}"`]);
      }
      for (const [what, rule, field, message] of refusals) {
        it(`refuses ${what}`, () => {
          const errors = validateSecureDatabase(password(rule));
          expectError(errors, field, message);
          expect(errors.find((e) => e.field === field)?.message).to.match(/^clientCertificate "none" admits a password instead of a client certificate/);
        });
      }

      it("refuses a password rule that catches the operator's own login first", () => {
        const rules = [{ clientCertificate: "none" as const, users: ["postgres"], databases: ["postgres"] }, CERT];
        expectError(validateSecureDatabase(sdb({ postgres: pg({ hba: { rules } }) })), "spec.postgres.hba.rules", "is a password rule (clientCertificate none)");
      });
    });

    it("rejects a name too long for the owner label", () => {
      expectError(validateSecureDatabase(sdb({}, "d".repeat(49))), "metadata.name", "at most 48 characters");
      expect(validateSecureDatabase(sdb({}, "d".repeat(48)))).to.deep.equal([]);
    });

    it("does not insist on an admin rule when the operator never logs in", () => {
      const spec = { postgres: pg({ hba: { rules: [{ users: ["operator"] }] } }), reload: { strategy: "None" as const }, verification: { enabled: false } };
      expect(validateSecureDatabase(sdb(spec))).to.deep.equal([]);
    });
  });

  describe("validateImagingConnection", () => {
    it("accepts a minimal spec and a full one", () => {
      expect(validateImagingConnection(imc())).to.deep.equal([]);
      expect(
        validateImagingConnection(
          imc({
            databaseRef: { name: "imaging-db", namespace: "data" },
            user: "cast_Analysis",
            database: "keycloak_v3",
            sslMode: "verify-ca",
            secretName: "analysis-tls",
            certificate: { duration: "2m", renewBeforePercentage: 50, privateKey: { algorithm: "RSA", size: 3072 } },
            workloads: [
              { kind: "Deployment", name: "imaging-services" },
              { kind: "StatefulSet", name: "imaging-services", containers: ["a", "b"], mountPath: "/opt/cast/mtls" },
            ],
            libpqEnv: true,
            verification: { enabled: false },
          }),
        ),
      ).to.deep.equal([]);
    });

    const cases: [string, Partial<ImagingConnection["spec"]>, string, string | RegExp][] = [
      ["an empty user", { user: "" }, "spec.user", "required"],
      ["a user with a newline", { user: "op\nerator" }, "spec.user", "control characters"],
      ["a user with a comma", { user: "a,b" }, "spec.user", "commas"],
      ["a group as user", { user: "+admins" }, "spec.user", "'+'"],
      ["a user over 63 bytes", { user: "é".repeat(40) }, "spec.user", "63 bytes"],
      ["a database with a URL parameter", { database: "postgres?sslmode=disable" }, "spec.database", "JDBC"],
      ["a user with shell syntax (it would reach files the hba lines go into)", { user: "x$(id)" }, "spec.user", "must be a plain name: letters, digits, '_', '.' and '-'"],
      ["a user starting with a digit", { user: "1st" }, "spec.user", "starting with a letter or '_'"],
      ["a database with a pipe", { database: "db|x" }, "spec.database", "must be a plain name"],
      ["an unknown sslMode", { sslMode: "require" as "verify-ca" }, "spec.sslMode", "unsupported value"],
      ["a bad database reference", { databaseRef: { name: "DB" } }, "spec.databaseRef.name", "RFC 1123 subdomain"],
      ["a bad Secret name", { secretName: "a_b" }, "spec.secretName", "RFC 1123 subdomain"],
      ["renewBefore ≥ duration", { certificate: { duration: "1h", renewBefore: "2h" } }, "spec.certificate.renewBefore", "shorter than certificate.duration"],
      ["a client certificate for 999999h", { certificate: { duration: "999999h" } }, "spec.certificate.duration", "at most 876000h (100 years)"],
      ["RSA 1024", { certificate: { privateKey: { algorithm: "RSA", size: 1024 } } }, "spec.certificate.privateKey.size", "RSA key size"],
      ["a workload listed twice", { workloads: [{ kind: "Deployment", name: "x" }, { kind: "Deployment", name: "x" }] }, "spec.workloads[1]", "duplicate"],
      ["an empty container list", { workloads: [{ kind: "Deployment", name: "x", containers: [] }] }, "spec.workloads[0].containers", "must not be empty"],
      ["a relative mount path", { workloads: [{ kind: "Deployment", name: "x", mountPath: "mtls" }] }, "spec.workloads[0].mountPath", "absolute path"],
      ["a mount path with ..", { workloads: [{ kind: "Deployment", name: "x", mountPath: "/etc/../var" }] }, "spec.workloads[0].mountPath", '".."'],
      ["a DaemonSet", { workloads: [{ kind: "DaemonSet" as "Deployment", name: "x" }] }, "spec.workloads[0].kind", "unsupported value"],
    ];
    for (const [what, spec, field, message] of cases) {
      it(`rejects ${what}`, () => expectError(validateImagingConnection(imc(spec)), field, message));
    }

    it("rejects a name too long for the owner label", () => {
      expectError(validateImagingConnection(imc({}, "c".repeat(46))), "metadata.name", "at most 45 characters");
    });
  });

  describe("validateConnectionAgainstDatabase", () => {
    it("accepts a connection in the database's namespace that a rule admits", () => {
      expect(validateConnectionAgainstDatabase(imc(), sdb())).to.deep.equal([]);
    });

    it("refuses a revoked connection, matching the namespace", () => {
      expectError(
        validateConnectionAgainstDatabase(imc(), sdb({ trust: { revocations: [{ connectionName: "analysis" }] } })),
        "metadata.name",
        "revokes this connection",
      );
      expect(validateConnectionAgainstDatabase(
        imc(),
        sdb({ trust: { revocations: [{ connectionName: "analysis", connectionNamespace: "other" }] } }),
      )).to.deep.equal([]);
    });

    it("reports a user no pg_hba.conf rule admits", () => {
      const db = sdb({ postgres: pg({ hba: { rules: [{ users: ["postgres"] }] } }) });
      expectError(validateConnectionAgainstDatabase(imc(), db), "spec.user", 'admits user "operator"');
    });
  });

  describe("the rotate token", () => {
    it("must fit status.*.lastRotationToken (253 characters), on both kinds", () => {
      const long = "x".repeat(254);
      const sdb = {
        apiVersion: "mtls.imaging.dev/v1alpha1",
        kind: "SecureDatabase",
        metadata: { name: "db", namespace: "ns", annotations: { "mtls.imaging.dev/rotate": long } },
        spec: { host: "db.example", postgres: { configMapName: "pg" } },
      } as SecureDatabase;
      const imc = {
        apiVersion: "mtls.imaging.dev/v1alpha1",
        kind: "ImagingConnection",
        metadata: { name: "c", namespace: "ns", annotations: { "mtls.imaging.dev/rotate": long } },
        spec: { databaseRef: { name: "db" }, user: "u" },
      } as ImagingConnection;
      for (const errors of [validateSecureDatabase(sdb), validateImagingConnection(imc)]) {
        expect(errors.map((e) => e.field)).to.deep.equal(["metadata.annotations[mtls.imaging.dev/rotate]"]);
        expect(errors[0]?.message).to.contain("at most 253 characters (got 254)");
      }
      sdb.metadata.annotations = { "mtls.imaging.dev/rotate": "x".repeat(253) };
      expect(validateSecureDatabase(sdb)).to.deep.equal([]);
    });
  });
});
