//! Where a token is presented: only the `Authorization` header carries one.

use crate::harness::{Reply, api, assert_invalid_token, exchange};

#[test]
fn a_token_outside_the_authorization_header_does_not_authenticate() {
    let api = api();
    let token = api.good();
    let no_token = |reply: &Reply, what: &str| {
        assert_eq!(reply.status, 401, "{what}: {}", reply.raw);
        // No error code: no token was presented (RFC 6750 §3.1).
        assert_eq!(
            reply.header("www-authenticate"),
            Some("Bearer realm=\"api\""),
            "{what}"
        );
    };
    no_token(
        &api.request("GET", &format!("/orders?access_token={token}"), &[]),
        "access_token in the query string",
    );
    no_token(
        &api.request("GET", &format!("/orders?token={token}&bearer={token}"), &[]),
        "other query parameters",
    );
    no_token(
        &api.request(
            "GET",
            "/orders",
            &[("Cookie", &format!("access_token={token}"))],
        ),
        "a cookie",
    );
    no_token(
        &api.request("GET", "/orders", &[("X-Access-Token", &token)]),
        "a custom header",
    );
    no_token(
        &api.request(
            "GET",
            "/orders",
            &[("Authorization", &format!("Basic {token}"))],
        ),
        "another scheme",
    );
    no_token(
        &api.request("GET", "/orders", &[("Authorization", &token)]),
        "no scheme",
    );
    // A form body (RFC 6750 §2.2) is not read either.
    let body = format!("access_token={token}");
    let request = format!(
        "POST /orders HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        api.addr,
        body.len()
    );
    no_token(
        &exchange(api.addr, request.as_bytes()).unwrap(),
        "a form body",
    );
    // The same token in the header works, and a bad token in the header next to a good one in the
    // query string is refused as bad.
    api.assert_accepted(&token, "the header");
    let reply = api.request(
        "GET",
        &format!("/orders?access_token={token}"),
        &[("Authorization", "Bearer not.a.token")],
    );
    assert_invalid_token(&reply, "malformed", "bad header, good query");
}
