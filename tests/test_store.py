"""The store on real SQLite files: claims, leases, schema version, file modes, bad files."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from apigetter.errors import StoreError
from apigetter.store import SCHEMA_VERSION, Store, Tokens

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


V1_SCHEMA = Path(__file__).parent / "data" / "schema_v1.sql"  # schema.sql of release 1


def columns(db: sqlite3.Connection, table: str) -> list[tuple[str, str, int]]:
    return [(r[1], r[2], r[3]) for r in db.execute(f"PRAGMA table_info({table})")]


async def test_a_v1_store_migrates_to_the_current_schema(tmp_path: Path) -> None:
    old, fresh = tmp_path / "v1.db", tmp_path / "fresh.db"
    with sqlite3.connect(old) as db:
        db.executescript(V1_SCHEMA.read_text())
        db.execute("PRAGMA user_version = 1")
        db.execute(
            "INSERT INTO queue (api, endpoint, kind, run_after) VALUES ('a', 'e', 'standard', 5)"
        )
    db.close()
    store = await Store.open(old)
    try:
        assert (await store._read("PRAGMA user_version"))[0][0] == SCHEMA_VERSION == 2
        assert [e.endpoint for e in await store.entries(["a"])] == ["e"]  # data kept
        await store.save_tokens(Tokens("a", "refresh-1", "access-1", 99.0), now=1.0)
        assert await store.apis_with_refresh_token() == {"a"}
    finally:
        await store.close()
    await (await Store.open(fresh)).close()
    with sqlite3.connect(old) as a, sqlite3.connect(fresh) as b:
        tables = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        assert [r[0] for r in a.execute(tables)] == [r[0] for r in b.execute(tables)]
        assert columns(a, "tokens") == columns(b, "tokens")
    a.close()
    b.close()


async def test_tokens_keep_the_refresh_token_when_a_refresh_sends_none(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db")
    try:
        await store.save_tokens(Tokens("x", "refresh-1", "access-1", 10.0), now=1.0)
        await store.save_tokens(Tokens("x", None, "access-2", 20.0), now=2.0)
        saved = await store.tokens("x")
        assert saved == Tokens("x", "refresh-1", "access-2", 20.0)
        assert "refresh-1" not in repr(saved) and "access-2" not in repr(saved)
        # The durable commit switched synchronous to FULL and back to NORMAL (1).
        assert (await store._read("PRAGMA synchronous"))[0][0] == 1
        assert await store.tokens("other") is None
    finally:
        await store.close()
