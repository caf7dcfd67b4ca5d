/**
 * The message-logging sinks of one broker (`[message_log.file]`,
 * `[message_log.bigquery]`), each fed by the message tap through its topic
 * filters, and reconfigured in place on a config reload:
 * - only `filters` changed: the same sink gets the new filters (nothing
 *   buffered is lost, the file stays open);
 * - anything else changed: a new sink is opened first, takes over the
 *   filters, and the old one is then flushed and closed;
 * - disabled: the sink is flushed and closed.
 * A sink that fails to open (or filters the tap refuses) leaves the running
 * sink as it was, and the failure is reported.
 */
import { isDeepStrictEqual } from 'node:util';
import type { BigQueryOptions } from '@google-cloud/bigquery';
import type { BigqueryLogConfig, FileLogConfig, MessageLogConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import { toRecord } from './message-record.js';
import type { MessageTap } from './message-tap.js';
import { BigquerySink } from './sinks/bigquery-sink.js';
import { FileSink } from './sinks/file-sink.js';
import type { MessageSink, SinkStats } from './sinks/sink.js';

export type SinkKind = 'file' | 'bigquery';
const KINDS: readonly SinkKind[] = ['file', 'bigquery'];

type SinkConfig = FileLogConfig | BigqueryLogConfig;

interface Slot {
  config: SinkConfig;
  sink: MessageSink;
  untap: () => void;
}

export interface MessageLogOptions {
  tap: MessageTap;
  log: Logger;
  /** Extra BigQuery client options (tests). */
  bigquery?: BigQueryOptions | undefined;
}

/** What configure() did for each sink whose section changed. */
export interface SinkChange {
  kind: SinkKind;
  /** Undefined when the change is in effect. */
  error?: unknown;
}

export class MessageLog {
  readonly #opts: MessageLogOptions;
  readonly #slots = new Map<SinkKind, Slot>();
  /** The section each sink runs on (a failed reconfiguration keeps the old one). */
  readonly #configs = new Map<SinkKind, SinkConfig>();
  /** Counts of closed sinks not yet added to their successor, so a sink's totals never go back. */
  readonly #carried = new Map<SinkKind, Pick<SinkStats, 'written' | 'dropped' | 'failed'>>();

  constructor(options: MessageLogOptions) {
    this.#opts = options;
  }

  /** The sinks running now, file first. */
  get sinks(): MessageSink[] {
    return KINDS.flatMap((k) => {
      const slot = this.#slots.get(k);
      return slot !== undefined ? [slot.sink] : [];
    });
  }

  /**
   * Bring the sinks in line with `config`. At start-up (`strict`) the first
   * failure is thrown; on reload each changed sink is reported, and a failed
   * one keeps running as before.
   */
  async configure(config: MessageLogConfig, strict = false): Promise<SinkChange[]> {
    const changes: SinkChange[] = [];
    for (const kind of KINDS) {
      const next = config[kind];
      if (isDeepStrictEqual(this.#configs.get(kind), next)) continue;
      try {
        await this.#apply(kind, next);
        this.#configs.set(kind, next);
        changes.push({ kind });
      } catch (err) {
        if (strict) throw err;
        this.#opts.log.error({ err, sink: kind }, 'message log sink not reconfigured; keeping the running one');
        changes.push({ kind, error: err });
      }
    }
    return changes;
  }

  async #apply(kind: SinkKind, next: SinkConfig): Promise<void> {
    const slot = this.#slots.get(kind);
    if (!next.enabled) {
      if (slot === undefined) return;
      this.#slots.delete(kind);
      slot.untap();
      await this.#retire(kind, slot.sink);
      return;
    }
    const { tap } = this.#opts;
    for (const f of next.filters) if (!tap.isValidFilter(f)) throw new TypeError(`message_log.${kind}.filters: invalid topic filter ${JSON.stringify(f)}`);
    if (slot !== undefined && isDeepStrictEqual({ ...slot.config, filters: next.filters }, next)) {
      // Only the filters changed: re-point the same sink.
      const untap = tap.add(next.filters, { onMessage: (m, c) => slot.sink.push(toRecord(m, c)) });
      slot.untap();
      this.#slots.set(kind, { config: next, sink: slot.sink, untap });
      return;
    }
    // Write out what the old sink holds first, so the new one (perhaps on the same file) starts after it.
    await slot?.sink.flush();
    const sink = await this.#open(kind, next);
    const untap = tap.add(next.filters, { onMessage: (m, c) => sink.push(toRecord(m, c)) });
    this.#slots.set(kind, { config: next, sink, untap });
    if (slot !== undefined) {
      slot.untap();
      await this.#retire(kind, slot.sink);
    }
    this.#handOver(kind);
  }

  /** Close a sink (flushing it) and keep its counts for the next sink of its kind. */
  async #retire(kind: SinkKind, sink: MessageSink): Promise<void> {
    await sink.close();
    const c = this.#carried.get(kind) ?? { written: 0, dropped: 0, failed: 0 };
    c.written += sink.stats.written;
    c.dropped += sink.stats.dropped;
    c.failed += sink.stats.failed;
    this.#carried.set(kind, c);
  }

  /** Add the retired sinks' counts to the running one (metrics counters must not go back). */
  #handOver(kind: SinkKind): void {
    const c = this.#carried.get(kind);
    const slot = this.#slots.get(kind);
    if (c === undefined || slot === undefined) return;
    this.#carried.delete(kind);
    slot.sink.stats.written += c.written;
    slot.sink.stats.dropped += c.dropped;
    slot.sink.stats.failed += c.failed;
  }

  async #open(kind: SinkKind, config: SinkConfig): Promise<MessageSink> {
    const log = this.#opts.log;
    if (kind === 'file') {
      const c = config as FileLogConfig;
      const sink = new FileSink({ path: c.path, maxBytes: c.maxBytes, maxFiles: c.maxFiles, maxBuffer: c.maxBuffer, log });
      await sink.open();
      return sink;
    }
    const { enabled: _e, filters: _f, ...rest } = config as BigqueryLogConfig;
    const clientOptions = this.#opts.bigquery;
    return BigquerySink.create({ ...rest, log, ...(clientOptions !== undefined ? { clientOptions } : {}) });
  }

  /** Stop feeding the sinks, then flush and close them. */
  async close(): Promise<void> {
    const slots = [...this.#slots.values()];
    this.#slots.clear();
    for (const slot of slots) slot.untap();
    for (const slot of slots) {
      try {
        await slot.sink.close();
      } catch (err) {
        this.#opts.log.warn({ err }, 'message log sink: error while closing');
      }
    }
  }
}
