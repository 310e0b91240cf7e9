/**
 * The two CRDs on a real kube-apiserver: they install, every sample is accepted, defaults land on stored
 * objects, every CEL rule and the schema reject what an admin could get wrong with the message they would read,
 * kubectl explain shows the descriptions and kubectl get the printer columns.
 */
import { expect } from "chai";
import { readdirSync } from "node:fs";
import { resolve } from "node:path";
import { API_VERSION } from "../../src/api/types";
import type { ControlPlane } from "../support/controlplane";
import { controlPlane } from "../support/hooks";

const SAMPLES = resolve(__dirname, "..", "..", "deploy", "samples");

type Json = Record<string, unknown>;

const collapse = (s: string): string => s.replace(/\s+/g, " ");

function sdb(spec: Json, name = "db"): Json {
  return {
    apiVersion: API_VERSION,
    kind: "SecureDatabase",
    metadata: { name },
    spec: { host: "db.example.com", postgres: { configMapName: "pg-config" }, ...spec },
  };
}

function imc(spec: Json, name = "conn"): Json {
  return {
    apiVersion: API_VERSION,
    kind: "ImagingConnection",
    metadata: { name },
    spec: { databaseRef: { name: "db" }, user: "operator", ...spec },
  };
}

const pg = (extra: Json): Json => ({ configMapName: "pg-config", ...extra });
const rule = (r: Json): Json => pg({ hba: { rules: [r] } });
/** PEM-shaped enough for the schema (the operator parses it; validate.ts checks that offline). */
const fakePem = (fill: string): string => `-----BEGIN CERTIFICATE-----\nMIIB${fill.repeat(60)}\n-----END CERTIFICATE-----`;

/** [what, object, substrings that stderr must contain] */
type Case = [string, Json, ...string[]];

