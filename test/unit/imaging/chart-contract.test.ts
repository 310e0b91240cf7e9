import { expect } from "chai";
import {
  chartMaterial,
  CHART_INI_FILE,
  CHART_KEY_FILE,
  chartIni,
  chartLibpqEnv,
  chartSecretData,
  materialDigest,
  readChartContract,
  type ChartContract,
} from "../../../src/imaging/chart-contract";
import { renderCastIni } from "../../../src/imaging/cast-ini";
import type { Workload } from "../../../src/imaging/pod-template";
import { SECRET_KEYS } from "../../../src/pki/secret-layout";
import { analysisNode, CHART_SECRET, controlPanel, FILES_DIR, INI_PATH, viewerEtl } from "./chart-workloads";

const pod = (w: Workload) => w.spec!.template!.spec!;
const container = (w: Workload, name: string) => [...(pod(w).initContainers ?? []), ...(pod(w).containers ?? [])].find((c) => c.name === name)!;

function contract(w: Workload, secret = CHART_SECRET): ChartContract {
  const r = readChartContract(w, secret);
  if (r === undefined) throw new Error("expected a chart consumer, got undefined");
  if (!r.ok) throw new Error(`unexpected refusal ${r.reason}: ${r.message}`);
  return r.value;
}

function refusal(w: Workload, secret = CHART_SECRET): { reason: string; message: string } {
  const r = readChartContract(w, secret);
  if (r === undefined) throw new Error("expected a refusal, got undefined (not a consumer)");
  if (r.ok) throw new Error(`expected a refusal, got ${JSON.stringify(r.value)}`);
  return r;
}

