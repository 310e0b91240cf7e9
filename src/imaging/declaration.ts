/**
 * What to declare in the CAST Imaging UI for one ImagingConnection, and where its files are in the containers.
 *
 * Pure. The JDBC URL follows pgjdbc's syntax (org.postgresql.Driver.parseURL):
 *   jdbc:postgresql://host:port/database?key=value&...
 * - an IPv6 host is bracketed: `[2001:db8::1]:5432` (pgjdbc takes the port after the last ':' that follows ']');
 * - the database name and every value are URL-decoded by pgjdbc with java.net.URLDecoder, so they are
 *   percent-encoded here with encodeURIComponent ('+' becomes %2B, never a literal '+', which URLDecoder would
 *   read as a space). '/' is left as is inside query values (paths stay readable; URLDecoder keeps it and
 *   pgjdbc only splits the query on '&' and the first '='); it is encoded in the database name.
 */
import { isIP } from "node:net";
import type { ResolvedImagingConnectionSpec, ResolvedSecureDatabaseSpec } from "../api/defaults";
import type { ConnectionDeclaration } from "../api/types";
import { SECRET_KEYS } from "../pki/secret-layout";

/** `<dir>/<file>` without doubling a trailing '/'. */
export function inMount(mountPath: string, file: string): string {
  const dir = mountPath.length > 1 ? mountPath.replace(/\/+$/, "") : mountPath;
  return dir === "/" ? `/${file}` : `${dir}/${file}`;
}

export interface ClientFilePaths {
  certificatePath: string;
  keyPath: string;
  keyPemPath: string;
  rootCertificatePath: string;
  pfxPath: string;
}

/** The in-container paths of the client files CAST names, for a Secret mounted whole at mountPath. */
export function clientFilePaths(mountPath: string): ClientFilePaths {
  return {
    certificatePath: inMount(mountPath, SECRET_KEYS.clientCrt),
    keyPath: inMount(mountPath, SECRET_KEYS.clientPk8),
    keyPemPath: inMount(mountPath, SECRET_KEYS.clientKey),
    rootCertificatePath: inMount(mountPath, SECRET_KEYS.rootCrt),
    pfxPath: inMount(mountPath, SECRET_KEYS.clientPfx),
  };
}

const encodeValue = (v: string): string => encodeURIComponent(v).replace(/%2F/g, "/");

/** The pgjdbc URL: host, port, database, and the TLS parameters with the PKCS#8 DER key pgjdbc requires. */
export function jdbcUrl(
  input: { host: string; port: number; database: string; sslMode: string } & Omit<ClientFilePaths, "keyPemPath" | "pfxPath">,
): string {
  const host = isIP(input.host) === 6 ? `[${input.host}]` : input.host;
  const params: [string, string][] = [
    ["ssl", "true"],
    ["sslmode", input.sslMode],
    ["sslcert", input.certificatePath],
    ["sslkey", input.keyPath],
    ["sslrootcert", input.rootCertificatePath],
  ];
  const query = params.map(([k, v]) => `${k}=${encodeValue(v)}`).join("&");
  return `jdbc:postgresql://${host}:${input.port}/${encodeURIComponent(input.database)}?${query}`;
}

/**
 * The status.declaration of an ImagingConnection whose Secret is mounted at mountPath and whose workloads read
 * the CAST .ini at iniPath.
 */
export function connectionDeclaration(
  db: ResolvedSecureDatabaseSpec,
  conn: ResolvedImagingConnectionSpec,
  mountPath: string,
  iniPath: string,
): ConnectionDeclaration {
  const paths = clientFilePaths(mountPath);
  return {
    host: db.host,
    port: db.port,
    database: conn.database,
    user: conn.user,
    sslMode: conn.sslMode,
    ...paths,
    pfxPasswordSecretKey: SECRET_KEYS.clientPfxPassword,
    iniPath,
    jdbcUrl: jdbcUrl({ host: db.host, port: db.port, database: conn.database, sslMode: conn.sslMode, ...paths }),
  };
}
