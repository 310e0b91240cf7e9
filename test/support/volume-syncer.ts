import type * as k8s from "@kubernetes/client-node";
import { chmod, lchown, mkdir, readlink, rename, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { RESOURCES } from "../../src/kube/resources";
import { RestClient } from "../../src/kube/rest";
import { Informer, type KubeObject } from "../../src/runtime/informer";
import { silentLogger } from "../../src/log";
import type { PostgresServer } from "./postgres";

type DataObject = KubeObject & { data?: Record<string, string>; spec?: { template?: { metadata?: { annotations?: Record<string, string> } } } };


export interface SyncedVolume {
  kind: "ConfigMap" | "Secret";
  name: string;
  /** Absolute directory the keys are written into (one file per key, like a volume without subPath). */
  dir: string;
  /** Only these keys, when set. */
  keys?: string[];
  /** Owned by the PostgreSQL server's user (server files), or by us (client files read by psql/JDBC). */
  ownedByServer: boolean;
}

export interface VolumeSyncerOptions {
  kubeConfig: k8s.KubeConfig;
  namespace: string;
  pg?: PostgresServer;
  volumes: SyncedVolume[];
  /** The database workload: a change of its pod template restarts the server, as a rollout would. */
  workload?: { kind: "StatefulSet" | "Deployment"; name: string };
  /** How long the "kubelet" waits before laying a change down. */
  delayMs?: number;
}

export interface VolumeSyncer {
  /** How many times a volume was laid down, and how many times the server was restarted. */
  writes: number;
  restarts: number;
  stop(): void;
}

/**
 * Stands in for the kubelet: copies ConfigMap and Secret keys into files of the real PostgreSQL server (or of a
 * client folder) with the modes PostgreSQL and libpq demand, and restarts the server when the database
 * workload's pod template changes.
 */
export async function startVolumeSyncer(opts: VolumeSyncerOptions): Promise<VolumeSyncer> {
  const client = new RestClient(opts.kubeConfig);
  const log = silentLogger();
  const owner = opts.pg ? await serverOwner(opts.pg) : undefined;
  const informers: Informer<DataObject>[] = [];
  const state: VolumeSyncer = {
    writes: 0,
    restarts: 0,
    stop: () => informers.forEach((i) => i.stop()),
  };
  let chain = Promise.resolve();
  const serially = (fn: () => Promise<void>): void => {
    chain = chain.then(async () => {
      if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
      await fn();
    }).catch((err: unknown) => console.error("volume syncer:", err));
  };

  for (const kind of ["ConfigMap", "Secret"] as const) {
    const volumes = opts.volumes.filter((v) => v.kind === kind);
    if (volumes.length === 0) continue;
    const informer = new Informer<DataObject>(client, { type: RESOURCES[kind], namespaces: [opts.namespace] }, log);
    informer.on((event, obj) => {
      if (event === "delete") return;
      for (const v of volumes.filter((x) => x.name === obj.metadata.name)) {
        serially(async () => {
          await layDown(v, obj.data ?? {}, kind, owner);
          state.writes++;
        });
      }
    });
    informers.push(informer);
  }

  if (opts.workload && opts.pg) {
    const pg = opts.pg;
    const informer = new Informer<DataObject>(client, { type: RESOURCES[opts.workload.kind], namespaces: [opts.namespace] }, log);
    let lastTemplate: string | undefined;
    informer.on((event, obj) => {
      if (event === "delete" || obj.metadata.name !== opts.workload?.name) return;
      const template = JSON.stringify(obj.spec?.template ?? {});
      if (lastTemplate !== undefined && template !== lastTemplate) {
        serially(async () => {
          // A new pod mounts its volumes as they are now (read from the API: the operator wrote them before the
          // template, but each kind has its own watch, so that change may not have been laid down yet).
          for (const v of opts.volumes) {
            const current = await client.getOptional<DataObject>(RESOURCES[v.kind], { namespace: opts.namespace, name: v.name });
            if (current) await layDown(v, current.data ?? {}, v.kind, owner);
          }
          await pg.restart();
          state.restarts++;
        });
      }
      lastTemplate = template;
    });
    informers.push(informer);
  }

  informers.forEach((i) => i.start());
  await Promise.all(informers.map((i) => i.synced));
  return state;
}

let generation = 0;

/**
 * Writes a volume the way the kubelet's AtomicWriter does: every key into a fresh `..<stamp>` folder, then one
 * rename of the `..data` symlink switches all files at once, and each key is a symlink through `..data`. A
 * reader never sees a new certificate next to an old key.
 */
async function layDown(v: SyncedVolume, data: Record<string, string>, kind: "ConfigMap" | "Secret", owner: { uid: number; gid: number } | undefined): Promise<void> {
  const own = async (path: string) => {
    if (v.ownedByServer && owner) await lchown(path, owner.uid, owner.gid);
  };
  await mkdir(v.dir, { recursive: true });
  await own(v.dir);
  const stamp = `..${Date.now()}_${process.pid}_${generation++}`;
  const folder = join(v.dir, stamp);
  await mkdir(folder);
  await own(folder);
  const keys = Object.keys(data).filter((k) => !v.keys || v.keys.includes(k));
  for (const key of keys) {
    const path = join(folder, key);
    await writeFile(path, kind === "Secret" ? Buffer.from(data[key]!, "base64") : data[key]!, { mode: 0o600 });
    await chmod(path, 0o600);
    await own(path);
  }
  const previous = await readlink(join(v.dir, "..data")).catch(() => undefined);
  await symlink(stamp, join(v.dir, "..data_tmp"));
  await own(join(v.dir, "..data_tmp"));
  await rename(join(v.dir, "..data_tmp"), join(v.dir, "..data"));
  for (const key of keys) {
    const link = join(v.dir, key);
    if ((await readlink(link).catch(() => undefined)) === join("..data", key)) continue;
    // A plain file left from before (the server's own postgresql.conf) is replaced by the link in one rename.
    await symlink(join("..data", key), `${link}.tmp-link`);
    await own(`${link}.tmp-link`);
    await rename(`${link}.tmp-link`, link);
  }
  if (previous && previous !== stamp) await rm(join(v.dir, previous), { recursive: true, force: true });
}

async function serverOwner(pg: PostgresServer): Promise<{ uid: number; gid: number } | undefined> {
  const { stat } = await import("node:fs/promises");
  const s = await stat(pg.dataDir);
  return { uid: s.uid, gid: s.gid };
}
