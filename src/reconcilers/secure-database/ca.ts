/** Step 1: the CA that signs. A brought CA is read and checked; a generated one is created once, never replaced. */
import type { ResolvedSecureDatabaseSpec } from "../../api/defaults";
import { Reason } from "../../api/reasons";
import { SECURE_DATABASE_CONDITIONS as C, managedLabels } from "../../api/types";
import { RESOURCES } from "../../kube/resources";
import { isApiError } from "../../kube/rest";
import { desiredSecret, ownerReference, type SecretObject } from "../../kube/secrets";
import { caSecretData, generateCA, resolveKeySpec, type CertificateAuthority } from "../../pki";
import { TemporaryError } from "../../runtime/errors";
import type { OperatorContext, SecureDatabaseObject } from "../context";
import { readDatabaseCA, type CARead } from "../database-ca";
import { ROTATION_TOKEN_ANNOTATION } from "../rotate-annotation";
import { after, PROBLEM_RETRY_MS, recordEvents, resultOf, type StepOutcome, type StepResult } from "./step";

export type CAPlan = { generate: true } | { generate: false; ca?: CertificateAuthority; outcome: StepOutcome };

/** Sign with the CA the Secret holds, report why there is none, or generate one (a generated CA not there yet). */
export function planCA(read: CARead, secretName: string, now: Date): CAPlan {
  if (read.state === "absent") return { generate: true };
  if (read.state === "problem") {
    const conditions = [{ type: C.CAReady, status: "False" as const, reason: read.reason, message: read.message }];
    return { generate: false, outcome: { conditions, events: [], requeueAt: after(now, PROBLEM_RETRY_MS) } };
  }
  const serial = read.ca.facts.serialNumber;
  const message = read.provided
    ? `signing with the CA brought in Secret ${secretName} (serial ${serial})`
    : `signing with the generated CA in Secret ${secretName} (serial ${serial})`;
  const reason = read.provided ? Reason.CAProvided : Reason.CAGenerated;
  return { generate: false, ca: read.ca, outcome: { conditions: [{ type: C.CAReady, status: "True", reason, message }], events: [] } };
}

/** A CA Secret of this database; `token`: the rotate-ca annotation value its CA satisfies. */
export function caSecret(sdb: SecureDatabaseObject, name: string, ca: CertificateAuthority, token?: string): SecretObject {
  return desiredSecret({
    name,
    namespace: sdb.metadata.namespace!,
    type: "kubernetes.io/tls",
    labels: managedLabels("SecureDatabase", sdb.metadata.name),
    ...(token ? { annotations: { [ROTATION_TOKEN_ANNOTATION]: token } } : {}),
    owner: ownerReference(sdb),
    data: caSecretData(ca),
  });
}

/** The Secret that holds a freshly generated CA, and what to say about it. */
export function planGeneratedCA(
  sdb: SecureDatabaseObject,
  secretName: string,
  ca: CertificateAuthority,
): { secret: SecretObject; outcome: StepOutcome } {
  const secret = caSecret(sdb, secretName, ca);
  const { subject, serialNumber, notAfter } = ca.facts;
  const event = `generated CA ${subject} (serial ${serialNumber}, valid until ${notAfter.toISOString()}) in Secret ${secretName}`;
  const message = `signing with the generated CA in Secret ${secretName} (serial ${serialNumber})`;
  return {
    secret,
    outcome: {
      conditions: [{ type: C.CAReady, status: "True", reason: Reason.CAGenerated, message }],
      events: [{ type: "Normal", reason: Reason.CAGenerated, message: event }],
    },
  };
}

export async function ensureCA(
  ctx: OperatorContext,
  sdb: SecureDatabaseObject,
  spec: ResolvedSecureDatabaseSpec,
  now: Date,
): Promise<StepResult & { ca?: CertificateAuthority }> {
  const name = spec.ca.secretName;
  const plan = planCA(await readDatabaseCA(ctx, sdb.metadata.namespace!, sdb.metadata.name, spec, now, sdb.status?.ca), name, now);
  if (!plan.generate) return { ...resultOf(plan.outcome), ...(plan.ca ? { ca: plan.ca } : {}) };
  const key = resolveKeySpec(spec.ca.privateKey);
  const ca = await generateCA({ commonName: spec.ca.commonName, duration: spec.ca.durationMs, key, now });
  const generated = planGeneratedCA(sdb, name, ca);
  try {
    const namespace = sdb.metadata.namespace!;
    const created = await ctx.client.create<SecretObject & { metadata: { name: string } }>(RESOURCES.Secret, namespace, generated.secret);
    ctx.cache.secrets.observe(created);
  } catch (err) {
    // Someone (a previous run of ours) created it meanwhile: use theirs on the next pass, never replace it.
    if (isApiError(err, 409)) {
      const message = `CA Secret ${name} appeared while generating a CA; retrying with the existing one`;
      throw new TemporaryError(Reason.WriteConflict, message, { cause: err });
    }
    throw err;
  }
  await recordEvents(ctx, sdb, generated.outcome.events);
  return { ca, ...resultOf(generated.outcome) };
}
