//! One conditional GET with a size cap, or one file read.

use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A fetched document.
#[derive(Debug)]
pub(crate) struct Fetched {
    /// The body; `None` for 304 Not Modified (or an unchanged file).
    pub(crate) body: Option<String>,
    /// The validator to send next time.
    pub(crate) etag: Option<String>,
    /// `Cache-Control: max-age`, if any.
    pub(crate) max_age: Option<Duration>,
}

/// Why a fetch failed. The good copy stays in force.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("HTTP {0}")]
    Status(u16),
    #[error("{0}")]
    Transport(String),
    #[error("larger than {0} bytes")]
    TooLarge(u64),
    #[error("not UTF-8")]
    NotText,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// An agent with a connect timeout and a read timeout; with `overall`, also a deadline for the
/// whole request including the body, so a source that trickles bytes cannot hold a thread.
pub(crate) fn agent(connect: Duration, read: Duration, overall: Option<Duration>) -> ureq::Agent {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map(|b| {
        b.with_root_certificates(rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        })
        .with_no_client_auth()
    });
    let mut builder = ureq::AgentBuilder::new()
        .timeout_connect(connect)
        .timeout_read(read)
        // Key material comes from the URL configured, never from wherever that URL points: a
        // redirect (which ureq would follow from https down to plain http) is an error.
        .redirects(0);
    if let Some(d) = overall {
        builder = builder.timeout(d);
    }
    // The library never installs a process-wide rustls provider: the agent gets ring explicitly.
    match tls {
        Ok(cfg) => builder.tls_config(Arc::new(cfg)).build(),
        Err(_) => builder.build(),
    }
}

fn max_age(cache_control: Option<&str>) -> Option<Duration> {
    cache_control?
        .split(',')
        .filter_map(|d| d.trim().strip_prefix("max-age="))
        .find_map(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

pub(crate) fn get_text(
    agent: &ureq::Agent,
    url: &str,
    etag: Option<&str>,
    limit: u64,
) -> Result<Fetched, FetchError> {
    let mut req = agent.get(url);
    if let Some(tag) = etag {
        req = req.set("If-None-Match", tag);
    }
    let res = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(code, _)) => return Err(FetchError::Status(code)),
        Err(e) => return Err(FetchError::Transport(e.to_string())),
    };
    let etag = res.header("etag").map(str::to_owned);
    let max_age = max_age(res.header("cache-control"));
    if res.status() == 304 {
        return Ok(Fetched {
            body: None,
            etag,
            max_age,
        });
    }
    if res.status() != 200 {
        return Err(FetchError::Status(res.status()));
    }
    // A body announced as too large is refused before a byte of it is read: otherwise a 100 MB
    // answer would cost `limit` bytes of memory and bandwidth on every poll.
    let announced = res
        .header("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit) {
        return Err(FetchError::TooLarge(limit));
    }
    let mut bytes = Vec::new();
    res.into_reader()
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| FetchError::Transport(e.to_string()))?;
    if bytes.len() as u64 > limit {
        return Err(FetchError::TooLarge(limit));
    }
    let body = String::from_utf8(bytes).map_err(|_| FetchError::NotText)?;
    Ok(Fetched {
        body: Some(body),
        etag,
        max_age,
    })
}

pub(crate) fn read_file(
    path: &Path,
    seen: &mut Option<SystemTime>,
    limit: u64,
) -> Result<Fetched, FetchError> {
    let modified = std::fs::metadata(path)?.modified()?;
    if *seen == Some(modified) {
        return Ok(Fetched {
            body: None,
            etag: None,
            max_age: None,
        });
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(FetchError::TooLarge(limit));
    }
    let text = String::from_utf8(bytes).map_err(|_| FetchError::NotText)?;
    *seen = Some(modified);
    Ok(Fetched {
        body: Some(text.trim_end().to_owned()),
        etag: None,
        max_age: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use std::net::TcpListener;

    /// Answers one request with `head`, then `body` written in a loop (if any) until the client
    /// hangs up or 5 s pass, holding the connection open either way; returns the URL and the
    /// number of body bytes the kernel accepted.
    fn one_answer(
        head: &'static str,
        body: Option<&'static [u8]>,
    ) -> (String, std::thread::JoinHandle<u64>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut request = [0u8; 4096];
            let _ = s.read(&mut request).unwrap();
            s.write_all(head.as_bytes()).unwrap();
            let until = std::time::Instant::now() + Duration::from_secs(5);
            let mut written = 0u64;
            while std::time::Instant::now() < until {
                match body {
                    Some(b) => match s.write(b) {
                        Ok(n) => written += n as u64,
                        Err(_) => break,
                    },
                    None => {
                        // Nothing more to send: wait for the client to hang up.
                        s.set_read_timeout(Some(Duration::from_millis(100)))
                            .unwrap();
                        if matches!(s.read(&mut request), Ok(0)) {
                            break;
                        }
                    }
                }
            }
            written
        });
        (url, server)
    }

    #[test]
    fn a_body_announced_larger_than_the_cap_is_refused_unread() {
        // Headers only: reading the body would wait for bytes that never come.
        let (url, server) =
            one_answer("HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\n\r\n", None);
        let agent = agent(
            Duration::from_secs(5),
            Duration::from_secs(5),
            Some(Duration::from_secs(5)),
        );
        let started = std::time::Instant::now();
        let r = get_text(&agent, &url, None, 1024 * 1024);
        assert!(matches!(r, Err(FetchError::TooLarge(_))), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        server.join().unwrap();
    }

    #[test]
    fn an_endless_body_is_cut_at_the_cap() {
        let (url, server) = one_answer(
            "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
            Some(&[b' '; 16 * 1024]),
        );
        let agent = agent(
            Duration::from_secs(5),
            Duration::from_secs(5),
            Some(Duration::from_secs(5)),
        );
        let r = get_text(&agent, &url, None, 1024 * 1024);
        assert!(matches!(r, Err(FetchError::TooLarge(_))), "{r:?}");
        // The server stops as soon as the client hangs up: what it wrote is the cap plus what
        // the two socket buffers held.
        let written = server.join().unwrap();
        assert!(written < 100 * 1024 * 1024, "{written} bytes");
    }

    /// Found in review: the fetcher followed redirects, and ureq follows https → http too, so a
    /// source configured as https could be served over plain http. No redirect is followed.
    #[test]
    fn a_redirect_is_an_error_not_followed() {
        let (target, _unused) = one_answer(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
            None,
        );
        let head: &'static str = Box::leak(
            format!("HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\n\r\n")
                .into_boxed_str(),
        );
        let (url, server) = one_answer(head, None);
        let agent = agent(
            Duration::from_secs(5),
            Duration::from_secs(5),
            Some(Duration::from_secs(5)),
        );
        let r = get_text(&agent, &url, None, 1024 * 1024);
        assert!(matches!(r, Err(FetchError::Status(302))), "{r:?}");
        server.join().unwrap();
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            max_age(Some("public, max-age=120")),
            Some(Duration::from_secs(120))
        );
        assert_eq!(max_age(Some("no-cache")), None);
        assert_eq!(max_age(None), None);
    }
}
