//! Building a [`Verifier`]: the issuer and an audience are required, everything else has a safe
//! default.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use keymint_jwks::{Audience, Issuer, Jwks, MAX_LIST_VALIDITY};

use crate::clock::{Clock, SystemClock};
use crate::verifier::Config;
use crate::{BuildError, Verifier};

/// Default clock leeway for `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// The largest leeway the builder accepts.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);
/// Default maximum token length; longer input is refused before any parsing.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;
/// Default maximum signed revocation list length.
pub const DEFAULT_MAX_LIST_LEN: usize = 64 * 1024 * 1024;
/// Default verified-token cache budget: 16 MiB, about 16,000 typical (~500-byte) tokens, since each
/// entry is charged its token length plus 512 bytes.
pub const DEFAULT_CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// Builds a [`Verifier`].
///
/// # Defaults
///
/// - leeway: [`DEFAULT_LEEWAY`] (60 s), at most [`MAX_LEEWAY`];
/// - maximum token length: [`DEFAULT_MAX_TOKEN_LEN`] (8 KiB);
/// - longest revocation list validity (`exp - iat`) accepted:
///   [`MAX_LIST_VALIDITY`](keymint_jwks::MAX_LIST_VALIDITY) (7 days), which may only be lowered;
/// - verified-token cache: [`DEFAULT_CACHE_BYTES`] (16 MiB), of which one API key's live tokens
///   may take [`DEFAULT_CACHE_SHARE_PERCENT`](crate::DEFAULT_CACHE_SHARE_PERCENT) (10 %);
/// - clock: the system clock;
/// - revocation: required. Until a list is installed (at build time or later with
///   [`Verifier::update_revocations`]) every token is refused with
///   [`VerifyError::NoRevocationList`](crate::VerifyError::NoRevocationList), and once the list in
///   force expires, with `RevocationListExpired`. Turning revocation off is only possible through
///   [`dangerous`](Self::dangerous).
#[derive(Debug)]
#[must_use]
pub struct VerifierBuilder {
    issuer: Issuer,
    audiences: Vec<Audience>,
    jwks: Option<Jwks>,
    jwks_path: Option<PathBuf>,
    list: Option<String>,
    list_path: Option<PathBuf>,
    leeway: Duration,
    max_token_len: usize,
    max_list_len: usize,
    max_list_validity: Duration,
    cache_bytes: u64,
    clock: Arc<dyn Clock>,
    check_revocation: bool,
    dpop_base_url: Option<String>,
    dpop_replay_capacity: usize,
    dpop_nonces: Option<Option<Vec<u8>>>,
    dpop_htu_from_host: bool,
}

impl Verifier {
    /// Starts a builder. The issuer and at least one audience are required: a verifier that
    /// accepted any issuer or any audience would accept tokens meant for someone else.
    pub fn builder(issuer: Issuer, audience: Audience) -> VerifierBuilder {
        VerifierBuilder::new(issuer, audience)
    }
}

impl VerifierBuilder {
    pub(crate) fn new(issuer: Issuer, audience: Audience) -> Self {
        Self {
            issuer,
            audiences: vec![audience],
            jwks: None,
            jwks_path: None,
            list: None,
            list_path: None,
            leeway: DEFAULT_LEEWAY,
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
            max_list_len: DEFAULT_MAX_LIST_LEN,
            max_list_validity: MAX_LIST_VALIDITY,
            cache_bytes: DEFAULT_CACHE_BYTES,
            clock: Arc::new(SystemClock),
            check_revocation: true,
            dpop_base_url: None,
            dpop_replay_capacity: crate::dpop::DEFAULT_REPLAY_CAPACITY,
            dpop_nonces: None,
            dpop_htu_from_host: false,
        }
    }

    /// Accepts one more audience.
    pub fn audience(mut self, audience: Audience) -> Self {
        if !self.audiences.contains(&audience) {
            self.audiences.push(audience);
        }
        self
    }

    /// The key set, as a value.
    pub fn jwks(mut self, jwks: Jwks) -> Self {
        self.jwks = Some(jwks);
        self
    }

