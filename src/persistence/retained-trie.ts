/**
 * Retained messages by topic, in a trie of topic levels, so a wildcard filter
 * walks only the branches it can match instead of every retained message.
 *
 * Invariants:
 * - A node exists only while it, or a descendant, holds a value (empty branches
 *   are pruned on delete).
 * - Topics are split on `/`; empty levels are real levels (`a//b` has three).
 * - A filter starting with `+` or `#` skips first-level names starting with `$`
 *   [MQTT-4.7.2-1]; `#` also matches its parent level [MQTT-4.7.1-2].
 * - Recursion depth is the number of filter levels (bounded by the broker's
 *   max topic levels) for `+`, and the topic depth below a `#`.
 */

class Node<V> {
  children: Map<string, Node<V>> | null = null;
  value: V | undefined = undefined;
}

export class RetainedTrie<V> {
  readonly #root = new Node<V>();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  get(topic: string): V | undefined {
    let node: Node<V> | undefined = this.#root;
    let start = 0;
    for (;;) {
      const slash = topic.indexOf('/', start);
      const level = slash < 0 ? topic.slice(start) : topic.slice(start, slash);
      node = node.children?.get(level);
      if (node === undefined) return undefined;
      if (slash < 0) return node.value;
      start = slash + 1;
    }
  }

  /** Sets the value for `topic`; returns the value it replaced. */
  set(topic: string, value: V): V | undefined {
    let node = this.#root;
    for (const level of topic.split('/')) {
      const children: Map<string, Node<V>> = (node.children ??= new Map());
      let child = children.get(level);
      if (child === undefined) {
        child = new Node<V>();
        children.set(level, child);
      }
      node = child;
    }
    const old = node.value;
    if (old === undefined) this.#size++;
    node.value = value;
    return old;
  }

  /** Removes `topic`; returns the value it held. */
  delete(topic: string): V | undefined {
    const levels = topic.split('/');
    const path: Node<V>[] = [this.#root];
    let node = this.#root;
    for (const level of levels) {
      const child = node.children?.get(level);
      if (child === undefined) return undefined;
      path.push(child);
      node = child;
    }
    const old = node.value;
    if (old === undefined) return undefined;
    node.value = undefined;
    this.#size--;
    // Prune now-empty nodes bottom-up.
    for (let i = levels.length; i > 0; i--) {
      const n = path[i]!;
      if (n.value !== undefined || (n.children !== null && n.children.size > 0)) break;
      path[i - 1]!.children!.delete(levels[i - 1]!);
    }
    return old;
  }

  /** Appends to `out` every value whose topic matches `filter`. */
  match(filter: string, out: V[]): void {
    collect(this.#root, filter.split('/'), 0, out);
  }
}

function collect<V>(node: Node<V>, levels: readonly string[], i: number, out: V[]): void {
  if (i === levels.length) {
    if (node.value !== undefined) out.push(node.value);
    return;
  }
  const level = levels[i]!;
  if (level === '#') {
    // [MQTT-4.7.1-2] `a/#` matches `a` too (not at the root: `#` has no parent topic).
    if (i > 0 && node.value !== undefined) out.push(node.value);
    if (node.children !== null) {
      for (const [name, child] of node.children) {
        if (i === 0 && name.charCodeAt(0) === 0x24) continue; // [MQTT-4.7.2-1]
        collectAll(child, out);
      }
    }
    return;
  }
  if (node.children === null) return;
  if (level === '+') {
    for (const [name, child] of node.children) {
      if (i === 0 && name.charCodeAt(0) === 0x24) continue; // [MQTT-4.7.2-1]
      collect(child, levels, i + 1, out);
    }
    return;
  }
  const child = node.children.get(level);
  if (child !== undefined) collect(child, levels, i + 1, out);
}

function collectAll<V>(node: Node<V>, out: V[]): void {
  if (node.value !== undefined) out.push(node.value);
  if (node.children === null) return;
  for (const child of node.children.values()) collectAll(child, out);
}
