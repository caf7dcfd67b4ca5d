import type { Connection } from '../connection.js';
import type { BrokerCore } from '../core.js';

const PINGRESP = Buffer.from([0xd0, 0x00]);

/** [MQTT-3.12.4-1] answer PINGREQ with PINGRESP. */
export function handlePingreq(_core: BrokerCore, conn: Connection): void {
  conn.write(PINGRESP);
}
