/**
 * The CAST Imaging chart fixture (test/fixtures/cast-imaging-chart) under the real helm v4 against the real API
 * server, as a CAST user drives it: install with defaults, turn the chart's client TLS contract on with
 * `helm upgrade --reuse-values --set EnablePostgresSSL=true`, upgrade again with nothing changed, uninstall. What the
 * operator will later read must be there, and helm must own the workloads through server-side apply.
 */
import type * as k8s from "@kubernetes/client-node";
import { expect } from "chai";
import { resolve } from "node:path";
import { controlPlane } from "../support/hooks";
import { helm, helmOk, install, uninstall, upgrade } from "../support/helm";
import { getJson, kubectlOk } from "../support/kubectl-json";
import { waitFor } from "../support/process";

const CHART = resolve(__dirname, "..", "fixtures", "cast-imaging-chart");
const RELEASE = "castimaging-v3";

type Workload = (k8s.V1Deployment | k8s.V1StatefulSet) & { kind?: string };

interface Expected {
  kind: "Deployment" | "StatefulSet";
  service: string;
  group?: string;
  container: string;
  initContainers: string[];
  fsGroup?: number;
}

/** What CAST's chart 3.6.3 renders, per workload (README.md of the fixture lists the sources). */
const WORKLOADS: Record<string, Expected> = {
  "console-control-panel": { kind: "Deployment", service: "console-control-panel", group: "console", container: "console-control-panel", initContainers: ["wait-for-postgres", "postgres-scripts-ssl-setup"], fsGroup: 65532 },
  "console-analysis-node-core": { kind: "StatefulSet", service: "console-analysis-node", container: "console-analysis-node", initContainers: ["init-folders-services-healthcheck", "postgres-upgrade"], fsGroup: 10001 },
  "viewer-etl": { kind: "Deployment", service: "viewer-etl", group: "viewer", container: "viewer-etl", initContainers: ["neo4j-and-control-panel-healthcheck"], fsGroup: 1000 },
  "console-sso-service": { kind: "Deployment", service: "console-sso-service", group: "console", container: "console-sso-service", initContainers: ["wait-for-postgres"] },
  "console-authentication-service": { kind: "Deployment", service: "console-authentication-service", group: "console", container: "console-authentication-service", initContainers: ["console-sso-control-panel-healthcheck"] },
  "console-service": { kind: "Deployment", service: "console-service", group: "console", container: "console-service", initContainers: ["console-control-panel-healthcheck", "postgres-scripts"], fsGroup: 10001 },
  "console-dashboards": { kind: "Deployment", service: "console-dashboards", group: "console", container: "dashboards", initContainers: [] },
  "viewer-server": { kind: "Deployment", service: "viewer-server", group: "viewer", container: "viewer-server", initContainers: ["neo4j-and-control-panel-healthcheck", "neo4j-migration"], fsGroup: 1000 },
  "console-postgres": { kind: "StatefulSet", service: "console-postgres", container: "console-postgres", initContainers: [] },
};
/** The workloads CAST's chart wires for client TLS; `copier` is the init container that copies the Secret. */
const WIRED: Record<string, { copier: string; chmod: boolean }> = {
  "console-control-panel": { copier: "postgres-scripts-ssl-setup", chmod: true },
  "console-analysis-node-core": { copier: "init-folders-services-healthcheck", chmod: true },
  "viewer-etl": { copier: "neo4j-and-control-panel-healthcheck", chmod: false },
};
const CONTRACT_ENV = "CASTCONNECTIONEXTRAPARAMETERS";

async function workload(ns: string, name: string): Promise<Workload> {
  const kind = WORKLOADS[name]!.kind.toLowerCase();
  return getJson<Workload>(["get", kind, name, "-n", ns, "--show-managed-fields"]);
}

function podSpec(w: Workload): k8s.V1PodSpec {
  const spec = w.spec?.template.spec;
  expect(spec, `${w.metadata?.name} pod spec`).to.not.equal(undefined);
  return spec!;
}

function container(w: Workload, name: string, init = false): k8s.V1Container {
  const list = (init ? podSpec(w).initContainers : podSpec(w).containers) ?? [];
  const c = list.find((x) => x.name === name);
  expect(c, `${w.metadata?.name}: ${init ? "init " : ""}container ${name} among ${list.map((x) => x.name).join(", ")}`).to.not.equal(undefined);
  return c!;
}

