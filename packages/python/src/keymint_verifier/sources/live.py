"""The refresh threads: key set, revocation list, push channel.

- Key set: polled on its ``Cache-Control: max-age`` (clamped to [min_refresh, max_refresh]) with
  ``If-None-Match``; a failure keeps the set in force (stale-if-error) and retries after
  ``min_refresh``; after ``max_stale`` without a success ``verify`` refuses everything (503). A
  token with an unknown ``kid`` rings a doorbell: at most one refetch per ``kid_cooldown``. A list
  signed by an unknown ``kid`` gets a refetch of its own, at most one per list serial and one a
  second, and is offered again after every new key set.
- List: polled like the key set (only as a fallback while the push channel is up); its ETag or
  file time advances only when a list is installed, so a refused list is fetched again rather
  than answered 304.
- Push channel: ``GET /v1/revocations/events`` (SSE), ``event: revocations``, ``id: <serial>``,
  ``data: <list>``; reconnects with ``Last-Event-ID`` (which, too, advances only with a list
  installed) and a backoff from 250 ms to 30 s.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from ..errors import KeySetError, SourceError, UpdateError
from ..keys import Jwks
from ..revocation_list import unverified_serial
from ..verifier import LiveHooks, Verifier
from . import fetch, sse
from .config import LiveConfig, is_url

log = logging.getLogger("keymint_verifier.sources")

LIST_KID_INTERVAL = 1.0
# A push stream up this long was working (seconds).
STREAM_WORKED = 5.0
# Codes a new key set can cure: the refused list is kept and offered again.
_CURABLE = frozenset({"list_unknown_kid", "list_rollback", "list_serial_conflict"})


@dataclass
class LiveStats:
    jwks_fetches: int = 0
    jwks_kid_refetches: int = 0
    jwks_list_refetches: int = 0
    jwks_failures: int = 0
    lists_installed: int = 0
    lists_refused: int = 0
    list_fetch_failures: int = 0
    events: int = 0
    #: List polls made while the push channel was up, each followed by a wait of ``max_refresh``
    #: (polling is then the fallback) that ends early if the channel goes down.
    list_polls_pushed: int = 0
    #: The ``list_*`` code of the last refused list, for operators.
    last_refusal: str | None = field(default=None)


class LiveSources:
    """Feeds a ``Verifier`` from live sources. ``start()`` spawns daemon threads; ``stop()`` ends
    them. Until the key set has been fetched, the verifier refuses every token (503)."""

    def __init__(self, verifier: Verifier, config: LiveConfig) -> None:
        config.check_uris()
        self.verifier = verifier
        self.config = config
        self.stats = LiveStats()
        self._stop = threading.Event()
        self._wake: queue.Queue[None] = queue.Queue(maxsize=1)
        self._keys_in = threading.Event()
        self._list_in = threading.Event()
        self._ready = threading.Event()
        self._push_connected = False
        self._lock = threading.Lock()
        self._refused: str | None = None
        self._list_kid_wanted = False
        self._list_kid_serial: int | None = None
        self._stream: httpx.Response | None = None
        self._hooks = LiveHooks(wake=self._ring, max_stale=config.max_stale)
        verifier.attach_live(self._hooks)
        self._threads: list[threading.Thread] = []

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> LiveSources:
        targets = [("keymint-jwks", self._keys_loop), ("keymint-revocations", self._list_loop)]
        if self.config.events is not None:
            targets.append(("keymint-events", self._events_loop))
        for name, target in targets:
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._ring()
        stream = self._stream
        if stream is not None:
            try:
                stream.close()
            except Exception:  # closing from another thread only needs to unblock the reader
                pass
        for t in self._threads:
            t.join(timeout)

    def __enter__(self) -> LiveSources:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_ready(self, timeout: float) -> bool:
        """Waits until a key set and a list are in force."""
        return self._ready.wait(timeout)

    @property
    def push_connected(self) -> bool:
        return self._push_connected

    # --- shared ------------------------------------------------------------------------------

    def _ring(self) -> None:
        try:
            self._wake.put_nowait(None)
        except queue.Full:
            pass

    def _mark_ready(self) -> None:
        if self._keys_in.is_set() and self._list_in.is_set():
            self._ready.set()

    def _sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _sleep_while(self, seconds: float, go_on: Callable[[], bool]) -> None:
        """`_sleep`, cut short (within a fifth of a second) once `go_on()` turns false."""
        deadline = time.monotonic() + seconds
        while go_on() and not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._stop.wait(min(left, 0.2))

    def _clamp(self, max_age: float | None, fallback: float) -> float:
        lo, hi = self.config.min_refresh, max(self.config.max_refresh, self.config.min_refresh)
        return min(max(max_age if max_age is not None else fallback, lo), hi)

    def _client(self, read_timeout: float) -> httpx.Client:
        t = self.config.timeout
        return httpx.Client(timeout=httpx.Timeout(t, read=read_timeout), follow_redirects=False)

    def _install_list(self, text: str) -> bool:
        """True when the list is in force afterwards (installed, or the very same one)."""
        try:
            update = self.verifier.update_revocations(text)
        except UpdateError as e:
            self.stats.lists_refused += 1
            self.stats.last_refusal = e.code
            if e.code in _CURABLE:
                with self._lock:
                    self._refused = text
            if e.code == "list_unknown_kid":
                self._want_keys_for(text)
            log.warning("refused a revocation list (%s); keeping the one in force", e.code)
            return False
        if update.installed:
            self.stats.lists_installed += 1
            # Whatever was refused before is older than this list or about to be.
            with self._lock:
                self._refused = None
        self._list_in.set()
        self._mark_ready()
        return True

    def _want_keys_for(self, text: str) -> None:
        serial = unverified_serial(text, self.verifier.max_list_bytes)
        with self._lock:
            if serial is not None and self._list_kid_serial == serial:
                return
            self._list_kid_serial = serial
            self._list_kid_wanted = True
        self._ring()

    def _retry_refused(self) -> None:
        with self._lock:
            text, self._refused = self._refused, None
        if text is not None:
            self._install_list(text)

    def _get(self, client: httpx.Client, source: str, etag: str | None, mtime: float | None, limit: int) -> fetch.Fetched:
        if is_url(source):
            return fetch.get_text(client, source, etag, limit)
        return fetch.read_file(source, mtime, limit)

    # --- key set -----------------------------------------------------------------------------

    def _keys_loop(self) -> None:
        cfg = self.config
        etag: str | None = None
        mtime: float | None = None
        last_kid_fetch: float | None = None
        last_list_fetch: float | None = None
        with self._client(cfg.timeout) as client:
            while not self._stop.is_set():
                self.stats.jwks_fetches += 1
                try:
                    f = self._get(client, cfg.jwks, etag, mtime, cfg.max_jwks_bytes)
                    new_keys = False
                    if f.body is not None:
                        self.verifier.set_keys(Jwks.from_json(f.body))
                        new_keys = True
                    etag = f.etag or etag
                    mtime = f.mtime if f.mtime is not None else mtime
                    self._hooks.keys_ok_at = max(self.verifier.now(), 1)
                    self._keys_in.set()
                    self._mark_ready()
                    if new_keys:
                        self._retry_refused()
                    delay = self._clamp(f.max_age, cfg.max_refresh)
                except (SourceError, KeySetError) as e:
                    self.stats.jwks_failures += 1
                    log.warning("key set refresh failed (%s); keeping the one in force", e)
                    delay = cfg.min_refresh
                except Exception as e:  # noqa: BLE001 - whatever a response did, the loop goes on
                    self.stats.jwks_failures += 1
                    log.warning("key set refresh failed unexpectedly (%s); keeping the one in force", type(e).__name__)
                    delay = cfg.min_refresh
                # Wait for the next poll, or for an unknown kid: a token's (at most one refetch
                # per cooldown) or a list's (at most one a second, on a budget of its own).
                deadline = time.monotonic() + delay
                list_due = False
                while not self._stop.is_set():
                    now = time.monotonic()
                    left = deadline - now
                    if left <= 0:
                        if list_due:
                            last_list_fetch = now
                            self.stats.jwks_list_refetches += 1
                        break
                    try:
                        self._wake.get(timeout=min(left, 0.5))
                    except queue.Empty:
                        continue
                    if self._stop.is_set():
                        return
                    with self._lock:
                        wanted, self._list_kid_wanted = self._list_kid_wanted, False
                    if wanted:
                        # Never dropped: if the last one was under a second ago, it waits.
                        at = now if last_list_fetch is None else max(last_list_fetch + LIST_KID_INTERVAL, now)
                        deadline = min(deadline, at)
                        list_due = True
                        continue
                    if last_kid_fetch is None or time.monotonic() - last_kid_fetch >= cfg.kid_cooldown:
                        last_kid_fetch = time.monotonic()
                        self.stats.jwks_kid_refetches += 1
                        break

    # --- revocation list ---------------------------------------------------------------------

    def _list_loop(self) -> None:
        cfg = self.config
        etag: str | None = None
        mtime: float | None = None
        with self._client(cfg.timeout) as client:
            while not self._stop.is_set():
                # The list can only be checked against a key set.
                if not self._keys_in.wait(0.05):
                    continue
                under_push = False
                try:
                    f = self._get(client, cfg.revocations, etag, mtime, cfg.max_list_bytes)
                    in_force = f.body is None or self._install_list(f.body)
                    if in_force:
                        etag = f.etag or etag
                        mtime = f.mtime if f.mtime is not None else mtime
                    # With the push channel up, polling is only the fallback.
                    under_push = self._push_connected
                    if under_push:
                        self.stats.list_polls_pushed += 1
                    fallback = cfg.max_refresh if under_push else cfg.min_refresh
                    delay = self._clamp(f.max_age, fallback)
                except SourceError as e:
                    self.stats.list_fetch_failures += 1
                    log.warning("revocation list refresh failed (%s); keeping the one in force", e)
                    delay = cfg.min_refresh
                except Exception as e:  # noqa: BLE001 - whatever a response did, the loop goes on
                    self.stats.list_fetch_failures += 1
                    log.warning("revocation list refresh failed unexpectedly (%s); keeping the one in force", type(e).__name__)
                    delay = cfg.min_refresh
                # A wait chosen because the push channel was up ends when it goes down: else a
                # revocation made while it cannot reconnect waits out max_refresh (5 minutes).
                self._sleep_while(delay, lambda: not under_push or self._push_connected)

    # --- push channel ------------------------------------------------------------------------

    def _events_loop(self) -> None:
        cfg = self.config
        assert cfg.events is not None
        url = cfg.events
        # Reads block until the next event or keep-alive (every 15 s from keymint).
        max_line = cfg.max_list_bytes + 64
        last_id: str | None = None
        backoff = 0.25
        with self._client(45.0) as client:
            while not self._stop.is_set():
                if not self._keys_in.wait(0.05):
                    continue
                connected_at: float | None = None
                headers = {"Accept": "text/event-stream"}
                if last_id is not None:
                    headers["Last-Event-ID"] = last_id
                try:
                    with client.stream("GET", url, headers=headers) as res:
                        if res.status_code != 200:
                            raise SourceError(f"HTTP {res.status_code}")
                        self._stream = res
                        self._push_connected = True
                        connected_at = time.monotonic()
                        for ev in sse.events(sse.lines(res.iter_raw(), max_line), cfg.max_list_bytes):
                            if self._stop.is_set():
                                return
                            if ev.event != "revocations":
                                continue
                            self.stats.events += 1
                            # The event ID advances only with a list in force: on reconnecting,
                            # a refused list is sent again.
                            if self._install_list(ev.data) and ev.id is not None:
                                last_id = ev.id
                            backoff = 0.25
                except (httpx.HTTPError, SourceError, sse.LineTooLong) as e:
                    if not self._stop.is_set():
                        log.warning("revocation events unavailable (%s); polling instead", type(e).__name__)
                except Exception as e:  # noqa: BLE001 - a closed stream on stop() surfaces as anything
                    if self._stop.is_set():
                        return
                    # Anything else a response did must not end the push channel for good.
                    log.warning("revocation events failed unexpectedly (%s); polling instead", type(e).__name__)
                finally:
                    self._stream = None
                    self._push_connected = False
                # A stream that stayed up was working (cut by a proxy's stream limit or a deploy):
                # start again at once. keymint sends nothing on a current Last-Event-ID, so "an
                # event came" cannot be the sign, or streams cut every minute would double the
                # wait up to 30 s each time.
                if connected_at is not None and time.monotonic() - connected_at >= STREAM_WORKED:
                    backoff = 0.25
                self._sleep(backoff)
                backoff = min(backoff * 2, 30.0)
