/**
 * Where the operator's CPU goes, from a V8 CPU profile (`node --cpu-prof`, SCALE_PROFILE=<dir> in the scale bench):
 * self time by bucket (certificate library, key and signature crypto, PKCS#12, JSON, HTTP client, logging, the
 * operator's own code by folder, GC, …), in ms per object, and the heaviest functions. Buckets are decided by the
 * script URL and function name of each sample's leaf frame, so the table names the code that spent the time.
 *
 *   npx tsx bench/cpu-profile.ts <file.cpuprofile> [objects]
 */
import { readFile } from "node:fs/promises";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** The bucket of a leaf frame: first match wins. */
const BUCKETS: readonly { name: string; test: (url: string, fn: string) => boolean }[] = [
  { name: "garbage collection", test: (u, f) => f === "(garbage collector)" },
  { name: "idle", test: (u, f) => f === "(idle)" || f === "(program)" },
  { name: "JSON parse/stringify", test: (u, f) => u === "" && /^(parse|stringify|JSON\.)/.test(f) },
  { name: "@peculiar/x509 + asn1 (certificate library)", test: (u) => /node_modules\/@peculiar\/(x509|asn1-[a-z0-9]+)|node_modules\/asn1js|node_modules\/pvtsutils|node_modules\/pvutils/.test(u) },
  { name: "@peculiar webcrypto / tsyringe / reflect", test: (u) => /node_modules\/(@peculiar\/webcrypto|tsyringe|reflect-metadata)/.test(u) },
  { name: "HTTP client (undici, fetch)", test: (u) => /undici|node:internal\/deps\/undici|internal\/fetch/.test(u) },
  { name: "logging (winston, logform)", test: (u) => /node_modules\/(winston|logform|triple-beam|readable-stream|fecha)/.test(u) },
  { name: "prom-client", test: (u) => /node_modules\/prom-client/.test(u) },
  { name: "yaml", test: (u) => /node_modules\/yaml/.test(u) },
  { name: "node: crypto", test: (u) => /node:internal\/crypto|internal\/crypto/.test(u) },
  { name: "node: streams, net, tls, timers", test: (u) => /node:internal\/(streams|net|tls|timers|stream_base|http|process|async_hooks|event_target|buffer|util)|node:(net|buffer|events|stream)/.test(u) },
  { name: "operator: src/pki", test: (u) => /\/src\/pki\//.test(u) || /\/dist\/pki\//.test(u) },
  { name: "operator: src/kube", test: (u) => /\/(src|dist)\/kube\//.test(u) },
  { name: "operator: src/runtime (informer, queue)", test: (u) => /\/(src|dist)\/runtime\//.test(u) },
  { name: "operator: src/api (decode, validate, defaults)", test: (u) => /\/(src|dist)\/api\//.test(u) },
  { name: "operator: src/reconcilers", test: (u) => /\/(src|dist)\/reconcilers\//.test(u) },
  { name: "operator: other", test: (u) => /\/(src|dist)\//.test(u) },
  { name: "V8 / native (no script)", test: (u) => u === "" },
  { name: "other node_modules", test: (u) => /node_modules/.test(u) },
  { name: "node: other", test: () => true },
];

export interface ProfileSummary {
  totalMs: number;
  buckets: { name: string; ms: number }[];
  functions: { name: string; ms: number }[];
}

export function summarizeProfile(profile: CpuProfile): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const buckets = new Map<string, number>();
  const functions = new Map<string, number>();
  let totalUs = 0;
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const bucket = BUCKETS.find((b) => b.test(url, functionName))!.name;
    if (bucket === "idle") continue;
    totalUs += us;
    buckets.set(bucket, (buckets.get(bucket) ?? 0) + us);
    const where = url ? `${url.replace(/^.*\/(node_modules|src|dist)\//, "$1/")}:${lineNumber + 1}` : "native";
    const fn = `${functionName || "(anonymous)"} ${where}`;
    functions.set(fn, (functions.get(fn) ?? 0) + us);
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).map(([name, us]) => ({ name, ms: us / 1000 }));
  return { totalMs: totalUs / 1000, buckets: sorted(buckets), functions: sorted(functions) };
}

/** The table the README shows: ms per object and share, by bucket. */
export function bucketTable(summary: ProfileSummary, objects: number): Record<string, { "ms per object": number; share: string }> {
  const out: Record<string, { "ms per object": number; share: string }> = {};
  for (const b of summary.buckets) out[b.name] = { "ms per object": Math.round((b.ms / objects) * 100) / 100, share: `${Math.round((b.ms / summary.totalMs) * 1000) / 10} %` };
  out["total (busy)"] = { "ms per object": Math.round((summary.totalMs / objects) * 100) / 100, share: "100 %" };
  return out;
}

async function main(): Promise<void> {
  const [file, objectsArg] = process.argv.slice(2);
  if (!file) throw new Error("usage: tsx bench/cpu-profile.ts <file.cpuprofile> [objects]");
  const objects = Number(objectsArg ?? 1);
  const summary = summarizeProfile(JSON.parse(await readFile(file, "utf8")) as CpuProfile);
  console.log(`${file}: ${Math.round(summary.totalMs)} ms busy, ${objects} object(s)`);
  console.table(bucketTable(summary, objects));
  console.table(Object.fromEntries(summary.functions.slice(0, 40).map((f) => [f.name, Math.round((f.ms / objects) * 1000) / 1000])));
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
