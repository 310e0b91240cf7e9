/**
 * The opt-ins a SecureDatabase needs before it touches what it did not create (src/api/opt-in.ts): the PostgreSQL
 * ConfigMap it writes its blocks into, the brought CA Secret it signs with, the database workload it patches and
 * restarts. Pure; each counts what the operator already manages for this database as opted in (grandfathering).
 */
import type { ResolvedSecureDatabaseSpec } from "../../api/defaults";
import { COMMAND_LINE_ANNOTATION, decideOptIn, SECURE_DATABASE_OPT_IN_ANNOTATION, type OptInVerdict } from "../../api/opt-in";
import { OWNER_LABEL, ownerLabelValue, type CAStatus } from "../../api/types";
import type { Workload } from "../../imaging/pod-template";
import { SERVER_VOLUME } from "../../api/default-values";

interface Meta {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

const asker = (sdbName: string) => ({ kind: "SecureDatabase" as const, name: sdbName });

/** The PostgreSQL ConfigMap (configuration ConfigMap): grandfathered when it carries this database's owner label. */
export function configMapOptIn(metadata: Meta, namespace: string, sdbName: string, configMapName: string): OptInVerdict {
  return decideOptIn({
    object: `ConfigMap ${configMapName}`,
    ref: `configmap/${configMapName}`,
    namespace,
    annotations: metadata.annotations,
    annotation: SECURE_DATABASE_OPT_IN_ANNOTATION,
    asker: asker(sdbName),
    action: "write its managed blocks into postgresql.conf and pg_hba.conf of",
    grandfathered: metadata.labels?.[OWNER_LABEL] === ownerLabelValue("SecureDatabase", sdbName),
  });
}

/**
 * The database workload (spec.workloadRef): grandfathered when its pod template already mounts this database's
 * server Secret as the operator's volume. The CommandLine opt-in (mtls.imaging.dev/command-line=<sdb>) allows more
 * (changing the command), so it counts too.
 */
export function workloadOptIn(workload: Workload & { metadata: Meta }, spec: ResolvedSecureDatabaseSpec, namespace: string, sdbName: string): OptInVerdict {
  const ref = spec.workloadRef!;
  const volume = workload.spec?.template?.spec?.volumes?.find((v) => v.name === SERVER_VOLUME);
  return decideOptIn({
    object: `${ref.kind} ${ref.name}`,
    ref: `${ref.kind.toLowerCase()}/${ref.name}`,
    namespace,
    annotations: workload.metadata.annotations,
    annotation: SECURE_DATABASE_OPT_IN_ANNOTATION,
    asker: asker(sdbName),
    action: "mount the server Secret into and restart",
    grandfathered: volume?.secret?.secretName === spec.serverCertificate.secretName,
    alsoAccepted: [{ annotation: COMMAND_LINE_ANNOTATION, value: sdbName }],
  });
}

/**
 * A brought CA Secret (ca.mode Provided): grandfathered when this database already signs with the CA it holds
 * (status.ca names the Secret and the CA's fingerprint), so an upgrade does not stop a working database.
 */
export function caSecretOptIn(
  metadata: Meta,
  namespace: string,
  sdbName: string,
  secretName: string,
  inUse: Pick<CAStatus, "secretName" | "fingerprintSHA256"> | undefined,
  fingerprintSHA256: string,
): OptInVerdict {
  return decideOptIn({
    object: `Secret ${secretName}`,
    ref: `secret/${secretName}`,
    namespace,
    annotations: metadata.annotations,
    annotation: SECURE_DATABASE_OPT_IN_ANNOTATION,
    asker: asker(sdbName),
    action: "sign certificates with the CA of",
    grandfathered: inUse?.secretName === secretName && inUse.fingerprintSHA256 === fingerprintSHA256,
  });
}
