/**
 * The bare bound of a storm, measured in the same run: the same number of Secrets of the same size created by a raw
 * client loop (as many in flight as the storm's apply), with nothing reconciling them. The storm's figures are
 * printed as ratios to it, so a noisy machine still gives a comparable verdict (issue 17).
 */
import type { RestClient } from "../src/kube/rest";
import { RESOURCES } from "../src/kube/resources";
import type { SecretObject } from "../src/kube/secrets";
import { cpuSeconds, inBatches, percentileRow } from "./scale-measure";

export interface BareBound {
  count: number;
  /** Bytes of data per Secret (base64, as sent). */
  bytes: number;
  wallMs: number;
  latencyMs: ReturnType<typeof percentileRow>;
  /** kube-apiserver + etcd CPU seconds the creates cost. */
  controlPlaneCpuS: number;
}

/** CPU seconds so far of the control plane's processes (those that exited count 0). */
export async function controlPlaneCpu(pids: readonly number[]): Promise<number> {
  return (await Promise.all(pids.map((p) => cpuSeconds(p).catch(() => 0)))).reduce((x, y) => x + y, 0);
}

export async function measureBareCreates(o: {
  admin: RestClient;
  namespace: string;
  /** A Secret the storm wrote: its data, under other names, is what each create carries. */
  template: SecretObject;
  count: number;
  inFlight: number;
  controlPlanePids: readonly number[];
}): Promise<BareBound> {
  const data = o.template.data ?? {};
  const bytes = Object.values(data).reduce((n, v) => n + v.length, 0);
  const latencies: number[] = [];
  const cpuBefore = await controlPlaneCpu(o.controlPlanePids);
  const t0 = performance.now();
  await inBatches(o.count, o.inFlight, async (i) => {
    const start = performance.now();
    await o.admin.create(RESOURCES.Secret, o.namespace, { apiVersion: "v1", kind: "Secret", type: o.template.type ?? "Opaque", metadata: { name: `bare-${i}`, namespace: o.namespace }, data });
    latencies.push(performance.now() - start);
  });
  const wallMs = performance.now() - t0;
  const controlPlaneCpuS = (await controlPlaneCpu(o.controlPlanePids)) - cpuBefore;
  return { count: o.count, bytes, wallMs, latencyMs: percentileRow(latencies), controlPlaneCpuS };
}
