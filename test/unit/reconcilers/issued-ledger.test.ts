import { expect } from "chai";
import {
  applyChanges,
  encodeEntry,
  EXPIRY_GRACE_MS,
  isExpired,
  isLedgerConfigMap,
  ledgerPatch,
  parseLedger,
  planConnectionRevocation,
  placeChanges,
  planIssued,
  readLedger,
  revokedInLedgerConfigMap,
  revokedSerials,
  shardOf,
  type LedgerEntry,
} from "../../../src/reconcilers/issued-ledger";
import { revokedMessage, revokesOnDelete } from "../../../src/reconcilers/imaging-connection/revoke-issued";
import { database } from "./secure-database/fixtures";
import type { OperatorContext } from "../../../src/reconcilers/context";

const NOW = new Date("2026-11-23T12:00:00Z");
const HOUR = 3600_000;
const iso = (offsetMs: number) => new Date(NOW.getTime() + offsetMs).toISOString();
const issued = (connection: string, notAfterMs: number, extra: LedgerEntry = {}): LedgerEntry => ({
  namespace: "cast",
  connection,
  user: connection,
  sha256Fingerprint: "ab".repeat(32),
  issuedAt: iso(-HOUR),
  notAfter: iso(notAfterMs),
  ...extra,
});

describe("the ledger's shards (ConfigMaps <sdb>-issued-0 … -f)", () => {
  const cm = (name: string, entries: Record<string, LedgerEntry>, owner = "SecureDatabase.db") => ({
    metadata: { name, namespace: "cast", labels: { "mtls.imaging.dev/owner": owner } },
    data: Object.fromEntries(Object.entries(entries).map(([serial, e]) => [serial, encodeEntry(e)])),
  });

  it("a connection's entries all go to one shard, the same at every renewal; connections spread over the 16", () => {
    const shards = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const entry = issued(`c-${i}`, HOUR);
      expect(shardOf("0a", entry)).to.equal(shardOf("ff01", entry));
      shards.add(shardOf("0a", entry));
    }
    expect(shards.size).to.equal(16);
    // An entry of no connection (a serial revoked by number) goes by its serial.
    expect(shardOf("0a", {})).to.be.within(0, 15);
  });

  it("a change goes where its serial is (an earlier operator's <sdb>-issued included), a new serial to its connection's shard", () => {
    const entry = issued("app", HOUR);
    const legacy = cm("db-issued", { "01": entry });
    const parts = new Map<string, ReturnType<typeof cm> | undefined>([["db-issued-3", undefined], ["db-issued", legacy]]);
    const placed = placeChanges(parts, "db", new Map<string, LedgerEntry | null>([["01", { ...entry, revocationDate: iso(0) }], ["02", entry]]));
    expect([...placed.keys()].sort()).to.deep.equal(["db-issued", `db-issued-${shardOf("02", entry).toString(16)}`].sort());
    expect([...placed.get("db-issued")!.keys()]).to.deep.equal(["01"]);
  });

  it("knows a ledger ConfigMap by its owner's name, and what its owner's CRL depends on (revoked serials only)", () => {
    expect(isLedgerConfigMap(cm("db-issued-a", {}))).to.equal(true);
    expect(isLedgerConfigMap(cm("db-issued", {}))).to.equal(true);
    expect(isLedgerConfigMap(cm("db-issued-a", {}, "SecureDatabase.other"))).to.equal(false);
    expect(isLedgerConfigMap(cm("pg-config", {}))).to.equal(false);
    const before = cm("db-issued-a", { "01": issued("app", HOUR) });
    const issuedMore = cm("db-issued-a", { "01": issued("app", HOUR), "02": issued("web", HOUR) });
    const revoked = cm("db-issued-a", { "01": issued("app", HOUR, { revocationDate: iso(0), reason: "keyCompromise" }), "02": issued("web", HOUR) });
    expect(revokedInLedgerConfigMap(issuedMore)).to.equal(revokedInLedgerConfigMap(before));
    expect(revokedInLedgerConfigMap(revoked)).to.not.equal(revokedInLedgerConfigMap(issuedMore));
    expect(revokedInLedgerConfigMap(undefined)).to.equal("");
  });
});

