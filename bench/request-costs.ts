/**
 * What each kind of request the storm makes costs the API server and etcd, one kind at a time on an idle control
 * plane: the figures issue 17 asks the operator to choose its request kinds by (create or apply, merge patch of a
 * status, a read that finds nothing). No operator runs; nothing watches, so the watch fan-out is not in them.
 */
import { randomBytes } from "node:crypto";
import { JSON_PATCH, RestClient } from "../src/kube/rest";
import type { ImagingConnectionObject } from "../src/reconcilers/context";
import { RESOURCES } from "../src/kube/resources";
import { generateCA, issueClientCertificate } from "../src/pki";
import { clientSecretData } from "../src/pki/secret-layout";
import { startControlPlane } from "../test/support/controlplane";
import { controlPlaneCpu } from "./bare-bound";
import { apiServerAndEtcdPids, inBatches } from "./scale-measure";

const COUNT = Number(process.env.REQUEST_COSTS_N ?? 1000);
const IN_FLIGHT = 64;
const MERGE = "application/merge-patch+json";

interface Kind {
  readonly name: string;
  /** Runs before the measured requests (e.g. creates what they patch), unmeasured. */
  readonly prepare?: (i: number) => Promise<unknown>;
  readonly request: (i: number) => Promise<unknown>;
}

/** A connection's first status as the storm writes it (bench/scale.ts SCALE_DUMP): about 2.3 kB. */
function firstStatus(ns: string, name: string): Record<string, unknown> {
  const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  const dir = `/etc/cast-imaging/mtls/${name}`;
  const condition = (type: string, status: string, reason: string, message: string) => ({ type, status, reason, message, lastTransitionTime: now, observedGeneration: 1 });
  return {
    certificate: { issuerFingerprintSHA256: randomBytes(32).toString("hex"), notAfter: now, notBefore: now, renewalTime: now, secretName: `${name}-client-tls`, serialNumber: randomBytes(16).toString("hex") },
    conditions: [
      condition("CertificateReady", "True", "Valid", `CN=u0, serial ${randomBytes(16).toString("hex")}, valid until ${now}, renews at ${now}`),
      condition("ConnectionVerified", "Unknown", "VerificationDisabled", "spec.verification.enabled is false"),
      condition("Ready", "True", "Connected", "the client certificate is issued, mounted where listed, and logs in to the database"),
      condition("Revoked", "False", "NotRevoked", "the database does not revoke this connection"),
      condition("WorkloadsPatched", "True", "NoWorkloads", "spec.workloads is empty: mount the client Secret yourself (status.declaration gives the file names)"),
    ],
    declaration: {
      certificatePath: `${dir}/client.crt`,
      database: "postgres",
      host: `db.${ns}.svc`,
      iniPath: "/etc/cast-imaging/mtls-ini/cast-connections.ini",
      jdbcUrl: `jdbc:postgresql://db.${ns}.svc:5432/postgres?ssl=true&sslmode=verify-full&sslcert=${dir}/client.crt&sslkey=${dir}/client.pk8&sslrootcert=${dir}/root.crt`,
      keyPath: `${dir}/client.pk8`,
      keyPemPath: `${dir}/client.key`,
      pfxPasswordSecretKey: "client.pfx.password",
      pfxPath: `${dir}/client.pfx`,
      port: 5432,
      rootCertificatePath: `${dir}/root.crt`,
      sslMode: "verify-full",
      user: "u0",
    },
    observedGeneration: 1,
    workloads: [],
  };
}

async function clientSecretTemplate(): Promise<Record<string, string>> {
  const ca = await generateCA({ commonName: "bench-ca", duration: 365 * 86_400_000, now: new Date() });
  const issued = await issueClientCertificate(ca, { user: "u0", duration: 30 * 86_400_000, now: new Date() });
  const data = await clientSecretData({ issued, trustBundlePem: ca.certPem });
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString("base64")]));
}

