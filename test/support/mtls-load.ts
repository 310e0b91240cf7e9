/**
 * A client under continuous load, as a CAST component would be during a rotation: a new mTLS connection
 * (verify-full) every 100 ms with the files as they are on disk at that moment, plus one long-lived connection
 * running a query every 100 ms. Every attempt is recorded with the server serial it saw and the client serial it
 * presented, so a test can show both that nothing failed and that the switch happened.
 */
import { X509Certificate } from "node:crypto";
import { readFile, realpath } from "node:fs/promises";
import { join } from "node:path";
import { Client } from "pg";
import { normalizeSerial, probeServer } from "../../src/postgres/probe";

export interface Attempt {
  at: number;
  ok: boolean;
  servedSerial?: string;
  clientSerial: string;
  error?: string;
}

export interface MtlsLoad {
  attempts: Attempt[];
  /** Queries on the long-lived connection, and how many failed. */
  longLived: { queries: number; failures: string[] };
  stop(): Promise<void>;
}

export async function startMtlsLoad(opts: { dir: string; host: string; port: number; user: string; intervalMs?: number }): Promise<MtlsLoad> {
  const interval = opts.intervalMs ?? 100;
  // Read one consistent generation: through the folder `..data` points at now, not through the per-file links,
  // which an atomic swap between two reads would split into a new certificate and an old key.
  // The previous generation's folder is deleted right after a swap (as the kubelet does): read again then.
  const files = async (attempt = 0): Promise<{ cert: string; key: string; ca: string }> => {
    const folder = await realpath(join(opts.dir, "..data")).catch(() => opts.dir);
    try {
      return {
        cert: await readFile(join(folder, "client.crt"), "utf8"),
        key: await readFile(join(folder, "client.key"), "utf8"),
        ca: await readFile(join(folder, "root.crt"), "utf8"),
      };
    } catch (err) {
      if (attempt < 3) return files(attempt + 1);
      throw err;
    }
  };
  const load: MtlsLoad = { attempts: [], longLived: { queries: 0, failures: [] }, stop: async () => undefined };

  const first = await files();
  const long = new Client({ host: opts.host, port: opts.port, user: opts.user, database: "postgres", ssl: { ca: first.ca, cert: first.cert, key: first.key, servername: opts.host, rejectUnauthorized: true } });
  long.on("error", (err) => load.longLived.failures.push(`error event: ${err.message}`));
  await long.connect();

  let stopped = false;
  const probes: Promise<void>[] = [];
  const tick = setInterval(() => {
    probes.push(
      (async () => {
        const at = Date.now();
        const f = await files();
        const clientSerial = normalizeSerial(new X509Certificate(f.cert).serialNumber);
        const r = await probeServer({ host: opts.host, port: opts.port, servername: opts.host, database: "postgres", user: opts.user, ca: f.ca, cert: f.cert, key: f.key, timeoutMs: 5000 });
        load.attempts.push(r.ok ? { at, ok: true, servedSerial: r.servedSerialNumber, clientSerial } : { at, ok: false, clientSerial, servedSerial: r.servedSerialNumber, error: `${r.reason}: ${r.message}` });
      })(),
    );
  }, interval);
  const longLoop = (async () => {
    while (!stopped) {
      try {
        await long.query("SELECT 1");
        load.longLived.queries++;
      } catch (err) {
        load.longLived.failures.push(err instanceof Error ? err.message : String(err));
      }
      await new Promise((r) => setTimeout(r, interval));
    }
  })();
  load.stop = async () => {
    stopped = true;
    clearInterval(tick);
    await Promise.all(probes);
    await longLoop;
    await long.end().catch(() => undefined);
  };
  return load;
}
