/** Step 1: the CA that signs. A brought CA is read and checked; a generated one is created once, never replaced. */
import type { ResolvedSecureDatabaseSpec } from "../../api/defaults";
import { Reason } from "../../api/reasons";
import { SECURE_DATABASE_CONDITIONS as C } from "../../api/types";
import { isApiError } from "../../kube/rest";
import { generateCA, resolveKeySpec, type CertificateAuthority } from "../../pki";
import { TemporaryError } from "../../runtime/errors";
import { CAKeys, describeLocation, type SecretLocation } from "../ca-keys";
import type { OperatorContext, SecureDatabaseObject } from "../context";
import { readDatabaseCA, type CARead } from "../database-ca";
import { nextCASecretName, previousCASecretName } from "./ca-rotation-plan";
import { after, PROBLEM_RETRY_MS, recordEvents, resultOf, type StepOutcome, type StepResult } from "./step";

export type CAPlan = { generate: true } | { generate: false; ca?: CertificateAuthority; keySecret?: SecretLocation; outcome: StepOutcome };

/**
 * Sign with the CA the Secret holds, report why there is none, or generate one (a generated CA not there yet).
 * `keyHome`: where the CA's key belongs (the key namespace); a brought CA found elsewhere is named as exposed.
 */
export function planCA(read: CARead, keyHome: SecretLocation, now: Date): CAPlan {
  if (read.state === "absent") return { generate: true };
  if (read.state === "problem") {
    const conditions = [{ type: C.CAReady, status: "False" as const, reason: read.reason, message: read.message }];
    return { generate: false, outcome: { conditions, events: [], requeueAt: after(now, PROBLEM_RETRY_MS) } };
  }
  const serial = read.ca.facts.serialNumber;
  const where = describeLocation(read.keySecret);
  const exposed =
    read.keySecret.namespace === keyHome.namespace
      ? ""
      : `; its key is readable by whoever may read Secrets in namespace ${read.keySecret.namespace}: ` +
        `a cluster admin can move it to ${describeLocation(keyHome)}, out of tenants' reach`;
  const message = read.provided
    ? `signing with the CA brought in Secret ${where} (serial ${serial})${exposed}`
    : `signing with the generated CA in Secret ${where} (serial ${serial})`;
  const reason = read.provided ? Reason.CAProvided : Reason.CAGenerated;
  const conditions = [{ type: C.CAReady, status: "True" as const, reason, message }];
  return { generate: false, ca: read.ca, keySecret: read.keySecret, outcome: { conditions, events: [] } };
}

/** What to say about a freshly generated CA kept at `at`. */
export function generatedCAOutcome(ca: CertificateAuthority, at: SecretLocation): StepOutcome {
  const { subject, serialNumber, notAfter } = ca.facts;
  const where = describeLocation(at);
  const event = `generated CA ${subject} (serial ${serialNumber}, valid until ${notAfter.toISOString()}) in Secret ${where}`;
  const message = `signing with the generated CA in Secret ${where} (serial ${serialNumber})`;
  return {
    conditions: [{ type: C.CAReady, status: "True", reason: Reason.CAGenerated, message }],
    events: [{ type: "Normal", reason: Reason.CAGenerated, message: event }],
  };
}

/** The key namespace is missing, or the operator may not write Secrets there: nothing is generated. */
export function keyNamespaceUnavailable(keyNamespace: string, missing: boolean, now: Date): StepOutcome {
  const why = missing ? "it does not exist" : "the operator may not create Secrets there";
  const message =
    `cannot keep the CA's key in namespace ${keyNamespace} (the operator's --ca-key-namespace): ${why}; ` +
    "create the namespace, or grant the operator's ServiceAccount Secrets there (docs/security.md)";
  return {
    conditions: [{ type: C.CAReady, status: "False", reason: Reason.KeyNamespaceUnavailable, message }],
    events: [{ type: "Warning", reason: Reason.KeyNamespaceUnavailable, message }],
    requeueAt: after(now, PROBLEM_RETRY_MS),
  };
}

/**
 * CA Secrets an older operator kept in the database's namespace move to the key namespace first, byte for byte:
 * the same CAs sign and are trusted, nothing is re-issued.
 */
async function moveLegacyCAKeys(ctx: OperatorContext, sdb: SecureDatabaseObject, keys: CAKeys, caName: string): Promise<void> {
  for (const name of [caName, nextCASecretName(caName), previousCASecretName(caName)]) {
    const moved = await keys.moveLegacy(name);
    if (moved) await ctx.events.record(sdb, moved.type, moved.type === "Normal" ? Reason.CAKeyMoved : Reason.CAKeyNotMoved, moved.message);
  }
}

export async function ensureCA(
  ctx: OperatorContext,
  sdb: SecureDatabaseObject,
  spec: ResolvedSecureDatabaseSpec,
  now: Date,
): Promise<StepResult & { ca?: CertificateAuthority; keySecret?: SecretLocation }> {
  const name = spec.ca.secretName;
  const keys = new CAKeys(ctx, sdb.metadata.namespace!, sdb.metadata.name);
  await moveLegacyCAKeys(ctx, sdb, keys, name);
  const plan = planCA(await readDatabaseCA(ctx, keys.dbNamespace, keys.sdbName, spec, now, sdb.status?.ca), keys.where(name), now);
  if (!plan.generate) return { ...resultOf(plan.outcome), ...(plan.ca ? { ca: plan.ca } : {}), ...(plan.keySecret ? { keySecret: plan.keySecret } : {}) };
  const key = resolveKeySpec(spec.ca.privateKey);
  const ca = await generateCA({ commonName: spec.ca.commonName, duration: spec.ca.durationMs, key, now });
  try {
    await keys.create(name, ca);
  } catch (err) {
    // Someone (a previous run of ours) created it meanwhile: use theirs on the next pass, never replace it.
    if (isApiError(err, 409)) {
      const message = `CA Secret ${describeLocation(keys.where(name))} appeared while generating a CA; retrying with the existing one`;
      throw new TemporaryError(Reason.WriteConflict, message, { cause: err });
    }
    if (isApiError(err, 404) || isApiError(err, 403)) return resultOf(keyNamespaceUnavailable(keys.keyNamespace, isApiError(err, 404), now));
    throw err;
  }
  const outcome = generatedCAOutcome(ca, keys.where(name));
  await recordEvents(ctx, sdb, outcome.events);
  return { ca, keySecret: keys.where(name), ...resultOf(outcome) };
}
