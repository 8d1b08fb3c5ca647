"""One conditional GET with a size cap, or one file read."""

from __future__ import annotations

import os
from dataclasses import dataclass

import httpx

from ..errors import SourceError


@dataclass(frozen=True, slots=True)
class Fetched:
    #: None: not modified (HTTP 304, or the same file time).
    body: str | None
    etag: str | None = None
    max_age: float | None = None
    mtime: float | None = None


def max_age(cache_control: str | None) -> float | None:
    if not cache_control:
        return None
    for directive in cache_control.split(","):
        d = directive.strip()
        if d.startswith("max-age="):
            value = d[len("max-age=") :].strip()
            # ASCII digits only: str.isdigit() is also true of '²', which float() refuses.
            if value.isascii() and value.isdigit():
                return float(value)
    return None


def get_text(client: httpx.Client, url: str, etag: str | None, limit: int) -> Fetched:
    headers = {"If-None-Match": etag} if etag else {}
    try:
        # Redirects are not followed (httpx's default): key material comes from the URL
        # configured, never from wherever that URL points.
        with client.stream("GET", url, headers=headers) as res:
            new_etag = res.headers.get("etag")
            age = max_age(res.headers.get("cache-control"))
            if res.status_code == 304:
                return Fetched(None, new_etag, age)
            if res.status_code != 200:
                raise SourceError(f"HTTP {res.status_code}")
            announced = res.headers.get("content-length", "").strip()
            # Refused before a byte is read: otherwise a huge answer costs `limit` on every poll.
            if announced.isdigit() and int(announced) > limit:
                raise SourceError(f"larger than {limit} bytes")
            data = bytearray()
            for chunk in res.iter_bytes():
                data += chunk
                if len(data) > limit:
                    raise SourceError(f"larger than {limit} bytes")
    except httpx.HTTPError as e:
        raise SourceError(f"transport: {type(e).__name__}") from None
    try:
        return Fetched(bytes(data).decode("utf-8"), new_etag, age)
    except UnicodeDecodeError:
        raise SourceError("not UTF-8") from None


def read_file(path: str, seen_mtime: float | None, limit: int) -> Fetched:
    try:
        mtime = os.stat(path).st_mtime
        if seen_mtime is not None and mtime == seen_mtime:
            return Fetched(None, mtime=mtime)
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise SourceError(f"reading {path}: {e.strerror}") from None
    if len(data) > limit:
        raise SourceError(f"larger than {limit} bytes")
    try:
        return Fetched(data.decode("utf-8").rstrip(), mtime=mtime)
    except UnicodeDecodeError:
        raise SourceError("not UTF-8") from None
