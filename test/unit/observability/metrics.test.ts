import { expect } from "chai";
import { imagingConnectionStatus, secureDatabaseStatus } from "../../../src/api/decode-status";
import { CA_ROTATION_PHASES, type CARotationPhase, type ImagingConnection, type SecureDatabase } from "../../../src/api/types";
import { OperatorMetrics } from "../../../src/observability/metrics";
import { TemporaryError, TerminalError } from "../../../src/runtime/errors";
import { imc, sdb } from "../api/builders";

describe("OperatorMetrics", () => {
  it("counts failed reconciles by kind and by the failure's reason", async () => {
    const metrics = new OperatorMetrics(() => []);
    const failing = (err: Error) => metrics.instrument("SecureDatabase", async () => Promise.reject(err))("cast/db");
    const errors = [
      new TemporaryError("Unreachable", "down"),
      new TemporaryError("Unreachable", "still down"),
      new TerminalError("InvalidSpec", "bad"),
      new Error("409 Conflict"),
    ];
    for (const err of errors) await failing(err).then(
      () => expect.fail("the error must reach the queue"),
      (e: unknown) => expect(e).to.equal(err),
    );
    await metrics.instrument("SecureDatabase", async () => ({}))("cast/db");
    const counted = await metrics.registry.getSingleMetric("imaging_mtls_reconcile_errors_total")!.get();
    const series = counted.values.map((v) => [v.labels.kind, v.labels.reason, v.value]);
    expect(series).to.have.deep.members([
      ["SecureDatabase", "Unreachable", 2],
      ["SecureDatabase", "InvalidSpec", 1],
      ["SecureDatabase", "ReconcileError", 1],
    ]);
    const runs = await metrics.registry.getSingleMetric("imaging_mtls_reconcile_total")!.get();
    expect(runs.values.map((v) => [v.labels.kind, v.value])).to.deep.equal([["SecureDatabase", 5]]);
  });
});

