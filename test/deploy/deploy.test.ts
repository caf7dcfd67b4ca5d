/**
 * deploy/: what can be checked without Docker or a Kubernetes cluster.
 * deploy/tern.toml (one node, SQLite, baked into the image) passes the config
 * loader and a broker starts on it; deploy/tern-cluster.toml (the same with
 * Redis and [cluster], carried by the ConfigMap) passes it too, and two nodes
 * started on it against a local redis-server form one broker; the manifests
 * in deploy/k8s have the structure Kubernetes needs (read with the YAML
 * subset reader in ./yaml-subset.ts) and their probes, ports, mounts, Secrets
 * and user agree with the config and the Dockerfile; the Dockerfile exposes,
 * checks and runs what the config says, and .dockerignore lets through what
 * it copies.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { hashPassword } from '../../src/auth/password-file.js';
import { createBroker } from '../../src/broker/broker.js';
import { loadConfigFile } from '../../src/config/load.js';
import type { TernConfig } from '../../src/config/schema.js';
import { clientId, connectMqtt, MessageCollector } from '../helpers/mqtt-client.js';
import { startRedisServer } from '../helpers/redis-server.js';
import { parseYamlDocuments, type YamlValue } from './yaml-subset.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DEPLOY = join(ROOT, 'deploy');
const K8S = join(DEPLOY, 'k8s');
/** The single-node config the image carries. */
const CONFIG_FILE = join(DEPLOY, 'tern.toml');
/** The cluster config the Kubernetes ConfigMap carries. */
const CLUSTER_CONFIG_FILE = join(DEPLOY, 'tern-cluster.toml');
/** Where both configs expect the Secret files (the StatefulSet's projected volume). */
const SECRETS_DIR = '/run/secrets/tern';
/** Where the image and the pods keep the config (Dockerfile COPY, ConfigMap mount). */
const CONFIG_IN_IMAGE = '/etc/tern/tern.toml';

type YamlMap = { [key: string]: YamlValue };

function asMap(value: YamlValue | undefined, what: string): YamlMap {
  assert.ok(value !== null && typeof value === 'object' && !Array.isArray(value), `${what} should be a mapping`);
  return value;
}

function asList(value: YamlValue | undefined, what: string): YamlValue[] {
  assert.ok(Array.isArray(value), `${what} should be a sequence`);
  return value;
}

function at(value: YamlValue | undefined, path: string): YamlValue | undefined {
  let v = value;
  for (const key of path.split('.')) {
    if (v === null || v === undefined || typeof v !== 'object' || Array.isArray(v)) return undefined;
    v = v[key];
  }
  return v;
}

function findNamed(list: YamlValue[], name: string, what: string): YamlMap {
  const found = list.find((item) => at(item, 'name') === name);
  assert.ok(found !== undefined, `${what}: no entry named ${name}`);
  return asMap(found, `${what} ${name}`);
}

/** Every pair of `subset` is in `labels`. */
function assertSelects(selector: YamlValue | undefined, labels: YamlMap, what: string): void {
  const wanted = asMap(selector, `${what} selector`);
  assert.ok(Object.keys(wanted).length > 0, `${what}: empty selector`);
  for (const [k, v] of Object.entries(wanted)) assert.equal(labels[k], v, `${what}: selector ${k}=${String(v)} does not match the pod labels`);
}

interface Manifest {
  readonly file: string;
  readonly doc: YamlMap;
}

async function readManifests(): Promise<Manifest[]> {
  const out: Manifest[] = [];
  for (const file of (await readdir(K8S)).filter((f) => f.endsWith('.yaml')).sort()) {
    const docs = parseYamlDocuments(await readFile(join(K8S, file), 'utf8'), `deploy/k8s/${file}`);
    assert.ok(docs.length > 0, `${file} holds no document`);
    for (const doc of docs) out.push({ file, doc: asMap(doc, file) });
  }
  return out;
}

function only(manifests: readonly Manifest[], kind: string, file?: string): YamlMap {
  const found = manifests.filter((m) => at(m.doc, 'kind') === kind && (file === undefined || m.file === file));
  assert.equal(found.length, 1, `expected one ${kind}${file === undefined ? '' : ` in ${file}`}, found ${found.length}`);
  return found[0]!.doc;
}

interface Instruction {
  readonly op: string;
  readonly args: string;
}

