import { expect } from "chai";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { ImagingConnection, SecureDatabase } from "../../src/api/types";
import { secretBytes, type SecretObject } from "../../src/kube/secrets";
import { generateCA, trustBundleFingerprints } from "../../src/pki";
import { controlPlane } from "../support/hooks";
import { getCASecret, getJson, kubectlOk, waitForCondition } from "../support/kubectl-json";
import { caKeySecret } from "../support/operator";
import { startMtlsLoad, type Attempt, type MtlsLoad } from "../support/mtls-load";
import { imagingConnectionYaml } from "../support/manifests";
import { startOperatorWithDatabase, type OperatorWithDatabase } from "../support/operator-fixture";
import { psql, type PostgresServer } from "../support/postgres";
import { waitFor } from "../support/process";
import { expectPhaseOrder } from "../support/invariants";
import { SECURE_DATABASE_OPT_IN_ANNOTATION } from "../../src/api/opt-in";

const failuresOf = (load: MtlsLoad): string[] => [...load.attempts.filter((a) => !a.ok).map((a) => a.error ?? "failed"), ...load.longLived.failures];
const served = (attempts: Attempt[]): string[] => [...new Set(attempts.filter((a) => a.ok).map((a) => a.servedSerial!))];
const presented = (attempts: Attempt[]): string[] => [...new Set(attempts.filter((a) => a.ok).map((a) => a.clientSerial))];

