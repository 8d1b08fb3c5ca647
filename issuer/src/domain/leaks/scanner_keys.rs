//! The secret scanner's public keys, and the check of a report's signature against them.
//!
//! GitHub's secret scanning partner program signs every report: `Github-Public-Key-Signature` is
//! the base64 of an ASN.1 DER ECDSA P-256 / SHA-256 signature over the raw body, and
//! `Github-Public-Key-Identifier` names the key in GitHub's public-key document
//! (`https://api.github.com/meta/public_keys/secret_scanning`):
//!
//! ```json
//! {"public_keys": [{"key_identifier": "…", "key": "-----BEGIN PUBLIC KEY-----\n…", "is_current": true}]}
//! ```
//!
//! The document is read from a file or a URL the operator names; an identifier not in it makes
//! the keyring read it again (GitHub rotates keys by adding one), at most once per
//! [`REFRESH_COOLDOWN`], so unsigned noise cannot make the issuer fetch at will.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use base64::Engine as _;
use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};

use crate::domain::clock::Ticker;
use crate::domain::refusal::ScanRefusal;

/// The largest public-key document read (GitHub's is about 1 KiB).
pub const MAX_DOCUMENT: usize = 64 * 1024;
/// The most keys a document may list.
pub const MAX_KEYS: usize = 64;
/// The least time between two reads of the document for an unknown key identifier.
pub const REFRESH_COOLDOWN: Duration = Duration::from_secs(60);
/// How long fetching the document by URL may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The DER prefix of a P-256 `SubjectPublicKeyInfo` (id-ecPublicKey, prime256v1, a 66-byte bit
/// string): what precedes the 65-byte uncompressed point in every such key. A key with any other
/// algorithm, curve or encoding does not start with it and is refused.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// Longest accepted key identifier and signature header (base64 of a DER signature is ~96).
const MAX_HEADER: usize = 512;

/// Why a public-key document was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScannerKeysError {
    /// Not the document's JSON shape (or over the size bound).
    #[error("not a secret-scanning public-key document: {0}")]
    Shape(String),
    /// A listed key is not a PEM P-256 public key.
    #[error("key {key_identifier:?} is not a PEM P-256 public key")]
    Key {
        /// The key's identifier.
        key_identifier: String,
    },
    /// The document lists no key.
    #[error("the document lists no public key")]
    Empty,
    /// The file or URL could not be read.
    #[error("cannot read {from}: {why}")]
    Read {
        /// The file or URL.
        from: String,
        /// What went wrong.
        why: String,
    },
}

#[derive(serde::Deserialize)]
struct Document {
    public_keys: Vec<Listed>,
}

#[derive(serde::Deserialize)]
struct Listed {
    key_identifier: String,
    key: String,
}

/// Public keys by identifier, as uncompressed P-256 points.
#[derive(Debug, Clone, Default)]
pub struct ScannerKeys {
    keys: HashMap<String, Vec<u8>>,
}

impl ScannerKeys {
    /// Parses a public-key document. Every listed key must be a P-256 public key in PEM.
    pub fn from_document(bytes: &[u8]) -> Result<Self, ScannerKeysError> {
        if bytes.len() > MAX_DOCUMENT {
            return Err(ScannerKeysError::Shape(format!(
                "over {MAX_DOCUMENT} bytes"
            )));
        }
        let doc: Document =
            serde_json::from_slice(bytes).map_err(|e| ScannerKeysError::Shape(e.to_string()))?;
        if doc.public_keys.len() > MAX_KEYS {
            return Err(ScannerKeysError::Shape(format!("over {MAX_KEYS} keys")));
        }
        let mut keys = HashMap::with_capacity(doc.public_keys.len());
        for k in doc.public_keys {
            let point = pem::parse(k.key.trim())
                .ok()
                .filter(|p| p.tag() == "PUBLIC KEY")
                .and_then(|p| {
                    p.contents()
                        .strip_prefix(&P256_SPKI_PREFIX[..])
                        .filter(|point| point.len() == 65 && point.first() == Some(&0x04))
                        .map(<[u8]>::to_vec)
                })
                .ok_or_else(|| ScannerKeysError::Key {
                    key_identifier: k.key_identifier.clone(),
                })?;
            keys.insert(k.key_identifier, point);
        }
        if keys.is_empty() {
            return Err(ScannerKeysError::Empty);
        }
        Ok(Self { keys })
    }

