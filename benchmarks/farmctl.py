"""Helpers for benchmark scripts: run the API farm in a subprocess and compute wall-time bounds."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

FARM = Path(__file__).with_name("farm.py")


class Farm:
    """A running farm process; stop() returns the report it writes on SIGTERM."""

    def __init__(self, spec: dict[str, Any], timeout: float = 10.0) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="farm-")
        d = Path(self._dir.name)
        (d / "spec.json").write_text(json.dumps(spec))
        self._port_file, self._report_file = d / "port", d / "report.json"
        cmd = [sys.executable, str(FARM), "--spec", str(d / "spec.json")]
        cmd += ["--port-file", str(self._port_file), "--report", str(self._report_file)]
        self._proc = subprocess.Popen(cmd)
        deadline = time.monotonic() + timeout
        while not self._port_file.exists():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"farm did not start (exit code {self._proc.returncode})")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{int(self._port_file.read_text())}"

    def _call(self, method: str, path: str) -> bytes:
        # The URL is always our own http://127.0.0.1, so the scheme audit does not apply.
        req = urllib.request.Request(self.url + path, method=method)  # noqa: S310
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            body: bytes = resp.read()
            return body

    def report(self) -> dict[str, Any]:
        """Fetch the live per-API traffic report."""
        result: dict[str, Any] = json.loads(self._call("GET", "/_report"))
        return result

    def reset(self) -> None:
        """Clear all recorded traffic."""
        self._call("POST", "/_reset")

    def stop(self) -> dict[str, Any] | None:
        """Terminate the farm and return its final report (None if it died without one)."""
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        final: dict[str, Any] | None = None
        if self._report_file.exists():
            final = json.loads(self._report_file.read_text())
        self._dir.cleanup()
        return final

    def __enter__(self) -> Farm:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_farm(spec: dict[str, Any]) -> Farm:
    """Spawn farm.py with this interpreter and wait until it listens."""
    return Farm(spec)


def lower_bound(spec: dict[str, Any]) -> float:
    """Return the wall-time floor: the slowest API's rate-limited volume or serial page chain."""
    worst = 0.0
    for api in spec["apis"]:
        pages, lim = api["pages"], api.get("limit")
        requests = pages + (pages * api["per_page"] if api.get("children", True) else 0) + 1
        rate = lim["count"] / lim["per"] if lim else math.inf
        # Pages are serial (each link comes from the previous page); one more round for children.
        chain = (pages + 1) * api.get("latency", 0.0)
        worst = max(worst, requests / rate, chain)
    return worst
