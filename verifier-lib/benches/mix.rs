//! `cargo bench -p keymint-verifier --bench mix`: a realistic workload beside the micro
//! benchmarks of `verify`.
//!
//! 2,000 distinct EdDSA tokens, each verified 100 times, in one seeded shuffled order, in one
//! process, against a revocation list of 0, 10,000 and 1,000,000 entries (a quarter of each kind,
//! none covering the tokens). Each round builds one new verifier per list size (default 16 MiB
//! cache), so a token's first verify is a cold one (parse, signature, revocation, insert) and its
//! 99 others are cache hits (expiry, revocation and key presence still checked). The verifiers
//! take turns on each chunk of the sequence, so the machine's noise falls on all sizes alike; the
//! report gives medians, and the median (and range) over rounds of the difference to the empty
//! list.
//!
//! Options (after `--`): `--tokens N`, `--uses N`, `--rounds N`, `--chunk N`, `--size N` (only
//! that list size, for a profile). `--test` runs a token amount of work.

// A benchmark is a test harness: a failed setup should stop it loudly.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, missing_docs)]

mod common;

use std::hint::black_box;
use std::time::Instant;

use common::*;
use keymint_jwks::*;
use keymint_verifier::Verifier;

/// What one round measured for one list size: every first-time (uncached) verify, and the cost
/// per cache hit of each chunk.
#[derive(Default)]
struct Round {
    /// Nanoseconds of each first-time verify.
    cold: Vec<f64>,
    /// Nanoseconds per cache hit, one value per chunk.
    cached: Vec<f64>,
    /// Nanoseconds of all calls.
    total: f64,
    calls: usize,
}

/// Runs `chunk` of the sequence on `verifier`, timing each first-time verify alone and the cache
/// hits between them together. Apart so that a profile can single it out (`run` in `perf
/// report`).
#[inline(never)]
fn run(verifier: &Verifier, tokens: &[String], chunk: &[u32], seen: &mut [bool], out: &mut Round) {
    let (mut warm_ns, mut warm_n) = (0u128, 0usize);
    let start = Instant::now();
    let mut segment = start;
    for &i in chunk {
        let i = i as usize;
        let token = &tokens[i];
        if seen[i] {
            black_box(verifier.verify_at(black_box(token), NOW).unwrap());
            warm_n += 1;
        } else {
            seen[i] = true;
            let t0 = Instant::now();
            warm_ns += (t0 - segment).as_nanos();
            black_box(verifier.verify_at(black_box(token), NOW).unwrap());
            let t1 = Instant::now();
            out.cold.push((t1 - t0).as_nanos() as f64);
            segment = t1;
        }
    }
    let end = Instant::now();
    warm_ns += (end - segment).as_nanos();
    if warm_n > 0 {
        out.cached.push(warm_ns as f64 / warm_n as f64);
    }
    out.total += (end - start).as_nanos() as f64;
    out.calls += chunk.len();
}

fn median(mut v: Vec<f64>) -> f64 {
    quantile(&mut v, 0.5)
}

fn range(v: &[f64]) -> String {
    let lo = v.iter().copied().fold(f64::MAX, f64::min);
    let hi = v.iter().copied().fold(f64::MIN, f64::max);
    format!("{lo:+.0}..{hi:+.0}")
}

fn main() {
    let test = test_mode();
    let n_tokens = arg("--tokens").unwrap_or(if test { 20 } else { 2000 });
    let uses = arg("--uses").unwrap_or(if test { 5 } else { 100 });
    let rounds = arg("--rounds").unwrap_or(if test { 1 } else { 5 });
    let chunk = arg("--chunk").unwrap_or(2000);
    let sizes: Vec<usize> = match (test, arg("--size")) {
        (true, _) => vec![0, 100, 1_000],
        (false, Some(n)) => vec![n],
        (false, None) => vec![0, 10_000, 1_000_000],
    };

    let signer = Signer::new(SigningKey::generate(Algorithm::EdDsa).unwrap());
    let tokens = tokens(&signer, n_tokens);
    let lists: Vec<String> = sizes
        .iter()
        .map(|&n| {
            let signed = signer.sign_revocation_list(&list(n, 1)).unwrap();
            signed.jws().to_owned()
        })
        .collect();
    let mut seq: Vec<u32> = (0..n_tokens as u32)
        .flat_map(|i| std::iter::repeat_n(i, uses))
        .collect();
    Rng(0x006b_6579_6d69_6e74).shuffle(&mut seq);

    // results[size][round]
    let mut results: Vec<Vec<Round>> = sizes.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        // New verifiers (empty caches) each round, all alive together; the sizes take turns on
        // each chunk of the sequence, so that the machine's noise falls on all of them alike.
        let verifiers: Vec<Verifier> = lists
            .iter()
            .map(|l| verifier(&signer, keymint_verifier::DEFAULT_CACHE_BYTES, l))
            .collect();
        let mut seen = vec![vec![false; n_tokens]; sizes.len()];
        let mut round: Vec<Round> = sizes.iter().map(|_| Round::default()).collect();
        for (c, part) in seq.chunks(chunk).enumerate() {
            for k in 0..sizes.len() {
                let s = (k + c) % sizes.len();
                run(&verifiers[s], &tokens, part, &mut seen[s], &mut round[s]);
            }
        }
        for (s, r) in round.into_iter().enumerate() {
            results[s].push(r);
        }
        // Dropping a large index takes a while: outside the measurement.
        drop(verifiers);
    }

    println!(
        "mix: {n_tokens} distinct EdDSA tokens x {uses} uses, shuffled (seeded), {rounds} rounds, \
         list sizes interleaved by chunks of {chunk} calls"
    );
    println!(
        "ns; mean = all calls; cold = median first-time verify; cached = median per-hit cost of a \
         chunk; delta = median over rounds of the difference to the empty list (range)"
    );
    println!(
        "{:>9} {:>7} {:>7} {:>13} {:>7} {:>7} {:>15} {:>7} {:>5} {:>11}",
        "entries", "mean", "delta", "", "cold", "delta", "", "cached", "delta", ""
    );
    let per_round =
        |s: usize, f: &dyn Fn(&Round) -> f64| -> Vec<f64> { results[s].iter().map(f).collect() };
    let mean = |r: &Round| r.total / r.calls as f64;
    let cold = |r: &Round| median(r.cold.clone());
    let cached = |r: &Round| median(r.cached.clone());
    for (s, &n) in sizes.iter().enumerate() {
        let deltas = |f: &dyn Fn(&Round) -> f64| -> Vec<f64> {
            per_round(s, f)
                .iter()
                .zip(per_round(0, f))
                .map(|(a, b)| a - b)
                .collect()
        };
        let (dm, dc, dh) = (deltas(&mean), deltas(&cold), deltas(&cached));
        println!(
            "{n:>9} {:>7.0} {:>+7.0} {:>13} {:>7.0} {:>+7.0} {:>15} {:>7.0} {:>+5.0} {:>11}",
            median(per_round(s, &mean)),
            median(dm.clone()),
            range(&dm),
            median(per_round(s, &cold)),
            median(dc.clone()),
            range(&dc),
            median(per_round(s, &cached)),
            median(dh.clone()),
            range(&dh),
        );
    }
}
