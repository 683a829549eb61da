"""Crashes and signals, with real processes: nothing lost, nothing doubled, claims released."""

from __future__ import annotations

import signal
import sqlite3
import time
from collections import Counter

import orjson
import pytest

from tests.conftest import Setup
from tests.servers import Farm

APIS = ("alpha", "beta", "gamma")


def wait_for_hits(farm: Farm, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while len(farm.hits) < count:
        assert time.monotonic() < deadline, f"only {len(farm.hits)} requests arrived"
        time.sleep(0.01)


def archived_once(setup: Setup, farm: Farm) -> None:
    """Every (api, endpoint, key) has exactly one file, and every item is in one."""
    keys = Counter()
    for path in setup.files():
        api, endpoint = path.parent.parent.name, path.parent.name
        keys[api, endpoint, path.name.split("--run-")[0]] += 1
    assert keys and max(keys.values()) == 1, keys.most_common(3)
    assert not list((setup.data / ".staging").glob("*"))
    for api in APIS:
        items = [r for p in setup.files(api, "items") for r in orjson.loads(p.read_bytes())]
        expected = [i["id"] for page in (1, 2, 3) for i in farm.items(api, page)]
        assert sorted(r["id"] for r in items) == sorted(expected)
        assert len(setup.files(api, "things")) == 3 and len(setup.files(api, "user")) == 1


@pytest.mark.parametrize("after_hits", [1, 5, 12])
def test_sigkill_mid_fetch_loses_and_repeats_nothing(
    setup: Setup, farm: Farm, after_hits: int
) -> None:
    farm.latency = 0.15
    for name in APIS:
        setup.add_farm_api(name, farm)
    victim = setup.popen("run")
    wait_for_hits(farm, after_hits)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=10)
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
    for name in APIS:
        setup.add_farm_api(name, farm)
    victim = setup.popen("run")
    wait_for_hits(farm, 3)
    started = time.monotonic()
    victim.send_signal(sig)
    _, err = victim.communicate(timeout=10)
    assert time.monotonic() - started < 5
    assert victim.returncode == 130 and "interrupted" in err and "Traceback" not in err
    with sqlite3.connect(setup.home / "apigetter.db") as db:
        assert db.execute("SELECT status FROM runs").fetchall() == [("interrupted",)]
        assert db.execute("SELECT COUNT(*) FROM claims").fetchone() == (0,)
    farm.latency = 0.0
    assert setup.cli("run").returncode == 0
    archived_once(setup, farm)