    /// The key set, read from a file when [`build`](Self::build) runs.
    pub fn jwks_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.jwks_path = Some(path.into());
        self
    }

    /// The initial signed revocation list (compact JWS), checked when `build` runs.
    pub fn revocation_list(mut self, jws: impl Into<String>) -> Self {
        self.list = Some(jws.into());
        self
    }

    /// The initial signed revocation list, read from a file when `build` runs.
    pub fn revocation_list_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.list_path = Some(path.into());
        self
    }

    /// Clock leeway for `exp`, `nbf` and `iat`. At most [`MAX_LEEWAY`].
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Maximum token length in bytes.
    pub fn max_token_len(mut self, bytes: usize) -> Self {
        self.max_token_len = bytes;
        self
    }

    /// Maximum signed revocation list length in bytes.
    pub fn max_revocation_list_len(mut self, bytes: usize) -> Self {
        self.max_list_len = bytes;
        self
    }

    /// The longest validity (`exp - iat`) a revocation list may have to be installed. At most,
    /// and by default, [`MAX_LIST_VALIDITY`](keymint_jwks::MAX_LIST_VALIDITY) (7 days), the cap
    /// keymint's issuer signs within; lower it to match an issuer run with a shorter
    /// `--revocation-list-validity`, so that a list signed with a longer one (by a stolen key,
    /// say) is refused.
    pub fn max_revocation_list_validity(mut self, validity: Duration) -> Self {
        self.max_list_validity = validity;
        self
    }

    /// Memory budget of the verified-token cache in bytes; 0 turns the cache off. One API key (the
    /// token's `sub`) may hold at most [`DEFAULT_CACHE_SHARE_PERCENT`](crate::DEFAULT_CACHE_SHARE_PERCENT)
    /// (10 %, and at least 2 KiB) of it in cached tokens not yet expired: past that its further tokens are verified as usual
    /// but not cached (counted in `keymint_verifier_cache_share_refusals_total`), so no key's
    /// tokens can flush another's. Raise the budget when one key legitimately has more live tokens
    /// than that (many instances sharing one key, each with its own token).
    pub fn cache_capacity_bytes(mut self, bytes: u64) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// The clock to read "now" from.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The external base URL of this API (e.g. `https://api.example`), against which the `htu` of
    /// DPoP proofs is compared. Required for DPoP through the axum integration: without it a DPoP
    /// request is answered 500 (the `Host` header is the client's to choose, so it cannot say
    /// which URL a proof must name).
    pub fn dpop_base_url(mut self, url: impl Into<String>) -> Self {
        self.dpop_base_url = Some(url.into().trim_end_matches('/').to_owned());
        self
    }

    /// How many live DPoP proof IDs to remember (default 100,000; about 100 bytes each). One API
    /// key (the token's `sub`) may hold 1 % of it and one DPoP key half of that: a key (or
    /// DPoP key) sending more than that many proofs per proof window (65 s) is refused with
    /// [`VerifyError::DpopProofQuota`](crate::VerifyError::DpopProofQuota) while every other key
    /// goes on. Raise it when one key legitimately makes more DPoP requests than that (a
    /// publishable key shared by many browsers, or one client making over 500 DPoP requests a
    /// minute with one DPoP key to this server). When the whole cache is full of live proofs, new
    /// proofs are refused rather than old live ones forgotten.
    pub fn dpop_replay_capacity(mut self, n: usize) -> Self {
        self.dpop_replay_capacity = n;
        self
    }

    /// Require a server nonce in DPoP proofs (RFC 9449 §9), valid for 5 to 10 minutes, under a
    /// random secret of this process: a nonce from one replica is refused by another (use
    /// [`require_dpop_nonce_shared`](Self::require_dpop_nonce_shared) behind a load balancer).
    pub fn require_dpop_nonce(mut self) -> Self {
        self.dpop_nonces = Some(None);
        self
    }

    /// Require a server nonce in DPoP proofs under `secret` (at least 32 random bytes), given to
    /// every replica, so that each accepts the nonces of the others.
    pub fn require_dpop_nonce_shared(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.dpop_nonces = Some(Some(secret.into()));
        self
    }

    pub(crate) fn htu_from_host(mut self) -> Self {
        self.dpop_htu_from_host = true;
        self
    }

    pub(crate) fn skip_revocation(mut self) -> Self {
        self.check_revocation = false;
        self
    }

    /// Builds the verifier, reading any files given and checking the initial revocation list.
    pub fn build(self) -> Result<Verifier, BuildError> {
        self.assemble(None)
    }

    /// Shared by `build` and `build_live`: without live sources a key set is required.
    fn assemble(self, live: Option<crate::verifier::LiveHooks>) -> Result<Verifier, BuildError> {
        if self.leeway > MAX_LEEWAY {
            return Err(BuildError::LeewayTooLarge(self.leeway));
        }
        if self.max_list_validity.is_zero() || self.max_list_validity > MAX_LIST_VALIDITY {
            return Err(BuildError::ListValidityCap(self.max_list_validity));
        }
        let jwks = match (self.jwks, &self.jwks_path) {
            (Some(jwks), _) => jwks,
            (None, Some(path)) => crate::files::read_jwks(path)?,
            // Live sources bring the key set; until then the verifier refuses every token.
            (None, None) if live.is_some() => Jwks::default(),
            (None, None) => return Err(BuildError::MissingKeys),
        };
        let list = match (self.list, &self.list_path) {
            (Some(list), _) => Some(list),
            (None, Some(path)) => Some(crate::files::read_list(path, self.max_list_len)?),
            (None, None) => None,
        };
        let config = Config {
            issuer: self.issuer,
            audiences: self.audiences,
            leeway_secs: self.leeway.as_secs(),
            max_token_len: self.max_token_len,
            max_list_len: self.max_list_len,
            max_list_validity: self.max_list_validity,
            check_revocation: self.check_revocation,
            dpop: crate::verifier::DpopSettings {
                replay: crate::dpop::ReplayCache::new(self.dpop_replay_capacity),
                nonces: match self.dpop_nonces {
                    None => None,
                    Some(None) => {
                        Some(crate::dpop::NonceSource::random(300).ok_or(BuildError::Rng)?)
                    }
                    Some(Some(secret)) => Some(
                        crate::dpop::NonceSource::from_secret(&secret, 300)
                            .ok_or(BuildError::NonceSecretTooShort { len: secret.len() })?,
                    ),
                },
                htu_from_host: self.dpop_htu_from_host,
                window_secs: crate::dpop::DEFAULT_PROOF_WINDOW_SECS,
                base_url: self.dpop_base_url,
            },
        };
        let verifier = Verifier::from_parts(config, jwks, self.clock, self.cache_bytes, live);
        if let Some(list) = list {
            verifier.update_revocations(&list)?;
        }
        Ok(verifier)
    }
}