const envValue = (c: k8s.V1Container, name: string): string | undefined => c.env?.find((e) => e.name === name)?.value;
const script = (c: k8s.V1Container): string => [...(c.command ?? []), ...(c.args ?? [])].join("\n");
const volume = (w: Workload, name: string): k8s.V1Volume | undefined => podSpec(w).volumes?.find((v) => v.name === name);
const mount = (c: k8s.V1Container, name: string): k8s.V1VolumeMount | undefined => c.volumeMounts?.find((m) => m.name === name);

/** Asserts the chart's client TLS contract is fully present (or, with present=false, entirely absent). */
function expectContract(w: Workload, present: boolean): void {
  const name = w.metadata!.name!;
  const main = container(w, WORKLOADS[name]!.container);
  const all = [...(podSpec(w).initContainers ?? []), ...podSpec(w).containers];
  if (!present) {
    expect(volume(w, "ssl-certs"), `${name}: no ssl-certs volume`).to.equal(undefined);
    expect(volume(w, "postgres-ssl-files"), `${name}: no postgres-ssl-files volume`).to.equal(undefined);
    for (const c of all) {
      expect(envValue(c, CONTRACT_ENV), `${name}/${c.name}: no ${CONTRACT_ENV}`).to.equal(undefined);
      expect(c.volumeMounts?.map((m) => m.mountPath) ?? [], `${name}/${c.name} mounts`).to.not.include.members(["/tmp/certs", "/etc/ssl/certs-postgres"]);
      expect(script(c), `${name}/${c.name} command`).to.not.include("/etc/ssl/certs-postgres");
    }
    return;
  }
  const wiring = WIRED[name]!;
  expect(volume(w, "ssl-certs")?.secret, `${name}: ssl-certs volume`).to.deep.equal({ secretName: "ssl-certs", defaultMode: 0o644 });
  expect(volume(w, "postgres-ssl-files")?.emptyDir, `${name}: postgres-ssl-files is an emptyDir`).to.deep.equal({});
  const copier = container(w, wiring.copier, true);
  expect(mount(copier, "ssl-certs")).to.include({ mountPath: "/tmp/certs", readOnly: true });
  expect(mount(copier, "postgres-ssl-files")?.mountPath).to.equal("/etc/ssl/certs-postgres");
  expect(mount(copier, "postgres-ssl-files")?.readOnly, `${name}: the copier writes the emptyDir`).to.not.equal(true);
  expect(script(copier)).to.include("cp /tmp/certs/* /etc/ssl/certs-postgres");
  const chmod = "chmod 0600 /etc/ssl/certs-postgres/client-key.pem";
  if (wiring.chmod) expect(script(copier)).to.include(chmod);
  else expect(script(copier), `${name} does not chmod the key`).to.not.include(chmod);
  expect(mount(main, "postgres-ssl-files")).to.include({ mountPath: "/etc/ssl/certs-postgres", readOnly: true });
  expect(mount(main, "ssl-certs"), `${name}: the main container never sees the Secret itself`).to.equal(undefined);
  expect(envValue(main, CONTRACT_ENV)).to.equal("/etc/ssl/certs-postgres/sslconfig.ini");
}

