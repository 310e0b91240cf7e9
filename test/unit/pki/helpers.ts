/** Shared helpers for the PKI unit tests: the real openssl binary, temp dirs, and memoised CAs. */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateCA, type CertificateAuthority, type KeySpec } from "../../../src/pki/index";

export const HOUR = 3600 * 1000;
export const DAY = 24 * HOUR;

export interface OpensslResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the real openssl; never throws on a non-zero exit (tests assert on `code`). */
export function openssl(args: readonly string[], input?: string | Buffer): OpensslResult {
  const r = spawnSync("openssl", args, { input: typeof input === "string" ? Buffer.from(input) : input, timeout: 30_000 });
  if (r.error) throw new Error(`cannot run openssl (install the openssl package): ${r.error.message}`);
  return { code: r.status ?? -1, stdout: r.stdout.toString("utf8"), stderr: r.stderr.toString("utf8") };
}

/** A temp dir removed by the returned cleanup; `file(name, content)` writes into it and returns the path. */
export function tempDir(): { dir: string; file: (name: string, content: string | Uint8Array) => string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "pki-unit-"));
  return {
    dir,
    file: (name, content) => {
      const path = join(dir, name);
      writeFileSync(path, content, { mode: 0o600 });
      return path;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

const cas = new Map<string, Promise<CertificateAuthority>>();

/** One CA per key spec per test run (RSA-4096 generation takes a second or two). */
export function sharedCA(key: KeySpec = { algorithm: "ECDSA", size: 256 }): Promise<CertificateAuthority> {
  const id = `${key.algorithm}-${key.size}`;
  let ca = cas.get(id);
  if (!ca) {
    ca = generateCA({ commonName: `Unit Test CA ${id}`, duration: 30 * DAY, key, now: new Date() });
    cas.set(id, ca);
  }
  return ca;
}

export const ALL_KEY_SPECS: readonly KeySpec[] = [
  { algorithm: "ECDSA", size: 256 },
  { algorithm: "ECDSA", size: 384 },
  { algorithm: "RSA", size: 2048 },
  { algorithm: "RSA", size: 3072 },
  { algorithm: "RSA", size: 4096 },
];

/** Asserts that a promise rejects with a PkiError of the given reason; returns the error. */
export async function rejectsWithReason(promise: Promise<unknown>, reason: string): Promise<Error & { reason: string }> {
  try {
    await promise;
  } catch (e) {
    const err = e as Error & { reason?: string };
    if (err.reason !== reason) {
      throw new Error(`expected PkiError reason ${reason}, got ${String(err.reason)}: ${err.message}`, { cause: e });
    }
    return err as Error & { reason: string };
  }
  throw new Error(`expected a rejection with reason ${reason}, but it resolved`);
}

export function throwsWithReason(fn: () => unknown, reason: string): Error & { reason: string } {
  try {
    fn();
  } catch (e) {
    const err = e as Error & { reason?: string };
    if (err.reason !== reason) {
      throw new Error(`expected PkiError reason ${reason}, got ${String(err.reason)}: ${err.message}`, { cause: e });
    }
    return err as Error & { reason: string };
  }
  throw new Error(`expected a throw with reason ${reason}, but it returned`);
}