describe("readChartContract (CAST chart, EnablePostgresSSL=true)", () => {
  it("console-control-panel: the copy into the emptyDir, the .ini path, and the copier that then runs psql with the files", () => {
    expect(contract(controlPanel())).to.deep.equal({
      secretVolume: "ssl-certs",
      filesVolume: "postgres-ssl-files",
      filesDir: FILES_DIR,
      iniPath: INI_PATH,
      // wait-for-postgres runs before the copy (and only pg_isready): not listed.
      psqlInitContainers: [{ name: "postgres-scripts-ssl-setup", mountsFiles: true }],
    });
  });

  it("console-analysis-node-core: postgres-upgrade runs psql after the copy but does not mount the files", () => {
    expect(contract(analysisNode())).to.deep.equal({
      secretVolume: "ssl-certs",
      filesVolume: "postgres-ssl-files",
      filesDir: FILES_DIR,
      iniPath: INI_PATH,
      psqlInitContainers: [{ name: "postgres-upgrade", mountsFiles: false }],
    });
  });

  it("viewer-etl: copies (without chmod) and runs no psql", () => {
    expect(contract(viewerEtl())).to.deep.equal({
      secretVolume: "ssl-certs",
      filesVolume: "postgres-ssl-files",
      filesDir: FILES_DIR,
      iniPath: INI_PATH,
      psqlInitContainers: [],
    });
  });

  it("is undefined for a workload that does not mount the Secret (EnablePostgresSSL off, another Secret, no spec)", () => {
    expect(readChartContract(controlPanel({ ssl: false }), CHART_SECRET)).to.equal(undefined);
    expect(readChartContract(controlPanel(), "other-secret")).to.equal(undefined);
    expect(readChartContract({ metadata: { name: "bare" } }, CHART_SECRET)).to.equal(undefined);
    expect(readChartContract({ metadata: { name: "bare" }, spec: { template: {} } }, CHART_SECRET)).to.equal(undefined);
  });

  it("a renamed Secret is followed by its volume, whatever the volume's name", () => {
    const w = controlPanel();
    pod(w).volumes!.find((v) => v.name === "ssl-certs")!.secret!.secretName = "castimaging-client-tls";
    expect(contract(w, "castimaging-client-tls").secretVolume).to.equal("ssl-certs");
    expect(readChartContract(w, CHART_SECRET)).to.equal(undefined);
  });

  it("refuses a Secret volume without CASTCONNECTIONEXTRAPARAMETERS (ChartContractIncomplete)", () => {
    const w = controlPanel();
    container(w, "console-control-panel").env = container(w, "console-control-panel").env!.filter((e) => e.name !== "CASTCONNECTIONEXTRAPARAMETERS");
    const r = refusal(w);
    expect(r.reason).to.equal("ChartContractIncomplete");
    expect(r.message).to.contain("Secret ssl-certs (volume ssl-certs)").and.contain("no container sets it");
  });

  it("an empty CASTCONNECTIONEXTRAPARAMETERS counts as unset", () => {
    const w = viewerEtl();
    container(w, "viewer-etl").env!.find((e) => e.name === "CASTCONNECTIONEXTRAPARAMETERS")!.value = "";
    expect(refusal(w).reason).to.equal("ChartContractIncomplete");
  });

  it("refuses two different .ini paths, naming both; the same path in two containers is one contract", () => {
    const w = controlPanel();
    pod(w).containers!.push({ name: "sidecar", env: [{ name: "CASTCONNECTIONEXTRAPARAMETERS", value: "/etc/other/sslconfig.ini" }] });
    const r = refusal(w);
    expect(r.reason).to.equal("ChartContractIncomplete");
    expect(r.message).to.contain(INI_PATH).and.contain("/etc/other/sslconfig.ini");

    const same = controlPanel();
    pod(same).containers!.push({ name: "sidecar", env: [{ name: "CASTCONNECTIONEXTRAPARAMETERS", value: INI_PATH }] });
    expect(contract(same).iniPath).to.equal(INI_PATH);
  });

  it("refuses an .ini in a directory no init container fills", () => {
    const w = analysisNode();
    container(w, "console-analysis-node").env!.find((e) => e.name === "CASTCONNECTIONEXTRAPARAMETERS")!.value = "/etc/ssl/elsewhere/sslconfig.ini";
    const r = refusal(w);
    expect(r.reason).to.equal("ChartContractIncomplete");
    expect(r.message).to.contain("no init container copies it into an emptyDir at /etc/ssl/elsewhere");
  });

  it("refuses when only the main container mounts the Secret (nothing copies it)", () => {
    const w = viewerEtl();
    delete container(w, "neo4j-and-control-panel-healthcheck").volumeMounts;
    container(w, "viewer-etl").volumeMounts!.push({ name: "ssl-certs", mountPath: "/tmp/certs" });
    expect(refusal(w).reason).to.equal("ChartContractIncomplete");
  });

  it("refuses when the copy target is not an emptyDir (a ConfigMap at the .ini's directory)", () => {
    const w = controlPanel();
    const files = pod(w).volumes!.find((v) => v.name === "postgres-ssl-files")!;
    delete files.emptyDir;
    files.configMap = { name: "somebody-elses" };
    expect(refusal(w).reason).to.equal("ChartContractIncomplete");
  });

  it("accepts the copy directory mounted with a trailing slash (the same directory for the kubelet)", () => {
    const w = controlPanel();
    container(w, "postgres-scripts-ssl-setup").volumeMounts!.find((m) => m.name === "postgres-ssl-files")!.mountPath = `${FILES_DIR}/`;
    expect(contract(w).filesVolume).to.equal("postgres-ssl-files");
  });

  it("plans the same whether or not the template already carries the mount it planned (no flapping)", () => {
    const w = analysisNode();
    const before = contract(w).psqlInitContainers;
    container(w, "postgres-upgrade").volumeMounts!.push({ name: "postgres-ssl-files", mountPath: FILES_DIR, readOnly: true });
    expect(contract(w).psqlInitContainers).to.deep.equal(before);
    expect(before).to.deep.equal([{ name: "postgres-upgrade", mountsFiles: false }]);
  });

  it("lists psql only after the copy, found in command or args, as a word", () => {
    const w = analysisNode();
    const inits = pod(w).initContainers!;
    // Before the copy: the files are not there yet, so it cannot be given them.
    inits.unshift({ name: "early", command: ["psql", "-c", "select 1"] });
    inits.push({ name: "by-args", command: ["/bin/sh"], args: ["-c", "/usr/bin/psql -d postgres -c 'select 1'"] });
    inits.push({ name: "not-psql", command: ["/bin/sh", "-c", "pg_isready; mypsqltool; echo psqlrc"] });
    inits.push({ name: "with-files", command: ["psql"], volumeMounts: [{ name: "postgres-ssl-files", mountPath: "/x" }] });
    expect(contract(w).psqlInitContainers).to.deep.equal([
      { name: "postgres-upgrade", mountsFiles: false },
      { name: "by-args", mountsFiles: false },
      // Only the copier counts as mounting the files: the others get the mount planned, whatever they carry.
      { name: "with-files", mountsFiles: false },
    ]);
  });
});

