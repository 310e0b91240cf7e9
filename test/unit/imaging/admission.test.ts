import { createHash } from "node:crypto";
import { expect } from "chai";
import type { CastIniEntry } from "../../../src/imaging/cast-ini";
import type { Container, PodTemplatePlan, Workload } from "../../../src/imaging/pod-template";
import {
  admitConnections,
  CAST_INI_DIR,
  CAST_INI_ENV,
  CAST_INI_VOLUME,
  CONNECTIONS_ANNOTATION,
  iniConfigMapName,
  workloadHasExactly,
  type WorkloadAdmission,
  type WorkloadCandidate,
} from "../../../src/imaging/workload-plan";

const INI_CM = "cast-mtls-ini-deployment-console";
const INI_PATH = `${CAST_INI_DIR}/cast-connections.ini`;

interface CandidateOpts {
  containers?: string[] | "all";
  mountPath?: string;
  libpqEnv?: boolean;
  host?: string;
  port?: number;
  sslMode?: "verify-full" | "verify-ca";
}

function iniEntry(mountPath: string, opts: CandidateOpts): CastIniEntry {
  return {
    host: opts.host ?? "db.example.com",
    port: opts.port ?? 5432,
    sslMode: opts.sslMode ?? "verify-full",
    certificatePath: `${mountPath}/client.crt`,
    keyPath: `${mountPath}/client.pk8`,
    rootCertificatePath: `${mountPath}/root.crt`,
  };
}

function candidate(name: string, opts: CandidateOpts = {}): WorkloadCandidate {
  const mountPath = opts.mountPath ?? `/etc/cast-imaging/mtls/${name}`;
  return {
    name,
    secretName: `${name}-client-tls`,
    sslMode: opts.sslMode ?? "verify-full",
    libpqEnv: opts.libpqEnv ?? false,
    workload: { kind: "Deployment", name: "console", containers: opts.containers ?? "all", mountPath },
    iniEntry: iniEntry(mountPath, opts),
  };
}

function workload(
  containers: Container[] = [{ name: "app" }, { name: "worker" }],
  extra: { annotations?: Record<string, string>; volumes?: NonNullable<NonNullable<NonNullable<Workload["spec"]>["template"]>["spec"]>["volumes"] } = {},
): Workload {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "console", namespace: "imaging" },
    spec: {
      template: {
        ...(extra.annotations ? { metadata: { annotations: extra.annotations } } : {}),
        spec: { containers, ...(extra.volumes ? { volumes: extra.volumes } : {}) },
      },
    },
  };
}

function admit(candidates: WorkloadCandidate[], w: Workload = workload()): WorkloadAdmission {
  return admitConnections({ candidates, workload: w, iniConfigMapName: INI_CM });
}

/** The refusals as plain [name, reason] pairs, for exact comparison. */
function reasons(a: WorkloadAdmission): [string, string][] {
  return [...a.refused.entries()].map(([n, e]) => [n, e.reason]);
}

/** What a server-side apply of the plan does to the template: our volumes, mounts, env and annotations added. */
function applyPlan(w: Workload, plan: PodTemplatePlan): Workload {
  const copy = structuredClone(w);
  const template = (copy.spec ??= {}).template ??= {};
  const spec = (template.spec ??= {});
  const containers = (spec.containers ??= []);
  const volumes = (spec.volumes ??= []);
  for (const m of plan.mounts) {
    const volume =
      "secretName" in m.source
        ? { name: m.volumeName, secret: { secretName: m.source.secretName, defaultMode: m.defaultMode } }
        : { name: m.volumeName, configMap: { name: m.source.configMapName, defaultMode: m.defaultMode } };
    volumes.push(volume);
    for (const c of m.containers) {
      const container = containers.find((x) => x.name === c);
      if (!container) throw new Error(`no container ${c}`);
      (container.volumeMounts ??= []).push({ name: m.volumeName, mountPath: m.mountPath, readOnly: true });
    }
  }
  for (const e of plan.env) {
    for (const c of e.containers) {
      const container = containers.find((x) => x.name === c);
      if (!container) throw new Error(`no container ${c}`);
      (container.env ??= []).push(...e.vars.map((v) => ({ ...v })));
    }
  }
  if (Object.keys(plan.annotations).length > 0) {
    template.metadata = { ...template.metadata, annotations: { ...template.metadata?.annotations, ...plan.annotations } };
  }
  return copy;
}

