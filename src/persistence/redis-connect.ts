/**
 * One way to reach Redis for every Tern module that talks to it (the storage
 * backend, the cluster):
 *
 *   redis://[[user]:password@]host[:port][/db]      a standalone server (rediss:// for TLS)
 *   redis+sentinel://[[user]:password@]host:port[,host:port...]/<master name>[/db]
 *                                                    the primary a Sentinel group names;
 *                                                    failovers are followed
 *   redis+cluster://[[user]:password@]host:port[,host:port...]
 *                                                    a Redis Cluster (seed nodes)
 *
 * (`rediss+sentinel://`, `rediss+cluster://` for TLS.) Tern's scripts and
 * multi-key commands need every key in one hash slot: on a Redis Cluster the
 * key prefix must carry a hash tag, e.g. `{tern}:` (checked by the config).
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { ternError } from '../errors.js';

interface Parsed {
  tls: boolean;
  hosts: Array<{ host: string; port: number }>;
  path: string[];
  username: string;
  password: string;
}

function parse(url: string, rest: string, tls: boolean, defaultPort: number): Parsed {
  const at = rest.lastIndexOf('@');
  const auth = at >= 0 ? rest.slice(0, at) : '';
  const [hostList = '', ...path] = rest.slice(at + 1).split('/');
  if (hostList === '') throw ternError('ERR_STORAGE_OPEN', `${url}: no host`);
  const hosts = hostList.split(',').map((hp) => {
    const colon = hp.lastIndexOf(':');
    return colon > 0 ? { host: hp.slice(0, colon), port: Number(hp.slice(colon + 1)) } : { host: hp, port: defaultPort };
  });
  const colon = auth.indexOf(':');
  const username = colon >= 0 ? decodeURIComponent(auth.slice(0, colon)) : '';
  const password = colon >= 0 ? decodeURIComponent(auth.slice(colon + 1)) : decodeURIComponent(auth);
  return { tls, hosts, path: path.filter((p) => p !== ''), username, password };
}

function credentials(p: Parsed): Partial<RedisOptions> {
  return {
    ...(p.username !== '' ? { username: p.username } : {}),
    ...(p.password !== '' ? { password: p.password } : {}),
    ...(p.tls ? { tls: {} } : {}),
  };
}

/**
 * A client for `url`. A Redis Cluster client is returned typed as Redis: it
 * answers the same commands (Tern uses no command a cluster refuses when all
 * keys share one slot).
 */
export function createRedis(url: string, options: RedisOptions): Redis {
  const m = /^(rediss?)\+(sentinel|cluster):\/\/(.*)$/.exec(url);
  if (m === null) return new Redis(url, options);
  const tls = m[1] === 'rediss';
  if (m[2] === 'sentinel') {
    const p = parse(url, m[3]!, tls, 26379);
    const [name = '', db = ''] = p.path;
    if (name === '') {
      throw ternError('ERR_STORAGE_OPEN', `${url}: a Sentinel URL names the master: redis+sentinel://host:port[,host:port]/mymaster`);
    }
    return new Redis({ ...options, ...credentials(p), sentinels: p.hosts, name: decodeURIComponent(name), ...(db !== '' ? { db: Number(db) } : {}) });
  }
  const p = parse(url, m[3]!, tls, 6379);
  const { lazyConnect, enableOfflineQueue, ...perNode } = options;
  const cluster = new Cluster(p.hosts, {
    lazyConnect: lazyConnect ?? false,
    enableOfflineQueue: enableOfflineQueue ?? true,
    ...(perNode.maxRetriesPerRequest !== undefined ? { maxRetriesPerRequest: perNode.maxRetriesPerRequest } : {}),
    redisOptions: { ...perNode, ...credentials(p) },
  });
  return cluster as unknown as Redis;
}
