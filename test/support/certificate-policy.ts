import type { ResolvedCertificatePolicy } from "../../src/api/defaults";
import { formatDuration } from "../../src/api/duration";

/** A human summary of a renewal policy, for test titles and messages: "duration 2160h, renews 720h before expiry". */
export function describePolicy(policy: ResolvedCertificatePolicy): string {
  return `duration ${policy.duration}, renews ${formatDuration(policy.renewBeforeMs)} before expiry`;
}
