/**
 * Password rules (clientCertificate none) end to end: the clients CAST Imaging's chart gives no certificate
 * (Keycloak's JDBC URL without SSL parameters, psql init containers with libpq's defaults) log in with a password,
 * over TLS only, to the databases they are named for; plain TCP stays refused; status and events say so.
 * Real API server, real PostgreSQL 15, real pgjdbc (Debian's) and psql.
 */
import { expect } from "chai";
import { randomBytes } from "node:crypto";
import type { SecureDatabase } from "../../src/api/types";
import { condition, getJson, kubectlOk, waitForCondition } from "../support/kubectl-json";
import { startOperatorWithDatabase, type OperatorWithDatabase } from "../support/operator-fixture";
import { jdbcConnect, psql, type PostgresServer, type PsqlArgs } from "../support/postgres";
import { waitFor } from "../support/process";

interface EventView {
  type: string;
  reason: string;
  message: string;
}

const SSL_OF_SESSION = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
const CERTIFICATE_RULE = { users: ["postgres", "app"], databases: ["all"] };
const PASSWORD_RULE = { clientCertificate: "none", users: ["keycloak_user"], databases: ["keycloak_db"] };

describe("password rules over TLS (real API server, real PostgreSQL, pgjdbc and psql)", function () {
  this.timeout(180_000);
  let env: OperatorWithDatabase;
  let ns: string;
  let pg: PostgresServer;
  // Made up at test time, like the keys: nothing secret is committed.
  const password = randomBytes(12).toString("hex");

  const events = async (reason: string): Promise<EventView[]> =>
    (await getJson<{ items: EventView[] }>(["get", "events", "-n", ns, "--field-selector", `involvedObject.name=db,reason=${reason}`])).items;
  const sdb = () => getJson<SecureDatabase>(["get", "sdb", "db", "-n", ns]);
  /** psql as Keycloak's role with libpq's defaults (no sslmode: prefer, no certificate) unless `o` says otherwise. */
  const keycloak = (o: Partial<Pick<PsqlArgs, "dbname" | "sslmode" | "password" | "command">> = {}) =>
    psql({ host: pg.host, port: pg.port, user: "keycloak_user", password, dbname: "keycloak_db", command: SSL_OF_SESSION, ...o });
  const jdbcUrl = (database: string, params = "") => `jdbc:postgresql://${pg.host}:${pg.port}/${database}${params}`;
  /** The rules applied and the operator done with this generation: Ready again. */
  const setRules = async (rules: object[]): Promise<SecureDatabase> => {
    await kubectlOk(["patch", "sdb", "db", "-n", ns, "--type=merge", "-p", JSON.stringify({ spec: { postgres: { hba: { rules } } } })]);
    let last: SecureDatabase | undefined;
    await waitFor(
      "the operator to apply the new rules (Ready for the new generation)",
      async () => {
        last = await sdb();
        return last.status?.observedGeneration === last.metadata.generation && condition(last, "Ready")?.status === "True";
      },
      90_000,
      250,
    );
    return last!;
  };

  before(async () => {
    env = await startOperatorWithDatabase({ name: "pwrules", databases: [{ roles: ["app"] }] });
    ({ ns, pg } = env);
    // Keycloak's role and database, as CAST's chart has them: a password, no certificate.
    await pg.sql(`CREATE ROLE keycloak_user LOGIN PASSWORD '${password}'`);
    await pg.sql("CREATE DATABASE keycloak_db OWNER keycloak_user");
    await pg.sql("CREATE DATABASE other_db");
    const yaml = env.db.secureDatabaseYaml();
    const rules = JSON.stringify([CERTIFICATE_RULE, PASSWORD_RULE]);
    const withRules = yaml.replace(/(certificateDirectory: \S+) \}/, `$1, hba: { rules: ${rules} } }`);
    expect(withRules, "the fixture's SecureDatabase has a postgres line to add the rules to").to.not.equal(yaml);
    await kubectlOk(["apply", "-f", "-"], withRules);
  });

  after(async () => {
    await env?.stop();
  });

  it("is Ready with the password rule written after the certificate rule, listed in status, said in the conditions, with a PasswordOverTLS Warning", async () => {
    const ready = await waitForCondition<SecureDatabase>("sdb", ns, "db", "Ready", (c) => c.status === "True", 90_000);
    expect(ready.status?.passwordAccess).to.deep.equal([
      { rule: 1, users: ["keycloak_user"], databases: ["keycloak_db"], addresses: ["0.0.0.0/0", "::/0"] },
    ]);
    expect(condition(ready, "Ready")?.message).to.contain("client certificates except for 1 password rule (status.passwordAccess)");
    expect(condition(ready, "ConfigApplied")?.message).to.contain(
      "with a client certificate except for 1 password rule (clientCertificate none, status.passwordAccess), whose roles log in with " +
        "their password: spec.postgres.hba.rules[1]: user keycloak_user on database keycloak_db from 0.0.0.0/0, ::/0",
    );
    const warnings = await events("PasswordOverTLS");
    expect(warnings.map((e) => e.type)).to.deep.equal(["Warning"]);
    expect(warnings[0]!.message).to.contain("user keycloak_user on database keycloak_db from 0.0.0.0/0, ::/0");
    expect(await events("PasswordRuleShadowed")).to.deep.equal([]);

    const cm = await getJson<{ data: Record<string, string> }>(["get", "configmap", "pg-config", "-n", ns]);
    const block = cm.data["pg_hba.conf"]!.split("\n");
    const certLine = block.indexOf("hostssl all postgres,app 0.0.0.0/0 cert clientcert=verify-full");
    const passwordLine = block.indexOf("hostssl keycloak_db keycloak_user 0.0.0.0/0 scram-sha-256");
    expect(certLine).to.be.greaterThan(0);
    expect(passwordLine).to.be.greaterThan(certLine);
    expect(block).to.include("hostnossl all,replication all 0.0.0.0/0 reject");
  });

  it("lets pgjdbc in with a URL without any SSL parameter (sslmode=prefer) and the password, over TLS", async () => {
    const jdbc = await jdbcConnect({ url: jdbcUrl("keycloak_db"), user: "keycloak_user", password, query: SSL_OF_SESSION });
    expect(jdbc.stderr).to.equal("");
    expect(jdbc.code).to.equal(0);
    expect(jdbc.stdout.trim()).to.equal("t");
  });

  it("lets psql in with libpq's defaults (no sslmode, PGPASSWORD), over TLS, by password only", async () => {
    const ok = await keycloak();
    expect(ok.stderr).to.equal("");
    expect(ok.stdout.trim()).to.equal("t");
    const who = await keycloak({ command: "SELECT current_user || ' ' || coalesce(client_dn, '-') FROM pg_stat_ssl WHERE pid = pg_backend_pid()" });
    expect(who.stdout.trim()).to.equal("keycloak_user -");
    const wrong = await keycloak({ password: "not-the-password" });
    expect(wrong.code).to.not.equal(0);
    expect(wrong.stderr).to.contain('password authentication failed for user "keycloak_user"');
  });

  it("refuses the same clients without TLS (sslmode=disable): pg_hba.conf rejects hostnossl", async () => {
    const plain = await keycloak({ sslmode: "disable" });
    expect(plain.code).to.not.equal(0);
    expect(plain.stderr).to.contain('pg_hba.conf rejects connection for host "127.0.0.1", user "keycloak_user", database "keycloak_db", no encryption');
    const jdbc = await jdbcConnect({ url: jdbcUrl("keycloak_db", "?sslmode=disable"), user: "keycloak_user", password, query: SSL_OF_SESSION });
    expect(jdbc.code).to.not.equal(0);
    expect(jdbc.stderr).to.contain("pg_hba.conf rejects connection").and.to.contain("no encryption");
  });

  it("refuses the user on a database it is not named for, and a certificate user without its certificate", async () => {
    for (const dbname of ["other_db", "postgres"]) {
      const other = await keycloak({ dbname });
      expect(other.code, dbname).to.not.equal(0);
      expect(other.stderr).to.contain(`pg_hba.conf rejects connection for host "127.0.0.1", user "keycloak_user", database "${dbname}", SSL encryption`);
    }
    const jdbc = await jdbcConnect({ url: jdbcUrl("other_db"), user: "keycloak_user", password, query: SSL_OF_SESSION });
    expect(jdbc.code).to.not.equal(0);
    expect(jdbc.stderr).to.contain("pg_hba.conf rejects connection");
    const app = await psql({ host: pg.host, port: pg.port, user: "app", password, sslmode: "require", command: SSL_OF_SESSION });
    expect(app.code).to.not.equal(0);
    expect(app.stderr).to.contain("connection requires a valid client certificate");
  });

  it("records no second PasswordOverTLS when it reconciles an unchanged object", async () => {
    await env.operator.secureDatabaseQueue.idle();
    await kubectlOk(["label", "sdb", "db", "-n", ns, "touched=yes"]);
    await new Promise((r) => setTimeout(r, 1500));
    await env.operator.secureDatabaseQueue.idle();
    expect((await events("PasswordOverTLS")).length).to.equal(1);
  });

  it("a certificate rule for keycloak_user after the password rule: PasswordRuleShadowed and the condition say it never applies", async () => {
    const shadowing = { users: ["keycloak_user"], databases: ["keycloak_db"] };
    const after = await setRules([CERTIFICATE_RULE, PASSWORD_RULE, shadowing]);
    const expected =
      "spec.postgres.hba.rules[2] (certificate) never applies for user keycloak_user on database keycloak_db from 0.0.0.0/0, user " +
      "keycloak_user on database keycloak_db from ::/0: spec.postgres.hba.rules[1] (password) before it matches first, so a client " +
      "with a certificate is asked for the password";
    expect(condition(after, "ConfigApplied")?.message).to.contain(`. Overlapping rules: ${expected}`);
    const shadowed = await events("PasswordRuleShadowed");
    expect(shadowed.map((e) => [e.type, e.message])).to.deep.equal([["Warning", expected]]);
    // The password records did not change: no second PasswordOverTLS.
    expect((await events("PasswordOverTLS")).length).to.equal(1);
    // And so it is: Keycloak still gets in by password.
    expect((await keycloak()).stdout.trim()).to.equal("t");
  });

  it("without the password rule: status.passwordAccess gone, a Normal PasswordOverTLS, and the password no longer lets anyone in", async () => {
    const after = await setRules([CERTIFICATE_RULE]);
    expect(after.status?.passwordAccess).to.equal(undefined);
    expect(condition(after, "Ready")?.message).to.equal("the server requires client certificates and serves the current certificate");
    const normal = (await events("PasswordOverTLS")).filter((e) => e.type === "Normal");
    expect(normal.map((e) => e.message)).to.deep.equal([
      "pg_hba.conf no longer admits any role by password: every TCP client needs TLS and a client certificate",
    ]);
    let refused = "";
    await waitFor(
      "the server to load pg_hba.conf without the password rule",
      async () => {
        const r = await keycloak();
        refused = r.stderr;
        return r.code !== 0;
      },
      30_000,
      250,
    );
    expect(refused).to.contain('pg_hba.conf rejects connection for host "127.0.0.1", user "keycloak_user", database "keycloak_db", SSL encryption');
  });
});