const INVALID: Case[] = [
  // --- schema: types, required fields, enums, ranges, sizes, list semantics
  ["a SecureDatabase without host and postgres", { ...sdb({}), spec: { port: 5432 } }, "spec.host: Required value", "spec.postgres: Required value"],
  ["a port given as a string", sdb({ port: "5432" }), "spec.port: Invalid value: \"string\": spec.port in body must be of type integer"],
  ["port 0", sdb({ port: 0 }), "spec.port: Invalid value: 0: spec.port in body should be greater than or equal to 1"],
  ["port 65536", sdb({ port: 65536 }), "spec.port in body should be less than or equal to 65535"],
  ["an unknown CA mode", sdb({ ca: { mode: "External" } }), 'spec.ca.mode: Unsupported value: "External": supported values: "Generated", "Provided"'],
  ["an unknown key algorithm", sdb({ serverCertificate: { privateKey: { algorithm: "DSA" } } }), 'spec.serverCertificate.privateKey.algorithm: Unsupported value: "DSA"'],
  ["TLS 1.1", sdb({ postgres: pg({ minTLSVersion: "TLSv1.1" }) }), 'spec.postgres.minTLSVersion: Unsupported value: "TLSv1.1"'],
  ["a password method as client certificate mode", sdb({ postgres: rule({ clientCertificate: "scram-sha-256" }) }), 'spec.postgres.hba.rules[0].clientCertificate: Unsupported value: "scram-sha-256": supported values: "verify-full", "verify-ca", "none"'],
  ["a ConfigMap without name", sdb({ postgres: { hbaConfKey: "hba" } }), "spec.postgres.configuration: Required value: postgres.configuration is required without postgres.configMapName"],
  ["configuration ConfigMap without its name", sdb({ postgres: { configuration: "ConfigMap" } }), "spec.postgres.configMapName: Required value: postgres.configMapName is required with configuration ConfigMap"],
  ["configuration CommandLine without workloadRef", sdb({ postgres: { configuration: "CommandLine" } }), "spec.workloadRef: Required value: postgres.configuration CommandLine requires workloadRef"],
  ["a configMapName with configuration External", sdb({ postgres: { configuration: "External", configMapName: "pg" } }), "spec.postgres.configMapName: Invalid value"],
  ["an entrypoint outside CommandLine", sdb({ postgres: pg({ entrypoint: "postgres" }) }), "postgres.configDirectory and postgres.entrypoint are only for configuration CommandLine"],
  ["an unknown configuration", sdb({ postgres: { configuration: "Ansible" } }), 'spec.postgres.configuration: Unsupported value: "Ansible"'],
  ["an empty hba rule list", sdb({ postgres: pg({ hba: { rules: [] } }) }), "spec.postgres.hba.rules: Invalid value: 0: spec.postgres.hba.rules in body should have at least 1 items"],
  ["a duplicate DNS SAN", sdb({ additionalDNSNames: ["db", "db"] }), 'spec.additionalDNSNames[1]: Duplicate value: "db"'],
  ["a renewBeforePercentage of 100", sdb({ serverCertificate: { renewBeforePercentage: 100 } }), "spec.serverCertificate.renewBeforePercentage in body should be less than or equal to 99"],
  ["a restart of a DaemonSet", sdb({ workloadRef: { kind: "DaemonSet", name: "pg" } }), 'spec.workloadRef.kind: Unsupported value: "DaemonSet"'],
  ["an unknown revocation reason", sdb({ trust: { revocations: [{ serialNumber: "01", reason: "lost" }] } }), 'spec.trust.revocations[0].reason: Unsupported value: "lost"'],
  ["a serial number that is not hex", sdb({ trust: { revocations: [{ serialNumber: "xyz" }] } }), "spec.trust.revocations[0].serialNumber in body should match"],
  ["two allowlist entries with one name", sdb({ trust: { allowlist: [{ name: "a", certificate: fakePem("A") }, { name: "a", certificate: fakePem("B") }] } }), 'spec.trust.allowlist[1]: Duplicate value: {"name":"a"}'],
  ["a connection without user", { ...imc({}), spec: { databaseRef: { name: "db" } } }, "spec.user: Required value"],
  ["a connection with sslmode require", imc({ sslMode: "require" }), 'spec.sslMode: Unsupported value: "require": supported values: "verify-full", "verify-ca"'],
  ["the same workload twice", imc({ workloads: [{ kind: "Deployment", name: "imaging-services" }, { kind: "Deployment", name: "imaging-services" }] }), "spec.workloads[1]: Duplicate value", '"name":"imaging-services"'],
  ["a workload without kind", imc({ workloads: [{ name: "imaging-services" }] }), "spec.workloads[0].kind: Required value"],
  ["33 workloads", imc({ workloads: Array.from({ length: 33 }, (_, i) => ({ kind: "Deployment", name: `w${i}` })) }), "spec.workloads: Too many: 33: must have at most 32 items"],
  ["a libpqEnv given as a string", imc({ libpqEnv: "yes" }), 'spec.libpqEnv: Invalid value: "string": spec.libpqEnv in body must be of type boolean'],

  // --- CEL: SecureDatabase
  ["a SecureDatabase name too long for the owner label", sdb({}, "d".repeat(49)), "metadata.name must be at most 48 characters", "mtls.imaging.dev/owner=SecureDatabase.<name>"],
  ["an uppercase host", sdb({ host: "DB.example.com" }), 'spec.host: Invalid value: "DB.example.com": host must be a lowercase DNS name (RFC 1123, e.g. imaging-db.example.com) or an IP address'],
  ["a host with a port", sdb({ host: "db.example.com:5432" }), "host must be a lowercase DNS name", "without brackets or port"],
  ["a bracketed IPv6 host", sdb({ host: "[fd00::1]" }), "spec.host: Invalid value: \"[fd00::1]\": host must be a lowercase DNS name"],
  ["a DNS SAN with an underscore", sdb({ additionalDNSNames: ["db_1"] }), "spec.additionalDNSNames[0]: Invalid value: \"db_1\": each additional DNS name must be a lowercase DNS name"],
  ["a CIDR as IP SAN", sdb({ additionalIPAddresses: ["10.0.0.0/8"] }), "each additional IP address must be an IPv4 or IPv6 address (no CIDR, no brackets)"],
  ["a provided CA without Secret", sdb({ ca: { mode: "Provided" } }), "spec.ca.secretName: Required value: ca.secretName is required when ca.mode is Provided"],
  ["a CA with renewBefore and renewBeforePercentage", sdb({ ca: { renewBefore: "720h", renewBeforePercentage: 10 } }), "spec.ca.renewBeforePercentage: Forbidden: ca.renewBefore and ca.renewBeforePercentage are mutually exclusive"],
  ["a CA renewBefore as long as its duration", sdb({ ca: { duration: "8760h", renewBefore: "8760h" } }), "spec.ca.renewBefore: Invalid value: ca.renewBefore must be shorter than ca.duration"],
  ["a control character in the CA common name", sdb({ ca: { commonName: "Corp\u0007CA" } }), "ca.commonName must not contain control characters"],
  ["a CA duration in days", sdb({ ca: { duration: "3650d" } }), 'spec.ca.duration: Invalid value: "3650d": ca.duration must be a Go duration in h, m, s and ms (in that order)', "days are not supported"],
  ["a CA lasting 30s", sdb({ ca: { duration: "30s" } }), "ca.duration must be at least 1m"],
  ["a CA renewBefore with a space", sdb({ ca: { renewBefore: "720 h" } }), "ca.renewBefore must be a Go duration"],
  ["a CA renewBefore of 500ms", sdb({ ca: { renewBefore: "500ms" } }), "ca.renewBefore must be at least 1s"],
  ["an ECDSA CA key of 2048 bits", sdb({ ca: { privateKey: { algorithm: "ECDSA", size: 2048 } } }), "spec.ca.privateKey.size: Invalid value: ECDSA key size must be 256 (P-256) or 384 (P-384)"],
  ["an RSA CA key of 1024 bits", sdb({ ca: { privateKey: { algorithm: "RSA", size: 1024 } } }), "spec.ca.privateKey.size: Invalid value: RSA key size must be 2048, 3072 or 4096"],
  ["an RSA server key of 256 bits (the ECDSA size)", sdb({ serverCertificate: { privateKey: { algorithm: "RSA", size: 256 } } }), "spec.serverCertificate.privateKey.size: Invalid value: RSA key size must be 2048, 3072 or 4096"],
  ["an ECDSA server key of 521 bits", sdb({ serverCertificate: { privateKey: { size: 521 } } }), "spec.serverCertificate.privateKey.size: Invalid value: ECDSA key size must be 256 (P-256) or 384 (P-384)"],
  ["a server renewBefore and renewBeforePercentage", sdb({ serverCertificate: { renewBefore: "24h", renewBeforePercentage: 20 } }), "spec.serverCertificate.renewBeforePercentage: Forbidden: serverCertificate.renewBefore and serverCertificate.renewBeforePercentage are mutually exclusive; set at most one"],
  ["a server renewBefore longer than its duration", sdb({ serverCertificate: { duration: "1h", renewBefore: "2h" } }), "spec.serverCertificate.renewBefore: Invalid value: serverCertificate.renewBefore must be shorter than serverCertificate.duration"],
  ["a server duration of 1.5h", sdb({ serverCertificate: { duration: "1.5h" } }), "serverCertificate.duration must be a Go duration in h, m, s and ms"],
  ["a server certificate lasting 59s", sdb({ serverCertificate: { duration: "59s" } }), "serverCertificate.duration must be at least 1m"],
  ["a server renewBefore in days", sdb({ serverCertificate: { renewBefore: "30d" } }), "serverCertificate.renewBefore must be a Go duration"],
  ["a server renewBefore of 0s", sdb({ serverCertificate: { renewBefore: "0s" } }), "serverCertificate.renewBefore must be at least 1s"],
  ["a server certificate outliving its generated CA", sdb({ ca: { duration: "100h" }, serverCertificate: { duration: "200h" } }), "spec.serverCertificate.duration: Invalid value: serverCertificate.duration must not exceed ca.duration"],
  ["the server Secret named like the CA Secret", sdb({ ca: { secretName: "db-tls" }, serverCertificate: { secretName: "db-tls" } }), "spec.serverCertificate.secretName: Invalid value: serverCertificate.secretName and ca.secretName must name different Secrets"],
  ["the server Secret named like the default CA Secret", sdb({ serverCertificate: { secretName: "db-ca" } }), 'must name different Secrets (defaults "<name>-server-tls" and "<name>-ca"): the server certificate would overwrite the CA'],
  ["postgresql.conf and pg_hba.conf in one key", sdb({ postgres: pg({ hbaConfKey: "postgresql.conf" }) }), "spec.postgres.hbaConfKey: Invalid value: postgres.postgresqlConfKey and postgres.hbaConfKey must name different keys"],
  ["a certificate directory climbing out with ..", sdb({ postgres: pg({ certificateDirectory: "/etc/postgresql/../../root" }) }), 'postgres.certificateDirectory must not contain "." or ".." path segments'],
  ["an hba line injected through a database name", sdb({ postgres: rule({ databases: ["all all 0.0.0.0/0 trust\nhost"] }) }), "spec.postgres.hba.rules[0].databases[0]", "database names must be single pg_hba.conf tokens"],
  ["a comment hidden in a database name", sdb({ postgres: rule({ databases: ["postgres#"] }) }), "database names must be single pg_hba.conf tokens: whitespace, '#', quotes"],
  ["an @file inclusion as database", sdb({ postgres: rule({ databases: ["@dbs"] }) }), "database names must not start with '@' (file inclusion) or '/' (regular expression)"],
  ["two users in one token", sdb({ postgres: rule({ users: ["operator,postgres"] }) }), "spec.postgres.hba.rules[0].users[0]", "user names must be single pg_hba.conf tokens"],
  ["a quoted user", sdb({ postgres: rule({ users: ['"operator"'] }) }), "user names must be single pg_hba.conf tokens"],
  ["a non-breaking space in a user", sdb({ postgres: rule({ users: ["cast\u00a0operator"] }) }), "user names must be single pg_hba.conf tokens"],
  ["a tab in a database name", sdb({ postgres: rule({ databases: ["postgres\tall"] }) }), "database names must be single pg_hba.conf tokens"],
  ["a regular expression as user", sdb({ postgres: rule({ users: ["/^adm"] }) }), "user names must not start with '@' (file inclusion) or '/' (regular expression)"],
  ["a host name as address", sdb({ postgres: rule({ addresses: ["app.example.com"] }) }), "spec.postgres.hba.rules[0].addresses[0]", "addresses must be IP addresses or CIDR ranges"],
  ["a /33 prefix", sdb({ postgres: rule({ addresses: ["10.0.0.0/33"] }) }), "addresses must be IP addresses or CIDR ranges (e.g. 10.0.0.0/8, ::/0); host names and keywords are not allowed"],
  ["samenet as address", sdb({ postgres: rule({ addresses: ["samenet"] }) }), "host names and keywords are not allowed"],
  ["a password rule for every user (users omitted: defaulted to all)", sdb({ postgres: rule({ clientCertificate: "none", databases: ["keycloak"] }) }), "spec.postgres.hba.rules[0].users: Forbidden: clientCertificate none admits a password instead of a client certificate, so users must name the roles it admits: not all"],
  ["a password rule for a group", sdb({ postgres: rule({ clientCertificate: "none", users: ["keycloak", "+readers"], databases: ["keycloak"] }) }), "spec.postgres.hba.rules[0].users: Forbidden", "not a +group"],
  ["a password rule for every database (databases omitted: defaulted to all)", sdb({ postgres: rule({ clientCertificate: "none", users: ["keycloak"] }) }), "spec.postgres.hba.rules[0].databases: Forbidden: clientCertificate none admits a password instead of a client certificate, so databases must name the databases it admits to"],
  ["a password rule for sameuser", sdb({ postgres: rule({ clientCertificate: "none", users: ["keycloak"], databases: ["sameuser"] }) }), "spec.postgres.hba.rules[0].databases: Forbidden", "replication, sameuser, samerole or samegroup"],
  ["a password rule for replication", sdb({ postgres: rule({ clientCertificate: "none", users: ["keycloak"], databases: ["replication"] }) }), "spec.postgres.hba.rules[0].databases: Forbidden"],
  ["a restart without database workload", sdb({ reload: { strategy: "RolloutRestart" } }), "spec.reload.strategy: Required value: reload.strategy RolloutRestart requires workloadRef"],
  ["a group as reload admin", sdb({ reload: { adminUser: "+admins" } }), "reload.adminUser must be a plain role name"],
  ["a reload database with a space", sdb({ reload: { database: "my db" } }), "reload.database must be a plain database name"],
  ["a verification interval in days", sdb({ verification: { interval: "1d" } }), "verification.interval must be a Go duration"],
  ["a verification interval of 1s", sdb({ verification: { interval: "1s" } }), "verification.interval must be between 10s and 24h"],
  ["a verification endpoint on port 70000", sdb({ verification: { endpoint: "db.svc:70000" } }), "verification.endpoint must be host:port with a port from 1 to 65535"],
  ["a verification endpoint without port", sdb({ verification: { endpoint: "db.svc" } }), "verification.endpoint must be host:port"],
  ["a bracketed IPv4 verification endpoint", sdb({ verification: { endpoint: "[10.0.0.1]:5432" } }), "(IPv6 in brackets, e.g. [fd00::7]:5432)"],
  ["every namespace allowed with *", sdb({ allowedNamespaces: ["*"] }), 'allowedNamespaces does not accept "*": list every namespace explicitly'],
  ["an allowed namespace with uppercase", sdb({ allowedNamespaces: ["Staging"] }), "each allowed namespace must be a namespace name (RFC 1123 label)"],
  ["a grant of the reload admin role (postgres by default)", sdb({ access: [{ users: ["app", "postgres"] }] }), "spec.access", "access[].users must not name the role the operator reloads and verifies with"],
  ["a grant of the reload admin role it names", sdb({ reload: { adminUser: "dba" }, access: [{ users: ["dba"] }] }), "access[].users must not name the role the operator reloads and verifies with"],
  ["a grant of every role with a keyword", sdb({ access: [{ users: ["all"] }] }), "spec.access[0].users[0]", "access[].users must be role names, not pg_hba.conf keywords"],
  ["a grant of a group", sdb({ access: [{ users: ["+readers"] }] }), "access[].users must be role names"],
  ["a grant without users", sdb({ access: [{ namespaces: ["cast"] }] }), "spec.access[0].users: Required value"],
  ["a grant to every namespace with *", sdb({ access: [{ namespaces: ["*"], users: ["app"] }] }), "each namespace of a grant must be a namespace name (RFC 1123 label)"],
  ["a grant's maxDuration in days", sdb({ access: [{ users: ["app"], maxDuration: "90d" }] }), "access[].maxDuration must be a Go duration in h, m, s and ms"],
  ["an allowlisted certificate that is not PEM", sdb({ trust: { allowlist: [{ name: "x", certificate: "MIIB".padEnd(80, "A") }] } }), "trust.allowlist[].certificate must be a PEM certificate starting with -----BEGIN CERTIFICATE-----"],
  ["a revocation naming nothing", sdb({ trust: { revocations: [{ reason: "superseded" }] } }), "spec.trust.revocations[0]: Invalid value: each revocation must set exactly one of serialNumber, sha256Fingerprint or connectionName"],
  ["a revocation naming a serial and a connection", sdb({ trust: { revocations: [{ serialNumber: "0a", connectionName: "conn" }] } }), "each revocation must set exactly one of serialNumber, sha256Fingerprint or connectionName"],
  ["a revocation namespace without connection", sdb({ trust: { revocations: [{ serialNumber: "0a", connectionNamespace: "ns" }] } }), "spec.trust.revocations[0].connectionNamespace: Forbidden: revocation connectionNamespace is only valid together with connectionName"],

  // --- CEL: ImagingConnection
  ["an ImagingConnection name too long for the owner label", imc({}, "c".repeat(46)), "metadata.name must be at most 45 characters"],
  ["a user with a newline", imc({ user: "operator\nhost" }), "spec.user", "user must be a plain PostgreSQL role name"],
  ["a user with a quote", imc({ user: "o'brien" }), "user must be a plain PostgreSQL role name: whitespace, '#', quotes, commas"],
  ["a group as user", imc({ user: "+readers" }), "user must not start with '+', '@' or '/'"],
  ["a user with shell syntax", imc({ user: "x$(id)" }), "spec.user", "user must be a plain name: letters, digits, '_', '.' and '-', starting with a letter or '_'"],
  ["a user over 63 bytes", imc({ user: "é".repeat(40) }), "user must be at most 63 bytes (PostgreSQL NAMEDATALEN)"],
  ["a database with JDBC parameters", imc({ database: "postgres?sslmode=disable" }), "database must be a plain database name"],
  ["a client certificate with renewBefore and renewBeforePercentage", imc({ certificate: { renewBefore: "1h", renewBeforePercentage: 5 } }), "spec.certificate.renewBeforePercentage: Forbidden: certificate.renewBefore and certificate.renewBeforePercentage are mutually exclusive"],
  ["a client renewBefore longer than its duration", imc({ certificate: { duration: "24h", renewBefore: "48h" } }), "spec.certificate.renewBefore: Invalid value: certificate.renewBefore must be shorter than certificate.duration"],
  ["a client duration in weeks", imc({ certificate: { duration: "12w" } }), "certificate.duration must be a Go duration"],
  ["a client certificate lasting 10s", imc({ certificate: { duration: "10s" } }), "certificate.duration must be at least 1m"],
  ["a client renewBefore with a sign", imc({ certificate: { renewBefore: "-1h" } }), "certificate.renewBefore must be a Go duration"],
  ["a client renewBefore of 1ms", imc({ certificate: { renewBefore: "1ms" } }), "certificate.renewBefore must be at least 1s"],
  ["an ECDSA client key of 3072 bits", imc({ certificate: { privateKey: { size: 3072 } } }), "spec.certificate.privateKey.size: Invalid value: ECDSA key size must be 256 (P-256) or 384 (P-384)"],
  ["an RSA client key of 384 bits", imc({ certificate: { privateKey: { algorithm: "RSA", size: 384 } } }), "spec.certificate.privateKey.size: Invalid value: RSA key size must be 2048, 3072 or 4096"],
  ["a mount path with ..", imc({ workloads: [{ kind: "StatefulSet", name: "analysis-node", mountPath: "/etc/cast/../.." }] }), 'workloads[].mountPath must not contain "." or ".." path segments'],
];

