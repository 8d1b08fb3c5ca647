//! `cargo bench -p keymint-verifier --bench mix`: a realistic workload beside the micro
//! benchmarks of `verify`.
//!
//! 2,000 distinct EdDSA tokens, each verified 100 times, in one seeded shuffled order, in one
//! process, against a revocation list of 0, 10,000 and 1,000,000 entries (a quarter of each kind,
//! none covering the tokens). Each pass builds a new verifier (default 16 MiB cache), so a token's
//! first verify is a cold one (parse, signature, revocation, insert) and its 99 others are cache
//! hits (expiry, revocation and key presence still checked). Passes of the list sizes alternate
//! within each round, so the machine's noise falls on all sizes alike; the report gives, per list
//! size, the median over rounds and the median of each round's difference to the empty list.
//!
//! Options (after `--`): `--tokens N`, `--uses N`, `--rounds N`, `--size N` (only that list size,
//! for a profile). `--test` runs a token amount of work.

// A benchmark is a test harness: a failed setup should stop it loudly.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, missing_docs)]

mod common;

use std::hint::black_box;
use std::time::Instant;

use common::*;
use keymint_jwks::*;
use keymint_verifier::Verifier;

/// What one pass measured, in nanoseconds.
#[derive(Clone, Copy)]
struct Pass {
    /// Every call, averaged.
    mean: f64,
    /// First-time (uncached) verifies, averaged.
    cold: f64,
    /// Cache hits, averaged.
    cached: f64,
}

fn pass(signer: &Signer, tokens: &[String], seq: &[u32], list_jws: &str) -> Pass {
    let verifier = verifier(signer, keymint_verifier::DEFAULT_CACHE_BYTES, list_jws);
    let pass = run(&verifier, tokens, seq);
    // Dropping a large index takes a while: outside the measurement.
    drop(verifier);
    pass
}

/// The measured part of a pass, apart so that a profile can single it out (`perf report
/// --parent run`).
#[inline(never)]
fn run(verifier: &Verifier, tokens: &[String], seq: &[u32]) -> Pass {
    let mut seen = vec![false; tokens.len()];
    let (mut cold_ns, mut cold_n) = (0u128, 0usize);
    let mut warm_ns = 0u128;
    let start = Instant::now();
    let mut segment = start;
    for &i in seq {
        let i = i as usize;
        let token = &tokens[i];
        if seen[i] {
            black_box(verifier.verify_at(black_box(token), NOW).unwrap());
        } else {
            seen[i] = true;
            let t0 = Instant::now();
            warm_ns += (t0 - segment).as_nanos();
            black_box(verifier.verify_at(black_box(token), NOW).unwrap());
            let t1 = Instant::now();
            cold_ns += (t1 - t0).as_nanos();
            cold_n += 1;
            segment = t1;
        }
    }
    let end = Instant::now();
    warm_ns += (end - segment).as_nanos();
    let total = (end - start).as_nanos();
    let warm_n = seq.len() - cold_n;
    Pass {
        mean: total as f64 / seq.len() as f64,
        cold: cold_ns as f64 / cold_n.max(1) as f64,
        cached: warm_ns as f64 / warm_n.max(1) as f64,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    quantile(&mut v, 0.5)
}

fn main() {
    let test = test_mode();
    let n_tokens = arg("--tokens").unwrap_or(if test { 20 } else { 2000 });
    let uses = arg("--uses").unwrap_or(if test { 5 } else { 100 });
    let rounds = arg("--rounds").unwrap_or(if test { 1 } else { 5 });
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
    Rng(0x6b65_796d_696e_74).shuffle(&mut seq);

    // results[size][round]
    let mut results: Vec<Vec<Pass>> = vec![Vec::new(); sizes.len()];
    for round in 0..rounds {
        for k in 0..sizes.len() {
            // Rotate the order of the sizes from round to round.
            let s = (k + round) % sizes.len();
            results[s].push(pass(&signer, &tokens, &seq, &lists[s]));
        }
    }

    println!(
        "mix: {n_tokens} distinct EdDSA tokens x {uses} uses, shuffled (seeded), {rounds} rounds; \
         ns per call, median over rounds; delta = median of the per-round difference to the empty \
         list"
    );
    println!(
        "{:>10} {:>10} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12}",
        "entries", "mean", "delta", "cold", "delta", "cached", "delta", "spread"
    );
    let base = &results[0];
    for (s, &n) in sizes.iter().enumerate() {
        let r = &results[s];
        let d =
            |f: fn(&Pass) -> f64| median(r.iter().zip(base).map(|(a, b)| f(a) - f(b)).collect());
        let m = |f: fn(&Pass) -> f64| median(r.iter().map(f).collect());
        let cached: Vec<f64> = r.iter().map(|p| p.cached).collect();
        let (lo, hi) = (
            cached.iter().copied().fold(f64::MAX, f64::min),
            cached.iter().copied().fold(0.0, f64::max),
        );
        println!(
            "{n:>10} {:>10.0} {:>+12.0} {:>12.0} {:>+12.0} {:>12.0} {:>+12.0} {:>12}",
            m(|p| p.mean),
            d(|p| p.mean),
            m(|p| p.cold),
            d(|p| p.cold),
            m(|p| p.cached),
            d(|p| p.cached),
            format!("{lo:.0}..{hi:.0}"),
        );
    }
}
