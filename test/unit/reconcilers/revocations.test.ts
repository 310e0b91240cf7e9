import * as k8s from "@kubernetes/client-node";
import { expect } from "chai";
import { resolveSecureDatabase } from "../../../src/api/defaults";
import { managedLabels, type Revocation } from "../../../src/api/types";
import { desiredSecret } from "../../../src/kube/secrets";
import { RestClient } from "../../../src/kube/rest";
import { RESOURCES } from "../../../src/kube/resources";
import { silentLogger } from "../../../src/log";
import { generateCA, issueClientCertificate, type IssuedCertificate } from "../../../src/pki";
import type { OperatorContext, SecretCacheObject } from "../../../src/reconcilers/context";
import { issuedEntry, type Ledger, type LedgerEntry } from "../../../src/reconcilers/issued-ledger";
import { clientLeaves, planRevocations } from "../../../src/reconcilers/secure-database/revocations";
import { Informer } from "../../../src/runtime/informer";
import { sdb } from "../api/builders";

/** A context whose Secret cache is filled by hand (the informer is never started: no API server involved). */
function contextWith(secrets: SecretCacheObject[]): OperatorContext {
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: "c", server: "https://127.0.0.1:1" }], users: [{ name: "u" }], contexts: [{ name: "x", cluster: "c", user: "u" }], currentContext: "x" });
  const secretCache = new Informer<SecretCacheObject>(new RestClient(kc), { type: RESOURCES.Secret }, silentLogger());
  let rv = 1;
  for (const s of secrets) secretCache.observe({ ...s, metadata: { ...s.metadata, resourceVersion: String(rv++) } });
  return { cache: { secrets: secretCache } } as unknown as OperatorContext;
}

function clientSecret(namespace: string, connection: string, issued: IssuedCertificate): SecretCacheObject {
  return desiredSecret({
    name: `${connection}-client-tls`,
    namespace,
    type: "kubernetes.io/tls",
    labels: managedLabels("ImagingConnection", connection),
    data: { "tls.crt": Buffer.from(issued.chainPem), "tls.key": Buffer.from(issued.keyPkcs8Pem) },
  }) as SecretCacheObject;
}

describe("planRevocations: what the CRL lists", () => {
  let app: IssuedCertificate;
  let other: IssuedCertificate;

  before(async () => {
    const ca = await generateCA({ commonName: "Revocation CA", duration: 24 * 3600_000, now: new Date() });
    app = await issueClientCertificate(ca, { user: "app", duration: 3600_000, now: new Date() });
    other = await issueClientCertificate(ca, { user: "other", duration: 3600_000, now: new Date() });
  });

  const NOW = new Date();
  const spec = (revocations: Revocation[]) => resolveSecureDatabase(sdb({ trust: { revocations } }));
  // The live Secrets alone (no ledger): certificates issued before the ledger existed.
  const plan = (revocations: Revocation[], ctx: OperatorContext) =>
    planRevocations({ spec: spec(revocations), ledger: new Map(), leaves: clientLeaves(ctx), listedSince: new Map() }, NOW);
  const entriesOf = (r: ReturnType<typeof plan>) => r.entries.map(({ serialNumber, reason, source }) => ({ serialNumber, reason, source }));

  it("lists serials as given (normalised), deduplicated, sorted", () => {
    const ctx = contextWith([]);
    const r = plan([{ serialNumber: "0B:0A" }, { serialNumber: "0b0a", reason: "superseded" }, { serialNumber: "01" }], ctx);
    expect(entriesOf(r)).to.deep.equal([
      { serialNumber: "01", reason: "unspecified", source: "serial" },
      { serialNumber: "0b0a", reason: "unspecified", source: "serial" },
    ]);
    expect(r.unresolved).to.deep.equal([]);
  });

  it("resolves an ImagingConnection to the serial of the certificate in its Secret, in its namespace only", () => {
    const ctx = contextWith([clientSecret("cast", "other", other), clientSecret("elsewhere", "other", app)]);
    const r = plan([{ connectionName: "other", reason: "keyCompromise" }], ctx);
    expect(entriesOf(r)).to.deep.equal([{ serialNumber: other.serialNumber, reason: "keyCompromise", source: "ImagingConnection cast/other" }]);
    // Recorded in the ledger with what the Secret tells of it, so it stays listed once the Secret is gone.
    expect(r.ledgerChanges.get(other.serialNumber)).to.include({ namespace: "cast", connection: "other", user: "other", reason: "keyCompromise" });
  });

  it("resolves a SHA-256 fingerprint (any spelling) to the serial of the certificate that has it", () => {
    const ctx = contextWith([clientSecret("cast", "app", app), clientSecret("cast", "other", other)]);
    const colons = app.fingerprintSha256.toUpperCase().match(/../g)!.join(":");
    const r = plan([{ sha256Fingerprint: colons, reason: "cessationOfOperation" }], ctx);
    expect(r.entries.map((e) => [e.serialNumber, e.reason])).to.deep.equal([[app.serialNumber, "cessationOfOperation"]]);
    expect(r.entries[0]!.source).to.match(/^fingerprint [0-9a-f]{16}…$/);
  });

  it("reports what designates no certificate it can see, and lists nothing for it", () => {
    const ctx = contextWith([clientSecret("cast", "app", app)]);
    const r = plan([{ connectionName: "ghost" }, { sha256Fingerprint: "ab".repeat(32) }], ctx);
    expect(r.entries).to.deep.equal([]);
    expect(r.unresolved).to.deep.equal([
      "ImagingConnection cast/ghost has no certificate the operator can see",
      `no certificate the operator issued has SHA-256 fingerprint ${"ab".repeat(32)}: list it by serialNumber to put it in the CRL`,
    ]);
  });

  it("ignores Secrets that are not ImagingConnection client Secrets", () => {
    const server = { ...clientSecret("cast", "other", other), metadata: { ...clientSecret("cast", "other", other).metadata, name: "db-server-tls", labels: managedLabels("SecureDatabase", "other") } } as SecretCacheObject;
    const r = plan([{ connectionName: "other" }], contextWith([server]));
    expect(r.entries).to.deep.equal([]);
  });
});

