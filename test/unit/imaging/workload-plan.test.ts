import { createHash } from "node:crypto";
import { expect } from "chai";
import type { PodTemplatePlan } from "../../../src/imaging/pod-template";
import {
  CAST_INI_DIR,
  CAST_INI_VOLUME,
  connectionVolumeName,
  connectionWorkloadPlan,
  type ConnectionWorkloadPlanInput,
  type WorkloadConnection,
} from "../../../src/imaging/workload-plan";

const containers = ["analysis-node", "sidecar", "init-like"];

function connection(name: string, opts: { containers?: string[] | "all"; mountPath?: string; libpqEnv?: boolean; sslMode?: string } = {}): WorkloadConnection {
  return {
    name,
    secretName: `${name}-client-tls`,
    sslMode: opts.sslMode ?? "verify-full",
    libpqEnv: opts.libpqEnv ?? false,
    workload: { kind: "Deployment", name: "console", containers: opts.containers ?? "all", mountPath: opts.mountPath ?? `/etc/cast-imaging/mtls/${name}` },
  };
}

function input(connections: WorkloadConnection[], extra: Partial<ConnectionWorkloadPlanInput> = {}): ConnectionWorkloadPlanInput {
  return { connections, containerNames: containers, iniConfigMapName: "console-cast-ini", ...extra };
}

function plan(i: ConnectionWorkloadPlanInput): PodTemplatePlan {
  const r = connectionWorkloadPlan(i);
  if (!r.ok) throw new Error(`unexpected error ${r.reason}: ${r.message}`);
  return r.value;
}

function error(i: ConnectionWorkloadPlanInput): { reason: string; message: string } {
  const r = connectionWorkloadPlan(i);
  if (r.ok) throw new Error(`expected an error, got ${JSON.stringify(r.value)}`);
  return r;
}

