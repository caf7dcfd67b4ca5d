/**
 * The BigQuery message log, end to end through @google-cloud/bigquery against
 * a local server that implements tabledata.insertAll. The client gets a fixed
 * projectId, apiEndpoint http://127.0.0.1:PORT and an auth client stub that
 * returns a static header, so no token is fetched; a guard on every TCP
 * connect in this process fails the test if anything leaves the machine.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { after, before, test } from 'node:test';
import type { TestContext } from 'node:test';
import type { BigQueryOptions } from '@google-cloud/bigquery';
import { pino } from 'pino';
import type { MessageRecord } from '../../src/ops/message-record.js';
import { BigquerySink, type BigquerySinkOptions } from '../../src/ops/sinks/bigquery-sink.js';

const T = { timeout: 15_000 };
const log = pino({ level: 'silent' });

// ---- no request may leave the machine ----
const outside: string[] = [];
const connects: string[] = [];
const originalConnect = net.Socket.prototype.connect;
before(() => {
  net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
    // net.connect() passes its normalized arguments as one array.
    const a = Array.isArray(args[0]) ? (args[0] as unknown[]) : args;
    const first = a[0];
    let host: string;
    if (typeof first === 'object' && first !== null) {
      const o = first as { host?: string; path?: string };
      host = o.path ?? o.host ?? 'localhost';
    } else if (typeof first === 'number' || /^\d+$/.test(String(first))) {
      host = typeof a[1] === 'string' ? a[1] : 'localhost';
    } else {
      host = String(first); // a unix socket path
    }
    connects.push(host);
    if (!/^(127\.|localhost$|::1$|\/)/.test(host)) outside.push(host);
    return (originalConnect as (...x: unknown[]) => net.Socket).apply(this, args);
  } as typeof net.Socket.prototype.connect;
});
after(() => {
  net.Socket.prototype.connect = originalConnect;
  assert.ok(connects.length > 0 && connects.every((h) => h === '127.0.0.1'), `connections seen: ${connects.join(', ')}`);
  assert.deepEqual(outside, [], 'connections to hosts outside this machine');
});

// ---- a fake tabledata.insertAll ----
interface InsertRequest {
  url: string;
  authorization: string | undefined;
  body: { skipInvalidRows?: boolean; rows: Array<{ insertId: string; json: MessageRecord }> };
}

type Reply = { status: number; body?: unknown };

async function fakeBigQuery(t: TestContext, replies: Reply[] = []) {
  const requests: InsertRequest[] = [];
  const waiters: Array<() => void> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({
        url: req.url ?? '',
        authorization: req.headers.authorization,
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
      });
      const reply = replies.shift() ?? { status: 200, body: { kind: 'bigquery#tableDataInsertAllResponse' } };
      res.writeHead(reply.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(reply.body ?? { error: { code: reply.status, message: 'fake failure', errors: [] } }));
      for (const w of waiters.splice(0)) w();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    /** Resolves once `n` requests arrived. */
    async waitFor(n: number): Promise<void> {
      const deadline = Date.now() + 5000;
      while (requests.length < n) {
        if (Date.now() > deadline) throw new Error(`${requests.length}/${n} insertAll requests`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 100);
        });
      }
    },
  };
}

const authClient = { getRequestHeaders: async () => new Headers({ authorization: 'Bearer test-token' }) };

async function sink(t: TestContext, endpoint: string, o: Partial<BigquerySinkOptions> = {}): Promise<BigquerySink> {
  const s = await BigquerySink.create({
    projectId: 'proj',
    dataset: 'ds',
    table: 'msgs',
    keyFilename: '',
    apiEndpoint: endpoint,
    batchSize: 3,
    flushIntervalMs: 60_000,
    maxBuffer: 100,
    maxRetries: 3,
    retryBaseMs: 5,
    closeTimeoutMs: 2000,
    log,
    clientOptions: { authClient } as unknown as BigQueryOptions,
    ...o,
  });
  t.after(() => s.close());
  return s;
}

function record(i: number): MessageRecord {
  return {
    ts: new Date(1_700_000_000_000 + i).toISOString(),
    topic: `sensors/${i}`,
    qos: 1,
    retain: false,
    client_id: 'dev-1',
    payload: `{"v":${i}}`,
    payload_encoding: 'utf8',
    payload_bytes: 7,
    content_type: null,
  };
}