/** Polls the SecureDatabase's caRotation phase until it reaches `until` after having left Idle; the phases seen. */
async function followRotation(ns: string, until: string, onPhase?: (phase: string) => Promise<void>): Promise<{ phases: string[]; last: SecureDatabase }> {
  const phases: string[] = [];
  let last: SecureDatabase | undefined;
  await waitFor(
    `the CA rotation to reach ${until}`,
    async () => {
      last = await getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns]);
      const phase = last.status?.caRotation?.phase ?? "Idle";
      if (phases[phases.length - 1] !== phase) {
        phases.push(phase);
        await onPhase?.(phase);
      }
      return phase === until && phases.some((p) => p !== "Idle");
    },
    120_000,
    100,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; phases seen: ${phases.join(" → ")}; last: ${JSON.stringify(last?.status?.caRotation)}; conditions: ${JSON.stringify(last?.status?.conditions)}`);
  });
  return { phases, last: last! };
}


/**
 * Rotations against the real PostgreSQL while a client keeps connecting every 100 ms and holds one connection
 * open: the files change in place (the volume syncer swaps them atomically, as the kubelet does, and a second
 * late on the server side), the server reloads, and not one connection fails.
 */
describe("Rotation without a dropped connection (real API server, real PostgreSQL, continuous mTLS load)", function () {
  this.timeout(180_000);
  let env: OperatorWithDatabase;
  let ns: string;
  let pg: PostgresServer;
  let dir: string;
  let otherDir: string;
  let load: MtlsLoad;

  before(async () => {
    env = await startOperatorWithDatabase({
      name: "rot",
      // The server's "kubelet" lays changes down a second late, so every reload races the files, as in a cluster.
      databases: [{ roles: ["app", "other"], syncDelayMs: 1000 }],
      clientSecrets: ["app-client-tls", "other-client-tls"],
      secureDatabase: { access: [{ users: ["app", "other"] }] },
    });
    ({ ns, pg } = env);
    dir = env.clientDirs["app-client-tls"]!;
    otherDir = env.clientDirs["other-client-tls"]!;
    await kubectlOk(["apply", "-f", "-"], imagingConnectionYaml(ns, "app", "app"));
    await waitForCondition<ImagingConnection>("imc", ns, "app", "Ready", (c) => c.status === "True");
    await waitFor("client files", async () => env.clientSyncer.writes > 0, 10_000);
    load = await startMtlsLoad({ dir, host: "localhost", port: pg.port, user: "app" });
    await new Promise((r) => setTimeout(r, 500));
  });

  after(async () => {
    if (process.env.KEEP_PG_LOG && pg) await (await import("node:fs/promises")).copyFile(pg.logFile, process.env.KEEP_PG_LOG);
    await load?.stop();
    await env?.stop();
  });

  it("(i) server certificate: a new rotate token re-issues it once; the server reloads and serves it; no connection fails", async () => {
    const before = await getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns]);
    const oldSerial = before.status!.serverCertificate!.serialNumber!;
    const from = load.attempts.length;
    await kubectlOk(["annotate", "sdb", "db", "-n", ns, "mtls.imaging.dev/rotate=server-1"]);
    const after = await waitForCondition<SecureDatabase>("sdb", ns, "db", "Verified", (c) => c.status === "True" && !c.message.includes(oldSerial), 60_000);
    const newSerial = after.status!.serverCertificate!.serialNumber!;
    expect(newSerial).to.not.equal(oldSerial);
    expect(after.status?.serverCertificate?.lastRotationToken).to.equal("server-1");
    const secret = await getJson<SecretObject>(["get", "secret", "db-server-tls", "-n", ns]);
    expect(secret.metadata.annotations?.["mtls.imaging.dev/rotation-token"]).to.equal("server-1");
    await waitFor("the load to see the new server certificate", async () => served(load.attempts.slice(from)).includes(newSerial), 20_000);
    await new Promise((r) => setTimeout(r, 500));
    const window = load.attempts.slice(from);
    expect(failuresOf(load), failuresOf(load).join("\n")).to.deep.equal([]);
    expect(served(window)).to.have.members([oldSerial, newSerial]);
    expect(window.length).to.be.at.least(5);
    // An unchanged token never rotates again, whatever else changes on the object.
    await kubectlOk(["annotate", "sdb", "db", "-n", ns, "unrelated=1"]);
    await new Promise((r) => setTimeout(r, 1500));
    await env.operator.secureDatabaseQueue.idle();
    expect((await getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns])).status?.serverCertificate?.serialNumber).to.equal(newSerial);
  });

  it("(ii) client certificate: a new rotate token re-issues it; the files change in place and new connections present it; no connection fails", async () => {
    const before = await getJson<ImagingConnection>(["get", "imc", "app", "-n", ns]);
    const oldSerial = before.status!.certificate!.serialNumber!;
    const from = load.attempts.length;
    await kubectlOk(["annotate", "imc", "app", "-n", ns, "mtls.imaging.dev/rotate=client-1"]);
    const after = await waitForCondition<ImagingConnection>("imc", ns, "app", "ConnectionVerified", (c) => c.status === "True" && !c.message.includes(oldSerial));
    const newSerial = after.status!.certificate!.serialNumber!;
    expect(after.status?.certificate?.lastRotationToken).to.equal("client-1");
    expect(after.status?.verification?.serialNumber).to.equal(newSerial);
    await waitFor("the load to present the new client certificate", async () => presented(load.attempts.slice(from)).includes(newSerial), 20_000);
    await new Promise((r) => setTimeout(r, 500));
    expect(failuresOf(load), failuresOf(load).join("\n")).to.deep.equal([]);
    expect(presented(load.attempts.slice(from))).to.have.members([oldSerial, newSerial]);
  });

  it("renews a short-lived client certificate by itself at its renewal time, without a dropped connection", async () => {
    const before = await getJson<ImagingConnection>(["get", "imc", "app", "-n", ns]);
    const first = before.status!.certificate!.serialNumber!;
    const from = load.attempts.length;
    await kubectlOk(["patch", "imc", "app", "-n", ns, "--type=merge", "-p", JSON.stringify({ spec: { certificate: { duration: "1m", renewBefore: "50s" } } })]);
    // Shortening the duration replaces the 90-day certificate at once (DurationShortened); the next one comes
    // from the clock alone, at notAfter - renewBefore.
    let issued: string[] = [];
    await waitFor(
      "the new policy, then a renewal by the clock",
      async () => {
        const imc = await getJson<ImagingConnection>(["get", "imc", "app", "-n", ns]);
        const serial = imc.status?.certificate?.serialNumber;
        if (serial && serial !== first && !issued.includes(serial)) issued = [...issued, serial];
        return issued.length >= 2;
      },
      60_000,
      250,
    );
    const events = await getJson<{ items: { reason: string; message: string }[] }>(["get", "events", "-n", ns, "--field-selector", "involvedObject.name=app,reason=CertificateIssued"]);
    expect(events.items.map((e) => e.message).join("\n")).to.contain("DurationShortened").and.to.contain("RenewalTimeReached");
    await waitFor("the load to present the renewed certificate", async () => presented(load.attempts.slice(from)).includes(issued[1]!), 20_000);
    expect(failuresOf(load), failuresOf(load).join("\n")).to.deep.equal([]);
  });

  it("(iv) revoking another connection: its certificate goes into the CRL and is refused, while this one keeps working", async () => {
    await kubectlOk(["apply", "-f", "-"], imagingConnectionYaml(ns, "other", "other"));
    const other = await waitForCondition<ImagingConnection>("imc", ns, "other", "Ready", (c) => c.status === "True");
    const otherSerial = other.status!.certificate!.serialNumber!;
    await waitFor("other's files", async () => (await readFile(join(otherDir, "client.crt"), "utf8").catch(() => "")).length > 0, 10_000);
    const asOther = () => psql({ host: "localhost", port: pg.port, user: "other", sslmode: "verify-full", sslcert: join(otherDir, "client.crt"), sslkey: join(otherDir, "client.key"), sslrootcert: join(otherDir, "root.crt"), command: "SELECT current_user" });
    expect((await asOther()).stdout.trim()).to.equal("other");
    const before = await getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns]);
    const from = load.attempts.length;
    await kubectlOk(["patch", "sdb", "db", "-n", ns, "--type=merge", "-p", JSON.stringify({ spec: { trust: { revocations: [{ connectionName: "other", reason: "keyCompromise" }] } } })]);
    const after = await waitForCondition<SecureDatabase>("sdb", ns, "db", "Ready", (c) => c.status === "True");
    await waitFor("the CRL listing other's certificate", async () => ((await getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns])).status?.trust?.revokedSerials ?? []).includes(otherSerial), 30_000);
    expect(after.status?.trust?.crlNumber).to.be.at.least(before.status!.trust!.crlNumber!);
    let refusal = "";
    await waitFor(
      "the server to refuse the revoked certificate",
      async () => {
        const r = await asOther();
        refusal = r.stderr;
        return r.code !== 0;
      },
      30_000,
      200,
    );
    expect(refusal).to.match(/certificate revoked/i);
    const revoked = await waitForCondition<ImagingConnection>("imc", ns, "other", "Revoked", (c) => c.status === "True");
    expect(revoked.status?.conditions?.find((c) => c.type === "Ready")).to.include({ status: "False", reason: "Revoked" });
    const events = await getJson<{ items: { reason: string; message: string }[] }>(["get", "events", "-n", ns, "--field-selector", "involvedObject.name=db,reason=CRLUpdated"]);
    expect(events.items.map((e) => e.message).join("\n")).to.contain(`${otherSerial} (ImagingConnection ${ns}/other, keyCompromise)`);
    await new Promise((r) => setTimeout(r, 500));
    expect(failuresOf(load), failuresOf(load).join("\n")).to.deep.equal([]);
    expect(load.attempts.length - from).to.be.at.least(5);
  });

  it("(iii) CA rotation with overlap: Overlap → Reissuing → Finishing → Idle, every certificate re-issued from the new CA, no connection fails", async () => {
    const before = await getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns]);
    const oldCA = before.status!.ca!.serialNumber!;
    const oldServer = before.status!.serverCertificate!.serialNumber!;
    const from = load.attempts.length;
    await kubectlOk(["patch", "sdb", "db", "-n", ns, "--type=merge", "-p", JSON.stringify({ spec: { ca: { propagationDelay: "2s" } } })]);
    await kubectlOk(["annotate", "sdb", "db", "-n", ns, "mtls.imaging.dev/rotate-ca=ca-1"]);
    let described = "";
    const { phases, last: after } = await followRotation(ns, "Idle", async (phase) => {
      if (phase === "Overlap" && !described) described = await kubectlOk(["describe", "sdb", "db", "-n", ns]);
    });
    // On-call reads where the rotation stands, and what it waits for, in kubectl describe.
    expect(described).to.match(/Message:\s+Overlap: (waiting for|the server and all)/);
    expect(described).to.match(/Type:\s+CARotating/);
    expect(described).to.match(/Phase:\s+Overlap/);
    const newCA = after.status!.ca!.serialNumber!;
    expect(newCA).to.not.equal(oldCA);
    expect(after.status?.caRotation).to.include({ phase: "Idle", oldCASerial: oldCA, newCASerial: newCA });
    expectPhaseOrder(phases);
    const events = await getJson<{ items: { reason: string }[] }>(["get", "events", "-n", ns, "--field-selector", "involvedObject.name=db"]);
    expect(events.items.map((e) => e.reason)).to.include.members(["CARotationStarted", "CARotationPromoted", "CARotationRetiredOldCA", "CARotationCompleted"]);
    // The server and the client now hold leaves of the new CA; the old CA and its key are gone.
    expect(after.status!.serverCertificate!.serialNumber).to.not.equal(oldServer);
    const imc = await waitForCondition<ImagingConnection>("imc", ns, "app", "Ready", (c) => c.status === "True");
    expect(imc.status?.certificate?.issuerFingerprintSHA256).to.equal(after.status?.ca?.fingerprintSHA256);
    for (const gone of ["db-ca-next", "db-ca-previous"]) {
      const at = caKeySecret(ns, gone);
      expect((await controlPlane().kubectl(["get", "secret", at.name, "-n", at.namespace])).code, gone).to.not.equal(0);
    }
    const bundle = secretBytes(await getJson<SecretObject>(["get", "secret", "db-server-tls", "-n", ns]))["ca.crt"]!.toString();
    expect(bundle.match(/BEGIN CERTIFICATE/g)).to.have.length(1);
    await waitFor("the load to see the new server certificate", async () => served(load.attempts.slice(from)).includes(after.status!.serverCertificate!.serialNumber!), 20_000);
    await new Promise((r) => setTimeout(r, 500));
    expect(failuresOf(load), failuresOf(load).join("\n")).to.deep.equal([]);
    expect(served(load.attempts.slice(from))).to.include.members([oldServer, after.status!.serverCertificate!.serialNumber!]);
    // The same token never rotates the CA again.
    await kubectlOk(["annotate", "sdb", "db", "-n", ns, "unrelated=2", "--overwrite"]);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns])).status?.ca?.serialNumber).to.equal(newCA);
  });

  it("a CA rotation survives operator restarts in the middle of its phases (its state is in the API server)", async () => {
    const before = await getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns]);
    const oldCA = before.status!.ca!.serialNumber!;
    const from = load.attempts.length;
    await kubectlOk(["patch", "sdb", "db", "-n", ns, "--type=merge", "-p", JSON.stringify({ spec: { ca: { propagationDelay: "3s" } } })]);
    await kubectlOk(["annotate", "sdb", "db", "-n", ns, "mtls.imaging.dev/rotate-ca=ca-2", "--overwrite"]);
    const restartedIn: string[] = [];
    const { phases, last } = await followRotation(ns, "Idle", async (phase) => {
      if (phase !== "Overlap" && phase !== "Reissuing") return;
      await env.restartOperator();
      restartedIn.push(phase);
    });
    expectPhaseOrder(phases);
    expect(restartedIn.length, phases.join(" → ")).to.be.at.least(1);
    expect(last.status?.ca?.serialNumber).to.not.equal(oldCA);
    expect(last.status?.caRotation).to.include({ phase: "Idle", oldCASerial: oldCA, newCASerial: last.status?.ca?.serialNumber });
    await new Promise((r) => setTimeout(r, 500));
    expect(failuresOf(load), failuresOf(load).join("\n")).to.deep.equal([]);
    expect(load.attempts.length - from).to.be.at.least(20);
  });

  it("a CA renewed with its own key (rotationPolicy SameKey) replaces the old one at once: nothing re-issued, no connection fails", async () => {
    const before = await getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns]);
    const keyBefore = secretBytes(await getCASecret<SecretObject>(ns, "db-ca"))["tls.key"]!;
    const from = load.attempts.length;
    // The short-lived client certificate of the renewal test keeps renewing by itself: stop that first.
    await kubectlOk(["patch", "imc", "app", "-n", ns, "--type=json", "-p", JSON.stringify([{ op: "remove", path: "/spec/certificate" }])]);
    await waitForCondition<ImagingConnection>("imc", ns, "app", "Ready", (c) => c.status === "True");
    const clientSerial = (await getJson<ImagingConnection>(["get", "imc", "app", "-n", ns])).status!.certificate!.serialNumber!;
    await kubectlOk(["patch", "sdb", "db", "-n", ns, "--type=merge", "-p", JSON.stringify({ spec: { ca: { rotationPolicy: "SameKey" } } })]);
    await kubectlOk(["annotate", "sdb", "db", "-n", ns, "mtls.imaging.dev/rotate-ca=same-1", "--overwrite"]);
    const after = await waitForCondition<SecureDatabase>("sdb", ns, "db", "Ready", (c) => c.status === "True", 30_000);
    await waitFor("the renewed CA in status", async () => (await getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns])).status?.ca?.serialNumber !== before.status!.ca!.serialNumber, 30_000);
    const renewed = await getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns]);
    expect(renewed.status?.caRotation?.phase ?? "Idle").to.equal("Idle");
    expect(secretBytes(await getCASecret<SecretObject>(ns, "db-ca"))["tls.key"]!.equals(keyBefore)).to.equal(true);
    expect(renewed.status?.ca?.notAfter).to.not.equal(before.status?.ca?.notAfter);
    // Nothing re-issued: the server and the client keep their certificates.
    await new Promise((r) => setTimeout(r, 1500));
    expect((await getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns])).status?.serverCertificate?.serialNumber).to.equal(after.status?.serverCertificate?.serialNumber);
    expect((await getJson<ImagingConnection>(["get", "imc", "app", "-n", ns])).status?.certificate?.serialNumber).to.equal(clientSerial);
    const events = await getJson<{ items: { reason: string }[] }>(["get", "events", "-n", ns, "--field-selector", "involvedObject.name=db,reason=CARenewedSameKey"]);
    expect(events.items).to.have.length(1);
    // Both trust bundles now hold the renewed certificate alone.
    for (const name of ["app-client-tls", "db-server-tls"]) {
      await waitFor(`${name} to trust the renewed CA`, async () => {
        const bundle = secretBytes(await getJson<SecretObject>(["get", "secret", name, "-n", ns]))["ca.crt"]!;
        return trustBundleFingerprints(bundle).join() === renewed.status!.ca!.fingerprintSHA256;
      }, 30_000);
    }
    await new Promise((r) => setTimeout(r, 1000));
    expect(failuresOf(load), failuresOf(load).join("\n")).to.deep.equal([]);
    expect(load.attempts.length - from).to.be.at.least(10);
  });

  it("a brought CA the user replaces: both trusted and old certificates kept until the new CA is everywhere, then re-issued; no connection fails", async () => {
    const from = load.attempts.length;
    const replaceWith = async (commonName: string) => {
      const brought = await generateCA({ commonName, duration: 365 * 24 * 3600_000, now: new Date() });
      const body = { apiVersion: "v1", kind: "Secret", type: "kubernetes.io/tls", metadata: { name: "brought-ca", namespace: ns, annotations: { [SECURE_DATABASE_OPT_IN_ANNOTATION]: "db" } }, data: { "tls.crt": Buffer.from(brought.certPem).toString("base64"), "tls.key": Buffer.from(brought.keyPkcs8Pem).toString("base64") } };
      await kubectlOk(["apply", "-f", "-"], JSON.stringify(body));
      return brought;
    };
    // Switching to a brought CA is itself a replacement of the CA in use; then the user replaces the brought one.
    for (const [k, commonName] of ["Brought CA one", "Brought CA two"].entries()) {
      const before = await getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns]);
      const brought = await replaceWith(commonName);
      if (k === 0) await kubectlOk(["patch", "sdb", "db", "-n", ns, "--type=merge", "-p", JSON.stringify({ spec: { ca: { mode: "Provided", secretName: "brought-ca" } } })]);
      const { phases, last } = await followRotation(ns, "Idle");
      expectPhaseOrder(phases);
      expect(last.status?.ca?.serialNumber).to.equal(brought.facts.serialNumber);
      expect(last.status?.caRotation).to.include({ oldCASerial: before.status!.ca!.serialNumber, newCASerial: brought.facts.serialNumber });
      expect(last.status?.serverCertificate?.serialNumber).to.not.equal(before.status?.serverCertificate?.serialNumber);
      const imc = await waitForCondition<ImagingConnection>("imc", ns, "app", "Ready", (c) => c.status === "True");
      expect(imc.status?.certificate?.issuerFingerprintSHA256).to.equal(brought.facts.fingerprintSha256);
      expect((await controlPlane().kubectl(["get", "secret", "brought-ca-previous", "-n", ns])).code).to.not.equal(0);
      await waitFor("the load to see the server certificate of the brought CA", async () => served(load.attempts.slice(from)).includes(last.status!.serverCertificate!.serialNumber!), 20_000);
    }
    await new Promise((r) => setTimeout(r, 500));
    expect(failuresOf(load), failuresOf(load).join("\n")).to.deep.equal([]);
  });
});
