//! The browser demo in a real, headless Chromium (Debian's `chromium` and `chromium-driver`,
//! installed by `scripts/test` and `.ci/run`), driven over W3C WebDriver: the page on its allowed
//! origin gets a DPoP-bound token and calls the API; the same page on another origin is blocked; a
//! token lifted from the page is refused without its proof. A screenshot of the working page goes
//! to `target/tmp/browser-demo.png`.

// Test code: a failed step should stop the test loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use keymint_testkit::wait_until;
use serde_json::{Value, json};

fn tool(env: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.exists(),
        "{} is required for this test (scripts/test installs Debian's chromium and chromium-driver; or set {env})",
        path.display()
    );
    path
}

/// A chromedriver process and one headless Chromium session, spoken to over W3C WebDriver.
struct Browser {
    driver: Child,
    base: String,
    session: String,
}

impl Browser {
    fn start() -> Self {
        let chromium = tool("CHROMIUM", "/usr/bin/chromium");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(tool("CHROMEDRIVER", "/usr/bin/chromedriver"))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        wait_until("chromedriver to start", Duration::from_secs(20), || {
            ureq::get(&format!("{base}/status")).call().ok()
        });
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--window-size=1000,900"],
            },
        }}});
        let mut b = Self {
            driver,
            base,
            session: String::new(),
        };
        let created = b.post("/session", &caps);
        b.session = created["value"]["sessionId"].as_str().unwrap().to_owned();
        b
    }

    fn post(&self, path: &str, body: &Value) -> Value {
        let res = ureq::post(&format!("{}{path}", self.base))
            .set("Content-Type", "application/json")
            .send_string(&body.to_string());
        let text = match res {
            Ok(r) => r.into_string().unwrap(),
            Err(ureq::Error::Status(code, r)) => panic!(
                "WebDriver {path}: {code} {}",
                r.into_string().unwrap_or_default()
            ),
            Err(e) => panic!("WebDriver {path}: {e}"),
        };
        serde_json::from_str(&text).unwrap()
    }

    fn open(&self, url: &str) {
        self.post(
            &format!("/session/{}/url", self.session),
            &json!({"url": url}),
        );
    }

    fn text(&self, id: &str) -> String {
        let script =
            format!("const e = document.getElementById('{id}'); return e ? e.textContent : null;");
        let v = self.post(
            &format!("/session/{}/execute/sync", self.session),
            &json!({"script": script, "args": []}),
        );
        v["value"].as_str().unwrap_or_default().to_owned()
    }

    fn wait_done(&self) {
        wait_until("the page to finish", Duration::from_secs(30), || {
            (self.text("done") == "done").then_some(())
        });
    }

    fn screenshot(&self, path: &PathBuf) {
        let res = ureq::get(&format!(
            "{}/session/{}/screenshot",
            self.base, self.session
        ))
        .call()
        .unwrap();
        let v: Value = serde_json::from_str(&res.into_string().unwrap()).unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(v["value"].as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = ureq::delete(&format!("{}/session/{}", self.base, self.session)).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[test]
fn the_page_gets_a_bound_token_calls_the_api_and_a_lifted_token_is_useless() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let demo = rt.block_on(keymint_examples::demo::start(0)).unwrap();
    let browser = Browser::start();

    browser.open(&demo.page_url);
    browser.wait_done();
    assert!(
        browser
            .text("status-token")
            .starts_with("200: token_type DPoP"),
        "{}",
        browser.text("status-token")
    );
    assert_eq!(browser.text("status-api"), "200");
    assert!(browser.text("api-result").contains("acme"));
    assert!(browser.text("status-replay").starts_with("401"));
    assert!(
        browser
            .text("status-delegated-token")
            .starts_with("200: token_type DPoP")
    );
    assert_eq!(browser.text("status-delegated"), "200");
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-demo.png");
    browser.screenshot(&shot);
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "no screenshot"
    );
    println!("screenshot: {}", shot.display());

    // A token lifted from the page: useless without a proof from the page's key.
    let token = browser.text("token");
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
    browser.open(&demo.foreign_page_url);
    browser.wait_done();
    assert!(
        browser.text("status-token").contains("failed"),
        "{}",
        browser.text("status-token")
    );
    assert_eq!(browser.text("status-api"), "…");
    drop(browser);
    drop(demo);
}
