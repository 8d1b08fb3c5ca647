//! The printable API key: `km_{sk|pk}_{live|test}_<key ID>_<secret><checksum>`.
//!
//! - key ID: 16 base62 characters, not secret (logs, dashboards, the token's `sub`);
//! - secret: 43 base62 characters from ring's `SystemRandom` (43 × log2 62 ≈ 256.0 bits);
//! - checksum: CRC32 of everything before it, as 6 base62 characters, so that clients and secret
//!   scanners reject a mistyped or made-up key without a database lookup.
//!
//! Regex: `^km_(sk|pk)_(live|test)_[0-9A-Za-z]{16}_[0-9A-Za-z]{49}$`

use std::fmt;

use keymint_jwks::ApiKeyId;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Length of a key ID.
pub const KEY_ID_LEN: usize = 16;
/// Length of the secret part.
pub const SECRET_LEN: usize = 43;
/// Length of the checksum.
pub const CHECKSUM_LEN: usize = 6;
/// Length of a whole printable key: `km_sk_live_` (11) + 16 + `_` + 43 + 6.
pub const KEY_LEN: usize = 11 + KEY_ID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN;
/// The README's regex for a printable key.
pub const KEY_REGEX: &str = "^km_(sk|pk)_(live|test)_[0-9A-Za-z]{16}_[0-9A-Za-z]{49}$";

/// Secret (server-side, full access) or publishable (browser, origin-restricted) key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// `sk`.
    Secret,
    /// `pk`.
    Publishable,
}

impl KeyKind {
    /// `sk` or `pk`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Secret => "sk",
            Self::Publishable => "pk",
        }
    }
    /// Parses `sk` / `pk`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sk" => Some(Self::Secret),
            "pk" => Some(Self::Publishable),
            _ => None,
        }
    }
}

/// `live` or `test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyEnv {
    /// Production.
    Live,
    /// Testing.
    Test,
}

impl KeyEnv {
    /// `live` or `test`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Test => "test",
        }
    }
    /// Parses `live` / `test`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "live" => Some(Self::Live),
            "test" => Some(Self::Test),
            _ => None,
        }
    }
}

/// The secret part of a key. `Debug` is redacted; zeroized on drop.
pub struct ApiKeySecret(Zeroizing<String>);

impl ApiKeySecret {
    /// The secret characters.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeySecret(***)")
    }
}

/// A whole printable key, as shown once at creation. `Debug` is redacted; zeroized on drop.
pub struct PrintableKey(Zeroizing<String>);

impl PrintableKey {
    /// The key text, to hand to its owner exactly once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PrintableKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrintableKey(***)")
    }
}

/// A key presented by a client, parsed and checksum-verified (not yet authenticated).
#[derive(Debug)]
pub struct PresentedKey {
    /// Secret or publishable.
    pub kind: KeyKind,
    /// Environment.
    pub env: KeyEnv,
    /// The key ID.
    pub key_id: ApiKeyId,
    /// The secret.
    pub secret: ApiKeySecret,
}

/// Why a presented key was refused before any lookup. Deliberately vague in its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFormatError {
    /// Not the shape of a keymint key.
    #[error("not a keymint API key")]
    Shape,
    /// The shape is right but the checksum is not: a typo or a made-up key.
    #[error("API key checksum mismatch")]
    Checksum,
}

fn base62_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

fn random_base62(
    rng: &dyn SecureRandom,
    n: usize,
) -> Result<Zeroizing<String>, ring::error::Unspecified> {
    let mut out = Zeroizing::new(String::with_capacity(n));
    let mut buf = Zeroizing::new([0u8; 64]);
    while out.len() < n {
        rng.fill(&mut buf[..])?;
        for &b in buf.iter() {
            // 248 = 4 × 62: rejecting the rest keeps every character uniform.
            if b < 248
                && out.len() < n
                && let Some(&c) = ALPHABET.get(usize::from(b % 62))
            {
                out.push(char::from(c));
            }
        }
    }
    Ok(out)
}

fn checksum(prefix: &str) -> [u8; CHECKSUM_LEN] {
    let mut n = crc32fast::hash(prefix.as_bytes());
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET.get((n % 62) as usize).copied().unwrap_or(b'0');
        n /= 62;
    }
    out
}

