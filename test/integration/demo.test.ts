/**
 * The README's first command, `npm run demo`, run as a user runs it (non-interactive): it must end 0 with the
 * connection Ready, the release's components wired, JDBC and psql logged in over verify-full, plain TCP refused, and
 * the CA's key outside the database's namespace. It starts its own control plane and PostgreSQL.
 */
import { expect } from "chai";
import { resolve } from "node:path";
import { run } from "../support/process";

const REPO = resolve(__dirname, "..", "..");

describe("npm run demo (the README's main job)", function () {
  this.timeout(600_000);

  it("runs end to end and exits 0: connection Ready, JDBC and psql in over verify-full, no TLS refused, the CA key in the operator's namespace", async () => {
    const r = await run("npm", ["run", "demo"], { cwd: REPO, env: { ...process.env, DEMO_EXIT: "1" }, timeoutMs: 540_000 });
    const said = r.stdout.split("\n").filter((l) => !l.startsWith("{")).join("\n");
    expect(r.code, `${said}\n${r.stderr}`).to.equal(0);
    expect(said).to.match(/Ready after [\d.]+ s: Secret ssl-certs filled, each wired component restarted once, login verified/);
    expect(said).to.match(/the CA's private key is in Secret imaging-db-mtls-operator\/cast-imaging\.imaging-analysis-db-ca \(the operator's namespace\), not in cast-imaging/);
    expect(said).to.match(/JDBC jdbc:postgresql:\/\/localhost:\d+\/postgres\?ssl=true&sslmode=verify-full.*\n\s+connected as operator over TLSv1\.[23]/);
    expect(said).to.match(/psql: connected as operator over TLSv1\.[23], client certificate serial \d+/);
    expect(said).to.match(/without TLS: .*pg_hba\.conf rejects connection .* no encryption/);
  });
});
