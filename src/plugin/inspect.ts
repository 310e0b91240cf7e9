/**
 * `kubectl mtls inspect secret NAME`: what a certificate Secret holds, key by key (PEM certificates and keys, PKCS#8
 * DER, PKCS#12 opened with its sibling password, CRLs), whether its certificate chains to its ca.crt, and whether
 * every private key in it belongs to that certificate. Key material and passwords are never printed: only what they
 * are and whether they match. inspectSecretData is pure (async only because PKCS#12 decryption is).
 */
import { X509Certificate } from "node:crypto";
import { OWNER_LABEL, MANAGED_BY_LABEL } from "../api/types";
import { secretBytes } from "../kube/secrets";
import { decodePem, isIssuedBy, parseCertificate, parseCertificates, parseCRLs, parsePrivateKey, SECRET_KEYS, type CertificateFacts, type ParsedCRL, type ParsedPrivateKey } from "../pki";
import { parsePkcs12 } from "../pki/pkcs12-reader";
import { certificateView, renderCertificate, secretKeyOrder, type CertificateView } from "./certificates";
import { choiceFlag, type Invocation, type Verb, type VerbContext } from "./command";
import { EXIT, PluginError, type ExitCode } from "./errors";
import { firstLine } from "./kube";
import { OUTPUT_FORMATS, renderDocument, renderFields, timestamp } from "./output";

export interface PrivateKeyView {
  /** "PKCS#8 PEM", "EC PRIVATE KEY PEM", "PKCS#8 DER", "PKCS#12 key bag". */
  readonly format: string;
  readonly keyType: string;
  /** Whether it is the private key of the Secret's certificate; null without one. */
  readonly matchesCertificate: boolean | null;
}

export interface CRLView {
  readonly issuer: string;
  readonly crlNumber: number | null;
  readonly thisUpdate: string;
  readonly nextUpdate: string | null;
  readonly revokedSerials: readonly string[];
}

export interface KeyReport {
  readonly key: string;
  readonly bytes: number;
  /** What the bytes are: "PEM", "PKCS#8 DER", "DER certificate", "DER CRL", "PKCS#12", "password", "text", "binary", "empty". */
  readonly format: string;
  readonly certificates: readonly CertificateView[];
  readonly privateKeys: readonly PrivateKeyView[];
  readonly crls: readonly CRLView[];
  /** E.g. which password opened a PKCS#12, or whose password this is. */
  readonly note: string | null;
  /** Why (part of) it could not be read. */
  readonly problem: string | null;
}

export interface Check {
  /** null: nothing to check (no certificate, no ca.crt, no key). */
  readonly ok: boolean | null;
  readonly message: string;
}

export interface SecretInspection {
  readonly keys: readonly KeyReport[];
  /** The certificate the checks are about: tls.crt's first, else client.crt's, else the first one found. */
  readonly certificate: { readonly key: string; readonly subject: string; readonly serialNumber: string } | null;
  readonly chain: Check;
  readonly keyMatch: Check;
}

const PKCS12_NAME = /\.(pfx|p12)$/i;
const PASSWORD_SUFFIX = ".password";

/** What one key held, before the checks (key objects stay here, never in a report). */
interface Parsed {
  key: string;
  bytes: number;
  format: string;
  certificates: CertificateFacts[];
  keys: { format: string; parsed: ParsedPrivateKey }[];
  crls: ParsedCRL[];
  note: string | null;
  problem: string | null;
}

/** Inspects every key of a Secret's data (bytes, as secretBytes gives them). */
export async function inspectSecretData(data: Readonly<Record<string, Buffer>>, now: Date): Promise<SecretInspection> {
  const names = secretKeyOrder(Object.keys(data));
  const parsed = await Promise.all(names.map((key) => parseKey(key, data[key] ?? Buffer.alloc(0), data)));
  const leaf = pickLeaf(parsed);
  const bundle = [SECRET_KEYS.caCrt, SECRET_KEYS.rootCrt].map((k) => parsed.find((p) => p.key === k)).find((p) => p && p.certificates.length > 0);
  const matches = (k: ParsedPrivateKey): boolean | null => (leaf ? new X509Certificate(leaf.cert.der).checkPrivateKey(k.keyObject) : null);
  const keys: KeyReport[] = parsed.map((p) => ({
    key: p.key,
    bytes: p.bytes,
    format: p.format,
    certificates: p.certificates.map((c) => certificateView(c, now)),
    privateKeys: p.keys.map((k) => ({ format: k.format, keyType: k.parsed.facts.description, matchesCertificate: matches(k.parsed) })),
    crls: p.crls.map(crlView),
    note: p.note,
    problem: p.problem,
  }));
  return {
    keys,
    certificate: leaf ? { key: leaf.key, subject: leaf.cert.subject, serialNumber: leaf.cert.serialNumber } : null,
    chain: chainCheck(leaf, bundle),
    keyMatch: keyCheck(leaf, keys),
  };
}

