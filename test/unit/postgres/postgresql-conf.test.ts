import { expect } from "chai";
import fc from "fast-check";
import { BEGIN_MARKER, END_MARKER, findManagedBlocks } from "../../../src/postgres/managed-block";
import { quoteConfValue, renderPostgresqlConfBlock } from "../../../src/postgres/postgresql-conf";
import {
  findOverrides,
  findOverridingIncludes,
  findOverridingSettings,
  parseConfLine,
  unescapeConfString,
  upsertPostgresqlConf,
} from "../../support/postgres-config";
import { arbBlockFreeText } from "./arbitraries";

const RUNS = { numRuns: Number(process.env.FC_RUNS ?? 300) };
const INPUT = { certificateDirectory: "/etc/postgresql/mtls", minTLSVersion: "TLSv1.2" as const, crl: true };

function withBlock(before: string, after = ""): string {
  const u = upsertPostgresqlConf(before, INPUT);
  if (typeof u !== "string") throw new Error(u.message);
  return u + after;
}

describe("postgres/postgresql-conf", () => {
  describe("renderPostgresqlConfBlock", () => {
    it("renders the six ssl settings", () => {
      expect(renderPostgresqlConfBlock(INPUT)).to.equal(
        [
          "ssl = on",
          "ssl_cert_file = '/etc/postgresql/mtls/tls.crt'",
          "ssl_key_file = '/etc/postgresql/mtls/tls.key'",
          "ssl_ca_file = '/etc/postgresql/mtls/ca.crt'",
          "ssl_crl_file = '/etc/postgresql/mtls/ca.crl'",
          "ssl_min_protocol_version = 'TLSv1.2'",
          "",
        ].join("\n"),
      );
    });

    it("sets ssl_crl_file empty without a CRL (so an earlier admin value cannot linger) and honours TLSv1.3", () => {
      const body = renderPostgresqlConfBlock({ certificateDirectory: "/certs/", minTLSVersion: "TLSv1.3", crl: false });
      expect(body).to.contain("ssl_crl_file = ''\n");
      expect(body).to.contain("ssl_cert_file = '/certs/tls.crt'\n");
      expect(body).to.contain("ssl_min_protocol_version = 'TLSv1.3'\n");
    });

    it("handles the root directory and a relative directory (relative to the data directory)", () => {
      expect(renderPostgresqlConfBlock({ ...INPUT, certificateDirectory: "/" })).to.contain("ssl_cert_file = '/tls.crt'");
      expect(renderPostgresqlConfBlock({ ...INPUT, certificateDirectory: "certs" })).to.contain("ssl_cert_file = 'certs/tls.crt'");
      expect(renderPostgresqlConfBlock({ ...INPUT, certificateDirectory: "" })).to.contain("ssl_cert_file = 'tls.crt'");
    });

    it("escapes quotes and backslashes, and can never be broken out of by the directory", () => {
      const body = renderPostgresqlConfBlock({ ...INPUT, certificateDirectory: "/o'brien\\x\nssl = off #" });
      expect(body).to.contain("ssl_cert_file = '/o''brien\\\\x\\nssl = off #/tls.crt'");
      const lines = body.trimEnd().split("\n");
      expect(lines).to.have.length(6);
      expect(lines.map((l) => parseConfLine(l))).to.deep.include({ kind: "setting", name: "ssl", value: "on", rawValue: "on" });
    });

    it("every directory renders to exactly six assignments that read back as the intended paths (property)", () => {
      fc.assert(
        fc.property(fc.string({ unit: "binary", maxLength: 40 }), fc.boolean(), (dir, crl) => {
          const lines = renderPostgresqlConfBlock({ certificateDirectory: dir, minTLSVersion: "TLSv1.2", crl }).trimEnd().split("\n");
          expect(lines).to.have.length(6);
          const parsed = lines.map((l) => parseConfLine(l));
          expect(parsed.map((p) => (p.kind === "setting" ? p.name : p.kind))).to.deep.equal([
            "ssl",
            "ssl_cert_file",
            "ssl_key_file",
            "ssl_ca_file",
            "ssl_crl_file",
            "ssl_min_protocol_version",
          ]);
          const cert = parsed[1];
          expect(cert?.kind === "setting" && cert.value.endsWith("tls.crt")).to.equal(true);
          expect(cert?.kind === "setting" && cert.value.startsWith(dir.replace(/\/+$/, ""))).to.equal(true);
        }),
        RUNS,
      );
    });
  });

  describe("quoting and parsing", () => {
    it("quoteConfValue round-trips through the parser for any string (property)", () => {
      fc.assert(
        fc.property(fc.string({ unit: "binary", maxLength: 40 }), (v) => {
          const quoted = quoteConfValue(v);
          expect(quoted).to.not.match(/[\n\r]/);
          const p = parseConfLine(`ssl_ca_file = ${quoted} # trailing comment`);
          expect(p).to.deep.include({ kind: "setting", name: "ssl_ca_file", value: v });
        }),
        RUNS,
      );
    });

    it("unescapes like guc-file.l", () => {
      expect(unescapeConfString("it''s")).to.equal("it's");
      expect(unescapeConfString("a\\'b")).to.equal("a'b");
      expect(unescapeConfString("\\n\\t\\\\\\101\\q")).to.equal("\n\t\\Aq");
    });

    const cases: Array<[string, unknown]> = [
      ["ssl = on", { kind: "setting", name: "ssl", value: "on" }],
      ["  SSL\ton  # comment", { kind: "setting", name: "ssl", value: "on" }],
      ["ssl=off#c", { kind: "setting", name: "ssl", value: "off" }],
      ["Ssl_Cert_File = '/a/b.crt'", { kind: "setting", name: "ssl_cert_file", value: "/a/b.crt" }],
      ["ssl_cert_file '/a # not a comment''s.crt'", { kind: "setting", name: "ssl_cert_file", value: "/a # not a comment's.crt" }],
      ["ssl_cert_file='x'", { kind: "setting", name: "ssl_cert_file", value: "x" }],
      ["shared_buffers = 128MB", { kind: "setting", name: "shared_buffers", value: "128MB" }],
      ["work_mem = -1", { kind: "setting", name: "work_mem", value: "-1" }],
      ["pg_stat_statements.max = 10000", { kind: "setting", name: "pg_stat_statements.max", value: "10000" }],
      ["include 'extra.conf'", { kind: "include", directive: "include", path: "extra.conf" }],
      ["INCLUDE_IF_EXISTS = 'x.conf'", { kind: "include", directive: "include_if_exists", path: "x.conf" }],
      ["include_dir conf.d", { kind: "include", directive: "include_dir", path: "conf.d" }],
      ["", { kind: "empty" }],
      ["   # ssl = off", { kind: "empty" }],
      ["\r", { kind: "empty" }],
      ["= on", { kind: "invalid" }],
      ["ssl = 'unterminated", { kind: "invalid" }],
      ["ssl = on off", { kind: "invalid" }],
      ["ssl =", { kind: "invalid" }],
    ];
    for (const [line, expected] of cases) {
      it(`parses ${JSON.stringify(line)}`, () => {
        expect(parseConfLine(line)).to.deep.include(expected as object);
      });
    }
  });

  describe("findOverrides", () => {
    const ADMIN = "listen_addresses = '*'\ninclude_dir 'conf.d'\nssl = off\nssl_cert_file = 'old.crt'\n";

    it("finds nothing when the block is last, whatever comes before it (last assignment wins)", () => {
      expect(findOverrides(withBlock(ADMIN))).to.deep.equal([]);
    });

    it("finds nothing without a block", () => {
      expect(findOverrides(ADMIN)).to.deep.equal([]);
    });

    it("reports a setting after the block that overrides one of ours, naming the line (case-insensitive)", () => {
      const conf = withBlock(ADMIN, "SSL_Cert_File = '/tmp/other.crt'\nssl off\nssl_ciphers = 'HIGH'\n# ssl = off\nwork_mem = 4MB\n");
      const f = findOverrides(conf);
      const start = conf.split("\n").indexOf(END_MARKER) + 2;
      expect(f.map((x) => [x.reason, x.line])).to.deep.equal([
        ["SettingOverridden", start],
        ["SettingOverridden", start + 1],
      ]);
      expect(f[0]?.message).to.contain(`line ${start}`).and.to.contain("SSL_Cert_File = '/tmp/other.crt'").and.to.contain("ssl_cert_file");
      expect(findOverridingSettings(conf)).to.have.length(2);
      expect(findOverridingIncludes(conf)).to.deep.equal([]);
    });

    it("reports include directives after the block", () => {
      const conf = withBlock(ADMIN, "include 'late.conf'\ninclude_if_exists 'maybe.conf'\nInclude_Dir = 'more.d'\n");
      const f = findOverridingIncludes(conf);
      expect(f.map((x) => x.reason)).to.deep.equal(["IncludeAfterManagedBlock", "IncludeAfterManagedBlock", "IncludeAfterManagedBlock"]);
      expect(f[0]?.message).to.contain("include 'late.conf'");
      expect(findOverridingSettings(conf)).to.deep.equal([]);
    });

    it("reports a corrupt block", () => {
      const f = findOverrides(`${BEGIN_MARKER}\nssl = on\n`);
      expect(f).to.have.length(1);
      expect(f[0]?.reason).to.equal("ManagedBlockCorrupt");
    });

    it("after upsert, nothing overrides the block, for any admin file (property)", () => {
      fc.assert(
        fc.property(arbBlockFreeText, (x) => {
          const conf = upsertPostgresqlConf(x, INPUT);
          expect(typeof conf).to.equal("string");
          expect(findOverrides(conf as string)).to.deep.equal([]);
          const scan = findManagedBlocks(conf as string);
          expect(scan.ok && scan.block?.end).to.equal((conf as string).length);
        }),
        RUNS,
      );
    });
  });
});