describe("admitConnections", () => {
  it("admits compatible candidates into one plan with one .ini and the digest annotation", () => {
    const a = admit([candidate("alpha", { containers: ["app"] }), candidate("beta", { containers: ["worker"], host: "db2.example.com" })]);
    expect(a.admitted).to.deep.equal(["alpha", "beta"]);
    expect(a.refused.size).to.equal(0);
    expect(a.plan.mounts.map((m) => [m.volumeName, m.mountPath, m.containers])).to.deep.equal([
      ["mtls-alpha", "/etc/cast-imaging/mtls/alpha", ["app"]],
      ["mtls-beta", "/etc/cast-imaging/mtls/beta", ["worker"]],
      [CAST_INI_VOLUME, CAST_INI_DIR, ["app", "worker"]],
    ]);
    expect(a.plan.mounts[2]!.source).to.deep.equal({ configMapName: INI_CM });
    expect(a.plan.env).to.deep.equal([{ containers: ["app", "worker"], vars: [{ name: CAST_INI_ENV, value: INI_PATH }] }]);
    expect(Object.keys(a.plan.annotations)).to.deep.equal([CONNECTIONS_ANNOTATION]);
    expect(a.plan.annotations[CONNECTIONS_ANNOTATION]).to.match(/^[0-9a-f]{16}$/);
  });

  it("a chart component reads the .ini as one file where the chart would put it; a changed .ini changes the digest (restart)", () => {
    const at = "/etc/ssl/certs-postgres/sslconfig.ini";
    const one = admitConnections({ candidates: [candidate("alpha")], workload: workload(), iniConfigMapName: INI_CM, iniAt: at });
    const ini = one.plan.mounts.find((m) => m.volumeName === CAST_INI_VOLUME)!;
    expect([ini.mountPath, ini.subPath]).to.deep.equal([at, "cast-connections.ini"]);
    expect(one.plan.env[0]!.vars).to.deep.equal([{ name: CAST_INI_ENV, value: at }]);
    expect(one.plan.iniDigest).to.equal(createHash("sha256").update(one.ini, "utf8").digest("hex").slice(0, 16));
    const moved = admitConnections({ candidates: [candidate("alpha", { host: "db2.example.com" })], workload: workload(), iniConfigMapName: INI_CM, iniAt: at });
    expect(moved.plan.mounts).to.deep.equal(one.plan.mounts);
    expect(moved.plan.annotations[CONNECTIONS_ANNOTATION]).to.not.equal(one.plan.annotations[CONNECTIONS_ANNOTATION]);
    // Without iniAt the .ini directory is mounted live: no digest of its content.
    expect(admit([candidate("alpha")]).plan.iniDigest).to.equal(undefined);
  });

  it("the digest is sha256 of the mounts and env, its first 16 hex digits", () => {
    const a = admit([candidate("alpha")]);
    const expected = createHash("sha256").update(JSON.stringify({ mounts: a.plan.mounts, env: a.plan.env }), "utf8").digest("hex").slice(0, 16);
    expect(a.plan.annotations).to.deep.equal({ [CONNECTIONS_ANNOTATION]: expected });
  });

  it("renders the .ini with one section per instance, sorted, in the documented format", () => {
    const a = admit([
      candidate("beta", { containers: ["worker"], host: "db2.example.com", port: 5433 }),
      candidate("alpha", { containers: ["app"], host: "db1.example.com" }),
    ]);
    expect(a.admitted).to.deep.equal(["beta", "alpha"]);
    expect(a.ini).to.equal(
      [
        "[db1.example.com:5432]",
        "ssl=true",
        "sslmode=verify-full",
        "sslcert=/etc/cast-imaging/mtls/alpha/client.crt",
        "sslkey=/etc/cast-imaging/mtls/alpha/client.pk8",
        "sslrootcert=/etc/cast-imaging/mtls/alpha/root.crt",
        "",
        "[db2.example.com:5433]",
        "ssl=true",
        "sslmode=verify-full",
        "sslcert=/etc/cast-imaging/mtls/beta/client.crt",
        "sslkey=/etc/cast-imaging/mtls/beta/client.pk8",
        "sslrootcert=/etc/cast-imaging/mtls/beta/root.crt",
        "",
      ].join("\n"),
    );
    expect(a.ini.match(/^\[/gm)).to.have.length(2);
  });

  it("collapses two connections with identical settings for one instance into one section", () => {
    // Same mountPath in different containers gives byte-identical entries for the same host:port.
    const a = admit([candidate("alpha", { containers: ["app"], mountPath: "/certs" }), candidate("beta", { containers: ["worker"], mountPath: "/certs" })]);
    expect(a.admitted).to.deep.equal(["alpha", "beta"]);
    expect(a.ini.match(/^\[/gm)).to.deep.equal(["["]);
    expect(a.ini.startsWith("[db.example.com:5432]\n")).to.equal(true);
  });

  it("nothing admitted: empty plan without annotation and an empty .ini", () => {
    const none = admit([]);
    expect(none.plan).to.deep.equal({ mounts: [], env: [], annotations: {} });
    expect(none.ini).to.equal("");
    expect(none.admitted).to.deep.equal([]);
    expect(none.refused.size).to.equal(0);

    const allRefused = admit([candidate("alpha", { containers: ["missing"] })]);
    expect(allRefused.admitted).to.deep.equal([]);
    expect(allRefused.plan).to.deep.equal({ mounts: [], env: [], annotations: {} });
    expect(allRefused.ini).to.equal("");
    expect(reasons(allRefused)).to.deep.equal([["alpha", "ContainerNotFound"]]);
  });

  describe("oldest first: a later conflicting candidate is refused, the earlier ones stay", () => {
    it("same mountPath in the same container → MountPathConflict", () => {
      const a = admit([
        candidate("zeta", { mountPath: "/certs" }),
        candidate("alpha", { mountPath: "/certs" }),
        candidate("mid", { mountPath: "/certs/mid", containers: ["app"] }),
      ]);
      expect(a.admitted).to.deep.equal(["zeta"]);
      expect(reasons(a)).to.deep.equal([
        ["alpha", "MountPathConflict"],
        ["mid", "MountPathConflict"],
      ]);
      expect(a.refused.get("alpha")!.message).to.include("zeta").and.include("alpha").and.include("/certs");
      expect(a.plan.mounts.map((m) => m.volumeName)).to.deep.equal(["mtls-zeta", CAST_INI_VOLUME]);
      expect(a.ini).to.include("/certs/client.crt");
    });

    it("the order decides, not the name: reversed candidates admit the other one", () => {
      const first = admit([candidate("alpha", { mountPath: "/certs" }), candidate("zeta", { mountPath: "/certs" })]);
      const second = admit([candidate("zeta", { mountPath: "/certs" }), candidate("alpha", { mountPath: "/certs" })]);
      expect(first.admitted).to.deep.equal(["alpha"]);
      expect(reasons(first)).to.deep.equal([["zeta", "MountPathConflict"]]);
      expect(second.admitted).to.deep.equal(["zeta"]);
      expect(reasons(second)).to.deep.equal([["alpha", "MountPathConflict"]]);
    });

    it("the same mountPath in different containers is no conflict", () => {
      const a = admit([candidate("alpha", { mountPath: "/certs", containers: ["app"] }), candidate("beta", { mountPath: "/certs", containers: ["worker"] })]);
      expect(a.admitted).to.deep.equal(["alpha", "beta"]);
      expect(a.refused.size).to.equal(0);
    });

    it("both libpqEnv in a shared container → LibpqEnvConflict", () => {
      const a = admit([
        candidate("zeta", { libpqEnv: true, containers: ["app"] }),
        candidate("alpha", { libpqEnv: true }),
        candidate("beta", { libpqEnv: true, containers: ["worker"], host: "db2.example.com" }),
      ]);
      expect(a.admitted).to.deep.equal(["zeta", "beta"]);
      expect(reasons(a)).to.deep.equal([["alpha", "LibpqEnvConflict"]]);
      expect(a.refused.get("alpha")!.message).to.include('"app"').and.include("alpha and zeta"); // the planner names them in name order
      expect(a.plan.env.map((e) => [e.containers, e.vars[0]!.name])).to.deep.equal([
        [["app", "worker"], CAST_INI_ENV],
        [["worker"], "PGSSLMODE"],
        [["app"], "PGSSLMODE"],
      ]);
    });

    it("a container that does not exist → ContainerNotFound, naming it", () => {
      const a = admit([
        candidate("alpha", { containers: ["app"] }),
        candidate("beta", { containers: ["app", "dashboards"] }),
        candidate("gamma", { containers: ["worker"], host: "db3.example.com" }),
      ]);
      expect(a.admitted).to.deep.equal(["alpha", "gamma"]);
      expect(reasons(a)).to.deep.equal([["beta", "ContainerNotFound"]]);
      expect(a.refused.get("beta")!.message).to.include('"dashboards"').and.include('"app", "worker"');
    });

    it("a workload without containers → NoContainers", () => {
      const a = admit([candidate("alpha")], workload([]));
      expect(a.admitted).to.deep.equal([]);
      expect(reasons(a)).to.deep.equal([["alpha", "NoContainers"]]);
    });

    it("one host:port with different settings in the .ini → ConflictingInstance", () => {
      const a = admit([
        candidate("zeta", { containers: ["app"] }),
        candidate("alpha", { containers: ["worker"] }), // same db.example.com:5432, other file paths
        candidate("beta", { containers: ["worker"], host: "DB.example.com", sslMode: "verify-ca", mountPath: "/certs/beta" }), // case-insensitive host
        candidate("gamma", { containers: ["worker"], port: 5433, mountPath: "/certs/gamma" }),
      ]);
      expect(a.admitted).to.deep.equal(["zeta", "gamma"]);
      expect(reasons(a)).to.deep.equal([
        ["alpha", "ConflictingInstance"],
        ["beta", "ConflictingInstance"],
      ]);
      expect(a.refused.get("alpha")!.message).to.include("db.example.com:5432");
      expect(a.ini).to.include("[db.example.com:5432]").and.include("[db.example.com:5433]").and.not.include("/etc/cast-imaging/mtls/alpha");
      expect(a.plan.mounts.map((m) => m.volumeName)).to.deep.equal(["mtls-gamma", "mtls-zeta", CAST_INI_VOLUME]);
    });

    it("an .ini entry that cannot be written is refused with its reason", () => {
      const bad = candidate("beta", { containers: ["worker"], port: 0 });
      const a = admit([candidate("alpha", { containers: ["app"] }), bad]);
      expect(a.admitted).to.deep.equal(["alpha"]);
      expect(reasons(a)).to.deep.equal([["beta", "InvalidPort"]]);
    });
  });

  describe("what the workload already carries", () => {
    it("a foreign volume with our volume name → WorkloadConflict", () => {
      const w = workload(undefined, { volumes: [{ name: "mtls-alpha", secret: { secretName: "someone-elses" } }] });
      const a = admit([candidate("alpha"), candidate("beta", { containers: ["worker"], host: "db2.example.com" })], w);
      expect(a.admitted).to.deep.equal(["beta"]);
      expect(reasons(a)).to.deep.equal([["alpha", "WorkloadConflict"]]);
      expect(a.refused.get("alpha")!.message).to.equal('Deployment console: the pod template already has a volume named "mtls-alpha" that does not come from Secret alpha-client-tls');
    });

    it("a volume with our name from our own Secret is ours (already patched), not a conflict", () => {
      const w = workload(undefined, { volumes: [{ name: "mtls-alpha", secret: { secretName: "alpha-client-tls" } }] });
      expect(admit([candidate("alpha")], w).admitted).to.deep.equal(["alpha"]);
    });

    it("a foreign volume named like our .ini volume refuses every candidate", () => {
      const w = workload(undefined, { volumes: [{ name: CAST_INI_VOLUME, configMap: { name: "chart-ini" } }] });
      const a = admit([candidate("alpha", { containers: ["app"] }), candidate("beta", { containers: ["worker"] })], w);
      expect(a.admitted).to.deep.equal([]);
      expect(reasons(a)).to.deep.equal([
        ["alpha", "WorkloadConflict"],
        ["beta", "WorkloadConflict"],
      ]);
      expect(a.refused.get("alpha")!.message).to.include(`ConfigMap ${INI_CM}`);
      expect(a.plan).to.deep.equal({ mounts: [], env: [], annotations: {} });
    });

    it("another volume already mounted at our mountPath → WorkloadConflict", () => {
      const w = workload([{ name: "app", volumeMounts: [{ name: "chart-certs", mountPath: "/certs" }] }, { name: "worker" }]);
      const a = admit([candidate("alpha", { mountPath: "/certs" })], w);
      expect(reasons(a)).to.deep.equal([["alpha", "WorkloadConflict"]]);
      expect(a.refused.get("alpha")!.message).to.equal('Deployment console: container "app" already mounts volume "chart-certs" at /certs');
    });

    it("CASTCONNECTIONEXTRAPARAMETERS of another value before our first patch → WorkloadConflict", () => {
      const w = workload([{ name: "app", env: [{ name: CAST_INI_ENV, value: "/chart/cast.ini" }] }, { name: "worker" }]);
      const a = admit([candidate("alpha", { containers: ["app"] }), candidate("beta", { containers: ["worker"], host: "db2.example.com" })], w);
      expect(a.admitted).to.deep.equal(["beta"]);
      expect(reasons(a)).to.deep.equal([["alpha", "WorkloadConflict"]]);
      expect(a.refused.get("alpha")!.message).to.equal(`Deployment console: container "app" already sets ${CAST_INI_ENV}="/chart/cast.ini" (from the chart or by hand); remove it so the operator can set it`);
      // beta alone selects only "worker", which does not carry the foreign value.
      expect(a.plan.env[0]).to.deep.equal({ containers: ["worker"], vars: [{ name: CAST_INI_ENV, value: INI_PATH }] });
    });

    it("the same value of CASTCONNECTIONEXTRAPARAMETERS is no conflict", () => {
      const w = workload([{ name: "app", env: [{ name: CAST_INI_ENV, value: INI_PATH }] }, { name: "worker" }]);
      expect(admit([candidate("alpha")], w).admitted).to.deep.equal(["alpha"]);
    });

    it("a foreign PGSSLMODE before our first patch refuses a libpqEnv candidate", () => {
      const w = workload([{ name: "app", env: [{ name: "PGSSLMODE", value: "require" }] }, { name: "worker" }]);
      const a = admit([candidate("alpha", { libpqEnv: true })], w);
      expect(reasons(a)).to.deep.equal([["alpha", "WorkloadConflict"]]);
      expect(a.refused.get("alpha")!.message).to.include('container "app" already sets PGSSLMODE="require"');
      expect(admit([candidate("alpha")], w).admitted).to.deep.equal(["alpha"]);
    });

    it("in a container we patched before (it mounts our .ini) a different value is ours from the previous plan: accepted", () => {
      const w = workload(
        [
          {
            name: "app",
            env: [{ name: CAST_INI_ENV, value: "/etc/cast-imaging/mtls-ini/old.ini" }],
            volumeMounts: [{ name: CAST_INI_VOLUME, mountPath: "/etc/cast-imaging/mtls-ini" }],
          },
          { name: "worker" },
        ],
        { annotations: { [CONNECTIONS_ANNOTATION]: "0123456789abcdef" } },
      );
      const a = admit([candidate("alpha", { containers: ["app"] })], w);
      expect(a.admitted).to.deep.equal(["alpha"]);
      expect(a.refused.size).to.equal(0);
      expect(a.plan.annotations[CONNECTIONS_ANNOTATION]).to.match(/^[0-9a-f]{16}$/).and.not.equal("0123456789abcdef");
    });

    it("the annotation alone does not make a value ours: a container we never patched keeps its chart's value", () => {
      const w = workload(
        [
          { name: "app", volumeMounts: [{ name: CAST_INI_VOLUME, mountPath: "/etc/cast-imaging/mtls-ini" }] },
          { name: "worker", env: [{ name: CAST_INI_ENV, value: "/chart/x.ini" }] },
        ],
        { annotations: { [CONNECTIONS_ANNOTATION]: "0123456789abcdef" } },
      );
      const a = admit([candidate("alpha", { containers: ["app"] }), candidate("beta", { containers: ["worker"] })], w);
      expect(a.admitted).to.deep.equal(["alpha"]);
      expect(reasons(a)).to.deep.equal([["beta", "WorkloadConflict"]]);
      expect(a.refused.get("beta")!.message).to.include('container "worker" already sets CASTCONNECTIONEXTRAPARAMETERS="/chart/x.ini"');
    });
  });

  describe("determinism", () => {
    it("the same inputs give the same plan, .ini and digest", () => {
      const make = () => admit([
        candidate("alpha", { containers: ["app"], libpqEnv: true }),
        candidate("beta", { containers: ["worker"], host: "db2.example.com" }),
      ]);
      const x = make();
      const y = make();
      expect(x.plan).to.deep.equal(y.plan);
      expect(x.ini).to.equal(y.ini);
      expect(x.plan.annotations[CONNECTIONS_ANNOTATION]).to.equal(y.plan.annotations[CONNECTIONS_ANNOTATION]);
    });

    it("compatible candidates in another order give the same plan and .ini", () => {
      const alpha = candidate("alpha", { containers: ["app"] });
      const beta = candidate("beta", { containers: ["worker"], host: "db2.example.com" });
      const x = admit([alpha, beta]);
      const y = admit([beta, alpha]);
      expect(y.plan).to.deep.equal(x.plan);
      expect(y.ini).to.equal(x.ini);
    });

    it("a different mountPath, Secret or ConfigMap gives a different digest", () => {
      const digest = (a: WorkloadAdmission) => a.plan.annotations[CONNECTIONS_ANNOTATION];
      const base = digest(admit([candidate("alpha", { mountPath: "/certs/a" })]));
      expect(base).to.be.a("string");
      expect(digest(admit([candidate("alpha", { mountPath: "/certs/b" })]))).to.be.a("string").and.not.equal(base);
      expect(digest(admit([{ ...candidate("alpha", { mountPath: "/certs/a" }), secretName: "other-tls" }]))).to.not.equal(base);
      expect(digest(admitConnections({
        candidates: [candidate("alpha", { mountPath: "/certs/a" })],
        workload: workload(),
        iniConfigMapName: "other-ini",
      }))).to.not.equal(base);
    });

    it("the digest ignores the .ini content (the ConfigMap carries it)", () => {
      const a = admit([candidate("alpha", { host: "db1.example.com" })]);
      const b = admit([candidate("alpha", { host: "db2.example.com" })]);
      expect(a.ini).to.not.equal(b.ini);
      expect(a.plan.annotations).to.deep.equal(b.plan.annotations);
    });
  });
});

describe("iniConfigMapName", () => {
  const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
  const hash = (kind: string, name: string) => createHash("sha256").update(`${kind}/${name}`, "utf8").digest("hex").slice(0, 10);

  it("is cast-mtls-ini-<kind lower-cased>-<name>", () => {
    expect(iniConfigMapName("Deployment", "console")).to.equal("cast-mtls-ini-deployment-console");
    expect(iniConfigMapName("StatefulSet", "analysis-node.v2")).to.equal("cast-mtls-ini-statefulset-analysis-node.v2");
  });

  it("keeps a name of exactly 253 characters, hashes one of 254", () => {
    const prefix = "cast-mtls-ini-deployment-";
    const fits = "a".repeat(253 - prefix.length);
    expect(iniConfigMapName("Deployment", fits)).to.equal(prefix + fits);
    const over = `${fits}b`;
    const name = iniConfigMapName("Deployment", over);
    expect(name).to.have.length(253);
    expect(name).to.equal(`${(prefix + over).slice(0, 242)}-${hash("Deployment", over)}`);
  });

  it("past 253 characters: at most 253, distinct for distinct names with a common prefix, valid DNS subdomain", () => {
    const common = "x".repeat(250);
    const names = [
      `${common}-one`,
      `${common}-two`,
      `${common}.three`,
      "a".repeat(253),
      `${"b".repeat(216)}.${"c".repeat(36)}`,
      `${"d".repeat(216)}--${"e".repeat(35)}`,
    ];
    const results = names.map((n) => iniConfigMapName("Deployment", n));
    expect(new Set(results).size).to.equal(names.length);
    for (const [i, r] of results.entries()) {
      expect(r.length, r).to.be.at.most(253);
      expect(r, r).to.match(DNS_SUBDOMAIN);
      expect(r.endsWith(`-${hash("Deployment", names[i]!)}`), r).to.equal(true);
    }
  });

  it("trims '-' and '.' at the cut before the hash", () => {
    // The kept part is the first 242 characters; make characters 240 and 241 a '.' and a '-'.
    const prefix = "cast-mtls-ini-deployment-";
    const name = `${"f".repeat(240 - prefix.length)}.-${"g".repeat(40)}`;
    const r = iniConfigMapName("Deployment", name);
    expect(r).to.equal(`${prefix}${"f".repeat(240 - prefix.length)}-${hash("Deployment", name)}`);
    expect(r).to.match(DNS_SUBDOMAIN);
  });

  it("distinguishes the kind of two workloads with the same long name", () => {
    const long = "w".repeat(260);
    expect(iniConfigMapName("Deployment", long)).to.not.equal(iniConfigMapName("StatefulSet", long));
  });
});

describe("workloadHasExactly", () => {
  const admission = () => admit([
    candidate("alpha", { containers: ["app"], libpqEnv: true }),
    candidate("beta", { containers: ["worker"], host: "db2.example.com" }),
  ]);

  it("is true once the plan's volumes, mounts, env and annotation are on the template", () => {
    const { plan } = admission();
    expect(workloadHasExactly(workload(), plan)).to.equal(false);
    const patched = applyPlan(workload(), plan);
    expect(workloadHasExactly(patched, plan)).to.equal(true);
    // and stays true when the new plan is computed from the patched template
    const again = admitConnections({
      candidates: [
        candidate("alpha", { containers: ["app"], libpqEnv: true }),
        candidate("beta", { containers: ["worker"], host: "db2.example.com" }),
      ],
      workload: patched,
      iniConfigMapName: INI_CM,
    });
    expect(again.plan).to.deep.equal(plan);
    expect(workloadHasExactly(patched, again.plan)).to.equal(true);
  });

  it("is false when the annotation is missing or stale", () => {
    const { plan } = admission();
    const patched = applyPlan(workload(), plan);
    const missing = structuredClone(patched);
    delete missing.spec!.template!.metadata!.annotations![CONNECTIONS_ANNOTATION];
    expect(workloadHasExactly(missing, plan)).to.equal(false);
    const stale = structuredClone(patched);
    stale.spec!.template!.metadata!.annotations![CONNECTIONS_ANNOTATION] = "0000000000000000";
    expect(workloadHasExactly(stale, plan)).to.equal(false);
  });

  it("is false when a volume, a mount or an env var was removed", () => {
    const { plan } = admission();
    const patched = applyPlan(workload(), plan);

    const noVolume = structuredClone(patched);
    noVolume.spec!.template!.spec!.volumes = noVolume.spec!.template!.spec!.volumes!.filter((v) => v.name !== "mtls-beta");
    expect(workloadHasExactly(noVolume, plan)).to.equal(false);

    const noMount = structuredClone(patched);
    const worker = noMount.spec!.template!.spec!.containers!.find((c) => c.name === "worker")!;
    worker.volumeMounts = worker.volumeMounts!.filter((m) => m.name !== CAST_INI_VOLUME);
    expect(workloadHasExactly(noMount, plan)).to.equal(false);

    const noEnv = structuredClone(patched);
    const app = noEnv.spec!.template!.spec!.containers!.find((c) => c.name === "app")!;
    app.env = app.env!.filter((e) => e.name !== "PGSSLKEY");
    expect(workloadHasExactly(noEnv, plan)).to.equal(false);
  });

  it("is false for a template patched with an older plan", () => {
    const older = admit([candidate("alpha", { containers: ["app"], libpqEnv: true })]);
    const { plan } = admission();
    expect(older.plan.annotations[CONNECTIONS_ANNOTATION]).to.not.equal(plan.annotations[CONNECTIONS_ANNOTATION]);
    expect(workloadHasExactly(applyPlan(workload(), older.plan), plan)).to.equal(false);
  });

  it("for the empty plan: true only without the annotation", () => {
    const empty = admit([]).plan;
    expect(workloadHasExactly(workload(), empty)).to.equal(true);
    const { plan } = admission();
    const patched = applyPlan(workload(), plan);
    expect(workloadHasExactly(patched, empty)).to.equal(false);
    expect(workloadHasExactly(workload(undefined, { annotations: { other: "x" } }), empty)).to.equal(true);
  });
});
