//! Getting a token request apart: credentials and body. Keys are accepted only in headers (or, for
//! OAuth2, the form body), never in the query string. Who is calling is
//! [`client_address`](super::client_address)'s business.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use base64::Engine as _;
use ipnet::IpNet;
use serde::Deserialize;
use zeroize::Zeroizing;

use keymint_jwks::UnixTime;

use super::AppState;
use super::client_address::{arrived_in_clear, client_of};
use super::error::{HttpError, Scheme};
use crate::domain::ClientFailure;
use crate::domain::DomainError;
use crate::domain::client::ClientContext;
use crate::domain::refusal::RequestRefusal;
use crate::domain::token::TokenRequest;
use crate::store::Store;

/// A parsed token request: the presented key, what was asked, and who asked.
pub(crate) struct TokenCall {
    /// The presented key. Zeroized when dropped.
    pub(crate) credential: Zeroizing<String>,
    /// The request.
    pub(crate) request: TokenRequest,
    /// The client.
    pub(crate) client: ClientContext,
}

fn over_tls(req: &Request, trusted: &[IpNet], scheme: Scheme) -> Result<(), HttpError> {
    if arrived_in_clear(req.headers(), req.extensions(), trusted) {
        return Err(HttpError::invalid_request(scheme, RequestRefusal::InClear));
    }
    Ok(())
}

fn client(req: &Request, trusted: &[IpNet]) -> ClientContext {
    client_of(req.headers(), req.extensions(), trusted)
}

fn no_query(req: &Request, scheme: Scheme) -> Result<(), HttpError> {
    // Query strings end up in access logs, proxies and browser history: a key there is a leaked
    // key. The token endpoints take no query parameters at all.
    if req.uri().query().is_some() {
        return Err(HttpError::invalid_request(
            scheme,
            RequestRefusal::QueryParameters,
        ));
    }
    Ok(())
}

async fn body(req: Request, scheme: Scheme) -> Result<Bytes, HttpError> {
    Bytes::from_request(req, &()).await.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            HttpError::PayloadTooLarge
        } else {
            HttpError::invalid_request(scheme, RequestRefusal::UnreadableBody)
        }
    })
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
}

/// `POST /v1/token` body (all optional).
#[derive(Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct V1Body {
    scope: Option<String>,
    audience: Option<String>,
    ttl: Option<u64>,
    /// The base64url SHA-256 JWK thumbprint (RFC 7638) of the DPoP key to bind the token to.
    #[schema(pattern = "^[A-Za-z0-9_-]{43}$")]
    dpop_jkt: Option<String>,
}

/// `POST /v1/token`: `Authorization: Bearer <key>` or `X-API-Key`, optional JSON body.
pub(crate) struct V1Call(pub(crate) TokenCall);

