import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Acl } from '../../src/auth/acl.js';
import { isTernError } from '../../src/errors.js';
import { matchTopic } from '../../src/auth/topic-match.js';

const ANON = undefined;

describe('Acl: sections', () => {
  const acl = Acl.parse(
    [
      '# general section: anonymous clients only',
      'topic read public/#',
      'topic readwrite anon/chat',
      '',
      'user alice',
      'topic readwrite alice/#',
      'topic read shared/+',
      '',
      'user bob',
      'topic write bob/out',
      '',
      '# a second section for alice merges with the first',
      'user alice',
      'topic write extra/alice',
    ].join('\n'),
    'test.acl',
  );

  it('gives anonymous clients the rules before the first user line', () => {
    assert.equal(acl.canRead('c1', ANON, 'public/news'), true);
    assert.equal(acl.canPublish('c1', ANON, 'public/news'), false); // read only
    assert.equal(acl.canPublish('c1', ANON, 'anon/chat'), true);
    assert.equal(acl.canRead('c1', ANON, 'alice/x'), false);
  });

  it('gives a named user only its own section, not the anonymous one', () => {
    assert.equal(acl.canPublish('c', 'alice', 'alice/x/y'), true);
    assert.equal(acl.canRead('c', 'alice', 'shared/doc'), true);
    assert.equal(acl.canRead('c', 'alice', 'public/news'), false);
    assert.equal(acl.canPublish('c', 'alice', 'bob/out'), false);
  });

  it('merges repeated sections for the same user', () => {
    assert.equal(acl.canPublish('c', 'alice', 'extra/alice'), true);
  });

  it('gives a user without a section nothing', () => {
    assert.equal(acl.canRead('c', 'carol', 'public/news'), false);
    assert.equal(acl.canPublish('c', 'carol', 'anon/chat'), false);
    // An empty username is a username (not anonymous).
    assert.equal(acl.canRead('c', '', 'public/news'), false);
  });

  it('separates read from write', () => {
    assert.equal(acl.canPublish('c', 'bob', 'bob/out'), true);
    assert.equal(acl.canRead('c', 'bob', 'bob/out'), false);
    assert.equal(acl.canSubscribe('c', 'bob', 'bob/out'), false);
    assert.equal(acl.canPublish('c', 'alice', 'shared/doc'), false);
    assert.equal(acl.canSubscribe('c', 'alice', 'shared/doc'), true);
  });

  it('counts compiled rules', () => {
    assert.equal(acl.size, 6);
  });
});

describe('Acl: topic line syntax', () => {
  it('defaults the access to readwrite, and treats a single word as the topic (as mosquitto)', () => {
    const acl = Acl.parse('topic plain/topic\ntopic read\n', 'x');
    assert.equal(acl.canPublish('c', ANON, 'plain/topic'), true);
    assert.equal(acl.canRead('c', ANON, 'plain/topic'), true);
    // "topic read" is a readwrite rule for the topic "read".
    assert.equal(acl.canPublish('c', ANON, 'read'), true);
  });

  it('takes the rest of the line as the filter, so it may contain spaces; tabs and CRLF are fine', () => {
    const acl = Acl.parse('user u\r\ntopic\tread   a b/c  \r\n', 'x');
    assert.equal(acl.canRead('c', 'u', 'a b/c'), true);
    assert.equal(acl.canRead('c', 'u', 'a'), false);
  });

  it('ignores comments, indented comments and blank lines', () => {
    const acl = Acl.parse('# c\n   # indented\n\n   \ntopic t\n', 'x');
    assert.equal(acl.size, 1);
  });
});

