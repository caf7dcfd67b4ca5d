/** POST /api/v1/publish: publish a message as the broker. */
import { isUtf8 } from 'node:buffer';
import type { Properties, QoS } from '../../codec/types.js';
import { isTernError } from '../../errors.js';
import type { HttpContext } from '../context.js';
import { asObject, badRequest, readJson, sendJson } from '../respond.js';
import type { Router } from '../router.js';

function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw badRequest(`${key} must be a string`);
  return v;
}

function decode(value: string, encoding: string, what: string): Buffer {
  if (encoding === 'utf8') return Buffer.from(value, 'utf8');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value)) throw badRequest(`${what} is not valid base64`);
  return Buffer.from(value, 'base64');
}

function parseProperties(raw: unknown): Properties | undefined {
  if (raw === undefined) return undefined;
  const p = asObject(raw);
  const out: Properties = {};
  for (const key of Object.keys(p)) {
    if (!['contentType', 'responseTopic', 'correlationData', 'messageExpiryInterval', 'payloadFormatIndicator', 'userProperties'].includes(key)) {
      throw badRequest(`unknown property ${JSON.stringify(key)}`);
    }
  }
  const contentType = optionalString(p, 'contentType');
  if (contentType !== undefined) out.contentType = contentType;
  const responseTopic = optionalString(p, 'responseTopic');
  if (responseTopic !== undefined) out.responseTopic = responseTopic;
  const correlation = optionalString(p, 'correlationData');
  if (correlation !== undefined) out.correlationData = decode(correlation, 'base64', 'correlationData');
  const expiry = p['messageExpiryInterval'];
  if (expiry !== undefined) {
    if (!Number.isInteger(expiry) || (expiry as number) < 0 || (expiry as number) > 0xffffffff) {
      throw badRequest('messageExpiryInterval must be an integer between 0 and 4294967295');
    }
    out.messageExpiryInterval = expiry as number;
  }
  const pfi = p['payloadFormatIndicator'];
  if (pfi !== undefined) {
    if (pfi !== 0 && pfi !== 1) throw badRequest('payloadFormatIndicator must be 0 or 1');
    out.payloadFormatIndicator = pfi;
  }
  const user = p['userProperties'];
  if (user !== undefined) {
    const pairs: Array<[string, string]> = [];
    for (const [k, v] of Object.entries(asObject(user))) {
      for (const one of Array.isArray(v) ? v : [v]) {
        if (typeof one !== 'string') throw badRequest('userProperties values must be strings (or arrays of strings)');
        pairs.push([k, one]);
      }
    }
    out.userProperties = pairs;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

export function registerPublishRoutes(router: Router, ctx: HttpContext): void {
  router.post('/api/v1/publish', async ({ req, res }) => {
    const body = asObject(await readJson(req, ctx.config.maxBodyBytes));
    const topic = body['topic'];
    if (typeof topic !== 'string' || topic === '') throw badRequest('topic must be a non-empty string');
    const encoding = optionalString(body, 'encoding') ?? 'utf8';
    if (encoding !== 'utf8' && encoding !== 'base64') throw badRequest('encoding must be "utf8" or "base64"');
    const payload = decode(optionalString(body, 'payload') ?? '', encoding, 'payload');
    const qos = body['qos'] ?? 0;
    if (qos !== 0 && qos !== 1 && qos !== 2) throw badRequest('qos must be 0, 1 or 2');
    const retain = body['retain'] ?? false;
    if (typeof retain !== 'boolean') throw badRequest('retain must be a boolean');
    const properties = parseProperties(body['properties']);
    if (properties?.payloadFormatIndicator === 1 && !isUtf8(payload)) throw badRequest('payloadFormatIndicator is 1 but the payload is not UTF-8');
    try {
      await ctx.broker.publish({ topic, payload, qos: qos as QoS, retain, ...(properties !== undefined ? { properties } : {}) });
    } catch (err) {
      if (isTernError(err, 'ERR_MQTT_TOPIC_NAME_INVALID')) throw badRequest(`invalid topic name ${JSON.stringify(topic)}`);
      throw err;
    }
    sendJson(res, 200, { topic, qos, retain, bytes: payload.length });
  });
}
