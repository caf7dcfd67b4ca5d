/** What every HTTP route handler is given. */
import type { Broker } from '../broker/broker.js';
import type { HttpConfig } from '../config/schema.js';
import type { BrokerMetrics } from '../observability/metrics.js';
import type { BrokerSnapshot } from '../ops/broker-stats.js';
import type { MessageTap } from '../ops/message-tap.js';
import type { SinkStats } from '../ops/sinks/sink.js';
import type { OperationsOptions } from '../ops/types.js';

export interface HttpContext {
  readonly broker: Broker;
  readonly config: HttpConfig;
  readonly tap: MessageTap;
  readonly metrics: BrokerMetrics;
  readonly options: OperationsOptions;
  readonly version: string;
  snapshot(): Promise<BrokerSnapshot>;
  sinks(): readonly SinkStats[];
  /** Live message streams open now. */
  streams: number;
}
