/**
 * Where a PostgreSQL server in a pod reads its configuration, worked out from its pod template the way the server
 * itself resolves it: `-c` settings on the command line outrank every file; `config_file` defaults to
 * `$PGDATA/postgresql.conf`, `hba_file` to `$PGDATA/pg_hba.conf`; a ConfigMap mounted as a directory is live, one
 * mounted with subPath is a copy made at pod start, a `postgresql.conf.sample` is a template only initdb reads.
 *
 * Pure: the pod template and the ConfigMaps' metadata in, a description out.
 */
import type { Workload } from "../imaging/pod-template";

/** The official image's data directory, used when neither -D nor PGDATA says otherwise. */
export const DEFAULT_PGDATA = "/var/lib/postgresql/data";

export type FileSource =
  /** A key of a ConfigMap: `live` when mounted as a directory (updates appear in place), else a subPath copy. */
  | { kind: "ConfigMap"; path: string; configMap: string; key: string; live: boolean }
  /** A file of some other volume (a PVC: the data directory), or of the image itself. */
  | { kind: "Volume"; path: string; volume: string }
  | { kind: "Image"; path: string };

/** A -c (or --name=value) setting of the server's command line. */
export interface CommandLineSetting {
  name: string;
  value: string;
}

export interface ServerLayout {
  container: string;
  /** The container's own command (absent: the image's entrypoint). */
  command?: string[];
  settings: CommandLineSetting[];
  dataDirectory: string;
  postgresqlConf: FileSource;
  hbaFile: FileSource;
  /** Every ConfigMap the container mounts. */
  mountedConfigMaps: string[];
  /** Volumes the kubelet mounts read-only whatever the mount says: Secrets, projected, downward API. */
  readOnlyVolumes: string[];
  /** A ConfigMap mounted as postgresql.conf.sample: initdb's template, read once when the data directory is created. */
  initdbTemplate?: { configMap: string; key: string; path: string };
}

type PodSpec = NonNullable<NonNullable<NonNullable<Workload["spec"]>["template"]>["spec"]>;

/** The -c name=value, -cname=value and --name=value settings, in order (the last of a name wins); -D the data dir. */
export function parseServerArguments(argv: readonly string[]): { settings: CommandLineSetting[]; dataDirectory?: string } {
  const settings: CommandLineSetting[] = [];
  let dataDirectory: string | undefined;
  const setting = (text: string) => {
    const eq = text.indexOf("=");
    if (eq <= 0) return;
    settings.push({ name: text.slice(0, eq).toLowerCase().replace(/-/g, "_"), value: text.slice(eq + 1) });
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "-c" && i + 1 < argv.length) setting(argv[++i]!);
    else if (a.startsWith("-c") && a.length > 2) setting(a.slice(2));
    else if (a.startsWith("--") && a.includes("=")) setting(a.slice(2));
    else if (a === "-D" && i + 1 < argv.length) dataDirectory = argv[++i];
  }
  return { settings, ...(dataDirectory ? { dataDirectory } : {}) };
}

/** The value the server ends up with for a command-line setting (the last one given). */
export function commandLineValue(settings: readonly CommandLineSetting[], name: string): string | undefined {
  return settings.filter((s) => s.name === name).at(-1)?.value;
}

const normalize = (p: string) => p.replace(/\/+$/, "") || "/";

function join(dir: string, file: string): string {
  return file.startsWith("/") ? file : `${normalize(dir)}/${file}`;
}

/** What backs a path in the container: the deepest mount that covers it (nested mounts hide their parents). */
export function sourceOf(spec: PodSpec, container: string, path: string): FileSource {
  const mounts = spec.containers?.find((c) => c.name === container)?.volumeMounts ?? [];
  const covering = mounts
    .filter((m) => {
      const at = normalize(m.mountPath);
      return path === at || path.startsWith(at === "/" ? "/" : `${at}/`);
    })
    .sort((a, b) => normalize(b.mountPath).length - normalize(a.mountPath).length)[0];
  if (!covering) return { kind: "Image", path };
  const volume = spec.volumes?.find((v) => v.name === covering.name);
  const at = normalize(covering.mountPath);
  const rest = path === at ? "" : path.slice(at === "/" ? 1 : at.length + 1);
  const configMap = volume?.configMap?.name;
  if (!configMap) return { kind: "Volume", path, volume: covering.name };
  // A whole-volume mount names the key by the file name; a subPath mount names it itself.
  const relative = covering.subPath ? [covering.subPath, rest].filter(Boolean).join("/") : rest;
  const items = (volume.configMap as { items?: { key: string; path: string }[] }).items;
  const key = items ? (items.find((i) => i.path === relative)?.key ?? relative) : relative;
  return { kind: "ConfigMap", path, configMap, key, live: !covering.subPath };
}

/** The server's configuration as its pod template sets it up, or undefined when the container does not exist. */
export function readServerLayout(workload: Workload, container: string): ServerLayout | undefined {
  const spec = workload.spec?.template?.spec;
  const c = spec?.containers?.find((x) => x.name === container);
  if (!spec || !c) return undefined;
  // A shell command (`sh -c 'script' $0 args…`, the operator's own included) hands the server only the args.
  const shell = c.command !== undefined && c.command[1] === "-c" && /(^|\/)(ba|da)?sh$/.test(c.command[0] ?? "");
  const parsed = parseServerArguments([...(shell ? [] : (c.command ?? [])), ...(c.args ?? [])]);
  const pgdata = (c.env ?? []).find((e) => e.name === "PGDATA")?.value;
  const dataDirectory = normalize(parsed.dataDirectory ?? pgdata ?? DEFAULT_PGDATA);
  const confPath = join(dataDirectory, commandLineValue(parsed.settings, "config_file") ?? "postgresql.conf");
  const hbaPath = join(dataDirectory, commandLineValue(parsed.settings, "hba_file") ?? "pg_hba.conf");
  const sampleMount = (c.volumeMounts ?? []).find((m) => m.mountPath.endsWith("/postgresql.conf.sample"));
  const sample = sampleMount ? sourceOf(spec, container, normalize(sampleMount.mountPath)) : undefined;
  return {
    container,
    ...(c.command ? { command: c.command } : {}),
    settings: parsed.settings,
    dataDirectory,
    mountedConfigMaps: (c.volumeMounts ?? []).flatMap((m) => spec.volumes?.find((v) => v.name === m.name)?.configMap?.name ?? []),
    readOnlyVolumes: (spec.volumes ?? []).filter((v) => v.secret || (v as { projected?: object }).projected || (v as { downwardAPI?: object }).downwardAPI).map((v) => v.name),
    postgresqlConf: sourceOf(spec, container, confPath),
    hbaFile: sourceOf(spec, container, hbaPath),
    ...(sample?.kind === "ConfigMap" ? { initdbTemplate: { configMap: sample.configMap, key: sample.key, path: sample.path } } : {}),
  };
}

/** For status and messages: "/etc/postgresql/pg_hba.conf (ConfigMap pghba, key pg_hba.conf, subPath: read at start)". */
export function describeSource(s: FileSource): string {
  switch (s.kind) {
    case "ConfigMap":
      return `${s.path} (ConfigMap ${s.configMap}, key ${s.key}, ${s.live ? "mounted as a directory: live" : "subPath: copied at pod start"})`;
    case "Volume":
      return `${s.path} (volume ${s.volume}: the server's own file, no ConfigMap)`;
    case "Image":
      return `${s.path} (the container's own file system, no volume)`;
  }
}