describe("CAST Imaging chart fixture under the real helm v4", function () {
  let ns = "";
  let kubeconfig = "";

  before(async function () {
    this.timeout(25 * 60_000); // a cold helm build, once per machine
    const version = await helmOk(["version", "--template", "{{.Version}}"], { kubeconfig: controlPlane().kubeconfigPath });
    expect(version.trim()).to.match(/^v4\./);
    kubeconfig = controlPlane().kubeconfigPath;
    ns = await controlPlane().createNamespace("cast-chart");
  });

  after(async function () {
    this.timeout(120_000);
    if (!ns) return;
    // Best effort: the release may already be gone (the last test uninstalls it).
    await helm(["uninstall", RELEASE, "--ignore-not-found"], { kubeconfig, namespace: ns });
    await controlPlane().kubectl(["delete", "namespace", ns, "--wait=false"]);
  });

  it("helm install with the defaults renders CAST's workloads, labels and PostgreSQL wiring, without the TLS contract", async function () {
    const r = await install(RELEASE, CHART, ns, kubeconfig);
    expect(r.code, r.stderr).to.equal(0);

    for (const [name, want] of Object.entries(WORKLOADS)) {
      const w = await workload(ns, name);
      expect(w.kind, name).to.equal(want.kind);
      const labels = { app: "castimaging", "imaging.service": want.service, ...(want.group ? { "imaging.group": want.group } : {}) };
      expect(w.metadata?.labels, `${name} labels`).to.include(labels);
      if (!want.group) expect(w.metadata?.labels, `${name} has no imaging.group`).to.not.have.property("imaging.group");
      expect(w.spec?.selector.matchLabels, `${name} selector`).to.deep.equal({ "imaging.service": want.service });
      expect(w.spec?.template.metadata?.labels, `${name} pod labels`).to.include(labels);
      expect(w.spec?.replicas, `${name} replicas`).to.equal(1);
      expect(podSpec(w).containers.map((c) => c.name), `${name} containers`).to.deep.equal([want.container]);
      expect((podSpec(w).initContainers ?? []).map((c) => c.name), `${name} init containers`).to.deep.equal(want.initContainers);
      if (want.fsGroup) expect(podSpec(w).securityContext, `${name} pod securityContext`).to.deep.equal({ fsGroup: want.fsGroup, fsGroupChangePolicy: "OnRootMismatch" });
      else expect(podSpec(w).securityContext ?? {}, `${name} pod securityContext`).to.deep.equal({});
      expect(container(w, want.container).image, `${name} image`).to.match(/^registry\.invalid\/castimaging\//);
      expectContract(w, false);
    }

    // How each workload reaches PostgreSQL, as CAST's chart says.
    const panel = await workload(ns, "console-control-panel");
    expect(envValue(container(panel, "console-control-panel"), "DB_HOST")).to.equal("console-postgres");
    expect(envValue(container(panel, "console-control-panel"), "DB_PORT")).to.equal("2285");
    expect(container(panel, "console-control-panel").securityContext?.runAsUser).to.equal(65532);
    const setup = container(panel, "postgres-scripts-ssl-setup", true);
    expect(setup.env?.find((e) => e.name === "PGPASSWORD")?.valueFrom?.secretKeyRef).to.deep.equal({ name: "imaging-pwd-sec", key: "operator-db-password" });
    expect(script(setup)).to.include("psql -h console-postgres -p 2285 -U operator -d postgres").and.include("-U operator -d keycloak");
    expect(script(container(panel, "wait-for-postgres", true))).to.include("pg_isready -h console-postgres -p 2285");
    const sso = container(await workload(ns, "console-sso-service"), "console-sso-service");
    expect(envValue(sso, "KC_DB_URL")).to.equal("jdbc:postgresql://console-postgres:2285/keycloak");
    expect(envValue(sso, "KC_DB_USERNAME")).to.equal("operator");
    const auth = container(await workload(ns, "console-authentication-service"), "console-authentication-service");
    expect([envValue(auth, "DB_HOST"), envValue(auth, "DB_PORT")]).to.deep.equal(["console-postgres", "2285"]);
    const node = await workload(ns, "console-analysis-node-core");
    expect((node.spec as k8s.V1StatefulSetSpec).serviceName).to.equal("console-analysis-node");
    expect(script(container(node, "postgres-upgrade", true))).to.include("-U operator -d postgres");
    const viewer = container(await workload(ns, "viewer-server"), "viewer-server");
    expect((viewer.env ?? []).map((e) => e.name), "viewer-server is Neo4j only").to.not.include.members(["DB_HOST", "DB_PORT", "KC_DB_URL"]);

    // The chart's PostgreSQL: Service 2285 → 5432, postgresql.conf as an initdb template, no TLS by default.
    const svc = await getJson<k8s.V1Service>(["get", "service", "console-postgres", "-n", ns]);
    expect(svc.spec?.ports?.map((p) => [p.port, p.targetPort])).to.deep.equal([[2285, 5432]]);
    expect(svc.spec?.selector).to.deep.equal({ "imaging.service": "console-postgres" });
    const pg = await workload(ns, "console-postgres");
    expect(mount(container(pg, "console-postgres"), "pgconf")).to.include({ mountPath: "/usr/share/postgresql/postgresql.conf.sample", subPath: "postgresql.conf.sample" });
    expect(volume(pg, "pgconf")?.configMap?.name).to.equal("console-v3-postgresqlconf");
    expect(container(pg, "console-postgres").args ?? [], "no -c settings without CastStorageService.ssl").to.deep.equal([]);
    expect(volume(pg, "pghbaconf")).to.equal(undefined);
    const conf = await getJson<k8s.V1ConfigMap>(["get", "configmap", "console-v3-postgresqlconf", "-n", ns]);
    expect(Object.keys(conf.data ?? {})).to.deep.equal(["postgresql.conf.sample"]);
    const secret = await getJson<k8s.V1Secret>(["get", "secret", "imaging-pwd-sec", "-n", ns]);
    expect(Object.keys(secret.data ?? {})).to.include.members(["postgres-db-password", "operator-db-password", "guest-db-password", "keycloak-db-password"]);

    const meta = JSON.parse(await helmOk(["get", "metadata", RELEASE, "-o", "json"], { kubeconfig, namespace: ns })) as { applyMethod?: string; revision?: number };
    expect(meta, "helm installed with server-side apply").to.include({ applyMethod: "ssa", revision: 1 });
  });

  it("helm upgrade --reuse-values --set EnablePostgresSSL=true wires exactly the three workloads CAST wires", async function () {
    const r = await upgrade(RELEASE, CHART, ns, kubeconfig, { reuseValues: true, set: { EnablePostgresSSL: true } });
    expect(r.code, r.stderr).to.equal(0);
    for (const name of Object.keys(WORKLOADS)) expectContract(await workload(ns, name), name in WIRED);
  });

  it("helm upgrade --reuse-values with nothing changed succeeds and keeps the contract", async function () {
    const r = await upgrade(RELEASE, CHART, ns, kubeconfig, { reuseValues: true });
    expect(r.code, r.stderr).to.equal(0);
    const values = JSON.parse(await helmOk(["get", "values", RELEASE, "-o", "json"], { kubeconfig, namespace: ns })) as Record<string, unknown>;
    expect(values).to.deep.equal({ EnablePostgresSSL: true });
    for (const name of Object.keys(WIRED)) expectContract(await workload(ns, name), true);
    const meta = JSON.parse(await helmOk(["get", "metadata", RELEASE, "-o", "json"], { kubeconfig, namespace: ns })) as { applyMethod?: string; revision?: number };
    expect(meta).to.include({ applyMethod: "ssa", revision: 3 });
  });

  it("helm owns every workload field it rendered through server-side apply (manager helm, operation Apply)", async function () {
    for (const name of Object.keys(WORKLOADS)) {
      const w = await workload(ns, name);
      const managers = w.metadata?.managedFields ?? [];
      const byHelm = managers.filter((m) => m.manager === "helm");
      expect(byHelm.map((m) => m.operation), `${name}: helm's entries`).to.deep.equal(["Apply"]);
      const fields = JSON.stringify(byHelm[0]!.fieldsV1);
      expect(fields, `${name}: helm applies the pod template`).to.include('"f:template"').and.include('"f:containers"');
      if (name in WIRED) expect(fields, `${name}: helm applies the TLS contract's volumes`).to.include('"k:{\\"name\\":\\"ssl-certs\\"}"');
      // Nobody else writes these objects yet (no controllers run here): the operator's fields will be the only others.
      expect(managers.filter((m) => m.manager !== "helm" && m.operation === "Update" && m.subresource !== "status").map((m) => m.manager), `${name}: other writers`).to.deep.equal([]);
    }
  });

  it("helm uninstall removes the workloads", async function () {
    const r = await uninstall(RELEASE, ns, kubeconfig);
    expect(r.code, r.stderr).to.equal(0);
    await waitFor(
      "the fixture's workloads to be gone",
      async () => (await kubectlOk(["get", "deployments,statefulsets,services,configmaps,secrets", "-n", ns, "-l", "app=castimaging", "-o", "name"])).trim() === "",
      60_000,
      200,
    );
    expect((await helm(["status", RELEASE], { kubeconfig, namespace: ns })).code, "the release is gone").to.not.equal(0);
    expect((await controlPlane().kubectl(["get", "secret", "imaging-pwd-sec", "-n", ns])).code, "the password Secret is gone").to.not.equal(0);
  });
});
