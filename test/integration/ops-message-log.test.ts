/**
 * Message logging through a running broker: messages on the configured
 * topic filters reach the NDJSON file and BigQuery (a local insertAll
 * server), others do not.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { BigQueryOptions } from '@google-cloud/bigquery';
import type { MessageRecord } from '../../src/ops/message-record.js';
import { connectMqtt } from '../helpers/mqtt-client.js';
import { eventually, startOps } from '../http/ops-helpers.js';

const T = { timeout: 15_000 };

test('the file sink logs messages on its filters as NDJSON records', T, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tern-msglog-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'messages.ndjson');
  const { mqttUrl, ops } = await startOps(t, { messageLog: { file: { enabled: true, path, filters: ['log/#', 'audit/+'] } } });
  const c = await connectMqtt(t, mqttUrl, { clientId: 'logger-1', protocolVersion: 5 });
  await c.publishAsync('log/a/b', 'one', { qos: 1, retain: true, properties: { contentType: 'text/plain' } });
  await c.publishAsync('skip/me', 'no', { qos: 1 });
  await c.publishAsync('audit/x', Buffer.from([0xc3, 0x28]), { qos: 0 });
  await c.publishAsync('audit/x/deeper', 'no', { qos: 1 });
  await eventually(() => ops.sinks[0]!.stats.written === 2 || undefined, 'two rows written');
  const rows = (await readFile(path, 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as MessageRecord);
  assert.deepEqual(
    rows.map(({ ts: _ts, ...rest }) => rest),
    [
      { topic: 'log/a/b', qos: 1, retain: true, client_id: 'logger-1', payload: 'one', payload_encoding: 'utf8', payload_bytes: 3, content_type: 'text/plain' },
      { topic: 'audit/x', qos: 0, retain: false, client_id: 'logger-1', payload: 'wyg=', payload_encoding: 'base64', payload_bytes: 2, content_type: null },
    ],
  );
  assert.ok(rows.every((r) => !Number.isNaN(Date.parse(r.ts))));
});

test('the BigQuery sink streams matching messages to insertAll and flushes on close', T, async (t) => {
  const rows: Array<{ insertId: string; json: MessageRecord }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url?.startsWith('/bigquery/v2/projects/p1/datasets/tern/tables/messages/insertAll') === true) {
        rows.push(...(JSON.parse(Buffer.concat(chunks).toString()) as { rows: typeof rows }).rows);
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"kind":"bigquery#tableDataInsertAllResponse"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const authClient = { getRequestHeaders: async () => new Headers({ authorization: 'Bearer t' }) };
  const { mqttUrl, ops } = await startOps(
    t,
    { messageLog: { bigquery: { enabled: true, projectId: 'p1', apiEndpoint: endpoint, filters: ['bq/#'], flushIntervalMs: 60_000 } } },
    { bigquery: { authClient } as unknown as BigQueryOptions },
  );
  const c = await connectMqtt(t, mqttUrl, { clientId: 'bq-dev' });
  await c.publishAsync('bq/1', 'a', { qos: 1 });
  await c.publishAsync('nope', 'b', { qos: 1 });
  await c.publishAsync('bq/2', 'c', { qos: 1 });
  await eventually(() => ops.sinks[0]!.stats.buffered === 2 || undefined, 'two rows buffered');
  assert.equal(rows.length, 0, 'a partial batch waits for the flush interval');
  await ops.close();
  assert.deepEqual(
    rows.map((r) => [r.json.topic, r.json.payload, r.json.client_id]),
    [
      ['bq/1', 'a', 'bq-dev'],
      ['bq/2', 'c', 'bq-dev'],
    ],
  );
});