/** Dockerfile instructions, continuation lines joined and comments dropped, split by stage. */
function dockerStages(text: string): Instruction[][] {
  const joined = text
    .split('\n')
    .filter((l) => !l.trimStart().startsWith('#'))
    .join('\n')
    .replace(/\\\n/g, ' ');
  const stages: Instruction[][] = [];
  for (const line of joined.split('\n')) {
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (m === null) continue;
    const ins = { op: m[1]!.toUpperCase(), args: m[2]!.trim().replace(/\s+/g, ' ') };
    if (ins.op === 'FROM') stages.push([]);
    assert.ok(stages.length > 0, `Dockerfile: ${ins.op} before FROM`);
    stages[stages.length - 1]!.push(ins);
  }
  return stages;
}

function execForm(args: string): string[] {
  const parsed: unknown = JSON.parse(args);
  assert.ok(Array.isArray(parsed) && parsed.every((a) => typeof a === 'string'), `expected the exec form ["..."], got ${args}`);
  return parsed as string[];
}

let configCache: TernConfig | undefined;
async function deployConfig(): Promise<TernConfig> {
  configCache ??= await loadConfigFile(CONFIG_FILE);
  return configCache;
}

let clusterConfigCache: TernConfig | undefined;
async function clusterConfig(): Promise<TernConfig> {
  clusterConfigCache ??= await loadConfigFile(CLUSTER_CONFIG_FILE);
  return clusterConfigCache;
}

interface Secrets {
  readonly passwordFile: string;
  readonly tokenFile: string;
  readonly token: string;
}

/** A password file (alice / secret) and a token file in a temp dir, removed after the test. */
async function writeSecrets(t: TestContext): Promise<Secrets & { dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'tern-deploy-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const passwordFile = join(dir, 'passwd');
  await writeFile(passwordFile, `alice:${await hashPassword('secret')}\n`);
  const token = 'a-test-token';
  const tokenFile = join(dir, 'token');
  // As `kubectl create secret --from-file` or `openssl rand -hex 32 > token` leave it: newline-terminated.
  await writeFile(tokenFile, `${token}\n`);
  return { dir, passwordFile, tokenFile, token };
}

/**
 * `config` with its ports made 0, its Secret files moved to `secrets` and logs
 * silenced. Hosts stay as configured (0.0.0.0), so the non-loopback HTTP rule
 * applies as in a container.
 */
function forTest(config: TernConfig, secrets: Secrets): TernConfig {
  return {
    ...config,
    listeners: config.listeners.map((l) => ({ ...l, port: 0 })),
    http: { ...config.http, port: 0, tokenFile: secrets.tokenFile },
    auth: { ...config.auth, passwordFile: secrets.passwordFile },
    log: { ...config.log, level: 'silent' },
  };
}

// ---------------------------------------------------------------- the YAML subset reader

test('the YAML subset reader reads what the manifests use and refuses what it does not support', () => {
  const [doc] = parseYamlDocuments(
    [
      '# comment',
      'a: 1',
      'b: "x: y" # trailing comment',
      'c:',
      '  - name: one',
      '    port: 80',
      '  - plain',
      '  - ["-c", \'q\']',
      'd: |',
      '  line 1',
      '',
      '    indented # not a comment',
      'e: {}',
      'mode: 0440',
    ].join('\n'),
  );
  assert.deepEqual(doc, {
    a: 1,
    b: 'x: y',
    c: [{ name: 'one', port: 80 }, 'plain', ['-c', 'q']],
    d: 'line 1\n\n  indented # not a comment\n',
    e: {},
    mode: 0o440,
  });
  assert.equal(parseYamlDocuments('a: 1\n---\n# only a comment\n---\nb: 2\n').length, 2);
  assert.throws(() => parseYamlDocuments('a:\n\tb: 1\n'), /tabs/);
  assert.throws(() => parseYamlDocuments('a: 1\na: 2\n'), /duplicate key a/);
  assert.throws(() => parseYamlDocuments('a: 1\n   b: 2\n'), /:2: (unexpected indentation|multi-line)/);
  assert.throws(() => parseYamlDocuments('a: &x 1\n'), /anchor/);
  assert.throws(() => parseYamlDocuments('a: "open\n'), /unterminated/);
  assert.throws(() => parseYamlDocuments('just text\n'), /expected "key: value"/);
});