/** Accepted on purpose: the rules must not be stricter than they say. */
const VALID: [string, Json][] = [
  ["an IPv6 host with IP SANs", sdb({ host: "fd00::5", additionalIPAddresses: ["10.0.0.5", "fd00::6"] })],
  ["a wildcard DNS SAN", sdb({ additionalDNSNames: ["*.db.example.com"] })],
  ["an RSA key without size (the operator picks 2048)", sdb({ serverCertificate: { privateKey: { algorithm: "RSA" } } })],
  ["one-minute certificates for tests", sdb({ ca: { duration: "1h" }, serverCertificate: { duration: "1m", renewBefore: "20s" } })],
  ["a percentage renewal", sdb({ serverCertificate: { duration: "1h30m", renewBeforePercentage: 33 } })],
  ["a provided CA with a long-lived leaf", sdb({ ca: { mode: "Provided", secretName: "corp-ca", duration: "1h" }, serverCertificate: { duration: "8760h" } })],
  ["hba keywords, groups and verify-ca", sdb({ postgres: pg({ hba: { rules: [{ users: ["postgres"], databases: ["postgres"] }, { databases: ["sameuser", "replication"], users: ["+readers", "Müller"], addresses: ["10.1.2.3", "fd00::/8"], clientCertificate: "verify-ca" }] } }) })],
  ["a password rule for named users on named databases after a certificate rule", sdb({ postgres: pg({ hba: { rules: [{ users: ["postgres"], databases: ["postgres"] }, { clientCertificate: "none", users: ["keycloak", "All"], databases: ["keycloak", "ALL"], addresses: ["10.42.0.0/16"] }] } }) })],
  ["a restart with a workload", sdb({ workloadRef: { kind: "Deployment", name: "pg" }, reload: { strategy: "RolloutRestart" } })],
  ["an IPv6 verification endpoint", sdb({ verification: { endpoint: "[fd00::7]:5432", interval: "24h" } })],
  ["a connection to another namespace with a mixed-case role", imc({ databaseRef: { name: "db", namespace: "data" }, user: "Cast_Analysis", sslMode: "verify-ca", certificate: { duration: "1m", renewBeforePercentage: 50 } })],
  ["the same name as Deployment and StatefulSet", imc({ workloads: [{ kind: "Deployment", name: "x" }, { kind: "StatefulSet", name: "x", containers: ["a", "b"], mountPath: "/opt/mtls" }] })],
  ["names at the length limits", { ...sdb({}, "d".repeat(48)) }],
  ["grants: postgres when another role reloads, per namespace, databases, lifetime, mounts", sdb({ reload: { adminUser: "dba" }, access: [{ users: ["postgres"] }, { namespaces: ["cast", "staging"], users: ["Cast_Analysis", "viewer"], databases: ["postgres"], maxDuration: "720h", mountIntoWorkloads: true }] })],
];

