/**
 * One way to reach Redis for every Tern module that talks to it (the storage
 * backend, the cluster): a standalone server by `redis://` / `rediss://` URL,
 * or a Sentinel-managed primary by
 *
 *   redis+sentinel://[[user]:password@]host1:port1[,host2:port2...]/<master name>[/db]
 *
 * (`rediss+sentinel://` for TLS to the primary). With Sentinel, ioredis asks
 * the sentinels for the current primary and follows failovers.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { ternError } from '../errors.js';

export function createRedis(url: string, options: RedisOptions): Redis {
  const sentinel = /^(rediss?)\+sentinel:\/\/(.*)$/.exec(url);
  if (sentinel === null) return new Redis(url, options);
  const tls = sentinel[1] === 'rediss';
  const rest = sentinel[2]!;
  const at = rest.lastIndexOf('@');
  const auth = at >= 0 ? rest.slice(0, at) : '';
  const [hostList = '', name = '', db = ''] = rest.slice(at + 1).split('/');
  if (hostList === '' || name === '') {
    throw ternError('ERR_STORAGE_OPEN', `${url}: a Sentinel URL names its sentinels and the master: redis+sentinel://host:port[,host:port]/mymaster`);
  }
  const sentinels = hostList.split(',').map((hp) => {
    const colon = hp.lastIndexOf(':');
    return colon > 0 ? { host: hp.slice(0, colon), port: Number(hp.slice(colon + 1)) } : { host: hp, port: 26379 };
  });
  const colon = auth.indexOf(':');
  const username = colon >= 0 ? decodeURIComponent(auth.slice(0, colon)) : '';
  const password = colon >= 0 ? decodeURIComponent(auth.slice(colon + 1)) : decodeURIComponent(auth);
  return new Redis({
    ...options,
    sentinels,
    name: decodeURIComponent(name),
    ...(username !== '' ? { username } : {}),
    ...(password !== '' ? { password } : {}),
    ...(db !== '' ? { db: Number(db) } : {}),
    ...(tls ? { tls: {} } : {}),
  });
}
