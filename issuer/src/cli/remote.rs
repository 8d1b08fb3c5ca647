//! Acting on a remote issuer through its admin API: `--issuer-url URL` with an admin key in
//! `KEYMINT_ADMIN_KEY` (never argv). The key is traded for a short admin token first, exactly as
//! any client would; the commands then print the API's JSON.

use std::time::Duration;

use zeroize::Zeroizing;

use super::CliError;

/// An admin session on a remote issuer.
pub(crate) struct Remote {
    base: String,
    token: Zeroizing<String>,
    agent: ureq::Agent,
}

impl Remote {
    /// Trades `KEYMINT_ADMIN_KEY` for an admin token at `base`.
    pub(crate) fn connect(base: &str) -> Result<Self, CliError> {
        let key = Zeroizing::new(std::env::var("KEYMINT_ADMIN_KEY").map_err(|_| {
            CliError::Usage(
                "--issuer-url (or KEYMINT_ISSUER_URL) acts on a remote issuer through its admin API: \
                 set KEYMINT_ADMIN_KEY to an admin key (made with `keymint admin-keys create`), or \
                 leave --issuer-url out to act on the local database"
                    .into(),
            )
        })?);
        let base = base.trim_end_matches('/').to_owned();
        refuse_plain_http(&base)?;
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(30))
            .build();
        let answer = agent
            .post(&format!("{base}/v1/token"))
            .set("Authorization", &format!("Bearer {}", key.as_str()))
            .call();
        let body = read(answer)?;
        let token = body
            .get("access_token")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| CliError::Remote {
                status: 0,
                detail: "the token endpoint answered without an access_token".into(),
            })?;
        Ok(Self {
            base,
            token: Zeroizing::new(token.to_owned()),
            agent,
        })
    }

    /// Calls `method path` with an optional JSON body; the JSON answer.
    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, CliError> {
        let req = self
            .agent
            .request(method, &format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {}", self.token.as_str()));
        read(match body {
            Some(b) => req
                .set("Content-Type", "application/json")
                .send_string(&b.to_string()),
            None => req.call(),
        })
    }
}

impl Remote {
    /// `GET path` and every page its `Link: <…>; rel="next"` names after it, the arrays joined.
    pub(crate) fn get_all_pages(&self, path: &str) -> Result<serde_json::Value, CliError> {
        let mut all = Vec::new();
        let mut asked = std::collections::HashSet::new();
        let mut next = Some(path.to_owned());
        while let Some(path) = next.take() {
            // An issuer that names a page it already gave would keep this loop going forever.
            if !asked.insert(path.clone()) {
                return Err(CliError::Remote {
                    status: 0,
                    detail: format!("the issuer named {path} as the next page twice"),
                });
            }
            let answer = self
                .agent
                .get(&format!("{}{path}", self.base))
                .set("Authorization", &format!("Bearer {}", self.token.as_str()))
                .call();
            next = answer
                .as_ref()
                .ok()
                .and_then(|r| r.header("link"))
                .and_then(next_link);
            match read(answer)? {
                serde_json::Value::Array(items) => all.extend(items),
                other => return Ok(other),
            }
        }
        Ok(serde_json::Value::Array(all))
    }
}

/// The path of the `rel="next"` link in a `Link` header (RFC 8288), if it names one on this
/// issuer (a path, never another host).
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|link| {
        let (target, params) = link.trim().split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let next = params
            .split(';')
            .any(|p| p.trim().eq_ignore_ascii_case("rel=\"next\""));
        (next && target.starts_with('/') && !target.starts_with("//")).then(|| target.to_owned())
    })
}

/// The JSON of a 2xx answer, or the error an RFC 9457 problem (or RFC 6749 error) describes.
fn read(answer: Result<ureq::Response, ureq::Error>) -> Result<serde_json::Value, CliError> {
    match answer {
        Ok(res) => res
            .into_string()
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .ok_or_else(|| CliError::Remote {
                status: 0,
                detail: "the issuer's answer is not JSON".into(),
            }),
        Err(ureq::Error::Status(status, res)) => {
            let body: serde_json::Value = res
                .into_string()
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
            let field = |name: &str| body.get(name).and_then(serde_json::Value::as_str);
            let detail = field("detail")
                .or_else(|| field("error_description"))
                .unwrap_or("no detail")
                .to_owned();
            Err(CliError::Remote { status, detail })
        }
        Err(e) => Err(CliError::Remote {
            status: 0,
            detail: format!("cannot reach the issuer: {e}"),
        }),
    }
}

/// Percent-encodes one path segment or query value.
pub(crate) fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A key (an admin key here, an API key for `keymint token`) travels only over HTTPS, or over
/// plain HTTP to this machine (loopback), as `serve` itself refuses plain HTTP elsewhere.
pub(crate) fn refuse_plain_http(base: &str) -> Result<(), CliError> {
    let url = url::Url::parse(base)
        .map_err(|e| CliError::Usage(format!("--issuer-url {base:?} is not a URL: {e}")))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        other => Err(CliError::Usage(format!(
            "--issuer-url {base:?}: keys are only sent over https (or plain http to \
             127.0.0.1, ::1 or localhost), not over {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::{next_link, refuse_plain_http};

    #[test]
    fn the_next_link_is_a_path_on_the_same_issuer() {
        assert_eq!(
            next_link("</v1/admin/keys?limit=2&after=1.abc>; rel=\"next\"").as_deref(),
            Some("/v1/admin/keys?limit=2&after=1.abc")
        );
        assert_eq!(
            next_link("</a>; rel=\"prev\", </b>; rel=\"next\"").as_deref(),
            Some("/b")
        );
        // Never another host, and nothing without rel="next".
        assert_eq!(next_link("<https://evil.example/x>; rel=\"next\""), None);
        assert_eq!(next_link("<//evil.example/x>; rel=\"next\""), None);
        assert_eq!(next_link("</x>"), None);
    }

    #[test]
    fn the_admin_key_goes_only_over_https_or_to_loopback() {
        for ok in [
            "https://issuer.example",
            "https://10.0.0.5:8443",
            "http://127.0.0.1:8080",
            "http://[::1]:8080",
            "http://localhost:8080",
        ] {
            assert!(refuse_plain_http(ok).is_ok(), "{ok}");
        }
        for refused in [
            "http://issuer.example",
            "http://10.0.0.5:8080",
            "http://127.0.0.1.example.com",
            "ftp://127.0.0.1",
            "issuer.example",
        ] {
            assert!(refuse_plain_http(refused).is_err(), "{refused}");
        }
    }
}
