/**
 * The client TLS contract of CAST's Helm chart (EnablePostgresSSL=true), read from a pod template, and the Secret
 * that fills it. Pure.
 *
 * The chart mounts a Secret (`ssl-certs`) read-only into an init container, which copies every file into an
 * emptyDir (`/etc/ssl/certs-postgres`) and chmods `client-key.pem` to 0600; the main container mounts that emptyDir
 * and reads `CASTCONNECTIONEXTRAPARAMETERS=/etc/ssl/certs-postgres/sslconfig.ini`. So the Secret itself must hold
 * the key as `client-key.pem`, CAST's file names, and an `.ini` whose paths name files in the copy directory; and
 * the files reach a pod only when it starts.
 */
import { createHash } from "node:crypto";
import { posix } from "node:path";
import { fail, ok, type Result } from "../api/result";
import { SECRET_KEYS, type SecretPayload } from "../pki/secret-layout";
import { CAST_INI_ENV, renderCastIni, type CastSslMode } from "./cast-ini";
import { inMount } from "./declaration";
import type { Container, Workload } from "./pod-template";

/** The key file name the chart's init container chmods (libpq takes this PEM key). */
export const CHART_KEY_FILE = "client-key.pem";
/** The .ini file name the chart's containers are told about. */
export const CHART_INI_FILE = "sslconfig.ini";
/** Where CAST's chart 3.6.x has its components read the files (the init container's copy). */
export const CHART_FILES_DIR = "/etc/ssl/certs-postgres";
/** On a consumer's pod template: the digest of the material its pods started with (changing it restarts them). */
export const CHART_MATERIAL_ANNOTATION = "mtls.imaging.dev/chart-material";

/** The client Secret keys copied into the chart's Secret (CAST's file names). */
const CAST_FILES = [
  SECRET_KEYS.clientCrt,
  SECRET_KEYS.clientKey,
  SECRET_KEYS.clientPk8,
  SECRET_KEYS.clientPemPk8,
  SECRET_KEYS.clientPfx,
  SECRET_KEYS.clientPfxPassword,
  SECRET_KEYS.rootCrt,
] as const;

export interface ChartContract {
  /** The pod-template volume that holds the chart's Secret. */
  secretVolume: string;
  /** The emptyDir volume the files are copied into. */
  filesVolume: string;
  /** Where the files are copied to and read from. */
  filesDir: string;
  /** The .ini path the main containers are given. */
  iniPath: string;
  /** Init containers that run psql once the files are there: they get the PGSSL* defaults of libpq (and the mount). */
  psqlInitContainers: { name: string; mountsFiles: boolean }[];
}

const mentions = (c: Container, word: RegExp): boolean => word.test([...(c.command ?? []), ...(c.args ?? [])].join("\n"));

/**
 * The contract a workload carries for the Secret `secretName`: undefined when no volume of the pod template comes
 * from that Secret (not a chart consumer); a refusal when it does but the rest of the contract is not there.
 */
