"""The shared conformance corpus (tests/fixtures/conformance/README.md), run case by case.

Until the corpus exists this FAILS (test_the_corpus_is_present): a missing corpus must never pass
as a green run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from keymint_verifier import AccessError, Jwks, UpdateError, Verifier, VerifyError

CORPUS = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "conformance"
CASES = sorted((CORPUS / "cases").glob("*.json")) if (CORPUS / "cases").is_dir() else []


def test_the_corpus_is_present() -> None:
    assert CASES, f"no conformance cases under {CORPUS / 'cases'}: the corpus must be generated and committed"


def _only(obj: dict[str, Any], allowed: set[str], where: str) -> None:
    # Unknown members are errors: a typo must not turn a case into a no-op.
    unknown = set(obj) - allowed
    assert not unknown, f"{where}: unknown members {sorted(unknown)}"


def _verifier(cfg: dict[str, Any], jwks: Jwks, clock: list[int]) -> Verifier:
    _only(cfg, {"issuer", "audiences", "leeway", "list_validity_cap", "max_token_bytes"}, "verifier")
    return Verifier(
        issuer=cfg["issuer"],
        audiences=cfg["audiences"],
        jwks=jwks,
        leeway=cfg.get("leeway", 60),
        list_validity_cap=cfg.get("list_validity_cap", 604800),
        max_token_bytes=cfg.get("max_token_bytes", 8192),
        now=lambda: clock[0],
    )


def _jwks(rel: str) -> Jwks:
    return Jwks.from_json((CORPUS / rel).read_bytes())


def run_case(case: dict[str, Any]) -> None:
    _only(case, {"description", "verifier", "jwks", "steps"}, "case")
    clock = [0]
    v = _verifier(case["verifier"], _jwks(case["jwks"]), clock)
    for i, step in enumerate(case["steps"]):
        where = f"step {i}"
        clock[0] = step["at"]
        if "jwks" in step:
            _only(step, {"at", "jwks"}, where)
            v.set_keys(_jwks(step["jwks"]))
        elif "list" in step:
            _only(step, {"at", "list", "expect"}, where)
            src = step["list"]
            _only(src, {"file", "jws"}, where + " list")
            text = (CORPUS / src["file"]).read_text().strip() if "file" in src else src["jws"]
            expect = step["expect"]
            try:
                v.update_revocations(text)
                got: Any = "installed"
            except UpdateError as e:
                got = {"refused": e.code}
            assert got == expect, f"{where}: expected {expect}, got {got}"
        elif "token" in step:
            _only(step, {"at", "token", "expect", "require", "dpop"}, where)
            expect = step["expect"]
            try:
                if "dpop" in step:
                    d = step["dpop"]
                    _only(d, {"proof", "method", "url"}, where + " dpop")
                    t = v.verify_dpop(step["token"], d["proof"], d["method"], d["url"])
                else:
                    t = v.verify(step["token"])
                if "require" in step:
                    r = step["require"]
                    _only(r, {"scopes", "tenant"}, where + " require")
                    t.require_scopes(r.get("scopes", []))
                    if "tenant" in r:
                        t.require_tenant(r["tenant"])
            except (VerifyError, AccessError) as e:
                assert expect == {"invalid": e.code}, f"{where}: expected {expect}, got invalid {e.code}"
                continue
            assert "valid" in expect, f"{where}: expected {expect}, got valid"
            _only(expect["valid"], {"sub", "tenant", "scope", "jti"}, where + " expect")
            c = t.claims
            actual = {"sub": c.sub, "tenant": c.tenant, "jti": c.jti, "scope": c.scope_text}
            for k, want in expect["valid"].items():
                if k == "scope":
                    assert set(want.split()) == c.scope, f"{where}: scope {c.scope_text!r} != {want!r}"
                else:
                    assert actual[k] == want, f"{where}: {k} {actual[k]!r} != {want!r}"
        else:
            raise AssertionError(f"{where}: a step is a jwks, a list or a token")


@pytest.mark.parametrize("path", CASES, ids=[p.name for p in CASES])
def test_case(path: Path) -> None:
    run_case(json.loads(path.read_text()))
