import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { JsonError, parseStrict } from '../src/strict-json.js';

const parse = (s: string) => parseStrict(new TextEncoder().encode(s));
const kind = (s: string) => {
  try {
    parse(s);
    return 'ok';
  } catch (e) {
    return (e as JsonError).kind;
  }
};

describe('strict JSON', () => {
  it('refuses duplicates at every depth, after unescaping', () => {
    assert.equal(kind('{"a":1,"a":1}'), 'duplicate');
    assert.equal(kind('[{"a":{"b":1,"b":2}}]'), 'duplicate');
    assert.equal(kind('{"a":1,"\\u0061":2}'), 'duplicate');
    assert.equal(kind('{"a":1,"A":2}'), 'ok');
  });
  it('refuses what serde_json refuses', () => {
    for (const s of ['', '{', '{"a":1,}', '[1,]', '01', '1.', '-', '"\\ud800"', '"\\udc00"', '"a\nb"', "{'a':1}", '{"a":1} x', 'NaN', '"\\x"']) {
      assert.equal(kind(s), 'invalid', s);
    }
    assert.equal(kind('[' .repeat(200) + ']'.repeat(200)), 'invalid');
    assert.equal(kind(' {"a":[1,-2.5e3,true,false,null,"\\ud83d\\ude00"]} '), 'ok');
  });
  it('refuses invalid UTF-8', () => {
    assert.throws(() => parseStrict(new Uint8Array([0x22, 0xff, 0x22])));
  });
});
