/**
 * BigQuery message log: batched streaming inserts (tabledata.insertAll via
 * `table.insert(rows, { raw: true })`), each row carrying an insertId so a
 * retried batch is de-duplicated by BigQuery. One request is in flight at a
 * time; a failed request is retried with exponential backoff and jitter, up
 * to `maxRetries`, then its rows are counted as failed. The buffer (waiting
 * rows plus the batch in flight) is bounded: when full, new rows are dropped
 * and counted. Rows BigQuery rejects (insertErrors) are counted as failed
 * and not retried: they would be rejected again.
 *
 * The client library is loaded only when this sink is enabled.
 */
import type { BigQueryOptions, Table } from '@google-cloud/bigquery';
import type { BigqueryLogConfig } from '../../config/schema.js';
import type { Logger } from '../../observability/logger.js';
import type { MessageRecord } from '../message-record.js';
import type { MessageSink, SinkStats } from './sink.js';

export interface BigquerySinkOptions extends Omit<BigqueryLogConfig, 'enabled' | 'filters'> {
  log: Logger;
  /** Extra client options (tests pass an `authClient` that needs no network). */
  clientOptions?: BigQueryOptions;
  /** How long close() waits for buffered rows to go out, milliseconds. */
  closeTimeoutMs?: number;
}

interface RawRow {
  insertId: string;
  json: MessageRecord;
}

/** HTTP statuses worth retrying; anything else in 4xx is a permanent failure. */
function isRetryable(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'number') return true; // network errors, timeouts
  return code === 408 || code === 429 || code >= 500;
}

function isPartialFailure(err: unknown): err is { errors: Array<{ row: RawRow; errors: unknown[] }> } {
  return (err as { name?: unknown }).name === 'PartialFailureError' && Array.isArray((err as { errors?: unknown }).errors);
}

export class BigquerySink implements MessageSink {
  readonly stats: SinkStats = { name: 'bigquery', written: 0, dropped: 0, failed: 0, buffered: 0 };
  readonly #opts: BigquerySinkOptions;
  readonly #table: Table;
  readonly #idPrefix = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}-`;
  #seq = 0;
  #rows: RawRow[] = [];
  #inflight = 0;
  #sending: Promise<void> | null = null;
  #timer: NodeJS.Timeout | undefined = undefined;
  #closed = false;

  private constructor(options: BigquerySinkOptions, table: Table) {
    this.#opts = options;
    this.#table = table;
  }

  static async create(options: BigquerySinkOptions): Promise<BigquerySink> {
    const { BigQuery } = await import('@google-cloud/bigquery');
    const client = new BigQuery({
      ...(options.projectId !== '' ? { projectId: options.projectId } : {}),
      ...(options.keyFilename !== '' ? { keyFilename: options.keyFilename } : {}),
      ...(options.apiEndpoint !== '' ? { apiEndpoint: options.apiEndpoint } : {}),
      // Retries are ours (backoff, bounded buffer, counters), not the library's.
      autoRetry: false,
      maxRetries: 0,
      ...options.clientOptions,
    });
    return new BigquerySink(options, client.dataset(options.dataset).table(options.table));
  }

  push(record: MessageRecord): void {
    if (this.#closed) return;
    if (this.#rows.length + this.#inflight >= this.#opts.maxBuffer) {
      this.stats.dropped++;
      return;
    }
    this.#rows.push({ insertId: this.#idPrefix + (++this.#seq).toString(36), json: record });
    this.stats.buffered = this.#rows.length + this.#inflight;
    if (this.#rows.length >= this.#opts.batchSize) this.#kick();
    else this.#timer ??= setTimeout(() => this.#kick(), this.#opts.flushIntervalMs).unref();
  }

  /** Send every buffered row (retrying as configured) before resolving. */
  async flush(): Promise<void> {
    while (this.#rows.length > 0 || this.#sending !== null) {
      this.#kick();
      await this.#sending;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const timeout = this.#opts.closeTimeoutMs ?? 5000;
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), timeout)));
    const done = await Promise.race([this.flush().then(() => false), gaveUp]);
    clearTimeout(timer);
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (done) {
      this.stats.failed += this.#rows.length;
      this.#opts.log.warn({ rows: this.#rows.length }, 'bigquery message log: gave up on buffered rows at shutdown');
      this.#rows = [];
    }
  }

  /** Start a send loop unless one is running. */
  #kick(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#sending !== null || this.#rows.length === 0) return;
    this.#sending = this.#sendLoop().finally(() => {
      this.#sending = null;
      if (this.#rows.length > 0 && !this.#closed) {
        if (this.#rows.length >= this.#opts.batchSize) this.#kick();
        else this.#timer ??= setTimeout(() => this.#kick(), this.#opts.flushIntervalMs).unref();
      }
    });
  }

  async #sendLoop(): Promise<void> {
    // Full batches go out back to back; a partial batch waits for the timer unless flushing.
    do {
      const batch = this.#rows.splice(0, this.#opts.batchSize);
      this.#inflight = batch.length;
      await this.#send(batch);
      this.#inflight = 0;
      this.stats.buffered = this.#rows.length;
    } while (this.#rows.length >= this.#opts.batchSize);
  }

  async #send(rows: RawRow[]): Promise<void> {
    const { maxRetries, retryBaseMs, log } = this.#opts;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#table.insert(rows, { raw: true, skipInvalidRows: true, partialRetries: 0 });
        this.stats.written += rows.length;
        return;
      } catch (err) {
        if (isPartialFailure(err)) {
          const rejected = err.errors.length;
          this.stats.failed += rejected;
          this.stats.written += rows.length - rejected;
          log.warn({ rejected, errors: err.errors.slice(0, 3).map((e) => e.errors) }, 'bigquery message log: rows rejected');
          return;
        }
        if (attempt >= maxRetries || !isRetryable(err)) {
          this.stats.failed += rows.length;
          log.error({ err, rows: rows.length, attempts: attempt + 1 }, 'bigquery message log: insert failed, rows dropped');
          return;
        }
        const delay = retryBaseMs * 2 ** attempt * (0.5 + Math.random() / 2);
        log.warn({ err, attempt: attempt + 1, delayMs: Math.round(delay) }, 'bigquery message log: insert failed, retrying');
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }
}
