/**
 * CA rotation with overlap, as a state machine whose state lives in the API server, so an operator restarted in
 * any phase picks up where it was:
 *
 *   Idle       `<ca>` signs; bundles = [ca].
 *   Overlap    `<ca>-next` holds a new CA; bundles = [ca, next]; `<ca>` still signs. Waits until the server
 *              accepts a certificate from the new CA (live probe) and every client Secret trusts it, then
 *              propagationDelay for the kubelet.
 *   Reissuing  `<ca>-previous` holds the old CA, `<ca>` the new one, which signs: every leaf is re-issued
 *              (issuer changed); bundles = [ca, previous]. Waits until the server serves a leaf of the new CA
 *              and every client Secret holds one, then propagationDelay.
 *   Finishing  `<ca>-previous` is deleted (the old key is gone); bundles = [ca]. Waits until the server
 *              verified, then propagationDelay for the kubelet to lay the bundle without the old CA down, then
 *              (SQL) reloads the server once more, then Idle: the old CA is no longer trusted anywhere.
 *
 * Which Secrets exist says the phase (Finishing alone needs status, and is safe to redo), and every step is
 * written so that a crash between two writes leaves a state this module recognises. Pure: facts in, step out.
 */
import type { CARotationPhase } from "../../api/types";

export const ROTATE_CA_ANNOTATION = "mtls.imaging.dev/rotate-ca";
export const nextCASecretName = (caSecret: string): string => `${caSecret}-next`;
export const previousCASecretName = (caSecret: string): string => `${caSecret}-previous`;

/** Serial numbers of the CAs each Secret holds (undefined: no such Secret). */
export interface CASecrets {
  current: string;
  next?: string;
  previous?: string;
}

/** Where a rotation stands, from the Secrets and the phase recorded in status. */
export function derivePhase(secrets: CASecrets, recorded: CARotationPhase | undefined): CARotationPhase {
  if (secrets.previous !== undefined) return "Reissuing";
  if (secrets.next !== undefined) return secrets.next === secrets.current ? "Reissuing" : "Overlap";
  return recorded === "Finishing" || recorded === "Reissuing" ? "Finishing" : "Idle";
}

/**
 * A promotion interrupted between its writes: `<ca>-previous` written but `<ca>` not yet replaced, or `<ca>`
 * replaced but `<ca>-next` not yet deleted. What is left to do, in order.
 */
export function unfinishedPromotion(secrets: CASecrets): ("replaceCurrent" | "deleteNext")[] {
  if (secrets.next === undefined) return [];
  if (secrets.previous !== undefined && secrets.previous === secrets.current) return ["replaceCurrent", "deleteNext"];
  if (secrets.next === secrets.current) return ["deleteNext"];
  return [];
}

export interface Readiness {
  ready: number;
  total: number;
  /** Who is not there yet, for status and events. */
  waiting: string[];
}

export interface RotationFacts {
  phase: CARotationPhase;
  now: Date;
  delayMs: number;
  /** When every consumer was first seen ready in this phase (status.caRotation.readyTime). */
  readySince?: Date;
  /** Idle: why a rotation should start, if it should. */
  trigger?: string;
  /**
   * Overlap: a client certificate from the new CA logs in; Reissuing: the server serves a leaf of the new CA;
   * Finishing: the server verified with the final bundle.
   */
  server: boolean;
  /** Overlap: client Secrets whose trust bundle holds the new CA; Reissuing: those whose leaf is from the new CA. */
  clients: Readiness;
}

export type RotationAction = "none" | "start" | "promote" | "retire" | "complete";

export interface RotationStep {
  action: RotationAction;
  /** Plain words for status.caRotation.message and kubectl describe: what the rotation waits for. */
  message: string;
  /** The readyTime to record (kept while ready, cleared when not). */
  readySince?: Date;
  /** Look again no later than this. */
  requeueAt?: Date;
}

const describeWaiting = (r: Readiness): string =>
  r.waiting.length > 5 ? `${r.waiting.slice(0, 5).join(", ")} and ${r.waiting.length - 5} more` : r.waiting.join(", ");

/** The wait for the kubelet, as a fixed time: the message must not change (and be written) on every pass. */
const propagation = (due: number, delayMs: number): string =>
  `waiting until ${new Date(due).toISOString()} (propagationDelay ${Math.round(delayMs / 1000)} s)`;

export function nextRotationStep(f: RotationFacts): RotationStep {
  const soon = new Date(f.now.getTime() + 2000);
  if (f.phase === "Idle") {
    if (f.trigger) return { action: "start", message: `starting a CA rotation: ${f.trigger}` };
    return { action: "none", message: "no CA rotation in progress" };
  }
  if (f.phase === "Finishing") {
    if (!f.server) {
      const message = "the old CA was removed from the trust bundles; waiting for the server to load them and verify";
      return { action: "none", message, requeueAt: soon };
    }
    // Verified proves the server is up, not that it dropped the old CA (its own certificate did not change): give
    // the kubelet its propagationDelay to lay the new bundle down, and have the server load it after that.
    const readySince = f.readySince ?? f.now;
    const due = readySince.getTime() + f.delayMs;
    if (f.now.getTime() < due) {
      const message =
        `Finishing: the old CA was removed from the trust bundles; ${propagation(due, f.delayMs)} ` +
        "for the kubelet to lay them down, then the server loads them";
      return { action: "none", readySince, message, requeueAt: new Date(due) };
    }
    return { action: "complete", readySince, message: "the server loaded the trust bundle with the new CA alone: rotation complete" };
  }
  const what = f.phase === "Overlap" ? "the new CA in its trust bundle" : "a certificate from the new CA";
  const serverWaits =
    f.phase === "Overlap"
      ? "the server to accept a client certificate from the new CA (it must load the new trust bundle and CRL)"
      : "the server to serve a certificate from the new CA";
  const missing: string[] = [];
  if (!f.server) missing.push(serverWaits);
  const { ready, total } = f.clients;
  if (ready < total) missing.push(`${total - ready} of ${total} client Secret(s) to hold ${what} (${describeWaiting(f.clients)})`);
  if (missing.length > 0) return { action: "none", message: `${f.phase}: waiting for ${missing.join(" and ")}`, requeueAt: soon };
  const readySince = f.readySince ?? f.now;
  const due = readySince.getTime() + f.delayMs;
  if (f.now.getTime() < due) {
    const wait = `${propagation(due, f.delayMs)} for the kubelet to update every pod`;
    const message = `${f.phase}: the server and all ${total} client Secret(s) have ${what}; ${wait}`;
    return { action: "none", readySince, message, requeueAt: new Date(due) };
  }
  if (f.phase === "Overlap") {
    const message = "every consumer trusts the new CA: it signs from now on, and every certificate is re-issued from it";
    return { action: "promote", readySince, message };
  }
  const message = "every consumer holds a certificate from the new CA: removing the old CA from the trust bundles and destroying its key";
  return { action: "retire", readySince, message };
}
