import { createHash, hash as digestOf } from "node:crypto";

/**
 * A bounded cache of what was derived from some bytes, keyed by their SHA-256: reconciles see the same certificates
 * and keys over and over (each read decodes them into new buffers), and parsing them again costs far more than
 * hashing them. Least recently used entries go first.
 */
export class ContentCache<T> {
  private readonly entries = new Map<string, T>();

  constructor(private readonly capacity: number) {}

  get(parts: readonly (Uint8Array | undefined)[], derive: () => T): T {
    const key = keyOf(parts);
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit;
    }
    const value = derive();
    this.store(key, value);
    return value;
  }

  /** What is cached for these bytes, if anything; nothing is derived. */
  peek(parts: readonly (Uint8Array | undefined)[]): T | undefined {
    return this.entries.get(keyOf(parts));
  }

  /** Records what is known without deriving it (e.g. that a certificate we just signed was issued by its CA). */
  set(parts: readonly (Uint8Array | undefined)[], value: T): void {
    const key = keyOf(parts);
    this.entries.delete(key);
    this.store(key, value);
  }

  private store(key: string, value: T): void {
    this.entries.set(key, value);
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as string);
  }

  get size(): number {
    return this.entries.size;
  }
}

function keyOf(parts: readonly (Uint8Array | undefined)[]): string {
  // One part (most lookups): the one-shot digest, half the cost of a Hash object (1.0 against 2.0 µs for a
  // certificate). Each cache is looked up with one number of parts.
  if (parts.length === 1 && parts[0]) return digestOf("sha256", parts[0], "base64");
  const hash = createHash("sha256");
  for (const p of parts) hash.update(p ? String(p.length) : "-").update(":").update(p ?? new Uint8Array());
  return hash.digest("base64");
}
