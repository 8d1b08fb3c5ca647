"""Runs the real keymint binary on loopback for end-to-end tests and the latency script."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[3]


def keymint_bin() -> Path:
    """``KEYMINT_BIN``, else ``$CARGO_TARGET_DIR/release/keymint``, else ``target/release/keymint``."""
    if os.environ.get("KEYMINT_BIN"):
        return Path(os.environ["KEYMINT_BIN"])
    target = os.environ.get("CARGO_TARGET_DIR")
    return (Path(target) if target else REPO / "target") / "release" / "keymint"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Issuer:
    def __init__(self, serve_args: Sequence[str] = ()) -> None:
        """Starts ``keymint serve`` on a free loopback port, ``serve_args`` added to its options."""
        self.bin = keymint_bin()
        if not self.bin.is_file():
            raise AssertionError(f"keymint binary not found at {self.bin}: build it or set KEYMINT_BIN")
        self._tmp = tempfile.TemporaryDirectory(prefix="keymint-py-")
        self.data_dir = self._tmp.name
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._log = open(Path(self.data_dir) / "serve.log", "wb")
        self.proc = subprocess.Popen(
            [str(self.bin), "serve", "--data-dir", self.data_dir, "--listen", f"127.0.0.1:{self.port}", *serve_args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"keymint serve exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("keymint serve did not come up within 30 s")
            time.sleep(0.05)

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            [str(self.bin), *args, "--data-dir", self.data_dir],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return out.stdout.decode()

    def create_key(self, tenant: str = "t", scope: str = "s", audience: str = "https://api.example") -> tuple[str, str]:
        """(key ID, the printable key)."""
        info = json.loads(self.cli("keys", "create", "--tenant", tenant, "--scope", scope, "--audience", audience, "--json"))
        return str(info["key_id"]), str(info["key"])

    def revoke_key(self, key_id: str) -> None:
        self.cli("keys", "revoke", key_id)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()
        self._tmp.cleanup()

    def __enter__(self) -> Issuer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