function kinds(admin: RestClient, ns: string, data: Record<string, string>): Kind[] {
  const secret = (name: string) => ({ apiVersion: "v1", kind: "Secret", type: "kubernetes.io/tls", metadata: { name, namespace: ns, labels: { "app.kubernetes.io/managed-by": "imaging-db-mtls-operator" } }, data });
  const imc = (name: string) => ({
    apiVersion: "mtls.imaging.dev/v1alpha1",
    kind: "ImagingConnection",
    metadata: { name, namespace: ns },
    spec: { databaseRef: { name: "db" }, user: "u0", verification: { enabled: false } },
  });
  const ledgerEntries = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`e${i}`, randomBytes(120).toString("base64")]));
  return [
    { name: "POST Secret (create)", request: (i) => admin.create(RESOURCES.Secret, ns, secret(`create-${i}`)) },
    { name: "APPLY Secret, new (server-side apply)", request: (i) => admin.apply(RESOURCES.Secret, { namespace: ns, name: `apply-${i}` }, secret(`apply-${i}`)) },
    { name: "APPLY Secret, unchanged", request: (i) => admin.apply(RESOURCES.Secret, { namespace: ns, name: `apply-${i}` }, secret(`apply-${i}`)) },
    { name: "GET Secret that does not exist", request: (i) => admin.getOptional(RESOURCES.Secret, { namespace: ns, name: `missing-${i}` }) },
    { name: "POST ImagingConnection (CRD, CEL rules)", request: (i) => admin.create(RESOURCES.ImagingConnection, ns, imc(`c-${i}`)) },
    {
      name: "PATCH ImagingConnection finalizer (merge)",
      request: (i) => admin.patch(RESOURCES.ImagingConnection, { namespace: ns, name: `c-${i}` }, { metadata: { finalizers: ["mtls.imaging.dev/cleanup"] } }, MERGE),
    },
    {
      name: "PATCH ImagingConnection finalizer (JSON patch, as the operator)",
      request: (i) => admin.patch(RESOURCES.ImagingConnection, { namespace: ns, name: `c-${i}` }, [{ op: "add", path: "/metadata/finalizers/-", value: "mtls.imaging.dev/second" }], JSON_PATCH),
    },
    {
      name: "PUT ImagingConnection, a finalizer added (update)",
      request: async (i) => {
        const current = await admin.get<ImagingConnectionObject>(RESOURCES.ImagingConnection, { namespace: ns, name: `c-${i}` });
        return admin.replace(RESOURCES.ImagingConnection, { namespace: ns, name: `c-${i}` }, { ...current, metadata: { ...current.metadata, finalizers: [...(current.metadata.finalizers ?? []), "mtls.imaging.dev/third"] } });
      },
    },
    {
      name: "PATCH ImagingConnection status (merge)",
      request: (i) =>
        admin.patch(
          RESOURCES.ImagingConnection,
          { namespace: ns, name: `c-${i}` },
          { status: { observedGeneration: 1, conditions: [{ type: "Ready", status: "True", reason: "Ready", message: "bench", lastTransitionTime: new Date().toISOString(), observedGeneration: 1 }] } },
          MERGE,
          "status",
        ),
    },
    {
      name: "PATCH ImagingConnection status, a connection's first (merge)",
      request: (i) => admin.patch(RESOURCES.ImagingConnection, { namespace: ns, name: `c-${i}` }, { status: firstStatus(ns, `c-${i}`) }, MERGE, "status"),
    },
    {
      name: "PUT ImagingConnection status, the same (replace)",
      request: async (i) => {
        const current = await admin.get<ImagingConnectionObject>(RESOURCES.ImagingConnection, { namespace: ns, name: `c-${i}` });
        return admin.replace(RESOURCES.ImagingConnection, { namespace: ns, name: `c-${i}` }, { ...current, status: { ...firstStatus(ns, `c-${i}`), observedGeneration: 2 } }, "status");
      },
    },
    {
      name: "POST Event",
      request: (i) =>
        admin.create(RESOURCES.Event, ns, {
          apiVersion: "v1",
          kind: "Event",
          metadata: { name: `c-${i}.bench`, namespace: ns },
          involvedObject: { apiVersion: "mtls.imaging.dev/v1alpha1", kind: "ImagingConnection", name: `c-${i}`, namespace: ns },
          reason: "Issued",
          message: "bench",
          type: "Normal",
          source: { component: "bench" },
        }),
    },
    {
      name: "PATCH ConfigMap of 60 entries, one entry added (merge)",
      prepare: (i) => admin.create(RESOURCES.ConfigMap, ns, { apiVersion: "v1", kind: "ConfigMap", metadata: { name: `ledger-${i}`, namespace: ns }, data: ledgerEntries(60) }),
      request: (i) => admin.patch(RESOURCES.ConfigMap, { namespace: ns, name: `ledger-${i}` }, { data: { added: randomBytes(120).toString("base64") } }, MERGE),
    },
    {
      name: "PATCH ConfigMap of one 16 kB key, the key replaced (merge)",
      prepare: (i) => admin.create(RESOURCES.ConfigMap, ns, { apiVersion: "v1", kind: "ConfigMap", metadata: { name: `blob-${i}`, namespace: ns }, data: { entries: Object.values(ledgerEntries(60)).join("\n") } }),
      request: (i) => admin.patch(RESOURCES.ConfigMap, { namespace: ns, name: `blob-${i}` }, { data: { entries: Object.values(ledgerEntries(61)).join("\n") } }, MERGE),
    },
  ];
}

export async function runRequestCostsBench(): Promise<void> {
  const cp = await startControlPlane();
  try {
    await cp.installCRDs();
    const admin = new RestClient(cp.kubeConfig);
    const ns = await cp.createNamespace("costs");
    const pids = await apiServerAndEtcdPids(cp.dir);
    const data = await clientSecretTemplate();
    const bytes = Object.values(data).reduce((n, v) => n + v.length, 0);
    const rows: Record<string, { "API server + etcd CPU (ms)": number; "× POST Secret": number; "wall, 64 in flight (s)": number }> = {};
    let createCost = 0;
    for (const kind of kinds(admin, ns, data)) {
      if (kind.prepare) await inBatches(COUNT, IN_FLIGHT, kind.prepare);
      // Let the previous kind's work (etcd compaction, the API server's own goroutines) settle first.
      await new Promise((r) => setTimeout(r, 2_000));
      const before = await controlPlaneCpu(pids);
      const t0 = performance.now();
      await inBatches(COUNT, IN_FLIGHT, kind.request);
      const wall = (performance.now() - t0) / 1000;
      const ms = (((await controlPlaneCpu(pids)) - before) * 1000) / COUNT;
      if (createCost === 0) createCost = ms;
      rows[kind.name] = { "API server + etcd CPU (ms)": Math.round(ms * 100) / 100, "× POST Secret": Math.round((ms / createCost) * 10) / 10, "wall, 64 in flight (s)": Math.round(wall * 10) / 10 };
    }
    console.log(`\nWhat one request of each kind costs the control plane (${COUNT} of each, ${IN_FLIGHT} in flight, a client Secret of ${bytes} bytes of data, nothing watching):`);
    console.table(rows);
  } finally {
    await cp.stop();
  }
}
