/**
 * deploy/: what can be checked without Docker or a Kubernetes cluster.
 * deploy/tern.toml passes the config loader and a broker starts on it;
 * the ConfigMap carries the same file; the manifests in deploy/k8s have the
 * structure Kubernetes needs (read with the YAML subset reader in
 * ./yaml-subset.ts) and their probes, ports, mounts and user agree with the
 * config and the Dockerfile; the Dockerfile exposes, checks and runs what the
 * config says, and .dockerignore lets through what it copies.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { hashPassword } from '../../src/auth/password-file.js';
import { createBroker } from '../../src/broker/broker.js';
import { loadConfigFile } from '../../src/config/load.js';
import type { TernConfig } from '../../src/config/schema.js';
import { parseYamlDocuments, type YamlValue } from './yaml-subset.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DEPLOY = join(ROOT, 'deploy');
const K8S = join(DEPLOY, 'k8s');
const CONFIG_FILE = join(DEPLOY, 'tern.toml');
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

// ---------------------------------------------------------------- deploy/tern.toml

test('deploy/tern.toml passes the config loader with the container settings', async () => {
  const config = await deployConfig();
  const [listener, ...more] = config.listeners;
  assert.equal(more.length, 0);
  assert.deepEqual([listener?.type, listener?.host, listener?.port], ['tcp', '0.0.0.0', 1883]);
  assert.deepEqual([config.storage.backend, config.storage.path], ['sqlite', '/data']);
  assert.equal(config.auth.allowAnonymous, false, 'no anonymous clients in the container config');
  assert.notEqual(config.auth.passwordFile, '', 'clients authenticate against a mounted password file');
  assert.deepEqual([config.http.enabled, config.http.host], [true, '0.0.0.0']);
  // An HTTP listener on a non-loopback address without credentials refuses to start.
  assert.notEqual(config.http.token, '');
  assert.equal(config.log.format, 'json');
});

test('a broker starts on deploy/tern.toml (ports, data and password file moved to a temp dir) and answers /healthz and /readyz', async (t) => {
  const config = await deployConfig();
  const dir = await mkdtemp(join(tmpdir(), 'tern-deploy-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const passwordFile = join(dir, 'passwd');
  await writeFile(passwordFile, `alice:${await hashPassword('secret')}\n`);
  // Hosts stay as configured (0.0.0.0), so the non-loopback HTTP rule applies as in a container.
  const broker = createBroker({
    ...config,
    listeners: config.listeners.map((l) => ({ ...l, port: 0 })),
    http: { ...config.http, port: 0 },
    storage: { ...config.storage, path: join(dir, 'data') },
    auth: { ...config.auth, passwordFile },
    log: { ...config.log, level: 'silent' },
  });
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
});

// ---------------------------------------------------------------- Kubernetes manifests

test('deploy/k8s/configmap.yaml carries deploy/tern.toml unchanged', async () => {
  const manifests = await readManifests();
  const configMap = only(manifests, 'ConfigMap', 'configmap.yaml');
  const embedded = asMap(at(configMap, 'data'), 'ConfigMap data')['tern.toml'];
  assert.equal(typeof embedded, 'string', 'data["tern.toml"] is a string');
  const file = await readFile(CONFIG_FILE, 'utf8');
  assert.equal(
    embedded,
    file,
    'deploy/k8s/configmap.yaml data["tern.toml"] differs from deploy/tern.toml: paste the file in again, indented by 4 spaces',
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

test('the StatefulSet: probes on /healthz and /readyz at the ops port, ports, mounts, user and limits agree with the config', async () => {
  const config = await deployConfig();
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

  // The password file comes from a Secret whose key is the file's name.
  const passwdMount = mountAt(dirname(config.auth.passwordFile));
  assert.equal(passwdMount['readOnly'], true);
  const passwdVolume = findNamed(volumes, String(passwdMount['name']), 'volumes');
  assert.equal(typeof at(passwdVolume, 'secret.secretName'), 'string', 'the password file is a Secret');
  assert.equal(at(passwdVolume, 'secret.items'), undefined);
  assert.equal(basename(config.auth.passwordFile), 'passwd', 'docs and manifests name the Secret key `passwd`');

  // The SQLite store is on a PersistentVolumeClaim per pod; /tmp is scratch.
  const dataMount = mountAt(config.storage.path);
  const claims = asList(at(sts, 'spec.volumeClaimTemplates'), 'volumeClaimTemplates');
  assert.ok(claims.some((c) => at(c, 'metadata.name') === dataMount['name']), 'the data mount is a volumeClaimTemplate');
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
  const env = asList(at(container, 'env'), 'env');
  assert.match(String(at(findNamed(env, 'TERN_REDIS_URL', 'env'), 'value')), /^rediss?:\/\//);
});

test('the Services and the PodDisruptionBudget select the broker pods and route to named container ports', async () => {
  const config = await deployConfig();
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
