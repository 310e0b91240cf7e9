import { expect } from "chai";
import {
  applyChanges,
  encodeEntry,
  EXPIRY_GRACE_MS,
  isExpired,
  ledgerPatch,
  parseLedger,
  planConnectionRevocation,
  planIssued,
  revokedSerials,
  type LedgerEntry,
} from "../../../src/reconcilers/issued-ledger";
import { revokedMessage, revokesOnDelete } from "../../../src/reconcilers/imaging-connection/revoke-issued";
import { database } from "./secure-database/fixtures";

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

describe("the ledger of issued certificates (ConfigMap <sdb>-issued)", () => {
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
