//! `keymint keys check`: whether a string is a keymint key, offline, without printing its secret.

use std::process::ExitCode;

use super::print_json;
use crate::domain::keys::api_key::{self, KeyKind};

/// The longest input `keys check` reads: a key is 77 characters; anything much longer is not one.
const CHECK_INPUT_MAX: u64 = 4096;

/// `keys check`: reads one candidate from `input` (surrounding whitespace ignored) and prints
/// the verdict. Never prints the secret part, whatever the input.
pub(super) fn check(input: &mut impl std::io::Read, json: bool) -> ExitCode {
    use std::io::Read as _;
    let mut text = zeroize::Zeroizing::new(String::new());
    let verdict = match input.take(CHECK_INPUT_MAX).read_to_string(&mut text) {
        Ok(_) => api_key::parse(text.trim()).map_err(|e| match e {
            api_key::KeyFormatError::Checksum => {
                "the checksum does not match: mistyped, truncated or made up"
            }
            _ => "not a keymint API key (km_{sk|pk}_{live|test}_<key ID>_<secret+checksum>)",
        }),
        Err(_) => Err("stdin is not UTF-8 text"),
    };
    match verdict {
        Ok(key) => {
            let kind = match key.kind {
                KeyKind::Secret => "secret",
                KeyKind::Publishable => "publishable",
            };
            if json {
                print_json(&serde_json::json!({
                    "valid": true, "key_id": key.key_id.as_str(), "kind": kind, "env": key.env.as_str(),
                }));
            } else {
                say!("well-formed keymint key");
                say!("key_id: {}", key.key_id);
                say!("kind:   {kind}");
                say!("env:    {}", key.env.as_str());
            }
            ExitCode::SUCCESS
        }
        Err(reason) => {
            if json {
                print_json(&serde_json::json!({"valid": false, "reason": reason}));
            } else {
                eprintln!("keymint: {reason}");
            }
            ExitCode::from(1)
        }
    }
}
