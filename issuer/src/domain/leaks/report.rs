//! A secret-scanning report's body and the answer to it, in GitHub's partner-program format.
//!
//! Body: `[{"token": "…", "type": "…", "url": "…", "source": "…"}, …]`. Answer: one item per
//! reported token, in order, `{"token_hash": <SHA-256, hex>, "token_type": …, "label":
//! "true_positive" | "false_positive"}`: the hash rather than the raw token, so the answer never
//! carries a key even to the scanner that sent it.

use std::fmt::Write as _;

use zeroize::Zeroizing;

/// The most tokens one report may carry (GitHub batches a few per push).
pub const MAX_TOKENS: usize = 1000;
/// The longest `url` / `source` / `type` kept for the audit record; longer ones are cut.
const MAX_FIELD: usize = 1024;

/// One reported string.
#[derive(serde::Deserialize)]
pub struct Reported {
    /// The string the scanner matched (maybe a key, maybe not). Zeroized on drop, never logged.
    token: Zeroizing<String>,
    /// The scanner's name for the pattern.
    #[serde(rename = "type")]
    kind: String,
    /// Where it was found.
    #[serde(default)]
    url: String,
    /// `content`, `commit`, `npm`, …
    #[serde(default)]
    source: String,
}

impl std::fmt::Debug for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reported")
            .field("token", &"***")
            .field("kind", &self.kind)
            .field("url", &self.url)
            .finish()
    }
}

impl Reported {
    /// The reported string.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Where it was found (cut to a bounded length).
    pub fn url(&self) -> &str {
        cut(&self.url)
    }

    /// The scanner's `source` (cut to a bounded length).
    pub fn source(&self) -> &str {
        cut(&self.source)
    }

    /// Where it was found, for the audit record: `<url> (<source>)`, cut to a bounded length.
    pub fn location(&self) -> String {
        let mut s = cut(&self.url).to_owned();
        if !self.source.is_empty() {
            let _ = write!(s, " ({})", cut(&self.source));
        }
        s
    }
}

fn cut(s: &str) -> &str {
    if s.len() <= MAX_FIELD {
        return s;
    }
    let mut end = MAX_FIELD;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// Why a signed report's body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// Not a JSON array of `{token, type, url, source}` (duplicate members included).
    #[error("the report is not a JSON array of {{token, type, url, source}}: {0}")]
    Shape(String),
    /// Over [`MAX_TOKENS`].
    #[error("the report names more than {MAX_TOKENS} tokens")]
    TooMany,
}

/// Parses a report body (after its signature was checked).
pub fn parse(body: &[u8]) -> Result<Vec<Reported>, ReportError> {
    // The count is checked on the way in: a huge array is refused, not collected.
    struct Bounded(Vec<Reported>);
    impl<'de> serde::Deserialize<'de> for Bounded {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Visit;
            impl<'de> serde::de::Visitor<'de> for Visit {
                type Value = Bounded;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("an array of reported tokens")
                }
                fn visit_seq<A: serde::de::SeqAccess<'de>>(
                    self,
                    mut seq: A,
                ) -> Result<Bounded, A::Error> {
                    let mut out = Vec::new();
                    while let Some(item) = seq.next_element::<Reported>()? {
                        if out.len() == MAX_TOKENS {
                            return Err(serde::de::Error::custom("too many tokens"));
                        }
                        out.push(item);
                    }
                    Ok(Bounded(out))
                }
            }
            d.deserialize_seq(Visit)
        }
    }
    serde_json::from_slice::<Bounded>(body)
        .map(|b| b.0)
        .map_err(|e| {
            if e.to_string().starts_with("too many tokens") {
                ReportError::TooMany
            } else {
                ReportError::Shape(e.to_string())
            }
        })
}

/// The verdict on one reported string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    /// A real keymint key (live, revoked or expired).
    TruePositive,
    /// Not a key this issuer made: malformed, a wrong checksum, an unknown key ID or a wrong
    /// secret.
    FalsePositive,
}

/// One item of the answer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verdict {
    /// SHA-256 of the reported string, lower-case hex.
    pub token_hash: String,
    /// The scanner's `type`, echoed.
    pub token_type: String,
    /// The verdict.
    pub label: Label,
}

impl Verdict {
    /// The verdict `label` on `r`.
    pub fn on(r: &Reported, label: Label) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, r.token.as_bytes());
        Self {
            token_hash: hex(digest.as_ref()),
            token_type: cut(&r.kind).to_owned(),
            label,
        }
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_parses_with_its_fields_and_debug_hides_the_token() {
        let r = parse(br#"[{"token":"km_x","type":"keymint_api_key","url":"https://github.com/o/r/blob/x","source":"content"}]"#).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].token(), "km_x");
        assert_eq!(r[0].location(), "https://github.com/o/r/blob/x (content)");
        assert!(!format!("{:?}", r[0]).contains("km_x"));
    }

    #[test]
    fn malformed_reports_are_refused_with_duplicate_members_and_wrong_shapes() {
        for bad in [
            &br#"{"token":"a","type":"t"}"#[..],
            br#"[{"token":"a","token":"b","type":"t"}]"#,
            br#"[{"type":"t"}]"#,
            br#"[{"token":1,"type":"t"}]"#,
            b"not json",
        ] {
            assert!(
                matches!(parse(bad), Err(ReportError::Shape(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn a_report_over_the_token_bound_is_refused_and_one_at_it_is_not() {
        let item = r#"{"token":"a","type":"t","url":"u","source":"s"}"#;
        let at = format!("[{}]", vec![item; MAX_TOKENS].join(","));
        assert_eq!(parse(at.as_bytes()).unwrap().len(), MAX_TOKENS);
        let over = format!("[{}]", vec![item; MAX_TOKENS + 1].join(","));
        assert_eq!(parse(over.as_bytes()).unwrap_err(), ReportError::TooMany);
    }

    #[test]
    fn the_answer_carries_the_sha256_of_the_token_never_the_token() {
        let r = parse(br#"[{"token":"abc","type":"t","url":"u","source":"s"}]"#).unwrap();
        let v = serde_json::to_string(&Verdict::on(&r[0], Label::TruePositive)).unwrap();
        assert_eq!(
            v,
            r#"{"token_hash":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad","token_type":"t","label":"true_positive"}"#
        );
    }
}
