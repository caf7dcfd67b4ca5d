/**
 * AUTH on an open connection: v5 re-authentication [MQTT-4.12.1]. The client
 * starts it with reason 0x19 and the method it authenticated with; the
 * authenticate hooks run with `reauthenticate: true`, exchanging AUTH 0x18
 * while they answer `continue`. Success is AUTH 0x00; failure disconnects
 * with the hook's reason code. The connection's other packets wait meanwhile.
 */
import { ReasonCode } from '../../codec/constants.js';
import type { AuthPacket, Properties } from '../../codec/types.js';
import { ternError } from '../../errors.js';
import { isPromise } from '../../hooks/registry.js';
import type { Connection } from '../connection.js';
import type { BrokerCore } from '../core.js';

export function handleAuth(core: BrokerCore, conn: Connection, packet: AuthPacket): void {
  const method = conn.authMethod;
  // [MQTT-4.12.0-7] AUTH only from a client that authenticated with a method, and with that method.
  if (conn.level !== 5 || method === undefined) throw ternError('ERR_MQTT_PROTOCOL', 'AUTH without an authentication method');
  if (packet.reasonCode !== ReasonCode.REAUTHENTICATE || packet.properties?.authenticationMethod !== method) {
    throw ternError('ERR_MQTT_PROTOCOL', 'AUTH must start re-authentication (0x19) with the same method');
  }
  conn.hold();
  reauthenticate(core, conn, method, packet.properties?.authenticationData).then(
    () => {
      if (!conn.closed) conn.release();
    },
    (err: unknown) => core.onProtocolError(conn, ternError('ERR_MQTT_PROTOCOL', `re-authentication failed: ${String(err)}`, { cause: err })),
  );
}

async function reauthenticate(core: BrokerCore, conn: Connection, method: string, first: Buffer | undefined): Promise<void> {
  let data = first;
  for (let step = 1; ; step++) {
    const pending = core.security.hooks.authenticate({
      clientId: conn.clientId,
      username: conn.username,
      password: undefined,
      protocolLevel: 5,
      info: conn.info,
      method,
      data,
      step,
      reauthenticate: true,
    });
    const verdict = isPromise(pending) ? await pending : pending;
    if (conn.closed) return;
    const properties: Properties = { authenticationMethod: method };
    if (verdict.authData !== undefined) properties.authenticationData = verdict.authData;
    if (verdict.result === 'allow') {
      if (verdict.username !== undefined) conn.username = verdict.username;
      conn.send({ type: 'auth', reasonCode: ReasonCode.SUCCESS, properties });
      return;
    }
    if (verdict.result === 'deny') {
      core.stats.authFailures++;
      core.log.info({ clientId: conn.clientId, reason: verdict.reason }, 're-authentication failed');
      conn.disconnect(verdict.reasonCode, 're-authentication failed');
      return;
    }
    conn.send({ type: 'auth', reasonCode: ReasonCode.CONTINUE_AUTHENTICATION, properties });
    const answer = await conn.nextAuth();
    if (answer === null || conn.closed) return;
    if (answer.reasonCode !== ReasonCode.CONTINUE_AUTHENTICATION || answer.properties?.authenticationMethod !== method) {
      conn.disconnect(ReasonCode.PROTOCOL_ERROR, 'bad AUTH during re-authentication');
      return;
    }
    data = answer.properties?.authenticationData;
  }
}