    /// Checks a report's signature headers against its raw body.
    pub fn verify(
        &self,
        key_identifier: &str,
        signature: &str,
        body: &[u8],
    ) -> Result<(), ScanRefusal> {
        let point = self
            .keys
            .get(key_identifier)
            .ok_or(ScanRefusal::UnknownScannerKey)?;
        let der = base64::engine::general_purpose::STANDARD
            .decode(signature.trim())
            .map_err(|_| ScanRefusal::BadSignature)?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point)
            .verify(body, &der)
            .map_err(|_| ScanRefusal::BadSignature)
    }

    fn knows(&self, key_identifier: &str) -> bool {
        self.keys.contains_key(key_identifier)
    }
}

/// Where the public-key document comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScannerKeySource {
    /// A file (a copy the operator keeps, or a test fixture).
    File(PathBuf),
    /// An HTTPS URL (plain HTTP only to a loopback host).
    Url(url::Url),
}

impl ScannerKeySource {
    /// `https://…` (or `http://` to loopback) is a URL; anything else a file path.
    pub fn parse(s: &str) -> Result<Self, String> {
        if !(s.starts_with("https://") || s.starts_with("http://")) {
            return Ok(Self::File(PathBuf::from(s)));
        }
        let url = url::Url::parse(s).map_err(|e| format!("{s}: {e}"))?;
        let loopback = super::transport::is_loopback_host(&url);
        if url.scheme() != "https" && !loopback {
            return Err(format!(
                "{s}: the scanner's public keys decide which reports revoke keys: fetch them over HTTPS"
            ));
        }
        Ok(Self::Url(url))
    }

    fn describe(&self) -> String {
        match self {
            Self::File(p) => p.display().to_string(),
            Self::Url(u) => u.to_string(),
        }
    }

    /// Reads and parses the document (blocking: file or network I/O).
    fn read_blocking(&self) -> Result<ScannerKeys, ScannerKeysError> {
        use std::io::Read as _;
        let read_error = |why: String| ScannerKeysError::Read {
            from: self.describe(),
            why,
        };
        let mut bytes = Vec::new();
        match self {
            Self::File(path) => {
                std::fs::File::open(path)
                    .and_then(|f| f.take(MAX_DOCUMENT as u64 + 1).read_to_end(&mut bytes))
                    .map_err(|e| read_error(e.to_string()))?;
            }
            Self::Url(url) => {
                let agent = ureq::AgentBuilder::new().timeout(FETCH_TIMEOUT).build();
                let res = agent
                    .get(url.as_str())
                    .call()
                    .map_err(|e| read_error(e.to_string()))?;
                res.into_reader()
                    .take(MAX_DOCUMENT as u64 + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|e| read_error(e.to_string()))?;
            }
        }
        ScannerKeys::from_document(&bytes)
    }

    async fn read(&self) -> Result<ScannerKeys, ScannerKeysError> {
        let source = self.clone();
        tokio::task::spawn_blocking(move || source.read_blocking())
            .await
            .map_err(|e| ScannerKeysError::Read {
                from: self.describe(),
                why: e.to_string(),
            })?
    }
}

/// The keys in force and where they come from; re-read for an identifier it does not know.
#[derive(Debug)]
pub struct ScannerKeyring {
    source: ScannerKeySource,
    current: ArcSwap<ScannerKeys>,
    last_read: Mutex<Option<Instant>>,
    ticker: Ticker,
}

