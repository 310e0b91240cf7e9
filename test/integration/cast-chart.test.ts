/**
 * CAST Imaging as CAST's Helm chart installs it (the fixture of test/fixtures/cast-imaging-chart, installed and
 * upgraded with the real helm v4), with the real kube-controller-manager rolling Deployments and StatefulSets out
 * and the kubelet stand-in playing the chart's init containers (copy at pod start, chmod where the chart does).
 * One ImagingConnection names the release; every PostgreSQL-using component the chart wires for TLS gets its
 * certificate the way the chart expects it, through upgrades and rotations.
 */
import type * as k8s from "@kubernetes/client-node";
import { expect } from "chai";
import { X509Certificate } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { ImagingConnection, SecureDatabase } from "../../src/api/types";
import { rolloutState } from "../../src/imaging/rollout";
import type { Workload } from "../../src/imaging/pod-template";
import { RESOURCES } from "../../src/kube/resources";
import { RestClient } from "../../src/kube/rest";
import { secretBytes, type SecretObject } from "../../src/kube/secrets";
import { silentLogger } from "../../src/log";
import { probeServer } from "../../src/postgres/probe";
import { Informer, type KubeObject } from "../../src/runtime/informer";
import { install, upgrade } from "../support/helm";
import { getJson, kubectlOk, waitForCondition } from "../support/kubectl-json";
import { startKubeletStandIn, type KubeletStandIn } from "../support/kubelet-standin";
import { startOperatorWithDatabase, type OperatorWithDatabase } from "../support/operator-fixture";
import { jdbcConnect, psql } from "../support/postgres";
import { waitFor } from "../support/process";

const CHART = resolve(__dirname, "..", "fixtures", "cast-imaging-chart");
const RELEASE = "castimaging-v3";
const FILES_VOLUME = "postgres-ssl-files";
const IN_CONTAINER = "/etc/ssl/certs-postgres";
type Kind = "Deployment" | "StatefulSet";
/** The chart's TLS-wired components (workload name → kind, and whether its init container chmods the key). */
const WIRED: Record<string, { kind: Kind; chmod: boolean }> = {
  "console-analysis-node-core": { kind: "StatefulSet", chmod: true },
  "console-control-panel": { kind: "Deployment", chmod: true },
  "viewer-etl": { kind: "Deployment", chmod: false },
};
const WITHOUT_CERTIFICATE = ["console-authentication-service", "console-dashboards", "console-service", "console-sso-service"];

type WorkloadObject = Workload & KubeObject;
interface WorkloadJson {
  metadata: { name: string; generation?: number; annotations?: Record<string, string> };
  spec: { template: { metadata?: { annotations?: Record<string, string> }; spec: k8s.V1PodSpec } };
}

const connectionYaml = (ns: string, extra = "") => `apiVersion: mtls.imaging.dev/v1alpha1
kind: ImagingConnection
metadata: { name: cast, namespace: ${ns} }
spec:
  databaseRef: { name: db }
  user: operator
  castImaging: { release: ${RELEASE} }
${extra}`;

/** Where a consumer's current pod reads the files: the folder the stand-in's "init container" copied them into. */
async function podFiles(standin: KubeletStandIn, name: string): Promise<string> {
  return standin.currentFilesDir(WIRED[name]!.kind, name, FILES_VOLUME);
}

/** The .ini section's settings, with the in-container directory replaced by the pod's folder. */
async function iniSettings(dir: string): Promise<Record<string, string>> {
  const ini = await readFile(join(dir, "sslconfig.ini"), "utf8");
  const settings: Record<string, string> = {};
  for (const line of ini.split("\n")) {
    const m = /^([a-z]+)=(.*)$/.exec(line);
    if (m) settings[m[1]!] = m[2]!.replace(IN_CONTAINER, dir);
  }
  return settings;
}

/**
 * Every consumer's rollouts as the controllers report them, watched: how many were in progress at once at worst,
 * and each one's generations (one per restart).
 */
