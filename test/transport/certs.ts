/**
 * Test PKI made with the `openssl` CLI in a temp dir (P-256 keys: fast):
 * a CA, a server certificate for 127.0.0.1/localhost, a second server
 * certificate (for reload tests), a client certificate (CN=alice), an
 * expired client certificate, a server certificate for the wrong host name,
 * and a client certificate from another CA. Removed in `t.after`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestPki {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  /** Same names, another key: to tell the certificates apart after a reload. */
  server2Cert: string;
  server2Key: string;
  clientCert: string;
  clientKey: string;
  expiredCert: string;
  expiredKey: string;
  wrongHostCert: string;
  wrongHostKey: string;
  /** Signed by another CA than caCert. */
  rogueCert: string;
  rogueKey: string;
  rogueCaCert: string;
}

const OPENSSL = '/usr/bin/openssl';

export function ensureOpenssl(): void {
  if (!existsSync(OPENSSL)) throw new Error('openssl is missing; install it with: sudo apt-get install -y openssl');
}

export function makePki(t: { after(fn: () => void): unknown }): TestPki {
  ensureOpenssl();
  const dir = mkdtempSync(join(tmpdir(), 'tern-pki-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const p = (name: string): string => join(dir, name);
  const ssl = (...args: string[]): void => {
    execFileSync(OPENSSL, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  };
  const key = (name: string): string => {
    ssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', p(name));
    return p(name);
  };
  const selfSignedCa = (name: string, cn: string): void => {
    key(`${name}.key`);
    ssl('req', '-x509', '-new', '-key', p(`${name}.key`), '-out', p(`${name}.crt`), '-days', '2', '-subj', `/CN=${cn}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  };
  // `openssl ca` can back-date certificates (x509 -req cannot in OpenSSL 3.0).
  writeFileSync(p('ca.cnf'), [
    '[ca]', 'default_ca = d', '[d]', `dir = ${dir}`, 'database = $dir/index.txt', 'new_certs_dir = $dir',
    'serial = $dir/serial', 'default_md = sha256', 'policy = any', 'copy_extensions = copy', 'unique_subject = no',
    '[any]', 'commonName = supplied', 'organizationName = optional', '',
  ].join('\n'));
  const issue = (name: string, subject: string, ext: string[], ca: string, dates?: [string, string]): void => {
    key(`${name}.key`);
    writeFileSync(p('index.txt'), '');
    writeFileSync(p('serial'), `${Date.now().toString(16).padStart(16, '0')}\n`);
    ssl('req', '-new', '-key', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', subject, ...ext.flatMap((e) => ['-addext', e]));
    const when = dates === undefined ? ['-days', '2'] : ['-startdate', dates[0], '-enddate', dates[1]];
    ssl('ca', '-batch', '-notext', '-config', p('ca.cnf'), '-cert', p(`${ca}.crt`), '-keyfile', p(`${ca}.key`),
      '-in', p(`${name}.csr`), '-out', p(`${name}.crt`), ...when);
  };
  selfSignedCa('ca', 'Tern Test CA');
  selfSignedCa('rogue-ca', 'Rogue CA');
  const serverExt = ['subjectAltName=IP:127.0.0.1,DNS:localhost', 'extendedKeyUsage=serverAuth'];
  const clientExt = ['extendedKeyUsage=clientAuth'];
  issue('server', '/CN=localhost', serverExt, 'ca');
  issue('server2', '/CN=localhost', serverExt, 'ca');
  issue('client', '/CN=alice/O=Tern Tests', clientExt, 'ca');
  issue('expired', '/CN=old-alice', clientExt, 'ca', ['20200101000000Z', '20200102000000Z']);
  issue('wrong-host', '/CN=wrong.example', ['subjectAltName=DNS:wrong.example', 'extendedKeyUsage=serverAuth'], 'ca');
  issue('rogue', '/CN=mallory', clientExt, 'rogue-ca');
  return {
    dir,
    caCert: p('ca.crt'),
    serverCert: p('server.crt'),
    serverKey: p('server.key'),
    server2Cert: p('server2.crt'),
    server2Key: p('server2.key'),
    clientCert: p('client.crt'),
    clientKey: p('client.key'),
    expiredCert: p('expired.crt'),
    expiredKey: p('expired.key'),
    wrongHostCert: p('wrong-host.crt'),
    wrongHostKey: p('wrong-host.key'),
    rogueCert: p('rogue.crt'),
    rogueKey: p('rogue.key'),
    rogueCaCert: p('rogue-ca.crt'),
  };
}
