import { expect } from "chai";
import fc from "fast-check";
import { BlockList } from "node:net";
import { BEGIN_MARKER, END_MARKER, findManagedBlocks } from "../../../src/postgres/managed-block";
import {
  findPasswordRuleOverlaps,
  HBA_REJECT_LINES,
  hbaAddressToken,
  hbaNameToken,
  isPasswordRecord,
  MAX_OVERLAP_TARGETS,
  renderHbaBlock,
  type HbaRule,
} from "../../../src/postgres/pg-hba";
import { auditHba, upsertHba } from "../../support/postgres-config";
import { arbBlockFreeText } from "./arbitraries";

const RUNS = { numRuns: Number(process.env.FC_RUNS ?? 300) };

interface Tok {
  s: string;
  quoted: boolean;
}

/** pg_hba.conf tokenizer as PostgreSQL 15's next_token/next_field_expand: fields of comma-separated tokens. */
function tokenize(line: string): Tok[][] {
  const fields: Tok[][] = [];
  let i = 0;
  const blank = (c: string | undefined): boolean => c === " " || c === "\t" || c === "\r" || c === "\n";
  for (;;) {
    const field: Tok[] = [];
    for (;;) {
      while (blank(line[i])) i++;
      if (i >= line.length || line[i] === "#") break;
      let s = "";
      let inQuote = false;
      let quoted = false;
      while (i < line.length && (inQuote || (!blank(line[i]) && line[i] !== ","))) {
        const c = line[i++] as string;
        if (c === "#" && !inQuote) {
          i = line.length;
          break;
        }
        if (c === '"') {
          inQuote = !inQuote;
          quoted = true;
          continue;
        }
        s += c;
      }
      field.push({ s, quoted });
      if (line[i] === ",") {
        i++;
        continue;
      }
      break;
    }
    if (field.length === 0) return fields;
    fields.push(field);
  }
}

function body(rules: HbaRule[]): string {
  const r = renderHbaBlock(rules);
  if (typeof r !== "string") throw new Error(r.message);
  return r;
}

function tokenOf(t: ReturnType<typeof hbaAddressToken>): string {
  if (!t.ok) throw new Error(t.message);
  return t.token;
}

const RULE: HbaRule = { databases: ["castdb", "all"], users: ["operator", "app"], addresses: ["10.0.0.0/8", "::1"], clientCertificate: "verify-full" };

