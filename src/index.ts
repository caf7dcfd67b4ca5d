/** Tern's public API. */
export { Broker, createBroker } from './broker/broker.js';
export type { BrokerEvents, BrokerOptions, ClientInfo, PublishOptions, ReloadFailure, ReloadResult } from './broker/broker.js';
export type { Message } from './broker/message.js';
export { TernError, ERRORS, isTernError } from './errors.js';
export type { ErrorCode } from './errors.js';
export type { TernConfig, TernConfigInput } from './config/schema.js';
export * from './codec/constants.js';
export type * from './codec/types.js';
export * from './bridge/index.js';
export type { TernPlugin, PluginApi } from './hooks/plugin.js';
export type * from './hooks/types.js';