// ---------------------------------------------------------------- deploy/tern.toml, deploy/tern-cluster.toml

test('deploy/tern.toml passes the config loader with the container settings', async () => {
  const config = await deployConfig();
  const [listener, ...more] = config.listeners;
  assert.equal(more.length, 0);
  assert.deepEqual([listener?.type, listener?.host, listener?.port], ['tcp', '0.0.0.0', 1883]);
  assert.deepEqual([config.storage.backend, config.storage.path], ['sqlite', '/data']);
  assert.equal(config.cluster.enabled, false);
  assert.equal(config.auth.allowAnonymous, false, 'no anonymous clients in the container config');
  assert.equal(config.auth.passwordFile, `${SECRETS_DIR}/passwd`, 'clients authenticate against a mounted password file');
  assert.deepEqual([config.http.enabled, config.http.host], [true, '0.0.0.0']);
  // An HTTP listener on a non-loopback address without credentials refuses to start;
  // the token comes from a mounted Secret, never from the file itself.
  assert.equal(config.http.token, '', 'no token in the config file');
  assert.equal(config.http.tokenFile, `${SECRETS_DIR}/token`);
  assert.deepEqual([config.http.username, config.http.password], ['', '']);
  assert.equal(config.log.format, 'json');
});

test('deploy/tern-cluster.toml is deploy/tern.toml with storage on the example Redis and [cluster] on', async () => {
  const single = await deployConfig();
  const cluster = await clusterConfig();
  const { storage: _s1, cluster: _c1, ...singleRest } = single;
  const { storage, cluster: clusterSection, ...clusterRest } = cluster;
  assert.deepEqual(clusterRest, singleRest, 'listeners, auth, http, log, ... are the same in both files');
  assert.equal(storage.backend, 'redis');
  assert.equal(clusterSection.enabled, true);
  // The default node id <hostname>-<pid> is stable in a StatefulSet pod (pod name, node as PID 1;
  // the StatefulSet test checks the pods keep the image's ENTRYPOINT).
  assert.equal(clusterSection.nodeId, '', 'node_id from the pod name');
  assert.equal(cluster.bridges.length, 0, 'no [[bridges]]: the pods have no data volume for a bridge cache');
  // The Redis URL names the example Redis Service of redis.yaml.
  const redisService = (await readManifests()).find((m) => m.file === 'redis.yaml' && at(m.doc, 'kind') === 'Service');
  assert.ok(redisService !== undefined);
  const url = new URL(storage.redisUrl);
  assert.equal(url.protocol, 'redis:');
  assert.equal(url.hostname, at(redisService.doc, 'metadata.name'));
  assert.ok(
    asList(at(redisService.doc, 'spec.ports'), 'Redis Service ports').some((p) => at(p, 'port') === Number(url.port)),
    `the Redis Service offers port ${url.port}`,
  );
});

