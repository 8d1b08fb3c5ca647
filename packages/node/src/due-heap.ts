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
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      let mv = last.until;
      if (l < a.length && (a[l] as T).until < mv) {
        m = l;
        mv = (a[l] as T).until;
      }
      if (r < a.length && (a[r] as T).until < mv) m = r;
      if (m === i) break;
      a[i] = a[m] as T;
      i = m;
    }
    a[i] = last;
    return top;
  }
}
