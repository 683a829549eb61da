"""``apigetter demo``: the bundled contracts against the offline sandbox, twice."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from apigetter import sandbox
from apigetter.config import load_settings
from apigetter.runner import RunReport, run
from apigetter.status import Status, collect

LATER = 6.5 * 3600


@dataclass
class Demo:
    """What the demo did: where, both run reports, and the status after them."""

    home: Path
    sandbox_url: str
    runs: list[RunReport]
    status: Status
    files: list[Path]


async def run_demo() -> Demo:
    """Serve the sandbox on loopback, run twice in a fresh home, collect status."""
    app = sandbox.make_app(latency=0.02, now=datetime.now(UTC))
    server, root = await sandbox.start(app)
    try:
        home = Path(tempfile.mkdtemp(prefix="apigetter-demo-"))
        # Only sandbox values: a real token in the caller's environment never reaches it.
        settings = load_settings(home, environ=sandbox.environ(root))
        first = await run(settings)
        # The second run pretends 6.5 hours passed: endpoints fetched every 6 hours and the
        # next history chunk are due again (their files come back unchanged); daily ones wait.
        later = time.time() + LATER
        second = await run(settings, clock=lambda: later)
        state = await collect(settings, [], now=later)
    finally:
        await server.cleanup()
    files = sorted(p for p in settings.data_dir.rglob("*.json") if ".staging" not in p.parts)
    return Demo(home, root, [first, second], state, files)
