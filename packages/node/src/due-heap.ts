/**
 * A binary min-heap of items ordered by `until`, soonest first: how the bounded caches let entries
 * fall due a few at a time, by heap pops, never by a scan. Used by the DPoP replay cache and by the
 * verified-token cache's per-key shares.
 */

export class DueHeap<T extends { readonly until: bigint }> {
  private readonly items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const a = this.items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((a[parent] as T).until <= item.until) break;
      a[i] = a[parent] as T;
      i = parent;
    }
    a[i] = item;
  }

  pop(): T | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (top === undefined || last === undefined || a.length === 0) return top;
    this.siftDown(0, last);
    return top;
  }

  /** Keeps only the items `keep` accepts, and rebuilds the heap from them in linear time. */
  retain(keep: (item: T) => boolean): void {
    const a = this.items;
    let n = 0;
    for (const item of a) if (keep(item)) a[n++] = item;
    a.length = n;
    for (let i = (n >> 1) - 1; i >= 0; i--) this.siftDown(i, a[i] as T);
  }

  /** Places `item` at `start` or below it, moving smaller children up. */
  private siftDown(start: number, item: T): void {
    const a = this.items;
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      let mv = item.until;
      if (l < a.length && (a[l] as T).until < mv) {
        m = l;
        mv = (a[l] as T).until;
      }
      if (r < a.length && (a[r] as T).until < mv) m = r;
      if (m === i) break;
      a[i] = a[m] as T;
      i = m;
    }
    a[i] = item;
  }
}
