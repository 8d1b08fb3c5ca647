//! `cargo bench -p keymint-verifier --bench verify`
//!
//! Ids are stable so figures compare across versions:
//! - `verify/ring_ed25519`, `verify/ring_es256`: the bare ring signature check of the same signing
//!   inputs and signatures (the same 4,096 tokens in the same rotation), the floor a verifier
//!   cannot beat;
//! - `verify/fresh_ed25519`, `verify/fresh_es256`: the full `verify` of a token not in the cache
//!   (4,096 distinct tokens in rotation against a cache that holds a handful, so every call misses,
//!   verifies, inserts and evicts);
//! - `verify/repeat_ed25519`: the same token again (a cache hit, with expiry and revocation
//!   checked);
//! - `revocation/lookup_1m`: a revocation lookup against a list of 1,000,000 entries.
//!
//! `scripts/bench-verify` runs this and prints the ratios the bars are stated in.

// A benchmark is a test harness: a failed setup should stop it loudly.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::hint::black_box;

use base64::Engine as _;
use criterion::{Criterion, criterion_group, criterion_main};
use keymint_jwks::*;
use keymint_verifier::{RevocationIndex, Verifier};
use ring::signature::{self as sig, UnparsedPublicKey};

const NOW: UnixTime = UnixTime(1_800_000_000);
const ISS: &str = "https://issuer.example";
const AUD: &str = "https://api.example";

fn claims(i: usize) -> Claims {
    Claims {
        iss: Issuer::new(ISS).unwrap(),
        sub: ApiKeyId::new("k7Gx2pQ9rT").unwrap(),
        aud: Audience::new(AUD).unwrap(),
        exp: UnixTime(NOW.0 + 600),
        iat: NOW,
        nbf: Some(NOW),
        jti: Jti::new(format!("jti-{i:08}")).unwrap(),
        client_id: ClientId::new("k7Gx2pQ9rT").unwrap(),
        scope: ScopeSet::parse("orders:read orders:write catalog:read").unwrap(),
        tenant: TenantId::new("acme-corp").unwrap(),
        cnf: None,
    }
}

fn verifier(signer: &Signer, cache_bytes: u64) -> Verifier {
    let jwks = Jwks::new(vec![signer.key().public_jwk()]).unwrap();
    let list = signer
        .sign_revocation_list(&RevocationList {
            v: 1,
            iss: Issuer::new(ISS).unwrap(),
            serial: 1,
            iat: NOW,
            exp: UnixTime(NOW.0 + 86_400),
            entries: vec![],
        })
        .unwrap();
    let v = Verifier::builder(Issuer::new(ISS).unwrap(), Audience::new(AUD).unwrap())
        .jwks(jwks)
        .cache_capacity_bytes(cache_bytes)
        .build()
        .unwrap();
    v.update_revocations_at(list.jws(), NOW).unwrap();
    v
}

fn split(token: &str) -> (Vec<u8>, Vec<u8>) {
    let (input, s) = token.rsplit_once('.').unwrap();
    let s = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap();
    (input.as_bytes().to_vec(), s)
}

fn bench_alg(c: &mut Criterion, alg: Algorithm, name: &str) {
    let signer = Signer::new(SigningKey::generate(alg).unwrap());
    let ring_alg: &'static dyn sig::VerificationAlgorithm = match alg {
        Algorithm::EdDsa => &sig::ED25519,
        _ => &sig::ECDSA_P256_SHA256_FIXED,
    };
    let tokens: Vec<String> = (0..4096)
        .map(|i| signer.sign_access_token(&claims(i)).unwrap())
        .collect();
    let public = signer.key().public_key().as_bytes().to_vec();
    let split_tokens: Vec<(Vec<u8>, Vec<u8>)> = tokens.iter().map(|t| split(t)).collect();

    let mut group = c.benchmark_group("verify");
    // The same signing inputs and signatures, in the same rotation, as the fresh benchmark: both
    // meet the same memory traffic, so the ratio isolates what verify adds.
    let mut i = 0usize;
    group.bench_function(format!("ring_{name}"), |b| {
        b.iter(|| {
            i = (i + 1) % split_tokens.len();
            let (input, signature) = &split_tokens[i];
            UnparsedPublicKey::new(ring_alg, black_box(&public))
                .verify(black_box(input), black_box(signature))
                .unwrap()
        })
    });
    // A cache far smaller than the rotation: every call is a miss.
    let fresh = verifier(&signer, 16 * 1024);
    let mut i = 0usize;
    group.bench_function(format!("fresh_{name}"), |b| {
        b.iter(|| {
            i = (i + 1) % tokens.len();
            fresh.verify_at(black_box(&tokens[i]), NOW).unwrap()
        })
    });
    if alg == Algorithm::EdDsa {
        let repeat = verifier(&signer, keymint_verifier::DEFAULT_CACHE_BYTES);
        repeat.verify_at(&tokens[0], NOW).unwrap();
        group.bench_function(format!("repeat_{name}"), |b| {
            b.iter(|| repeat.verify_at(black_box(&tokens[0]), NOW).unwrap())
        });
    }
    group.finish();
}

fn bench_verify(c: &mut Criterion) {
    bench_alg(c, Algorithm::EdDsa, "ed25519");
    bench_alg(c, Algorithm::Es256, "es256");
}

fn bench_revocation(c: &mut Criterion) {
    // 1,000,000 entries, a quarter of each kind.
    let entries = (0..1_000_000u32)
        .map(|i| {
            let target = match i % 4 {
                0 => RevocationTarget::Key(ApiKeyId::new(format!("key{i}")).unwrap()),
                1 => RevocationTarget::Jti(Jti::new(format!("jti-{i}")).unwrap()),
                2 => RevocationTarget::Tenant(TenantId::new(format!("tenant-{i}")).unwrap()),
                _ => RevocationTarget::Kid(Kid::new(format!("kid-{i}")).unwrap()),
            };
            RevocationEntry {
                target,
                revoked_at: NOW,
                drop_after: UnixTime(NOW.0 + 3600),
            }
        })
        .collect();
    let list = RevocationList {
        v: 1,
        iss: Issuer::new(ISS).unwrap(),
        serial: 1,
        iat: NOW,
        exp: UnixTime(NOW.0 + 86_400),
        entries,
    };
    let index = RevocationIndex::new(&list);
    assert_eq!(index.len(), 1_000_000);
    let live = claims(7);
    let kid = Kid::new("not-revoked-kid").unwrap();
    let mut group = c.benchmark_group("revocation");
    // A token that no entry covers: all four indexes are probed, the worst case.
    group.bench_function("lookup_1m", |b| {
        b.iter(|| index.check(black_box(&live), black_box(&kid)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench_verify, bench_revocation);
criterion_main!(benches);
