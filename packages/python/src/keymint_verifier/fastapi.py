"""FastAPI / Starlette glue (extra ``fastapi`` or ``starlette``): a dependency that verifies the
request's token and answers failures exactly as the Rust tower layer (verifier-lib/src/layer.rs):

- no token → 401, ``WWW-Authenticate: Bearer realm="api"`` without an error code (RFC 6750 §3.1);
- a token refused → 401, ``Bearer realm="api", error="invalid_token", error_description="<code>"``
  (under ``DPoP`` for a DPoP request: ``error="invalid_dpop_proof"`` / ``"use_dpop_nonce"`` with a
  ``DPoP-Nonce`` header / ``"invalid_token"``);
- a genuine token without a required scope → 403 ``error="insufficient_scope"`` and the ``scope``
  needed; another tenant → 403 as well (the Rust layer has no tenant requirement; see the docs);
- a key over its share of the DPoP replay cache → 429 with ``Retry-After``;
- sources too stale to vouch for anything → 503 with ``Retry-After: 5``.

Bodies are small JSON; the token is never logged or echoed. Only the ``Authorization`` header is
read: tokens in query strings end up in logs.

    auth = KeymintAuth(verifier)

    @app.get("/orders")
    def orders(token: VerifiedToken = Depends(auth.require(scopes=["orders:read"]))): ...
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from starlette.requests import Request
from starlette.responses import JSONResponse

from .errors import AccessError, DpopProofQuota, InvalidDpopProof, UseDpopNonce, VerifyError
from .verified_token import VerifiedToken
from .verifier import Verifier


class AuthRejection(Exception):
    """Carries the response; install ``auth.install(app)`` (or add ``rejection_handler`` as the
    exception handler for ``AuthRejection``) so that it is sent as is."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
        super().__init__(f"HTTP {status}")
        self.status, self.body, self.headers = status, body, headers

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status, headers=self.headers)


async def rejection_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AuthRejection)
    return exc.response()


def missing() -> AuthRejection:
    return AuthRejection(
        401,
        {"error": "unauthorized", "error_description": "a bearer token is required"},
        {"WWW-Authenticate": 'Bearer realm="api"'},
    )


def invalid(e: VerifyError) -> AuthRejection:
    if e.unavailable:
        return AuthRejection(503, {"error": "temporarily_unavailable", "error_description": e.code}, {"Retry-After": "5"})
    return AuthRejection(
        401,
        {"error": "invalid_token", "error_description": e.code},
        {"WWW-Authenticate": f'Bearer realm="api", error="invalid_token", error_description="{e.code}"'},
    )


def invalid_dpop(e: VerifyError) -> AuthRejection:
    if e.unavailable:
        return invalid(e)
    if isinstance(e, DpopProofQuota):
        return AuthRejection(
            429,
            {"error": "too_many_requests", "error_description": "dpop_proof_quota"},
            {"Retry-After": str(e.retry_after_secs)},
        )
    code = "invalid_dpop_proof" if isinstance(e, InvalidDpopProof) else "use_dpop_nonce" if isinstance(e, UseDpopNonce) else "invalid_token"
    headers = {"WWW-Authenticate": f'DPoP realm="api", error="{code}", algs="EdDSA ES256"'}
    if isinstance(e, UseDpopNonce):
        headers["DPoP-Nonce"] = e.nonce
    return AuthRejection(401, {"error": code, "error_description": e.code}, headers)


def forbidden(e: AccessError, needed: list[str]) -> AuthRejection:
    scope = " ".join(needed)
    challenge = 'Bearer realm="api", error="insufficient_scope"' + (f', scope="{scope}"' if scope else "")
    body: dict[str, Any] = {"error": "insufficient_scope", "scope": scope}
    if e.code != "insufficient_scope":
        body["error_description"] = e.code
    return AuthRejection(403, body, {"WWW-Authenticate": challenge})


def server_error(description: str | None = None) -> AuthRejection:
    body = {"error": "server_error"}
    if description:
        body["error_description"] = description
    return AuthRejection(500, body, {})


class KeymintAuth:
    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier

    def install(self, app: Any) -> None:
        """Registers the handler that turns an ``AuthRejection`` into its response."""
        app.add_exception_handler(AuthRejection, rejection_handler)

    def authenticate(self, request: Request) -> VerifiedToken:
        value = request.headers.get("authorization")
        if value is None or " " not in value:
            raise missing()
        scheme, token = value.split(" ", 1)
        token = token.strip()
        v = self.verifier
        if scheme.lower() == "bearer":
            try:
                return v.verify(token)
            except VerifyError as e:
                raise invalid(e) from None
        if scheme.lower() != "dpop":
            raise missing()
        proof = request.headers.get("dpop")
        if proof is None:
            raise invalid_dpop(InvalidDpopProof("no DPoP header"))
        if v.dpop_base_url is None:
            # The Host header is the client's to choose: it never stands in for the base URL.
            raise server_error("dpop_base_url_missing")
        url = v.dpop_base_url + request.url.path
        try:
            return v.verify_dpop(token, proof, request.method, url)
        except VerifyError as e:
            raise invalid_dpop(e) from None

    def require(self, scopes: Iterable[str] = (), tenant: str | None = None) -> Callable[[Request], VerifiedToken]:
        """A dependency: the verified token, after the route's access policy."""
        needed = list(scopes)

        def dependency(request: Request) -> VerifiedToken:
            token = self.authenticate(request)
            try:
                token.require_scopes(needed)
                if tenant is not None:
                    token.require_tenant(tenant)
            except AccessError as e:
                raise forbidden(e, needed) from None
            return token

        return dependency

    def __call__(self, request: Request) -> VerifiedToken:
        return self.authenticate(request)
