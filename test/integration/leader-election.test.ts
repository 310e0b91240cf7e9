import { expect } from "chai";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { join, resolve } from "node:path";
import type { Lease } from "../../src/runtime/leader-election";
import { OPERATOR_NAMESPACE } from "../support/controlplane";
import { controlPlane } from "../support/hooks";
import { condition, getJson, kubectlOk } from "../support/kubectl-json";
import { imagingConnectionYaml } from "../support/manifests";
import { freePort, waitFor } from "../support/process";
import { TEST_OPERATOR_FLAGS } from "../support/operator";

const REPO = resolve(__dirname, "..", "..");
const LEASE_DURATION_MS = 4_000;
const RETRY_PERIOD_MS = 500;

interface Replica {
  name: string;
  child: ChildProcess;
  port: number;
  exited: Promise<number | null>;
}

/**
 * Two operator processes (the real entry point, src/main.ts) authenticated as the operator's ServiceAccount and bound
 * only by the shipped RBAC, electing a leader on a real Lease: one reconciles, the other waits; SIGKILL the leader
 * and the standby takes over within the lease duration; SIGTERM the leader and it hands the lease over at once.
 */
describe("Leader election: two replicas, one Lease", function () {
  this.timeout(120_000);
  const leaseName = `le-${randomBytes(3).toString("hex")}`;
  let ns: string;
  const replicas: Replica[] = [];

  const startReplica = async (name: string): Promise<Replica> => {
    const cp = controlPlane();
    const port = await freePort();
    const args = [
      "--import", "tsx", join(REPO, "src", "main.ts"),
      "--kubeconfig", cp.operatorKubeconfigPath,
      "--namespace", ns,
      "--health-port", String(port),
      "--leader-elect",
      "--leader-election-namespace", OPERATOR_NAMESPACE,
      "--leader-election-id", leaseName,
      "--lease-duration", `${LEASE_DURATION_MS / 1000}s`,
      "--renew-deadline", "3s",
      "--retry-period", `${RETRY_PERIOD_MS}ms`,
      ...TEST_OPERATOR_FLAGS,
    ];
    const child = spawn(process.execPath, args, { cwd: REPO, env: { ...process.env, POD_NAME: name }, stdio: ["ignore", "pipe", "pipe"] });
    const log = createWriteStream(join(cp.dir, `operator-${leaseName}-${name}.log`));
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    const replica = { name, child, port, exited };
    replicas.push(replica);
    await waitFor(`${name} /readyz`, async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200, 60_000, 200);
    return replica;
  };
  const metric = async (r: Replica, series: string): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${r.port}/metrics`)).text();
    const line = text.split("\n").find((l) => l.startsWith(`${series} `));
    return line ? Number(line.split(" ")[1]) : 0;
  };
  const holder = async (): Promise<string> => {
    const lease = await getJson<Lease>(["get", "lease", leaseName, "-n", OPERATOR_NAMESPACE]).catch(() => undefined);
    return lease?.spec?.holderIdentity ?? "";
  };
  const holderOf = (h: string) => replicas.find((r) => h.startsWith(`${r.name}_`));
  /** An ImagingConnection whose database does not exist: reconciled means its status says so. */
  const reconciledConnection = async (name: string, timeoutMs: number): Promise<number> => {
    const t0 = Date.now();
    await kubectlOk(["apply", "-f", "-"], imagingConnectionYaml(ns, name, "reporting"));
    await waitFor(`${name} reconciled`, async () => {
      const imc = await getJson<{ status?: { conditions?: { type: string; status: string; reason: string; message: string }[] } }>(["get", "imc", name, "-n", ns]);
      return condition(imc, "CertificateReady")?.reason === "DatabaseNotFound";
    }, timeoutMs, 100);
    return Date.now() - t0;
  };

  before(async () => {
    ns = await controlPlane().createNamespace("le");
  });

  after(async () => {
    for (const r of replicas) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill("SIGKILL");
    await Promise.all(replicas.map((r) => r.exited));
  });

  it("elects exactly one leader; only the leader reconciles, the standby is ready and idle", async () => {
    const a = await startReplica("replica-a");
    await waitFor("a leader", async () => (await holder()) !== "", 10_000);
    const b = await startReplica("replica-b");
    await reconciledConnection("first", 20_000);
    const leader = holderOf(await holder());
    expect(leader?.name).to.equal("replica-a");
    expect(await metric(a, "imaging_mtls_leader")).to.equal(1);
    expect(await metric(b, "imaging_mtls_leader")).to.equal(0);
    expect(await metric(a, 'imaging_mtls_reconcile_total{kind="ImagingConnection"}')).to.be.greaterThan(0);
    expect(await metric(b, 'imaging_mtls_reconcile_total{kind="ImagingConnection"}')).to.equal(0);
    // The standby keeps its caches warm and is ready, so a rolling update never waits on it.
    expect((await fetch(`http://127.0.0.1:${b.port}/readyz`)).status).to.equal(200);
  });

  it("after a SIGKILL of the leader, the standby takes over within the lease duration and catches up", async () => {
    const [a, b] = replicas as [Replica, Replica];
    const killedAt = Date.now();
    a.child.kill("SIGKILL");
    await a.exited;
    // Made while nobody leads: the new leader must still reconcile it.
    await kubectlOk(["apply", "-f", "-"], imagingConnectionYaml(ns, "while-leaderless", "reporting"));
    await waitFor("replica-b to lead", async () => holderOf(await holder())?.name === "replica-b", LEASE_DURATION_MS + 5_000, 50);
    const takeoverMs = Date.now() - killedAt;
    console.log(`      failover after SIGKILL: ${takeoverMs} ms (lease duration ${LEASE_DURATION_MS} ms, retry period ${RETRY_PERIOD_MS} ms)`);
    expect(takeoverMs).to.be.at.most(LEASE_DURATION_MS + 2 * RETRY_PERIOD_MS + 1_000);
    await waitFor("while-leaderless reconciled", async () => {
      const imc = await getJson<{ status?: { conditions?: { type: string; status: string; reason: string; message: string }[] } }>(["get", "imc", "while-leaderless", "-n", ns]);
      return condition(imc, "CertificateReady")?.reason === "DatabaseNotFound";
    }, 20_000);
    expect(await metric(b, "imaging_mtls_leader")).to.equal(1);
  });

  it("a SIGTERM'd leader finishes, releases the lease and exits 0; the standby takes over without waiting for expiry", async () => {
    const b = replicas[1]!;
    const c = await startReplica("replica-c");
    expect(await metric(c, "imaging_mtls_leader")).to.equal(0);
    const stoppedAt = Date.now();
    b.child.kill("SIGTERM");
    expect(await b.exited).to.equal(0);
    await waitFor("replica-c to lead", async () => holderOf(await holder())?.name === "replica-c", LEASE_DURATION_MS, 50);
    const handoverMs = Date.now() - stoppedAt;
    console.log(`      handover after SIGTERM: ${handoverMs} ms`);
    // Released, not expired: well under the lease duration.
    expect(handoverMs).to.be.below(LEASE_DURATION_MS);
    expect(await reconciledConnection("after-handover", 20_000)).to.be.below(20_000);
  });
});
