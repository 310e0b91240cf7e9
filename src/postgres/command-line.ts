/**
 * The server's settings on its command line, for servers whose configuration files belong to someone else (a
 * chart). PostgreSQL ranks `-c` settings above postgresql.conf and ALTER SYSTEM, and of two `-c` for one name the
 * last wins; Kubernetes runs `command ++ args`. So the operator owns the container's `command` (which charts leave
 * to the image) and makes it a shell that runs the image's entrypoint with the container's own arguments FIRST and
 * the operator's settings LAST:
 *
 *   command: [/bin/sh, -c, 'exec docker-entrypoint.sh "$@" -c ssl=on -c ssl_cert_file=… -c hba_file=…', <marker>]
 *   args:    whatever the chart sets ($1…), untouched and still the chart's
 *
 * Pure.
 */
import { tlsSettings, type PostgresqlConfInput } from "./postgresql-conf";

/** $0 of the shell: marks the command as the operator's (and names it in `ps`). */
export const COMMAND_MARKER = "imaging-db-mtls-operator";

/** The settings that go on the command line: TLS with the operator's files, and its pg_hba.conf. */
export function commandLineSettings(input: PostgresqlConfInput & { hbaFile: string }): [string, string][] {
  return [...tlsSettings(input), ["hba_file", input.hbaFile]];
}

/** A word the shell reads back as exactly `s`. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./=:@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function wrapperCommand(entrypoint: string, settings: readonly [string, string][]): string[] {
  const words = settings.flatMap(([name, value]) => ["-c", shellQuote(`${name}=${value}`)]);
  return ["/bin/sh", "-c", `exec ${shellQuote(entrypoint)} "$@" ${words.join(" ")}`, COMMAND_MARKER];
}

/** The container's command is one the operator wrote (any version of its settings). */
export function isWrapperCommand(command: readonly string[] | undefined): boolean {
  return command?.length === 4 && command[0] === "/bin/sh" && command[1] === "-c" && command[3] === COMMAND_MARKER;
}