describe("a ledger read through its ConfigMaps (the cache's versions of each)", () => {
  type Cm = { metadata: { name: string; namespace: string; resourceVersion: string }; data: Record<string, string> };
  const version = (name: string, rv: number, data: Record<string, string>): Cm => ({ metadata: { name, namespace: "ns", resourceVersion: String(rv) }, data });
  const read = (...cms: Cm[]) => {
    const byName = new Map(cms.map((c) => [c.metadata.name, c]));
    const ctx = { cache: { configMaps: { get: (_ns: string, name: string) => byName.get(name) } } } as unknown as OperatorContext;
    return readLedger(ctx, "ns", "db");
  };

  it("looks a serial up in every shard and the earlier operator's ConfigMap, which wins a serial both hold; iterates their union", () => {
    const app = issued("app", HOUR);
    const ledger = read(version("db-issued-3", 1, { "0a": encodeEntry(app) }), version("db-issued", 1, { "0b": encodeEntry(issued("web", HOUR)), "0a": encodeEntry({ ...app, reason: "superseded", revocationDate: iso(0) }) }));
    expect(ledger.has("0a")).to.equal(true);
    expect(ledger.get("0a")?.revocationDate).to.equal(iso(0));
    expect(ledger.has("0c")).to.equal(false);
    expect(ledger.get("0c")).to.equal(undefined);
    expect(ledger.size).to.equal(2);
    expect([...ledger.keys()].sort()).to.deep.equal(["0a", "0b"]);
    expect(revokedSerials(ledger, NOW)).to.deep.equal(["0a"]);
  });

  it("a new version of a shard is read as it is: changed entries, new ones, dropped ones, and a broken one mended", () => {
    const [a, b, c] = [issued("a", HOUR), issued("b", HOUR), issued("c", HOUR)];
    const v1 = read(version("db-issued-5", 1, { "01": encodeEntry(a), "02": encodeEntry(b), "03": "{broken" }));
    expect([...v1.keys()].sort()).to.deep.equal(["01", "02"]);
    const revokedA = { ...a, revocationDate: iso(0), reason: "keyCompromise" as const };
    const v2 = read(version("db-issued-5", 2, { "01": encodeEntry(revokedA), "03": encodeEntry(c), "04": encodeEntry(b) }));
    expect(Object.fromEntries(v2)).to.deep.equal({ "01": revokedA, "03": c, "04": b });
    // The older version, read again, is still what it held.
    const again = read(version("db-issued-5", 1, { "01": encodeEntry(a), "02": encodeEntry(b), "03": "{broken" }));
    expect(again.get("01")).to.deep.equal(a);
  });
});

