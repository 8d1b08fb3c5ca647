//! What the verifier benchmarks share: claims, tokens, verifiers, revocation lists, a seeded
//! shuffle and the statistics the reports print.

// Each bench binary uses part of this module.
#![allow(dead_code)]

use keymint_jwks::*;
use keymint_verifier::Verifier;

pub(crate) const NOW: UnixTime = UnixTime(1_800_000_000);
pub(crate) const ISS: &str = "https://issuer.example";
pub(crate) const AUD: &str = "https://api.example";

/// Claims of the `i`-th token: a distinct `jti`, and `sub` / `tenant` drawn from small
/// populations (500 API keys, 50 tenants), as a real server sees them.
pub(crate) fn claims(i: usize) -> Claims {
    let key = format!("k{:09}", i % 500);
    Claims {
        iss: Issuer::new(ISS).unwrap(),
        sub: ApiKeyId::new(key.clone()).unwrap(),
        aud: Audience::new(AUD).unwrap(),
        exp: UnixTime(NOW.0 + 600),
        iat: NOW,
        nbf: Some(NOW),
        jti: Jti::new(format!("jti-{i:08}")).unwrap(),
        client_id: ClientId::new(key).unwrap(),
        scope: ScopeSet::parse("orders:read orders:write catalog:read").unwrap(),
        tenant: TenantId::new(format!("tenant-{:03}", i % 50)).unwrap(),
        cnf: None,
    }
}

/// `n` distinct tokens signed by `signer`.
pub(crate) fn tokens(signer: &Signer, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| signer.sign_access_token(&claims(i)).unwrap())
        .collect()
}

/// A revocation list of `n` entries, a quarter of each kind, none of which covers a token made by
/// [`claims`] (their ids are from other populations), so every probe is a miss: the worst case.
pub(crate) fn list(n: usize, serial: u64) -> RevocationList {
    let entries = (0..n)
        .map(|i| {
            let target = match i % 4 {
                0 => RevocationTarget::Key(ApiKeyId::new(format!("r{i:09}")).unwrap()),
                1 => RevocationTarget::Jti(Jti::new(format!("revoked-{i:08}")).unwrap()),
                2 => RevocationTarget::Tenant(TenantId::new(format!("gone-{i}")).unwrap()),
                _ => RevocationTarget::Kid(Kid::new(format!("kid-{i}")).unwrap()),
            };
            RevocationEntry {
                target,
                revoked_at: NOW,
                drop_after: UnixTime(NOW.0 + 3600),
            }
        })
        .collect();
    RevocationList {
        v: 1,
        iss: Issuer::new(ISS).unwrap(),
        serial,
        iat: NOW,
        exp: UnixTime(NOW.0 + 86_400),
        entries,
    }
}

/// A verifier of `signer`'s tokens with a cache of `cache_bytes` and the signed list `list_jws`
/// installed.
pub(crate) fn verifier(signer: &Signer, cache_bytes: u64, list_jws: &str) -> Verifier {
    let jwks = Jwks::new(vec![signer.key().public_jwk()]).unwrap();
    let v = Verifier::builder(Issuer::new(ISS).unwrap(), Audience::new(AUD).unwrap())
        .jwks(jwks)
        .cache_capacity_bytes(cache_bytes)
        .max_revocation_list_len(512 * 1024 * 1024)
        .build()
        .unwrap();
    v.update_revocations_at(list_jws, NOW).unwrap();
    v
}

/// splitmix64: a tiny seeded generator, so that every run shuffles the same way.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Fisher–Yates.
    pub(crate) fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// The `q`-quantile (0..=1) of `v`, which is sorted in place.
pub(crate) fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    v[i]
}

/// Whether the binary was started by `cargo bench -- --test` (or `cargo test --benches`): run a
/// token amount of work, only to prove that it runs.
pub(crate) fn test_mode() -> bool {
    std::env::args().any(|a| a == "--test")
}

/// The value of `--name N` on the command line, if any.
pub(crate) fn arg(name: &str) -> Option<usize> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}