describe("chartIni", () => {
  const db = { host: "console-postgres", port: 2285 };

  it("names the files where the init container copies them, the JDBC DER key as sslkey", () => {
    const r = chartIni(db, "verify-full", FILES_DIR);
    expect(r).to.deep.equal({
      ok: true,
      value:
        "[console-postgres:2285]\n" +
        "ssl=true\n" +
        "sslmode=verify-full\n" +
        "sslcert=/etc/ssl/certs-postgres/client.crt\n" +
        "sslkey=/etc/ssl/certs-postgres/client.pk8\n" +
        "sslrootcert=/etc/ssl/certs-postgres/root.crt\n",
    });
  });

  it("is renderCastIni's result for the same entry; a trailing slash on the directory changes nothing", () => {
    const expected = renderCastIni([
      {
        ...db,
        sslMode: "verify-ca",
        certificatePath: `${FILES_DIR}/client.crt`,
        keyPath: `${FILES_DIR}/client.pk8`,
        rootCertificatePath: `${FILES_DIR}/root.crt`,
      },
    ]);
    expect(chartIni(db, "verify-ca", FILES_DIR)).to.deep.equal(expected);
    expect(chartIni(db, "verify-ca", `${FILES_DIR}/`)).to.deep.equal(expected);
  });

  it("brackets an IPv6 host and lower-cases it", () => {
    const r = chartIni({ host: "2001:DB8::1", port: 2285 }, "verify-full", FILES_DIR);
    expect(r.ok && r.value.split("\n")[0]).to.equal("[[2001:db8::1]:2285]");
  });

  it("refuses what cannot be written raw into the .ini", () => {
    const reasonOf = (r: ReturnType<typeof chartIni>) => (r.ok ? `ok: ${r.value}` : r.reason);
    expect(reasonOf(chartIni({ host: "db\n[evil:1]", port: 2285 }, "verify-full", FILES_DIR))).to.equal("UnsafeIniValue");
    expect(reasonOf(chartIni({ host: "db=x", port: 2285 }, "verify-full", FILES_DIR))).to.equal("UnsafeIniValue");
    expect(reasonOf(chartIni({ host: "db:2285", port: 2285 }, "verify-full", FILES_DIR))).to.equal("UnsafeIniValue");
    expect(reasonOf(chartIni(db, "verify-full", "/etc/ssl/a=b"))).to.equal("UnsafeIniValue");
    expect(reasonOf(chartIni(db, "verify-full", "/etc/ssl/x\nsslmode=disable"))).to.equal("UnsafeIniValue");
    expect(reasonOf(chartIni({ host: "db", port: 0 }, "verify-full", FILES_DIR))).to.equal("InvalidPort");
    expect(reasonOf(chartIni({ host: "db", port: 65536 }, "verify-full", FILES_DIR))).to.equal("InvalidPort");
    expect(reasonOf(chartIni(db, "require" as "verify-full", FILES_DIR))).to.equal("InvalidSSLMode");
  });
});

