/**
 * Renewal wave (issue 8, benchmark item 5): M client certificates reach their renewal time at the same instant W;
 * all must be renewed within 60 s, without a request storm on the API server.
 *
 * How the wave is made, exactly and without re-issuing anything early: each connection's certificate was issued
 * with a whole-second notAfter; its `spec.certificate.renewBefore` is patched to notAfter − W (whole seconds, in
 * the CRDs' Go duration form), so the operator's own renewal time (notAfter − renewBefore) is W for every one of
 * them, and the reconciler requeues itself for W. W lies SCALE_WAVE_LEAD_S (60) seconds after a generous patching
 * budget (30 ms per connection), so the last patch lands roughly 60–90 s before W; the bench fails if it lands
 * less than 10 s before. SCALE_WAVE_SPREAD_S=n spreads the renewal times over W … W + n s (connection i at
 * W + (i mod (n+1)) s); the default 0 puts every one at exactly W.
 *
 * The same patch doubles `spec.certificate.duration`. A duration change alone re-issues nothing (it applies at the
 * next renewal; only a shortened one does), and it keeps the renewed certificates' next renewal time a lifetime
 * away: with the old duration it would fall again (W − first issuance) after W, a second wave inside the one
 * measured. The bench checks that nothing is re-issued before W (serial numbers from status, and the audit log's
 * writes to the connections' Secrets).
 *
 * Measured: per connection, the time from its renewal time until the bench's watch sees a new serial number in its
 * status; the operator's requests (audit log of its ServiceAccount) from W until 5 s after the last renewal: total,
 * peak per second, writes per renewed certificate; its CPU and event-loop delay over the same span.
 */
import type { ImagingConnectionObject } from "../src/reconcilers/context";
import { formatDuration, parseDuration } from "../src/api/duration";
import { RESOURCES } from "../src/kube/resources";
import { MERGE_PATCH, type RestClient } from "../src/kube/rest";
import { silentLogger } from "../src/log";
import { Informer } from "../src/runtime/informer";
import { OPERATOR_USER, type AuditEvent, type ControlPlane } from "../test/support/controlplane";
import { waitFor } from "../test/support/process";
import { WRITES, auditTime, countByVerb, cpuShares, describeCpu, eventLoopDelayMs, inBatches, peakPerSecond, percentileRow, pidsMentioning, procStatus, scrape, tenths } from "./scale-measure";

export interface RenewalWaveOptions {
  cp: ControlPlane;
  admin: RestClient;
  namespace: string;
  /** The operator process and its metrics port. */
  pid: number;
  metricsPort: number;
  /** The connections in the wave; each must already have a certificate. */
  names: readonly string[];
  /** W is at least this long after the patching budget. */
  leadS: number;
  /** 0: every renewal time is exactly W; n: spread over W … W + n s. */
  spreadS: number;
}

/** The target: every certificate renewed within this long of its renewal time. */
const TARGET_MS = 60_000;
const PATCH_BUDGET_MS = 30;
const MIN_MARGIN_MS = 10_000;
/** Requests this long after the last renewal still count as the wave's (events, trailing status writes). */
const TAIL_MS = 5_000;
const WAVE_TIMEOUT_MS = 10 * 60_000;

const sleepUntil = (t: number) => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));

