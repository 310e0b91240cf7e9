/**
 * The validation rules of an ImagingConnection beyond its shape (decoded already): see validate.ts, which applies them.
 */
import { absolutePathProblem, databaseNameProblem, plainNameProblem, roleNameProblem } from "./field-checks";
import { clientSecretName } from "./default-values";
import type { ImagingConnection } from "./types";
import { validateMatchLabels, validateNameLength, validatePolicy, validateRotationToken, type ValidationErrors } from "./validation";

/** Adds every problem of a decoded ImagingConnection to `e`. */
export function imagingConnectionRules(imc: ImagingConnection, e: ValidationErrors): void {
  const spec = imc.spec;
  validateNameLength(e, "ImagingConnection", imc.metadata.name);
  validateRotationToken(e, imc.metadata.annotations);

  if (!spec.databaseRef.name) e.add("spec.databaseRef.name", "Required", "databaseRef.name is required");
  e.name("spec.databaseRef.name", spec.databaseRef.name || undefined, "subdomain");
  e.name("spec.databaseRef.namespace", spec.databaseRef.namespace, "label");

  if (!spec.user) e.add("spec.user", "Required", "user is required (the PostgreSQL role, which becomes the certificate CN)");
  else {
    const problem = roleNameProblem(spec.user) ?? plainNameProblem(spec.user);
    if (problem) e.add("spec.user", "Invalid", `user ${problem}`);
  }
  if (spec.database !== undefined) {
    const problem = databaseNameProblem(spec.database) ?? plainNameProblem(spec.database);
    if (problem) e.add("spec.database", "Invalid", `database ${problem}`);
  }
  e.name("spec.secretName", spec.secretName, "subdomain");
  validatePolicy(e, "spec.certificate", "certificate", spec.certificate, "2160h");

  const workloads = spec.workloads ?? [];
  e.maxItems("spec.workloads", workloads, 32);
  e.unique("spec.workloads", workloads.map((w) => `${w.kind}/${w.name}`));
  workloads.forEach((w, i) => {
    const base = `spec.workloads[${i}]`;
    if (!w.name) e.add(`${base}.name`, "Required", "workloads[].name is required");
    e.name(`${base}.name`, w.name || undefined, "subdomain");
    if (w.containers !== undefined && w.containers.length === 0) {
      e.add(`${base}.containers`, "Required", "containers must not be empty (omit it for every container)");
    }
    e.maxItems(`${base}.containers`, w.containers, 16);
    e.unique(`${base}.containers`, w.containers);
    (w.containers ?? []).forEach((c, j) => e.name(`${base}.containers[${j}]`, c, "label"));
    if (w.mountPath !== undefined) {
      const problem = absolutePathProblem(w.mountPath);
      if (problem) e.add(`${base}.mountPath`, "Invalid", `workloads[].mountPath ${problem}`);
    }
  });
  castImagingRules(imc, e);
}

function castImagingRules(imc: ImagingConnection, e: ValidationErrors): void {
  const target = imc.spec.castImaging;
  if (!target) return;
  if (target.release !== undefined && target.selector !== undefined) {
    e.add("spec.castImaging", "Invalid", "set castImaging.release or castImaging.selector, not both");
  }
  if (target.release !== undefined) {
    e.name("spec.castImaging.release", target.release || undefined, "label");
    if (!target.release) e.add("spec.castImaging.release", "Required", "castImaging.release must not be empty");
    // Helm refuses release names longer than 53 characters.
    else if (target.release.length > 53) e.add("spec.castImaging.release", "Invalid", "castImaging.release is longer than Helm's 53 characters");
  }
  if (target.selector !== undefined) validateMatchLabels(e, "spec.castImaging.selector.matchLabels", target.selector.matchLabels);
  e.name("spec.castImaging.secretName", target.secretName, "subdomain");
  const clientSecret = imc.spec.secretName ?? clientSecretName(imc.metadata.name);
  if (target.secretName !== undefined && target.secretName === clientSecret) {
    e.add("spec.castImaging.secretName", "Invalid", `castImaging.secretName must differ from the client Secret ${clientSecret}`);
  }
}
