import { expect } from "chai";
import type { Workload } from "../../../../src/imaging/pod-template";
import { serverConfigMapName } from "../../../../src/api/defaults";
import { checkLayout, planLayoutRefusal, type LayoutFacts } from "../../../../src/reconcilers/secure-database/layout";
import { commandLinePlan } from "../../../../src/reconcilers/secure-database/config";
import { NOW, resolved } from "./fixtures";

/** CAST's console-postgres as its chart renders it (shared/design/cast-imaging.md), with or without CastStorageService.ssl. */
function castPostgres(ssl: boolean, extra: { command?: string[] } = {}): Workload {
  const args = ssl
    ? ["-c", "ssl=on", "-c", "ssl_cert_file=/var/lib/postgresql/ssl/server.crt", "-c", "ssl_key_file=/var/lib/postgresql/ssl/server.key",
       "-c", "ssl_min_protocol_version=TLSv1.2", "-c", "hba_file=/etc/postgresql/pg_hba.conf"]
    : undefined;
  return {
    metadata: { name: "console-postgres", annotations: { "meta.helm.sh/release-name": "castimaging-v3", "mtls.imaging.dev/command-line": "db" }, labels: { "app.kubernetes.io/managed-by": "Helm", "imaging.service": "console-postgres" } },
    spec: {
      template: {
        spec: {
          containers: [{
            name: "console-postgres",
            ...(args ? { args } : {}),
            ...extra,
            volumeMounts: [
              { name: "db-data", mountPath: "/var/lib/postgresql/data", subPath: "postgres" },
              { name: "pgconf", mountPath: "/usr/share/postgresql/postgresql.conf.sample", subPath: "postgresql.conf.sample" },
              ...(ssl ? [{ name: "postgres-ssl", mountPath: "/var/lib/postgresql/ssl" }, { name: "pghbaconf", mountPath: "/etc/postgresql/pg_hba.conf", subPath: "pg_hba.conf" }] : []),
            ],
          }],
          volumes: [
            { name: "db-data", emptyDir: {} },
            { name: "pgconf", configMap: { name: "console-v3-postgresqlconf" } },
            ...(ssl ? [{ name: "postgres-ssl", emptyDir: {} }, { name: "pghbaconf", configMap: { name: "console-v3-pghbaconf" } }] : []),
          ],
        },
      },
    },
  } as Workload;
}

/** A server whose configuration a ConfigMap mounted as a directory holds (the common chart layout). */
function liveConfigMapServer(opts: { subPath?: boolean; args?: string[] } = {}): Workload {
  const mounts = opts.subPath
    ? [{ name: "config", mountPath: "/etc/postgresql/postgresql.conf", subPath: "postgresql.conf" }, { name: "config", mountPath: "/etc/postgresql/pg_hba.conf", subPath: "pg_hba.conf" }]
    : [{ name: "config", mountPath: "/etc/postgresql" }];
  return {
    metadata: { name: "pg", annotations: { "mtls.imaging.dev/command-line": "db" } },
    spec: { template: { spec: {
      containers: [{ name: "postgres", args: ["-c", "config_file=/etc/postgresql/postgresql.conf", "-c", "hba_file=/etc/postgresql/pg_hba.conf", ...(opts.args ?? [])], volumeMounts: mounts }],
      volumes: [{ name: "config", configMap: { name: "pg-config" } }],
    } } },
  } as Workload;
}

const facts = (workload: Workload | undefined, spec = resolved({ workloadRef: { kind: "StatefulSet", name: "pg" } }), configMap?: LayoutFacts["configMap"]): LayoutFacts =>
  ({ spec, sdbName: "db", namespace: "cast", workload, configMap: configMap ?? { metadata: { annotations: { "mtls.imaging.dev/secure-database": "db" } } } });
const castSpec = (configuration: "ConfigMap" | "CommandLine", configMapName?: string) =>
  resolved({ postgres: { configuration, ...(configMapName ? { configMapName } : {}) }, workloadRef: { kind: "StatefulSet", name: "console-postgres" } });

