//! The demo backend's delegation endpoint spends the customer's secret key, so it serves only the
//! page's own signed-in user (issue #13: it used to mint for any caller).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

fn post_delegate(url: &str, cookie: Option<&str>) -> (u16, String) {
    let mut req = ureq::post(&format!("{url}delegate")).set("Content-Type", "application/json");
    if let Some(c) = cookie {
        req = req.set("Cookie", c);
    }
    match req.send_string(r#"{"jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}"#) {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn delegation_needs_the_pages_session_and_mints_with_it() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let demo = rt.block_on(keymint_examples::demo::start(0)).unwrap();
    let (status, body) = post_delegate(&demo.page_url, None);
    assert_eq!(status, 401, "{body}");
    let (status, _) = post_delegate(&demo.page_url, Some("demo_session=guessed"));
    assert_eq!(status, 401);
    // Loading the page (the demo's sign-in) gives the session cookie.
    let page = ureq::get(&demo.page_url).call().unwrap();
    let cookie = page
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let (status, body) = post_delegate(&demo.page_url, Some(&cookie));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"token_type\":\"DPoP\""), "{body}");
}
