/**
 * The setup of the end-to-end tests in one place: a namespace of their own, the operator running in this process
 * (as its ServiceAccount user) and, for most, a real PostgreSQL server as a cluster would have it (its ConfigMap,
 * its StatefulSet and the "kubelet" that lays both down). One stop() takes it all down again, newest first.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AccessGrant } from "../../src/api/secure-database";
import type { Operator } from "../../src/operator";
import type { ControlPlane } from "./controlplane";
import { databaseInCluster, type DatabaseInCluster } from "./database-fixture";
import { controlPlane } from "./hooks";
import { kubectlOk, waitForCondition } from "./kubectl-json";
import { startOperator, type OperatorOptions } from "./operator";
import { startPostgres, type PostgresServer } from "./postgres";
import { startVolumeSyncer, type VolumeSyncer } from "./volume-syncer";

export interface OperatorFixtureOptions {
  /** Prefix of the namespace created for the test. */
  name: string;
  /** Work in this existing namespace instead of creating one. */
  namespace?: string;
  /** The namespaces the operator watches (default: the fixture's own); "all" for every namespace. */
  watch?: readonly string[] | "all";
  operator?: Omit<OperatorOptions, "now">;
}

export interface OperatorInNamespace {
  readonly cp: ControlPlane;
  readonly ns: string;
  /** The running operator (a new one after restartOperator). */
  readonly operator: Operator;
  stopOperator(): Promise<void>;
  /** Starts the operator again after stopOperator, with the same options. */
  startOperator(): Promise<void>;
  restartOperator(): Promise<void>;
  stop(): Promise<void>;
}

export interface DatabaseOptions {
  /** PostgreSQL roles (LOGIN) created before anything is secured. */
  roles?: readonly string[];
  configMapName?: string;
  workloadName?: string;
  serverSecretName?: string;
  /** How late the "kubelet" lays changes down (default: at once). */
  syncDelayMs?: number;
  /** The SecureDatabases its ConfigMap and StatefulSet opt in to (default "db"; see databaseInCluster). */
  secureDatabases?: string;
}

/** A real PostgreSQL server put into the cluster (see databaseInCluster), with what it takes to remove it again. */
export interface StartedDatabase extends DatabaseInCluster {
  readonly pg: PostgresServer;
  stop(): Promise<void>;
}

export interface OperatorWithDatabaseOptions extends OperatorFixtureOptions {
  /** One PostgreSQL server each (default: one, with ConfigMap pg-config, StatefulSet css, Secret db-server-tls). */
  databases?: readonly DatabaseOptions[];
  /** Client Secrets a CAST pod's "kubelet" lays down, each into a folder of its own (clientDirs). */
  clientSecrets?: readonly string[];
  /** What must exist before the operator starts (workloads, a ledger's informer, a check of the unsecured server). */
  beforeOperator?: (env: DatabaseEnvironment) => Promise<void>;
  /**
   * Secures the first database before the tests: its SecureDatabase `db` granting `access` (default: nothing), with
   * `extraSpec` lines (2-space indented), applied, then `patch` merged in when given, then Ready.
   */
  secureDatabase?: { access?: readonly AccessGrant[]; extraSpec?: string; patch?: object };
}

export interface DatabaseEnvironment {
  readonly cp: ControlPlane;
  readonly ns: string;
  readonly databases: readonly StartedDatabase[];
  /** The first database, and its server. */
  readonly db: StartedDatabase;
  readonly pg: PostgresServer;
  /** Client Secret name → the folder its keys are laid down in. */
  readonly clientDirs: Readonly<Record<string, string>>;
  readonly clientSyncer: VolumeSyncer;
}

export type OperatorWithDatabase = OperatorInNamespace & DatabaseEnvironment;

/** What was started so far, stopped newest first; a setup that fails half-way stops what it had started. */
class Teardown {
  private readonly steps: (() => Promise<void> | void)[] = [];

  add(step: () => Promise<void> | void): void {
    this.steps.push(step);
  }

  async run(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) await step();
  }

  async guard<T>(setup: () => Promise<T>): Promise<T> {
    try {
      return await setup();
    } catch (err) {
      await this.run();
      throw err;
    }
  }
}

/**
 * A real PostgreSQL server with the given roles, put into `namespace` as a cluster would have it. Stopping it waits
 * for a late "kubelet" to lay down what it saw, before the data directory goes.
 */
