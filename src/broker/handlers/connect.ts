/**
 * CONNECT [MQTT-3.1] -> CONNACK [MQTT-3.2], as named steps:
 * checkConnect (protocol rules, client id) -> authenticate -> takeOver
 * (close an existing connection with the same id [MQTT-3.1.4-2]) ->
 * openSession (clean start or resume) -> acknowledge (CONNACK, then resend
 * in-flight messages and release the queue).
 */
import { ConnackReturnCode, ReasonCode } from '../../codec/constants.js';
import type { ConnectPacket, Properties } from '../../codec/types.js';
import { isPromise } from '../../hooks/registry.js';
import type { AuthVerdict, HookConnectionInfo } from '../../hooks/types.js';
import { TernError, ternError } from '../../errors.js';
import type { Connection } from '../connection.js';
import type { BrokerCore } from '../core.js';

export function handleConnect(core: BrokerCore, conn: Connection, packet: ConnectPacket): void {
  if (!conn.isAwaitingConnect) {
    // [MQTT-3.1.0-2] a second CONNECT is a protocol violation.
    throw ternError('ERR_MQTT_PROTOCOL', 'second CONNECT');
  }
  conn.level = packet.protocolLevel;
  conn.markConnecting();
  connectFlow(core, conn, packet).catch((err: unknown) => {
    if (conn.closed) return;
    core.onProtocolError(conn, err instanceof TernError ? err : ternError('ERR_MQTT_PROTOCOL', String(err), { cause: err }));
  });
}

