"""``apigetter demo`` works offline, with no credentials, and shows what it promises."""

from __future__ import annotations

import re

from tests.conftest import Setup


def test_demo_runs_offline_twice_and_shows_status(setup: Setup) -> None:
    # No credentials in the environment: the demo brings the sandbox's own.
    result = setup.cli("demo", timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    run1, _, rest = out.partition("run 2, 6.5 hours later:")
    run2, _, status = rest.partition("status:")
    for api in ("github", "hackernews", "oura", "reddit", "strava"):
        assert re.search(rf"^{api} +ok +\d+ requests, \d+ items, [1-9]\d* written", run1, re.M)
        assert f"{api}: ready" in status
    assert "unchanged" in run2 and "not due" in run2
    assert "github: ready" in status and "history running" in status
    assert "files in" in status
    assert not (setup.home / "data").exists()  # the demo uses its own temporary home
