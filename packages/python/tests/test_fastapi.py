"""The FastAPI dependency answers exactly like the Rust tower layer (RFC 6750 §3.1)."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from keymint_verifier import VerifiedToken, Verifier
from keymint_verifier.dpop_key import DpopKey
from keymint_verifier.fastapi import KeymintAuth
from support import AUD, ISS, NOW, Signer, jwks_of


def app_for(v: Verifier) -> TestClient:
    auth = KeymintAuth(v)
    app = FastAPI()
    auth.install(app)

    @app.get("/orders")
    def orders(token: VerifiedToken = Depends(auth.require(scopes=["orders:read"]))) -> dict[str, Any]:
        return {"tenant": token.claims.tenant}

    @app.get("/admin")
    def admin(token: VerifiedToken = Depends(auth.require(scopes=["admin"]))) -> dict[str, Any]:
        return {}

    @app.get("/other-tenant")
    def other(token: VerifiedToken = Depends(auth.require(tenant="globex"))) -> dict[str, Any]:
        return {}

    return TestClient(app)


def setup(**kw: Any) -> tuple[TestClient, Signer, Verifier]:
    s = Signer.ed25519()
    v = Verifier(issuer=ISS, audiences=[AUD], jwks=jwks_of(s), now=lambda: NOW, **kw)
    v.update_revocations(s.list(1))
    return app_for(v), s, v


def test_ok_and_no_token() -> None:
    c, s, _ = setup()
    r = c.get("/orders", headers={"Authorization": f"Bearer {s.token()}"})
    assert r.status_code == 200 and r.json() == {"tenant": "acme"}
    r = c.get("/orders")
    assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer realm="api"'
    assert "error=" not in r.headers["www-authenticate"]
    assert c.get("/orders", headers={"Authorization": "Basic abc"}).status_code == 401


def test_a_refused_token_is_invalid_token() -> None:
    c, s, _ = setup()
    t = s.token(exp=NOW - 100)
    r = c.get("/orders", headers={"Authorization": f"Bearer {t}"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="api", error="invalid_token", error_description="expired"'
    assert t not in r.text


def test_missing_scope_is_403_insufficient_scope() -> None:
    c, s, _ = setup()
    r = c.get("/admin", headers={"Authorization": f"Bearer {s.token()}"})
    assert r.status_code == 403
    assert r.headers["www-authenticate"] == 'Bearer realm="api", error="insufficient_scope", scope="admin"'
    assert r.json() == {"error": "insufficient_scope", "scope": "admin"}
    r = c.get("/other-tenant", headers={"Authorization": f"Bearer {s.token()}"})
    assert r.status_code == 403 and r.json()["error_description"] == "wrong_tenant"


def test_stale_sources_are_503() -> None:
    s = Signer.ed25519()
    v = Verifier(issuer=ISS, audiences=[AUD], jwks=jwks_of(s), now=lambda: NOW)
    r = app_for(v).get("/orders", headers={"Authorization": f"Bearer {s.token()}"})
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    assert r.json() == {"error": "temporarily_unavailable", "error_description": "no_revocation_list"}
    assert "www-authenticate" not in r.headers


def test_dpop_requests() -> None:
    c, s, _ = setup(dpop_base_url="https://api.example", dpop_replay_capacity=100)
    k = DpopKey.generate()
    t = s.token(cnf={"jkt": k.jkt})
    url = "https://api.example/orders"
    ok = c.get("/orders", headers={"Authorization": f"DPoP {t}", "DPoP": k.proof("GET", url, NOW, access_token=t)})
    assert ok.status_code == 200
    r = c.get("/orders", headers={"Authorization": f"DPoP {t}", "DPoP": k.proof("POST", url, NOW, access_token=t)})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'DPoP realm="api", error="invalid_dpop_proof", algs="EdDSA ES256"'
    # A second live proof for the same key is over its 1 % share of a 100-proof cache.
    r = c.get("/orders", headers={"Authorization": f"DPoP {t}", "DPoP": k.proof("GET", url, NOW, access_token=t)})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    r = c.get("/orders", headers={"Authorization": f"Bearer {t}"})
    assert r.status_code == 401 and 'error_description="dpop_bound"' in r.headers["www-authenticate"]


def test_dpop_without_a_base_url_is_a_server_error() -> None:
    c, s, _ = setup()
    k = DpopKey.generate()
    t = s.token(cnf={"jkt": k.jkt})
    r = c.get("/orders", headers={"Authorization": f"DPoP {t}", "DPoP": k.proof("GET", "http://testserver/orders", NOW, access_token=t)})
    assert r.status_code == 500 and r.json()["error_description"] == "dpop_base_url_missing"