fn dpop_header(headers: &HeaderMap) -> Option<String> {
    headers
        .get("dpop")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

impl<S: Store> FromRequest<AppState<S>> for V1Call {
    type Rejection = HttpError;

    async fn from_request(req: Request, st: &AppState<S>) -> Result<Self, HttpError> {
        let client = client(&req, &st.trusted_proxies);
        audited(
            st,
            "token.request",
            Scheme::Bearer,
            client,
            parse_v1(req, &st.trusted_proxies),
        )
        .await
        .map(Self)
    }
}

/// Runs `parse`; a refusal is audited with the client's address and counted against the client
/// like a wrong key, and a client that is now blocked gets 429 instead.
async fn audited<S: Store>(
    st: &AppState<S>,
    action: &str,
    scheme: Scheme,
    client: ClientContext,
    parse: impl std::future::Future<Output = Result<(Zeroizing<String>, TokenRequest), HttpError>>,
) -> Result<TokenCall, HttpError> {
    match parse.await {
        Ok((credential, request)) => Ok(TokenCall {
            credential,
            request,
            client,
        }),
        Err(e) => Err(
            match st.tokens.refuse_request(
                action,
                &client,
                &e.reason(),
                &e.reason(),
                UnixTime::now(),
            ) {
                Some(retry_after) => {
                    HttpError::Domain(DomainError::RateLimited { retry_after }, scheme)
                }
                None => e,
            },
        ),
    }
}

/// The credential and the request, or why not.
async fn parse_v1(
    req: Request,
    trusted: &[IpNet],
) -> Result<(Zeroizing<String>, TokenRequest), HttpError> {
    {
        let scheme = Scheme::Bearer;
        no_query(&req, scheme)?;
        over_tls(&req, trusted, scheme)?;
        let path = req.uri().path().to_owned();
        // Take what is needed from the headers before the body consumes the request (no copy of
        // the whole header map on the token path).
        let headers = req.headers();
        let content_type = content_type(headers);
        let dpop_proof = dpop_header(headers);
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let x_api_key = headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
        let credential = match (bearer, x_api_key) {
            (Some(k), None) | (None, Some(k)) => Zeroizing::new(k.to_owned()),
            (Some(_), Some(_)) => {
                return Err(HttpError::invalid_request(scheme, RequestRefusal::KeyTwice));
            }
            (None, None) => {
                return Err(HttpError::bearer(DomainError::InvalidClient {
                    reason: ClientFailure::NoCredentials,
                }));
            }
        };
        let bytes = body(req, scheme).await?;
        let parsed: V1Body = if bytes.iter().all(u8::is_ascii_whitespace) {
            V1Body::default()
        } else {
            if content_type.as_deref() != Some("application/json") {
                return Err(HttpError::invalid_request(scheme, RequestRefusal::NotJson));
            }
            // `null` is no body, as the document's optional body allows.
            serde_json::from_slice::<Option<V1Body>>(&bytes)
                .map_err(|_| HttpError::invalid_request(scheme, RequestRefusal::JsonShape))?
                .unwrap_or_default()
        };
        Ok((
            credential,
            TokenRequest::parse(
                parsed.scope.as_deref(),
                parsed.audience.as_deref(),
                parsed.ttl,
                parsed.dpop_jkt.as_deref(),
                dpop_proof,
                path,
            ),
        ))
    }
}

/// `POST /oauth2/token` form (for the OpenAPI document; the extractor below reads it by hand so
/// that repeated parameters are refused, RFC 6749 §3.2).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct OAuth2Form {
    /// Must be `client_credentials`.
    #[schema(pattern = "^client_credentials$")]
    grant_type: String,
    /// The key ID (or use HTTP Basic).
    client_id: Option<String>,
    /// The whole API key (or use HTTP Basic).
    client_secret: Option<String>,
    /// Space-separated scopes, a subset of the key's.
    scope: Option<String>,
    /// One of the key's audiences.
    audience: Option<String>,
    /// The same as `audience` (RFC 8707); send one of them.
    resource: Option<String>,
    /// Bind the token to this DPoP key thumbprint (base64url SHA-256, RFC 7638).
    #[schema(pattern = "^[A-Za-z0-9_-]{43}$")]
    dpop_jkt: Option<String>,
}

/// `POST /oauth2/token`: RFC 6749 client credentials grant with `client_secret_basic` or
/// `client_secret_post`.
pub(crate) struct OAuth2Call(pub(crate) TokenCall);

fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

impl<S: Store> FromRequest<AppState<S>> for OAuth2Call {
    type Rejection = HttpError;

    async fn from_request(req: Request, st: &AppState<S>) -> Result<Self, HttpError> {
        let client = client(&req, &st.trusted_proxies);
        audited(
            st,
            "token.request",
            Scheme::Basic,
            client,
            parse_oauth2(req, &st.trusted_proxies),
        )
        .await
        .map(Self)
    }
}

