/**
 * Manual rotation through the mtls.imaging.dev/rotate annotation. The token a certificate was issued for is kept
 * on its Secret, written in the same request as the certificate, so a crash between the Secret and the status
 * write can never rotate twice for one token.
 */
import { ROTATE_ANNOTATION } from "../api/types";
import type { SecretObject } from "../kube/secrets";
import type { KubeObject } from "../runtime/informer";

/** On a Secret we own: the rotate token its certificate satisfies. */
export const ROTATION_TOKEN_ANNOTATION = "mtls.imaging.dev/rotation-token";

export interface RotationRequest {
  rotationToken?: string;
  lastRotationToken?: string;
}

/** What the owner asks for and what the Secret's certificate was issued for (inputs of evaluateRenewal). */
export function rotationRequest(owner: KubeObject, secret: SecretObject | undefined): RotationRequest {
  const request: RotationRequest = {};
  const token = owner.metadata.annotations?.[ROTATE_ANNOTATION];
  const last = secret?.metadata.annotations?.[ROTATION_TOKEN_ANNOTATION];
  if (token !== undefined && token !== "") request.rotationToken = token;
  if (last !== undefined) request.lastRotationToken = last;
  return request;
}

/** The annotations of the Secret once it holds a certificate that satisfies the owner's current token. */
export function rotationAnnotations(request: RotationRequest): Record<string, string> | undefined {
  const token = request.rotationToken ?? request.lastRotationToken;
  return token === undefined ? undefined : { [ROTATION_TOKEN_ANNOTATION]: token };
}

/** Does the Secret already carry these annotations (so only a data change needs a write)? */
export function hasAnnotations(secret: SecretObject | undefined, annotations: Record<string, string> | undefined): boolean {
  return Object.entries(annotations ?? {}).every(([k, v]) => secret?.metadata.annotations?.[k] === v);
}