function watchRollouts(kubeConfig: k8s.KubeConfig, ns: string) {
  const client = new RestClient(kubeConfig);
  const informers = (["Deployment", "StatefulSet"] as const).map((kind) => ({
    kind,
    informer: new Informer<WorkloadObject>(client, { type: RESOURCES[kind], namespaces: [ns] }, silentLogger()),
  }));
  const seen = { maxInProgress: 0, inProgress: new Set<string>() };
  const update = () => {
    const busy = new Set<string>();
    for (const { kind, informer } of informers) {
      for (const w of informer.list(ns)) {
        if (WIRED[w.metadata.name]?.kind === kind && rolloutState(kind, w).state !== "Complete") busy.add(w.metadata.name);
      }
    }
    seen.inProgress = busy;
    seen.maxInProgress = Math.max(seen.maxInProgress, busy.size);
  };
  for (const { informer } of informers) {
    informer.on(update);
    informer.start();
  }
  return {
    seen,
    reset: () => (seen.maxInProgress = seen.inProgress.size),
    synced: Promise.all(informers.map((i) => i.informer.synced)),
    stop: () => informers.forEach((i) => i.informer.stop()),
  };
}

/**
 * A CAST component under load: every 150 ms a new mTLS connection (verify-full) with the files of the pod that
 * runs now, as the component would open them; a pod replaced by a restart hands over to the next.
 */
