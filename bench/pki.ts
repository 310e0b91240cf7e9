/**
 * PKI benchmark: certificates issued per second for each key type, next to the bare cost of the same work
 * (Node WebCrypto keygen + one signature; `openssl req -x509 -newkey …`), and the worst event-loop delay while a
 * burst of RSA-4096 issuances runs (key generation must stay on the thread pool). Run: npx tsx bench/pki.ts
 */
import { spawn } from "node:child_process";
import { randomBytes, webcrypto } from "node:crypto";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import {
  describeKeySpec,
  generateCA,
  generateKeyPair,
  issueClientCertificate,
  type CertificateAuthority,
  type KeySpec,
} from "../src/pki/index";

interface Case {
  readonly spec: KeySpec;
  readonly iterations: number;
  readonly opensslArgs: readonly string[];
}

const CASES: readonly Case[] = [
  { spec: { algorithm: "ECDSA", size: 256 }, iterations: 200, opensslArgs: ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] },
  { spec: { algorithm: "ECDSA", size: 384 }, iterations: 150, opensslArgs: ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"] },
  { spec: { algorithm: "RSA", size: 2048 }, iterations: 20, opensslArgs: ["-newkey", "rsa:2048"] },
  { spec: { algorithm: "RSA", size: 3072 }, iterations: 8, opensslArgs: ["-newkey", "rsa:3072"] },
  { spec: { algorithm: "RSA", size: 4096 }, iterations: 5, opensslArgs: ["-newkey", "rsa:4096"] },
];

const DAY = 24 * 3600 * 1000;

/** Mean ms per operation over `n` sequential runs, after one warm-up run. */
async function timeIt(n: number, op: () => Promise<unknown>): Promise<number> {
  await op();
  const start = performance.now();
  for (let i = 0; i < n; i++) await op();
  return (performance.now() - start) / n;
}

/** What issuance fundamentally costs: a key pair and one signature over a certificate-sized body. */
async function bareWebCrypto(ca: CertificateAuthority, spec: KeySpec): Promise<void> {
  await generateKeyPair(spec);
  await webcrypto.subtle.sign(ca.signing, ca.keys.privateKey, randomBytes(450));
}

function opensslReq(args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      "openssl",
      ["req", "-x509", ...args, "-nodes", "-keyout", "/dev/null", "-out", "/dev/null", "-subj", "/CN=bench", "-days", "1", "-config", "/dev/null"],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`openssl req failed: ${err}`))));
  });
}

function pad(text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

export async function runPkiBench(): Promise<void> {
  console.log("PKI: client certificate issuance (key generation + signing + encoding), sequential, one process");
  const header = ["key", "n", "ours cert/s", "WebCrypto keygen+sign /s", "openssl req -x509 /s", "ours/bare (time)"];
  const widths = [12, 4, 12, 25, 21, 17];
  console.log(header.map((h, i) => pad(h, widths[i] ?? 10, i > 0)).join("  "));

  for (const c of CASES) {
    const ca = await generateCA({ commonName: `Bench ${describeKeySpec(c.spec)}`, duration: 30 * DAY, key: c.spec, now: new Date() });
    const ours = await timeIt(c.iterations, () => issueClientCertificate(ca, { user: "bench", duration: DAY, key: c.spec, now: new Date() }));
    const bare = await timeIt(c.iterations, () => bareWebCrypto(ca, c.spec));
    const openssl = await timeIt(c.iterations, () => opensslReq(c.opensslArgs));
    const row = [
      describeKeySpec(c.spec),
      String(c.iterations),
      (1000 / ours).toFixed(1),
      (1000 / bare).toFixed(1),
      (1000 / openssl).toFixed(1),
      `${(ours / bare).toFixed(2)}x`,
    ];
    console.log(row.map((v, i) => pad(v, widths[i] ?? 10, i > 0)).join("  "));
  }

  // RSA key generation is the only heavy step; it must run on the libuv pool, never on the event loop.
  const burst = 6;
  const ca = await generateCA({ commonName: "Bench burst", duration: 30 * DAY, key: { algorithm: "RSA", size: 4096 }, now: new Date() });
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  const start = performance.now();
  await Promise.all(
    Array.from({ length: burst }, () => issueClientCertificate(ca, { user: "burst", duration: DAY, key: { algorithm: "RSA", size: 4096 }, now: new Date() })),
  );
  const elapsed = performance.now() - start;
  histogram.disable();
  console.log(
    `\nEvent loop during a burst of ${burst} concurrent RSA-4096 issuances (${elapsed.toFixed(0)} ms): ` +
      `max ${(histogram.max / 1e6).toFixed(1)} ms, p99 ${(histogram.percentile(99) / 1e6).toFixed(1)} ms, ` +
      `mean ${(histogram.mean / 1e6).toFixed(1)} ms (monitorEventLoopDelay, resolution 1 ms)`,
  );
}

if (require.main === module) {
  runPkiBench().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