describe("checkLayout (step 3a: where the server reads its configuration, before writing)", () => {
  it("ConfigMap on CAST's console-postgres (ssl off): postgresql.conf is initdb's template only: ConfigNotLive", () => {
    const v = checkLayout(facts(castPostgres(false), castSpec("ConfigMap", "console-v3-postgresqlconf")));
    expect(v.ok).to.equal(false);
    if (v.ok) return;
    expect(v.reason).to.equal("ConfigNotLive");
    expect(v.message).to.include("mounted as /usr/share/postgresql/postgresql.conf.sample").and.include("only initdb reads");
    expect(v.message).to.include("/var/lib/postgresql/data/postgresql.conf (volume db-data");
    expect(v.status.postgresqlConf).to.include("volume db-data");
  });

  it("ConfigMap on CAST's console-postgres (ssl on): the chart's -c settings outrank postgresql.conf: SettingOverriddenByArgs", () => {
    const v = checkLayout(facts(castPostgres(true), castSpec("ConfigMap", "console-v3-postgresqlconf")));
    expect(v.ok).to.equal(false);
    if (v.ok) return;
    expect(v.reason).to.equal("SettingOverriddenByArgs");
    expect(v.message).to.include("-c ssl_cert_file=/var/lib/postgresql/ssl/server.crt").and.include("on container console-postgres outranks postgresql.conf");
    expect(v.status.commandLineSettings).to.include("-c hba_file=/etc/postgresql/pg_hba.conf");
    expect(v.status.hbaFile).to.include("ConfigMap console-v3-pghbaconf, key pg_hba.conf, subPath");
  });

  it("ConfigMap applied by Helm (v3 labels, or v4's server-side apply): ConfigOwnedByApplier before anything else", () => {
    const spec = resolved({ postgres: { configMapName: "pg-config" }, workloadRef: { kind: "StatefulSet", name: "pg" } });
    for (const metadata of [
      { labels: { "app.kubernetes.io/managed-by": "Helm" }, annotations: { "meta.helm.sh/release-name": "castimaging-v3", "meta.helm.sh/release-namespace": "castimaging-v3" } },
      { managedFields: [{ manager: "helm", operation: "Apply" }] },
    ]) {
      const v = checkLayout(facts(liveConfigMapServer(), spec, { metadata }));
      expect(v.ok).to.equal(false);
      if (v.ok) continue;
      expect(v.reason).to.equal("ConfigOwnedByApplier");
      expect(v.message).to.match(/applied by Helm( release castimaging-v3 \(namespace castimaging-v3\))?: /);
      expect(v.message).to.include("spec.postgres.configuration: CommandLine");
    }
  });

  it("ConfigMap applied server-side by a GitOps tool: written (docs/gitops.md tells it to leave the two keys), the applier named in status", () => {
    const spec = resolved({ postgres: { configMapName: "pg-config" }, workloadRef: { kind: "StatefulSet", name: "pg" } });
    const v = checkLayout(facts(liveConfigMapServer(), spec, { metadata: { annotations: { "mtls.imaging.dev/secure-database": "db" }, managedFields: [{ manager: "argocd-controller", operation: "Apply" }] } }));
    expect(v.ok).to.equal(true);
    expect(v.status.owner).to.equal("server-side apply by field manager argocd-controller");
  });

  it("ConfigMap mounted as a directory where the server reads both files: accepted, the sources in status", () => {
    const v = checkLayout(facts(liveConfigMapServer(), resolved({ postgres: { configMapName: "pg-config" }, workloadRef: { kind: "StatefulSet", name: "pg" } })));
    expect(v.ok).to.equal(true);
    expect(v.status.postgresqlConf).to.equal("/etc/postgresql/postgresql.conf (ConfigMap pg-config, key postgresql.conf, mounted as a directory: live)");
    expect(v.status.hbaFile).to.include("key pg_hba.conf, mounted as a directory: live");
  });

  it("ConfigMap mounted with subPath: only with RolloutRestart (a restart applies it)", () => {
    const spec = (strategy: "SQL" | "RolloutRestart") => resolved({ postgres: { configMapName: "pg-config" }, workloadRef: { kind: "StatefulSet", name: "pg" }, reload: { strategy } });
    const sql = checkLayout(facts(liveConfigMapServer({ subPath: true }), spec("SQL")));
    expect(sql.ok ? "" : sql.reason).to.equal("ConfigNotLive");
    expect(sql.ok ? "" : sql.message).to.include("spec.reload.strategy: RolloutRestart");
    expect(checkLayout(facts(liveConfigMapServer({ subPath: true }), spec("RolloutRestart"))).ok).to.equal(true);
  });

  it("ConfigMap without workloadRef, or a template that does not mount it: accepted, status says it was not checked", () => {
    const none = checkLayout(facts(undefined, resolved({ postgres: { configMapName: "pg-config" } })));
    expect(none.ok).to.equal(true);
    expect(none.status.message).to.include("no spec.workloadRef");
    const bare = { metadata: { name: "pg" }, spec: { template: { spec: { containers: [{ name: "postgres" }] } } } } as Workload;
    expect(checkLayout(facts(bare)).ok).to.equal(true);
  });

  it("CommandLine on CAST's console-postgres: accepted with ssl on and off; the chart's overridden settings named", () => {
    for (const ssl of [true, false]) {
      const v = checkLayout(facts(castPostgres(ssl), castSpec("CommandLine")));
      expect(v.ok, `ssl=${ssl}`).to.equal(true);
      expect(v.status.configuration).to.equal("CommandLine");
      expect(v.status.hbaFile).to.equal(`/etc/postgresql/mtls/pg_hba.conf (ConfigMap ${serverConfigMapName("db")}, the operator's, mounted as a directory: live)`);
      expect(v.status.owner).to.equal("Helm release castimaging-v3");
      if (ssl) expect(v.status.message).to.include("overriding -c ssl=on -c ssl_cert_file=/var/lib/postgresql/ssl/server.crt");
      // CAST's bundled instance is named for what it is: its own components log in as operator, several without a certificate.
      expect(v.status.message).to.include("CAST's bundled instance (console-postgres)").and.include("password-over-TLS rule");
    }
  });

  it("CommandLine only where the workload's owner allowed this SecureDatabase (CommandLineNotAllowed, with the command to run)", () => {
    const workload = castPostgres(true);
    for (const annotations of [{}, { "mtls.imaging.dev/command-line": "other-db" }] as Record<string, string>[]) {
      workload.metadata.annotations = annotations;
      const v = checkLayout(facts(workload, castSpec("CommandLine")));
      expect(v.ok ? "" : v.reason).to.equal("CommandLineNotAllowed");
      expect(v.ok ? "" : v.message).to.include("kubectl annotate statefulset/console-postgres mtls.imaging.dev/command-line=db");
    }
  });

  it("CommandLine keeps its own command across passes but refuses a container's own command: CommandInUse", () => {
    const spec = castSpec("CommandLine");
    const ours = commandLinePlan(spec, "db").command;
    expect(checkLayout(facts(castPostgres(true, { command: ours }), spec)).ok).to.equal(true);
    const theirs = checkLayout(facts(castPostgres(true, { command: ["postgres"] }), spec));
    expect(theirs.ok ? "" : theirs.reason).to.equal("CommandInUse");
  });

  it("CommandLine refuses to mount inside the chart's read-only ConfigMap volume (MountPathInsideVolume)", () => {
    const spec = resolved({ postgres: { configuration: "CommandLine" }, workloadRef: { kind: "StatefulSet", name: "pg" } });
    const v = checkLayout(facts(liveConfigMapServer(), spec));
    expect(v.ok ? "" : v.reason).to.equal("MountPathInsideVolume");
    expect(v.ok ? "" : v.message).to.include("spec.postgres.certificateDirectory /etc/postgresql/tls lies inside the ConfigMap pg-config");
    const outside = resolved({ postgres: { configuration: "CommandLine", certificateDirectory: "/etc/postgresql-mtls/tls", configDirectory: "/etc/postgresql-mtls/config" }, workloadRef: { kind: "StatefulSet", name: "pg" } });
    expect(checkLayout(facts(liveConfigMapServer(), outside)).ok).to.equal(true);
    // A pass after the first finds its own mounts (and its own command) there: still fine.
    const applied = liveConfigMapServer();
    const pod = applied.spec!.template!.spec!;
    pod.containers![0]!.command = commandLinePlan(outside, "db").command;
    pod.containers![0]!.volumeMounts!.push({ name: "mtls-server-tls", mountPath: "/etc/postgresql-mtls/tls" }, { name: "mtls-server-config", mountPath: "/etc/postgresql-mtls/config" });
    pod.volumes!.push({ name: "mtls-server-tls", secret: { secretName: "db-server-tls" } }, { name: "mtls-server-config", configMap: { name: "db-server-config" } });
    const again = checkLayout(facts(applied, outside));
    expect(again.ok, again.status.message).to.equal(true);
    // Its own command is not read as the server's arguments: only the chart's are.
    expect(again.status.commandLineSettings).to.deep.equal(["-c config_file=/etc/postgresql/postgresql.conf", "-c hba_file=/etc/postgresql/pg_hba.conf"]);
  });

  it("External: no workload, the published ConfigMap named", () => {
    const v = checkLayout(facts(undefined, resolved({ postgres: { configuration: "External" } })));
    expect(v).to.deep.include({ ok: true });
    expect(v.status).to.deep.include({ configuration: "External", configMapName: "db-server-config" });
  });

  it("a refusal records its Warning event once, not on every pass", () => {
    const v = checkLayout(facts(castPostgres(true), castSpec("ConfigMap", "console-v3-postgresqlconf")));
    if (v.ok) throw new Error("expected a refusal");
    const first = planLayoutRefusal(v, undefined, NOW);
    expect(first.events).to.have.lengthOf(1);
    expect(first.events[0]).to.include({ type: "Warning", reason: "SettingOverriddenByArgs" });
    const status = { conditions: [{ type: "ConfigApplied", status: "False" as const, reason: v.reason, message: v.message, lastTransitionTime: NOW.toISOString() }] };
    expect(planLayoutRefusal(v, status, NOW).events).to.have.lengthOf(0);
  });
});