function consumerLoad(standin: KubeletStandIn, name: string, port: number) {
  const attempts: { ok: boolean; dir: string; serial: string; error?: string }[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const dir = await podFiles(standin, name).catch(() => undefined);
      if (dir) {
        const read = (f: string) => readFile(join(dir, f), "utf8");
        const files = await Promise.all([read("client.crt"), read("client-key.pem"), read("root.crt")]).catch(() => undefined);
        // A folder deleted between listing and reading belongs to a pod that just went away: not a connection.
        if (files) {
          const [cert, key, ca] = files;
          const serial = new X509Certificate(cert).serialNumber;
          const r = await probeServer({ host: "localhost", port, servername: "localhost", database: "postgres", user: "operator", ca, cert, key, timeoutMs: 5000 });
          attempts.push(r.ok ? { ok: true, dir, serial } : { ok: false, dir, serial, error: `${r.reason}: ${r.message}` });
        }
      }
      await new Promise((r) => setTimeout(r, 150));
    }
  })();
  return {
    attempts,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

const generations = async (ns: string): Promise<Record<string, number>> => {
  const out: Record<string, number> = {};
  for (const [name, { kind }] of Object.entries(WIRED)) {
    out[name] = (await getJson<WorkloadJson>(["get", kind.toLowerCase(), name, "-n", ns])).metadata.generation ?? 0;
  }
  return out;
};

const statesOf = (imc: ImagingConnection) => Object.fromEntries((imc.status?.workloads ?? []).map((w) => [w.name, w.state]));
const allDelivered = (imc: ImagingConnection) => Object.keys(WIRED).every((n) => statesOf(imc)[n] === "Delivered");

async function waitDelivered(ns: string, check: (imc: ImagingConnection) => boolean = () => true, timeoutMs = 120_000): Promise<ImagingConnection> {
  let last: ImagingConnection | undefined;
  await waitFor(
    "every wired component restarted with the current material",
    async () => {
      last = await getJson<ImagingConnection>(["get", "imc", "cast", "-n", ns]);
      const ready = last.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
      return ready && allDelivered(last) && check(last);
    },
    timeoutMs,
    300,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last status.workloads: ${JSON.stringify(last?.status?.workloads)}`);
  });
  return last!;
}

/** PostgreSQL secured by a SecureDatabase, the operator, a kubelet stand-in, and the chart installed by the real helm. */
async function chartInstalled(name: string, opts: { ssl: boolean; startDelayMs: number }) {
  const env = await startOperatorWithDatabase({ name, databases: [{ roles: ["operator"] }], secureDatabase: { access: [{ users: ["operator"], mountIntoWorkloads: true }] } });
  const standin = await startKubeletStandIn({ kubeConfig: env.cp.kubeConfig, namespace: env.ns, startDelayMs: opts.startDelayMs }).catch(async (err: Error) => {
    await env.stop();
    throw err;
  });
  const stop = async () => {
    await standin.stop();
    await env.stop();
  };
  const installed = await install(RELEASE, CHART, env.ns, env.cp.kubeconfigPath, {
    set: { EnablePostgresSSL: opts.ssl, "CastStorageService.enable": false, "CustomPostgres.enable": true, "CustomPostgres.host": "localhost", "CustomPostgres.port": env.pg.port },
  });
  if (installed.code !== 0) {
    await stop();
    throw new Error(`helm install: ${installed.stderr}`);
  }
  // The release's owner opts every component in for connection "cast", with the one command docs/security.md gives;
  // Helm never renders the annotation, so the helm upgrades below keep it.
  const optIn = await env.cp.kubectl(["annotate", "-n", env.ns, "deployment,statefulset", "-l", "imaging.service", "mtls.imaging.dev/imaging-connections=cast"]);
  if (optIn.code !== 0) {
    await stop();
    throw new Error(`kubectl annotate: ${optIn.stderr}`);
  }
  return { env, ns: env.ns, standin, stop };
}

describe("CAST Imaging installed with CAST's chart, EnablePostgresSSL=true (real helm v4, real controllers, real PostgreSQL)", function () {
  this.timeout(300_000);
  let env: OperatorWithDatabase;
  let ns: string;
  let standin: KubeletStandIn;
  let stop: (() => Promise<void>) | undefined;

  before(async () => {
    // Pods take half a second to start, so one restart's rollout is seen before the next begins.
    ({ env, ns, standin, stop } = await chartInstalled("chart", { ssl: true, startDelayMs: 500 }));
    await kubectlOk(["apply", "-f", "-"], connectionYaml(ns));
  });

  after(async () => stop?.());

  it("fills the chart's Secret and restarts the wired components: psql and pgjdbc connect with the files where the containers read them", async () => {
    const imc = await waitDelivered(ns);
    const secret = secretBytes(await getJson<SecretObject>(["get", "secret", "ssl-certs", "-n", ns]));
    expect(Object.keys(secret).sort()).to.include.members(["client-key.pem", "client.crt", "client.key", "client.pk8", "root.crt", "sslconfig.ini"]);
    expect(secret["client-key.pem"]!.equals(secret["client.key"]!)).to.equal(true);
    const port = env.pg.port;
    expect(secret["sslconfig.ini"]!.toString()).to.equal(
      `[localhost:${port}]\nssl=true\nsslmode=verify-full\nsslcert=${IN_CONTAINER}/client.crt\nsslkey=${IN_CONTAINER}/client.pk8\nsslrootcert=${IN_CONTAINER}/root.crt\n`,
    );
    const serial = BigInt(`0x${imc.status!.certificate!.serialNumber!}`).toString();
    const query = "SELECT current_user || ' ' || client_serial FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    for (const [name, { chmod }] of Object.entries(WIRED)) {
      const dir = await podFiles(standin, name);
      const keyMode = (await stat(join(dir, "client-key.pem"))).mode & 0o777;
      expect(keyMode, `${name}: client-key.pem mode`).to.equal(chmod ? 0o600 : 0o644);
      const ini = await iniSettings(dir);
      const jdbc = await jdbcConnect({ url: `jdbc:postgresql://localhost:${port}/postgres`, user: "operator", sslcert: ini.sslcert!, sslkey: ini.sslkey!, sslrootcert: ini.sslrootcert!, sslmode: ini.sslmode!, query });
      expect(jdbc.stdout.trim(), `${name}: ${jdbc.stderr}`).to.equal(`operator ${serial}`);
      // libpq takes the key as the chart's init container leaves it: refused where the chart does not chmod it.
      const viaPsql = await psql({ host: "localhost", port, user: "operator", sslmode: "verify-full", sslcert: join(dir, "client.crt"), sslkey: join(dir, "client-key.pem"), sslrootcert: join(dir, "root.crt"), command: query });
      if (chmod) expect(viaPsql.stdout.trim(), `${name}: ${viaPsql.stderr}`).to.equal(`operator ${serial}`);
      else expect(viaPsql.stderr, name).to.match(/private key file .* has group or world access/);
    }
  });

  it("recognises the chart's volumes and env as its contract: no second mount, no second .ini, psql init containers get libpq's defaults", async () => {
    for (const [name, { kind }] of Object.entries(WIRED)) {
      const w = await getJson<WorkloadJson>(["get", kind.toLowerCase(), name, "-n", ns]);
      const spec = w.spec.template.spec;
      expect(spec.volumes!.map((v) => v.name).filter((v) => v.startsWith("mtls-") || v === "cast-imaging-mtls-ini"), name).to.deep.equal([]);
      for (const c of spec.containers) {
        expect(c.env!.filter((e) => e.name === "CASTCONNECTIONEXTRAPARAMETERS").map((e) => e.value), `${name}/${c.name}`).to.deep.equal([`${IN_CONTAINER}/sslconfig.ini`]);
      }
      expect(w.spec.template.metadata?.annotations?.["mtls.imaging.dev/chart-material"], name).to.match(/^[0-9a-f]{16}$/);
    }
    const panel = await getJson<WorkloadJson>(["get", "deployment", "console-control-panel", "-n", ns]);
    const setup = panel.spec.template.spec.initContainers!.find((c) => c.name === "postgres-scripts-ssl-setup")!;
    expect(setup.env!.filter((e) => e.name.startsWith("PGSSL")).map((e) => `${e.name}=${e.value}`)).to.deep.equal([
      "PGSSLMODE=verify-full",
      `PGSSLCERT=${IN_CONTAINER}/client.crt`,
      `PGSSLKEY=${IN_CONTAINER}/client-key.pem`,
      `PGSSLROOTCERT=${IN_CONTAINER}/root.crt`,
    ]);
    // The analysis node's psql runs in an init container that does not mount the copy: it gets the mount too.
    const node = await getJson<WorkloadJson>(["get", "statefulset", "console-analysis-node-core", "-n", ns]);
    const upgradeScript = node.spec.template.spec.initContainers!.find((c) => c.name === "postgres-upgrade")!;
    expect(upgradeScript.volumeMounts!.find((m) => m.name === FILES_VOLUME)).to.include({ mountPath: IN_CONTAINER, readOnly: true });
    expect(upgradeScript.env!.map((e) => e.name)).to.include.members(["PGSSLMODE", "PGSSLCERT", "PGSSLKEY", "PGSSLROOTCERT"]);
    // psql as that init container runs it, with only the env the operator gave it: the certificate logs in.
    const dir = await podFiles(standin, "console-control-panel");
    const envOf = Object.fromEntries(setup.env!.filter((e) => e.name.startsWith("PGSSL")).map((e) => [e.name, e.value!.replace(IN_CONTAINER, dir)]));
    const viaEnv = await psql({ host: "localhost", port: env.pg.port, user: "operator", sslmode: envOf.PGSSLMODE!, sslcert: envOf.PGSSLCERT!, sslkey: envOf.PGSSLKEY!, sslrootcert: envOf.PGSSLROOTCERT!, command: "SELECT current_user" });
    expect(viaEnv.stdout.trim(), viaEnv.stderr).to.equal("operator");
  });

  it("shows in status what it found in the release, what it served and what it left alone, and why", async () => {
    const imc = await getJson<ImagingConnection>(["get", "imc", "cast", "-n", ns]);
    const byName = Object.fromEntries((imc.status?.workloads ?? []).map((w) => [w.name, w]));
    for (const name of Object.keys(WIRED)) expect(byName[name], name).to.include({ delivery: "ChartSecret", state: "Delivered", mountPath: IN_CONTAINER });
    expect(byName["console-analysis-node-core"]!.component).to.equal("console-analysis-node");
    for (const name of WITHOUT_CERTIFICATE) {
      expect(byName[name], name).to.include({ delivery: "None", state: "LeftAlone" });
      expect(byName[name]!.message, name).to.match(/reaches PostgreSQL, but CAST's chart gives it no client certificate/);
    }
    expect(byName["viewer-server"]).to.include({ delivery: "None", state: "LeftAlone" });
    expect(byName["viewer-server"]!.message).to.match(/does not reach PostgreSQL/);
    expect(imc.status?.declaration).to.include({ user: "operator", iniPath: `${IN_CONTAINER}/sslconfig.ini`, keyPath: `${IN_CONTAINER}/client.pk8` });
    const patched = imc.status?.conditions?.find((c) => c.type === "WorkloadsPatched");
    expect(patched).to.include({ status: "True", reason: "Delivered" });
    const events = await getJson<{ items: { reason: string; message: string }[] }>(["get", "events", "-n", ns, "--field-selector", "involvedObject.name=cast"]);
    expect(events.items.map((e) => e.reason)).to.include.members(["ChartSecretWritten", "WorkloadRestarted"]);
  });

  it("helm upgrade --reuse-values, and an upgrade that re-renders the pod templates, succeed; the contract stays filled and nothing restarts twice", async () => {
    const before = await generations(ns);
    const same = await upgrade(RELEASE, CHART, ns, env.cp.kubeconfigPath, { reuseValues: true });
    expect(same.code, same.stderr).to.equal(0);
    const rerender = await upgrade(RELEASE, CHART, ns, env.cp.kubeconfigPath, { reuseValues: true, set: { "InitUtilImage.tag": "1.2.12" } });
    expect(rerender.code, rerender.stderr).to.equal(0);
    const imc = await waitDelivered(ns);
    expect(imc.status?.conditions?.find((c) => c.type === "Ready")?.status).to.equal("True");
    const after = await generations(ns);
    // The re-render is one template change per workload (the image tag); the operator adds none of its own.
    for (const name of Object.keys(WIRED)) expect(after[name]! - before[name]!, name).to.equal(1);
    const panel = await getJson<WorkloadJson>(["get", "deployment", "console-control-panel", "-n", ns]);
    expect(panel.spec.template.spec.initContainers!.find((c) => c.name === "postgres-scripts-ssl-setup")!.env!.map((e) => e.name)).to.include("PGSSLKEY");
    // The owner's opt-in (kubectl annotate) outlives both server-side upgrades: Helm never owned that field.
    expect(panel.metadata.annotations?.["mtls.imaging.dev/imaging-connections"]).to.equal("cast");
  });

  it("a manual rotation restarts each consumer exactly once, one at a time, and no connection of a running pod fails", async () => {
    const watch = watchRollouts(env.cp.kubeConfig, ns);
    await watch.synced;
    const loads = Object.keys(WIRED).map((name) => ({ name, load: consumerLoad(standin, name, env.pg.port) }));
    try {
      const before = await waitDelivered(ns);
      await new Promise((r) => setTimeout(r, 1000));
      const gens = await generations(ns);
      watch.reset();
      await kubectlOk(["annotate", "imc", "cast", "-n", ns, "mtls.imaging.dev/rotate=chart-1", "--overwrite"]);
      // Every status the operator writes, watched (a restart takes a second here: polling would miss some).
      const seen = new Set<string>();
      const statuses = new Informer<ImagingConnection & KubeObject>(new RestClient(env.cp.kubeConfig), { type: RESOURCES.ImagingConnection, namespaces: [ns] }, silentLogger());
      statuses.on((_e, imc) => {
        for (const w of imc.status?.workloads ?? []) if (w.name && WIRED[w.name]) seen.add(`${w.state}: ${w.message}`);
      });
      statuses.start();
      await statuses.synced;
      const after = await waitDelivered(ns, (imc) => imc.status?.certificate?.serialNumber !== before.status?.certificate?.serialNumber).finally(() => statuses.stop());
      // On-call sees the progress: who restarts, and who waits for whom.
      expect([...seen].some((s) => /^Restarting: restart(ing|ed) \(\d of 3\)/.test(s)), [...seen].join("\n")).to.equal(true);
      expect([...seen].some((s) => /^WaitingForRestart: waits \(\d of 3\) for (Deployment|StatefulSet) \S+ to finish rolling out/.test(s)), [...seen].join("\n")).to.equal(true);
      const newSerial = BigInt(`0x${after.status!.certificate!.serialNumber!}`).toString();
      const now = await generations(ns);
      for (const name of Object.keys(WIRED)) expect(now[name]! - gens[name]!, `${name} restarted exactly once`).to.equal(1);
      expect(watch.seen.maxInProgress, "rollouts in progress at once").to.equal(1);
      // Each consumer now runs pods started with the new certificate.
      for (const name of Object.keys(WIRED)) {
        const ini = await iniSettings(await podFiles(standin, name));
        const jdbc = await jdbcConnect({ url: `jdbc:postgresql://localhost:${env.pg.port}/postgres`, user: "operator", sslcert: ini.sslcert!, sslkey: ini.sslkey!, sslrootcert: ini.sslrootcert!, sslmode: "verify-full", query: "SELECT client_serial FROM pg_stat_ssl WHERE pid = pg_backend_pid()" });
        expect(jdbc.stdout.trim(), `${name}: ${jdbc.stderr}`).to.equal(newSerial);
      }
    } finally {
      for (const { load } of loads) await load.stop();
      watch.stop();
    }
    for (const { name, load } of loads) {
      expect(load.attempts.length, `${name}: attempts`).to.be.at.least(10);
      expect(load.attempts.filter((a) => !a.ok), `${name}: failed connections`).to.deep.equal([]);
      // The restarted pod's files hold the new certificate (a StatefulSet's pod keeps its name, so its folder too).
      expect(new Set(load.attempts.map((a) => a.serial)).size, `${name}: presented the old, then the new certificate`).to.equal(2);
    }
  });

  it("a CA rotation restarts the consumers for each change of the trust bundle and completes with no failed connection", async () => {
    const loads = Object.keys(WIRED).map((name) => ({ name, load: consumerLoad(standin, name, env.pg.port) }));
    const watch = watchRollouts(env.cp.kubeConfig, ns);
    await watch.synced;
    try {
      const before = await getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns]);
      const gens = await generations(ns);
      watch.reset();
      await kubectlOk(["patch", "sdb", "db", "-n", ns, "--type=merge", "-p", JSON.stringify({ spec: { ca: { propagationDelay: "1s" } } })]);
      await kubectlOk(["annotate", "sdb", "db", "-n", ns, "mtls.imaging.dev/rotate-ca=chart-ca-1"]);
      let described = "";
      await waitFor(
        "the CA rotation to complete",
        async () => {
          const sdb = await getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns]);
          if (!described && /restart/.test(sdb.status?.caRotation?.message ?? "")) described = sdb.status!.caRotation!.message!;
          return sdb.status?.ca?.serialNumber !== before.status?.ca?.serialNumber && sdb.status?.caRotation?.phase === "Idle";
        },
        240_000,
        300,
      );
      const after = await getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns]);
      const imc = await waitDelivered(ns, (c) => c.status?.certificate?.issuerFingerprintSHA256 === after.status?.ca?.fingerprintSHA256);
      expect(imc.status?.certificate?.issuerFingerprintSHA256).to.equal(after.status?.ca?.fingerprintSHA256);
      // Overlap (bundle old+new), Reissuing (a leaf of the new CA), Finishing (bundle new only): three changes.
      const now = await generations(ns);
      for (const name of Object.keys(WIRED)) expect(now[name]! - gens[name]!, `${name} restarts`).to.equal(3);
      expect(watch.seen.maxInProgress, "rollouts in progress at once").to.equal(1);
      // The rotation waited for the restarts (what it waited for was in its status).
      expect(described).to.match(/to restart with it/);
      const bundle = secretBytes(await getJson<SecretObject>(["get", "secret", "ssl-certs", "-n", ns]))["root.crt"]!.toString();
      expect(bundle.match(/BEGIN CERTIFICATE/g)).to.have.length(1);
    } finally {
      for (const { load } of loads) await load.stop();
      watch.stop();
    }
    for (const { name, load } of loads) {
      expect(load.attempts.filter((a) => !a.ok), `${name}: failed connections`).to.deep.equal([]);
    }
  });

  it("turning EnablePostgresSSL off and on again with helm upgrade: both upgrades succeed, the connection follows (Mount, then the chart's Secret)", async () => {
    const off = await upgrade(RELEASE, CHART, ns, env.cp.kubeconfigPath, { reuseValues: true, set: { EnablePostgresSSL: false } });
    expect(off.code, off.stderr).to.equal(0);
    await waitFor(
      "the three components to be mounted the operator's way",
      async () => {
        const c = await getJson<ImagingConnection>(["get", "imc", "cast", "-n", ns]);
        return Object.keys(WIRED).every((n) => (c.status?.workloads ?? []).some((w) => w.name === n && w.delivery === "Mount" && w.state === "Patched"));
      },
      60_000,
      300,
    );
    const node = await getJson<WorkloadJson>(["get", "statefulset", "console-analysis-node-core", "-n", ns]);
    expect(node.spec.template.spec.initContainers!.find((c) => c.name === "postgres-upgrade")!.volumeMounts!.map((m) => m.name)).to.not.include(FILES_VOLUME);
    expect(node.spec.template.spec.volumes!.map((v) => v.name)).to.not.include(FILES_VOLUME);
    const on = await upgrade(RELEASE, CHART, ns, env.cp.kubeconfigPath, { reuseValues: true, set: { EnablePostgresSSL: true } });
    expect(on.code, on.stderr).to.equal(0);
    await waitDelivered(ns);
  });

  it("the chart's Secret belongs to the connection: deleting it, the real garbage collector removes the Secret", async () => {
    const secret = await getJson<SecretObject>(["get", "secret", "ssl-certs", "-n", ns]);
    expect(secret.metadata.ownerReferences?.map((r) => `${r.kind}/${r.name}`)).to.deep.equal(["ImagingConnection/cast"]);
    await kubectlOk(["delete", "imc", "cast", "-n", ns, "--wait=true", "--timeout=60s"]);
    await waitFor("the garbage collector to delete Secret ssl-certs", async () => (await env.cp.kubectl(["get", "secret", "ssl-certs", "-n", ns])).code !== 0, 60_000, 300);
  });
});

