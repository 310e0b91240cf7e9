import * as k8s from "@kubernetes/client-node";
import { createLogger, silentLogger, type Logger } from "../../src/log";
import { Operator } from "../../src/operator";
import type { ControlPlane } from "./controlplane";

export interface OperatorOptions {
  now?: () => Date;
  kubeconfigPath?: string;
  /** Where its log lines go (default: nowhere; LOG_OPERATOR=1 shows them). */
  log?: Logger;
}

/**
 * Runs the operator in this process, authenticated as its own ServiceAccount user (so only the shipped RBAC
 * applies), watching one namespace or a list (every namespace when undefined).
 */
export async function startOperator(cp: ControlPlane, namespace: string | readonly string[] | undefined, opts: OperatorOptions = {}): Promise<Operator> {
  const kubeConfig = new k8s.KubeConfig();
  kubeConfig.loadFromFile(opts.kubeconfigPath ?? cp.operatorKubeconfigPath);
  const log = opts.log ?? (process.env.LOG_OPERATOR ? createLogger("debug") : silentLogger());
  const operator = new Operator({ kubeConfig, log, namespaces: typeof namespace === "string" ? [namespace] : namespace, concurrency: 2, now: opts.now });
  await operator.start();
  return operator;
}
