import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseBridgeConfigText, resolveBridgeConfig } from '../../src/bridge/config.js';
import { filtersOverlap, forwardTopic, subscribeOutputFilter, subscribeTopic } from '../../src/bridge/topics.js';
import { isTernError } from '../../src/errors.js';

describe('bridge topic mapping', () => {
  it('prepends the remote prefix on forward and strips on subscribe', () => {
    assert.equal(forwardTopic('devices/edge1/', 'sensors/temp'), 'devices/edge1/sensors/temp');
    assert.equal(subscribeTopic('devices/edge1/', '', 'devices/edge1/cmd/reboot'), 'cmd/reboot');
    assert.equal(subscribeTopic('devices/edge1/', 'remote/', 'devices/edge1/cmd/x'), 'remote/cmd/x');
    assert.equal(subscribeOutputFilter('devices/edge1/cmd/#', 'devices/edge1/', ''), 'cmd/#');
    assert.equal(subscribeOutputFilter('devices/+/cmd/#', 'devices/edge1/', ''), undefined);
  });

  it('decides filter overlap level by level [MQTT-4.7.1-2] [MQTT-4.7.2-1]', () => {
    assert.ok(filtersOverlap('cmd/#', '#'));
    assert.ok(filtersOverlap('cmd/+/x', 'cmd/y/+'));
    assert.ok(filtersOverlap('a/#', 'a'));
    assert.ok(!filtersOverlap('cmd/#', 'sensors/#'));
    assert.ok(!filtersOverlap('a/b', 'a/b/c'));
    assert.ok(!filtersOverlap('$SYS/x', '#'));
    assert.ok(!filtersOverlap('+/x', '$SYS/x'));
  });
});

const base = `
name = "edge1"
[remote]
host = "example.org"
[[forward]]
local = "sensors/#"
remote_prefix = "devices/edge1/"
`;

describe('bridge config', () => {
  it('maps snake_case TOML onto the schema with defaults', () => {
    const c = parseBridgeConfigText(base + '[cache]\nmax_messages = 10\noverflow = "reject_new"\n', 'b.toml');
    assert.equal(c.forward[0]!.remotePrefix, 'devices/edge1/');
    assert.equal(c.forward[0]!.qos, 1);
    assert.equal(c.cache.maxMessages, 10);
    assert.equal(c.cache.overflow, 'reject_new');
    assert.equal(c.remote.inflightWindow, 100);
    assert.equal(c.local.protocolVersion, 'auto');
  });

  it('refuses a subscribe rule whose local topics a forward rule matches (a loop)', () => {
    const text = base.replace('sensors/#', '#') + '[[subscribe]]\nremote = "devices/edge1/cmd/#"\nstrip_prefix = "devices/edge1/"\n';
    assert.throws(
      () => parseBridgeConfigText(text, 'b.toml'),
      (err: unknown) => isTernError(err, 'ERR_CONFIG_INVALID') && /b\.toml:\d+: subscribe\[0\]\.remote: makes a loop/.test(err.message),
    );
    // The same rule is fine when nothing forwards its output.
    assert.doesNotThrow(() => parseBridgeConfigText(base + '[[subscribe]]\nremote = "devices/edge1/cmd/#"\nstrip_prefix = "devices/edge1/"\n', 'b.toml'));
  });

  it('reports unknown keys and bad values with file and line', () => {
    assert.throws(
      () => parseBridgeConfigText(base + '[cache]\nmax_mesages = 3\ndurability = "sometimes"\n', 'b.toml'),
      (err: unknown) => isTernError(err, 'ERR_CONFIG_INVALID') && /b\.toml:9: cache\.max_mesages: unknown key/.test(err.message) && /cache\.durability/.test(err.message),
    );
  });

  it('needs at least one rule and valid filters', () => {
    assert.throws(() => resolveBridgeConfig({ name: 'x', remote: { host: 'h' } }), /at least one/);
    assert.throws(() => resolveBridgeConfig({ name: 'x', remote: { host: 'h' }, forward: [{ local: 'a/#/b' }] }), /invalid topic filter/);
    assert.throws(() => resolveBridgeConfig({ name: 'x', remote: { host: 'h' }, forward: [{ local: 'a', remotePrefix: 'p/+/' }] }), /prefix/);
  });
});
