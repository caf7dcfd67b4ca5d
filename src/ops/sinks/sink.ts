/** What every message-logging sink offers to the operations module. */
import type { MessageRecord } from '../message-record.js';

export interface SinkStats {
  /** Sink name as used in metric labels: `file`, `bigquery`. */
  readonly name: string;
  /** Rows written (file) or accepted by the service (BigQuery). */
  written: number;
  /** Rows dropped because the buffer was full. */
  dropped: number;
  /** Rows given up on after an error (write failed, retries exhausted, rejected by the service). */
  failed: number;
  /** Rows waiting in the buffer right now. */
  buffered: number;
}

export interface MessageSink {
  readonly stats: SinkStats;
  /** Take one record; never throws, never blocks (a full buffer drops and counts). */
  push(record: MessageRecord): void;
  /** Write out what is buffered now (tests, shutdown). */
  flush(): Promise<void>;
  /** Flush (bounded in time) and release resources. */
  close(): Promise<void>;
}
