/**
 * NDJSON message log with size-based rotation. Records are queued in memory
 * and written in batches (one write per event-loop turn at most), so the
 * publish path never waits on the disk. When the next line would push the
 * file past `maxBytes`, the file is rotated: `path.N-1` -> `path.N`, ...,
 * `path` -> `path.1`, and the oldest beyond `maxFiles` is deleted.
 */
import { open, rename, rm, stat, mkdir } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from '../../observability/logger.js';
import type { MessageRecord } from '../message-record.js';
import type { MessageSink, SinkStats } from './sink.js';

export interface FileSinkOptions {
  path: string;
  maxBytes: number;
  maxFiles: number;
  maxBuffer: number;
  log: Logger;
}

export class FileSink implements MessageSink {
  readonly stats: SinkStats = { name: 'file', written: 0, dropped: 0, failed: 0, buffered: 0 };
  readonly #opts: FileSinkOptions;
  #lines: string[] = [];
  #file: FileHandle | null = null;
  #size = 0;
  #running: Promise<void> | null = null;
  #scheduled = false;
  #closed = false;

  constructor(options: FileSinkOptions) {
    this.#opts = options;
  }

  /** Open (creating the directory and file) and learn the current size. */
  async open(): Promise<void> {
    await mkdir(dirname(this.#opts.path), { recursive: true });
    this.#file = await open(this.#opts.path, 'a');
    this.#size = (await stat(this.#opts.path)).size;
  }

  push(record: MessageRecord): void {
    if (this.#closed) return;
    if (this.#lines.length >= this.#opts.maxBuffer) {
      this.stats.dropped++;
      return;
    }
    this.#lines.push(JSON.stringify(record) + '\n');
    this.stats.buffered = this.#lines.length;
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => void this.flush());
    }
  }

  /** Write everything queued so far; concurrent calls share one writer. */
  async flush(): Promise<void> {
    this.#scheduled = false;
    while (this.#running !== null) await this.#running;
    if (this.#lines.length === 0 || this.#file === null) return;
    this.#running = this.#drain().catch((err: unknown) => {
      // The file could not be reopened after a rotation: count what was queued as failed.
      this.stats.failed += this.#lines.length;
      this.#lines = [];
      this.stats.buffered = 0;
      this.#opts.log.error({ err, path: this.#opts.path }, 'message log file unavailable');
    });
    try {
      await this.#running;
    } finally {
      this.#running = null;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
    await this.#file?.close();
    this.#file = null;
  }

  async #drain(): Promise<void> {
    while (this.#lines.length > 0) {
      const lines = this.#lines;
      this.#lines = [];
      let batch = '';
      let batchBytes = 0;
      for (const line of lines) {
        const bytes = Buffer.byteLength(line);
        if (this.#size + batchBytes + bytes > this.#opts.maxBytes && this.#size + batchBytes > 0) {
          await this.#write(batch, batchBytes);
          batch = '';
          batchBytes = 0;
          await this.#rotate();
        }
        batch += line;
        batchBytes += bytes;
      }
      await this.#write(batch, batchBytes);
      this.stats.buffered = this.#lines.length;
    }
  }

  async #write(text: string, bytes: number): Promise<void> {
    if (bytes === 0) return;
    const lines = countLines(text);
    try {
      await this.#file!.write(text);
      this.#size += bytes;
      this.stats.written += lines;
    } catch (err) {
      this.stats.failed += lines;
      this.#opts.log.warn({ err, path: this.#opts.path }, 'message log write failed');
    }
  }

  async #rotate(): Promise<void> {
    const { path, maxFiles } = this.#opts;
    try {
      await this.#file!.close();
      await rm(`${path}.${maxFiles}`, { force: true });
      for (let i = maxFiles - 1; i >= 1; i--) await rename(`${path}.${i}`, `${path}.${i + 1}`).catch(ignoreMissing);
      await rename(path, `${path}.1`);
    } catch (err) {
      this.#opts.log.warn({ err, path }, 'message log rotation failed');
    }
    this.#file = await open(path, 'a');
    this.#size = (await stat(path)).size;
  }
}

function countLines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

function ignoreMissing(err: NodeJS.ErrnoException): void {
  if (err.code !== 'ENOENT') throw err;
}
