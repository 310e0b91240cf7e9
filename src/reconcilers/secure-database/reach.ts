/**
 * Where the operator may dial for a SecureDatabase (SQL reloads, live verification): the Services of the database's
 * own namespace, and what the cluster admin allowed with --allowed-endpoints. Anywhere else, a SecureDatabase
 * author could use the operator's network position and its connection errors in status as a port scanner.
 */
import { BlockList, isIP } from "node:net";
import { isCIDR, isDNSSubdomain, isIPAddress } from "../../api/field-checks";

/** What --allowed-endpoints allows besides the database's namespace: exact hosts, `*.suffix` names, IPs and CIDRs. */
export interface EndpointAllowance {
  readonly hosts: ReadonlySet<string>;
  readonly suffixes: readonly string[];
  readonly networks: BlockList;
  /** As given, for messages. */
  readonly entries: readonly string[];
}

/** Why an --allowed-endpoints entry is not one, or undefined. */
export function allowanceEntryProblem(entry: string): string | undefined {
  if (isIPAddress(entry) || isCIDR(entry)) return undefined;
  const name = entry.startsWith("*.") ? entry.slice(2) : entry;
  return isDNSSubdomain(name) ? undefined : "is not an IP address, a CIDR, a DNS name or *.<DNS name>";
}

/** The matcher of a checked --allowed-endpoints list. */
export function endpointAllowance(entries: readonly string[]): EndpointAllowance {
  const networks = new BlockList();
  const hosts = new Set<string>();
  const suffixes: string[] = [];
  for (const entry of entries) {
    if (isCIDR(entry)) {
      const [address, prefix] = entry.split("/") as [string, string];
      networks.addSubnet(address, Number(prefix), isIP(address) === 6 ? "ipv6" : "ipv4");
    } else if (isIPAddress(entry)) networks.addAddress(entry, isIP(entry) === 6 ? "ipv6" : "ipv4");
    else if (entry.startsWith("*.")) suffixes.push(entry.slice(1));
    else hosts.add(entry);
  }
  return { hosts, suffixes, networks, entries: [...entries] };
}

export const NO_ALLOWANCE: EndpointAllowance = endpointAllowance([]);

/**
 * Whether `host` names a Service (or a Service's pod) of `namespace` the way cluster DNS resolves it from any
 * namespace: `<svc>.<ns>`, `<svc>.<ns>.svc`, `<svc>.<ns>.svc.<cluster domain>`, with an optional pod label first.
 * A bare name would resolve in the operator's own namespace, so it is not one.
 */
export function isServiceOf(host: string, namespace: string): boolean {
  const labels = host.toLowerCase().split(".");
  const at = labels.indexOf(namespace, 1);
  if (at < 1 || at > 2) return false;
  const rest = labels.slice(at + 1);
  return rest.length === 0 || (rest[0] === "svc" && rest.every((l) => l.length > 0));
}

/** Why the operator may not dial `host` for a database of `namespace`, or undefined when it may. */
export function endpointProblem(host: string, namespace: string, allowance: EndpointAllowance): string | undefined {
  if (isServiceOf(host, namespace)) return undefined;
  const ip = isIP(host);
  if (ip !== 0 && allowance.networks.check(host, ip === 6 ? "ipv6" : "ipv4")) return undefined;
  const name = host.toLowerCase();
  if (ip === 0 && (allowance.hosts.has(name) || allowance.suffixes.some((s) => name.endsWith(s)))) return undefined;
  const allowed = allowance.entries.length > 0 ? `, or what the operator allows (--allowed-endpoints ${allowance.entries.join(",")})` : "";
  return (
    `the operator dials only Services of namespace ${namespace} (e.g. <service>.${namespace}.svc)${allowed}, not ${host}: ` +
    `point spec.verification.endpoint (or spec.host) at the database's Service, or ask the cluster admin to allow ${host} with --allowed-endpoints`
  );
}
