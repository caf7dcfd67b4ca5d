/**
 * Unit tests for the HTTP building blocks: the router, access control and
 * the test suite's own Prometheus text parser.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { createAuth } from '../../src/http/auth.js';
import { Router } from '../../src/http/router.js';
import { metric, parsePrometheusText } from './prom-text.js';

const noop = (): void => {};

test('the router matches literal paths, decodes parameters, and reports allowed methods', () => {
  const r = new Router().get('/api/v1/clients', noop).get('/api/v1/clients/:id', noop).post('/api/v1/clients/:id/disconnect', noop);
  const hit = r.match('GET', '/api/v1/clients/a%2Fb%20c');
  assert.equal(hit.kind, 'found');
  assert.deepEqual(hit.kind === 'found' && hit.params, { id: 'a/b c' });
  assert.equal(r.match('HEAD', '/api/v1/clients').kind, 'found');
  assert.deepEqual(r.match('DELETE', '/api/v1/clients/x/disconnect'), { kind: 'method', allowed: ['POST'] });
  assert.deepEqual(r.match('GET', '/api/v1/nope'), { kind: 'none' });
  assert.deepEqual(r.match('GET', '/api/v1/clients/%E0%A4%A'), { kind: 'none' }, 'a malformed escape matches nothing');
});

function request(authorization?: string): IncomingMessage {
  return { headers: authorization !== undefined ? { authorization } : {} } as IncomingMessage;
}
const url = (q = ''): URL => new URL(`http://x/api/v1/overview${q}`);
const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

test('with no credentials configured every request is allowed', () => {
  const auth = createAuth({ token: '', username: '', password: '' });
  assert.equal(auth.open, true);
  assert.equal(auth.check(request(), url()), true);
});

test('a bearer token is accepted in the Authorization header or as access_token, and nothing else is', () => {
  const auth = createAuth({ token: 's3cret', username: '', password: '' });
  assert.equal(auth.check(request('Bearer s3cret'), url()), true);
  assert.equal(auth.check(request('bearer s3cret'), url()), true, 'the scheme is case-insensitive');
  assert.equal(auth.check(request(), url('?access_token=s3cret')), true);
  assert.equal(auth.check(request('Bearer s3cre'), url()), false);
  assert.equal(auth.check(request('Bearer s3cret2'), url()), false);
  assert.equal(auth.check(request(), url('?access_token=nope')), false);
  assert.equal(auth.check(request(basic('s3cret', '')), url()), false);
  assert.match(auth.challenge, /^Bearer/);
});

test('basic auth needs the exact user name and password', () => {
  const auth = createAuth({ token: '', username: 'admin', password: 'pa:ss' });
  assert.equal(auth.check(request(basic('admin', 'pa:ss')), url()), true);
  assert.equal(auth.check(request(basic('admin', 'pa:s')), url()), false);
  assert.equal(auth.check(request(basic('Admin', 'pa:ss')), url()), false);
  assert.equal(auth.check(request('Bearer pa:ss'), url()), false);
  assert.match(auth.challenge, /^Basic realm="tern"/);
});

test('the Prometheus text parser reads help, types, labels with escapes and special values', () => {
  const exp = parsePrometheusText(
    [
      '# HELP a_total Things.',
      '# TYPE a_total counter',
      'a_total{reason="x \\"y\\"",sink="f\\\\g"} 3',
      'a_total{reason="z"} 1.5e3',
      'b NaN',
      'c{le="+Inf"} +Inf',
      '',
    ].join('\n'),
  );
  assert.equal(exp.types.get('a_total'), 'counter');
  assert.equal(exp.help.get('a_total'), 'Things.');
  assert.equal(metric(exp, 'a_total', { reason: 'x "y"', sink: 'f\\g' }), 3);
  assert.equal(metric(exp, 'a_total', { reason: 'z' }), 1500);
  assert.ok(Number.isNaN(metric(exp, 'b')));
  assert.equal(metric(exp, 'c'), Infinity);
  assert.throws(() => metric(exp, 'a_total'), /found 2/);
  assert.throws(() => parsePrometheusText('x{a=1} 2'), /expected ="/);
});
