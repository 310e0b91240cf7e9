/**
 * CAST Imaging's Helm chart (v3, chart 3.6.x) as the operator meets it: which workloads belong to a release, and
 * how each of its components can be given a client certificate. Pure. The facts are in
 * shared/design/cast-imaging.md, "CAST Imaging's Helm chart".
 */
import type { Workload } from "./pod-template";
import { readChartContract, type ChartContract } from "./chart-contract";
import type { Refusal } from "../api/result";
import { HELM_RELEASE_ANNOTATION } from "../kube/appliers";

/** Every component workload of the chart carries it (and selects its pods by it). */
export const COMPONENT_LABEL = "imaging.service";

/** Components the chart wires for client TLS (EnablePostgresSSL): they read the CAST .ini. */
const INI_READERS: ReadonlySet<string> = new Set(["console-control-panel", "console-analysis-node", "viewer-etl"]);

/** Components that reach PostgreSQL but to which the chart gives no way to present a client certificate. */
const WITHOUT_CERTIFICATE: ReadonlyMap<string, string> = new Map([
  ["console-sso-service", "Keycloak connects with KC_DB_URL, a JDBC URL without SSL parameters, and a password"],
  ["console-authentication-service", "it connects with DB_HOST/DB_PORT and a password, with no TLS wiring in the chart"],
  ["console-service", "its init container runs psql with a password, with no TLS wiring in the chart"],
  ["console-dashboards", "it connects with DB_HOST/DB_PORT and a password, with no TLS wiring in the chart"],
]);

export type ReleaseTarget = { release: string } | { matchLabels: Record<string, string> };

/** Is this workload one of the release's (or the selector's) chart components? */
export function inRelease(workload: Workload, target: ReleaseTarget): boolean {
  const labels = workload.metadata.labels ?? {};
  if (labels[COMPONENT_LABEL] === undefined) return false;
  if ("release" in target) return workload.metadata.annotations?.[HELM_RELEASE_ANNOTATION] === target.release;
  return Object.entries(target.matchLabels).every(([k, v]) => labels[k] === v);
}

export type ComponentDelivery =
  | { delivery: "ChartSecret"; contract: ChartContract }
  | { delivery: "ChartSecret"; refused: Refusal }
  | { delivery: "Mount" }
  | { delivery: "None"; why: string };

/**
 * How a workload gets the certificate: through the chart's contract where the chart rendered it (whatever the
 * component, so a component a later chart version wires is served too), through the operator's own mount where
 * the component reads the CAST .ini, otherwise not at all, and why.
 */
export function componentDelivery(workload: Workload, chartSecretName: string, listed: boolean): ComponentDelivery {
  const contract = readChartContract(workload, chartSecretName);
  if (contract) return contract.ok ? { delivery: "ChartSecret", contract: contract.value } : { delivery: "ChartSecret", refused: contract };
  const component = workload.metadata.labels?.[COMPONENT_LABEL];
  if (listed || (component !== undefined && INI_READERS.has(component))) return { delivery: "Mount" };
  const how = component === undefined ? undefined : WITHOUT_CERTIFICATE.get(component);
  if (how !== undefined) {
    return {
      delivery: "None",
      why:
        `reaches PostgreSQL, but CAST's chart gives it no client certificate: ${how}; ` +
        "the database must keep a password path open for it",
    };
  }
  return { delivery: "None", why: "does not reach PostgreSQL in CAST's chart 3.6.x (list it in spec.workloads if it does)" };
}
