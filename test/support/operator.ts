import * as k8s from "@kubernetes/client-node";
import { createLogger, silentLogger } from "../../src/log";
import { Operator } from "../../src/operator";
import type { ControlPlane } from "./controlplane";

/**
 * Runs the operator in this process, authenticated as its own ServiceAccount user (so only the shipped RBAC
 * applies), watching one namespace or a list (every namespace when undefined). LOG_OPERATOR=1 shows its log lines.
 */
export async function startOperator(cp: ControlPlane, namespace: string | readonly string[] | undefined, opts: { now?: () => Date; kubeconfigPath?: string } = {}): Promise<Operator> {
  const kubeConfig = new k8s.KubeConfig();
  kubeConfig.loadFromFile(opts.kubeconfigPath ?? cp.operatorKubeconfigPath);
  const log = process.env.LOG_OPERATOR ? createLogger("debug") : silentLogger();
  const operator = new Operator({ kubeConfig, log, namespaces: typeof namespace === "string" ? [namespace] : namespace, concurrency: 2, now: opts.now });
  await operator.start();
  return operator;
}