/** 1 when a check failed, else 0. */
export function inspectExitCode(inspection: SecretInspection): ExitCode {
  return inspection.chain.ok === false || inspection.keyMatch.ok === false ? EXIT.notReady : EXIT.ok;
}

/** The Secret's certificate, and the certificates after it in the same key (intermediates). */
interface Leaf {
  key: string;
  cert: CertificateFacts;
  intermediates: CertificateFacts[];
}

function pickLeaf(parsed: readonly Parsed[]): Leaf | undefined {
  const named = [SECRET_KEYS.tlsCrt, SECRET_KEYS.clientCrt].map((name) => parsed.find((p) => p.key === name));
  const holder = [...named, parsed.find((p) => p.format !== "PKCS#12" && p.certificates.length > 0)].find((p) => p && p.certificates.length > 0);
  const [cert, ...intermediates] = holder?.certificates ?? [];
  return holder && cert ? { key: holder.key, cert, intermediates } : undefined;
}

/** Walks from the certificate through the intermediates next to it up to a certificate of ca.crt (or root.crt). */
function chainCheck(leaf: Leaf | undefined, bundle: Parsed | undefined): Check {
  if (!leaf) return { ok: null, message: "no certificate in the Secret" };
  if (!bundle) return { ok: null, message: `no ca.crt or root.crt to check ${leaf.key} against` };
  let current = leaf.cert;
  for (let depth = 0; depth < 8; depth++) {
    const root = bundle.certificates.find((ca) => isIssuedBy(current, ca));
    if (root) return { ok: true, message: `${leaf.key} is signed by ${root.subject} (${bundle.key})${depth > 0 ? ` through ${depth} intermediate(s)` : ""}` };
    const next = leaf.intermediates.find((c) => c !== current && isIssuedBy(current, c));
    if (!next) break;
    current = next;
  }
  return { ok: false, message: `${leaf.key} (issuer ${leaf.cert.issuer}) is not signed by any certificate of ${bundle.key}` };
}

function keyCheck(leaf: Leaf | undefined, keys: readonly KeyReport[]): Check {
  const withKeys = keys.filter((k) => k.privateKeys.length > 0);
  if (withKeys.length === 0) return { ok: null, message: "no private key in the Secret" };
  if (!leaf) return { ok: null, message: "no certificate to match the private keys against" };
  const wrong = withKeys.filter((k) => k.privateKeys.some((p) => p.matchesCertificate === false)).map((k) => k.key);
  if (wrong.length > 0) return { ok: false, message: `${wrong.join(", ")} ${wrong.length === 1 ? "holds" : "hold"} a key that does not belong to ${leaf.key}` };
  return { ok: true, message: `${withKeys.map((k) => k.key).join(", ")} ${withKeys.length === 1 ? "holds" : "hold"} the private key of ${leaf.key}` };
}

function crlView(c: ParsedCRL): CRLView {
  return {
    issuer: c.issuer,
    crlNumber: c.crlNumber ?? null,
    thisUpdate: timestamp(c.thisUpdate),
    nextUpdate: c.nextUpdate ? timestamp(c.nextUpdate) : null,
    revokedSerials: c.revoked.map((r) => r.serialNumber),
  };
}

function emptyParsed(key: string, bytes: Buffer, format: string): Parsed {
  return { key, bytes: bytes.length, format, certificates: [], keys: [], crls: [], note: null, problem: null };
}

const PEM_KEY_LABELS: Readonly<Record<string, string>> = { "PRIVATE KEY": "PKCS#8 PEM", "EC PRIVATE KEY": "EC PRIVATE KEY PEM", "RSA PRIVATE KEY": "RSA PRIVATE KEY PEM" };

async function parseKey(key: string, bytes: Buffer, data: Readonly<Record<string, Buffer>>): Promise<Parsed> {
  if (bytes.length === 0) return emptyParsed(key, bytes, "empty");
  if (key.endsWith(PASSWORD_SUFFIX)) {
    const owner = key.slice(0, -PASSWORD_SUFFIX.length);
    return { ...emptyParsed(key, bytes, "password"), note: `${owner in data ? `the password of ${owner}` : "a password"}, not shown` };
  }
  if (PKCS12_NAME.test(key)) return parsePfx(key, bytes, data);
  if (bytes.subarray(0, 4096).toString("latin1").includes("-----BEGIN")) return parsePemKey(key, bytes);
  return parseDer(key, bytes);
}