test('a broker starts on deploy/tern.toml (ports, data and Secret files moved to a temp dir) and answers /healthz, /readyz and, with the token from the file, /metrics', async (t) => {
  const secrets = await writeSecrets(t);
  const config = forTest(await deployConfig(), secrets);
  const broker = createBroker({ ...config, storage: { ...config.storage, path: join(secrets.dir, 'data') } });
  t.after(() => broker.close());
  const [mqtt] = await broker.listen();
  assert.equal(mqtt?.host, '0.0.0.0');
  const port = broker.operations?.address?.port;
  assert.ok(port !== undefined && port > 0, 'the HTTP listener is up');
  const base = `http://127.0.0.1:${port}`;
  const healthz = await fetch(`${base}/healthz`);
  assert.equal(healthz.status, 200);
  const readyz = await fetch(`${base}/readyz`);
  assert.equal(readyz.status, 200, JSON.stringify(await readyz.clone().json()));
  assert.equal((await readyz.json() as { status: string }).status, 'ready');
  const metrics = await fetch(`${base}/metrics`);
  await metrics.arrayBuffer();
  assert.equal(metrics.status, 401, 'everything but the health checks needs the token');
  const withToken = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${secrets.token}` } });
  await withToken.arrayBuffer();
  assert.equal(withToken.status, 200, 'the token from http.token_file opens /metrics');
});

test('two nodes on deploy/tern-cluster.toml (a local redis-server, temp Secret files) are ready and one broker', { timeout: 30_000 }, async (t) => {
  // Cleanup in reverse order: the brokers and clients close while Redis still answers.
  const cleanups: Array<() => unknown> = [];
  t.after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });
  const redis = await startRedisServer({ after: (fn) => cleanups.push(fn) });
  const secrets = await writeSecrets(t);
  const config = forTest(await clusterConfig(), secrets);
  const nodes = [];
  // One process: the default id <hostname>-<pid> would be the same for both, so name them as the pods are.
  for (const nodeId of ['tern-0-1', 'tern-1-1']) {
    const broker = createBroker({ ...config, storage: { ...config.storage, redisUrl: redis.url }, cluster: { ...config.cluster, nodeId } });
    cleanups.push(() => broker.close());
    const [mqtt] = await broker.listen();
    nodes.push({ mqttUrl: `mqtt://127.0.0.1:${mqtt!.port}`, base: `http://127.0.0.1:${broker.operations!.address!.port}` });
  }
  const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
  const readyz = async (base: string): Promise<{ status: number; checks: Array<{ name: string; ok: boolean }> }> => {
    const res = await fetch(`${base}/readyz`);
    return { status: res.status, checks: ((await res.json()) as { checks: Array<{ name: string; ok: boolean }> }).checks };
  };
  for (const node of nodes) {
    const ready = await readyz(node.base);
    assert.equal(ready.status, 200, JSON.stringify(ready.checks));
    assert.ok(ready.checks.some((c) => c.name === 'cluster' && c.ok), 'readiness includes the cluster check');
  }

  // Subscribe on one node, publish on the other, as docs/deploy.md checks the pods.
  const login = { username: 'alice', password: 'secret' };
  const sub = await connectMqtt(t, b.mqttUrl, { ...login, clientId: clientId('deploy-sub') });
  cleanups.push(() => sub.endAsync(true));
  const received = new MessageCollector(sub);
  await sub.subscribeAsync('deploy/#', { qos: 1 });
  const pub = await connectMqtt(t, a.mqttUrl, { ...login, clientId: clientId('deploy-pub') });
  cleanups.push(() => pub.endAsync(true));
  await pub.publishAsync('deploy/hello', 'across nodes', { qos: 1 });
  const [message] = await received.waitForPayload('across nodes', 5000);
  assert.equal(message?.topic, 'deploy/hello');
});

// ---------------------------------------------------------------- Kubernetes manifests

test('deploy/k8s/configmap.yaml carries deploy/tern-cluster.toml unchanged', async () => {
  const manifests = await readManifests();
  const configMap = only(manifests, 'ConfigMap', 'configmap.yaml');
  const embedded = asMap(at(configMap, 'data'), 'ConfigMap data')['tern.toml'];
  assert.equal(typeof embedded, 'string', 'data["tern.toml"] is a string');
  const file = await readFile(CLUSTER_CONFIG_FILE, 'utf8');
  assert.equal(
    embedded,
    file,
    'deploy/k8s/configmap.yaml data["tern.toml"] differs from deploy/tern-cluster.toml: paste the file in again, indented by 4 spaces',
  );
  assert.equal(basename(CONFIG_IN_IMAGE), 'tern.toml');
});

test('every manifest parses, names its kind and carries no namespace; kustomization lists all but the Redis example', async () => {
  const manifests = await readManifests();
  for (const { file, doc } of manifests) {
    assert.equal(typeof doc['apiVersion'], 'string', `${file}: apiVersion`);
    assert.equal(typeof doc['kind'], 'string', `${file}: kind`);
    if (doc['kind'] === 'Kustomization') {
      assert.equal(doc['namespace'], undefined, `${file}: namespace-free`);
      continue;
    }
    assert.equal(typeof at(doc, 'metadata.name'), 'string', `${file}: metadata.name`);
    assert.equal(at(doc, 'metadata.namespace'), undefined, `${file}: namespace-free (pass -n to kubectl)`);
  }
  const kinds = manifests.map((m) => `${m.file}:${String(m.doc['kind'])}`).sort();
  assert.deepEqual(kinds, [
    'configmap.yaml:ConfigMap',
    'kustomization.yaml:Kustomization',
    'pdb.yaml:PodDisruptionBudget',
    'redis.yaml:Deployment',
    'redis.yaml:Service',
    'service.yaml:Service',
    'service.yaml:Service',
    'statefulset.yaml:StatefulSet',
  ]);
  const resources = asList(at(only(manifests, 'Kustomization'), 'resources'), 'kustomization resources');
  const expected = [...new Set(manifests.map((m) => m.file))].filter((f) => f !== 'kustomization.yaml' && f !== 'redis.yaml');
  assert.deepEqual([...resources].sort(), expected.sort());
  const redis = await readFile(join(K8S, 'redis.yaml'), 'utf8');
  assert.match(redis, /FOR TRYING THINGS OUT/, 'redis.yaml says it is an example');
});

