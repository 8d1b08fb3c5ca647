/**
 * End to end against the real keymint binary on loopback (KEYMINT_BIN, else target/release/keymint
 * or under CARGO_TARGET_DIR). Fails, never skips, when the binary is missing.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';

interface PushLatency {
  keymintBin(): string;
  measure(rounds: number): Promise<number[]>;
  p99(values: number[]): number;
}

describe('against the keymint binary', () => {
  it('a revocation reaches the verifier through the push channel in under a second, 20 times', async () => {
    // The script is the measuring tool (plain JS on the built package); the test asserts on it.
    const script = (await import(new URL('../../scripts/push-latency.mjs', import.meta.url).href)) as PushLatency;
    const bin = script.keymintBin();
    assert.ok(existsSync(bin), `keymint binary not found at ${bin}: build it or set KEYMINT_BIN`);
    const latencies = await script.measure(20);
    console.log(`push latency ms: ${latencies.map((l) => l.toFixed(0)).join(' ')}; p99 ${script.p99(latencies).toFixed(0)}`);
    assert.equal(latencies.length, 20);
    for (const l of latencies) assert.ok(l < 1000, `a revocation took ${l.toFixed(0)} ms to reach the verifier`);
  });
});
