/**
 * Reads a child process's heap and live resources through the V8 inspector
 * (the child runs with `--inspect=127.0.0.1:0`; the port it got is in the
 * "Debugger listening on ws://..." line of its stderr). A full GC first, so
 * heap figures count live data only, and `process.getActiveResourcesInfo()`
 * tells the timers, sockets and other handles keeping it alive: the leak
 * checks of the hardening tests compare these before and after a storm.
 */
import WebSocket from 'ws';

export interface HeapReading {
  /** V8 heap in use after a full GC, bytes. */
  heapUsed: number;
  /** Buffers and other ArrayBuffers, bytes. */
  arrayBuffers: number;
  rss: number;
  /** Active resources by type (Timeout, TCPSocketWrap, FSReqCallback, ...). */
  resources: Record<string, number>;
}

export class Inspector {
  readonly #ws: WebSocket;
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on('message', (data: Buffer) => {
      const msg = JSON.parse(data.toString()) as { id?: number; result?: unknown; error?: { message: string } };
      if (msg.id === undefined) return;
      const p = this.#pending.get(msg.id);
      if (p === undefined) return;
      this.#pending.delete(msg.id);
      if (msg.error !== undefined) p.reject(new Error(`inspector: ${msg.error.message}`));
      else p.resolve(msg.result);
    });
    ws.on('close', () => {
      for (const p of this.#pending.values()) p.reject(new Error('inspector: connection closed'));
      this.#pending.clear();
    });
  }

  /** Connect to the inspector whose URL the process printed (waits up to `timeoutMs` for the line). */
  static async attach(output: () => string, timeoutMs = 10_000): Promise<Inspector> {
    const deadline = Date.now() + timeoutMs;
    let url: string | undefined;
    while (url === undefined) {
      url = /Debugger listening on (ws:\/\/\S+)/.exec(output())?.[1];
      if (url !== undefined) break;
      if (Date.now() > deadline) throw new Error('inspector: no "Debugger listening" line in the output');
      await new Promise((r) => setTimeout(r, 50));
    }
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new Inspector(ws);
  }

  #call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Evaluate an expression in the child's main context; the value comes back as JSON. */
  async evaluate<T>(expression: string): Promise<T> {
    const r = (await this.#call('Runtime.evaluate', { expression, returnByValue: true })) as {
      result: { value?: T };
      exceptionDetails?: { text: string };
    };
    if (r.exceptionDetails !== undefined) throw new Error(`inspector: ${r.exceptionDetails.text}`);
    return r.result.value as T;
  }

  async gc(): Promise<void> {
    await this.#call('HeapProfiler.collectGarbage');
  }

  /** Heap after two full GCs, and the active resources by type. */
  async reading(): Promise<HeapReading> {
    await this.gc();
    await this.gc();
    return this.evaluate<HeapReading>(`(() => {
      const m = process.memoryUsage();
      const resources = {};
      for (const r of process.getActiveResourcesInfo()) resources[r] = (resources[r] || 0) + 1;
      return { heapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers, rss: m.rss, resources };
    })()`);
  }

  /** Disconnect (a process with a debugger attached waits for it to leave before exiting). */
  async close(): Promise<void> {
    if (this.#ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise<void>((resolve) => this.#ws.once('close', () => resolve()));
    this.#ws.close();
    await closed;
  }
}
