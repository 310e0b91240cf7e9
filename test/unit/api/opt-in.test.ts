import { expect } from "chai";
import { decideOptIn, optInCommand, optInNames, type OptInFacts } from "../../../src/api/opt-in";
import { caSecretOptIn, configMapOptIn, workloadOptIn } from "../../../src/reconcilers/secure-database/opt-in";
import { connectionWorkloadOptIn, releaseOptInCommand } from "../../../src/reconcilers/imaging-connection/opt-in";
import { iniConfigMapConflict } from "../../../src/reconcilers/imaging-connection/workload-reconciler";
import { rotationNameConflict } from "../../../src/reconcilers/secure-database/ca-rotation-step";
import { resolved } from "../reconcilers/secure-database/fixtures";

const facts = (annotations: Record<string, string> | undefined, o: Partial<OptInFacts> = {}): OptInFacts => ({
  object: "ConfigMap pg-config",
  ref: "configmap/pg-config",
  namespace: "cast",
  annotations,
  annotation: "mtls.imaging.dev/secure-database",
  asker: { kind: "SecureDatabase", name: "db" },
  action: "write into",
  grandfathered: false,
  ...o,
});

describe("opt-in (issue 16 item 5)", () => {
  it("reads a comma-separated list, blanks ignored", () => {
    expect(optInNames(" a, b ,,c ")).to.deep.equal(["a", "b", "c"]);
    expect(optInNames(undefined)).to.deep.equal([]);
  });

  it("opts in only the named asker; the refusal names the object and the exact command, and says nothing was written", () => {
    expect(decideOptIn(facts({ "mtls.imaging.dev/secure-database": "other,db" }))).to.deep.equal({ ok: true, how: "annotation" });
    const v = decideOptIn(facts(undefined));
    expect(v.ok).to.equal(false);
    if (v.ok) return;
    expect(v.reason).to.equal("OptInMissing");
    expect(v.message).to.include("ConfigMap pg-config").and.include("kubectl annotate -n cast configmap/pg-config mtls.imaging.dev/secure-database=db").and.include("nothing was written");
  });

  it("keeps the names already listed in the command (with --overwrite)", () => {
    const f = facts({ "mtls.imaging.dev/secure-database": "other" });
    expect(optInCommand(f)).to.equal("kubectl annotate --overwrite -n cast configmap/pg-config mtls.imaging.dev/secure-database=other,db");
    const v = decideOptIn(f);
    expect(v.ok ? "" : v.message).to.include('lists "other"');
  });

  it("`*` opts in every ImagingConnection, never a SecureDatabase", () => {
    expect(decideOptIn(facts({ "mtls.imaging.dev/secure-database": "*" })).ok).to.equal(false);
    const imc = facts({ "mtls.imaging.dev/imaging-connections": "*" }, { annotation: "mtls.imaging.dev/imaging-connections", asker: { kind: "ImagingConnection", name: "app" } });
    expect(decideOptIn(imc).ok).to.equal(true);
  });

  it("grandfathers what the operator already manages for the asker; another annotation may count", () => {
    expect(decideOptIn(facts(undefined, { grandfathered: true }))).to.deep.equal({ ok: true, how: "grandfathered" });
    const alt = facts({ "mtls.imaging.dev/command-line": "db" }, { alsoAccepted: [{ annotation: "mtls.imaging.dev/command-line", value: "db" }] });
    expect(decideOptIn(alt).ok).to.equal(true);
  });

  it("ConfigMap: the owner label of this database grandfathers it, another's does not", () => {
    expect(configMapOptIn({ labels: { "mtls.imaging.dev/owner": "SecureDatabase.db" } }, "cast", "db", "pg").ok).to.equal(true);
    expect(configMapOptIn({ labels: { "mtls.imaging.dev/owner": "SecureDatabase.x" } }, "cast", "db", "pg").ok).to.equal(false);
  });

  it("database workload: the server Secret volume grandfathers it; the command-line annotation opts in too", () => {
    const spec = resolved({ workloadRef: { kind: "StatefulSet", name: "pg" } });
    const bare = { metadata: { name: "pg" }, spec: { template: { spec: { containers: [{ name: "postgres" }] } } } };
    const v = workloadOptIn(bare, spec, "cast", "db");
    expect(v.ok ? "" : v.message).to.include("kubectl annotate -n cast statefulset/pg mtls.imaging.dev/secure-database=db");
    const mounted = { ...bare, spec: { template: { spec: { containers: [{ name: "postgres" }], volumes: [{ name: "mtls-server-tls", secret: { secretName: spec.serverCertificate.secretName } }] } } } };
    expect(workloadOptIn(mounted, spec, "cast", "db").ok).to.equal(true);
    const otherSecret = { ...bare, spec: { template: { spec: { containers: [{ name: "postgres" }], volumes: [{ name: "mtls-server-tls", secret: { secretName: "else" } }] } } } };
    expect(workloadOptIn(otherSecret, spec, "cast", "db").ok).to.equal(false);
    expect(workloadOptIn({ ...bare, metadata: { name: "pg", annotations: { "mtls.imaging.dev/command-line": "db" } } }, spec, "cast", "db").ok).to.equal(true);
  });

  it("brought CA: grandfathered only when status.ca names this Secret and this CA", () => {
    const inUse = { secretName: "corp-ca", fingerprintSHA256: "AA" };
    expect(caSecretOptIn({}, "cast", "db", "corp-ca", inUse, "AA").ok).to.equal(true);
    expect(caSecretOptIn({}, "cast", "db", "corp-ca", inUse, "BB").ok).to.equal(false);
    expect(caSecretOptIn({}, "cast", "db", "corp-ca", { ...inUse, secretName: "other" }, "AA").ok).to.equal(false);
    expect(caSecretOptIn({ annotations: { "mtls.imaging.dev/secure-database": "db2,db" } }, "cast", "db", "corp-ca", undefined, "AA").ok).to.equal(true);
  });

  it("CAST workload: named, `*`, grandfathered; a release-found one gets the one command for the whole release", () => {
    const w = (annotations?: Record<string, string>) => ({ metadata: { name: "viewer-etl", namespace: "cast", ...(annotations ? { annotations } : {}) } });
    expect(connectionWorkloadOptIn("Deployment", w({ "mtls.imaging.dev/imaging-connections": "a, app" }), "app", false).ok).to.equal(true);
    expect(connectionWorkloadOptIn("Deployment", w({ "mtls.imaging.dev/imaging-connections": "*" }), "app", false).ok).to.equal(true);
    expect(connectionWorkloadOptIn("Deployment", w(), "app", true).ok).to.equal(true);
    const v = connectionWorkloadOptIn("Deployment", w(), "app", false, { release: "castimaging-v3" });
    expect(v.ok ? "" : v.message)
      .to.include("kubectl annotate -n cast deployment/viewer-etl mtls.imaging.dev/imaging-connections=app")
      .and.include("kubectl annotate -n cast deployment,statefulset -l imaging.service mtls.imaging.dev/imaging-connections=app");
    expect(releaseOptInCommand("cast", "app", { matchLabels: { tier: "x" } })).to.include("-l imaging.service,tier=x");
  });
});