describe("OperatorMetrics: renewals, overdue renewals and the CA-rotation phase, from status", () => {
  const T0 = Date.parse("2026-05-01T12:00:00Z");
  const iso = (ms: number): string => new Date(ms).toISOString();
  const DAY = 86_400_000;

  /** A certificate's status as the operator writes it: 90 days, renewed when a third is left. */
  const certificate = (serialNumber: string, issuedAt: number) => ({
    serialNumber,
    notBefore: iso(issuedAt),
    notAfter: iso(issuedAt + 90 * DAY),
    renewalTime: iso(issuedAt + 60 * DAY),
  });
  // Status as the decoders return it (strict: a field they do not know fails the test).
  const database = (raw: Record<string, unknown> | undefined): SecureDatabase => {
    const db = sdb();
    if (raw) db.status = secureDatabaseStatus.decode(raw, "status", { strict: true });
    return db;
  };
  const connection = (raw: Record<string, unknown> | undefined, name = "analysis"): ImagingConnection => {
    const conn = imc({}, name);
    if (raw) conn.status = imagingConnectionStatus.decode(raw, "status", { strict: true });
    return conn;
  };

  const series = async (metrics: OperatorMetrics, name: string): Promise<[string, number][]> =>
    ((await metrics.registry.getSingleMetric(name)?.get())?.values ?? []).map((v) => [Object.values(v.labels).join(" "), v.value]);
  const renewals = (metrics: OperatorMetrics) => series(metrics, "imaging_mtls_certificate_renewals_total");
  const overdue = (metrics: OperatorMetrics) => series(metrics, "imaging_mtls_certificate_renewal_overdue");
  const phases = (metrics: OperatorMetrics) => series(metrics, "imaging_mtls_ca_rotation_phase");
  const current = async (metrics: OperatorMetrics): Promise<string[]> => (await phases(metrics)).filter(([, v]) => v === 1).map(([l]) => l);

  it("exports one phase series per phase the API defines, 1 for the current one, as a rotation walks its phases", async () => {
    const metrics = new OperatorMetrics(() => []);
    metrics.observeSecureDatabase(database(undefined));
    expect(await phases(metrics), "no status yet: no phase").to.deep.equal([]);

    const oldCA = { serialNumber: "0A", notAfter: iso(T0 + 3650 * DAY) };
    metrics.observeSecureDatabase(database({ ca: oldCA }));
    expect(await phases(metrics), "a CA and no caRotation: never rotated").to.deep.equal(
      CA_ROTATION_PHASES.map((p) => [`cast imaging-db ${p}`, p === "Idle" ? 1 : 0]),
    );

    const rotation = { startedTime: iso(T0), oldCASerial: "0A", newCASerial: "0B" };
    const walk: [CARotationPhase, string][] = [
      ["Overlap", "0A"],
      ["Reissuing", "0B"],
      ["Finishing", "0B"],
      ["Idle", "0B"],
    ];
    for (const [phase, caSerial] of walk) {
      metrics.observeSecureDatabase(database({ ca: { ...oldCA, serialNumber: caSerial }, caRotation: { ...rotation, phase, phaseTime: iso(T0) } }));
      expect(await current(metrics), phase).to.deep.equal([`cast imaging-db ${phase}`]);
      expect(await phases(metrics)).to.have.length(CA_ROTATION_PHASES.length);
    }
    // The new CA signs from Reissuing on: one CA renewal.
    expect(await renewals(metrics)).to.deep.include(["SecureDatabase ca", 1]);
  });

  it("counts a serial replacing a known one once, never the first sight of a certificate nor the same serial again", async () => {
    const metrics = new OperatorMetrics(() => []);
    const client = async (): Promise<number | undefined> => (await renewals(metrics)).find(([l]) => l === "ImagingConnection client")?.[1];
    expect(await renewals(metrics), "every series from 0").to.have.deep.members([
      ["SecureDatabase ca", 0],
      ["SecureDatabase server", 0],
      ["ImagingConnection client", 0],
    ]);

    // A new connection: no certificate, then its first issuance.
    metrics.observeImagingConnection(connection(undefined, "fresh"));
    metrics.observeImagingConnection(connection({ certificate: certificate("01", T0) }, "fresh"));
    // The first sight after a start of a connection issued long ago.
    metrics.observeImagingConnection(connection({ certificate: certificate("A1", T0 - 70 * DAY) }));
    metrics.observeImagingConnection(connection({ certificate: certificate("A1", T0 - 70 * DAY), verification: { lastSuccessTime: iso(T0) } }));
    expect(await client()).to.equal(0);

    metrics.observeImagingConnection(connection({ certificate: certificate("A2", T0) }));
    metrics.observeImagingConnection(connection({ certificate: certificate("A2", T0) }));
    expect(await client()).to.equal(1);
    // A status without the certificate (an invalid spec wipes it), then the same one back: no renewal.
    metrics.observeImagingConnection(connection({}));
    metrics.observeImagingConnection(connection({ certificate: certificate("A2", T0) }));
    expect(await client()).to.equal(1);
    metrics.observeImagingConnection(connection({ certificate: certificate("A3", T0 + DAY) }));
    expect(await client()).to.equal(2);
  });

  it("turns overdue at renewalTime without a new status, and back once status shows the renewed certificate", async () => {
    let now = T0;
    const metrics = new OperatorMetrics(() => [], () => new Date(now));
    const issued = certificate("0C", T0 - 59 * DAY);
    const renewalAt = Date.parse(issued.renewalTime);
    metrics.observeSecureDatabase(database({ ca: { serialNumber: "0A", notAfter: iso(T0 + 3650 * DAY) }, serverCertificate: issued }));
    metrics.observeImagingConnection(connection({ certificate: { serialNumber: "0D", notAfter: iso(T0 + DAY) } }));
    // The CA (no renewalTime in its status) and a certificate without one have no series.
    expect(await overdue(metrics)).to.deep.equal([["SecureDatabase cast imaging-db server", 0]]);

    now = renewalAt - 1;
    expect(await overdue(metrics)).to.deep.equal([["SecureDatabase cast imaging-db server", 0]]);
    now = renewalAt;
    expect(await overdue(metrics)).to.deep.equal([["SecureDatabase cast imaging-db server", 1]]);
    now = renewalAt + DAY;
    metrics.observeSecureDatabase(database({ ca: { serialNumber: "0A" }, serverCertificate: issued }));
    expect(await overdue(metrics), "still the same certificate").to.deep.equal([["SecureDatabase cast imaging-db server", 1]]);

    metrics.observeSecureDatabase(database({ ca: { serialNumber: "0A" }, serverCertificate: certificate("0E", now) }));
    expect(await overdue(metrics)).to.deep.equal([["SecureDatabase cast imaging-db server", 0]]);
    expect(await renewals(metrics)).to.deep.include(["SecureDatabase server", 1]);
  });

  it("forgets a deleted object's series, and only that kind's: the phase of a database survives a connection of its name", async () => {
    let now = T0;
    const metrics = new OperatorMetrics(() => [], () => new Date(now));
    const status = { ca: { serialNumber: "0A", notAfter: iso(T0 + 3650 * DAY) }, serverCertificate: certificate("0C", T0), caRotation: { phase: "Overlap" } };
    metrics.observeSecureDatabase(database(status));
    metrics.observeImagingConnection(connection({ certificate: certificate("0D", T0) }, "imaging-db"));
    now = T0 + 61 * DAY;
    expect(await overdue(metrics)).to.have.length(2);

    metrics.forget("ImagingConnection", "cast", "imaging-db");
    expect(await overdue(metrics)).to.deep.equal([["SecureDatabase cast imaging-db server", 1]]);
    expect(await current(metrics)).to.deep.equal(["cast imaging-db Overlap"]);

    metrics.forget("SecureDatabase", "cast", "imaging-db");
    for (const name of ["imaging_mtls_ca_rotation_phase", "imaging_mtls_certificate_renewal_overdue", "imaging_mtls_certificate_expiry_timestamp_seconds"]) {
      expect(await series(metrics, name), name).to.deep.equal([]);
    }
    // Created again under the same name: a first sight again, not a renewal.
    metrics.observeSecureDatabase(database({ ...status, serverCertificate: certificate("0F", now) }));
    expect((await renewals(metrics)).every(([, v]) => v === 0)).to.equal(true);
  });
});