function parsePemKey(key: string, bytes: Buffer): Parsed {
  const out = emptyParsed(key, bytes, "PEM");
  let labels: string[];
  try {
    labels = decodePem(bytes).map((b) => b.label);
  } catch (err) {
    return { ...out, problem: firstLine(err) };
  }
  const problems: string[] = [];
  const attempt = (what: string, read: () => void) => {
    try {
      read();
    } catch (err) {
      problems.push(`${what}: ${firstLine(err)}`);
    }
  };
  if (labels.includes("CERTIFICATE")) attempt("certificates", () => out.certificates.push(...parseCertificates(bytes, key)));
  const keyLabel = labels.find((l) => l in PEM_KEY_LABELS);
  if (keyLabel) attempt("private key", () => out.keys.push({ format: PEM_KEY_LABELS[keyLabel] ?? keyLabel, parsed: parsePrivateKey(bytes) }));
  if (labels.includes("ENCRYPTED PRIVATE KEY")) problems.push("an encrypted private key (not opened)");
  if (labels.includes("X509 CRL")) attempt("CRL", () => out.crls.push(...parseCRLs(bytes)));
  const other = labels.filter((l) => !(l in PEM_KEY_LABELS) && !["CERTIFICATE", "X509 CRL", "ENCRYPTED PRIVATE KEY"].includes(l));
  if (other.length > 0) out.note = `also PEM blocks ${[...new Set(other)].join(", ")}`;
  return { ...out, problem: problems.length > 0 ? problems.join("; ") : null };
}

/** Binary data: a PKCS#8 DER key (client.pk8), a DER certificate or CRL, else text or opaque bytes. */
function parseDer(key: string, bytes: Buffer): Parsed {
  const readers: [string, (p: Parsed) => void][] = [
    ["PKCS#8 DER", (p) => p.keys.push({ format: "PKCS#8 DER", parsed: parsePrivateKey(new Uint8Array(bytes)) })],
    ["DER certificate", (p) => p.certificates.push(parseCertificate(new Uint8Array(bytes), key))],
    ["DER CRL", (p) => p.crls.push(...parseCRLs(new Uint8Array(bytes)))],
  ];
  if (bytes[0] === 0x30) {
    for (const [format, read] of readers) {
      const p = emptyParsed(key, bytes, format);
      try {
        read(p);
        return p;
      } catch {
        // not this format: try the next
      }
    }
  }
  // eslint-disable-next-line no-control-regex
  const text = !/[\u0000-\u0008\u000e-\u001f]/.test(bytes.toString("utf8"));
  return text ? { ...emptyParsed(key, bytes, "text"), note: `${bytes.toString("utf8").split("\n").filter((l) => l !== "").length} lines, not shown` } : emptyParsed(key, bytes, "binary");
}

/** A PKCS#12 file, opened with the password in its sibling key `<key>.password` (else the empty password). */
async function parsePfx(key: string, bytes: Buffer, data: Readonly<Record<string, Buffer>>): Promise<Parsed> {
  const out = emptyParsed(key, bytes, "PKCS#12");
  const passwordKey = `${key}${PASSWORD_SUFFIX}`;
  const password = data[passwordKey]?.toString("utf8");
  try {
    const pfx = await parsePkcs12(bytes, password ?? "");
    for (const pem of pfx.certificatePems) out.certificates.push(parseCertificate(pem, key));
    for (const der of pfx.keysPkcs8Der) out.keys.push({ format: "PKCS#12 key bag", parsed: parsePrivateKey(new Uint8Array(der)) });
    return { ...out, note: password === undefined ? "opened with the empty password" : `opened with the password in ${passwordKey}` };
  } catch (err) {
    return { ...out, problem: `${firstLine(err)}${password === undefined ? ` (no ${passwordKey} next to it; tried the empty password)` : ""}` };
  }
}

// ------------------------------------------------------------------------------------------- rendering (pure)

const mark = (c: Check): string => (c.ok === true ? "ok" : c.ok === false ? "FAILED" : "n/a");

