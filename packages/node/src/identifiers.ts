/**
 * The identifier alphabets and lengths of keymint's formats (the Rust `keymint_jwks::ids` and
 * `scope` modules), checked once where a token or list is read.
 */

const isAlnum = (c: number) => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
const visible = (c: number) => c >= 0x21 && c <= 0x7e;

function check(s: string, max: number, allowed: (c: number) => boolean): boolean {
  // Lengths are in UTF-8 bytes, like Rust's; any non-ASCII character is outside every alphabet.
  if (s.length === 0 || Buffer.byteLength(s, 'utf8') > max) return false;
  for (let i = 0; i < s.length; i++) if (!allowed(s.charCodeAt(i))) return false;
  return true;
}

/** The kinds of identifier, with their rules. */
export const Ids = {
  apiKeyId: (s: string) => check(s, 64, isAlnum),
  tenant: (s: string) => check(s, 128, (c) => isAlnum(c) || c === 0x2d || c === 0x5f || c === 0x2e || c === 0x3a || c === 0x40),
  jti: (s: string) => check(s, 128, (c) => isAlnum(c) || c === 0x2d || c === 0x5f || c === 0x2e || c === 0x3a),
  clientId: (s: string) => check(s, 128, visible),
  kid: (s: string) => check(s, 256, visible),
  issuer: (s: string) => check(s, 2048, visible),
  audience: (s: string) => check(s, 2048, visible),
  jkt: (s: string) => s.length === 43 && check(s, 43, (c) => isAlnum(c) || c === 0x2d || c === 0x5f),
  /** One scope-token (RFC 6749 §3.3): visible ASCII except `"` and `\`. */
  scope: (s: string) => check(s, 128, (c) => c === 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e)),
} as const;

/** Most scopes one token may carry. */
export const MAX_SCOPES = 256;

/**
 * Parses a `scope` claim: scopes separated by single spaces, none leading or trailing; the empty
 * string is the empty set; repeats collapse. `undefined` if invalid.
 */
export function parseScopeSet(s: string): ReadonlySet<string> | undefined {
  const set = new Set<string>();
  if (s === '') return set;
  const parts = s.split(' ');
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] ?? '';
    if (part === '' || i >= MAX_SCOPES || !Ids.scope(part)) return undefined;
    set.add(part);
  }
  return set;
}

/** ASCII-only lowercasing: `toLowerCase` maps e.g. the Kelvin sign to `k`, which Rust's does not. */
export function asciiLower(s: string): string {
  return s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}

/**
 * Whether a `typ` header names `expected`: compared ASCII-case-insensitively, with an optional
 * `application/` prefix (RFC 9068 §4, RFC 7515 §4.1.9).
 */
export function typMatches(typ: string, expected: string): boolean {
  const lower = asciiLower(typ);
  const bare = lower.startsWith('application/') ? lower.slice('application/'.length) : lower;
  return bare === expected;
}