/** A client Secret as the operator writes it: tls.* and CAST's files, each with distinct bytes. */
function clientSecret(): Record<string, Uint8Array> {
  const keys = [
    SECRET_KEYS.tlsCrt,
    SECRET_KEYS.tlsKey,
    SECRET_KEYS.caCrt,
    SECRET_KEYS.clientCrt,
    SECRET_KEYS.clientKey,
    SECRET_KEYS.clientPk8,
    SECRET_KEYS.clientPemPk8,
    SECRET_KEYS.clientPfx,
    SECRET_KEYS.clientPfxPassword,
    SECRET_KEYS.rootCrt,
  ];
  return Object.fromEntries(keys.map((k) => [k, new Uint8Array(Buffer.from(`content of ${k}`))]));
}

const CAST_KEYS = ["client.crt", "client.key", "client.pk8", "client.pem.pk8", "client.pfx", "client.pfx.password", "root.crt"];

describe("chartSecretData", () => {
  const ini = "[console-postgres:2285]\nssl=true\n";

  it("holds CAST's files, the key again as client-key.pem, and the .ini; none of the tls.* keys", () => {
    const client = clientSecret();
    const r = chartSecretData(client, ini);
    if (!r.ok) throw new Error(r.message);
    expect(Object.keys(r.value).sort()).to.deep.equal([...CAST_KEYS, "client-key.pem", "sslconfig.ini"].sort());
    for (const k of CAST_KEYS) expect(Buffer.from(r.value[k]!).equals(Buffer.from(client[k]!)), k).to.equal(true);
    expect(r.value[CHART_KEY_FILE]!.equals(Buffer.from(client["client.key"]!))).to.equal(true);
    expect(r.value[CHART_INI_FILE]!.toString("utf8")).to.equal(ini);
  });

  it("copies the bytes: changing the client Secret afterwards does not change the chart's", () => {
    const client = clientSecret();
    const r = chartSecretData(client, ini);
    if (!r.ok) throw new Error(r.message);
    client["client.key"]![0] = 0x58;
    client["root.crt"]![0] = 0x58;
    expect(r.value["client.key"]!.toString()).to.equal("content of client.key");
    expect(r.value[CHART_KEY_FILE]!.toString()).to.equal("content of client.key");
    expect(r.value["root.crt"]!.toString()).to.equal("content of root.crt");
  });

  for (const missing of CAST_KEYS) {
    it(`refuses a client Secret without ${missing} (ClientSecretIncomplete)`, () => {
      const client: Record<string, Uint8Array | undefined> = clientSecret();
      delete client[missing];
      const r = chartSecretData(client, ini);
      expect(r.ok).to.equal(false);
      expect(!r.ok && r.reason).to.equal("ClientSecretIncomplete");
      expect(!r.ok && r.message).to.contain(missing);
      client[missing] = undefined;
      expect(chartSecretData(client, ini).ok).to.equal(false);
    });
  }

  it("does not need tls.* (only CAST's files)", () => {
    const client: Record<string, Uint8Array> = clientSecret();
    for (const k of ["tls.crt", "tls.key", "ca.crt"]) delete client[k];
    expect(chartSecretData(client, ini).ok).to.equal(true);
  });

  it("the .ini of chartIni names only files the chart's Secret holds, under the copy directory", () => {
    const rendered = chartIni({ host: "console-postgres", port: 2285 }, "verify-full", FILES_DIR);
    if (!rendered.ok) throw new Error(rendered.message);
    const r = chartSecretData(clientSecret(), rendered.value);
    if (!r.ok) throw new Error(r.message);
    const paths = rendered.value.split("\n").filter((l) => /^ssl(cert|key|rootcert)=/.test(l)).map((l) => l.slice(l.indexOf("=") + 1));
    expect(paths).to.have.length(3);
    for (const p of paths) {
      expect(p.startsWith(`${FILES_DIR}/`), p).to.equal(true);
      expect(r.value, p).to.have.property(p.slice(FILES_DIR.length + 1));
    }
  });
});