/// Makes a new key: a fresh key ID and secret from `rng`.
pub fn generate(
    kind: KeyKind,
    env: KeyEnv,
    rng: &SystemRandom,
) -> Result<(ApiKeyId, PrintableKey), ring::error::Unspecified> {
    let id = random_base62(rng, KEY_ID_LEN)?;
    let key_id = ApiKeyId::new(id.as_str()).map_err(|_| ring::error::Unspecified)?;
    let secret = random_base62(rng, SECRET_LEN)?;
    Ok((key_id, assemble(kind, env, &id, &secret)))
}

/// Assembles a printable key from its parts, adding the checksum. `generate` is the way to make
/// real keys; this exists so that tests can build keys with chosen parts.
pub fn assemble(kind: KeyKind, env: KeyEnv, key_id: &str, secret: &str) -> PrintableKey {
    let mut text = Zeroizing::new(String::with_capacity(KEY_LEN));
    text.push_str("km_");
    text.push_str(kind.as_str());
    text.push('_');
    text.push_str(env.as_str());
    text.push('_');
    text.push_str(key_id);
    text.push('_');
    text.push_str(secret);
    let sum = checksum(&text);
    text.push_str(std::str::from_utf8(&sum).unwrap_or("000000"));
    PrintableKey(text)
}

/// Parses a presented key: shape, alphabet and checksum, all without touching the database.
pub fn parse(text: &str) -> Result<PresentedKey, KeyFormatError> {
    if text.len() != KEY_LEN || !text.is_ascii() {
        return Err(KeyFormatError::Shape);
    }
    let mut parts = text.splitn(5, '_');
    let (Some("km"), Some(kind), Some(env), Some(id), Some(rest)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(KeyFormatError::Shape);
    };
    let kind = KeyKind::parse(kind).ok_or(KeyFormatError::Shape)?;
    let env = KeyEnv::parse(env).ok_or(KeyFormatError::Shape)?;
    if id.len() != KEY_ID_LEN
        || rest.len() != SECRET_LEN + CHECKSUM_LEN
        || !id.bytes().all(base62_char)
        || !rest.bytes().all(base62_char)
    {
        return Err(KeyFormatError::Shape);
    }
    let (secret, sum) = rest.split_at(SECRET_LEN);
    let prefix = text
        .get(..KEY_LEN - CHECKSUM_LEN)
        .ok_or(KeyFormatError::Shape)?;
    if checksum(prefix) != sum.as_bytes() {
        return Err(KeyFormatError::Checksum);
    }
    Ok(PresentedKey {
        kind,
        env,
        key_id: ApiKeyId::new(id).map_err(|_| KeyFormatError::Shape)?,
        secret: ApiKeySecret(Zeroizing::new(secret.to_owned())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // The documented format itself (the README's regex) is checked in
    // `issuer/tests/at_rest_vectors.rs`, against the README's own text.
    fn generated_keys_parse_back() {
        let rng = SystemRandom::new();
        for (kind, env) in [
            (KeyKind::Secret, KeyEnv::Live),
            (KeyKind::Publishable, KeyEnv::Test),
        ] {
            let (id, key) = generate(kind, env, &rng).unwrap();
            assert_eq!(key.expose().len(), KEY_LEN);
            let parsed = parse(key.expose()).unwrap();
            assert_eq!(parsed.key_id, id);
            assert_eq!(parsed.kind, kind);
            assert_eq!(parsed.env, env);
            assert_eq!(parsed.secret.expose().len(), SECRET_LEN);
        }
    }

    #[test]
    fn every_single_character_typo_fails_the_checksum_or_shape() {
        let rng = SystemRandom::new();
        let (_, key) = generate(KeyKind::Secret, KeyEnv::Live, &rng).unwrap();
        let text = key.expose().to_owned();
        for i in 11..text.len() {
            let mut bytes = text.clone().into_bytes();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let typo = String::from_utf8(bytes).unwrap();
            if typo != text {
                assert!(parse(&typo).is_err(), "typo at {i} accepted");
            }
        }
    }

    #[test]
    fn made_up_and_malformed_keys_are_refused() {
        let fake = format!("km_sk_live_{}_{}", "A".repeat(16), "B".repeat(49));
        assert_eq!(parse(&fake).unwrap_err(), KeyFormatError::Checksum);
        for bad in [
            "",
            "km_sk_live_",
            "sk_live_abc",
            &fake.replace("km_", "xx_"),
            &fake.replace("_live_", "_prod_"),
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let rng = SystemRandom::new();
        let (_, key) = generate(KeyKind::Secret, KeyEnv::Live, &rng).unwrap();
        let parsed = parse(key.expose()).unwrap();
        let dbg = format!("{key:?} {parsed:?}");
        assert!(!dbg.contains(parsed.secret.expose()));
    }
}
