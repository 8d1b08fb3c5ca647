"""A server-sent events reader (the subset keymint's push channel uses): ``event:``, ``id:``,
``data:`` lines, an empty line ends an event. Lines are bounded, so a hostile endpoint cannot grow
one without limit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator


class LineTooLong(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Event:
    event: str
    id: str | None
    data: str


def lines(chunks: Iterable[bytes], max_line: int) -> Iterator[str]:
    # Linear in what arrives: each byte is searched for a newline once (a long line arriving in
    # many chunks is not rescanned from its start each time), and the lines a chunk completes are
    # cut off the buffer together.
    buf = bytearray()
    scanned = 0
    for chunk in chunks:
        buf += chunk
        start = 0
        while True:
            nl = buf.find(b"\n", max(start, scanned))
            if nl < 0:
                break
            yield bytes(buf[start:nl]).rstrip(b"\r").decode("utf-8", "replace")
            start = nl + 1
        if start:
            del buf[:start]
        scanned = len(buf)
        if len(buf) > max_line:
            raise LineTooLong()


def events(lines_in: Iterable[str], max_data: int) -> Iterator[Event]:
    event, ident, data = "", None, ""
    for line in lines_in:
        if not line:
            if data:
                yield Event(event, ident, data)
            event, data = "", ""
            # The id persists across events of a stream (the "last event ID buffer").
            continue
        if line.startswith("data:"):
            data += line[5:].lstrip()
            if len(data) > max_data:
                raise LineTooLong()
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("id:"):
            ident = line[3:].strip()