export function renderInspection(title: string, inspection: SecretInspection): string {
  let text = `${title}\n`;
  text += "Checks:\n";
  text += renderFields([
    ["chain", `${mark(inspection.chain)}: ${inspection.chain.message}`],
    ["key matches", `${mark(inspection.keyMatch)}: ${inspection.keyMatch.message}`],
  ]);
  text += "\nKeys:\n";
  const shown = new Map<string, string>();
  for (const k of inspection.keys) {
    text += `  ${k.key}: ${summary(k)}\n`;
    for (const p of k.privateKeys) {
      const match = p.matchesCertificate === null ? "" : p.matchesCertificate ? `, matches ${inspection.certificate?.key}` : `, does NOT match ${inspection.certificate?.key}`;
      text += `    private key (${p.format}): ${p.keyType}${match}\n`;
    }
    for (const [i, c] of k.certificates.entries()) {
      const title = `${k.key} #${i + 1}`;
      const same = shown.get(c.sha256Fingerprint);
      if (same) text += `    ${title}: the same certificate as ${same} (${c.subject})\n`;
      else {
        shown.set(c.sha256Fingerprint, title);
        text += renderCertificate(title, c, "      ").replace(/^ {2}/, "    ");
      }
    }
    for (const c of k.crls) {
      text += `    CRL of ${c.issuer}: number ${c.crlNumber ?? "-"}, this update ${c.thisUpdate}, next update ${c.nextUpdate ?? "-"}, ${c.revokedSerials.length} revoked${c.revokedSerials.length > 0 ? ` (${c.revokedSerials.join(", ")})` : ""}\n`;
    }
  }
  return text;
}

function summary(k: KeyReport): string {
  const parts = [k.format, `${k.bytes} bytes`];
  if (k.certificates.length > 0) parts.push(`${k.certificates.length} certificate${k.certificates.length === 1 ? "" : "s"}`);
  if (k.privateKeys.length > 0) parts.push(`${k.privateKeys.length} private key${k.privateKeys.length === 1 ? "" : "s"}`);
  if (k.crls.length > 0) parts.push(`${k.crls.length} CRL${k.crls.length === 1 ? "" : "s"}`);
  if (k.note) parts.push(k.note);
  if (k.problem) parts.push(`PROBLEM: ${k.problem}`);
  return parts.join(", ");
}

// ------------------------------------------------------------------------------------------------------ I/O

const HELP = `kubectl mtls inspect: what a certificate Secret the operator wrote holds, and whether it is consistent.

Usage:
  kubectl mtls inspect secret NAME [-n NS] [-o table|json|yaml]

Every key is decoded: PEM certificates, private keys and CRLs, PKCS#8 DER keys (client.pk8), PKCS#12 (client.pfx,
opened with the password in client.pfx.password). Certificates show subject, SANs, issuer, serial, validity, key
type and SHA-256 fingerprint. Checks: the certificate (tls.crt, else client.crt) is signed by a certificate of
ca.crt (else root.crt), and every private key in the Secret belongs to it. Keys and passwords are never printed.

Flags:
  -o, --output FORMAT     table (default), json or yaml

Exit codes: 0 the checks pass (or have nothing to check), 1 a check failed, 2 the command failed.
`;

export const inspectVerb: Verb = {
  name: "inspect",
  summary: "decode a certificate Secret: every key, the chain to ca.crt, whether the keys match",
  help: HELP,
  options: { output: { type: "string", short: "o" } },
  completes: { arguments: { words: ["secret"] }, flags: { output: { words: OUTPUT_FORMATS } } },
  run,
};

async function run(invocation: Invocation, ctx: VerbContext): Promise<ExitCode> {
  const format = choiceFlag(invocation, "output", OUTPUT_FORMATS, "table", "inspect");
  const name = secretName(invocation.positionals);
  const cluster = await ctx.cluster();
  const ns = cluster.namespace;
  const secret = await cluster.getSecret(ns, name);
  if (!secret) throw new PluginError(`secret ${ns}/${name} not found: list the operator's with kubectl get secrets -n ${ns} -l ${MANAGED_BY_LABEL}`);
  const inspection = await inspectSecretData(secretBytes(secret), ctx.now);
  const labels = secret.metadata.labels ?? {};
  const owner = labels[OWNER_LABEL] ? `, owner ${labels[OWNER_LABEL]}` : labels[MANAGED_BY_LABEL] ? "" : ", not labelled as the operator's";
  if (format === "table") ctx.out.stdout(renderInspection(`Secret ${ns}/${name} (${secret.type ?? "Opaque"}${owner})`, inspection));
  else ctx.out.stdout(renderDocument({ secret: `${ns}/${name}`, type: secret.type ?? null, owner: labels[OWNER_LABEL] ?? null, ...inspection }, format));
  return inspectExitCode(inspection);
}

/** `secret NAME` or `secret/NAME`: what to inspect (only Secrets for now). */
function secretName(positionals: readonly string[]): string {
  const [what, ...rest] = positionals;
  const words = what?.includes("/") ? [what.slice(0, what.indexOf("/")), what.slice(what.indexOf("/") + 1), ...rest] : [what, ...rest];
  const [kind, name, ...extra] = words;
  if (kind === undefined || !["secret", "secrets"].includes(kind.toLowerCase()) || !name || extra.length > 0) {
    throw new PluginError("inspect takes one Secret: kubectl mtls inspect secret NAME [-n NS]");
  }
  return name;
}