describe("postgres/pg-hba", () => {
  describe("renderHbaBlock", () => {
    it("renders one cert line per address, then the catch-all rejects", () => {
      expect(body([RULE])).to.equal(
        [
          "hostssl castdb,all operator,app 10.0.0.0/8 cert clientcert=verify-full",
          "hostssl castdb,all operator,app ::1/128 cert clientcert=verify-full",
          "hostnossl all,replication all 0.0.0.0/0 reject",
          "hostnossl all,replication all ::/0 reject",
          "hostssl all,replication all 0.0.0.0/0 reject",
          "hostssl all,replication all ::/0 reject",
          "",
        ].join("\n"),
      );
    });

    it("renders no rules as rejects only (fail closed)", () => {
      expect(body([])).to.equal(`${HBA_REJECT_LINES.join("\n")}\n`);
    });

    it("renders verify-ca as scram-sha-256 + clientcert=verify-ca, or trust only when chosen explicitly", () => {
      const ca: HbaRule = { databases: ["db"], users: ["u"], addresses: ["0.0.0.0/0"], clientCertificate: "verify-ca" };
      expect(body([ca]).split("\n")[0]).to.equal("hostssl db u 0.0.0.0/0 scram-sha-256 clientcert=verify-ca");
      expect(body([{ ...ca, verifyCaMethod: "trust" }]).split("\n")[0]).to.equal("hostssl db u 0.0.0.0/0 trust clientcert=verify-ca");
      const bad = renderHbaBlock([{ ...RULE, verifyCaMethod: "trust" }]);
      expect(typeof bad !== "string" && bad.reason).to.equal("InvalidHbaRule");
      const bad2 = renderHbaBlock([{ ...ca, verifyCaMethod: "md5" as never }]);
      expect(typeof bad2 !== "string" && bad2.message).to.contain("verifyCaMethod");
      const bad3 = renderHbaBlock([{ ...ca, clientCertificate: "no-verify" as never }]);
      expect(typeof bad3 !== "string" && bad3.message).to.contain("clientCertificate");
    });

    describe("password rules (clientCertificate none)", () => {
      const PW: HbaRule = { databases: ["keycloak_db"], users: ["keycloak_user"], addresses: ["10.42.0.0/16", "fd00::/8"], clientCertificate: "none" };

      it("renders hostssl … scram-sha-256 without clientcert, one line per address, keeping the rules' order", () => {
        expect(body([RULE, PW])).to.equal(
          [
            "hostssl castdb,all operator,app 10.0.0.0/8 cert clientcert=verify-full",
            "hostssl castdb,all operator,app ::1/128 cert clientcert=verify-full",
            "hostssl keycloak_db keycloak_user 10.42.0.0/16 scram-sha-256",
            "hostssl keycloak_db keycloak_user fd00::/8 scram-sha-256",
            ...HBA_REJECT_LINES,
            "",
          ].join("\n"),
        );
        expect(body([PW, RULE]).split("\n").slice(0, 3)).to.deep.equal([
          "hostssl keycloak_db keycloak_user 10.42.0.0/16 scram-sha-256",
          "hostssl keycloak_db keycloak_user fd00::/8 scram-sha-256",
          "hostssl castdb,all operator,app 10.0.0.0/8 cert clientcert=verify-full",
        ]);
      });

      it("quotes literal names that look like keywords (a role named ALL is not all)", () => {
        expect(body([{ ...PW, users: ["ALL", "o'brien"], databases: ["Replication"] }]).split("\n")[0]).to.equal(
          'hostssl "Replication" "ALL","o\'brien" 10.42.0.0/16 scram-sha-256',
        );
      });

      const refused: [string, Partial<HbaRule>, string][] = [
        ["users all", { users: ["keycloak_user", "all"] }, 'must name its users: "all"'],
        ["a +group", { users: ["+readers"] }, 'must name its users: "+readers"'],
        ["databases all", { databases: ["all"] }, 'must name its databases: "all"'],
        ["databases replication", { databases: ["replication"] }, '"replication" is a pg_hba.conf keyword'],
        ["databases sameuser", { databases: ["sameuser"] }, '"sameuser"'],
        ["databases samerole", { databases: ["samerole"] }, '"samerole"'],
        ["databases samegroup", { databases: ["samegroup"] }, '"samegroup"'],
        ["a verifyCaMethod", { verifyCaMethod: "scram-sha-256" }, "verifyCaMethod only applies to clientCertificate \"verify-ca\""],
        ["a trust verifyCaMethod", { verifyCaMethod: "trust" }, "always uses scram-sha-256"],
      ];
      for (const [what, patch, message] of refused) {
        it(`refuses ${what}`, () => {
          const r = renderHbaBlock([RULE, { ...PW, ...patch }]);
          expect(typeof r).to.not.equal("string");
          if (typeof r !== "string") {
            expect(r.reason).to.equal("InvalidHbaRule");
            expect(r.message).to.match(/^rule 2: /).and.to.contain(message);
          }
        });
      }

      it("isPasswordRecord tells a password record from every other line of the block", () => {
        const lines = body([RULE, PW, { ...RULE, clientCertificate: "verify-ca" }]).trimEnd().split("\n");
        expect(lines.filter(isPasswordRecord)).to.deep.equal([
          "hostssl keycloak_db keycloak_user 10.42.0.0/16 scram-sha-256",
          "hostssl keycloak_db keycloak_user fd00::/8 scram-sha-256",
        ]);
        expect(isPasswordRecord("host all all 0.0.0.0/0 scram-sha-256")).to.equal(false);
      });
    });

    it("keeps keywords, +groups, and quotes everything else that needs it", () => {
      const line = body([
        {
          databases: ["all", "sameuser", "replication", "ALL", "my db", "a,b", "x#y", "@file", "café", "Upper", "db-1.x$"],
          users: ["all", "+cast_readers", "All", "o'brien", "with space"],
          addresses: ["samenet", "db.example.com", ".example.com", "192.168.1.7", "2001:db8::/32", "all"],
          clientCertificate: "verify-full",
        },
      ]).split("\n")[0]!;
      expect(line).to.equal(
        'hostssl all,sameuser,replication,"ALL","my db","a,b","x#y","@file","café",Upper,db-1.x$ all,+cast_readers,"All","o\'brien","with space" samenet cert clientcert=verify-full',
      );
      const fields = tokenize(line);
      expect(fields).to.have.length(6);
      expect(fields[1]!.map((t) => t.s)).to.deep.equal(["all", "sameuser", "replication", "ALL", "my db", "a,b", "x#y", "@file", "café", "Upper", "db-1.x$"]);
      const addrs = body([{ ...RULE, addresses: ["db.example.com", ".example.com", "192.168.1.7", "2001:db8::/32", "all", "192.168.1.7/32"] }])
        .split("\n")
        .filter((l) => l.includes("cert"))
        .map((l) => tokenize(l)[3]![0]!.s);
      expect(addrs).to.deep.equal(["db.example.com", ".example.com", "192.168.1.7/32", "2001:db8::/32", "all"]);
    });

    const injections: Array<[string, Partial<HbaRule>]> = [
      ["a newline in a database", { databases: ["db\nhost all all 0.0.0.0/0 trust"] }],
      ["a carriage return in a user", { users: ["u\rhost"] }],
      ["a double quote in a user", { users: ['x" all 0.0.0.0/0 trust #'] }],
      ["a NUL in a database", { databases: ["d\u0000"] }],
      ["a tab in a user", { users: ["a\tb"] }],
      ["an empty database", { databases: [""] }],
      ["no databases", { databases: [] }],
      ["no users", { users: [] }],
      ["no addresses", { addresses: [] }],
      ["a 64-byte name", { users: ["x".repeat(64)] }],
      ["a quoted group", { users: ["+my group"] }],
      ["a space in an address", { addresses: ["0.0.0.0/0 trust"] }],
      ["a newline in an address", { addresses: ["10.0.0.0/8\nhost"] }],
      ["a too-long prefix", { addresses: ["10.0.0.0/33"] }],
      ["an IPv6 prefix over 128", { addresses: ["::/129"] }],
      ["a non-numeric prefix", { addresses: ["10.0.0.0/8x"] }],
      ["a hostname with a mask", { addresses: ["db.example.com/24"] }],
      ["an invalid IP-ish name", { addresses: ["999.1.1.1"] }],
      ["a hostname with an underscore", { addresses: ["bad_host.example.com"] }],
      ["a comment in an address", { addresses: ["10.0.0.0/8#"] }],
    ];
    for (const [what, patch] of injections) {
      it(`refuses ${what}`, () => {
        const r = renderHbaBlock([RULE, { ...RULE, ...patch }]);
        expect(typeof r).to.not.equal("string");
        if (typeof r !== "string") {
          expect(r.reason).to.equal("InvalidHbaRule");
          expect(r.message).to.match(/^rule 2: /);
        }
      });
    }

    it("any names either are refused or round-trip through PostgreSQL's tokenizer; no line admits TCP without TLS, nor without a certificate unless it names its roles and databases (property)", () => {
      const arbName = fc.oneof(
        fc.string({ unit: "binary", maxLength: 20 }),
        fc.string({ unit: "grapheme-ascii", maxLength: 12 }),
        fc.constantFrom("all", "replication", "ALL", "+grp", "sameuser"),
      );
      const arbAddr = fc.oneof(
        fc.constantFrom("0.0.0.0/0", "::/0", "10.1.2.3", "fe80::1/64", "samehost", "db.local", ".svc.cluster.local"),
        fc.string({ maxLength: 15 }),
      );
      const arbRule = fc.record({
        databases: fc.array(arbName, { minLength: 1, maxLength: 3 }),
        users: fc.array(arbName, { minLength: 1, maxLength: 3 }),
        addresses: fc.array(arbAddr, { minLength: 1, maxLength: 2 }),
        clientCertificate: fc.constantFrom<"verify-full" | "verify-ca" | "none">("verify-full", "verify-ca", "none"),
      });
      let rendered = 0;
      fc.assert(
        fc.property(fc.array(arbRule, { maxLength: 3 }), (rules) => {
          const r = renderHbaBlock(rules);
          if (typeof r !== "string") return;
          rendered++;
          const lines = r.trimEnd().split("\n");
          expect(lines.slice(-4)).to.deep.equal(HBA_REJECT_LINES);
          let k = 0;
          for (const rule of rules) {
            const addresses = [...new Set(rule.addresses.map((a) => tokenOf(hbaAddressToken(a))))];
            const password = rule.clientCertificate === "none";
            for (const [j, line] of lines.slice(k, k + addresses.length).entries()) {
              const f = tokenize(line);
              expect(f.length, line).to.equal(password ? 5 : 6);
              expect(f[0]).to.deep.equal([{ s: "hostssl", quoted: false }]);
              // Literal names read back exactly; keywords stay unquoted keywords.
              expect(f[1]!.map((t) => t.s)).to.deep.equal([...new Set(rule.databases)]);
              expect(f[2]!.map((t) => t.s)).to.deep.equal([...new Set(rule.users)]);
              for (const t of [...f[1]!, ...f[2]!]) if (t.s === "all") expect(t.quoted).to.equal(false);
              expect(f[3]!.map((t) => t.s)).to.deep.equal([addresses[j]]);
              expect(f[4]![0]!.s).to.equal(rule.clientCertificate === "verify-full" ? "cert" : "scram-sha-256");
              if (!password) expect(f[5]![0]!.s).to.equal(`clientcert=${rule.clientCertificate}`);
            }
            k += addresses.length;
          }
          expect(lines.length).to.equal(k + 4);
          for (const line of lines) {
            const f = tokenize(line);
            const type = f[0]![0]!.s;
            const method = f[4]![0]!.s;
            // The invariant: a record either rejects, or is hostssl and requires a CA-verified client certificate,
            // or is hostssl and asks named roles (no keyword, no group) on named databases for their password.
            const certificate = method === "cert" || /^clientcert=verify-(full|ca)$/.test(f[5]?.[0]?.s ?? "");
            const named = (t: Tok) => t.quoted || !["all", "sameuser", "samerole", "samegroup", "replication"].includes(t.s);
            const password = method === "scram-sha-256" && f.length === 5 && f[1]!.every(named) && f[2]!.every((t) => named(t) && !t.s.startsWith("+"));
            expect(method === "reject" || (type === "hostssl" && (certificate || password)), line).to.equal(true);
          }
        }),
        RUNS,
      );
      expect(rendered, "too few rule sets were renderable to test anything").to.be.greaterThan(RUNS.numRuns / 10);
    });

    it("hbaNameToken quotes keywords case-insensitively and plain names not at all", () => {
      expect(hbaNameToken("app", "user")).to.deep.equal({ ok: true, token: "app" });
      expect(hbaNameToken("all", "user")).to.deep.equal({ ok: true, token: '"all"' });
      expect(hbaNameToken("Replication", "database")).to.deep.equal({ ok: true, token: '"Replication"' });
    });
  });

  describe("findPasswordRuleOverlaps", () => {
    const pw = (extra: Partial<HbaRule> = {}): HbaRule => ({
      databases: ["keycloak_db"],
      users: ["keycloak_user"],
      addresses: ["10.42.0.0/16"],
      clientCertificate: "none",
      ...extra,
    });
    const cert = (extra: Partial<HbaRule> = {}): HbaRule => ({
      databases: ["all"],
      users: ["all"],
      addresses: ["0.0.0.0/0", "::/0"],
      clientCertificate: "verify-full",
      ...extra,
    });
    const summary = (rules: HbaRule[]) =>
      findPasswordRuleOverlaps(rules).map((o) => ({ kind: o.kind, passwordRule: o.passwordRule, otherRules: o.otherRules, complete: o.complete, targets: o.targets }));

    it("finds nothing when the password rule comes first and later certificate rules name other users or all", () => {
      expect(findPasswordRuleOverlaps([pw(), cert()])).to.deep.equal([]);
      expect(findPasswordRuleOverlaps([cert({ users: ["operator"] }), pw(), cert({ users: ["analysis"] })])).to.deep.equal([]);
      expect(findPasswordRuleOverlaps([cert({ users: ["keycloak_user"], databases: ["postgres"] }), pw()])).to.deep.equal([]);
    });

    it("a certificate rule before it for every (database, user, address): the password rule never applies", () => {
      const overlaps = findPasswordRuleOverlaps([cert(), pw({ addresses: ["10.42.0.0/16", "fd00::/8", "10.42.0.5"] })]);
      expect(overlaps).to.have.length(1);
      expect(overlaps[0]).to.include({ kind: "PasswordRuleUnreachable", passwordRule: 1, complete: true });
      expect(overlaps[0]!.otherRules).to.deep.equal([0]);
      expect(overlaps[0]!.message).to.equal("rule 2 (password) never applies: rule 1 before it matches every user, database and address it names first");
    });

    it("several earlier rules together, sameuser, and a spec-path name", () => {
      const rules = [
        cert({ users: ["keycloak_user"], databases: ["keycloak_db"] }),
        cert({ users: ["auth"], databases: ["sameuser"], clientCertificate: "verify-ca" }),
        pw({ users: ["keycloak_user", "auth"], databases: ["keycloak_db", "auth"] }),
      ];
      const overlaps = findPasswordRuleOverlaps(rules, (i) => `spec.postgres.hba.rules[${i}]`);
      // keycloak_user on auth is matched by neither: the password rule still applies there.
      expect(summary(rules)).to.deep.equal([
        {
          kind: "PasswordRuleUnreachable",
          passwordRule: 2,
          otherRules: [0, 1],
          complete: false,
          targets: [
            { database: "keycloak_db", user: "keycloak_user", address: "10.42.0.0/16" },
            { database: "auth", user: "auth", address: "10.42.0.0/16" },
          ],
        },
      ]);
      expect(overlaps[0]!.message).to.equal(
        "spec.postgres.hba.rules[2] (password) never applies for user keycloak_user on database keycloak_db from 10.42.0.0/16, " +
          "user auth on database auth from 10.42.0.0/16: spec.postgres.hba.rules[0] and spec.postgres.hba.rules[1] before it match first",
      );
    });

    it("only part of its addresses taken: reported for those, the rest still applies", () => {
      const overlaps = summary([cert({ addresses: ["10.0.0.0/8"] }), pw({ addresses: ["10.42.0.0/16", "192.168.0.0/16", "fd00::/8"] })]);
      expect(overlaps).to.deep.equal([
        {
          kind: "PasswordRuleUnreachable",
          passwordRule: 1,
          otherRules: [0],
          complete: false,
          targets: [{ database: "keycloak_db", user: "keycloak_user", address: "10.42.0.0/16" }],
        },
      ]);
    });

    it("is certain or silent: a wider password range, another IP family, a +group or samerole before it are not overlaps", () => {
      expect(findPasswordRuleOverlaps([cert({ addresses: ["10.42.1.0/24"] }), pw()])).to.deep.equal([]);
      expect(findPasswordRuleOverlaps([cert({ addresses: ["::/0"] }), pw()])).to.deep.equal([]);
      expect(findPasswordRuleOverlaps([cert({ users: ["+admins"] }), pw()])).to.deep.equal([]);
      expect(findPasswordRuleOverlaps([cert({ databases: ["samerole"] }), pw()])).to.deep.equal([]);
    });

    it("an identical password rule twice: the second never applies", () => {
      expect(summary([pw(), pw()])).to.deep.equal([
        {
          kind: "PasswordRuleUnreachable",
          passwordRule: 1,
          otherRules: [0],
          complete: true,
          targets: [{ database: "keycloak_db", user: "keycloak_user", address: "10.42.0.0/16" }],
        },
      ]);
    });

    it("a later certificate rule naming the user: it never applies where the password rule matches first", () => {
      const rules = [
        pw({ addresses: ["10.42.0.0/16", "192.168.7.7"] }),
        cert({ users: ["operator", "keycloak_user"], addresses: ["10.0.0.0/8", "192.168.7.0/24"] }),
        cert({ users: ["keycloak_user"], databases: ["keycloak_db"], addresses: ["10.42.9.0/24"], clientCertificate: "verify-ca" }),
        cert({ users: ["keycloak_user"], databases: ["keycloak_db"], addresses: ["172.16.0.0/12"] }),
      ];
      const overlaps = findPasswordRuleOverlaps(rules);
      expect(summary(rules)).to.deep.equal([
        {
          kind: "CertificateRuleUnreachable",
          passwordRule: 0,
          otherRules: [1],
          complete: false,
          targets: [
            { database: "keycloak_db", user: "keycloak_user", address: "10.42.0.0/16" },
            { database: "keycloak_db", user: "keycloak_user", address: "192.168.7.7/32" },
          ],
        },
        {
          kind: "CertificateRuleUnreachable",
          passwordRule: 0,
          otherRules: [2],
          complete: false,
          targets: [{ database: "keycloak_db", user: "keycloak_user", address: "10.42.9.0/24" }],
        },
      ]);
      expect(overlaps[1]!.message).to.equal(
        "rule 3 (certificate) never applies for user keycloak_user on database keycloak_db from 10.42.9.0/24: rule 1 (password) " +
          "before it matches first, so a client with a certificate is asked for the password",
      );
    });

    it("does not blame a password rule for a pair an earlier rule already takes", () => {
      const rules = [cert({ users: ["keycloak_user"], databases: ["keycloak_db"] }), pw(), cert({ users: ["keycloak_user"] })];
      expect(summary(rules).map((o) => o.kind)).to.deep.equal(["PasswordRuleUnreachable"]);
    });

    it("knows which CIDR contains which as Node's BlockList does (property)", () => {
      const arbRange = fc.oneof(
        fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 32 })).map(([ip, n]) => ({ ip, n, family: "ipv4" as const })),
        fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 128 })).map(([ip, n]) => ({ ip, n, family: "ipv6" as const })),
      );
      // Share a prefix often enough to see containment: the inner range is the outer one's address, longer.
      const arbPair = fc.oneof(
        fc.tuple(arbRange, arbRange),
        arbRange.chain((o) => fc.integer({ min: o.n, max: o.family === "ipv4" ? 32 : 128 }).map((n) => [o, { ...o, n }] as const)),
      );
      let contained = 0;
      fc.assert(
        fc.property(arbPair, ([outer, inner]) => {
          const block = new BlockList();
          block.addSubnet(outer.ip, outer.n, outer.family);
          const expected = outer.family === inner.family && outer.n <= inner.n && block.check(inner.ip, inner.family);
          if (expected) contained++;
          const found = findPasswordRuleOverlaps([cert({ addresses: [`${outer.ip}/${outer.n}`] }), pw({ addresses: [`${inner.ip}/${inner.n}`] })]);
          expect(found.length, `${outer.ip}/${outer.n} ⊇ ${inner.ip}/${inner.n}`).to.equal(expected ? 1 : 0);
        }),
        RUNS,
      );
      expect(contained).to.be.greaterThan(RUNS.numRuns / 10);
    });

    it("lists at most MAX_OVERLAP_TARGETS targets and counts them all", () => {
      const users = Array.from({ length: 32 }, (_, i) => `u${i}`);
      const databases = Array.from({ length: 32 }, (_, i) => `d${i}`);
      const [overlap] = findPasswordRuleOverlaps([cert(), pw({ users, databases })]);
      expect(overlap).to.include({ kind: "PasswordRuleUnreachable", complete: true, targetCount: 1024 });
      expect(overlap!.targets).to.have.length(MAX_OVERLAP_TARGETS);
    });

    it("lists at most five targets and counts the rest", () => {
      const users = ["u1", "u2", "u3", "u4", "u5", "u6", "u7"];
      const [overlap] = findPasswordRuleOverlaps([pw({ users }), cert({ users, addresses: ["10.42.0.0/16"] })]);
      expect(overlap!.targets).to.have.length(7);
      expect(overlap!.message).to.contain("user u5 on database keycloak_db from 10.42.0.0/16 and 2 more:");
    });
  });

  describe("upsertHba and auditHba", () => {
    const INITDB = "# comment\nlocal   all all trust\nhost    all all 127.0.0.1/32 trust\nhost replication all ::1/128 trust";

    it("puts the block first and leaves the rest byte for byte", () => {
      const out = upsertHba(INITDB, [RULE]);
      expect(typeof out).to.equal("string");
      const s = out as string;
      expect(s.startsWith(`${BEGIN_MARKER}\nhostssl castdb,all`)).to.equal(true);
      expect(s.endsWith(`${END_MARKER}\n${INITDB}`)).to.equal(true);
      expect(auditHba(s)).to.deep.equal([]);
    });

    it("passes a render error through", () => {
      const out = upsertHba(INITDB, [{ ...RULE, users: ['"'] }]);
      expect(typeof out !== "string" && out.reason).to.equal("InvalidHbaRule");
    });

    it("reports non-local records before the block, including continued records and includes", () => {
      const text = `# header\nlocal all all peer\nhost all all 0.0.0.0/0 trust\nhostnossl all \\\n  all ::/0 md5\n  include_dir hba.d\nhostssl all all 0.0.0.0/0 trust \\\n${BEGIN_MARKER}\nx\n${END_MARKER}\nhost all all 0.0.0.0/0 trust\n`;
      const f = auditHba(text);
      expect(f.map((x) => [x.reason, x.line])).to.deep.equal([
        ["HbaLineBeforeManagedBlock", 3],
        ["HbaLineBeforeManagedBlock", 4],
        ["HbaLineBeforeManagedBlock", 6],
        ["HbaLineBeforeManagedBlock", 7],
      ]);
      expect(f[1]?.message).to.contain("hostnossl all   all ::/0 md5");
    });

    it("reports a missing or corrupt block", () => {
      expect(auditHba(INITDB).map((f) => f.reason)).to.deep.equal(["ManagedBlockMissing"]);
      expect(auditHba(`${END_MARKER}\n`).map((f) => f.reason)).to.deep.equal(["ManagedBlockCorrupt"]);
    });

    it("after upsert the block is first and nothing precedes it, for any admin file (property)", () => {
      fc.assert(
        fc.property(arbBlockFreeText, (x) => {
          const out = upsertHba(x, [RULE]);
          expect(typeof out).to.equal("string");
          const scan = findManagedBlocks(out as string);
          expect(scan.ok && scan.block?.start).to.equal(0);
          expect(auditHba(out as string)).to.deep.equal([]);
        }),
        RUNS,
      );
    });
  });
});
