import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateCA, issueClientCertificate, loadCA, type CertificateAuthority } from "../../src/pki";
import { secretBytes, type SecretObject } from "../../src/kube/secrets";
import { psql, type PsqlArgs } from "./postgres";
import type { RunResult } from "./process";

export interface ClientFiles {
  dir: string;
  cert: string;
  key: string;
  keyDer: string;
  root: string;
  serialNumberDecimal: string;
  cleanup(): Promise<void>;
}

/** Writes a client identity to files (mode 0600, as libpq demands) for psql and JDBC. */
export async function writeClientFiles(ca: CertificateAuthority, user: string, rootPem: string, opts: { now?: Date; duration?: number } = {}): Promise<ClientFiles> {
  const issued = await issueClientCertificate(ca, { user, duration: opts.duration ?? 3600_000, now: opts.now ?? new Date() });
  const dir = await mkdtemp(join(tmpdir(), `client-${user}-`));
  const files = { cert: join(dir, "client.crt"), key: join(dir, "client.key"), keyDer: join(dir, "client.pk8"), root: join(dir, "root.crt") };
  await writeFile(files.cert, issued.chainPem, { mode: 0o600 });
  await writeFile(files.key, issued.keyPkcs8Pem, { mode: 0o600 });
  await writeFile(files.keyDer, issued.keyPkcs8Der, { mode: 0o600 });
  await writeFile(files.root, rootPem, { mode: 0o600 });
  return { dir, ...files, serialNumberDecimal: issued.serialNumberDecimal, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** The CA a SecureDatabase generated, read back from its Secret. */
export async function caFromSecret(secret: SecretObject): Promise<CertificateAuthority> {
  const data = secretBytes(secret);
  return loadCA(data["tls.crt"]!, data["tls.key"]!, new Date());
}

/** A CA nobody trusts, for "refused" cases. */
export function strangerCA(): Promise<CertificateAuthority> {
  return generateCA({ commonName: "stranger CA", duration: 24 * 3600_000, now: new Date() });
}

export function psqlAs(files: ClientFiles | undefined, base: Omit<PsqlArgs, "sslcert" | "sslkey" | "sslrootcert">): Promise<RunResult> {
  return psql({ ...base, sslcert: files?.cert, sslkey: files?.key, sslrootcert: files?.root });
}