test('the StatefulSet: probes on /healthz and /readyz at the ops port, ports, mounts, Secrets, user and limits agree with the cluster config', async () => {
  const config = await clusterConfig();
  const manifests = await readManifests();
  const sts = only(manifests, 'StatefulSet');
  assert.equal(at(sts, 'spec.replicas'), 3);
  const podLabels = asMap(at(sts, 'spec.template.metadata.labels'), 'pod labels');
  assertSelects(at(sts, 'spec.selector.matchLabels'), podLabels, 'StatefulSet');
  const pod = asMap(at(sts, 'spec.template.spec'), 'pod spec');
  const [container, ...others] = asList(pod['containers'], 'containers');
  assert.equal(others.length, 0);

  // Ports: named, and equal to the config's.
  const ports = asList(at(container, 'ports'), 'container ports');
  const portOf = (name: YamlValue | undefined): YamlValue | undefined => {
    if (typeof name === 'number') return name;
    return at(findNamed(ports, String(name), 'container ports'), 'containerPort');
  };
  assert.equal(portOf('mqtt'), config.listeners[0]?.port);
  assert.equal(portOf('ops'), config.http.port);

  // Probes: readiness on /readyz, liveness and startup on /healthz, all on the HTTP ops port.
  const probes: Array<[string, string]> = [
    ['readinessProbe', '/readyz'],
    ['livenessProbe', '/healthz'],
    ['startupProbe', '/healthz'],
  ];
  for (const [probe, path] of probes) {
    assert.equal(at(container, `${probe}.httpGet.path`), path, `${probe} path`);
    assert.equal(portOf(at(container, `${probe}.httpGet.port`)), config.http.port, `${probe} port`);
  }

  // The config file comes from the ConfigMap, at the path the image's command reads.
  assert.deepEqual(at(container, 'args'), ['-c', CONFIG_IN_IMAGE]);
  // The default node id <hostname>-<pid> stays stable only while node is PID 1 of the container:
  // the image's ENTRYPOINT (exec form, checked with the Dockerfile) and no shared PID namespace.
  assert.equal(at(container, 'command'), undefined, 'the image ENTRYPOINT runs');
  assert.notEqual(at(pod, 'shareProcessNamespace'), true);
  const mounts = asList(at(container, 'volumeMounts'), 'volumeMounts');
  const volumes = asList(pod['volumes'], 'volumes');
  const mountAt = (path: string): YamlMap => {
    const m = mounts.find((v) => at(v, 'mountPath') === path);
    assert.ok(m !== undefined, `nothing mounted at ${path}`);
    return asMap(m, `mount ${path}`);
  };
  const configMount = mountAt(dirname(CONFIG_IN_IMAGE));
  const configMapName = at(findNamed(volumes, String(configMount['name']), 'volumes'), 'configMap.name');
  assert.equal(configMapName, at(only(manifests, 'ConfigMap'), 'metadata.name'));
  assert.equal(typeof asMap(at(only(manifests, 'ConfigMap'), 'data'), 'ConfigMap data')[basename(CONFIG_IN_IMAGE)], 'string');

  // The password file and the HTTP token come from two Secrets, projected into one read-only
  // directory, each Secret's key being the file's name (the names docs/deploy.md gives).
  assert.equal(dirname(config.auth.passwordFile), SECRETS_DIR);
  assert.equal(dirname(config.http.tokenFile), SECRETS_DIR);
  const secretsMount = mountAt(SECRETS_DIR);
  assert.equal(secretsMount['readOnly'], true);
  const secretsVolume = findNamed(volumes, String(secretsMount['name']), 'volumes');
  const sources = asList(at(secretsVolume, 'projected.sources'), 'projected Secret sources');
  const secretNames = sources.map((src) => {
    assert.equal(at(src, 'secret.items'), undefined, 'every key of the Secret becomes a file of that name');
    return at(src, 'secret.name');
  });
  assert.deepEqual(secretNames, ['tern-passwd', 'tern-http-token']);
  assert.equal(basename(config.auth.passwordFile), 'passwd', 'the Secret tern-passwd has the key `passwd`');
  assert.equal(basename(config.http.tokenFile), 'token', 'the Secret tern-http-token has the key `token`');
  assert.equal(at(secretsVolume, 'projected.defaultMode'), 0o440);

  // Broker state is in Redis and no bridge cache is configured: no PersistentVolumeClaim, and the
  // only writable place is a scratch /tmp.
  assert.equal(config.storage.backend, 'redis');
  assert.equal(at(sts, 'spec.volumeClaimTemplates'), undefined, 'no data volume while storage is in Redis');
  const writable = mounts.filter((m) => at(m, 'readOnly') !== true).map((m) => at(m, 'mountPath'));
  assert.deepEqual(writable, ['/tmp']);
  assert.equal(at(findNamed(volumes, String(mountAt('/tmp')['name']), 'volumes'), 'emptyDir.sizeLimit') !== undefined, true);

  // Security: non-root with the image's uid, read-only root filesystem, no capabilities.
  assert.equal(at(pod, 'securityContext.runAsNonRoot'), true);
  const dockerUser = dockerStages(await readFile(join(DEPLOY, 'Dockerfile'), 'utf8'))
    .at(-1)!
    .findLast((i) => i.op === 'USER')?.args;
  assert.equal(`${String(at(pod, 'securityContext.runAsUser'))}:${String(at(pod, 'securityContext.runAsGroup'))}`, dockerUser);
  assert.equal(at(pod, 'securityContext.fsGroup'), at(pod, 'securityContext.runAsGroup'));
  assert.equal(at(container, 'securityContext.readOnlyRootFilesystem'), true);
  assert.equal(at(container, 'securityContext.allowPrivilegeEscalation'), false);
  assert.deepEqual(at(container, 'securityContext.capabilities.drop'), ['ALL']);

  for (const kind of ['requests', 'limits']) {
    assert.ok(at(container, `resources.${kind}.cpu`) !== undefined, `resources.${kind}.cpu`);
    assert.ok(at(container, `resources.${kind}.memory`) !== undefined, `resources.${kind}.memory`);
  }
  // Tern is configured by its file only: no placeholder variables it does not read.
  const env = asList(at(container, 'env'), 'env').map((e) => at(e, 'name'));
  assert.deepEqual(env, ['NODE_OPTIONS']);
});

