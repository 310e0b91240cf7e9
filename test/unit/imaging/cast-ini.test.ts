import { expect } from "chai";
import { castIniSectionName, renderCastIni, type CastIniEntry } from "../../../src/imaging/cast-ini";

const entry = (host: string, port = 5432, dir = "/etc/cast-imaging/mtls/analysis"): CastIniEntry => ({
  host,
  port,
  sslMode: "verify-full",
  certificatePath: `${dir}/client.crt`,
  keyPath: `${dir}/client.pk8`,
  rootCertificatePath: `${dir}/root.crt`,
});

function rendered(entries: CastIniEntry[]): string {
  const r = renderCastIni(entries);
  if (!r.ok) throw new Error(`unexpected error ${r.reason}: ${r.message}`);
  return r.value;
}

function reason(entries: CastIniEntry[]): string {
  const r = renderCastIni(entries);
  if (r.ok) throw new Error(`expected an error, got:\n${r.value}`);
  return r.reason;
}

describe("renderCastIni", () => {
  it("renders one instance byte for byte", () => {
    expect(rendered([entry("db.example.com")])).to.equal(
      "[db.example.com:5432]\n" +
        "ssl=true\n" +
        "sslmode=verify-full\n" +
        "sslcert=/etc/cast-imaging/mtls/analysis/client.crt\n" +
        "sslkey=/etc/cast-imaging/mtls/analysis/client.pk8\n" +
        "sslrootcert=/etc/cast-imaging/mtls/analysis/root.crt\n",
    );
  });

  it("renders two instances sorted by section name, separated by one blank line", () => {
    const b = { ...entry("b.example.com", 5433, "/m/b"), sslMode: "verify-ca" as const };
    const a = entry("a.example.com", 5432, "/m/a");
    expect(rendered([b, a])).to.equal(
      "[a.example.com:5432]\nssl=true\nsslmode=verify-full\nsslcert=/m/a/client.crt\nsslkey=/m/a/client.pk8\nsslrootcert=/m/a/root.crt\n" +
        "\n" +
        "[b.example.com:5433]\nssl=true\nsslmode=verify-ca\nsslcert=/m/b/client.crt\nsslkey=/m/b/client.pk8\nsslrootcert=/m/b/root.crt\n",
    );
  });

  it("does not depend on the order of the entries", () => {
    const es = [entry("c.example.com", 1, "/c"), entry("a.example.com", 2, "/a"), entry("b.example.com", 3, "/b"), entry("a.example.com", 1, "/a1")];
    const first = rendered(es);
    expect(rendered([...es].reverse())).to.equal(first);
    expect(rendered([es[2]!, es[0]!, es[3]!, es[1]!])).to.equal(first);
    expect(first.match(/^\[.*\]$/gm)).to.deep.equal(["[a.example.com:1]", "[a.example.com:2]", "[b.example.com:3]", "[c.example.com:1]"]);
  });

  it("collapses identical entries for one instance, refuses different settings for it", () => {
    expect(rendered([entry("db"), entry("db")])).to.equal(rendered([entry("db")]));
    expect(reason([entry("db", 5432, "/x"), entry("db", 5432, "/y")])).to.equal("ConflictingInstance");
    expect(reason([entry("db"), { ...entry("db"), sslMode: "verify-ca" }])).to.equal("ConflictingInstance");
    expect(reason([entry("db"), entry("DB", 5432, "/y")])).to.equal("ConflictingInstance");
  });

  it("brackets an IPv6 host in the section name, lower-cased", () => {
    expect(castIniSectionName("2001:DB8::1", 5432)).to.equal("[2001:db8::1]:5432");
    expect(rendered([entry("2001:db8::1")]).split("\n")[0]).to.equal("[[2001:db8::1]:5432]");
    expect(castIniSectionName("10.0.0.1", 5432)).to.equal("10.0.0.1:5432");
  });

  it("refuses values that would inject lines, sections or keys", () => {
    const bad: [keyof CastIniEntry, string][] = [
      ["host", "db\n[evil:1]"],
      ["host", "db\r"],
      ["host", "db]"],
      ["host", "a:b"],
      ["certificatePath", "/x/client.crt\nsslmode=disable"],
      ["keyPath", "/x/[k]"],
      ["rootCertificatePath", "/x/root.crt=1"],
      ["certificatePath", ""],
      ["keyPath", " /x/client.pk8"],
      ["host", ";db"],
      ["keyPath", "/x/\u0000"],
    ];
    for (const [field, value] of bad) {
      const e = { ...entry("db"), [field]: value } as CastIniEntry;
      expect(reason([e]), `${field}=${JSON.stringify(value)}`).to.equal("UnsafeIniValue");
    }
  });

  it("refuses invalid ports and modes", () => {
    expect(reason([entry("db", 0)])).to.equal("InvalidPort");
    expect(reason([entry("db", 65536)])).to.equal("InvalidPort");
    expect(reason([entry("db", 5432.5)])).to.equal("InvalidPort");
    expect(reason([{ ...entry("db"), sslMode: "require" as never }])).to.equal("InvalidSSLMode");
  });

  it("renders nothing for no entries", () => {
    expect(rendered([])).to.equal("");
  });
});
