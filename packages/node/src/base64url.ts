/**
 * Unpadded base64url, read strictly: the alphabet only, no padding, no impossible length, and no
 * stray bits in the last character. `Buffer.from(s, 'base64url')` skips bad characters and ignores
 * stray bits, so two different strings would decode to the same bytes; the Rust verifier refuses
 * them, and so does this.
 */
export function decodeBase64Url(s: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) return undefined;
  const bytes = Buffer.from(s, 'base64url');
  // Canonical: the bytes encode back to the very same text.
  if (bytes.toString('base64url') !== s) return undefined;
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function encodeBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}