describe("NameConflict for the fixed names a rotation and a workload's .ini use", () => {
  const secret = (labels?: Record<string, string>) => ({ metadata: { name: "db-ca-next", ...(labels ? { labels } : {}) } });
  it("<ca>-next / <ca>-previous: free or this database's is fine; any other is a conflict", () => {
    const ours = { "mtls.imaging.dev/owner": "SecureDatabase.db", "mtls.imaging.dev/owner-namespace": "cast" };
    expect(rotationNameConflict(undefined, "cast", "db", "db-ca-next", "db-ca")).to.equal(undefined);
    expect(rotationNameConflict(secret(ours), "cast", "db", "db-ca-next", "db-ca")).to.equal(undefined);
    expect(rotationNameConflict(secret(), "cast", "db", "db-ca-next", "db-ca")).to.include("was not created by the operator").and.include("never overwritten");
    expect(rotationNameConflict(secret({ "mtls.imaging.dev/owner": "SecureDatabase.x" }), "cast", "db", "db-ca-previous", "db-ca")).to.include("belongs to SecureDatabase x");
    // The key namespace holds every database's CAs: a same-named database of another namespace is not this one.
    expect(rotationNameConflict(secret({ ...ours, "mtls.imaging.dev/owner-namespace": "other" }), "cast", "db", "db-ca-next", "db-ca")).to.include("belongs to SecureDatabase db of namespace other");
  });
  it("the .ini ConfigMap: ours (owner cast-ini) or absent is fine; any other is a conflict", () => {
    const cm = (labels?: Record<string, string>) => ({ metadata: { name: "cast-mtls-ini-deployment-x", ...(labels ? { labels } : {}) } });
    expect(iniConfigMapConflict(undefined, "Deployment", "x")).to.equal(undefined);
    expect(iniConfigMapConflict(cm({ "mtls.imaging.dev/owner": "cast-ini" }), "Deployment", "x")).to.equal(undefined);
    expect(iniConfigMapConflict(cm(), "Deployment", "x")).to.include("ConfigMap cast-mtls-ini-deployment-x").and.include("never overwritten");
  });
});
