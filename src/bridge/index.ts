/** The bridge's public surface (re-exported by src/index.ts). */
export { Bridge, createBridge, createBrokerBridges, type BridgeEvents, type BridgeOptions, type BridgeStats, type LinkState } from './bridge.js';
export {
  bridgeFileSchema,
  bridgeSchema,
  loadBridgeConfigFile,
  parseBridgeConfigText,
  resolveBridgeConfig,
  type BridgeConfig,
  type BridgeConfigInput,
  type BridgeFileConfig,
  type BridgeFileConfigInput,
} from './config.js';
export { BrokerLocalSide } from './local-broker.js';
export { MqttLocalSide } from './local-mqtt.js';
export type { LocalSide, LocalSink, LocalSubscription } from './local-side.js';
export { DROP_REASONS, type DropReason } from './pipeline.js';
