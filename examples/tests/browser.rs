//! The browser demo in a real, headless Chromium (Debian's `chromium`, installed by `scripts/test`
//! and `.ci/run`): the page on its allowed origin gets a DPoP-bound token and calls the API; the
//! same page on another origin is blocked; a token lifted from the page is refused without its
//! proof. A screenshot of the working page goes to `target/tmp/browser-demo.png`.

// Test code: a failed step should stop the test loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::process::Command;

fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.exists(),
        "Chromium is required for this test (scripts/test installs Debian's chromium; or set CHROMIUM=/path)"
    );
    path
}

/// Loads `url` in headless Chromium and returns the DOM after the page's scripts ran, or writes a
/// screenshot.
fn run_chromium(url: &str, screenshot: Option<&PathBuf>) -> String {
    let profile = std::env::temp_dir().join(format!(
        "keymint-chromium-{}-{}",
        std::process::id(),
        url.len()
    ));
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--virtual-time-budget=15000",
        "--window-size=1000,900",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    match screenshot {
        Some(path) => cmd.arg(format!("--screenshot={}", path.display())),
        None => cmd.arg("--dump-dom"),
    };
    let out = cmd.arg(url).output().unwrap();
    let _ = std::fs::remove_dir_all(profile);
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text of the element with `id` in a dumped DOM.
fn text_of(dom: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\"");
    let start = dom
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let rest = &dom[start..];
    let open_end = rest.find('>').unwrap() + 1;
    let close = rest[open_end..].find('<').unwrap();
    rest[open_end..open_end + close].to_owned()
}

#[test]
fn the_page_gets_a_bound_token_calls_the_api_and_a_lifted_token_is_useless() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let demo = rt.block_on(keymint_examples::demo::start(0)).unwrap();
    let dom = {
        let url = demo.page_url.clone();
        std::thread::spawn(move || run_chromium(&url, None))
            .join()
            .unwrap()
    };
    assert_eq!(text_of(&dom, "done"), "done", "the page did not finish");
    assert!(
        text_of(&dom, "status-token").starts_with("200: token_type DPoP"),
        "{dom}"
    );
    assert_eq!(text_of(&dom, "status-api"), "200");
    assert!(text_of(&dom, "api-result").contains("acme"));
    assert!(text_of(&dom, "status-replay").starts_with("401"));
    assert!(text_of(&dom, "status-delegated-token").starts_with("200: token_type DPoP"));
    assert_eq!(text_of(&dom, "status-delegated"), "200");

    // A token lifted from the page: useless without a proof from the page's key.
    let token = text_of(&dom, "token");
    assert_eq!(token.split('.').count(), 3);
    let call = |auth: String| match ureq::get(&format!("{}/orders", demo.api_url))
        .set("Authorization", &auth)
        .call()
    {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(call(format!("Bearer {token}")), 401);
    assert_eq!(call(format!("DPoP {token}")), 401);

    // The same page from an origin no key allows: the token request is blocked.
    let foreign = {
        let url = demo.foreign_page_url.clone();
        std::thread::spawn(move || run_chromium(&url, None))
            .join()
            .unwrap()
    };
    assert!(
        text_of(&foreign, "status-token").contains("failed"),
        "{foreign}"
    );
    assert_eq!(text_of(&foreign, "status-api"), "…");

    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-demo.png");
    let url = demo.page_url.clone();
    let path = shot.clone();
    std::thread::spawn(move || run_chromium(&url, Some(&path)))
        .join()
        .unwrap();
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "no screenshot"
    );
    println!("screenshot: {}", shot.display());
    drop(demo);
}