describe('Acl: patterns', () => {
  const acl = Acl.parse(
    [
      'pattern readwrite users/%u/#',
      'pattern read devices/%c/cmd',
      'pattern write devices/%c/state',
      'pattern read fleet/%u/%c',
      'pattern read lit/%user/x', // not a whole-level %u: literal text
      'user alice',
      'topic read only/alice',
    ].join('\n'),
    'p.acl',
  );

  it('substitutes %u with the username for every user, wherever the pattern is written', () => {
    assert.equal(acl.canPublish('c', 'alice', 'users/alice/inbox'), true);
    assert.equal(acl.canPublish('c', 'bob', 'users/bob/inbox'), true);
    assert.equal(acl.canPublish('c', 'bob', 'users/alice/inbox'), false);
    assert.equal(acl.canRead('c', 'alice', 'only/alice'), true); // own section still applies
  });

  it('substitutes %c with the client id, for named and anonymous clients', () => {
    assert.equal(acl.canRead('dev1', ANON, 'devices/dev1/cmd'), true);
    assert.equal(acl.canPublish('dev1', ANON, 'devices/dev1/cmd'), false);
    assert.equal(acl.canPublish('dev1', 'alice', 'devices/dev1/state'), true);
    assert.equal(acl.canPublish('dev1', 'alice', 'devices/dev2/state'), false);
  });

  it('never matches a %u pattern for an anonymous client', () => {
    assert.equal(acl.canRead('c', ANON, 'users/c/x'), false);
    assert.equal(acl.canRead('c', ANON, 'users/%u/x'), false);
  });

  it('combines %u and %c in one pattern', () => {
    assert.equal(acl.canRead('d9', 'alice', 'fleet/alice/d9'), true);
    assert.equal(acl.canRead('d9', 'alice', 'fleet/alice/d8'), false);
  });

  it('does not match when the username or client id contains + or # (cannot widen a rule)', () => {
    assert.equal(acl.canRead('+', ANON, 'devices/+/cmd'), false);
    assert.equal(acl.canSubscribe('+', ANON, 'devices/+/cmd'), false);
    assert.equal(acl.canSubscribe('#', ANON, 'devices/#'), false);
    assert.equal(acl.canSubscribe('c', '#', 'users/#'), false);
    assert.equal(acl.canSubscribe('c', '+', 'users/+/x'), false);
    assert.equal(acl.canPublish('c', 'a+b', 'users/a+b/x'), false);
  });

  it('does not match when the client id contains / (cannot reach another client\'s tree)', () => {
    // Without this, client id "dev2/cmd"... cannot exist as one level, and "x/y" must not act as two.
    assert.equal(acl.canRead('dev1/cmd', ANON, 'devices/dev1/cmd/cmd'), false);
    assert.equal(acl.canPublish('c', 'alice/inbox', 'users/alice/inbox/x'), false);
  });

  it('does not match an empty username or client id', () => {
    assert.equal(acl.canRead('', ANON, 'devices//cmd'), false);
    assert.equal(acl.canPublish('c', '', 'users//x'), false);
  });

  it('treats %u inside a longer level as literal text', () => {
    assert.equal(acl.canRead('c', 'user', 'lit/user/x'), false);
    assert.equal(acl.canRead('c', 'alice', 'lit/%user/x'), true);
  });

  it('keeps %u literal in topic lines', () => {
    const a = Acl.parse('user bob\ntopic read t/%u\n', 'x');
    assert.equal(a.canRead('c', 'bob', 't/bob'), false);
    assert.equal(a.canRead('c', 'bob', 't/%u'), true);
  });
});

describe('Acl: deny', () => {
  const acl = Acl.parse(
    [
      'topic readwrite open/#',
      'topic deny open/secret',
      'topic deny open/vault/#',
      'user alice',
      'topic readwrite data/#',
      'topic deny data/private/+',
      'topic readwrite data/private/mine', // a grant does not override a deny
      'pattern deny data/%u/blocked',
      'pattern readwrite own/%c/#',
      'pattern deny own/%c/admin',
    ].join('\n'),
    'd.acl',
  );

  it('wins over a broader grant in the same section, whatever the line order', () => {
    assert.equal(acl.canRead('c', ANON, 'open/ok'), true);
    assert.equal(acl.canRead('c', ANON, 'open/secret'), false);
    assert.equal(acl.canPublish('c', ANON, 'open/secret'), false);
    assert.equal(acl.canRead('c', ANON, 'open/vault'), false); // `#` includes the parent level
    assert.equal(acl.canRead('c', ANON, 'open/vault/a/b'), false);
    assert.equal(acl.canRead('c', 'alice', 'data/private/mine'), false);
    assert.equal(acl.canRead('c', 'alice', 'data/private'), true);
  });

  it('from a pattern wins over a grant in the user\'s own section', () => {
    assert.equal(acl.canPublish('c', 'alice', 'data/alice/blocked'), false);
    assert.equal(acl.canPublish('c', 'alice', 'data/alice/fine'), true);
  });

  it('in patterns wins over pattern grants', () => {
    assert.equal(acl.canPublish('d1', ANON, 'own/d1/x'), true);
    assert.equal(acl.canPublish('d1', ANON, 'own/d1/admin'), false);
  });

  it('refuses a subscription a deny rule covers, allows one it only overlaps (filtered per message by canRead)', () => {
    assert.equal(acl.canSubscribe('c', ANON, 'open/vault/+'), false);
    assert.equal(acl.canSubscribe('c', ANON, 'open/vault/#'), false);
    assert.equal(acl.canSubscribe('c', ANON, 'open/secret'), false);
    assert.equal(acl.canSubscribe('c', ANON, 'open/#'), true);
    assert.equal(acl.canRead('c', ANON, 'open/secret'), false);
    assert.equal(acl.canSubscribe('c', 'alice', 'data/private/+'), false);
    assert.equal(acl.canSubscribe('c', 'alice', 'data/+/x'), true);
  });
});

