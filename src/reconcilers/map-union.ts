/**
 * Several maps read as their union without building it: a lookup asks each (a later one wins, as in the union), and
 * only iterating or counting builds the union. The issued ledger is one per ConfigMap: recording one issuance looks
 * up one serial, and building the whole ledger for it would cost every issuance the size of the ledger.
 */
export class MapUnion<K, V> implements ReadonlyMap<K, V> {
  private merged: Map<K, V> | undefined;

  constructor(private readonly parts: readonly ReadonlyMap<K, V>[]) {}

  get(key: K): V | undefined {
    for (let i = this.parts.length - 1; i >= 0; i--) {
      const value = this.parts[i]!.get(key);
      if (value !== undefined) return value;
    }
    return undefined;
  }

  has(key: K): boolean {
    return this.parts.some((p) => p.has(key));
  }

  get size(): number {
    return this.all().size;
  }

  forEach(fn: (value: V, key: K, map: ReadonlyMap<K, V>) => void): void {
    for (const [key, value] of this.all()) fn(value, key, this);
  }

  entries(): MapIterator<[K, V]> {
    return this.all().entries();
  }

  keys(): MapIterator<K> {
    return this.all().keys();
  }

  values(): MapIterator<V> {
    return this.all().values();
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.all().entries();
  }

  private all(): Map<K, V> {
    if (!this.merged) {
      this.merged = new Map();
      for (const part of this.parts) for (const [key, value] of part) this.merged.set(key, value);
    }
    return this.merged;
  }
}