async function connectFlow(core: BrokerCore, conn: Connection, packet: ConnectPacket): Promise<void> {
  const v5 = packet.protocolLevel === 5;
  const mqtt = core.config.mqtt;
  const limits = core.config.limits;

  if (core.closing) return refuse(conn, v5 ? ReasonCode.SERVER_SHUTTING_DOWN : ConnackReturnCode.SERVER_UNAVAILABLE, 'shutting down');
  if (mqtt.serverReference !== '') {
    // Redirect mode [MQTT-4.11]: v5 clients learn where to go.
    if (!v5) return refuse(conn, ConnackReturnCode.SERVER_UNAVAILABLE, 'redirected');
    return refuse(conn, ReasonCode.USE_ANOTHER_SERVER, 'redirected', { serverReference: mqtt.serverReference });
  }

  // Client identifier [MQTT-3.1.3-6/7/8].
  let clientId = packet.clientId;
  let assigned: string | undefined;
  if (clientId.length === 0) {
    if ((!v5 && !packet.clean) || !mqtt.allowZeroLengthClientId) {
      return refuse(conn, v5 ? ReasonCode.CLIENT_IDENTIFIER_NOT_VALID : ConnackReturnCode.IDENTIFIER_REJECTED, 'empty client id');
    }
    clientId = core.generateClientId();
    if (v5) assigned = clientId;
  }

  // Keep-alive cap: v5 clients are told [MQTT-3.2.2-21]; v3.1.1 clients asking for more are refused, as Mosquitto does.
  let keepalive = packet.keepalive;
  let serverKeepAlive: number | undefined;
  if (limits.maxKeepalive > 0 && (keepalive === 0 || keepalive > limits.maxKeepalive)) {
    if (!v5) return refuse(conn, ConnackReturnCode.IDENTIFIER_REJECTED, `keep-alive ${keepalive} above maximum`);
    keepalive = serverKeepAlive = limits.maxKeepalive;
  }

  // [MQTT-3.2.2-12] [MQTT-3.2.2-13] a will the server cannot honour is refused (v5 says why).
  if (v5 && packet.will !== undefined) {
    if (packet.will.qos > mqtt.maxQos) return refuse(conn, ReasonCode.QOS_NOT_SUPPORTED, `will QoS ${packet.will.qos}`);
    if (packet.will.retain && !mqtt.retainAvailable) return refuse(conn, ReasonCode.RETAIN_NOT_SUPPORTED, 'will retain');
  }
  const props = packet.properties;
  if (v5 && props !== undefined) {
    if (props.receiveMaximum !== undefined) conn.clientReceiveMaximum = props.receiveMaximum;
    if (props.maximumPacketSize !== undefined) conn.clientMaximumPacketSize = props.maximumPacketSize;
    if (props.topicAliasMaximum !== undefined) conn.clientTopicAliasMaximum = props.topicAliasMaximum;
  }

  conn.clientId = clientId;
  // use_identity_as_username: the client certificate's identity replaces the username.
  conn.username = (conn.info as HookConnectionInfo).identity ?? packet.username;
  const verdict = await authenticate(core, conn, packet);
  if (conn.closed || verdict === undefined) return;
  if (verdict.result !== 'allow') {
    core.stats.authFailures++;
    core.security.bans.recordFailure(conn.info.remoteAddress, 'auth');
    core.log.info({ clientId, address: conn.info.remoteAddress, reason: verdict.reason }, 'authentication failed');
    const code = v5 ? verdict.reasonCode : verdict.reasonCode === ReasonCode.BAD_USER_NAME_OR_PASSWORD
      ? ConnackReturnCode.BAD_USERNAME_OR_PASSWORD : ConnackReturnCode.NOT_AUTHORIZED;
    return refuse(conn, code, verdict.reason ?? 'not authorized');
  }
  if (verdict.username !== undefined) conn.username = verdict.username;

  // In a cluster the session may live on another node: claim it there first, then load it here.
  if (core.cluster !== null) {
    if (!core.cluster.ready) return refuse(conn, v5 ? ReasonCode.SERVER_UNAVAILABLE : ConnackReturnCode.SERVER_UNAVAILABLE, 'cluster not ready');
    const prepare = packet.clean ? undefined : () => core.prepareSession(clientId);
    const previous = await core.cluster.claim(clientId, !packet.clean, prepare);
    if (conn.closed) {
      core.abandonPrepared(clientId);
      return;
    }
    if ((!core.sessions.has(clientId) || core.sessions.get(clientId)!.preparing) && previous !== '') {
      if (packet.clean) core.durable.deleteSession(clientId);
      else await core.loadStoredSession(clientId);
      if (conn.closed) {
        core.abandonPrepared(clientId);
        return;
      }
    }
  }

  // Take over an existing connection with this client id [MQTT-3.1.4-2].
  const existing = core.sessions.get(clientId);
  const old = existing?.link as Connection | null | undefined;
  if (old && old !== conn) {
    old.closeReason = 'session taken over';
    old.disconnect(ReasonCode.SESSION_TAKEN_OVER, 'session taken over');
    // Detach now so the old connection's close does not touch the session; its will still goes out.
    old.session = null;
    existing!.detach();
    const will = existing!.will;
    existing!.will = undefined;
    // The taken-over connection's will goes out, unless it has a v5 will delay and
    // this connection resumes the session within it [MQTT-3.1.3-9].
    const delayed = (will?.properties?.willDelayInterval ?? 0) > 0 && !packet.clean;
    if (will !== undefined && !delayed) core.publishWill(will, clientId);
  }

  // Session: clean start discards any existing state [MQTT-3.1.2-4]; otherwise resume [MQTT-3.1.2-5].
  let session = existing;
  let sessionPresent = false;
  if (session !== undefined && (packet.clean || session.ended)) {
    core.endSession(session, false);
    session = undefined;
  }
  if (session === undefined) {
    session = core.newSession(clientId);
  } else {
    sessionPresent = true;
    core.cancelPendingWill(session);
    clearTimeout(session.expiryTimer);
    session.expiryTimer = undefined;
  }
  session.expiryInterval = v5
    ? Math.min(props?.sessionExpiryInterval ?? 0, mqtt.maxSessionExpiry)
    : packet.clean
      ? 0
      : mqtt.persistentSessionExpiry;
  session.will = packet.will;
  if (packet.will !== undefined && core.cluster !== null) core.cluster.setWill(clientId, packet.will);
  session.protocolLevel = packet.protocolLevel;
  session.disconnectedAt = null;
  session.client = conn;
  conn.session = session;
  // A persistent session is recorded before CONNACK says it exists.
  if (session.expiryInterval > 0) core.durable.putSession(session);
  else if (session.stored) {
    core.durable.deleteSession(clientId);
    session.stored = false;
  }
  const pending = core.pendingCommit();
  if (pending !== undefined) {
    await pending;
    // Closed meanwhile: the connection's close already released the session.
    if (conn.closed) return;
  }

  let connack: Properties | undefined = v5 ? connackProperties(core, clientId, assigned, serverKeepAlive, props) : undefined;
  if (conn.authMethod !== undefined) {
    connack = { ...connack, authenticationMethod: conn.authMethod };
    if (verdict.authData !== undefined) connack.authenticationData = verdict.authData;
  }
  conn.send(
    connack !== undefined
      ? { type: 'connack', sessionPresent, reasonCode: 0, properties: connack }
      : { type: 'connack', sessionPresent, reasonCode: 0 },
  );
  conn.markConnected(keepalive);
  session.attach(conn);
  core.log.debug({ clientId, address: conn.info.remoteAddress, level: packet.protocolLevel, sessionPresent }, 'client connected');
  core.events.emit('clientConnected', clientId, { address: conn.info.remoteAddress, protocolLevel: packet.protocolLevel, sessionPresent });
  if (core.security.hooks.listens('connect')) core.security.hooks.emit('connect', conn);
}

