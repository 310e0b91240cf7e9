/** The connection's summary: Ready from the other conditions, and the quiet wait while its database sets up. */
import { Reason } from "../../api/reasons";
import { IMAGING_CONNECTION_CONDITIONS as C } from "../../api/types";
import type { ConditionInput } from "../../kube/conditions";
import type { ImagingConnectionObject, SecureDatabaseObject } from "../context";

/** The longest a new connection waits without a word for its database's first report (then it reports anyway). */
export const DATABASE_SETUP_GRACE_MS = 10 * 60_000;

/**
 * A connection created together with its database (one `kubectl apply -f` of both) would otherwise report
 * DatabaseNotReady, then WaitingForTrust, and only then its certificate: status writes that tell nothing. While
 * it has no status yet and its database has not reported anything either (the operator has not finished its first
 * pass over it: in a storm of new databases that can take minutes), wait quietly: the database's status write
 * requeues it. Once the database has spoken, or past the grace, or for any other reason, say so. Returns when to
 * look again, or undefined.
 */
export function settingUpQuietly(imc: ImagingConnectionObject, sdb: SecureDatabaseObject, reason: Reason, now: Date): Date | undefined {
  if ((imc.status?.conditions?.length ?? 0) > 0) return undefined;
  if (reason !== Reason.DatabaseNotReady && reason !== Reason.WaitingForTrust) return undefined;
  if ((sdb.status?.conditions?.length ?? 0) > 0) return undefined;
  const created = Date.parse(imc.metadata.creationTimestamp ?? "");
  if (!Number.isFinite(created) || now.getTime() >= created + DATABASE_SETUP_GRACE_MS) return undefined;
  return new Date(created + DATABASE_SETUP_GRACE_MS);
}

/** Ready sums up the others: the first condition that is not True explains why not. */
export function summarize(conditions: readonly ConditionInput[]): ConditionInput {
  const blocking = conditions.find((c) =>
    c.type === C.Revoked ? c.status === "True" : c.status !== "True" && c.reason !== Reason.VerificationDisabled,
  );
  if (blocking) return { type: C.Ready, status: "False", reason: blocking.reason, message: `${blocking.type}: ${blocking.message}` };
  const message = "the client certificate is issued, mounted where listed, and logs in to the database";
  return { type: C.Ready, status: "True", reason: Reason.Connected, message };
}