test('rows go out in batches of batchSize through insertAll with insertIds, using the stub credentials', T, async (t) => {
  const bq = await fakeBigQuery(t);
  const s = await sink(t, bq.endpoint);
  for (let i = 0; i < 7; i++) s.push(record(i));
  await bq.waitFor(2); // two full batches go at once; the seventh row waits for the timer
  assert.equal(bq.requests.length, 2);
  await s.flush();
  assert.equal(bq.requests.length, 3);
  const [first] = bq.requests;
  assert.match(first!.url, /^\/bigquery\/v2\/projects\/proj\/datasets\/ds\/tables\/msgs\/insertAll/);
  assert.equal(first!.authorization, 'Bearer test-token');
  assert.equal(first!.body.skipInvalidRows, true);
  assert.deepEqual(
    bq.requests.map((r) => r.body.rows.length),
    [3, 3, 1],
  );
  const rows = bq.requests.flatMap((r) => r.body.rows);
  assert.deepEqual(
    rows.map((r) => r.json),
    [0, 1, 2, 3, 4, 5, 6].map(record),
  );
  assert.equal(new Set(rows.map((r) => r.insertId)).size, 7, 'every row has its own insertId');
  assert.deepEqual({ ...s.stats }, { name: 'bigquery', written: 7, dropped: 0, failed: 0, buffered: 0 });
});

test('a partial batch is sent after flushIntervalMs', T, async (t) => {
  const bq = await fakeBigQuery(t);
  const s = await sink(t, bq.endpoint, { flushIntervalMs: 50 });
  s.push(record(1));
  await bq.waitFor(1);
  assert.equal(bq.requests[0]!.body.rows.length, 1);
});

test('a failed insert is retried with backoff and the same insertIds, then counted as written', T, async (t) => {
  const bq = await fakeBigQuery(t, [{ status: 503 }, { status: 500 }]);
  const s = await sink(t, bq.endpoint);
  for (let i = 0; i < 3; i++) s.push(record(i));
  await s.flush();
  assert.equal(bq.requests.length, 3);
  const ids = bq.requests.map((r) => r.body.rows.map((row) => row.insertId).join(','));
  assert.equal(new Set(ids).size, 1, 'retries resend the same rows with the same insertIds (BigQuery de-duplicates)');
  assert.deepEqual({ ...s.stats }, { name: 'bigquery', written: 3, dropped: 0, failed: 0, buffered: 0 });
});

test('after maxRetries failures the batch is counted as failed and later rows still go out', T, async (t) => {
  const bq = await fakeBigQuery(t, [{ status: 503 }, { status: 503 }, { status: 503 }]);
  const s = await sink(t, bq.endpoint, { maxRetries: 2 });
  for (let i = 0; i < 3; i++) s.push(record(i));
  await s.flush();
  assert.equal(bq.requests.length, 3, 'one try and two retries');
  s.push(record(9));
  await s.flush();
  assert.deepEqual({ ...s.stats }, { name: 'bigquery', written: 1, dropped: 0, failed: 3, buffered: 0 });
});

test('a 400 is not retried', T, async (t) => {
  const bq = await fakeBigQuery(t, [{ status: 400 }]);
  const s = await sink(t, bq.endpoint);
  s.push(record(1));
  await s.flush();
  assert.equal(bq.requests.length, 1);
  assert.equal(s.stats.failed, 1);
});

test('rows BigQuery rejects (insertErrors) are counted as failed and the rest as written', T, async (t) => {
  const bq = await fakeBigQuery(t, [
    { status: 200, body: { kind: 'bigquery#tableDataInsertAllResponse', insertErrors: [{ index: 1, errors: [{ reason: 'invalid', message: 'no such field' }] }] } },
  ]);
  const s = await sink(t, bq.endpoint);
  for (let i = 0; i < 3; i++) s.push(record(i));
  await s.flush();
  assert.equal(bq.requests.length, 1, 'rejected rows are not retried');
  assert.deepEqual({ ...s.stats }, { name: 'bigquery', written: 2, dropped: 0, failed: 1, buffered: 0 });
});

test('the buffer is bounded: rows past maxBuffer (waiting or in flight) are dropped and counted', T, async (t) => {
  const bq = await fakeBigQuery(t);
  const s = await sink(t, bq.endpoint, { batchSize: 4, maxBuffer: 6 });
  for (let i = 0; i < 10; i++) s.push(record(i)); // the first 4 go in flight at once
  assert.equal(s.stats.dropped, 4);
  await s.flush();
  assert.deepEqual(
    bq.requests.flatMap((r) => r.body.rows.map((row) => row.json.topic)),
    [0, 1, 2, 3, 4, 5].map((i) => `sensors/${i}`),
  );
  assert.deepEqual({ ...s.stats }, { name: 'bigquery', written: 6, dropped: 4, failed: 0, buffered: 0 });
});
