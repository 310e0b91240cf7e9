/** kubectl as the admin, for tests: objects as JSON, failures as exceptions, waiting on a condition. */
import { controlPlane } from "./hooks";
import { waitFor } from "./process";
import { caKeySecret } from "./operator";
import { ledgerNames, parseLedger, type LedgerEntry } from "../../src/reconcilers/issued-ledger";
import type { ConfigMapObject } from "../../src/reconcilers/context";

interface WithConditions {
  status?: { conditions?: { type: string; status: string; reason: string; message: string }[] };
}

export type ConditionView = { status: string; reason: string; message: string };

export async function getJson<T>(args: string[]): Promise<T> {
  const r = await controlPlane().kubectl([...args, "-o", "json"]);
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as T;
}

/** CA Secret `name` of a database in `namespace`, from where the suite's operators keep it (the key namespace). */
export function getCASecret<T>(namespace: string, name: string): Promise<T> {
  const at = caKeySecret(namespace, name);
  return getJson<T>(["get", "secret", at.name, "-n", at.namespace]);
}

/** The ledger of issued certificates of SecureDatabase `sdb`, all its ConfigMaps (issued-ledger.ts) as one map. */
export async function getLedger(namespace: string, sdb: string): Promise<Map<string, LedgerEntry>> {
  const names = new Set(ledgerNames(sdb));
  const { items } = await getJson<{ items: ConfigMapObject[] }>(["get", "configmaps", "-n", namespace, "-l", `mtls.imaging.dev/owner=SecureDatabase.${sdb}`]);
  return new Map(items.filter((cm) => names.has(cm.metadata.name)).flatMap((cm) => [...parseLedger(cm.data)]));
}

/** Runs kubectl (stdin from `input`), returns stdout, throws with stderr on failure. */
export async function kubectlOk(args: string[], input?: string): Promise<string> {
  const r = await controlPlane().kubectl(args, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

export function condition(obj: WithConditions, type: string): ConditionView | undefined {
  return obj.status?.conditions?.find((c) => c.type === type);
}

/** Polls `kubectl get <resource> <name>` until its condition `type` satisfies `predicate`; the last status on timeout. */
export async function waitForCondition<T extends WithConditions>(resource: string, ns: string, name: string, type: string, predicate: (c: ConditionView) => boolean, timeoutMs = 60_000): Promise<T> {
  let last: T | undefined;
  await waitFor(
    `${resource} ${name} condition ${type}`,
    async () => {
      last = await getJson<T>(["get", resource, name, "-n", ns]);
      const c = condition(last, type);
      return c !== undefined && predicate(c);
    },
    timeoutMs,
    200,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last status: ${JSON.stringify(last?.status, null, 1)}`);
  });
  return last!;
}
