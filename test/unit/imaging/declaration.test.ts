import { expect } from "chai";
import { resolveImagingConnection, resolveSecureDatabase } from "../../../src/api/defaults";
import { API_VERSION, type ImagingConnection, type SecureDatabase } from "../../../src/api/types";
import { connectionDeclaration, jdbcUrl } from "../../../src/imaging/declaration";

function db(host: string, port?: number) {
  const sdb: SecureDatabase = {
    apiVersion: API_VERSION,
    kind: "SecureDatabase",
    metadata: { name: "css", namespace: "cast" },
    spec: { host, ...(port === undefined ? {} : { port }), postgres: { configMapName: "pg" } },
  };
  return resolveSecureDatabase(sdb);
}

function conn(spec: Partial<ImagingConnection["spec"]> = {}) {
  const imc: ImagingConnection = {
    apiVersion: API_VERSION,
    kind: "ImagingConnection",
    metadata: { name: "analysis", namespace: "cast" },
    spec: { databaseRef: { name: "css" }, user: "operator", ...spec },
  };
  return resolveImagingConnection(imc);
}

describe("connectionDeclaration", () => {
  it("declares host, port, user, database, mode, every in-container path and the JDBC URL", () => {
    const d = connectionDeclaration(
      db("db.example.com", 2285),
      conn({ database: "analysis" }),
      "/etc/cast-imaging/mtls/analysis",
      "/etc/cast-imaging/mtls-ini/cast-connections.ini",
    );
    expect(d).to.deep.equal({
      host: "db.example.com",
      port: 2285,
      database: "analysis",
      user: "operator",
      sslMode: "verify-full",
      certificatePath: "/etc/cast-imaging/mtls/analysis/client.crt",
      keyPath: "/etc/cast-imaging/mtls/analysis/client.pk8",
      keyPemPath: "/etc/cast-imaging/mtls/analysis/client.key",
      rootCertificatePath: "/etc/cast-imaging/mtls/analysis/root.crt",
      pfxPath: "/etc/cast-imaging/mtls/analysis/client.pfx",
      pfxPasswordSecretKey: "client.pfx.password",
      iniPath: "/etc/cast-imaging/mtls-ini/cast-connections.ini",
      jdbcUrl:
        "jdbc:postgresql://db.example.com:2285/analysis?ssl=true&sslmode=verify-full" +
        "&sslcert=/etc/cast-imaging/mtls/analysis/client.crt&sslkey=/etc/cast-imaging/mtls/analysis/client.pk8" +
        "&sslrootcert=/etc/cast-imaging/mtls/analysis/root.crt",
    });
  });

  it("does not double a trailing slash of the mount path, and carries verify-ca", () => {
    const d = connectionDeclaration(db("db"), conn({ sslMode: "verify-ca" }), "/certs/", "/i.ini");
    expect(d.certificatePath).to.equal("/certs/client.crt");
    expect(d.jdbcUrl).to.equal("jdbc:postgresql://db:5432/postgres?ssl=true&sslmode=verify-ca&sslcert=/certs/client.crt&sslkey=/certs/client.pk8&sslrootcert=/certs/root.crt");
  });

  it("brackets an IPv6 host in the URL but not in the declared host", () => {
    const d = connectionDeclaration(db("2001:db8::5"), conn(), "/m", "/i.ini");
    expect(d.host).to.equal("2001:db8::5");
    expect(d.jdbcUrl).to.equal("jdbc:postgresql://[2001:db8::5]:5432/postgres?ssl=true&sslmode=verify-full&sslcert=/m/client.crt&sslkey=/m/client.pk8&sslrootcert=/m/root.crt");
  });
});

describe("jdbcUrl", () => {
  it("percent-encodes the database and the values the way pgjdbc's URLDecoder reads them back", () => {
    const url = jdbcUrl({
      host: "db.example.com",
      port: 5432,
      database: "my db+/x?&=é",
      sslMode: "verify-full",
      certificatePath: "/a b/c+d&e=f?/client.crt",
      keyPath: "/k%/client.pk8",
      rootCertificatePath: "/r#/root.crt",
    });
    expect(url).to.equal(
      "jdbc:postgresql://db.example.com:5432/my%20db%2B%2Fx%3F%26%3D%C3%A9?ssl=true&sslmode=verify-full" +
        "&sslcert=/a%20b/c%2Bd%26e%3Df%3F/client.crt&sslkey=/k%25/client.pk8&sslrootcert=/r%23/root.crt",
    );
    // What pgjdbc does: split on the first '?', then '&', then the first '=', then URL-decode ('+' = space).
    const query = url.slice(url.indexOf("?") + 1);
    const javaDecode = (s: string) => decodeURIComponent(s.replace(/\+/g, " "));
    const props = Object.fromEntries(query.split("&").map((t) => [t.slice(0, t.indexOf("=")), javaDecode(t.slice(t.indexOf("=") + 1))]));
    expect(props).to.deep.equal({
      ssl: "true",
      sslmode: "verify-full",
      sslcert: "/a b/c+d&e=f?/client.crt",
      sslkey: "/k%/client.pk8",
      sslrootcert: "/r#/root.crt",
    });
    const server = url.slice("jdbc:postgresql://".length, url.indexOf("?"));
    expect(javaDecode(server.slice(server.indexOf("/") + 1))).to.equal("my db+/x?&=é");
  });
});