describe("CAST Imaging installed with CAST's chart, default values (the operator's own mount)", function () {
  this.timeout(240_000);
  let env: OperatorWithDatabase;
  let ns: string;
  let standin: KubeletStandIn;
  let stop: (() => Promise<void>) | undefined;

  before(async () => {
    ({ env, ns, standin, stop } = await chartInstalled("chart-mount", { ssl: false, startDelayMs: 200 }));
    await kubectlOk(["apply", "-f", "-"], connectionYaml(ns));
  });

  after(async () => stop?.());

  it("mounts the client Secret and its .ini into the three components that read it, leaves the others alone, and helm upgrades keep succeeding", async () => {
    const imc = await waitForCondition<ImagingConnection>("imc", ns, "cast", "Ready", (c) => c.status === "True", 90_000);
    const byName = Object.fromEntries((imc.status?.workloads ?? []).map((w) => [w.name, w]));
    for (const name of Object.keys(WIRED)) expect(byName[name], name).to.include({ delivery: "Mount", state: "Patched" });
    for (const name of [...WITHOUT_CERTIFICATE, "viewer-server"]) expect(byName[name], name).to.include({ state: "LeftAlone" });
    for (const [name, { kind }] of Object.entries(WIRED)) {
      const w = await getJson<WorkloadJson>(["get", kind.toLowerCase(), name, "-n", ns]);
      const main = w.spec.template.spec.containers[0]!;
      // The path the chart itself gives when EnablePostgresSSL is on: turning it on later is no conflict.
      expect(main.env!.filter((e) => e.name === "CASTCONNECTIONEXTRAPARAMETERS").map((e) => e.value), name).to.deep.equal([`${IN_CONTAINER}/sslconfig.ini`]);
      expect(main.volumeMounts!.find((m) => m.name === "cast-imaging-mtls-ini"), name).to.deep.include({ mountPath: `${IN_CONTAINER}/sslconfig.ini`, subPath: "cast-connections.ini" });
    }
    for (const opts of [{ reuseValues: true }, { reuseValues: true, set: { "InitUtilImage.tag": "1.2.12" } }]) {
      const r = await upgrade(RELEASE, CHART, ns, env.cp.kubeconfigPath, opts);
      expect(r.code, r.stderr).to.equal(0);
    }
    await waitFor(
      "the mounts to be in place after the upgrades",
      async () => {
        const c = await getJson<ImagingConnection>(["get", "imc", "cast", "-n", ns]);
        return Object.keys(WIRED).every((n) => (c.status?.workloads ?? []).some((w) => w.name === n && w.state === "Patched"));
      },
      60_000,
      300,
    );
    // The files a pod reads in place: the live-mounted client Secret (the stand-in only copies init-container Secrets).
    expect((await standin.podsOf("Deployment", "console-control-panel")).length).to.be.at.least(1);
  });
});

