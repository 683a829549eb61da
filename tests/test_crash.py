"""Crashes and signals, with real processes: nothing lost, nothing doubled, claims released."""

from __future__ import annotations

import signal
import sqlite3
import time

import pytest

from tests.conftest import Setup, archived_once, wait_for_hits
from tests.servers import Farm


@pytest.mark.parametrize("after_hits", [1, 5, 12])
def test_sigkill_mid_fetch_loses_and_repeats_nothing(
    setup: Setup, farm: Farm, after_hits: int
) -> None:
    farm.latency = 0.15
    setup.add_farm_apis(farm)
    victim = setup.popen("run")
    wait_for_hits(farm, after_hits)
    victim.send_signal(signal.SIGKILL)
    setup.finish(victim, timeout=10)
    takeover = setup.cli("run")  # same host, pid gone: no need to wait for the lease
    assert takeover.returncode == 0, takeover.stderr
    assert not takeover.stdout.startswith("skipped")
    archived_once(setup, farm)
    with sqlite3.connect(setup.home / "apigetter.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        statuses = [s for (s,) in db.execute("SELECT status FROM runs ORDER BY id")]
    assert statuses == ["abandoned", "done"]
    sent = len(farm.hits)
    assert setup.cli("run").returncode == 0
    assert len(farm.hits) == sent  # nothing due, nothing sent


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_releases_the_claim_and_keeps_work_due(
    setup: Setup, farm: Farm, sig: signal.Signals
) -> None:
    farm.latency = 0.5
    setup.add_farm_apis(farm)
    victim = setup.popen("run")
    wait_for_hits(farm, 3)
    started = time.monotonic()
    victim.send_signal(sig)
    _, err = setup.finish(victim, timeout=10)
    assert time.monotonic() - started < 5
    assert victim.returncode == 130 and "interrupted" in err and "Traceback" not in err
    with sqlite3.connect(setup.home / "apigetter.db") as db:
        assert db.execute("SELECT status FROM runs").fetchall() == [("interrupted",)]
        assert db.execute("SELECT COUNT(*) FROM claims").fetchone() == (0,)
    farm.latency = 0.0
    assert setup.cli("run").returncode == 0
    archived_once(setup, farm)


def test_a_claim_from_another_host_is_taken_over_only_after_the_lease(
    setup: Setup, farm: Farm
) -> None:
    (setup.home / "config.toml").write_text("lease_seconds = 2\n")
    setup.add_farm_api("alpha", farm)
    assert setup.cli("status").returncode == 0  # creates the store
    now = time.time()
    with sqlite3.connect(setup.home / "apigetter.db") as db:
        db.execute(
            "INSERT INTO runs (id, status, pid, host, apis, started_at, heartbeat_at) "
            "VALUES (7, 'running', 1, 'elsewhere', '[\"alpha\"]', ?, ?)",
            (now, now),
        )
        db.execute("INSERT INTO claims (api, run_id) VALUES ('alpha', 7)")
    early = setup.cli("run")
    assert early.returncode == 0 and early.stdout.startswith("skipped:")
    assert "alpha (held by run 7)" in early.stdout and not farm.hits
    time.sleep(max(0.0, now + 2.2 - time.time()))
    late = setup.cli("run")
    assert late.returncode == 0 and not late.stdout.startswith("skipped")
    assert len(farm.hits) == 7
    with sqlite3.connect(setup.home / "apigetter.db") as db:
        assert db.execute("SELECT status FROM runs WHERE id = 7").fetchone() == ("abandoned",)
