/**
 * A connection that is deleted, or that loses access to its database, has the certificates it was issued and that
 * have not expired revoked: marked in the database's ledger (src/reconcilers/issued-ledger.ts), which requeues the
 * database, whose next CRL lists them. The SecureDatabase decides (spec.trust.revokeOnDelete, default true).
 */
import { Reason } from "../../api/reasons";
import type { RevocationReason } from "../../api/types";
import type { ImagingConnectionObject, OperatorContext, SecureDatabaseObject } from "../context";
import { planConnectionRevocation, updateLedger } from "../issued-ledger";

/** Whether the database revokes the certificates of a connection that is deleted or loses access. */
export function revokesOnDelete(sdb: SecureDatabaseObject): boolean {
  // Read raw: a database whose spec no longer validates still keeps its word on what was issued under it.
  return sdb.spec?.trust?.revokeOnDelete !== false;
}

/** The message of the CertificatesRevoked event. */
export function revokedMessage(connection: string, serials: readonly string[], reason: RevocationReason, why: string): string {
  return `revoked ${serials.length} certificate(s) of ImagingConnection ${connection} (${why}), reason ${reason}: ${serials.join(", ")}`;
}

/**
 * Marks the connection's live certificates revoked in the ledger of the database `ref` names; the serials newly
 * revoked (none when the database is gone or deleting, since its ledger goes with it, or does not revoke on delete).
 */
export async function revokeIssued(
  ctx: OperatorContext,
  imc: ImagingConnectionObject,
  ref: { namespace: string; name: string },
  reason: RevocationReason,
  why: string,
  now: Date,
): Promise<string[]> {
  const sdb = ctx.cache.secureDatabases.get(ref.namespace, ref.name);
  if (!sdb || sdb.metadata.deletionTimestamp || !revokesOnDelete(sdb)) return [];
  const connection = { namespace: imc.metadata.namespace!, name: imc.metadata.name };
  let revoked: string[] = [];
  await updateLedger(ctx, sdb, (ledger) => {
    const changes = planConnectionRevocation(ledger, connection, reason, now);
    revoked = [...changes.keys()].sort();
    return changes;
  });
  if (revoked.length > 0) {
    const message = revokedMessage(`${connection.namespace}/${connection.name}`, revoked, reason, why);
    await ctx.events.record(sdb, "Normal", Reason.CertificatesRevoked, message);
  }
  return revoked;
}
