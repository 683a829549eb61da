"""The store on real SQLite files: claims, leases, schema version, file modes, bad files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from apigetter.errors import StoreError
from apigetter.store import SCHEMA_VERSION, Store

LEASE = 60.0
T0 = 1_800_000_000.0


async def test_claims_exclude_active_runs_and_expire_with_the_lease(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db")
    try:
        # A run on another host: its pid means nothing here, only its heartbeat counts.
        other = await store.claim(["a", "b"], pid=1, host="elsewhere", now=T0, lease=LEASE)
        assert other.claimed == ["a", "b"]
        mine = await store.claim(["b", "c"], pid=os.getpid(), host="here", now=T0 + 1, lease=LEASE)
        assert mine.claimed == ["c"] and mine.held == {"b": other.run_id}
        # Disjoint sets proceed side by side; overlapping ones find nothing left.
        again = await store.claim(["a", "b"], pid=os.getpid(), host="here", now=T0 + 2, lease=LEASE)
        assert again.claimed == [] and again.abandoned == []
        # Heartbeats keep the claim alive past the original lease...
        assert await store.heartbeat(other.run_id, T0 + 50)
        late = await store.claim(["a"], pid=os.getpid(), host="here", now=T0 + 100, lease=LEASE)
        assert late.claimed == []
        # ...and once they stop for longer than the lease, the claim is taken over.
        taken = await store.claim(["a"], pid=os.getpid(), host="here", now=T0 + 111, lease=LEASE)
        assert taken.claimed == ["a"] and taken.abandoned == [other.run_id]
        assert not await store.heartbeat(other.run_id, T0 + 112)  # the old owner learns it
        statuses = {r.id: r.status for r in await store.runs(10)}
        assert statuses[other.run_id] == "abandoned" and statuses[again.run_id] == "skipped"
    finally:
        await store.close()


async def test_a_dead_pid_on_this_host_is_taken_over_at_once(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db")
    try:
        dead = await store.claim(["a"], pid=2**22 + 7, host="here", now=T0, lease=LEASE)
        taken = await store.claim(["a"], pid=os.getpid(), host="here", now=T0 + 1, lease=LEASE)
        assert taken.claimed == ["a"] and taken.abandoned == [dead.run_id]
    finally:
        await store.close()


async def test_new_store_is_private_and_versioned(tmp_path: Path) -> None:
    path = tmp_path / "home" / "s.db"
    store = await Store.open(path)
    await store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    store = await Store.open(path)  # reopening applies nothing twice
    try:
        assert (await store._read("PRAGMA user_version"))[0][0] == SCHEMA_VERSION
    finally:
        await store.close()


async def test_a_corrupt_store_is_a_clear_error_and_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    garbage = b"this is not a database" * 100
    path.write_bytes(garbage)
    with pytest.raises(StoreError, match=r"s\.db.*corrupt"):
        await Store.open(path)
    assert path.read_bytes() == garbage
