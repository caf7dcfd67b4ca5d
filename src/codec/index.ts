/** The MQTT 3.1.1 / 5.0 codec shared by broker, bridge and client (P11). */
export * from './constants.js';
export type * from './types.js';
export { Framer, type FramerOptions, type PacketCallback } from './framer.js';
export { decodePacket, decodeConnect } from './decode.js';
export { encodePacket } from './encode.js';
export { encodePublishShared, stampPacketId, type EncodedPublish } from './publish.js';