#[cfg(feature = "live")]
impl VerifierBuilder {
    /// Builds a verifier fed by live sources (see [`crate::live`]): background threads fetch the
    /// key set and the revocation list and keep them fresh. Until the first key set arrives, and
    /// whenever it is older than the configured maximum, `verify` fails closed with
    /// [`VerifyError::SourcesUnavailable`](crate::VerifyError::SourcesUnavailable). A key set or
    /// list given to this builder is installed first and replaced by what the sources bring.
    ///
    /// A URL source must be `https`, or `http` to a loopback host
    /// ([`LiveError::InsecureUri`](crate::live::LiveError::InsecureUri) otherwise), unless
    /// [`LiveConfig::dangerous`](crate::live::LiveConfig::dangerous) allowed plain http.
    pub fn build_live(
        self,
        live: crate::live::LiveConfig,
    ) -> Result<(Verifier, crate::live::LiveHandle), BuildError> {
        live.check_uris()?;
        let (wake, wake_rx) = std::sync::mpsc::sync_channel(1);
        let hooks = crate::verifier::LiveHooks {
            wake,
            keys_ok_at: std::sync::atomic::AtomicU64::new(0),
            max_stale_secs: live.max_stale.as_secs(),
        };
        let verifier = self.assemble(Some(hooks))?;
        let handle = crate::live::spawn(verifier.clone(), live, wake_rx)?;
        Ok((verifier, handle))
    }
}
