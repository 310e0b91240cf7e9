import { expect } from "chai";
import type { ConnectionDeclaration, ImagingConnectionStatus } from "../../../src/api/types";
import { renderCastIni } from "../../../src/imaging/cast-ini";
import { jdbcUrl } from "../../../src/imaging/declaration";
import { PluginError } from "../../../src/plugin/errors";
import { formatDeclaration, shellQuote } from "../../../src/plugin/declaration";
import { connection, pki } from "./fixtures";

describe("kubectl mtls declaration (pure)", () => {
  let declaration: ConnectionDeclaration;
  before(async () => {
    declaration = (connection(await pki()).status as ImagingConnectionStatus).declaration!;
  });

  it("json: status.declaration as it is", () => {
    expect(JSON.parse(formatDeclaration(declaration, "json", "imc"))).to.deep.equal(declaration);
  });

  it("jdbc: the URL the operator wrote, one line", () => {
    const out = formatDeclaration(declaration, "jdbc", "imc");
    expect(out).to.equal(`${declaration.jdbcUrl}\n`);
    expect(out).to.equal(
      "jdbc:postgresql://db.cast.svc:5432/imaging?ssl=true&sslmode=verify-full&sslcert=/etc/cast-imaging/mtls/analysis/client.crt" +
        "&sslkey=/etc/cast-imaging/mtls/analysis/client.pk8&sslrootcert=/etc/cast-imaging/mtls/analysis/root.crt\n",
    );
  });

  it("jdbc: a status without the URL gets it from the same function (src/imaging/declaration.ts)", () => {
    const older = { ...declaration };
    delete older.jdbcUrl;
    const d = declaration as Required<ConnectionDeclaration>;
    expect(formatDeclaration(older, "jdbc", "imc")).to.equal(`${jdbcUrl({ ...d })}\n`);
  });

  it("ini: the CAST .ini section the operator mounts (cast-ini.ts), for this connection", () => {
    const d = declaration as Required<ConnectionDeclaration>;
    const ini = renderCastIni([{ host: d.host, port: d.port, sslMode: "verify-full", certificatePath: d.certificatePath, keyPath: d.keyPath, rootCertificatePath: d.rootCertificatePath }]);
    expect(ini.ok).to.equal(true);
    expect(formatDeclaration(declaration, "ini", "imc")).to.equal(ini.ok ? ini.value : "").and.to.equal(
      "[db.cast.svc:5432]\nssl=true\nsslmode=verify-full\nsslcert=/etc/cast-imaging/mtls/analysis/client.crt\n" +
        "sslkey=/etc/cast-imaging/mtls/analysis/client.pk8\nsslrootcert=/etc/cast-imaging/mtls/analysis/root.crt\n",
    );
  });

  it("env: libpq's variables with the PEM key (libpq does not read the DER client.pk8)", () => {
    expect(formatDeclaration(declaration, "env", "imc")).to.equal(
      [
        "PGHOST=db.cast.svc",
        "PGPORT=5432",
        "PGDATABASE=imaging",
        "PGUSER=analysis",
        "PGSSLMODE=verify-full",
        "PGSSLCERT=/etc/cast-imaging/mtls/analysis/client.crt",
        "PGSSLKEY=/etc/cast-imaging/mtls/analysis/client.key",
        "PGSSLROOTCERT=/etc/cast-imaging/mtls/analysis/root.crt",
        "",
      ].join("\n"),
    );
  });

  it("quotes a value the shell would otherwise split or expand", () => {
    expect(shellQuote("/etc/x/client.crt")).to.equal("/etc/x/client.crt");
    expect(shellQuote("my db")).to.equal("'my db'");
    expect(shellQuote("it's$HOME")).to.equal(`'it'\\''s$HOME'`);
  });

  it("refuses a status without a declaration, or without what the format needs, naming the fields", () => {
    expect(() => formatDeclaration(undefined, "json", "imagingconnection cast/x")).to.throw(PluginError, /^imagingconnection cast\/x has no status\.declaration yet$/);
    const partial = { ...declaration };
    delete partial.keyPemPath;
    delete partial.user;
    expect(() => formatDeclaration(partial, "env", "imc")).to.throw(PluginError, /has no user, keyPemPath in its status\.declaration yet/);
    expect(formatDeclaration(partial, "jdbc", "imc")).to.contain("jdbc:postgresql://");
  });

  it("refuses a value the .ini cannot carry, with cast-ini.ts's message", () => {
    expect(() => formatDeclaration({ ...declaration, certificatePath: "/a=b/client.crt" }, "ini", "imc")).to.throw(PluginError, /certificatePath must not contain '\[', '\]' or '='/);
  });
});
