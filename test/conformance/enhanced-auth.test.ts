/**
 * Enhanced authentication (AUTH exchange) at CONNECT and re-authentication on
 * an open connection [MQTT-4.12], through a plugin's authenticate hook.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, test, type TestContext } from 'node:test';
import { startBroker, isMosquitto } from '../helpers/broker.js';
import { Client5, P, Prop, RC, connect } from './helpers/v5.js';

const T = { timeout: 10_000 };
const PLUGIN = fileURLToPath(new URL('../fixtures/plugins/challenge-auth.ts', import.meta.url));

function auth(reasonCode: number, data?: string): Buffer {
  const props: Array<[number, string | Buffer]> = [[Prop.AUTHENTICATION_METHOD, 'CHALLENGE']];
  if (data !== undefined) props.push([Prop.AUTHENTICATION_DATA, Buffer.from(data)]);
  return P.packet(P.PT.AUTH, 0, Buffer.concat([Buffer.from([reasonCode]), P.properties(props)]));
}

async function start(t: TestContext): Promise<number> {
  const { port } = await startBroker(t, { plugins: { challenge: { module: PLUGIN, options: { secret: 'open sesame' } } } });
  return port;
}

/** CONNECT with the method, answer the challenge; returns the client and the CONNACK. */
async function handshake(t: TestContext, port: number, answer: string) {
  const c = await Client5.open(port, t);
  c.send(connect({ properties: [[Prop.AUTHENTICATION_METHOD, 'CHALLENGE'], [Prop.AUTHENTICATION_DATA, Buffer.from('answer?')]] }));
  const challenge = await c.expect('auth');
  assert.equal(challenge.reasonCode, RC.CONTINUE_AUTHENTICATION);
  assert.equal((challenge.props.get(Prop.AUTHENTICATION_DATA) as Buffer).toString(), 'nonce');
  c.send(auth(RC.CONTINUE_AUTHENTICATION, answer));
  return { c, connack: await c.expect('connack') };
}

describe('enhanced authentication', { skip: isMosquitto ? 'needs a Tern plugin' : false }, () => {
  test('a challenge answered right connects, and CONNACK repeats the method [MQTT-4.12.0-2, MQTT-4.12.0-5]', T, async (t) => {
    const port = await start(t);
    const { connack } = await handshake(t, port, 'open sesame');
    assert.equal(connack.reasonCode, 0);
    assert.equal(connack.props.str(Prop.AUTHENTICATION_METHOD), 'CHALLENGE');
  });

  test('a challenge answered wrong is refused with the hook reason code and closed [MQTT-4.12.0-4]', T, async (t) => {
    const port = await start(t);
    const { c, connack } = await handshake(t, port, 'wrong');
    assert.equal(connack.reasonCode, RC.NOT_AUTHORIZED);
    await c.expectClose();
  });

  test('re-authentication with AUTH 0x19 succeeds with AUTH 0x00, and a failed one disconnects [MQTT-4.12.1-1, MQTT-4.12.1-2]', T, async (t) => {
    const port = await start(t);
    const { c } = await handshake(t, port, 'open sesame');
    c.send(auth(RC.REAUTHENTICATE, 'answer?'));
    const challenge = await c.expect('auth');
    assert.equal(challenge.reasonCode, RC.CONTINUE_AUTHENTICATION);
    c.send(auth(RC.CONTINUE_AUTHENTICATION, 'open sesame'));
    assert.equal((await c.expect('auth')).reasonCode, RC.SUCCESS);
    // The connection still works, then a failed re-authentication ends it.
    c.send(P.packet(P.PT.PINGREQ, 0, Buffer.alloc(0)));
    await c.expect('pingresp');
    c.send(auth(RC.REAUTHENTICATE, 'answer?'));
    await c.expect('auth');
    c.send(auth(RC.CONTINUE_AUTHENTICATION, 'wrong'));
    assert.equal((await c.expectDisconnect()).reasonCode, RC.NOT_AUTHORIZED);
  });

  test('AUTH with another method than the connection authenticated with is a protocol error [MQTT-4.12.1-1]', T, async (t) => {
    const port = await start(t);
    const { c } = await handshake(t, port, 'open sesame');
    c.send(P.packet(P.PT.AUTH, 0, Buffer.concat([Buffer.from([RC.REAUTHENTICATE]), P.properties([[Prop.AUTHENTICATION_METHOD, 'OTHER']])])));
    assert.equal((await c.expectDisconnect()).reasonCode, RC.PROTOCOL_ERROR);
  });
});