describe("CRDs on a real kube-apiserver", function () {
  let cp: ControlPlane;
  let ns: string;

  before(async () => {
    cp = controlPlane();
    await cp.installCRDs();
    ns = await cp.createNamespace("crds");
  });

  async function create(obj: Json, namespace = ns): Promise<{ code: number; stdout: string; stderr: string }> {
    return cp.kubectl(["create", "-n", namespace, "-f", "-"], { input: JSON.stringify(obj) });
  }

  async function getJson(resource: string, name: string, namespace = ns): Promise<Json> {
    const r = await cp.kubectl(["get", "-n", namespace, resource, name, "-o", "json"]);
    expect(r.code, r.stderr).to.equal(0);
    return JSON.parse(r.stdout) as Json;
  }

  it("are established and discoverable by short name and category", async () => {
    const r = await cp.kubectl(["api-resources", "--api-group=mtls.imaging.dev", "-o", "wide"]);
    expect(r.code, r.stderr).to.equal(0);
    expect(collapse(r.stdout)).to.match(/securedatabases sdb mtls\.imaging\.dev\/v1alpha1 true SecureDatabase .*mtls/);
    expect(collapse(r.stdout)).to.match(/imagingconnections imc mtls\.imaging\.dev\/v1alpha1 true ImagingConnection .*mtls/);
    const byCategory = await cp.kubectl(["get", "mtls", "-n", ns]);
    expect(byCategory.code, byCategory.stderr).to.equal(0);
  });

  describe("samples", () => {
    let samplesNs: string;
    before(async () => {
      samplesNs = await cp.createNamespace("samples");
      // securedatabase-provided-ca.yaml needs its CA Secret; its content is only read by the operator.
      const secret = {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "external-analysis-db-ca" },
        type: "kubernetes.io/tls",
        data: { "tls.crt": Buffer.from("dummy certificate").toString("base64"), "tls.key": Buffer.from("dummy key").toString("base64") },
      };
      const r = await create(secret, samplesNs);
      expect(r.code, r.stderr).to.equal(0);
    });

    it("are all accepted by server-side apply", async () => {
      const files = readdirSync(SAMPLES).filter((f) => f.endsWith(".yaml"));
      expect(files.length).to.be.at.least(4);
      const r = await cp.kubectl(["apply", "--server-side", "--field-manager=admin", "-n", samplesNs, "-f", SAMPLES]);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.include("securedatabase.mtls.imaging.dev/imaging-analysis-db serverside-applied");
      expect(r.stdout).to.include("securedatabase.mtls.imaging.dev/external-analysis-db serverside-applied");
      expect(r.stdout).to.include("imagingconnection.mtls.imaging.dev/cast-imaging-analysis serverside-applied");
      expect(r.stdout).to.include("configmap/imaging-analysis-db-config serverside-applied");
      expect(r.stderr).to.not.match(/unknown field|Warning/i);
    });

    it("re-apply without drift (GitOps): defaults do not bump the generation", async () => {
      const again = await cp.kubectl(["apply", "--server-side", "--field-manager=admin", "-n", samplesNs, "-f", SAMPLES]);
      expect(again.code, again.stderr).to.equal(0);
      for (const [resource, name] of [["sdb", "imaging-analysis-db"], ["sdb", "external-analysis-db"], ["imc", "cast-imaging-analysis"]] as const) {
        const o = await getJson(resource, name, samplesNs);
        expect((o.metadata as Json).generation, `${resource}/${name}`).to.equal(1);
      }
      const diff = await cp.kubectl(["diff", "--server-side", "--field-manager=admin", "-n", samplesNs, "-f", SAMPLES]);
      expect(diff.code, diff.stdout + diff.stderr).to.equal(0);
    });
  });

  describe("defaults", () => {
    it("land on a minimal SecureDatabase", async () => {
      const r = await create(sdb({}, "minimal"));
      expect(r.code, r.stderr).to.equal(0);
      const spec = (await getJson("securedatabase", "minimal")).spec;
      expect(spec).to.deep.equal({
        host: "db.example.com",
        port: 5432,
        ca: { mode: "Generated", duration: "87600h", propagationDelay: "2m", rotationPolicy: "NewKey", privateKey: { algorithm: "ECDSA" } },
        serverCertificate: { duration: "2160h", privateKey: { algorithm: "ECDSA" } },
        postgres: {
          configMapName: "pg-config",
          postgresqlConfKey: "postgresql.conf",
          hbaConfKey: "pg_hba.conf",
          certificateDirectory: "/etc/postgresql/tls",
          minTLSVersion: "TLSv1.2",
          hba: { rules: [{ databases: ["all"], users: ["all"], addresses: ["0.0.0.0/0", "::/0"], clientCertificate: "verify-full" }] },
        },
        reload: { strategy: "SQL", adminUser: "postgres", database: "postgres" },
        verification: { enabled: true, interval: "5m" },
      });
    });

    it("land on each hba rule and revocation", async () => {
      const r = await create(sdb({ postgres: pg({ hba: { rules: [{ users: ["operator"] }, { databases: ["postgres"], clientCertificate: "verify-ca" }] } }), trust: { revocations: [{ serialNumber: "0a" }] } }, "rules"));
      expect(r.code, r.stderr).to.equal(0);
      const spec = (await getJson("sdb", "rules")).spec as { postgres: { hba: { rules: Json[] } }; trust: { revocations: Json[] } };
      expect(spec.postgres.hba.rules).to.deep.equal([
        { users: ["operator"], databases: ["all"], addresses: ["0.0.0.0/0", "::/0"], clientCertificate: "verify-full" },
        { users: ["all"], databases: ["postgres"], addresses: ["0.0.0.0/0", "::/0"], clientCertificate: "verify-ca" },
      ]);
      expect(spec.trust.revocations).to.deep.equal([{ serialNumber: "0a", reason: "unspecified" }]);
    });

    it("land on a minimal ImagingConnection, leaving operator-computed ones unset", async () => {
      const r = await create(imc({ workloads: [{ kind: "Deployment", name: "imaging-services" }] }, "minimal"));
      expect(r.code, r.stderr).to.equal(0);
      const spec = (await getJson("imagingconnection", "minimal")).spec;
      expect(spec).to.deep.equal({
        databaseRef: { name: "db" },
        user: "operator",
        database: "postgres",
        sslMode: "verify-full",
        certificate: { duration: "2160h", privateKey: { algorithm: "ECDSA" } },
        workloads: [{ kind: "Deployment", name: "imaging-services" }],
        libpqEnv: false,
        verification: { enabled: true },
      });
    });
  });

  describe(`rejects ${INVALID.length} invalid objects with the message an admin reads`, () => {
    for (const [what, obj, ...messages] of INVALID) {
      it(`${what}`, async () => {
        const r = await create(obj);
        expect(r.code, `accepted: ${r.stdout}`).to.not.equal(0);
        expect(r.stderr).to.include(`The ${obj.kind as string} "${(obj.metadata as Json).name as string}" is invalid`);
        for (const m of messages) expect(r.stderr).to.include(m);
      });
    }
  });

  describe("accepts what the rules allow", () => {
    for (const [what, obj] of VALID) {
      it(what, async () => {
        const r = await cp.kubectl(["create", "--dry-run=server", "-n", ns, "-f", "-"], { input: JSON.stringify(obj) });
        expect(r.code, r.stderr).to.equal(0);
      });
    }
  });

  it("rejects an update that breaks a rule, with the same message", async () => {
    const created = await create(sdb({}, "update"));
    expect(created.code, created.stderr).to.equal(0);
    const r = await cp.kubectl(["patch", "-n", ns, "sdb", "update", "--type=merge", "-p", JSON.stringify({ spec: { reload: { strategy: "RolloutRestart" } } })]);
    expect(r.code).to.not.equal(0);
    expect(r.stderr).to.include("reload.strategy RolloutRestart requires workloadRef");
  });

  describe("kubectl explain", () => {
    it("documents securedatabase.spec.postgres", async () => {
      const r = await cp.kubectl(["explain", "securedatabase.spec.postgres"]);
      expect(r.code, r.stderr).to.equal(0);
      const text = collapse(r.stdout);
      expect(text).to.include("The PostgreSQL configuration the operator manages.");
      expect(text).to.include("hostssl ... cert clientcert=verify-full");
      expect(text).to.include("no TCP path without TLS remains, and no TCP path without a client certificate remains but the password rules (clientCertificate none) you list");
      for (const field of ["configMapName", "postgresqlConfKey", "hbaConfKey", "certificateDirectory", "minTLSVersion", "hba"]) expect(text).to.include(field);
      expect(text).to.match(/configuration\s+<string>/);
    });

    it("says which non-certificate path exists and which never does (securedatabase.spec.postgres.hba)", async () => {
      const r = await cp.kubectl(["explain", "securedatabase.spec.postgres.hba"]);
      expect(r.code, r.stderr).to.equal(0);
      const text = collapse(r.stdout);
      expect(text).to.include("unless it is a password rule (clientCertificate none) for named users on named databases");
      expect(text).to.include('There is deliberately no way to express a trust method, a "host" line or a "hostnossl" accept');
    });

    it("documents the hba tokens an admin may write (securedatabase.spec.postgres.hba.rules)", async () => {
      const r = await cp.kubectl(["explain", "securedatabase.spec.postgres.hba.rules"]);
      expect(r.code, r.stderr).to.equal(0);
      const text = collapse(r.stdout);
      expect(text).to.include("or the pg_hba.conf keywords all, sameuser, samerole, replication");
      expect(text).to.include("PostgreSQL's cert method only accepts verify-full");
      expect(text).to.include('Default: any IPv4 and IPv6 address (["0.0.0.0/0", "::/0"])');
    });

    it("documents imagingconnection.spec.workloads", async () => {
      const r = await cp.kubectl(["explain", "imagingconnection.spec.workloads"]);
      expect(r.code, r.stderr).to.equal(0);
      const text = collapse(r.stdout);
      expect(text).to.include("CAST Imaging workloads (in this namespace) that use this connection");
      expect(text).to.include("imaging-services");
      expect(text).to.include("analysis-node");
      expect(text).to.include("CASTCONNECTIONEXTRAPARAMETERS");
      expect(text).to.include('Default: "/etc/cast-imaging/mtls/<ImagingConnection name>"');
      expect(text).to.match(/kind\s+<string> -required-/);
      expect(text).to.include("enum: Deployment, StatefulSet");
    });

    it("documents every field recursively (no empty description)", async () => {
      for (const resource of ["securedatabase", "imagingconnection"]) {
        const r = await cp.kubectl(["explain", resource, "--recursive"]);
        expect(r.code, r.stderr).to.equal(0);
        expect(r.stdout).to.include("spec");
        expect(r.stdout).to.include("status");
        expect(r.stdout).to.not.include("<empty>");
      }
    });
  });

  describe("kubectl get", () => {
    let getNs: string;
    before(async () => {
      getNs = await cp.createNamespace("columns");
      expect((await create(sdb({ host: "imaging-db.cast.svc", port: 6432 }, "imaging-db"), getNs)).code).to.equal(0);
      expect((await create(imc({ databaseRef: { name: "imaging-db" }, user: "operator" }, "analysis"), getNs)).code).to.equal(0);
      // What the operator would write: the status schema must accept it, and the columns show it.
      const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
      const ready = { type: "Ready", status: "True", reason: "Verified", message: "serving serial 0a over mTLS", lastTransitionTime: now, observedGeneration: 1 };
      const sdbStatus = {
        status: {
          observedGeneration: 1,
          conditions: [ready],
          serverCertificate: { secretName: "imaging-db-server-tls", serialNumber: "0a", notBefore: now, notAfter: "2030-01-01T00:00:00Z", renewalTime: "2029-12-01T00:00:00Z", dnsNames: ["imaging-db.cast.svc"], ipAddresses: [] },
          caRotation: { phase: "Idle" },
          verification: { servedSerialNumber: "0a", matchesCurrent: true, lastAttemptTime: now, lastSuccessTime: now },
          trust: { allowlisted: [], revokedSerials: ["0b"], crlNumber: 2 },
          server: { configuration: "CommandLine", configMapName: "imaging-db-server-config" },
        },
      };
      const a = await cp.kubectl(["patch", "-n", getNs, "sdb", "imaging-db", "--subresource=status", "--type=merge", "-p", JSON.stringify(sdbStatus)]);
      expect(a.code, a.stderr).to.equal(0);
      const imcStatus = {
        status: {
          conditions: [{ ...ready, reason: "WorkloadsPatched" }],
          certificate: { serialNumber: "0c", notAfter: "2030-02-01T00:00:00Z" },
          workloads: [{ kind: "Deployment", name: "imaging-services", state: "Patched" }],
          declaration: { host: "imaging-db.cast.svc", port: 6432, user: "operator", sslMode: "verify-full", keyPath: "/etc/cast-imaging/mtls/analysis/client.pk8" },
        },
      };
      const b = await cp.kubectl(["patch", "-n", getNs, "imc", "analysis", "--subresource=status", "--type=merge", "-p", JSON.stringify(imcStatus)]);
      expect(b.code, b.stderr).to.equal(0);
    });

    it("shows the printer columns of both kinds", async () => {
      const r = await cp.kubectl(["get", "-n", getNs, "sdb,imc"]);
      expect(r.code, r.stderr).to.equal(0);
      const lines = r.stdout.split("\n").map(collapse);
      expect(lines).to.include.members(["NAME READY REASON HOST EXPIRES AGE", "NAME READY REASON USER DATABASE EXPIRES AGE"]);
      expect(r.stdout).to.match(/securedatabase\.mtls\.imaging\.dev\/imaging-db\s+True\s+Verified\s+imaging-db\.cast\.svc\s+2030-01-01T00:00:00Z\s+\d+s/);
      expect(r.stdout).to.match(/imagingconnection\.mtls\.imaging\.dev\/analysis\s+True\s+WorkloadsPatched\s+operator\s+imaging-db\s+2030-02-01T00:00:00Z\s+\d+s/);
    });

    it("shows the port and the configuration with -o wide", async () => {
      const r = await cp.kubectl(["get", "-n", getNs, "sdb", "-o", "wide"]);
      expect(r.code, r.stderr).to.equal(0);
      expect(collapse(r.stdout)).to.include("NAME READY REASON HOST PORT CONFIGURATION EXPIRES AGE");
      expect(r.stdout).to.match(/imaging-db\s+True\s+Verified\s+imaging-db\.cast\.svc\s+6432\s+CommandLine\s+2030-01-01T00:00:00Z/);
    });

    it("rejects a status the schema does not allow", async () => {
      const bad = { status: { conditions: [{ type: "Ready", status: "Yes", reason: "X", message: "", lastTransitionTime: "2026-01-01T00:00:00Z" }] } };
      const r = await cp.kubectl(["patch", "-n", getNs, "sdb", "imaging-db", "--subresource=status", "--type=merge", "-p", JSON.stringify(bad)]);
      expect(r.code).to.not.equal(0);
      expect(r.stderr).to.include('status.conditions[0].status: Unsupported value: "Yes"');
    });
  });
});