describe("the ledger of issued certificates (one ConfigMap's entries)", () => {
  it("stores one JSON entry per serial, fields in a fixed order, and reads it back", () => {
    const entry = issued("app", HOUR, { reason: "keyCompromise", revocationDate: iso(0) });
    const shuffled = Object.fromEntries(Object.entries(entry).reverse()) as LedgerEntry;
    expect(encodeEntry(shuffled)).to.equal(encodeEntry(entry));
    expect(JSON.parse(encodeEntry(entry))).to.deep.equal(entry);
    expect(Object.keys(JSON.parse(encodeEntry(entry)) as object)).to.deep.equal([
      "namespace",
      "connection",
      "user",
      "sha256Fingerprint",
      "issuedAt",
      "notAfter",
      "revocationDate",
      "reason",
    ]);
    expect(parseLedger({ "0a": encodeEntry(entry) })).to.deep.equal(new Map([["0a", entry]]));
  });

  it("reads serial keys in canonical form, and leaves out what a hand edit broke (never guessed at)", () => {
    const ledger = parseLedger({
      "00FF": encodeEntry(issued("app", HOUR)),
      "not-hex": encodeEntry(issued("x", HOUR)),
      "0b": "{broken",
      "0c": "[1,2]",
      "0d": JSON.stringify({ connection: "app", notAfter: 5, extra: "dropped" }),
    });
    expect([...ledger.keys()]).to.deep.equal(["ff", "0d"]);
    expect(ledger.get("0d")).to.deep.equal({ connection: "app" });
    expect(parseLedger(undefined).size).to.equal(0);
  });

  it("an entry expires at notAfter plus the grace; one without notAfter never does", () => {
    expect(isExpired(issued("app", 0), NOW)).to.equal(false);
    expect(isExpired(issued("app", -EXPIRY_GRACE_MS + 1), NOW)).to.equal(false);
    expect(isExpired(issued("app", -EXPIRY_GRACE_MS), NOW)).to.equal(true);
    expect(isExpired({ revocationDate: iso(-1000 * HOUR) }, NOW)).to.equal(false);
  });

  it("records a certificate once: a serial already there keeps its entry and revocation date", () => {
    const revoked = issued("app", HOUR, { revocationDate: iso(-HOUR), reason: "keyCompromise" });
    expect([...planIssued(new Map(), "0A", issued("app", HOUR))]).to.deep.equal([["0a", issued("app", HOUR)]]);
    expect(planIssued(new Map([["0a", revoked]]), "0a", issued("app", HOUR)).size).to.equal(0);
  });

  it("a deleted connection: its live certificates revoked now; revoked ones keep their date; expired and others' untouched", () => {
    const ledger = new Map([
      ["01", issued("app", 24 * HOUR)],
      ["02", issued("app", 48 * HOUR, { revocationDate: iso(-HOUR), reason: "keyCompromise" })],
      ["03", issued("app", -2 * HOUR)],
      ["04", issued("other", 24 * HOUR)],
      ["05", issued("app", 24 * HOUR, { namespace: "elsewhere" })],
    ]);
    const changes = planConnectionRevocation(ledger, { namespace: "cast", name: "app" }, "cessationOfOperation", NOW);
    expect([...changes]).to.deep.equal([["01", { ...issued("app", 24 * HOUR), revocationDate: NOW.toISOString(), reason: "cessationOfOperation" }]]);
    // A second pass (the finalizer retried, the operator restarted) changes nothing.
    expect(planConnectionRevocation(applyChanges(ledger, changes), { namespace: "cast", name: "app" }, "cessationOfOperation", NOW).size).to.equal(0);
    expect(revokedSerials(applyChanges(ledger, changes), NOW)).to.deep.equal(["01", "02"]);
    expect(revokedSerials(applyChanges(ledger, changes), NOW, { namespace: "cast", name: "other" })).to.deep.equal([]);
    // The date as a CRL carries it (whole seconds), so ledger and CRL say the same.
    const later = new Date(NOW.getTime() + 1678);
    expect(planConnectionRevocation(ledger, { namespace: "cast", name: "app" }, "affiliationChanged", later).get("01")?.revocationDate).to.equal(iso(1000));
  });

  it("applies and patches only the changed keys (null drops one), guarded by the resourceVersion read", () => {
    const ledger = new Map([
      ["01", issued("app", HOUR)],
      ["02", issued("old", -2 * HOUR)],
    ]);
    const changes = new Map<string, LedgerEntry | null>([
      ["02", null],
      ["03", issued("new", HOUR)],
    ]);
    expect([...applyChanges(ledger, changes).keys()]).to.deep.equal(["01", "03"]);
    expect(ledger.size).to.equal(2);
    // Dropping an entry it read: guarded. Only a new serial: no precondition (it conflicts with nobody).
    expect(ledgerPatch(changes, "42", ledger)).to.deep.equal({ metadata: { resourceVersion: "42" }, data: { "02": null, "03": encodeEntry(issued("new", HOUR)) } });
    const onlyNew = new Map<string, LedgerEntry | null>([["03", issued("new", HOUR)]]);
    expect(ledgerPatch(onlyNew, "42", ledger)).to.deep.equal({ data: { "03": encodeEntry(issued("new", HOUR)) } });
  });

  it("revokeOnDelete: on unless the database says false; the event names connection, reason and serials", () => {
    expect(revokesOnDelete(database())).to.equal(true);
    expect(revokesOnDelete(database({ trust: { revokeOnDelete: true } }))).to.equal(true);
    expect(revokesOnDelete(database({ trust: { revokeOnDelete: false } }))).to.equal(false);
    expect(revokedMessage("cast/app", ["0a", "0b"], "cessationOfOperation", "the connection was deleted")).to.equal(
      "revoked 2 certificate(s) of ImagingConnection cast/app (the connection was deleted), reason cessationOfOperation: 0a, 0b",
    );
  });
});
