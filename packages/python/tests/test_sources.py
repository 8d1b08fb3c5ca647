"""Live sources against a local HTTP server: ETag, cache period, unknown-kid cooldown, a refused
list fetched again (its ETag does not advance), stale-if-error up to max_stale."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from keymint_verifier import Verifier, VerifyError
from keymint_verifier.errors import BuildError
from keymint_verifier.sources import LiveConfig, LiveSources
from support import AUD, ISS, Signer, default_claims, entry, jwks_json


class Origin:
    def __init__(self) -> None:
        self.docs: dict[str, tuple[str, str]] = {}  # path → (etag, body)
        self.hits: dict[str, list[str | None]] = {}  # path → If-None-Match seen
        self.down = False
        self.cache_control: str | None = "max-age=1"
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                inm = self.headers.get("If-None-Match")
                origin.hits.setdefault(self.path, []).append(inm)
                if origin.down or self.path not in origin.docs:
                    self.send_response(503)
                    self.end_headers()
                    return
                etag, body = origin.docs[self.path]
                if inm == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("ETag", etag)
                if origin.cache_control is not None:
                    self.send_header("Cache-Control", origin.cache_control)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def origin() -> Iterator[Origin]:
    o = Origin()
    yield o
    o.server.shutdown()


def wait_for(cond: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.01)


def test_sources_follow_the_rules(origin: Origin) -> None:
    a, b = Signer.ed25519(), Signer.ed25519()
    now = int(time.time())
    origin.docs["/jwks"] = ('"k1"', jwks_json(a))
    origin.docs["/list"] = ('"1"', a.list(1, iat=now))
    clock = [now]
    v = Verifier(issuer=ISS, audiences=[AUD], now=lambda: clock[0])
    cfg = LiveConfig(f"{origin.base}/jwks", f"{origin.base}/list", min_refresh=0.2, max_refresh=1, kid_cooldown=60, max_stale=100)
    with pytest.raises(VerifyError) as e:
        LiveSources(v, cfg)  # attached, not started: nothing is vouched for yet
        v.verify(a.token(iat=now, nbf=now, exp=now + 60))
    assert e.value.code == "sources_unavailable"
    with LiveSources(v, cfg) as live:
        assert live.wait_ready(5)
        v.verify(a.token(iat=now, nbf=now, exp=now + 60))
        # Cache period and ETag: the next polls are conditional.
        wait_for(lambda: '"k1"' in origin.hits["/jwks"])
        # Unknown kid: one refetch, then the cooldown holds however many arrive.
        before = live.stats.jwks_kid_refetches
        for _ in range(20):
            with pytest.raises(VerifyError):
                v.verify(b.token(iat=now, nbf=now, exp=now + 60))
        wait_for(lambda: live.stats.jwks_kid_refetches == before + 1)
        time.sleep(0.3)
        assert live.stats.jwks_kid_refetches == before + 1
        # A list signed by a key not yet in the set is refused, fetched again (no 304), and
        # installed once the key set has it.
        origin.docs["/list"] = ('"2"', b.list(2, iat=now))
        wait_for(lambda: live.stats.last_refusal == "list_unknown_kid")
        wait_for(lambda: origin.hits["/list"].count('"1"') >= 1 and origin.hits["/list"][-1] == '"1"')
        origin.docs["/jwks"] = ('"k2"', jwks_json(a, b))
        wait_for(lambda: v.revocation_serial == 2)
        # Stale-if-error: the origin goes down; the set in force serves until max_stale.
        origin.down = True
        fails = live.stats.jwks_failures
        wait_for(lambda: live.stats.jwks_failures > fails)
        v.verify(a.token(iat=now, nbf=now, exp=now + 600))
        clock[0] = now + 200
        with pytest.raises(VerifyError) as e:
            v.verify(a.token(iat=now + 200, nbf=now + 200, exp=now + 600))
        assert e.value.code == "sources_unavailable" and e.value.unavailable


class PushOrigin(Origin):
    """An origin with a push channel at /events: keep-alives while `events_up`, 503 after."""

    def __init__(self) -> None:
        super().__init__()
        # No cache period: under push the list is polled only every max_refresh.
        self.cache_control = None
        self.events_up = True
        self.streams = 0
        origin = self
        base = self.server.RequestHandlerClass

        class Handler(base):  # type: ignore[misc, valid-type]
            def do_GET(self) -> None:
                if self.path != "/events":
                    return super().do_GET()
                origin.hits.setdefault(self.path, []).append(None)
                if not origin.events_up:
                    self.send_response(503)
                    self.end_headers()
                    return
                origin.streams += 1
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                try:
                    while origin.events_up:
                        self.wfile.write(b": keep-alive\n\n")
                        self.wfile.flush()
                        # The stream's pace, as an issuer's keep-alives have one.
                        time.sleep(0.1)
                except OSError:
                    pass

        self.server.RequestHandlerClass = Handler


def test_a_lost_push_channel_brings_list_polling_back_at_once() -> None:
    """Found in review: with the push channel up the list is polled every max_refresh (the
    fallback); when the channel went down and could not reconnect, the poller slept on, so a
    revocation waited up to 5 minutes."""
    o = PushOrigin()
    try:
        a = Signer.ed25519()
        now = int(time.time())
        o.docs["/jwks"] = ('"k1"', jwks_json(a))
        o.docs["/list"] = ('"1"', a.list(1, iat=now))
        v = Verifier(issuer=ISS, audiences=[AUD])
        cfg = LiveConfig(f"{o.base}/jwks", f"{o.base}/list", events=f"{o.base}/events", min_refresh=0.05, max_refresh=600)
        token = a.token(iat=now, nbf=now, exp=now + 60)
        with LiveSources(v, cfg) as live:
            assert live.wait_ready(5)
            v.verify(token)
            # The channel is up and the list has been polled under it: the next poll is 600 s away.
            wait_for(lambda: live.stats.list_polls_pushed >= 1)
            # A revocation is published while the channel goes down for good.
            o.docs["/list"] = ('"2"', a.list(2, iat=now, entries=[entry("jti", default_claims()["jti"], now)]))
            o.events_up = False

            def refused() -> bool:
                try:
                    v.verify(token)
                    return False
                except VerifyError:
                    return True

            wait_for(refused, timeout=10)
    finally:
        o.events_up = False
        o.server.shutdown()


def test_plain_http_only_to_loopback() -> None:
    v = Verifier(issuer=ISS, audiences=[AUD])
    with pytest.raises(BuildError):
        LiveSources(v, LiveConfig("http://keys.example/jwks", "https://x.example/list"))


def test_sources_from_files_install_a_rewritten_list_and_refuse_a_rolled_back_one(tmp_path: Any) -> None:
    a = Signer.ed25519()
    now = int(time.time())
    jwks, lst = tmp_path / "jwks.json", tmp_path / "revocations.jws"
    jwks.write_text(jwks_json(a))
    lst.write_text(a.list(1, iat=now))
    v = Verifier(issuer=ISS, audiences=[AUD])
    token = a.token(iat=now, nbf=now, exp=now + 60)
    cfg = LiveConfig(str(jwks), str(lst), min_refresh=0.05, max_refresh=0.2, kid_cooldown=60, max_stale=100)
    with LiveSources(v, cfg) as live:
        assert live.wait_ready(5)
        assert v.revocation_serial == 1
        v.verify(token)
        sub = default_claims()["sub"]
        # A new file (as `keymint publish` writes it) is read and installed: the key is revoked.
        lst.write_text(a.list(2, entries=[entry("key", sub, revoked_at=now - 1)], iat=now))
        os.utime(lst, (now + 5, now + 5))
        wait_for(lambda: v.revocation_serial == 2)
        with pytest.raises(VerifyError) as e:
            v.verify(token)
        assert e.value.code == "revoked"
        # An older serial in the file is refused; the newer list stays in force.
        lst.write_text(a.list(1, iat=now))
        os.utime(lst, (now + 10, now + 10))
        wait_for(lambda: live.stats.last_refusal is not None)
        assert v.revocation_serial == 2


def test_a_max_age_in_non_ascii_digits_is_no_max_age() -> None:
    # '²'.isdigit() is True and float('²') raises: that killed the refresh thread for good.
    from keymint_verifier.sources.fetch import max_age

    assert max_age("public, max-age=300") == 300.0
    assert max_age("max-age=\u00b2") is None
    assert max_age("max-age=\u0663") is None


def test_sse_lines_split_on_any_chunking_and_stay_linear() -> None:
    from keymint_verifier.sources import sse

    text = b"event: revocations\r\nid: 7\ndata: abc\n\n"
    for size in (1, 2, 5, len(text)):
        chunks = [text[i : i + size] for i in range(0, len(text), size)]
        assert list(sse.lines(chunks, 100)) == ["event: revocations", "id: 7", "data: abc", ""]
    # A long line in small chunks comes out whole (the reader no longer rescans it from its
    # start on every chunk: scripts or a profiler show the cost, not this test).
    line = b"data: " + b"x" * 1_000_000 + b"\n"
    got = list(sse.lines((line[i : i + 1024] for i in range(0, len(line), 1024)), 2_000_000))
    assert got == [line[:-1].decode()]
    with pytest.raises(sse.LineTooLong):
        list(sse.lines([b"x" * 101], 100))
