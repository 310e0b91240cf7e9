import * as k8s from "@kubernetes/client-node";
import { createLogger, silentLogger, type Logger } from "../../src/log";
import { Operator } from "../../src/operator";
import { caKeyLocation, type SecretLocation } from "../../src/reconcilers/ca-keys";
import { OPERATOR_NAMESPACE, type ControlPlane } from "./controlplane";

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
/**
 * What the suite's operators may dial besides Services of each database's namespace: the PostgreSQL servers the
 * tests run on this machine, and the made-up hosts of databases without a server (reach.ts; tenant-attacks and the
 * unit tests check the default, which allows none of these).
 */
export const TEST_ALLOWED_ENDPOINTS = ["127.0.0.1", "::1", "localhost", "*.svc", "*.example.com", "*.example.internal"];

/** The suite's operators keep CA keys where the shipped install does: in the operator's own namespace. */
export const TEST_KEY_NAMESPACE = OPERATOR_NAMESPACE;

/** Where the suite's operators keep CA Secret `name` of a database in `namespace`. */
export const caKeySecret = (namespace: string, name: string): SecretLocation => caKeyLocation(TEST_KEY_NAMESPACE, namespace, name);

/** The command-line flags that give a spawned operator (dist/main.js) the same configuration as startOperator's. */
export const TEST_OPERATOR_FLAGS = ["--allowed-endpoints", TEST_ALLOWED_ENDPOINTS.join(","), "--ca-key-namespace", TEST_KEY_NAMESPACE];

export async function startOperator(cp: ControlPlane, namespace: string | readonly string[] | undefined, opts: OperatorOptions = {}): Promise<Operator> {
  const kubeConfig = new k8s.KubeConfig();
  kubeConfig.loadFromFile(opts.kubeconfigPath ?? cp.operatorKubeconfigPath);
  const log = opts.log ?? (process.env.LOG_OPERATOR ? createLogger("debug") : silentLogger());
  const operator = new Operator({ kubeConfig, log, namespaces: typeof namespace === "string" ? [namespace] : namespace, concurrency: 2, allowedEndpoints: TEST_ALLOWED_ENDPOINTS, caKeyNamespace: TEST_KEY_NAMESPACE, now: opts.now });
  await operator.start();
  return operator;
}