describe("connectionWorkloadPlan", () => {
  it("containers 'all': Secret volume and .ini in every container, CASTCONNECTIONEXTRAPARAMETERS set, no libpq env", () => {
    expect(plan(input([connection("analysis")]))).to.deep.equal({
      mounts: [
        {
          volumeName: "mtls-analysis",
          source: { secretName: "analysis-client-tls" },
          defaultMode: 0o440,
          mountPath: "/etc/cast-imaging/mtls/analysis",
          containers,
        },
        { volumeName: CAST_INI_VOLUME, source: { configMapName: "console-cast-ini" }, defaultMode: 0o444, mountPath: CAST_INI_DIR, containers },
      ],
      env: [{ containers, vars: [{ name: "CASTCONNECTIONEXTRAPARAMETERS", value: "/etc/cast-imaging/mtls-ini/cast-connections.ini" }] }],
      annotations: {},
    });
  });

  it("listed containers: only those, in template order; libpqEnv adds PGSSL* with the PEM key", () => {
    const p = plan(input(
      [connection("analysis", { containers: ["sidecar", "analysis-node"], libpqEnv: true, sslMode: "verify-ca" })],
      { iniFileName: "x.ini" },
    ));
    expect(p.mounts.map((m) => [m.volumeName, m.containers])).to.deep.equal([
      ["mtls-analysis", ["analysis-node", "sidecar"]],
      [CAST_INI_VOLUME, ["analysis-node", "sidecar"]],
    ]);
    expect(p.env).to.deep.equal([
      { containers: ["analysis-node", "sidecar"], vars: [{ name: "CASTCONNECTIONEXTRAPARAMETERS", value: "/etc/cast-imaging/mtls-ini/x.ini" }] },
      {
        containers: ["analysis-node", "sidecar"],
        vars: [
          { name: "PGSSLMODE", value: "verify-ca" },
          { name: "PGSSLCERT", value: "/etc/cast-imaging/mtls/analysis/client.crt" },
          { name: "PGSSLKEY", value: "/etc/cast-imaging/mtls/analysis/client.key" },
          { name: "PGSSLROOTCERT", value: "/etc/cast-imaging/mtls/analysis/root.crt" },
        ],
      },
    ]);
  });

  it("two connections: one volume each, sorted by name; the .ini goes to the union of their containers", () => {
    const a = connection("b-conn", { containers: ["sidecar"] });
    const b = connection("a-conn", { containers: ["analysis-node"] });
    const p = plan(input([a, b]));
    expect(p.mounts.map((m) => [m.volumeName, m.containers])).to.deep.equal([
      ["mtls-a-conn", ["analysis-node"]],
      ["mtls-b-conn", ["sidecar"]],
      [CAST_INI_VOLUME, ["analysis-node", "sidecar"]],
    ]);
    expect(plan(input([b, a]))).to.deep.equal(p);
  });

  it("an empty list of connections gives the empty plan (takes back what was added)", () => {
    expect(plan(input([]))).to.deep.equal({ mounts: [], env: [], annotations: {} });
  });

  it("names the missing container and lists the existing ones", () => {
    const e = error(input([connection("analysis", { containers: ["analysis-node", "dashboards"] })]));
    expect(e.reason).to.equal("ContainerNotFound");
    expect(e.message).to.include('"dashboards"');
    expect(e.message).to.include('"analysis-node", "sidecar", "init-like"');
  });

  it("refuses two libpqEnv connections in one container, allows them in different containers", () => {
    const e = error(input([connection("a", { libpqEnv: true, containers: ["sidecar"] }), connection("b", { libpqEnv: true })]));
    expect(e.reason).to.equal("LibpqEnvConflict");
    expect(e.message).to.include('"sidecar"').and.include("a and b");
    expect(connectionWorkloadPlan(input([
      connection("a", { libpqEnv: true, containers: ["sidecar"] }),
      connection("b", { libpqEnv: true, containers: ["analysis-node"] }),
    ])).ok).to.equal(true);
    expect(connectionWorkloadPlan(input([connection("a", { libpqEnv: true }), connection("b")])).ok).to.equal(true);
  });

  it("refuses two connections at the same (or nested) mountPath in one container", () => {
    expect(error(input([connection("a", { mountPath: "/certs" }), connection("b", { mountPath: "/certs/" })])).reason).to.equal("MountPathConflict");
    expect(error(input([connection("a", { mountPath: "/certs" }), connection("b", { mountPath: "/certs/b" })])).reason).to.equal("MountPathConflict");
    expect(error(input([connection("a", { mountPath: CAST_INI_DIR })])).reason).to.equal("MountPathConflict");
    const separate = input([
      connection("a", { mountPath: "/certs", containers: ["sidecar"] }),
      connection("b", { mountPath: "/certs", containers: ["analysis-node"] }),
    ]);
    expect(connectionWorkloadPlan(separate).ok).to.equal(true);
    expect(connectionWorkloadPlan(input([connection("a", { mountPath: "/certs" }), connection("b", { mountPath: "/certs2" })])).ok).to.equal(true);
  });

  it("refuses a connection listed twice and an unsafe .ini file name", () => {
    expect(error(input([connection("a"), connection("a", { mountPath: "/other" })])).reason).to.equal("DuplicateConnection");
    expect(error(input([connection("a")], { iniFileName: "../x.ini" })).reason).to.equal("InvalidIniFileName");
  });
});

describe("connectionVolumeName", () => {
  it("is mtls-<name> when that is a DNS label of at most 63 characters", () => {
    expect(connectionVolumeName("analysis")).to.equal("mtls-analysis");
    expect(connectionVolumeName("a".repeat(58))).to.equal(`mtls-${"a".repeat(58)}`);
  });

  it("truncates long or dotted names deterministically, with a hash keeping distinct names distinct", () => {
    const long1 = `${"x".repeat(80)}-one`;
    const long2 = `${"x".repeat(80)}-two`;
    const v1 = connectionVolumeName(long1);
    expect(v1).to.equal(connectionVolumeName(long1));
    expect(v1).to.have.length(63);
    expect(v1).to.match(/^mtls-x{47}-[0-9a-f]{10}$/);
    expect(connectionVolumeName(long2)).to.not.equal(v1);
    expect(connectionVolumeName(long2).slice(0, 53)).to.equal(v1.slice(0, 53));
    const dotted = connectionVolumeName("a.b");
    expect(dotted).to.match(/^mtls-a-b-[0-9a-f]{10}$/);
    expect(dotted).to.not.equal(connectionVolumeName("a-b"));
    for (const v of [v1, dotted, connectionVolumeName("a".repeat(59))]) expect(v).to.match(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
  });

  it("pins the hash, so a rename of the scheme shows up as a test failure", () => {
    expect(connectionVolumeName("a.b")).to.equal(`mtls-a-b-${createHash("sha256").update("a.b").digest("hex").slice(0, 10)}`);
  });
});
