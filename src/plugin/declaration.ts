/**
 * `kubectl mtls declaration imc/NAME`: what to enter in CAST Imaging for a connection, from its
 * status.declaration, as JSON, the CAST .ini (cast-ini.ts renders it, as the operator does for the workloads), the
 * JDBC URL, or libpq's environment. Formatting is pure; run() reads one object.
 */
import { IMAGING_CONNECTION, type ConnectionDeclaration } from "../api/types";
import { renderCastIni, type CastSslMode } from "../imaging/cast-ini";
import { jdbcUrl } from "../imaging/declaration";
import { choiceFlag, type Invocation, type Verb, type VerbContext } from "./command";
import { EXIT, PluginError, type ExitCode } from "./errors";
import { renderDocument } from "./output";
import { IMAGING_CONNECTION_KIND, parseResourceRef, readyCondition, toResource } from "./resources";

export const DECLARATION_FORMATS = ["json", "ini", "jdbc", "env"] as const;
export type DeclarationFormat = (typeof DECLARATION_FORMATS)[number];

/** The fields each format needs, checked before formatting so a half-written status gets one clear message. */
const NEEDS: Readonly<Record<DeclarationFormat, readonly (keyof ConnectionDeclaration)[]>> = {
  json: ["host", "port"],
  jdbc: ["host", "port", "database", "sslMode", "certificatePath", "keyPath", "rootCertificatePath"],
  ini: ["host", "port", "sslMode", "certificatePath", "keyPath", "rootCertificatePath"],
  env: ["host", "port", "database", "user", "sslMode", "certificatePath", "keyPemPath", "rootCertificatePath"],
};

const CAST_SSL_MODES: readonly string[] = ["verify-full", "verify-ca"] satisfies CastSslMode[];

/**
 * The declaration in `format`. `what` names the connection in messages ("imagingconnection cast/analysis").
 * Throws PluginError when the status does not (yet) hold what the format needs.
 */
export function formatDeclaration(declaration: ConnectionDeclaration | undefined, format: DeclarationFormat, what: string): string {
  const missing = NEEDS[format].filter((k) => declaration?.[k] === undefined || declaration[k] === "");
  if (!declaration || missing.length > 0) {
    throw new PluginError(`${what} has no ${declaration ? `${missing.join(", ")} in its` : ""} status.declaration yet`.replace(/\s+/g, " "));
  }
  const d = declaration as Required<ConnectionDeclaration>;
  switch (format) {
    case "json":
      return renderDocument(declaration, "json");
    case "jdbc":
      // The operator writes the URL; a status from before it did gets the same URL from the same function.
      return `${declaration.jdbcUrl ?? jdbcUrl({ host: d.host, port: d.port, database: d.database, sslMode: d.sslMode, certificatePath: d.certificatePath, keyPath: d.keyPath, rootCertificatePath: d.rootCertificatePath })}\n`;
    case "ini": {
      if (!CAST_SSL_MODES.includes(d.sslMode)) throw new PluginError(`${what}: sslMode ${d.sslMode} has no CAST .ini form (verify-full or verify-ca)`);
      const ini = renderCastIni([{ host: d.host, port: d.port, sslMode: d.sslMode as CastSslMode, certificatePath: d.certificatePath, keyPath: d.keyPath, rootCertificatePath: d.rootCertificatePath }]);
      if (!ini.ok) throw new PluginError(`${what}: ${ini.message}`);
      return ini.value;
    }
    case "env":
      return libpqEnvironment(d);
  }
}

/** libpq's variables for psql and other libpq clients; its key is the PEM one (the DER client.pk8 is pgjdbc's). */
function libpqEnvironment(d: Required<ConnectionDeclaration>): string {
  const vars: [string, string][] = [
    ["PGHOST", d.host],
    ["PGPORT", String(d.port)],
    ["PGDATABASE", d.database],
    ["PGUSER", d.user],
    ["PGSSLMODE", d.sslMode],
    ["PGSSLCERT", d.certificatePath],
    ["PGSSLKEY", d.keyPemPath],
    ["PGSSLROOTCERT", d.rootCertificatePath],
  ];
  return vars.map(([k, v]) => `${k}=${shellQuote(v)}\n`).join("");
}

/** As is when the shell would read it unchanged, else single-quoted: the lines can be sourced or used as an env file. */
export function shellQuote(value: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

// ------------------------------------------------------------------------------------------------------ I/O

const HELP = `kubectl mtls declaration: what to enter in CAST Imaging for an ImagingConnection (from its status.declaration).

Usage:
  kubectl mtls declaration [-n NS] imc/NAME [--format json|ini|jdbc|env]

Formats:
  json    every field: host, port, database, user, sslmode, the in-container paths, the JDBC URL (default)
  ini     the CAST connection .ini section ([host:port], ssl, sslmode, sslcert, sslkey, sslrootcert)
  jdbc    the JDBC URL (pgjdbc, with the PKCS#8 DER key client.pk8)
  env     libpq's variables (PGHOST, PGPORT, PGDATABASE, PGUSER, PGSSLMODE, PGSSLCERT, PGSSLKEY, PGSSLROOTCERT)

The paths are where the workloads see the files, not on this machine. A connection that is not Ready gets a note
on stderr; its declaration may still be the one to use once it is.

Exit codes: 0 printed, 2 the connection or its declaration is missing (or the command failed).
`;

export const declarationVerb: Verb = {
  name: "declaration",
  summary: "what to declare in CAST Imaging for a connection: json, CAST .ini, JDBC URL or libpq env",
  help: HELP,
  options: { format: { type: "string" } },
  completes: { arguments: { kinds: ["imc"] }, flags: { format: { words: DECLARATION_FORMATS } } },
  run,
};

async function run(invocation: Invocation, ctx: VerbContext): Promise<ExitCode> {
  const format = choiceFlag(invocation, "format", DECLARATION_FORMATS, "json", "declaration");
  const [ref, ...extra] = invocation.positionals;
  if (ref === undefined || extra.length > 0) throw new PluginError("declaration takes one connection: kubectl mtls declaration imc/NAME [-n NS]");
  const { kind, name } = parseResourceRef(ref);
  if (kind !== undefined && kind !== IMAGING_CONNECTION.kind) throw new PluginError(`a declaration is an ImagingConnection's: write imc/NAME (kubectl mtls status -n NS lists them)`);
  const cluster = await ctx.cluster();
  const ns = cluster.namespace;
  const what = `imagingconnection ${ns}/${name}`;
  const object = await cluster.get(IMAGING_CONNECTION_KIND.type, ns, name);
  if (!object) throw new PluginError(`${what} not found: list them with kubectl mtls status -n ${ns}`);
  const resource = toResource(IMAGING_CONNECTION.kind, object);
  const status = resource.kind === IMAGING_CONNECTION.kind ? resource.status : undefined;
  const ready = readyCondition(status);
  const hint = ready ? `Ready ${ready.status} ${ready.reason}` : "no Ready condition yet";
  let text: string;
  try {
    text = formatDeclaration(status?.declaration, format, what);
  } catch (err) {
    if (err instanceof PluginError) throw new PluginError(`${err.message} (${hint}): see kubectl mtls status imc/${name} -n ${ns}`);
    throw err;
  }
  if (ready?.status !== "True") ctx.out.stderr(`note: ${what} is not Ready (${hint}): kubectl mtls status imc/${name} -n ${ns}\n`);
  ctx.out.stdout(text);
  return EXIT.ok;
}