export async function startDatabase(
  cp: ControlPlane,
  namespace: string,
  name: string,
  opts: DatabaseOptions = {},
): Promise<StartedDatabase> {
  const pg = await startPostgres({ name });
  try {
    for (const role of opts.roles ?? []) await pg.sql(`CREATE ROLE ${role} LOGIN`);
    const db = await databaseInCluster(cp, pg, {
      namespace,
      configMapName: opts.configMapName ?? "pg-config",
      workloadName: opts.workloadName ?? "css",
      serverSecretName: opts.serverSecretName ?? "db-server-tls",
      ...(opts.syncDelayMs ? { syncDelayMs: opts.syncDelayMs } : {}),
      ...(opts.secureDatabases !== undefined ? { secureDatabases: opts.secureDatabases } : {}),
    });
    const stop = async () => {
      db.syncer.stop();
      if (opts.syncDelayMs) await new Promise((r) => setTimeout(r, opts.syncDelayMs! + 500));
      await pg.stop();
    };
    return { ...db, pg, stop };
  } catch (err) {
    await pg.stop();
    throw err;
  }
}

/** A namespace of its own and the operator watching it. */
export async function startOperatorInNamespace(opts: OperatorFixtureOptions): Promise<OperatorInNamespace> {
  const cp = controlPlane();
  const ns = opts.namespace ?? (await cp.createNamespace(opts.name));
  const teardown = new Teardown();
  return teardown.guard(() => withOperator(cp, ns, opts, teardown, {}));
}

/** A namespace of its own, PostgreSQL in it, client folders, then the operator watching it. */
export async function startOperatorWithDatabase(opts: OperatorWithDatabaseOptions): Promise<OperatorWithDatabase> {
  if (opts.databases?.length === 0) throw new Error("no database: startOperatorInNamespace runs the operator alone");
  const cp = controlPlane();
  const ns = opts.namespace ?? (await cp.createNamespace(opts.name));
  const teardown = new Teardown();
  return teardown.guard(async () => {
    const databases: StartedDatabase[] = [];
    for (const [i, d] of (opts.databases ?? [{}]).entries()) {
      const db = await startDatabase(cp, ns, i === 0 ? opts.name : `${opts.name}-${i}`, d);
      teardown.add(() => db.stop());
      databases.push(db);
    }
    const clientDirs: Record<string, string> = {};
    for (const secret of opts.clientSecrets ?? []) {
      const dir = await mkdtemp(join(tmpdir(), `${opts.name}-${secret}-`));
      teardown.add(() => rm(dir, { recursive: true, force: true }));
      clientDirs[secret] = dir;
    }
    const clientSyncer = await startVolumeSyncer({
      kubeConfig: cp.kubeConfig,
      namespace: ns,
      volumes: Object.entries(clientDirs).map(([name, dir]) => ({ kind: "Secret" as const, name, dir, ownedByServer: false })),
    });
    teardown.add(() => clientSyncer.stop());
    const db = databases[0]!;
    const environment: DatabaseEnvironment = { cp, ns, databases, db, pg: db.pg, clientDirs, clientSyncer };
    await opts.beforeOperator?.(environment);
    const env = await withOperator(cp, ns, opts, teardown, environment);
    const secure = opts.secureDatabase;
    if (secure) {
      await kubectlOk(["apply", "-f", "-"], `${db.secureDatabaseYaml("db", secure.access)}${secure.extraSpec ?? ""}`);
      if (secure.patch) await kubectlOk(["patch", "sdb", "db", "-n", ns, "--type=merge", "-p", JSON.stringify(secure.patch)]);
      await waitForCondition("sdb", ns, "db", "Ready", (c) => c.status === "True", 90_000);
    }
    return env;
  });
}

/** Starts the operator on `ns`: `environment` with the operator's handle, whose stop() runs `teardown` (the operator first). */
async function withOperator<T extends object>(
  cp: ControlPlane,
  ns: string,
  opts: OperatorFixtureOptions,
  teardown: Teardown,
  environment: T,
): Promise<T & OperatorInNamespace> {
  const watched = opts.watch === "all" ? undefined : (opts.watch ?? ns);
  let operator: Operator | undefined = await startOperator(cp, watched, opts.operator);
  teardown.add(() => operator?.stop());
  const handle: T & OperatorInNamespace = {
    ...environment,
    cp,
    ns,
    get operator(): Operator {
      if (!operator) throw new Error("the operator is stopped (stopOperator) and was not started again");
      return operator;
    },
    async stopOperator() {
      await operator?.stop();
      operator = undefined;
    },
    async startOperator() {
      if (operator) throw new Error("the operator is already running");
      operator = await startOperator(cp, watched, opts.operator);
    },
    async restartOperator() {
      await handle.stopOperator();
      await handle.startOperator();
    },
    stop: () => teardown.run(),
  };
  return handle;
}