/// The credential and the request, or why not.
async fn parse_oauth2(
    req: Request,
    trusted: &[IpNet],
) -> Result<(Zeroizing<String>, TokenRequest), HttpError> {
    {
        let scheme = Scheme::Basic;
        no_query(&req, scheme)?;
        over_tls(&req, trusted, scheme)?;
        let path = req.uri().path().to_owned();
        let content_type = content_type(req.headers());
        let dpop_proof = dpop_header(req.headers());
        let basic_header = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(|v| Zeroizing::new(v.to_owned()));
        let bytes = body(req, scheme).await?;
        if content_type.as_deref() != Some("application/x-www-form-urlencoded") {
            return Err(HttpError::invalid_request(scheme, RequestRefusal::NotForm));
        }
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|_| HttpError::invalid_request(scheme, RequestRefusal::MalformedForm))?;
        let mut form = std::collections::HashMap::new();
        for (k, v) in pairs {
            // RFC 6749 §3.2: parameters must not be repeated.
            if form.insert(k.clone(), Zeroizing::new(v)).is_some() {
                return Err(HttpError::invalid_request(
                    scheme,
                    RequestRefusal::repeated(&k),
                ));
            }
        }
        match form.get("grant_type").map(|v| v.as_str()) {
            Some("client_credentials") => {}
            Some(_) => return Err(HttpError::UnsupportedGrantType),
            None => {
                return Err(HttpError::invalid_request(
                    scheme,
                    RequestRefusal::NoGrantType,
                ));
            }
        }
        let basic = basic_header.as_deref().and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        });
        let (client_id, secret) = match (basic, form.get("client_secret")) {
            (Some(_), Some(_)) => {
                return Err(HttpError::invalid_request(
                    scheme,
                    RequestRefusal::TwoAuthMethods,
                ));
            }
            (Some(b64), None) => {
                let decoded = Zeroizing::new(
                    base64::engine::general_purpose::STANDARD
                        .decode(b64.trim())
                        .map_err(|_| {
                            HttpError::basic(DomainError::InvalidClient {
                                reason: ClientFailure::MalformedBasic,
                            })
                        })?,
                );
                let text = std::str::from_utf8(&decoded).map_err(|_| {
                    HttpError::basic(DomainError::InvalidClient {
                        reason: ClientFailure::MalformedBasic,
                    })
                })?;
                let (id, secret) = text.split_once(':').ok_or_else(|| {
                    HttpError::basic(DomainError::InvalidClient {
                        reason: ClientFailure::MalformedBasic,
                    })
                })?;
                (
                    percent_decode(id).unwrap_or_default(),
                    Zeroizing::new(percent_decode(secret).unwrap_or_default()),
                )
            }
            (None, Some(secret)) => (
                form.get("client_id")
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
                Zeroizing::new(secret.to_string()),
            ),
            (None, None) => {
                return Err(HttpError::basic(DomainError::InvalidClient {
                    reason: ClientFailure::NoCredentials,
                }));
            }
        };
        // client_id is the key ID; it must be the one inside the presented key. A key that does
        // not parse goes on to the exchange, which refuses it as malformed (and counts it).
        let inside = crate::domain::keys::api_key::parse(&secret).map(|k| k.key_id.to_string());
        if client_id.is_empty() || inside.is_ok_and(|id| id != client_id) {
            return Err(HttpError::basic(DomainError::InvalidClient {
                reason: ClientFailure::ClientIdMismatch,
            }));
        }
        let audience = match (form.get("audience"), form.get("resource")) {
            (Some(_), Some(_)) => {
                return Err(HttpError::invalid_request(
                    scheme,
                    RequestRefusal::AudienceAndResource,
                ));
            }
            (Some(a), None) | (None, Some(a)) => Some(a),
            (None, None) => None,
        };
        Ok((
            secret,
            TokenRequest::parse(
                form.get("scope").map(|v| v.as_str()),
                audience.map(|v| v.as_str()),
                None,
                form.get("dpop_jkt").map(|v| v.as_str()),
                dpop_proof,
                path,
            ),
        ))
    }
}
