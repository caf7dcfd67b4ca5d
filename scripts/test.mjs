#!/usr/bin/env node
// `npm test`: make sure the real peers the tests use are installed (installing
// them with apt-get when run as root, or failing with the exact command), then
// run every test/**/*.test.ts with node:test. Arguments narrow the run to
// files or folders: `npm test -- test/codec`.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

/** Debian package -> a binary it provides. */
const SYSTEM_PACKAGES = {
  mosquitto: '/usr/sbin/mosquitto',
  'mosquitto-clients': '/usr/bin/mosquitto_sub',
  openssl: '/usr/bin/openssl',
  'redis-server': '/usr/bin/redis-server',
  chromium: '/usr/bin/chromium',
};

function ensureSystemPackages() {
  const missing = Object.entries(SYSTEM_PACKAGES)
    .filter(([, bin]) => !existsSync(bin))
    .map(([pkg]) => pkg);
  if (missing.length === 0) return;
  const command = `apt-get update && apt-get install -y ${missing.join(' ')}`;
  if (process.getuid?.() !== 0) {
    console.error(`Tests need Debian packages that are missing: ${missing.join(', ')}.\nInstall them with:\n  sudo ${command}`);
    process.exit(1);
  }
  console.log(`Installing test dependencies: ${command}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const update = spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  const install = spawnSync('apt-get', ['install', '-y', '-qq', ...missing], { stdio: 'inherit', env });
  if (update.status !== 0 || install.status !== 0) {
    console.error(`Installing failed; run it by hand:\n  ${command}`);
    process.exit(1);
  }
}

function collect(target, out) {
  const stat = statSync(target);
  if (stat.isDirectory()) {
    for (const name of readdirSync(target).sort()) {
      if (name === 'node_modules' || name === 'fixtures') continue;
      collect(path.join(target, name), out);
    }
  } else if (target.endsWith('.test.ts')) {
    out.push(target);
  }
}

ensureSystemPackages();
const targets = process.argv.slice(2);
const files = [];
for (const t of targets.length > 0 ? targets : ['test']) collect(t, files);
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=120000', ...files],
  { stdio: 'inherit', env: { ...process.env, TERN_TEST: '1' } },
);
process.exit(result.status ?? 1);
