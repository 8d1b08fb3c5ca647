/**
 * A strict JSON reader that refuses duplicate member names at every depth.
 *
 * Why not `JSON.parse`: it silently keeps the last of two members with the same name, while other
 * parsers keep the first, so a token with `{"sub":"a","sub":"b"}` would mean different things to
 * different readers. keymint refuses such documents outright, and no well-kept npm package both
 * refuses duplicates and reports them apart from syntax errors, so this small scanner does.
 *
 * It also follows the Rust verifier's single-pass reading (serde): a {@link Shape} says what type a
 * known member must have, and a member of the wrong type is refused *when its value starts*, before
 * anything inside it is read. So the first error in document order wins, as in Rust, and the
 * reason codes agree on inputs that break two rules at once.
 *
 * Grammar: RFC 8259, as serde_json reads it: no leading zeros, no trailing commas, no lone
 * surrogates in `\u` escapes, no control characters in strings, whitespace only ` \t\n\r`, nesting at
 * most 128 deep, nothing after the value but whitespace.
 */

/** A JSON number, kept as its text so that integers beyond 2^53 stay exact. */
export class JsonNumber {
  constructor(readonly text: string) {}
}

/** An object: its members in document order (names are unique, duplicates are refused). */
export type JsonObject = Map<string, Json>;

/** A parsed JSON value. */
export type Json = null | boolean | string | JsonNumber | Json[] | JsonObject;

/** What a value must be; anything else is refused as soon as the value starts. */
export type Shape =
  | { readonly kind: 'any' }
  | { readonly kind: 'string' }
  | { readonly kind: 'u64' }
  /** A string, or an array of at most `max` strings (the `aud` claim). */
  | { readonly kind: 'stringOrStrings'; readonly max: number }
  | { readonly kind: 'object'; readonly members: Readonly<Record<string, Shape>> };

export const ANY: Shape = { kind: 'any' };

/** Why a document was refused. */
export class JsonError extends Error {
  override readonly name = 'JsonError';
  constructor(
    /** `duplicate`: an object repeats a member name; `invalid`: anything else. */
    readonly kind: 'duplicate' | 'invalid',
    message: string,
    /** For `duplicate`: the repeated name, cut to 32 characters. */
    readonly member?: string,
  ) {
    super(message);
  }
}

const MAX_DEPTH = 128;
const U64_MAX = (1n << 64n) - 1n;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Parses `bytes` (UTF-8) as one JSON value of shape `shape`. */
export function parseStrict(bytes: Uint8Array, shape: Shape = ANY): Json {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new JsonError('invalid', 'JSON is not valid UTF-8');
  }
  const reader = new Reader(text);
  reader.ws();
  const value = reader.value(shape, 0);
  reader.ws();
  if (reader.pos !== text.length) reader.fail('trailing characters');
  return value;
}

/** The value of a u64 number, or undefined if it is not one (negative, fractional, too large). */
export function u64Of(n: JsonNumber): bigint | undefined {
  if (!/^(0|[1-9][0-9]*)$/.test(n.text)) return undefined;
  const v = BigInt(n.text);
  return v <= U64_MAX ? v : undefined;
}

function isObject(v: Json): v is JsonObject {
  return v instanceof Map;
}

export { isObject };

class Reader {
  pos = 0;
  constructor(private readonly s: string) {}

  fail(what: string): never {
    // Positions only, never the input: the input may be a token.
    throw new JsonError('invalid', `JSON ${what} at character ${this.pos}`);
  }

  wrongType(expected: string): never {
    throw new JsonError('invalid', `JSON has the wrong shape: expected ${expected} at character ${this.pos}`);
  }

  ws(): void {
    const s = this.s;
    while (this.pos < s.length) {
      const c = s.charCodeAt(this.pos);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.pos++;
      else break;
    }
  }

  peek(): string {
    return this.s.charAt(this.pos);
  }

  value(shape: Shape, depth: number): Json {
    const c = this.peek();
    switch (shape.kind) {
      case 'string':
        if (c !== '"') this.wrongType('a string');
        return this.string();
      case 'u64': {
        if (c !== '-' && !(c >= '0' && c <= '9')) this.wrongType('an unsigned integer');
        const n = this.number();
        if (u64Of(n) === undefined) this.wrongType('an unsigned integer');
        return n;
      }
      case 'stringOrStrings':
        if (c === '"') return this.string();
        if (c !== '[') this.wrongType('a string or an array of strings');
        return this.array({ kind: 'string' }, depth, shape.max);
      case 'object':
        if (c !== '{') this.wrongType('an object');
        return this.object(shape.members, depth);
      case 'any':
        break;
    }
    if (c === '{') return this.object({}, depth);
    if (c === '[') return this.array(ANY, depth, Infinity);
    if (c === '"') return this.string();
    if (c === '-' || (c >= '0' && c <= '9')) return this.number();
    if (this.s.startsWith('true', this.pos)) {
      this.pos += 4;
      return true;
    }
    if (this.s.startsWith('false', this.pos)) {
      this.pos += 5;
      return false;
    }
    if (this.s.startsWith('null', this.pos)) {
      this.pos += 4;
      return null;
    }
    return this.fail(this.pos >= this.s.length ? 'ends early' : 'syntax error');
  }