/**
 * Run the authenticate hooks for a CONNECT, and for v5 enhanced
 * authentication the AUTH exchange [MQTT-4.12]: while a hook answers
 * `continue`, send AUTH 0x18 with its data and feed the client's next AUTH
 * back to it. Returns undefined if the connection closed meanwhile.
 */
async function authenticate(core: BrokerCore, conn: Connection, packet: ConnectPacket): Promise<AuthVerdict | undefined> {
  const props = packet.properties;
  const method = packet.protocolLevel === 5 ? props?.authenticationMethod : undefined;
  conn.authMethod = method;
  let data = props?.authenticationData;
  for (let step = 0; ; step++) {
    const pending = core.security.hooks.authenticate({
      clientId: conn.clientId,
      username: conn.username,
      password: packet.password,
      protocolLevel: packet.protocolLevel,
      info: conn.info,
      method,
      data,
      step,
      reauthenticate: false,
    });
    const verdict = isPromise(pending) ? await pending : pending;
    if (conn.closed) return undefined;
    if (verdict.result !== 'continue') return verdict;
    if (method === undefined) return { ...verdict, result: 'deny', reasonCode: ReasonCode.PROTOCOL_ERROR };
    const properties: Properties = { authenticationMethod: method };
    if (verdict.authData !== undefined) properties.authenticationData = verdict.authData;
    conn.send({ type: 'auth', reasonCode: ReasonCode.CONTINUE_AUTHENTICATION, properties });
    const answer = await conn.nextAuth();
    if (answer === null || conn.closed) return undefined;
    // [MQTT-4.12.0-?] the method must not change within the exchange.
    if (answer.reasonCode !== ReasonCode.CONTINUE_AUTHENTICATION || answer.properties?.authenticationMethod !== method) {
      return { ...verdict, result: 'deny', reasonCode: ReasonCode.PROTOCOL_ERROR, reason: 'bad AUTH during authentication' };
    }
    data = answer.properties?.authenticationData;
  }
}

function refuse(conn: Connection, code: number, reason: string, properties?: Properties): void {
  conn.send(
    properties !== undefined
      ? { type: 'connack', sessionPresent: false, reasonCode: code, properties }
      : { type: 'connack', sessionPresent: false, reasonCode: code },
  );
  conn.closeReason = `connect refused: ${reason}`;
  conn.end(); // [MQTT-3.2.2-5] close after a refusing CONNACK.
}

/** v5 CONNACK properties: report capabilities truthfully [MQTT-3.2.2-?]. */
function connackProperties(
  core: BrokerCore,
  clientId: string,
  assigned: string | undefined,
  serverKeepAlive: number | undefined,
  requested: Properties | undefined,
): Properties | undefined {
  const mqtt = core.config.mqtt;
  const p: Properties = {};
  if (assigned !== undefined) p.assignedClientIdentifier = assigned;
  if (serverKeepAlive !== undefined) p.serverKeepAlive = serverKeepAlive;
  if (mqtt.receiveMaximum !== 65535) p.receiveMaximum = mqtt.receiveMaximum;
  if (mqtt.maxQos !== 2) p.maximumQoS = mqtt.maxQos;
  if (!mqtt.retainAvailable) p.retainAvailable = 0;
  if (core.maxPacketSize < 268435460) p.maximumPacketSize = core.maxPacketSize;
  if (mqtt.topicAliasMaximum > 0) p.topicAliasMaximum = mqtt.topicAliasMaximum;
  if (!mqtt.wildcardSubscriptions) p.wildcardSubscriptionAvailable = 0;
  if (!mqtt.subscriptionIdentifiers) p.subscriptionIdentifierAvailable = 0;
  if (!mqtt.sharedSubscriptions) p.sharedSubscriptionAvailable = 0;
  // [MQTT-3.1.2-28] response information only when requested (and configured).
  if (requested?.requestResponseInformation === 1 && mqtt.responseInformation !== '') {
    p.responseInformation = mqtt.responseInformation.replaceAll('%c', clientId);
  }
  const asked = requested?.sessionExpiryInterval;
  if (asked !== undefined && asked > mqtt.maxSessionExpiry) p.sessionExpiryInterval = mqtt.maxSessionExpiry;
  return Object.keys(p).length > 0 ? p : undefined;
}