impl ScannerKeyring {
    /// Reads the document once. A file that does not read or parse is an error (the operator
    /// gets it at start); a URL that does not answer leaves the keyring empty, read again when a
    /// report comes (a scanner's outage must not stop the issuer).
    pub async fn load(source: ScannerKeySource) -> Result<Self, ScannerKeysError> {
        match source.read().await {
            Ok(keys) => Ok(Self::with_keys(source, keys)),
            Err(e) if matches!(source, ScannerKeySource::Url(_)) => {
                tracing::warn!(error = %e, "secret-scanning public keys not read yet; reports are refused until they are");
                Ok(Self {
                    source,
                    current: ArcSwap::from_pointee(ScannerKeys::default()),
                    // The first report reads them again at once.
                    last_read: Mutex::new(None),
                    ticker: Ticker::system(),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// A keyring holding `keys`, reading `source` again for an unknown identifier.
    pub fn with_keys(source: ScannerKeySource, keys: ScannerKeys) -> Self {
        Self::with_ticker(source, keys, Ticker::system())
    }

    /// [`Self::with_keys`] on a given monotonic clock (tests pin the cooldown with it).
    pub fn with_ticker(source: ScannerKeySource, keys: ScannerKeys, ticker: Ticker) -> Self {
        Self {
            source,
            current: ArcSwap::from_pointee(keys),
            last_read: Mutex::new(Some(ticker.now())),
            ticker,
        }
    }

    /// Checks a report's signature headers (either may be missing) against its body.
    pub async fn verify(
        &self,
        key_identifier: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<(), ScanRefusal> {
        let (Some(id), Some(sig)) = (key_identifier, signature) else {
            return Err(ScanRefusal::Unsigned);
        };
        if id.len() > MAX_HEADER || sig.len() > MAX_HEADER {
            return Err(ScanRefusal::BadSignature);
        }
        let keys = self.current.load_full();
        if !keys.knows(id) && self.may_read_again() {
            match self.source.read().await {
                Ok(fresh) => {
                    tracing::info!(source = %self.source.describe(), "secret-scanning public keys read again");
                    self.current.store(Arc::new(fresh));
                }
                Err(e) => tracing::warn!(error = %e, "cannot read the secret-scanning public keys"),
            }
            return self.current.load().verify(id, sig, body);
        }
        keys.verify(id, sig, body)
    }

    fn may_read_again(&self) -> bool {
        let mut last = self
            .last_read
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = self.ticker.now();
        if last.is_some_and(|t| now.duration_since(t) < REFRESH_COOLDOWN) {
            return false;
        }
        *last = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/secret-scanning"
    );

    fn recorded() -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(format!("{FIXTURES}/public-keys.json")).unwrap())
            .unwrap()
    }

    #[test]
    fn the_recorded_document_parses_and_anything_but_p256_pem_is_refused() {
        let doc = recorded();
        let keys = ScannerKeys::from_document(doc.to_string().as_bytes()).unwrap();
        assert_eq!(keys.keys.len(), 2);
        let mut bad = doc.clone();
        bad["public_keys"][0]["key"] =
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".into();
        assert!(matches!(
            ScannerKeys::from_document(bad.to_string().as_bytes()),
            Err(ScannerKeysError::Key { .. })
        ));
        for garbage in [&b"{}"[..], b"[]", br#"{"public_keys":[]}"#, b"\xff"] {
            assert!(ScannerKeys::from_document(garbage).is_err());
        }
        assert!(ScannerKeys::from_document(&vec![b' '; MAX_DOCUMENT + 1]).is_err());
    }

    #[test]
    fn githubs_own_recorded_document_and_signed_report_verify() {
        let doc = std::fs::read(format!("{FIXTURES}/github-public-keys.json")).unwrap();
        let keys = ScannerKeys::from_document(&doc).unwrap();
        let body = std::fs::read(format!("{FIXTURES}/github-report.json")).unwrap();
        let sig = std::fs::read_to_string(format!("{FIXTURES}/github-report.sig")).unwrap();
        let id = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a";
        assert_eq!(keys.verify(id, &sig, &body), Ok(()));
        // One byte of the body, the other key, or one character of the signature: refused.
        let mut changed = body.clone();
        changed[3] ^= 1;
        assert_eq!(
            keys.verify(id, &sig, &changed),
            Err(ScanRefusal::BadSignature)
        );
        let other = "bcb53661c06b4728e59d897fb6165d5c9cda0fd9cdf9d09ead458168deb7518c";
        assert_eq!(
            keys.verify(other, &sig, &body),
            Err(ScanRefusal::BadSignature)
        );
        let flipped = format!("N{}", &sig[1..]);
        assert_eq!(
            keys.verify(id, &flipped, &body),
            Err(ScanRefusal::BadSignature)
        );
    }

    #[test]
    fn urls_must_be_https_except_to_loopback_and_anything_else_is_a_file() {
        assert!(matches!(
            ScannerKeySource::parse("https://api.github.com/meta/public_keys/secret_scanning"),
            Ok(ScannerKeySource::Url(_))
        ));
        assert!(matches!(
            ScannerKeySource::parse("http://127.0.0.1:9/keys"),
            Ok(ScannerKeySource::Url(_))
        ));
        assert!(ScannerKeySource::parse("http://keys.example/doc").is_err());
        assert!(matches!(
            ScannerKeySource::parse("/etc/keymint/scanner.json"),
            Ok(ScannerKeySource::File(_))
        ));
    }

    #[tokio::test]
    async fn an_unknown_identifier_reads_the_document_again_at_most_once_per_cooldown() {
        let dir = std::env::temp_dir().join(format!("keymint-scanner-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keys.json");
        let mut doc = recorded();
        let full = doc.clone();
        // Only the retired key at first: the current one is "added" later, as in a rotation.
        doc["public_keys"].as_array_mut().unwrap().truncate(1);
        std::fs::write(&path, doc.to_string()).unwrap();
        let (ticker, hand) = Ticker::manual();
        let source = ScannerKeySource::File(path.clone());
        let keys = ScannerKeys::from_document(doc.to_string().as_bytes()).unwrap();
        let ring = ScannerKeyring::with_ticker(source, keys, ticker);
        let current = full["public_keys"][1]["key_identifier"]
            .as_str()
            .unwrap()
            .to_owned();
        std::fs::write(&path, full.to_string()).unwrap();
        // Within the cooldown of the first read: not read again, refused as unknown.
        let r = ring.verify(Some(&current), Some("AAAA"), b"body").await;
        assert_eq!(r, Err(ScanRefusal::UnknownScannerKey));
        hand.advance(REFRESH_COOLDOWN);
        // Read again: the key is known now (the signature is still wrong).
        let r = ring.verify(Some(&current), Some("AAAA"), b"body").await;
        assert_eq!(r, Err(ScanRefusal::BadSignature));
        // Another unknown identifier right after: no read, however many come.
        std::fs::remove_file(&path).unwrap();
        for _ in 0..3 {
            let r = ring.verify(Some("nope"), Some("AAAA"), b"body").await;
            assert_eq!(r, Err(ScanRefusal::UnknownScannerKey));
        }
        // A document that no longer reads (the file is gone) leaves the keys in force.
        hand.advance(REFRESH_COOLDOWN);
        let r = ring.verify(Some("nope"), Some("AAAA"), b"body").await;
        assert_eq!(r, Err(ScanRefusal::UnknownScannerKey));
        let r = ring.verify(Some(&current), Some("AAAA"), b"body").await;
        assert_eq!(r, Err(ScanRefusal::BadSignature));
        assert_eq!(
            ring.verify(None, Some("x"), b"").await,
            Err(ScanRefusal::Unsigned)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
