"""Live sources: the key set and the revocation list from URLs or files, refreshed in background
threads with sync ``httpx``, plus the push channel. ``Verifier.verify`` never waits on them."""

from .config import LiveConfig
from .live import LiveSources, LiveStats

__all__ = ["LiveConfig", "LiveSources", "LiveStats"]
