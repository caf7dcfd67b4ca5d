/**
 * Interoperability with the Eclipse Mosquitto command-line clients
 * (mosquitto_pub / mosquitto_sub, MQTT 3.1.1).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startBroker } from '../helpers/broker.js';
import { mosquittoPub, mosquittoSub } from '../helpers/mosquitto-clients.js';
import { clientId, connectMqtt, MessageCollector } from '../helpers/mqtt-client.js';

const T = { timeout: 15_000 };

test('mosquitto_pub to mosquitto_sub at QoS 0, 1 and 2', T, async (t) => {
  const { port } = await startBroker(t);
  const sub = mosquittoSub(t, port, ['-t', 'mc/qos/#', '-q', '2', '-C', '3', '-W', '8']);
  await sub.subscribed;
  for (const qos of ['0', '1', '2']) {
    const r = await mosquittoPub(t, port, ['-t', `mc/qos/${qos}`, '-m', `payload-${qos}`, '-q', qos]);
    assert.equal(r.code, 0, r.stderr);
  }
  const result = await sub.result;
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(
    result.messages.map((m) => [m.topic, m.payload, m.qos, m.retain]),
    [
      ['mc/qos/0', 'payload-0', 0, false],
      ['mc/qos/1', 'payload-1', 1, false],
      ['mc/qos/2', 'payload-2', 2, false],
    ],
  );
});

test('mosquitto_pub -r stores a retained message that mosquitto_sub gets with the retain flag; -r -n clears it [MQTT-3.3.1-5, MQTT-3.3.1-10]', T, async (t) => {
  const { port } = await startBroker(t);
  assert.equal((await mosquittoPub(t, port, ['-t', 'mc/ret', '-m', 'kept', '-q', '1', '-r'])).code, 0);
  const got = await mosquittoSub(t, port, ['-t', 'mc/ret', '-C', '1', '-W', '5']).result;
  assert.deepEqual(got.messages, [{ topic: 'mc/ret', payload: 'kept', qos: 0, retain: true }]);

  assert.equal((await mosquittoPub(t, port, ['-t', 'mc/ret', '-n', '-r', '-q', '1'])).code, 0);
  // --retained-only prints retained messages and exits on the first live one.
  const sub = mosquittoSub(t, port, ['-t', 'mc/ret', '--retained-only', '-W', '5']);
  await sub.subscribed;
  assert.equal((await mosquittoPub(t, port, ['-t', 'mc/ret', '-m', 'live'])).code, 0);
  const after = await sub.result;
  assert.deepEqual(after.messages, [], 'no retained message after clearing');
});

test('mosquitto_sub and MQTT.js interoperate in both directions', T, async (t) => {
  const { port, url } = await startBroker(t);
  const js = await connectMqtt(t, url);
  const got = new MessageCollector(js);
  await js.subscribeAsync('mc/fromcli', { qos: 1 });
  assert.equal((await mosquittoPub(t, port, ['-t', 'mc/fromcli', '-m', 'hello-js', '-q', '1'])).code, 0);
  const [m] = await got.waitFor(1);
  assert.deepEqual([m?.topic, m?.payload, m?.qos], ['mc/fromcli', 'hello-js', 1]);

  const sub = mosquittoSub(t, port, ['-t', 'mc/fromjs', '-q', '1', '-C', '1', '-W', '5']);
  await sub.subscribed;
  await js.publishAsync('mc/fromjs', 'hello-cli', { qos: 1 });
  assert.deepEqual((await sub.result).messages, [{ topic: 'mc/fromjs', payload: 'hello-cli', qos: 1, retain: false }]);
});

test('mosquitto_sub --will-topic: its will is published when it dies without DISCONNECT [MQTT-3.1.2-8]', T, async (t) => {
  const { port, url } = await startBroker(t);
  const js = await connectMqtt(t, url);
  const got = new MessageCollector(js);
  await js.subscribeAsync('mc/will', { qos: 1 });
  const sub = mosquittoSub(t, port, ['-t', 'mc/idle', '--will-topic', 'mc/will', '--will-payload', 'cli-died', '--will-qos', '1', '-W', '10']);
  await sub.subscribed;
  sub.child.kill('SIGKILL');
  const [m] = await got.waitFor(1);
  assert.deepEqual([m?.topic, m?.payload, m?.qos], ['mc/will', 'cli-died', 1]);
});

test('mosquitto_sub -c -i keeps a persistent session: QoS 1 messages sent while it is away are delivered on return [MQTT-3.1.2-4, MQTT-3.1.2-5]', T, async (t) => {
  const { port } = await startBroker(t);
  const id = clientId('cli-persist');
  // -E: exit (with DISCONNECT) once subscribed; the session stays.
  const first = await mosquittoSub(t, port, ['-c', '-i', id, '-q', '1', '-t', 'mc/persist', '-E']).result;
  assert.equal(first.code, 0, first.stderr);
  for (const text of ['offline-1', 'offline-2']) {
    assert.equal((await mosquittoPub(t, port, ['-t', 'mc/persist', '-m', text, '-q', '1'])).code, 0);
  }
  const back = await mosquittoSub(t, port, ['-c', '-i', id, '-q', '1', '-t', 'mc/persist', '-C', '2', '-W', '5']).result;
  assert.deepEqual(
    back.messages.map((m) => [m.payload, m.qos]),
    [
      ['offline-1', 1],
      ['offline-2', 1],
    ],
  );
});
