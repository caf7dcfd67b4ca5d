/**
 * In-memory retained messages [MQTT-3.3.1-5..11], indexed as a topic-level
 * tree so a wildcard subscribe visits only matching branches, never every
 * retained message.
 */
import type { Message } from './message.js';

class RetainedNode {
  children: Map<string, RetainedNode> | null = null;
  message: Message | null = null;
}

export class RetainedStore {
  readonly #root = new RetainedNode();
  #count = 0;
  #bytes = 0;

  get count(): number {
    return this.#count;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Store, replace or (with an empty payload) clear [MQTT-3.3.1-10/11]. */
  set(message: Message): void {
    if (message.payload.length === 0) {
      this.delete(message.topic);
      return;
    }
    let node = this.#root;
    for (const level of message.topic.split('/')) {
      let next = node.children?.get(level);
      if (next === undefined) {
        next = new RetainedNode();
        (node.children ??= new Map()).set(level, next);
      }
      node = next;
    }
    message.compact();
    if (node.message === null) this.#count++;
    else this.#bytes -= node.message.payload.length;
    this.#bytes += message.payload.length;
    node.message = message;
  }

  get(topic: string): Message | undefined {
    let node: RetainedNode | undefined = this.#root;
    for (const level of topic.split('/')) {
      node = node.children?.get(level);
      if (node === undefined) return undefined;
    }
    return node.message ?? undefined;
  }

  delete(topic: string): boolean {
    const path: Array<[RetainedNode, string]> = [];
    let node: RetainedNode | undefined = this.#root;
    for (const level of topic.split('/')) {
      path.push([node, level]);
      node = node.children?.get(level);
      if (node === undefined) return false;
    }
    if (node.message === null) return false;
    this.#count--;
    this.#bytes -= node.message.payload.length;
    node.message = null;
    // Prune empty branches.
    for (let i = path.length - 1; i >= 0; i--) {
      const [parent, level] = path[i]!;
      const child = parent.children!.get(level)!;
      if (child.message !== null || (child.children !== null && child.children.size > 0)) break;
      parent.children!.delete(level);
    }
    return true;
  }

  /** Every retained message whose topic matches `filter` (no `$share/` prefix). */
  match(filter: string, out: Message[] = []): Message[] {
    this.#collect(this.#root, filter.split('/'), 0, out, true);
    return out;
  }

  /** Every retained message (admin, persistence). */
  *all(): Generator<Message> {
    const stack: RetainedNode[] = [this.#root];
    while (stack.length > 0) {
      const node = stack.pop()!;
      if (node.message !== null) yield node.message;
      if (node.children !== null) for (const child of node.children.values()) stack.push(child);
    }
  }

  #collect(node: RetainedNode, levels: string[], i: number, out: Message[], root: boolean): void {
    if (i === levels.length) {
      if (node.message !== null) out.push(node.message);
      return;
    }
    const level = levels[i]!;
    if (level === '#') {
      // `a/#` matches `a` itself [MQTT-4.7.1-2] and everything below.
      if (node.message !== null && !root) out.push(node.message);
      this.#descendants(node, out, root);
      return;
    }
    const children = node.children;
    if (children === null) return;
    if (level === '+') {
      for (const [key, child] of children) {
        // [MQTT-4.7.2-1] no leading wildcard match for `$` topics.
        if (root && key.charCodeAt(0) === 0x24) continue;
        this.#collect(child, levels, i + 1, out, false);
      }
      return;
    }
    const child = children.get(level);
    if (child !== undefined) this.#collect(child, levels, i + 1, out, false);
  }

  #descendants(node: RetainedNode, out: Message[], root: boolean): void {
    if (node.children === null) return;
    for (const [key, child] of node.children) {
      if (root && key.charCodeAt(0) === 0x24) continue;
      if (child.message !== null) out.push(child.message);
      this.#descendants(child, out, false);
    }
  }
}
