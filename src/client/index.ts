/** Tern's MQTT client: the public surface shared by the bridge and `tern bench`. */
export { MqttClient, type PublishOptions, type SubscribeOptions, type SubscribeRequest } from './client.js';
export type { ClientEvents } from './events.js';
export type { ClientOptions, ReconnectOptions, TlsOptions } from './options.js';
export type { PublishCallback } from './inflight.js';
