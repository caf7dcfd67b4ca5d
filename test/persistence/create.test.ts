import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { storageSchema } from '../../src/config/schema.js';
import { isTernError } from '../../src/errors.js';
import { createPersistence } from '../../src/persistence/create.js';
import { MemoryPersistence } from '../../src/persistence/memory.js';
import { SqlitePersistence } from '../../src/persistence/sqlite.js';
import { message } from './contract.js';

describe('createPersistence', () => {
  it('builds the memory backend with the configured retained limits', { timeout: 10_000 }, async (t) => {
    const p = createPersistence(storageSchema.parse({ backend: 'memory', maxRetained: 1 }));
    assert.ok(p instanceof MemoryPersistence);
    await p.open();
    t.after(() => p.close());
    await p.commit([{ type: 'putRetained', message: message(1, { topic: 'a' }) }]);
    await assert.rejects(
      p.commit([{ type: 'putRetained', message: message(2, { topic: 'b' }) }]),
      (err) => isTernError(err, 'ERR_STORAGE_RETAINED_LIMIT'),
    );
  });

  it('builds the sqlite backend on the configured path (the default backend)', { timeout: 10_000 }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'tern-create-test-'));
    const p = createPersistence({ ...storageSchema.parse({ path: dir, maxRetainedBytes: 4 }), repair: true });
    assert.ok(p instanceof SqlitePersistence);
    assert.equal(p.file, join(dir, 'tern.db'));
    await p.open();
    t.after(async () => {
      await p.close();
      rmSync(dir, { recursive: true, force: true });
    });
    await assert.rejects(
      p.commit([{ type: 'putRetained', message: message(1, { topic: 'a', payload: Buffer.alloc(5) }) }]),
      (err) => isTernError(err, 'ERR_STORAGE_RETAINED_LIMIT'),
    );
  });
});