test('the Services and the PodDisruptionBudget select the broker pods and route to named container ports', async () => {
  const config = await clusterConfig();
  const manifests = await readManifests();
  const sts = only(manifests, 'StatefulSet');
  const podLabels = asMap(at(sts, 'spec.template.metadata.labels'), 'pod labels');
  const containerPorts = asList(at(sts, 'spec.template.spec.containers'), 'containers').flatMap((c) =>
    asList(at(c, 'ports'), 'ports').map((p) => at(p, 'name')),
  );
  const services = manifests.filter((m) => m.file === 'service.yaml').map((m) => m.doc);
  const headless = services.find((s) => at(s, 'spec.clusterIP') === 'None');
  assert.ok(headless !== undefined, 'a headless Service');
  assert.equal(at(headless, 'metadata.name'), at(sts, 'spec.serviceName'), 'the StatefulSet names the headless Service');
  const client = services.find((s) => s !== headless);
  assert.ok(client !== undefined, 'a client Service');
  for (const svc of services) {
    const name = String(at(svc, 'metadata.name'));
    assertSelects(at(svc, 'spec.selector'), podLabels, `Service ${name}`);
    const ports = asList(at(svc, 'spec.ports'), `Service ${name} ports`);
    for (const p of ports) assert.ok(containerPorts.includes(at(p, 'targetPort') ?? null), `Service ${name}: targetPort ${String(at(p, 'targetPort'))}`);
    assert.deepEqual(
      ports.map((p) => at(p, 'port')).sort(),
      [config.listeners[0]?.port, config.http.port].sort(),
      `Service ${name} offers MQTT and the ops port`,
    );
  }
  const pdb = only(manifests, 'PodDisruptionBudget');
  assertSelects(at(pdb, 'spec.selector.matchLabels'), podLabels, 'PodDisruptionBudget');
  assert.ok(at(pdb, 'spec.maxUnavailable') !== undefined || at(pdb, 'spec.minAvailable') !== undefined);
});