  object(members: Readonly<Record<string, Shape>>, depth: number): JsonObject {
    if (depth + 1 >= MAX_DEPTH) this.fail('nests too deep');
    this.pos++; // {
    const out: JsonObject = new Map();
    this.ws();
    if (this.peek() === '}') {
      this.pos++;
      return out;
    }
    for (;;) {
      this.ws();
      if (this.peek() !== '"') this.fail('syntax error (member name expected)');
      const name = this.string();
      this.ws();
      if (this.peek() !== ':') this.fail('syntax error (colon expected)');
      this.pos++;
      this.ws();
      const shape = Object.prototype.hasOwnProperty.call(members, name) ? members[name] ?? ANY : ANY;
      const v = this.value(shape, depth + 1);
      // As in Rust, the name is recorded after its value is read: an error inside the value
      // comes first.
      if (out.has(name)) {
        const member = [...name].slice(0, 32).join('');
        throw new JsonError('duplicate', `duplicate JSON member ${JSON.stringify(member)}`, member);
      }
      out.set(name, v);
      this.ws();
      const c = this.peek();
      if (c === ',') {
        this.pos++;
        continue;
      }
      if (c === '}') {
        this.pos++;
        return out;
      }
      this.fail(this.pos >= this.s.length ? 'ends early' : 'syntax error (comma or } expected)');
    }
  }

  array(element: Shape, depth: number, max: number): Json[] {
    if (depth + 1 >= MAX_DEPTH) this.fail('nests too deep');
    this.pos++; // [
    const out: Json[] = [];
    this.ws();
    if (this.peek() === ']') {
      this.pos++;
      return out;
    }
    for (;;) {
      this.ws();
      if (out.length >= max) this.wrongType(`at most ${max} elements`);
      out.push(this.value(element, depth + 1));
      this.ws();
      const c = this.peek();
      if (c === ',') {
        this.pos++;
        continue;
      }
      if (c === ']') {
        this.pos++;
        return out;
      }
      this.fail(this.pos >= this.s.length ? 'ends early' : 'syntax error (comma or ] expected)');
    }
  }

  number(): JsonNumber {
    const m = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
    m.lastIndex = this.pos;
    const found = m.exec(this.s);
    if (found === null || found[0] === '-' || found[0].length === 0) this.fail('invalid number');
    const text = found[0];
    this.pos += text.length;
    // "01": a digit right after a leading zero is not a longer number but an error.
    const next = this.peek();
    if (next >= '0' && next <= '9') this.fail('invalid number');
    return new JsonNumber(text);
  }

  string(): string {
    const s = this.s;
    this.pos++; // "
    let out = '';
    let start = this.pos;
    for (;;) {
      if (this.pos >= s.length) this.fail('ends early (in a string)');
      const c = s.charCodeAt(this.pos);
      if (c === 0x22) {
        out += s.slice(start, this.pos);
        this.pos++;
        return out;
      }
      if (c < 0x20) this.fail('control character in a string');
      if (c !== 0x5c) {
        this.pos++;
        continue;
      }
      out += s.slice(start, this.pos);
      this.pos++;
      const e = s.charAt(this.pos);
      this.pos++;
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          const hi = this.hex4();
          if (hi >= 0xdc00 && hi <= 0xdfff) this.fail('lone trailing surrogate');
          if (hi >= 0xd800 && hi <= 0xdbff) {
            if (s.charAt(this.pos) !== '\\' || s.charAt(this.pos + 1) !== 'u') this.fail('lone leading surrogate');
            this.pos += 2;
            const lo = this.hex4();
            if (lo < 0xdc00 || lo > 0xdfff) this.fail('lone leading surrogate');
            out += String.fromCharCode(hi, lo);
          } else {
            out += String.fromCharCode(hi);
          }
          break;
        }
        default:
          this.fail('invalid escape');
      }
      start = this.pos;
    }
  }

  hex4(): number {
    const h = this.s.slice(this.pos, this.pos + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) this.fail('invalid \\u escape');
    this.pos += 4;
    return parseInt(h, 16);
  }
}
