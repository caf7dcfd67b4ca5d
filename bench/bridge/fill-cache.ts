/**
 * Fill a bridge cache file with N messages (for the replay benchmarks), as a
 * stopped bridge would have left it: `fill-cache.ts FILE N [PAYLOAD_BYTES]`.
 */
import { BridgeCache } from '../../src/bridge/cache.js';
import { Entry, Flag } from '../../src/bridge/entry.js';

const [file, nArg, sizeArg] = process.argv.slice(2);
if (file === undefined || nArg === undefined) throw new Error('usage: fill-cache.ts FILE N [PAYLOAD_BYTES]');
const n = Number(nArg);
const payload = Buffer.alloc(Number(sizeArg ?? 100), 0x61);
const cache = BridgeCache.open(file, { durability: 'normal' });
const limits = { maxMessages: 0, maxBytes: 0, overflow: 'drop_oldest' as const };
let seq = cache.lastSeq;
for (let done = 0; done < n; ) {
  const rows: Entry[] = [];
  for (let i = 0; i < 10_000 && done < n; i++, done++) {
    seq++;
    rows.push(new Entry(seq, `devices/edge1/sensors/${seq % 100}`, Buffer.from(`${seq}`.padEnd(payload.length, ' ')), 1, false, null, undefined, 0, Flag.ROW, 0, 0));
  }
  cache.commit(rows, 0, 0, limits);
}
cache.close();
process.stdout.write(`${JSON.stringify({ filled: n, lastSeq: seq })}\n`);