export function readChartContract(workload: Workload, secretName: string): Result<ChartContract> | undefined {
  const spec = workload.spec?.template?.spec;
  const secretVolume = spec?.volumes?.find((v) => v.secret?.secretName === secretName);
  if (!secretVolume) return undefined;
  const where = `the pod template mounts Secret ${secretName} (volume ${secretVolume.name})`;
  const iniPaths = new Set(
    (spec?.containers ?? []).flatMap((c) => (c.env ?? []).filter((e) => e.name === CAST_INI_ENV && e.value).map((e) => e.value!)),
  );
  if (iniPaths.size !== 1) {
    const found = iniPaths.size === 0 ? "no container sets it" : `containers set ${[...iniPaths].join(" and ")}`;
    return fail("ChartContractIncomplete", `${where}, but ${CAST_INI_ENV} must name one .ini file: ${found}`);
  }
  const iniPath = [...iniPaths][0]!;
  const filesDir = posix.dirname(iniPath);
  const initContainers = spec?.initContainers ?? [];
  const copier = initContainers.find((c) => c.volumeMounts?.some((m) => m.name === secretVolume.name));
  const filesMount = copier?.volumeMounts?.find((m) => posix.normalize(m.mountPath).replace(/(.)\/+$/, "$1") === filesDir);
  const filesVolume = spec?.volumes?.find((v) => v.name === filesMount?.name && v.emptyDir !== undefined);
  if (!copier || !filesVolume) {
    return fail(
      "ChartContractIncomplete",
      `${where}, but no init container copies it into an emptyDir at ${filesDir}, where ${CAST_INI_ENV} points`,
    );
  }
  const after = initContainers.slice(initContainers.indexOf(copier));
  // Only the copier is known to mount the files on its own: a later one is given the mount (the same entry again
  // if the chart has it too), never judged by what the template carries, which may be our own mount.
  const psqlInitContainers = after.filter((c) => mentions(c, /\bpsql\b/)).map((c) => ({ name: c.name, mountsFiles: c === copier }));
  return ok({ secretVolume: secretVolume.name, filesVolume: filesVolume.name, filesDir, iniPath, psqlInitContainers });
}

/** The `.ini` for the chart's copy directory: the paths name the files where the init container puts them. */
export function chartIni(db: { host: string; port: number }, sslMode: CastSslMode, filesDir: string): Result<string> {
  return renderCastIni([
    {
      host: db.host,
      port: db.port,
      sslMode,
      certificatePath: inMount(filesDir, SECRET_KEYS.clientCrt),
      keyPath: inMount(filesDir, SECRET_KEYS.clientPk8),
      rootCertificatePath: inMount(filesDir, SECRET_KEYS.rootCrt),
    },
  ]);
}

/** The chart's Secret: CAST's files from the client Secret, the key again as client-key.pem, and the .ini. */
export function chartSecretData(client: Readonly<Record<string, Uint8Array | undefined>>, ini: string): Result<SecretPayload> {
  const data: SecretPayload = {};
  for (const key of CAST_FILES) {
    const value = client[key];
    if (!value || value.length === 0) return fail("ClientSecretIncomplete", `the client Secret has no ${key}`);
    data[key] = Buffer.from(value);
  }
  data[CHART_KEY_FILE] = Buffer.from(client[SECRET_KEYS.clientKey]!);
  data[CHART_INI_FILE] = Buffer.from(ini, "utf8");
  return ok(data);
}

/** A short digest of a Secret's content: the same files give the same value, whatever the key order. */
export function materialDigest(data: Readonly<Record<string, Uint8Array | undefined>>): string {
  const hash = createHash("sha256");
  for (const key of Object.keys(data).sort()) {
    const value = data[key];
    if (!value) continue;
    hash.update(`${key}\0${value.length}\0`).update(value);
  }
  return hash.digest("hex").slice(0, 16);
}

/**
 * The material a chart Secret holds, as the digest its consumers are restarted for: of its public files only (the
 * certificate binds the key, so a new key comes with a new certificate), so no hash of a private key is published
 * in annotations, events or logs.
 */
export function chartMaterial(data: Readonly<Record<string, Uint8Array | undefined>>): string {
  return materialDigest({ [SECRET_KEYS.clientCrt]: data[SECRET_KEYS.clientCrt], [SECRET_KEYS.rootCrt]: data[SECRET_KEYS.rootCrt], [CHART_INI_FILE]: data[CHART_INI_FILE] });
}

/** libpq's defaults for psql in an init container that runs after the copy. */
export function chartLibpqEnv(filesDir: string, sslMode: string): { name: string; value: string }[] {
  return [
    { name: "PGSSLMODE", value: sslMode },
    { name: "PGSSLCERT", value: inMount(filesDir, SECRET_KEYS.clientCrt) },
    { name: "PGSSLKEY", value: inMount(filesDir, CHART_KEY_FILE) },
    { name: "PGSSLROOTCERT", value: inMount(filesDir, SECRET_KEYS.rootCrt) },
  ];
}