// ---------------------------------------------------------------- Dockerfile

test('the Dockerfile: two node:20-bookworm-slim stages, EXPOSE and HEALTHCHECK from the config, runs tern -c /etc/tern/tern.toml', async () => {
  const config = await deployConfig();
  const stages = dockerStages(await readFile(join(DEPLOY, 'Dockerfile'), 'utf8'));
  assert.equal(stages.length, 2);
  const [build, runtime] = stages as [Instruction[], Instruction[]];
  assert.match(build[0]!.args, /^node:20-bookworm-slim AS build$/i);
  assert.match(runtime[0]!.args, /^node:20-bookworm-slim\b/);
  const buildRuns = build.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n');
  assert.match(buildRuns, /npm ci\b/);
  assert.match(buildRuns, /npm run build\b/);
  assert.match(buildRuns, /npm prune --omit=dev\b/);
  const runtimeRuns = runtime.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n');
  assert.doesNotMatch(runtimeRuns, /npm (ci|install)|apt-get install/, 'the runtime stage installs nothing');

  const of = (op: string): Instruction[] => runtime.filter((i) => i.op === op);
  const exposed = of('EXPOSE').flatMap((i) => i.args.split(' ')).map((p) => Number(p.replace(/\/tcp$/, '')));
  assert.deepEqual(exposed.sort(), [...config.listeners.map((l) => l.port), config.http.port].sort());

  const [healthcheck] = of('HEALTHCHECK');
  assert.ok(healthcheck !== undefined, 'a HEALTHCHECK');
  assert.ok(healthcheck.args.includes(`http://127.0.0.1:${config.http.port}/healthz`), healthcheck.args);
  assert.doesNotMatch(healthcheck.args, /curl|wget/);
  const cmdAt = healthcheck.args.indexOf('CMD ');
  assert.deepEqual(execForm(healthcheck.args.slice(cmdAt + 4)).slice(0, 2), ['node', '-e']);

  const entrypoint = execForm(of('ENTRYPOINT').at(-1)!.args);
  const cmd = execForm(of('CMD').at(-1)!.args);
  assert.deepEqual([...entrypoint, ...cmd], ['tern', '-c', CONFIG_IN_IMAGE]);
  assert.ok(of('COPY').some((i) => i.args === `deploy/tern.toml ${CONFIG_IN_IMAGE}`), 'the image carries deploy/tern.toml');
  assert.ok(of('VOLUME').some((i) => execForm(i.args).includes(config.storage.path)), `VOLUME ${config.storage.path}`);

  const user = of('USER').at(-1)?.args ?? '';
  assert.match(user, /^[0-9]+:[0-9]+$/, 'a numeric USER, so Kubernetes can check runAsNonRoot');
  assert.notEqual(user.split(':')[0], '0');
});

test('.dockerignore lets through every file the Dockerfile copies from the build context, and leaves out node_modules', async () => {
  const ignore = (await readFile(join(ROOT, '.dockerignore'), 'utf8'))
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  assert.equal(ignore[0], '*', 'everything is left out unless listed');
  const allowed = ignore.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''));
  const copies = dockerStages(await readFile(join(DEPLOY, 'Dockerfile'), 'utf8'))
    .flat()
    .filter((i) => i.op === 'COPY' && !i.args.startsWith('--from'))
    .flatMap((i) => i.args.split(' ').slice(0, -1));
  assert.ok(copies.length > 0);
  for (const source of copies) {
    const path = source.replace(/\/$/, '');
    assert.ok(
      allowed.some((a) => path === a || path.startsWith(`${a}/`)),
      `.dockerignore leaves out ${path}, which deploy/Dockerfile copies`,
    );
    await readFile(join(ROOT, path)).catch(async () => readdir(join(ROOT, path)));
  }
  assert.ok(!allowed.some((a) => a === 'node_modules' || a.startsWith('node_modules/')));
});