export async function runRenewalWave(o: RenewalWaveOptions): Promise<void> {
  const { admin, namespace: ns, pid, names } = o;
  const inWave = new Set(names);
  const inf = new Informer<ImagingConnectionObject>(admin, { type: RESOURCES.ImagingConnection, namespaces: [ns] }, silentLogger());
  const original = new Map<string, string>();
  const lastSerial = new Map<string, string>();
  const changes = new Map<string, number>();
  const renewedAt = new Map<string, number>();
  inf.on((_e, obj) => {
    const name = obj.metadata.name;
    const serial = obj.status?.certificate?.serialNumber;
    if (!original.has(name) || !serial || serial === lastSerial.get(name)) return;
    lastSerial.set(name, serial);
    changes.set(name, (changes.get(name) ?? 0) + 1);
    if (!renewedAt.has(name)) renewedAt.set(name, Date.now());
  });
  inf.start();
  try {
    await inf.synced;
    const certs = names.map((name) => {
      const c = inf.get(ns, name)?.status?.certificate;
      if (!c?.serialNumber || !c.notAfter || !c.notBefore) throw new Error(`ImagingConnection ${name} has no certificate in its status`);
      original.set(name, c.serialNumber);
      lastSerial.set(name, c.serialNumber);
      return { name, serial: c.serialNumber, notAfter: new Date(c.notAfter).getTime(), lifetime: new Date(c.notAfter).getTime() - new Date(c.notBefore).getTime() };
    });

    // The wave instant, on a whole second (notAfter is whole seconds: renewBefore comes out whole seconds too).
    const W = Math.ceil((Date.now() + o.leadS * 1000 + names.length * PATCH_BUDGET_MS) / 1000) * 1000;
    const dueAt = new Map(names.map((n, i) => [n, W + (i % (o.spreadS + 1)) * 1000]));
    const duration = formatDuration(Math.ceil((2 * Math.max(...certs.map((c) => c.lifetime))) / 3_600_000) * 3_600_000);
    const patchSince = new Date();
    await inBatches(certs.length, 32, async (i) => {
      const c = certs[i]!;
      const renewBefore = c.notAfter - dueAt.get(c.name)!;
      if (renewBefore < 1000 || renewBefore % 1000 !== 0 || renewBefore >= parseDuration(duration)) throw new Error(`cannot make ${c.name} renew at W: renewBefore would be ${renewBefore} ms`);
      await admin.patch(RESOURCES.ImagingConnection, { namespace: ns, name: c.name }, { spec: { certificate: { duration, renewBefore: formatDuration(renewBefore) } } }, MERGE_PATCH);
    });
    const lastPatchAt = Date.now();
    if (W - lastPatchAt < MIN_MARGIN_MS) throw new Error(`patching ${names.length} connections ended ${W - lastPatchAt} ms before W: raise SCALE_WAVE_LEAD_S`);

    // The operator takes the new policy in (its status names W as the renewal time), still before W.
    const acknowledged = () => names.filter((n) => inf.get(ns, n)?.status?.certificate?.renewalTime === new Date(dueAt.get(n)!).toISOString()).length;
    await waitFor("every connection's status shows renewal time W", async () => acknowledged() === names.length || Date.now() >= W - 2000, W - Date.now(), 250).catch(() => undefined);
    const acknowledgedBeforeW = acknowledged();
    const acknowledgedAt = Date.now();

    await sleepUntil(W - 500);
    const controlPlanePids = (await pidsMentioning(o.cp.dir)).filter((p) => p !== pid); // the operator's --kubeconfig lives there too
    const cpuAtW = await cpuShares(pid, controlPlanePids);
    const cpuAtWTime = Date.now();
    await scrape(o.metricsPort); // resets the event-loop delay histogram: the next scrape covers the wave only
    await sleepUntil(W);

    let rssMax = 0;
    await waitFor(
      "every certificate renewed",
      async () => {
        rssMax = Math.max(rssMax, (await procStatus(pid)).rssMiB);
        return renewedAt.size >= names.length;
      },
      WAVE_TIMEOUT_MS,
      100,
    ).catch((err: unknown) => console.error(`renewal wave: ${String(err)}; ${renewedAt.size} of ${names.length} renewed`));
    const lastRenewedAt = Math.max(...renewedAt.values());
    const cpuAfter = await cpuShares(pid, controlPlanePids);
    const cpuWave = describeCpu(cpuAtW, cpuAfter, (Date.now() - cpuAtWTime) / 1000);
    const metrics = await scrape(o.metricsPort);
    await sleepUntil(lastRenewedAt + TAIL_MS);

    const events = await o.cp.auditEvents(OPERATOR_USER, patchSince);
    const beforeW = events.filter((e) => auditTime(e) < W);
    const during = events.filter((e) => auditTime(e) >= W && auditTime(e) <= lastRenewedAt + TAIL_MS);
    const waveSecret = (e: AuditEvent) => e.objectRef?.resource === "secrets" && inWave.has(e.objectRef.name?.replace(/-client-tls$/, "") ?? "");
    const writes = during.filter((e) => WRITES.has(e.verb));
    const secretWrites = writes.filter(waveSecret);
    const lastSecretWrite = Math.max(...secretWrites.map(auditTime));
    const latencies = names.map((n) => (renewedAt.get(n) ?? Infinity) - dueAt.get(n)!); // not renewed: Infinity
    const early = latencies.filter((l) => l < 0).length;
    const renewed = renewedAt.size;
    const allMs = lastRenewedAt - W;

    const plan = o.spreadS === 0 ? "all at exactly W" : `spread over W … W + ${o.spreadS} s`;
    console.log(`\nRenewal wave: ${names.length} client certificates due for renewal ${plan} (renewBefore = notAfter − W, duration → ${duration}); target: all renewed within ${TARGET_MS / 1000} s`);
    console.table({ "renewal time → new serial in status (ms)": percentileRow(latencies) });
    console.table({
      "last patch → W (s)": tenths((W - lastPatchAt) / 1000),
      "statuses naming the planned renewal time, before W": `${acknowledgedBeforeW}/${names.length} (${tenths((W - acknowledgedAt) / 1000)} s before W)`,
      "re-issued before their renewal time (status serials)": early,
      "re-issued before W (audit: client Secret writes)": beforeW.filter((e) => WRITES.has(e.verb) && waveSecret(e)).length,
      "operator writes from first patch to W (reconciling the patches)": beforeW.filter((e) => WRITES.has(e.verb)).length,
      renewed: `${renewed}/${names.length}`,
      "first new serial after its renewal time (s)": tenths(Math.min(...latencies) / 1000),
      "all renewed, W → last new serial in status (s)": tenths(allMs / 1000),
      "W → last client Secret write (audit, s)": tenths((lastSecretWrite - W) / 1000),
      [`all within ${TARGET_MS / 1000} s`]: renewed === names.length && Math.max(...latencies) <= TARGET_MS ? "yes" : "NO",
      "renewed more than once": [...changes.values()].filter((c) => c > 1).length,
      [`operator requests, W → last renewal + ${TAIL_MS / 1000} s`]: during.length,
      "peak operator requests/s": peakPerSecond(during),
      "operator writes per renewed certificate": tenths(writes.length / Math.max(1, renewed)),
      "operator CPU during the wave (s)": tenths(cpuAfter.operator - cpuAtW.operator),
      "CPU during the wave, s (whole machine)": cpuWave,
      "event-loop delay p99 during the wave (ms)": eventLoopDelayMs(metrics, "p99"),
      "event-loop delay max during the wave (ms)": eventLoopDelayMs(metrics, "max"),
      "RSS max sampled during the wave (MiB)": rssMax,
    });
    console.log("Operator requests during the wave, by verb and resource:");
    console.table(countByVerb(during));
  } finally {
    inf.stop();
  }
}