describe('Acl: subscribe with wildcards', () => {
  const acl = Acl.parse(
    ['user u', 'topic read sensors/#', 'topic read rooms/+/temp', 'topic write cmd/#', 'topic read $SYS/broker/#'].join('\n'),
    's.acl',
  );

  it('allows filters a read rule covers', () => {
    for (const f of ['sensors/#', 'sensors/+/x', 'sensors', 'rooms/+/temp', 'rooms/kitchen/temp']) {
      assert.equal(acl.canSubscribe('c', 'u', f), true, f);
    }
  });

  it('refuses filters that reach beyond every read rule', () => {
    for (const f of ['#', '+/x', 'rooms/#', 'rooms/+/+', 'rooms/kitchen/#', 'cmd/#', 'cmd/x']) {
      assert.equal(acl.canSubscribe('c', 'u', f), false, f);
    }
  });

  it('refuses malformed filters and authorizes the real filter of a shared subscription [MQTT-4.8.2]', () => {
    assert.equal(acl.canSubscribe('c', 'u', 'sensors/#/x'), false);
    assert.equal(acl.canSubscribe('c', 'u', 'sens+'), false);
    assert.equal(acl.canSubscribe('c', 'u', ''), false);
    assert.equal(acl.canSubscribe('c', 'u', '$share/g/sensors/#'), true);
    assert.equal(acl.canSubscribe('c', 'u', '$share/g/cmd/#'), false);
    assert.equal(acl.canSubscribe('c', 'u', '$share//sensors/#'), false);
    assert.equal(acl.canSubscribe('c', 'u', '$share/g'), false);
  });

  it('refuses to publish to a wildcard or empty topic', () => {
    assert.equal(acl.canPublish('c', 'u', 'cmd/+'), false);
    assert.equal(acl.canPublish('c', 'u', 'cmd/#'), false);
    assert.equal(acl.canPublish('c', 'u', ''), false);
    assert.equal(acl.canPublish('c', 'u', 'cmd/go'), true);
  });
});

describe('Acl: $SYS', () => {
  const acl = Acl.parse(['topic readwrite #', 'topic readwrite $SYS/#', 'pattern readwrite %c/#'].join('\n'), 'sys.acl');

  it('is read-only for clients even with a readwrite rule', () => {
    assert.equal(acl.canRead('c', ANON, '$SYS/broker/uptime'), true);
    assert.equal(acl.canPublish('c', ANON, '$SYS/broker/uptime'), false);
    assert.equal(acl.canPublish('c', ANON, '$SYSfoo'), false); // mosquitto: any topic starting "$SYS"
    assert.equal(acl.canPublish('c', ANON, '$share/g/x'), false);
  });

  it('is not reached by a leading wildcard or substitution [MQTT-4.7.2-1]', () => {
    const noSys = Acl.parse('topic read #\npattern read %c/#\n', 'x');
    assert.equal(noSys.canRead('c', ANON, '$SYS/broker/uptime'), false);
    assert.equal(noSys.canSubscribe('c', ANON, '$SYS/#'), false);
    assert.equal(noSys.canRead('$SYS', ANON, '$SYS/broker/uptime'), false);
    assert.equal(noSys.canSubscribe('c', ANON, '#'), true);
  });
});

describe('Acl: malformed files', () => {
  const bad: Array<[text: string, line: number, what: RegExp]> = [
    ['topic read a\nuser\n', 2, /missing username/],
    ['topic\n', 1, /empty topic/],
    ['# ok\n\ntopic readonly a/b\n', 3, /invalid access type "readonly"/],
    ['topic read a/#/b\n', 1, /invalid topic filter "a\/#\/b"/],
    ['pattern write a+/b\n', 1, /invalid topic filter/],
    ['user a\ntopic a\nsubscribe x\n', 3, /unknown keyword "subscribe"/],
  ];
  for (const [text, line, what] of bad) {
    it(`names the file and line ${line} for ${JSON.stringify(text.trim().split('\n').at(-1))}`, () => {
      assert.throws(
        () => Acl.parse(text, 'conf/acl.txt'),
        (err: unknown) => {
          assert.ok(isTernError(err, 'ERR_AUTH_ACL_FILE'), String(err));
          assert.ok(err.message.includes(`conf/acl.txt:${line}:`), err.message);
          assert.match(err.message, what);
          return true;
        },
      );
    });
  }

  it('load() reads a file and reports an unreadable one with ERR_AUTH_ACL_FILE', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'tern-acl-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'acl');
    await writeFile(file, 'user u\ntopic read x\n');
    const acl = await Acl.load(file);
    assert.equal(acl.canRead('c', 'u', 'x'), true);
    await assert.rejects(Acl.load(join(dir, 'missing')), (err: unknown) => isTernError(err, 'ERR_AUTH_ACL_FILE'));
    await writeFile(file, 'user u\nbogus\n');
    await assert.rejects(Acl.load(file), (err: unknown) => isTernError(err, 'ERR_AUTH_ACL_FILE') && err.message.includes(`${file}:2:`));
  });
});

