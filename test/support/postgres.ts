import { chmod, chown, mkdtemp, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { freePort, run, runOk, waitFor, type RunResult } from "./process";

/** Debian's PostgreSQL 15 server binaries; PG_BIN points elsewhere. */
export const PG_BIN = process.env.PG_BIN ?? "/usr/lib/postgresql/15/bin";
export const JDBC_JAR = process.env.PG_JDBC_JAR ?? "/usr/share/java/postgresql.jar";

export interface PostgresServer {
  readonly host: string;
  readonly port: number;
  /** Holds postgresql.conf and pg_hba.conf; also the unix socket directory the fixture uses. */
  readonly dataDir: string;
  readonly superuser: string;
  readonly logFile: string;
  /** Writes a file under dataDir owned by the server's user; returns its absolute path. */
  writeFile(relPath: string, content: string | Buffer, mode?: number): Promise<string>;
  /** Replaces whole configuration files. */
  setConfig(files: { postgresqlConf?: string; pgHba?: string }): Promise<void>;
  reload(): Promise<void>;
  restart(): Promise<void>;
  /** Runs SQL as the superuser over the unix socket (always trusted), returns psql -At output. */
  sql(query: string): Promise<string>;
  isRunning(): Promise<boolean>;
  /** Stops the server, keeping its data: a database that is down. */
  halt(): Promise<void>;
  /** Starts a halted server again. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

interface ServerUser {
  uid?: number;
  gid?: number;
}

/** PostgreSQL refuses to run as root: as root we run it as Debian's `postgres` user. */
async function serverUser(): Promise<ServerUser> {
  if (process.getuid?.() !== 0) return {};
  const uid = Number((await runOk("id", ["-u", "postgres"])).trim());
  const gid = Number((await runOk("id", ["-g", "postgres"])).trim());
  return { uid, gid };
}

function requireBinaries(): void {
  for (const bin of ["initdb", "pg_ctl", "postgres"]) {
    if (!existsSync(join(PG_BIN, bin))) {
      throw new Error(`${join(PG_BIN, bin)} is missing: install Debian's postgresql-15 (apt-get install -y postgresql-15) or set PG_BIN`);
    }
  }
}

export async function startPostgres(opts: { name?: string; listenAddresses?: string } = {}): Promise<PostgresServer> {
  requireBinaries();
  const user = await serverUser();
  const root = await mkdtemp(join(tmpdir(), `pg-${opts.name ?? "fixture"}-`));
  const dataDir = join(root, "data");
  const logFile = join(root, "server.log");
  if (user.uid !== undefined) await chown(root, user.uid, user.gid ?? user.uid);
  const port = await freePort();
  const host = "127.0.0.1";
  const superuser = "postgres";
  const asServer = { uid: user.uid, gid: user.gid, env: { ...process.env, LC_ALL: "C" } };

  await runOk(join(PG_BIN, "initdb"), ["-D", dataDir, "-U", superuser, "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"], asServer);
  // Fixture essentials go on the command line so tests can replace the config files wholesale.
  const serverOptions = [
    `-p ${port}`,
    `-c listen_addresses='${opts.listenAddresses ?? host}'`,
    `-c unix_socket_directories='${dataDir}'`,
    "-c fsync=off",
    "-c full_page_writes=off",
  ].join(" ");
  const pgCtl = (args: string[]): Promise<string> =>
    runOk(join(PG_BIN, "pg_ctl"), ["-D", dataDir, "-l", logFile, "-t", "60", ...args], { ...asServer, timeoutMs: 90_000 });

  const sql = async (query: string): Promise<string> =>
    runOk("psql", ["-X", "-v", "ON_ERROR_STOP=1", "-h", dataDir, "-p", String(port), "-U", superuser, "-d", "postgres", "-Atc", query], {
      env: cleanPgEnv(),
    });

  const server: PostgresServer = {
    host,
    port,
    dataDir,
    superuser,
    logFile,
    async writeFile(relPath, content, mode = 0o600) {
      const path = join(dataDir, relPath);
      await runOk("mkdir", ["-p", dirname(path)]);
      await writeFile(path, content, { mode });
      await chmod(path, mode);
      if (user.uid !== undefined) {
        await chown(dirname(path), user.uid, user.gid ?? user.uid);
        await chown(path, user.uid, user.gid ?? user.uid);
      }
      return path;
    },
    async setConfig(files) {
      if (files.postgresqlConf !== undefined) await server.writeFile("postgresql.conf", files.postgresqlConf, 0o600);
      if (files.pgHba !== undefined) await server.writeFile("pg_hba.conf", files.pgHba, 0o600);
    },
    async reload() {
      await pgCtl(["reload"]);
    },
    async restart() {
      await pgCtl(["-w", "-o", serverOptions, "restart"]);
    },
    sql,
    async isRunning() {
      return (await run(join(PG_BIN, "pg_ctl"), ["-D", dataDir, "status"], asServer)).code === 0;
    },
    async halt() {
      await pgCtl(["-m", "fast", "-w", "stop"]);
    },
    async start() {
      await pgCtl(["-w", "-o", serverOptions, "start"]);
    },
    async stop() {
      await run(join(PG_BIN, "pg_ctl"), ["-D", dataDir, "-m", "immediate", "-w", "stop"], asServer);
      await rm(root, { recursive: true, force: true });
    },
  };
  try {
    await pgCtl(["-w", "-o", serverOptions, "start"]);
    await waitFor("PostgreSQL to accept connections", async () => (await sql("SELECT 1")).trim() === "1", 30_000);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

/** The environment without PG* variables, so a developer's own settings cannot leak into a test's connection. */
export function cleanPgEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("PG")) env[k] = v;
  return { ...env, PGCONNECT_TIMEOUT: "10", ...extra };
}

export interface PsqlArgs {
  host: string;
  port: number;
  user: string;
  /** Given to libpq as PGPASSWORD. */
  password?: string;
  dbname?: string;
  sslmode?: string;
  sslrootcert?: string;
  sslcert?: string;
  sslkey?: string;
  sslcrl?: string;
  command: string;
}

/** Connects with the real libpq client; a refusal is a result (code != 0, reason in stderr), not an exception. */
export function psql(a: PsqlArgs): Promise<RunResult> {
  const params: Record<string, string | undefined> = {
    host: a.host,
    port: String(a.port),
    user: a.user,
    dbname: a.dbname ?? "postgres",
    sslmode: a.sslmode,
    sslrootcert: a.sslrootcert,
    // An explicit path that does not exist keeps libpq from picking up ~/.postgresql/postgresql.crt.
    sslcert: a.sslcert ?? "/nonexistent/no-client-certificate.crt",
    sslkey: a.sslkey ?? "/nonexistent/no-client-certificate.key",
    sslcrl: a.sslcrl,
  };
  const conninfo = Object.entries(params)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}='${String(v).replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`)
    .join(" ");
  const env = cleanPgEnv(a.password === undefined ? {} : { PGPASSWORD: a.password });
  return run("psql", ["-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-c", a.command], { env, timeoutMs: 30_000 });
}

export interface JdbcArgs {
  url: string;
  user: string;
  /** Each ssl* left out is not set at all: with none, the driver's defaults (sslmode=prefer) apply. */
  sslcert?: string;
  sslkey?: string;
  sslrootcert?: string;
  sslmode?: string;
  /** The role's password (handed over in the environment, not on the command line). */
  password?: string;
  query: string;
}

/** Connects with Debian's PostgreSQL JDBC driver, the driver CAST's Java components use. */
export function jdbcConnect(a: JdbcArgs): Promise<RunResult> {
  if (!existsSync(JDBC_JAR)) {
    throw new Error(`${JDBC_JAR} is missing: install Debian's libpostgresql-jdbc-java or set PG_JDBC_JAR`);
  }
  const program = join(__dirname, "java", "JdbcCheck.java");
  const ssl = [a.sslcert, a.sslkey, a.sslrootcert, a.sslmode].map((v) => v ?? "");
  return run("java", ["-cp", JDBC_JAR, program, a.url, a.user, ...ssl, a.query], {
    env: cleanPgEnv(a.password === undefined ? {} : { JDBC_CHECK_PASSWORD: a.password }),
    timeoutMs: 60_000,
  });
}
