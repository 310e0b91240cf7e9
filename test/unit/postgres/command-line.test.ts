import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { commandLineSettings, isWrapperCommand, shellQuote, wrapperCommand } from "../../../src/postgres/command-line";
import { parseServerArguments, commandLineValue } from "../../../src/postgres/server-layout";

describe("the server's command line (configuration CommandLine)", () => {
  const settings = commandLineSettings({ certificateDirectory: "/etc/postgresql/tls", minTLSVersion: "TLSv1.2", crl: true, hbaFile: "/etc/postgresql/mtls/pg_hba.conf" });

  it("runs the entrypoint with the container's own arguments first and the operator's settings last (a real /bin/sh)", () => {
    const dir = mkdtempSync(join(tmpdir(), "wrapper-"));
    try {
      const entrypoint = join(dir, "entrypoint");
      writeFileSync(entrypoint, '#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n');
      chmodSync(entrypoint, 0o755);
      const chartArgs = ["-c", "ssl=on", "-c", "ssl_cert_file=/var/lib/postgresql/ssl/server.crt", "-c", "hba_file=/etc/postgresql/pg_hba.conf"];
      const [cmd, ...rest] = [...wrapperCommand(entrypoint, settings), ...chartArgs];
      const argv = execFileSync(cmd!, rest, { encoding: "utf8" }).trimEnd().split("\n");
      expect(argv.slice(0, chartArgs.length)).to.deep.equal(chartArgs);
      const parsed = parseServerArguments(argv);
      // The last of a name wins, as in PostgreSQL: the operator's.
      expect(commandLineValue(parsed.settings, "ssl_cert_file")).to.equal("/etc/postgresql/tls/tls.crt");
      expect(commandLineValue(parsed.settings, "hba_file")).to.equal("/etc/postgresql/mtls/pg_hba.conf");
      expect(commandLineValue(parsed.settings, "ssl_crl_file")).to.equal("/etc/postgresql/tls/ca.crl");
      // Without arguments of its own (CAST's chart with CastStorageService.ssl=false) only the operator's follow.
      const alone = execFileSync(cmd!, wrapperCommand(entrypoint, settings).slice(1), { encoding: "utf8" }).trimEnd().split("\n");
      expect(alone[0]).to.equal("-c");
      expect(alone).to.have.lengthOf(settings.length * 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("quotes what the shell would read otherwise, and recognizes its own command", () => {
    expect(shellQuote("ssl_crl_file=")).to.equal("ssl_crl_file=");
    expect(shellQuote("a b'c")).to.equal(`'a b'\\''c'`);
    expect(isWrapperCommand(wrapperCommand("docker-entrypoint.sh", settings))).to.equal(true);
    expect(isWrapperCommand(["postgres"])).to.equal(false);
    expect(isWrapperCommand(undefined)).to.equal(false);
  });

  it("parses -c name=value, -cname=value, --name=value and -D", () => {
    const p = parseServerArguments(["postgres", "-D", "/data", "-cport=5433", "--shared-buffers=1GB", "-c", "SSL=on"]);
    expect(p.dataDirectory).to.equal("/data");
    expect(p.settings).to.deep.equal([{ name: "port", value: "5433" }, { name: "shared_buffers", value: "1GB" }, { name: "ssl", value: "on" }]);
  });
});