describe("CAST's chart Secret that is not the operator's to fill", function () {
  this.timeout(240_000);
  let env: OperatorWithDatabase;
  let ns: string;
  let stop: (() => Promise<void>) | undefined;

  before(async () => {
    ({ env, ns, stop } = await chartInstalled("chart-claim", { ssl: true, startDelayMs: 200 }));
  });

  after(async () => stop?.());

  it("a hand-made ssl-certs (CAST's manual procedure) is never overwritten: ChartSecretNotOwned until it is deleted", async () => {
    await kubectlOk(["create", "secret", "generic", "ssl-certs", "-n", ns, "--from-literal=client-key.pem=made-by-hand"]);
    await kubectlOk(["apply", "-f", "-"], connectionYaml(ns));
    const refused = await waitForCondition<ImagingConnection>("imc", ns, "cast", "WorkloadsPatched", (c) => c.reason === "ChartSecretNotOwned", 60_000);
    expect(refused.status?.conditions?.find((c) => c.type === "WorkloadsPatched")?.message).to.match(/Secret ssl-certs exists and was not written by the operator.*delete it/);
    expect(refused.status?.conditions?.find((c) => c.type === "Ready")?.status).to.equal("False");
    expect(secretBytes(await getJson<SecretObject>(["get", "secret", "ssl-certs", "-n", ns]))["client-key.pem"]!.toString()).to.equal("made-by-hand");
    await kubectlOk(["delete", "secret", "ssl-certs", "-n", ns]);
    await waitDelivered(ns);
  });

  it("a namespace user cannot have the operator fill a Secret it does not own (the database's server Secret) through castImaging.secretName", async () => {
    // The tenant may manage ImagingConnections and Deployments in the namespace, and may not touch Secrets.
    const rbac = [
      { apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: { name: "tenant", namespace: ns }, rules: [
        { apiGroups: ["mtls.imaging.dev"], resources: ["imagingconnections"], verbs: ["get", "list", "create", "update", "patch", "delete"] },
        { apiGroups: ["apps"], resources: ["deployments"], verbs: ["get", "list", "create", "update", "patch", "delete"] },
      ] },
      { apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", metadata: { name: "tenant", namespace: ns }, subjects: [{ kind: "User", name: "tenant", apiGroup: "rbac.authorization.k8s.io" }], roleRef: { kind: "Role", name: "tenant", apiGroup: "rbac.authorization.k8s.io" } },
    ];
    for (const o of rbac) await kubectlOk(["apply", "-f", "-"], JSON.stringify(o));
    const asTenant = (args: string[], input?: string) => env.cp.kubectl([...args, "--as", "tenant"], input === undefined ? {} : { input });
    expect((await asTenant(["get", "secret", "db-server-tls", "-n", ns])).stderr).to.match(/forbidden/);
    const serverBefore = await getJson<SecretObject>(["get", "secret", "db-server-tls", "-n", ns]);
    // A workload carrying the chart's contract for Secret db-server-tls, and a connection that lists it.
    const bait = {
      apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "bait", namespace: ns, annotations: { "mtls.imaging.dev/imaging-connections": "bait" } },
      spec: { selector: { matchLabels: { app: "bait" } }, template: { metadata: { labels: { app: "bait" } }, spec: {
        initContainers: [{ name: "copy", image: "registry.invalid/copy", command: ["sh", "-c", "cp /tmp/certs/* /etc/ssl/certs-postgres"], volumeMounts: [{ name: "certs", mountPath: "/tmp/certs" }, { name: "files", mountPath: IN_CONTAINER }] }],
        containers: [{ name: "app", image: "registry.invalid/app", env: [{ name: "CASTCONNECTIONEXTRAPARAMETERS", value: `${IN_CONTAINER}/sslconfig.ini` }], volumeMounts: [{ name: "files", mountPath: IN_CONTAINER }] }],
        volumes: [{ name: "certs", secret: { secretName: "db-server-tls" } }, { name: "files", emptyDir: {} }],
      } } },
    };
    const created = await asTenant(["apply", "-f", "-"], JSON.stringify(bait));
    expect(created.code, created.stderr).to.equal(0);
    const applied = await asTenant(["apply", "-f", "-"], `apiVersion: mtls.imaging.dev/v1alpha1
kind: ImagingConnection
metadata: { name: bait, namespace: ${ns} }
spec:
  databaseRef: { name: db }
  user: operator
  workloads: [{ kind: Deployment, name: bait }]
  castImaging: { secretName: db-server-tls }
`);
    expect(applied.code, applied.stderr).to.equal(0);
    const refused = await waitForCondition<ImagingConnection>("imc", ns, "bait", "WorkloadsPatched", (c) => c.reason === "ChartSecretNotOwned", 60_000);
    expect(refused.status?.workloads?.find((w) => w.name === "bait")).to.include({ delivery: "ChartSecret", state: "Conflict" });
    const serverAfter = await getJson<SecretObject>(["get", "secret", "db-server-tls", "-n", ns]);
    expect(serverAfter.metadata.resourceVersion).to.equal(serverBefore.metadata.resourceVersion);
    expect(serverAfter.data).to.deep.equal(serverBefore.data);
    const workload = await getJson<WorkloadJson>(["get", "deployment", "bait", "-n", ns]);
    expect(workload.spec.template.metadata?.annotations?.["mtls.imaging.dev/chart-material"]).to.equal(undefined);
  });

  it("a second connection for the same release is refused the chart's Secret (ChartSecretConflict); the first keeps it", async () => {
    await kubectlOk(["apply", "-f", "-"], connectionYaml(ns).replace("name: cast,", "name: cast-2,"));
    const refused = await waitForCondition<ImagingConnection>("imc", ns, "cast-2", "WorkloadsPatched", (c) => c.reason === "ChartSecretConflict", 60_000);
    expect(refused.status?.conditions?.find((c) => c.type === "WorkloadsPatched")?.message).to.match(/already filled by ImagingConnection cast/);
    const secret = await getJson<SecretObject>(["get", "secret", "ssl-certs", "-n", ns]);
    expect(secret.metadata.ownerReferences?.map((r) => r.name)).to.deep.equal(["cast"]);
    await waitDelivered(ns);
  });
});
