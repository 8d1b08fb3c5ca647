"""JSON parsing that keeps every object's members in document order, so that duplicates can be
refused.

``json.loads`` silently keeps the last of two members with the same name (another parser may keep
the first): a token whose claims mean different things to different readers. We parse into
``Members`` (the pairs, in order) and let the readers of headers, claims and lists walk them in
document order, as the Rust verifier's streaming parser does, so that the first problem met is the
one reported. Also refused, as serde_json refuses them: NaN/Infinity, lone surrogate escapes,
nesting deeper than 128.
"""

from __future__ import annotations

import json
from typing import Any, Callable

MAX_DEPTH = 128


class JsonDuplicate(Exception):
    def __init__(self, member: str) -> None:
        super().__init__(f"duplicate JSON member {member[:32]!r}")
        self.member = member[:32]


class JsonInvalid(Exception):
    """Not JSON, or not the expected shape. The message never echoes input values."""


class Members(list[tuple[str, Any]]):
    """A JSON object as its (name, value) pairs in document order, duplicates included."""


def _no_constants(name: str) -> Any:
    raise JsonInvalid("JSON syntax error: non-finite number")


_decoder = json.JSONDecoder(object_pairs_hook=Members, parse_constant=_no_constants)


def parse(data: bytes) -> Any:
    """Parses one JSON document (UTF-8, nothing after it) into plain values and ``Members``."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise JsonInvalid("JSON is not UTF-8") from None
    try:
        value = _decoder.decode(text)
    except JsonInvalid:
        raise
    except (ValueError, RecursionError):
        raise JsonInvalid("JSON syntax error") from None
    if "\\u" in text or "\\U" in text:
        _reject_surrogates(value)
    return value


def _reject_surrogates(value: Any) -> None:
    def check(s: str) -> None:
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            raise JsonInvalid("JSON has a lone surrogate escape") from None

    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            check(v)
        elif isinstance(v, Members):
            for name, inner in v:
                check(name)
                stack.append(inner)
        elif isinstance(v, list):
            stack.extend(v)


class MemberSet:
    """The names of one object seen so far."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def insert(self, name: str) -> None:
        if name in self._seen:
            raise JsonDuplicate(name)
        self._seen.add(name)


def no_duplicates(value: Any, depth: int = 1) -> None:
    """Checks a value the reader ignores for duplicate members at every depth (names before
    values, as the streaming parser meets them)."""
    if depth > MAX_DEPTH:
        raise JsonInvalid("JSON nests too deeply")
    if isinstance(value, Members):
        seen = MemberSet()
        for name, inner in value:
            seen.insert(name)
            no_duplicates(inner, depth + 1)
    elif isinstance(value, list):
        for inner in value:
            no_duplicates(inner, depth + 1)


def as_text(value: Any) -> str:
    if not isinstance(value, str):
        raise JsonInvalid("JSON has the wrong shape: a string was expected")
    return value


def as_u64(value: Any) -> int:
    # bool is an int in Python; JSON `true` is not a number.
    if type(value) is not int or not 0 <= value < 2**64:
        raise JsonInvalid("JSON has the wrong shape: an unsigned integer was expected")
    return value


def as_object(value: Any) -> Members:
    if not isinstance(value, Members):
        raise JsonInvalid("JSON has the wrong shape: an object was expected")
    return value


def read_object(
    value: Any, readers: dict[str, Callable[[Any], Any]], depth: int = 1
) -> dict[str, Any]:
    """Reads an object in document order: a known member's value through its reader, any other
    value checked for duplicates only; each name is recorded after its value (as the Rust
    verifier's typed readers do)."""
    obj = as_object(value)
    out: dict[str, Any] = {}
    seen = MemberSet()
    for name, inner in obj:
        reader = readers.get(name)
        if reader is None:
            no_duplicates(inner, depth + 1)
        else:
            out[name] = reader(inner)
        seen.insert(name)
    return out


def strict_document(value: Any) -> None:
    """The two-pass check used for key sets and lists: the whole document is checked for
    duplicates first, before its shape is read."""
    no_duplicates(value)