describe('Acl: compiled lookup', () => {
  it('answers like a linear scan over 10k rules, without scanning them', () => {
    const lines: string[] = [];
    const rules: Array<{ user: string; filter: string; access: 'read' | 'write' | 'readwrite' | 'deny' }> = [];
    const accesses = ['read', 'write', 'readwrite', 'deny'] as const;
    for (let u = 0; u < 100; u++) {
      lines.push(`user u${u}`);
      for (let r = 0; r < 100; r++) {
        const access = accesses[(u * 7 + r) % 4] as (typeof accesses)[number];
        const shape = r % 5;
        const filter =
          shape === 0 ? `site/${r}/#` : shape === 1 ? `site/+/dev${r}` : shape === 2 ? `plant/${u}/line/${r}` : `t${r}/${u}/x`;
        lines.push(`topic ${access} ${filter}`);
        rules.push({ user: `u${u}`, filter, access });
      }
    }
    const acl = Acl.parse(lines.join('\n'), 'big.acl');
    assert.equal(acl.size, 10_000);

    // Reference: mosquitto's semantics as a plain scan (deny wins, else any grant of the access).
    const byUser = new Map<string, typeof rules>();
    for (const r of rules) {
      let list = byUser.get(r.user);
      if (!list) byUser.set(r.user, (list = []));
      list.push(r);
    }
    const reference = (user: string, topic: string, want: 'read' | 'write'): boolean => {
      let ok = false;
      for (const r of byUser.get(user) ?? []) {
        if (!matchTopic(r.filter, topic)) continue;
        if (r.access === 'deny') return false;
        if (r.access === 'readwrite' || r.access === want) ok = true;
      }
      return ok;
    };

    const queries: Array<[string, string]> = [];
    for (let i = 0; i < 2000; i++) {
      const u = `u${(i * 13) % 100}`;
      const n = (i * 31) % 100;
      const topics = [`site/${n}/a/b`, `site/9/dev${n}`, `plant/${(i * 13) % 100}/line/${n}`, `t${n}/${(i * 13) % 100}/x`, `nope/${n}`];
      queries.push([u, topics[i % topics.length] as string]);
    }
    let allowed = 0;
    for (const [u, topic] of queries) {
      const r = acl.canRead('c', u, topic);
      const w = acl.canPublish('c', u, topic);
      assert.equal(r, reference(u, topic, 'read'), `read ${u} ${topic}`);
      assert.equal(w, reference(u, topic, 'write'), `write ${u} ${topic}`);
      if (r || w) allowed++;
    }
    assert.ok(allowed > 100, `the queries exercise grants too (${allowed})`);

    // 100k compiled checks: a linear scan would test 100 rules per check per user (10M matches);
    // the trie does a few Map lookups. Generous bound, meant to catch an accidental rule scan.
    const start = process.hrtime.bigint();
    for (let i = 0; i < 100_000; i++) {
      const q = queries[i % queries.length] as [string, string];
      acl.canRead('c', q[0], q[1]);
    }
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    assert.ok(ms < 1500, `100k checks took ${ms.toFixed(0)} ms`);
  });

  it('handles 10k distinct literal rules in one section with a per-level lookup', () => {
    const lines = ['user big'];
    for (let i = 0; i < 10_000; i++) lines.push(`topic ${i % 2 ? 'read' : 'write'} fleet/device${i}/telemetry`);
    const acl = Acl.parse(lines.join('\n'), 'big2.acl');
    assert.equal(acl.canRead('c', 'big', 'fleet/device9999/telemetry'), true);
    assert.equal(acl.canPublish('c', 'big', 'fleet/device9999/telemetry'), false);
    assert.equal(acl.canPublish('c', 'big', 'fleet/device0/telemetry'), true);
    assert.equal(acl.canRead('c', 'big', 'fleet/device10000/telemetry'), false);
    assert.equal(acl.canSubscribe('c', 'big', 'fleet/+/telemetry'), false);
    assert.equal(acl.canSubscribe('c', 'big', 'fleet/device1/telemetry'), true);
  });
});
