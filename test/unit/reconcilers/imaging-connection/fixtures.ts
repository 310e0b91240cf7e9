/** Real inputs for the ImagingConnection plans: a database and a connection as the API holds them, resolved as the reconciler does. */
import { resolveImagingConnection, resolveSecureDatabase, type ResolvedImagingConnectionSpec } from "../../../../src/api/defaults";
import type {
  ImagingConnection,
  ImagingConnectionSpec,
  ImagingConnectionStatus,
  ObjectMeta,
  SecureDatabase,
  SecureDatabaseSpec,
  SecureDatabaseStatus,
} from "../../../../src/api/types";
import { clientFilePaths } from "../../../../src/imaging/declaration";
import { admitConnections, iniConfigMapName, type WorkloadCandidate } from "../../../../src/imaging/workload-plan";
import { podTemplateApplyPatch, type PodTemplatePlan } from "../../../../src/imaging/pod-template";
import type { ImagingConnectionObject, SecureDatabaseObject, WorkloadObject } from "../../../../src/reconcilers/context";
import type { ConnectionTarget } from "../../../../src/reconcilers/imaging-connection/target";
import type { WorkloadView } from "../../../../src/reconcilers/imaging-connection/workload-view";

export const NOW = new Date("2026-11-23T12:00:00Z");
export const NS = "imaging";

export function secureDatabase(spec: Partial<SecureDatabaseSpec> = {}, status?: SecureDatabaseStatus): SecureDatabaseObject {
  const sdb: SecureDatabase = {
    apiVersion: "mtls.imaging.dev/v1alpha1",
    kind: "SecureDatabase",
    metadata: { name: "db", namespace: NS, creationTimestamp: "2026-11-01T00:00:00Z" },
    spec: { host: "db.example", postgres: { configMapName: "pg" }, access: [{ users: ["cast_app"], mountIntoWorkloads: true }], ...spec },
    ...(status ? { status } : {}),
  };
  return sdb as SecureDatabaseObject;
}

export function imagingConnection(
  name: string,
  spec: Partial<ImagingConnectionSpec> = {},
  extra: { status?: ImagingConnectionStatus; created?: string; annotations?: Record<string, string> } = {},
): ImagingConnectionObject {
  const imc: ImagingConnection = {
    apiVersion: "mtls.imaging.dev/v1alpha1",
    kind: "ImagingConnection",
    metadata: {
      name,
      namespace: NS,
      creationTimestamp: extra.created ?? "2026-11-02T00:00:00Z",
      ...(extra.annotations ? { annotations: extra.annotations } : {}),
    },
    spec: { databaseRef: { name: "db" }, user: "cast_app", ...spec },
    ...(extra.status ? { status: extra.status } : {}),
  };
  return imc as ImagingConnectionObject;
}

/** The object once `kubectl delete` asked for it, with these finalizers still on it. */
export function deleted<T extends ImagingConnectionObject | SecureDatabaseObject>(obj: T, finalizers?: string[]): T {
  const metadata: ObjectMeta = {
    ...(obj.metadata as ObjectMeta),
    deletionTimestamp: "2026-11-23T11:00:00Z",
    ...(finalizers ? { finalizers } : {}),
  };
  return { ...obj, metadata } as T;
}

export const target = (sdb: SecureDatabaseObject): ConnectionTarget => ({ sdb, db: resolveSecureDatabase(sdb) });
export const resolved = (imc: ImagingConnectionObject): ResolvedImagingConnectionSpec => resolveImagingConnection(imc);

/** A Deployment with the given containers, as a chart writes it. */
export function deployment(name: string, containers: string[] = ["app"]): WorkloadObject {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, namespace: NS, uid: `uid-${name}` },
    spec: { template: { spec: { containers: containers.map((c) => ({ name: c })) } } },
  };
}

/** The workload as it is once the server-side apply of the plan went through (a template with only its containers). */
export const patched = (w: WorkloadObject, plan: PodTemplatePlan): WorkloadObject =>
  ({ ...podTemplateApplyPatch("Deployment", w.metadata.name, NS, plan), metadata: w.metadata }) as WorkloadObject;

/** The candidate a resolved connection makes for a Deployment it lists, as workloadView builds it. */
export function candidate(imc: ImagingConnectionObject, workload: string): WorkloadCandidate {
  const spec = resolved(imc);
  const entry = spec.workloads.find((w) => w.name === workload)!;
  const paths = clientFilePaths(entry.mountPath);
  return {
    name: imc.metadata.name,
    secretName: spec.secretName,
    sslMode: spec.sslMode,
    libpqEnv: spec.libpqEnv,
    workload: entry,
    iniEntry: {
      host: "db.example",
      port: 5432,
      sslMode: spec.sslMode,
      certificatePath: paths.certificatePath,
      keyPath: paths.keyPath,
      rootCertificatePath: paths.rootCertificatePath,
    },
  };
}

/** What workloadView gives for a Deployment (undefined: it does not exist) and the candidates targeting it. */
export function view(name: string, workload: WorkloadObject | undefined, candidates: WorkloadCandidate[]): WorkloadView {
  const iniName = iniConfigMapName("Deployment", name);
  const admission = workload
    ? admitConnections({ candidates, workload, iniConfigMapName: iniName })
    : { plan: { mounts: [], env: [], annotations: {} }, ini: "", admitted: [], refused: new Map() };
  return { kind: "Deployment", namespace: NS, name, ...(workload ? { workload } : {}), iniConfigMapName: iniName, candidates, admission };
}
