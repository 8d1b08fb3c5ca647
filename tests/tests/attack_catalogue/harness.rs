//! The server and a minimal HTTP/1.1 client.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use keymint_jwks::*;
use keymint_verifier::clock::FixedClock;
use keymint_verifier::{Verifier, VerifierBuilder};

use crate::common::{AUD, ISS, NOW, claims, empty_list};

/// A running api-server and what the tests need to attack it.
pub(crate) struct Api {
    pub(crate) addr: SocketAddr,
    pub(crate) verifier: Verifier,
    /// The Ed25519 signing key of the key set (it also signs the revocation list).
    pub(crate) ed: Signer,
    /// The P-256 signing key of the key set.
    pub(crate) es: Signer,
}

/// One HTTP answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
    pub(crate) raw: String,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub(crate) fn api() -> Api {
    api_with(|b| b)
}

/// Serves the api-server router on 127.0.0.1:0, with a verifier built from the published form of
/// the key set (JSON, parsed like any API server would) and the `tweak`s a test needs.
pub(crate) fn api_with(tweak: impl FnOnce(VerifierBuilder) -> VerifierBuilder) -> Api {
    let ed = Signer::new(SigningKey::generate(Algorithm::EdDsa).unwrap());
    let es = Signer::new(SigningKey::generate(Algorithm::Es256).unwrap());
    let published = Jwks::new(vec![ed.key().public_jwk(), es.key().public_jwk()])
        .unwrap()
        .to_json();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let builder = Verifier::builder(Issuer::new(ISS).unwrap(), Audience::new(AUD).unwrap())
        .dpop_base_url(format!("http://{addr}"))
        .jwks(Jwks::from_json(published.as_bytes()).unwrap())
        .clock(Arc::new(FixedClock(NOW)))
        .revocation_list(empty_list(&ed, 1).jws());
    let verifier = tweak(builder).build().unwrap();
    let app = api_server::router(&verifier);
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    let api = Api {
        addr,
        verifier,
        ed,
        es,
    };
    // The control: both keys' genuine tokens are accepted, so every refusal below is the
    // attack's doing.
    api.assert_accepted(&api.good(), "control token (Ed25519)");
    api.assert_accepted(
        &api.es.sign_access_token(&claims()).unwrap(),
        "control token (ES256)",
    );
    api
}

/// Sends `request` as is and reads the whole answer (`Connection: close`).
pub(crate) fn exchange(addr: SocketAddr, request: &[u8]) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.set_write_timeout(Some(Duration::from_secs(20)))?;
    stream.write_all(request)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let head = raw.split("\r\n\r\n").next().unwrap_or_default();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no HTTP status line in {raw:?}")))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(Reply {
        status,
        headers,
        raw,
    })
}

impl Api {
    pub(crate) fn request(&self, method: &str, target: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: 0\r\n",
            self.addr
        );
        for (name, value) in headers {
            req.push_str(&format!("{name}: {value}\r\n"));
        }
        req.push_str("\r\n");
        exchange(self.addr, req.as_bytes()).unwrap()
    }

    pub(crate) fn bearer(&self, token: &str) -> Reply {
        self.request(
            "GET",
            "/orders",
            &[("Authorization", &format!("Bearer {token}"))],
        )
    }

    pub(crate) fn dpop(&self, method: &str, token: &str, proof: &str) -> Reply {
        self.request(
            method,
            "/orders",
            &[("Authorization", &format!("DPoP {token}")), ("DPoP", proof)],
        )
    }

    /// The URL a DPoP proof for `/orders` on this server names (`htu`).
    pub(crate) fn orders_url(&self) -> String {
        format!("http://{}/orders", self.addr)
    }

    /// A genuine Ed25519 token with the standard claims.
    pub(crate) fn good(&self) -> String {
        self.ed.sign_access_token(&claims()).unwrap()
    }

    #[track_caller]
    pub(crate) fn assert_accepted(&self, token: &str, what: &str) {
        let reply = self.bearer(token);
        assert_eq!(reply.status, 200, "{what}: {}", reply.raw);
        assert!(
            reply.raw.contains("\"tenant\":\"acme\""),
            "{what}: {}",
            reply.raw
        );
    }

    /// `token` as a bearer token is refused with 401 `invalid_token` for the reason `code`, and the
    /// answer never echoes it.
    #[track_caller]
    pub(crate) fn assert_refused(&self, token: &str, code: &str, what: &str) {
        let reply = self.bearer(token);
        assert_invalid_token(&reply, code, what);
        if token.len() > 16 {
            assert!(
                !reply.raw.contains(token),
                "{what}: the answer echoes the token"
            );
        }
    }
}

#[track_caller]
pub(crate) fn assert_invalid_token(reply: &Reply, code: &str, what: &str) {
    assert_eq!(reply.status, 401, "{what}: {}", reply.raw);
    assert_eq!(
        reply.header("www-authenticate"),
        Some(
            format!("Bearer realm=\"api\", error=\"invalid_token\", error_description=\"{code}\"")
                .as_str()
        ),
        "{what}"
    );
}

#[track_caller]
pub(crate) fn assert_invalid_dpop_proof(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 401, "{what}: {}", reply.raw);
    let challenge = reply.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("DPoP realm=\"api\", error=\"invalid_dpop_proof\""),
        "{what}: {challenge}"
    );
}