describe("materialDigest", () => {
  const bytes = (s: string) => new Uint8Array(Buffer.from(s));

  it("is 16 hex digits and the same for the same files in any key order", () => {
    const a = { "client.crt": bytes("crt"), "client.key": bytes("key"), "sslconfig.ini": bytes("ini") };
    const b = { "sslconfig.ini": bytes("ini"), "client.crt": bytes("crt"), "client.key": bytes("key") };
    expect(materialDigest(a)).to.match(/^[0-9a-f]{16}$/);
    expect(materialDigest(b)).to.equal(materialDigest(a));
    // Buffer or plain Uint8Array: the bytes count, not the type.
    expect(materialDigest({ "client.crt": Buffer.from("crt"), "client.key": Buffer.from("key"), "sslconfig.ini": Buffer.from("ini") })).to.equal(
      materialDigest(a),
    );
  });

  it("changes with one changed byte, an added file, a renamed file", () => {
    const base = { "client.crt": bytes("certificate"), "root.crt": bytes("root") };
    const d = materialDigest(base);
    const flipped = bytes("certificate");
    flipped[5] = flipped[5]! ^ 1;
    expect(materialDigest({ ...base, "client.crt": flipped })).to.not.equal(d);
    expect(materialDigest({ ...base, "client.pk8": bytes("x") })).to.not.equal(d);
    expect(materialDigest({ "client.cert": bytes("certificate"), "root.crt": bytes("root") })).to.not.equal(d);
  });

  it("does not confuse where a key ends and its value begins, nor one file's end with the next", () => {
    expect(materialDigest({ a: bytes("bc") })).to.not.equal(materialDigest({ ab: bytes("c") }));
    expect(materialDigest({ a: bytes("xy"), b: bytes("") })).to.not.equal(materialDigest({ a: bytes("x"), b: bytes("y") }));
  });

  it("an undefined value counts as an absent file", () => {
    expect(materialDigest({ "client.crt": bytes("c"), "client.key": undefined })).to.equal(materialDigest({ "client.crt": bytes("c") }));
  });

  it("is stable for the chart's Secret built twice from the same client Secret", () => {
    const one = chartSecretData(clientSecret(), "ini");
    const two = chartSecretData(clientSecret(), "ini");
    const other = chartSecretData(clientSecret(), "ini2");
    if (!one.ok || !two.ok || !other.ok) throw new Error("unexpected refusal");
    expect(materialDigest(two.value)).to.equal(materialDigest(one.value));
    expect(materialDigest(other.value)).to.not.equal(materialDigest(one.value));
  });
});

describe("chartLibpqEnv", () => {
  it("points libpq at the copied PEM key (client-key.pem, chmod 0600 by the chart), certificate and roots", () => {
    const expected = [
      { name: "PGSSLMODE", value: "verify-full" },
      { name: "PGSSLCERT", value: "/etc/ssl/certs-postgres/client.crt" },
      { name: "PGSSLKEY", value: "/etc/ssl/certs-postgres/client-key.pem" },
      { name: "PGSSLROOTCERT", value: "/etc/ssl/certs-postgres/root.crt" },
    ];
    expect(chartLibpqEnv(FILES_DIR, "verify-full")).to.deep.equal(expected);
    expect(chartLibpqEnv(`${FILES_DIR}/`, "verify-full")).to.deep.equal(expected);
    expect(chartLibpqEnv(FILES_DIR, "verify-ca")[0]).to.deep.equal({ name: "PGSSLMODE", value: "verify-ca" });
  });
});

describe("chartMaterial (the digest consumers restart for)", () => {
  const files = (over: Record<string, string> = {}) =>
    Object.fromEntries(
      Object.entries({ "client.crt": "CERT", "root.crt": "ROOT", "sslconfig.ini": "INI", "client-key.pem": "KEY", "client.pk8": "PK8", ...over }).map(([k, v]) => [k, Buffer.from(v)]),
    );

  it("changes with the certificate, the trust bundle or the .ini", () => {
    const base = chartMaterial(files());
    for (const key of ["client.crt", "root.crt", "sslconfig.ini"]) expect(chartMaterial(files({ [key]: "other" })), key).to.not.equal(base);
  });

  it("is not a function of the private key (no hash of key material is published)", () => {
    expect(chartMaterial(files({ "client-key.pem": "another key", "client.pk8": "another" }))).to.equal(chartMaterial(files()));
  });
});