describe("planRevocations through the ledger: revocations that last", () => {
  const NOW = new Date("2026-11-23T12:00:00Z");
  const HOUR = 3600_000;
  const iso = (offsetMs: number) => new Date(NOW.getTime() + offsetMs).toISOString();
  const spec = (revocations: Revocation[]) => resolveSecureDatabase(sdb({ trust: { revocations } }));
  const entry = (connection: string, fingerprint: string, notAfterMs: number, extra: LedgerEntry = {}): LedgerEntry => ({
    namespace: "cast",
    connection,
    user: connection,
    sha256Fingerprint: fingerprint,
    issuedAt: iso(-10 * HOUR),
    notAfter: iso(notAfterMs),
    ...extra,
  });
  const plan = (revocations: Revocation[], ledger: Ledger, listedSince = new Map<string, Date>()) =>
    planRevocations({ spec: spec(revocations), ledger, leaves: [], listedSince }, NOW);

  it("a connection: every certificate it was issued that has not expired (renewals too), with no Secret left", () => {
    const ledger = new Map([
      ["0a", entry("app", "aa".repeat(32), 24 * HOUR)],
      ["0b", entry("app", "bb".repeat(32), 48 * HOUR)],
      ["0c", entry("app", "cc".repeat(32), -2 * HOUR)],
      ["0d", entry("other", "dd".repeat(32), 48 * HOUR)],
    ]);
    const r = plan([{ connectionName: "app", reason: "keyCompromise" }], ledger);
    expect(r.entries.map((e) => [e.serialNumber, e.reason, e.revocationDate.toISOString(), e.source])).to.deep.equal([
      ["0a", "keyCompromise", NOW.toISOString(), "ImagingConnection cast/app"],
      ["0b", "keyCompromise", NOW.toISOString(), "ImagingConnection cast/app"],
    ]);
    expect(r.unresolved).to.deep.equal([]);
    // The first revocation date goes into the ledger before any CRL carries it; the expired entry goes.
    expect([...r.ledgerChanges]).to.deep.equal([
      ["0a", { ...ledger.get("0a"), revocationDate: NOW.toISOString(), reason: "keyCompromise" }],
      ["0b", { ...ledger.get("0b"), revocationDate: NOW.toISOString(), reason: "keyCompromise" }],
      ["0c", null],
    ]);
  });

  it("keeps the date recorded first, whatever pass signs the CRL; nothing to write once recorded", () => {
    const since = iso(-5 * 24 * HOUR);
    const ledger = new Map([["0a", entry("app", "aa".repeat(32), 24 * HOUR, { revocationDate: since, reason: "keyCompromise" })]]);
    const r = plan([{ connectionName: "app", reason: "keyCompromise" }], ledger);
    expect(r.entries.map((e) => e.revocationDate.toISOString())).to.deep.equal([since]);
    expect(r.ledgerChanges.size).to.equal(0);
  });

  it("a serial once revoked stays listed after its entry is removed, until it expires (and goes from the ledger then)", () => {
    const revoked = (notAfterMs: number) => entry("app", "aa".repeat(32), notAfterMs, { revocationDate: iso(-HOUR), reason: "cessationOfOperation" });
    const kept = plan([], new Map([["0a", revoked(HOUR)]]));
    expect(kept.entries.map((e) => [e.serialNumber, e.reason, e.source])).to.deep.equal([["0a", "cessationOfOperation", "ImagingConnection cast/app"]]);
    // Within the grace after notAfter (a server clock behind the operator's) it stays; after, it goes.
    expect(plan([], new Map([["0a", revoked(-HOUR / 2)]])).entries).to.have.length(1);
    const gone = plan([], new Map([["0a", revoked(-2 * HOUR)]]));
    expect(gone.entries).to.deep.equal([]);
    expect([...gone.ledgerChanges]).to.deep.equal([["0a", null]]);
  });

  it("a fingerprint: resolved through the ledger, the Secret no longer needed", () => {
    const ledger = new Map([["0a", entry("app", "ab".repeat(32), 24 * HOUR)]]);
    const r = plan([{ sha256Fingerprint: "AB:".repeat(31) + "AB", reason: "superseded" }], ledger);
    expect(r.entries.map((e) => [e.serialNumber, e.reason])).to.deep.equal([["0a", "superseded"]]);
    expect(r.ledgerChanges.get("0a")).to.include({ reason: "superseded", revocationDate: NOW.toISOString() });
  });

  it("a serial the operator did not issue: its date is kept while the spec lists it, then the record goes", () => {
    const first = plan([{ serialNumber: "FF:01" }], new Map());
    expect([...first.ledgerChanges]).to.deep.equal([["ff01", { revocationDate: NOW.toISOString(), reason: "unspecified" }]]);
    const recorded = new Map([["ff01", { revocationDate: iso(-HOUR), reason: "unspecified" as const }]]);
    expect(plan([{ serialNumber: "ff01" }], recorded).entries.map((e) => e.revocationDate.toISOString())).to.deep.equal([iso(-HOUR)]);
    const removed = plan([], recorded);
    expect(removed.entries).to.deep.equal([]);
    expect([...removed.ledgerChanges]).to.deep.equal([["ff01", null]]);
  });

  it("a date the current CRL already carries is kept when the ledger has none (a ledger lost, or older CRLs)", () => {
    const listed = new Date(NOW.getTime() - 3 * 24 * HOUR);
    const r = plan([{ serialNumber: "0a" }], new Map(), new Map([["0a", listed]]));
    expect(r.entries[0]!.revocationDate).to.deep.equal(listed);
    expect(r.ledgerChanges.get("0a")).to.deep.equal({ revocationDate: listed.toISOString(), reason: "unspecified" });
  });

  it("a connection the ledger has nothing of, nor any Secret: unresolved, as before", () => {
    const r = plan([{ connectionName: "ghost" }], new Map([["0a", entry("app", "aa".repeat(32), HOUR)]]));
    expect(r.entries).to.deep.equal([]);
    expect(r.unresolved).to.deep.equal(["ImagingConnection cast/ghost has no certificate the operator can see"]);
  });

  it("issuedEntry records who it was issued to, its fingerprint and expiry", async () => {
    const ca = await generateCA({ commonName: "Ledger CA", duration: 24 * 3600_000, now: NOW });
    const issued = await issueClientCertificate(ca, { user: "app", duration: 3600_000, now: NOW });
    expect(issuedEntry({ namespace: "cast", name: "analysis" }, issued.facts, NOW)).to.deep.equal({
      namespace: "cast",
      connection: "analysis",
      user: "app",
      sha256Fingerprint: issued.fingerprintSha256,
      issuedAt: NOW.toISOString(),
      notAfter: issued.notAfter.toISOString(),
    });
  });
});
