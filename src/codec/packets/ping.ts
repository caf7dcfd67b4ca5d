/** PINGREQ and PINGRESP [MQTT-3.12, 3.13]: a fixed header with remaining length 0. */
import { PacketType } from '../constants.js';
import type { PingreqPacket, PingrespPacket } from '../types.js';
import { malformed } from '../primitives.js';

export function decodePingreq(body: Buffer): PingreqPacket {
  if (body.length !== 0) throw malformed('PINGREQ with a body');
  return { type: 'pingreq' };
}

export function decodePingresp(body: Buffer): PingrespPacket {
  if (body.length !== 0) throw malformed('PINGRESP with a body');
  return { type: 'pingresp' };
}

export function encodePingreq(): Buffer {
  return Buffer.from([PacketType.PINGREQ << 4, 0]);
}

export function encodePingresp(): Buffer {
  return Buffer.from([PacketType.PINGRESP << 4, 0]);
}
