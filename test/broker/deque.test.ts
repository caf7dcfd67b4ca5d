import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Deque } from '../../src/broker/deque.js';

test('deque keeps FIFO order across growth and wrap-around', () => {
  const d = new Deque<number>(2);
  const model: number[] = [];
  for (let i = 0; i < 1000; i++) {
    if (i % 3 === 2) assert.equal(d.shift(), model.shift());
    else {
      d.push(i);
      model.push(i);
    }
    assert.equal(d.length, model.length);
    assert.equal(d.peek(), model[0]);
  }
  assert.deepEqual([...d], model);
  d.clear();
  assert.equal(d.length, 0);
  assert.equal(d.shift(), undefined);
});
