/** Encode-once PUBLISH fan-out; see packets/publish.ts. */
export { encodePublishShared, stampPacketId, type EncodedPublish } from './packets/publish.js';
