"""Process faults at scale. CI-sized by default; ``APIGETTER_STRESS=1`` runs the full counts.

Figures are printed (run with ``-s``): trials, requests, duplicates, skips, kills.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import Setup, archived_once, wait_for_hits
from tests.servers import Farm

FULL = os.environ.get("APIGETTER_STRESS") == "1"
pytestmark = pytest.mark.timeout(1800 if FULL else 300)
CONCURRENT_TRIALS, PROCESSES = (20, 20) if FULL else (2, 20)
KILL_TRIALS = 50 if FULL else 6


def fresh(setup: Setup, tmp_path: Path, trial: int, farm: Farm) -> Setup:
    """A new home for one trial, with the same contracts and farm."""
    home = tmp_path / f"trial{trial}"
    home.mkdir()
    (home / "config.toml").write_text("retry_backoff = 0.05\nlease_seconds = 30\n")
    trial_setup = Setup(home, setup.contracts, {**setup.env, "APIGETTER_HOME": str(home)})
    farm.hits.clear()
    return trial_setup


def test_concurrent_processes_never_duplicate_a_request(
    setup: Setup, farm: Farm, tmp_path: Path
) -> None:
    farm.latency = 0.1
    setup.add_farm_apis(farm)
    duplicates = skipped = requests = 0
    for trial in range(CONCURRENT_TRIALS):
        run = fresh(setup, tmp_path, trial, farm)
        procs = [run.popen("run") for _ in range(PROCESSES)]
        outputs = [run.finish(p, timeout=120) for p in procs]
        assert all(p.returncode == 0 for p in procs), outputs
        seen = Counter((h.path, tuple(sorted(h.query.items()))) for h in farm.hits)
        duplicates += sum(n - 1 for n in seen.values())
        skipped += sum(out.startswith("skipped:") for out, _ in outputs)
        requests += len(farm.hits)
        assert len(farm.hits) == 3 * 7
    print(
        f"\nconcurrency: {CONCURRENT_TRIALS} trials x {PROCESSES} processes, "
        f"{requests} requests, {duplicates} duplicates, {skipped} skipped invocations"
    )
    assert duplicates == 0


def test_sigkill_at_random_moments_loses_nothing(setup: Setup, farm: Farm, tmp_path: Path) -> None:
    farm.latency = 0.08
    setup.add_farm_apis(farm)
    rng = random.Random(20261127)
    mid_fetch = 0
    for trial in range(KILL_TRIALS):
        run = fresh(setup, tmp_path, trial, farm)
        victim = run.popen("run")
        if trial % 5:  # most kills land while fetching; every fifth one during start-up
            wait_for_hits(farm, 1)
            time.sleep(rng.uniform(0.0, 0.4))
        else:
            time.sleep(rng.uniform(0.0, 0.5))
        victim.send_signal(signal.SIGKILL)
        run.finish(victim)
        mid_fetch += 0 < len(farm.hits) < 21
        after = run.cli("run")
        assert after.returncode == 0, after.stderr
        archived_once(run, farm)
        with sqlite3.connect(run.home / "apigetter.db") as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        sent = len(farm.hits)
        assert run.cli("run").returncode == 0 and len(farm.hits) == sent
    print(
        f"\nsigkill: {KILL_TRIALS} trials, {mid_fetch} killed mid-fetch, "
        "0 lost, 0 duplicated, 0 partial files, integrity ok"
    )
    assert mid_fetch > 0
