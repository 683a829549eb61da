"""All SQL: the schema, run rows and claims, the queue, endpoint state, files, ledger, events."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
import orjson

from apigetter.config import bundled
from apigetter.errors import StoreError

SCHEMA_VERSION = 2
# MIGRATIONS[v - 1] brings a store from version v to v + 1; a new store gets schema.sql,
# which is always the current schema.
MIGRATIONS: tuple[str, ...] = (
    # 1 -> 2: OAuth2 tokens (#4).
    """
    CREATE TABLE IF NOT EXISTS tokens (
        api           TEXT PRIMARY KEY,
        refresh_token TEXT,
        access_token  TEXT,
        expires_at    REAL,
        updated_at    REAL NOT NULL
    );
    """,
)


def _statements(script: str) -> Iterable[str]:
    """Split a SQL script into statements (executescript would commit our transaction)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            yield statement
            statement = ""


@dataclass(frozen=True)
class Entry:
    """A queue entry: when an endpoint's standard or historic fetch is next due."""

    api: str
    endpoint: str
    kind: str  # standard | historic
    run_after: float
    attempts: int = 0
    cursor: str | int | None = None


@dataclass(frozen=True)
class EndpointState:
    """What the last runs left behind for one endpoint."""

    api: str
    endpoint: str
    last_success: float | None = None
    last_attempt: float | None = None
    last_result: str | None = None
    last_error: str | None = None
    history_chunks: int = 0
    history_done: float | None = None


@dataclass(frozen=True)
class RunRow:
    """One invocation as the store recorded it."""

    id: int
    status: str
    pid: int
    host: str
    apis: list[str]
    started_at: float
    heartbeat_at: float
    finished_at: float | None
    summary: dict[str, Any] | None


@dataclass(frozen=True)
class Claim:
    """The outcome of trying to claim APIs for a run."""

    run_id: int
    claimed: list[str]
    held: dict[str, int]  # api -> run id of the active run that holds it
    abandoned: list[int]  # stale runs this claim marked abandoned


@dataclass(frozen=True)
class FileRow:
    """A written output file: its owner and key, content hash, final path, staging name."""

    endpoint: str  # the endpoint or child name
    key: str
    hash: str
    path: str
    staged: str | None


Latest = dict[tuple[str, str], tuple[str, str]]  # (endpoint, key) -> (hash, path)


@dataclass(frozen=True)
class Tokens:
    """An API's stored OAuth2 tokens (secrets: never log or render them)."""

    api: str
    refresh_token: str | None
    access_token: str | None
    expires_at: float | None

    def __repr__(self) -> str:
        return f"Tokens(api={self.api!r}, expires_at={self.expires_at!r})"


class LostClaim(Exception):
    """Our claim on an API was taken over (our heartbeat stopped): do not commit."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _run_row(row: sqlite3.Row) -> RunRow:
    return RunRow(
        id=row["id"],
        status=row["status"],
        pid=row["pid"],
        host=row["host"],
        apis=orjson.loads(row["apis"]),
        started_at=row["started_at"],
        heartbeat_at=row["heartbeat_at"],
        finished_at=row["finished_at"],
        summary=orjson.loads(row["summary"]) if row["summary"] else None,
    )


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


class Store:
    """The SQLite store, through one connection; every write is one short transaction."""

    def __init__(self, db: aiosqlite.Connection, path: Path, busy_timeout: float = 15.0) -> None:
        self.db = db
        self.path = path
        self.busy_timeout = busy_timeout
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path, busy_timeout: float = 15.0) -> Store:
        """Open (and create, 0600, with the current schema) the store at ``path``."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not path.exists():
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            db = await aiosqlite.connect(path, isolation_level=None, timeout=busy_timeout)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(str(path), f"cannot open: {exc}") from exc
        db.row_factory = sqlite3.Row
        store = cls(db, path, busy_timeout)
        try:
            await store._prepare()
        except BaseException:
            await db.close()
            raise
        return store

    async def _prepare(self) -> None:
        try:
            await self.db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            await self.db.execute("PRAGMA journal_mode = WAL")
            await self.db.execute("PRAGMA synchronous = NORMAL")
            async with self.transaction():
                version = (await self._one("PRAGMA user_version"))[0]
                if version > SCHEMA_VERSION:
                    raise StoreError(str(self.path), f"schema {version} is newer than this code")
                steps = (
                    MIGRATIONS[version - 1 :] if version else (bundled("schema.sql").read_text(),)
                )
                for script in steps:
                    for statement in _statements(script):
                        await self.db.execute(statement)
                await self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            hint = (
                "" if "locked" in str(exc) else "; it may be corrupt: move it aside to start anew"
            )
            raise StoreError(str(self.path), f"{exc}{hint}") from exc

    async def close(self) -> None:
        """Close the connection."""
        await self.db.close()

    @asynccontextmanager
    async def transaction(self, *, durable: bool = False) -> AsyncIterator[None]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``, serialised with this process's other writes.

        ``durable`` commits with ``synchronous = FULL``: the commit survives a power loss,
        not only a process crash (for what cannot be fetched again, such as rotated tokens).
        """
        async with self._lock:
            if durable:
                await self.db.execute("PRAGMA synchronous = FULL")
            try:
                try:
                    await self.db.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as exc:
                    raise StoreError(str(self.path), f"cannot write: {exc}") from exc
                try:
                    yield
                except BaseException:
                    await self.db.execute("ROLLBACK")
                    raise
                try:
                    await self.db.execute("COMMIT")
                except sqlite3.Error as exc:
                    await self.db.execute("ROLLBACK")
                    raise StoreError(str(self.path), f"cannot commit: {exc}") from exc
            finally:
                if durable:
                    await self.db.execute("PRAGMA synchronous = NORMAL")

    async def _one(self, sql: str, args: Iterable[Any] = ()) -> sqlite3.Row:
        async with self.db.execute(sql, tuple(args)) as cur:
            row = await cur.fetchone()
        assert row is not None
        return row

    async def _all(self, sql: str, args: Iterable[Any] = ()) -> list[sqlite3.Row]:
        async with self.db.execute(sql, tuple(args)) as cur:
            return list(await cur.fetchall())

    async def _read(self, sql: str, args: Iterable[Any] = ()) -> list[sqlite3.Row]:
        async with self._lock:
            return await self._all(sql, args)

    # -- runs and claims ---------------------------------------------------------------

    async def claim(
        self, apis: Sequence[str], *, pid: int, host: str, now: float, lease: float
    ) -> Claim:
        """Mark stale runs abandoned, then claim the APIs no active run holds."""
        async with self.transaction():
            abandoned = []
            for row in await self._all(
                "SELECT id, pid, host, heartbeat_at FROM runs WHERE status = 'running'"
            ):
                expired = row["heartbeat_at"] < now - lease
                if expired or (row["host"] == host and not _pid_alive(row["pid"])):
                    abandoned.append(row["id"])
            if abandoned:
                ids = _marks(abandoned)
                await self.db.execute(
                    f"UPDATE runs SET status = 'abandoned', finished_at = ? WHERE id IN ({ids})",
                    (now, *abandoned),
                )
                await self.db.execute(f"DELETE FROM claims WHERE run_id IN ({ids})", abandoned)
            held = {r["api"]: r["run_id"] for r in await self._all("SELECT * FROM claims")}
            mine = [a for a in apis if a not in held]
            cur = await self.db.execute(
                "INSERT INTO runs (status, pid, host, apis, started_at, heartbeat_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                ("running" if mine else "skipped", pid, host, orjson.dumps(mine), now, now),
            )
            run_id = cur.lastrowid
            assert run_id is not None
            if mine:
                await self.db.executemany(
                    "INSERT INTO claims (api, run_id) VALUES (?, ?)", [(a, run_id) for a in mine]
                )
            else:
                await self.db.execute("UPDATE runs SET finished_at = ? WHERE id = ?", (now, run_id))
            for old in abandoned:
                await self._event(run_id, now, None, None, "warning", f"run {old} abandoned")
        return Claim(run_id, mine, {a: r for a, r in held.items() if a in apis}, abandoned)

    async def heartbeat(self, run_id: int, now: float) -> bool:
        """Refresh our heartbeat; False if another run has taken our claim over."""
        async with self.transaction():
            cur = await self.db.execute(
                "UPDATE runs SET heartbeat_at = ? WHERE id = ? AND status = 'running'",
                (now, run_id),
            )
            return cur.rowcount == 1

    async def finish(
        self, run_id: int, status: str, now: float, summary: dict[str, Any] | None = None
    ) -> None:
        """Close our run row and release its claims."""
        async with self.transaction():
            await self.db.execute(
                "UPDATE runs SET status = ?, finished_at = ?, summary = ? "
                "WHERE id = ? AND status = 'running'",
                (status, now, orjson.dumps(summary) if summary else None, run_id),
            )
            await self.db.execute("DELETE FROM claims WHERE run_id = ?", (run_id,))

    async def active_runs(self) -> list[RunRow]:
        """Runs still marked running (their heartbeats tell whether they are alive)."""
        return [
            _run_row(r)
            for r in await self._read("SELECT * FROM runs WHERE status = 'running' ORDER BY id")
        ]

    async def runs(self, limit: int = 20) -> list[RunRow]:
        """The most recent runs, newest first."""
        rows = await self._read("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,))
        return [_run_row(r) for r in rows]

    # -- queue and endpoint state --------------------------------------------------------

    async def entries(self, apis: Sequence[str]) -> list[Entry]:
        """The queue entries of ``apis``."""
        rows = await self._read(
            f"SELECT * FROM queue WHERE api IN ({_marks(apis)})",
            apis,
        )
        return [
            Entry(
                r["api"],
                r["endpoint"],
                r["kind"],
                r["run_after"],
                r["attempts"],
                orjson.loads(r["cursor"]) if r["cursor"] else None,
            )
            for r in rows
        ]

    async def states(self, apis: Sequence[str]) -> dict[tuple[str, str], EndpointState]:
        """Endpoint state of ``apis`` by (api, endpoint)."""
        rows = await self._read(
            f"SELECT * FROM endpoints WHERE api IN ({_marks(apis)})",
            apis,
        )
        return {(r["api"], r["endpoint"]): EndpointState(**dict(r)) for r in rows}

    async def remove_entries(self, run_id: int, entries: Sequence[Entry], now: float) -> None:
        """Drop entries whose endpoint no contract has any more, logging each."""
        async with self.transaction():
            for e in entries:
                await self.db.execute(
                    "DELETE FROM queue WHERE api = ? AND endpoint = ? AND kind = ?",
                    (e.api, e.endpoint, e.kind),
                )
                await self._event(
                    run_id,
                    now,
                    e.api,
                    e.endpoint,
                    "info",
                    f"{e.kind} entry removed: endpoint no longer in the contract",
                )

    async def _put_entry(self, entry: Entry) -> None:
        await self.db.execute(
            "INSERT OR REPLACE INTO queue (api, endpoint, kind, run_after, attempts, cursor) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                entry.api,
                entry.endpoint,
                entry.kind,
                entry.run_after,
                entry.attempts,
                None if entry.cursor is None else orjson.dumps(entry.cursor),
            ),
        )

    async def _check_claim(self, run_id: int, api: str) -> None:
        rows = await self._all("SELECT run_id FROM claims WHERE api = ?", (api,))
        if not rows or rows[0]["run_id"] != run_id:
            raise LostClaim(api)

    async def commit_success(
        self,
        run_id: int,
        done: Entry,
        next_entry: Entry | None,
        files: Sequence[FileRow],
        sent: Sequence[float],
        now: float,
        history_done: bool = False,
    ) -> None:
        """Record written files, advance the entry (None: delete it) and log the requests."""
        async with self.transaction():
            await self._check_claim(run_id, done.api)
            await self.db.executemany(
                "INSERT OR REPLACE INTO files (api, endpoint, key, hash, path, staged, run_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(done.api, f.endpoint, f.key, f.hash, f.path, f.staged, run_id) for f in files],
            )
            await self.db.execute(
                "DELETE FROM queue WHERE api = ? AND endpoint = ? AND kind = ?",
                (done.api, done.endpoint, done.kind),
            )
            if next_entry is not None:
                await self._put_entry(next_entry)
            historic = done.kind == "historic"
            await self.db.execute(
                "INSERT INTO endpoints (api, endpoint, last_success, last_attempt, last_result, "
                "history_chunks, history_done) VALUES (?, ?, ?, ?, 'ok', ?, ?) "
                "ON CONFLICT (api, endpoint) DO UPDATE SET "
                "last_success = CASE WHEN ? THEN last_success ELSE excluded.last_success END, "
                "last_attempt = excluded.last_attempt, last_result = 'ok', last_error = NULL, "
                "history_chunks = history_chunks + excluded.history_chunks, "
                "history_done = COALESCE(excluded.history_done, history_done)",
                (
                    done.api,
                    done.endpoint,
                    None if historic else now,
                    now,
                    int(historic),
                    now if history_done else None,
                    historic,
                ),
            )
            await self._ledger(done.api, sent)

    async def commit_failure(
        self,
        run_id: int,
        entry: Entry,
        result: str,
        error: str,
        sent: Sequence[float],
        now: float,
    ) -> None:
        """Keep the entry due later (backoff already in ``entry``) and record why."""
        async with self.transaction():
            await self._check_claim(run_id, entry.api)
            await self._put_entry(entry)
            await self.db.execute(
                "INSERT INTO endpoints (api, endpoint, last_attempt, last_result, last_error) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (api, endpoint) DO UPDATE SET "
                "last_attempt = excluded.last_attempt, last_result = excluded.last_result, "
                "last_error = excluded.last_error",
                (entry.api, entry.endpoint, now, result, error),
            )
            await self._ledger(entry.api, sent)
            await self._event(run_id, now, entry.api, entry.endpoint, "error", error)

    async def start_history(self, entries: Sequence[Entry]) -> None:
        """Create historic entries for endpoints whose walk has not started."""
        async with self.transaction():
            for entry in entries:
                await self.db.execute(
                    "INSERT OR IGNORE INTO queue (api, endpoint, kind, run_after, attempts, cursor)"
                    " VALUES (?, ?, ?, ?, 0, ?)",
                    (
                        entry.api,
                        entry.endpoint,
                        entry.kind,
                        entry.run_after,
                        orjson.dumps(entry.cursor),
                    ),
                )

    # -- files -------------------------------------------------------------------------

    async def latest_files(self, api: str, endpoints: Sequence[str]) -> Latest:
        """(content hash, path) of the latest file per (endpoint, key) of these endpoints."""
        rows = await self._read(
            f"SELECT endpoint, key, hash, path FROM files "
            f"WHERE api = ? AND endpoint IN ({_marks(endpoints)})",
            (api, *endpoints),
        )
        return {(r["endpoint"], r["key"]): (r["hash"], r["path"]) for r in rows}

    async def staged_files(self, apis: Sequence[str] | None) -> list[tuple[str, str]]:
        """(staged name, final path) of files committed but not yet in place (None: all)."""
        rows = await self._read("SELECT api, staged, path FROM files WHERE staged IS NOT NULL")
        return [(r["staged"], r["path"]) for r in rows if apis is None or r["api"] in apis]

    async def placed(self, staged: Sequence[str]) -> None:
        """Note that these staged files are now in place."""
        async with self.transaction():
            await self.db.executemany(
                "UPDATE files SET staged = NULL WHERE staged = ?", [(s,) for s in staged]
            )

    # -- OAuth2 tokens -------------------------------------------------------------------

    async def tokens(self, api: str) -> Tokens | None:
        """The stored tokens of ``api``, if any."""
        rows = await self._read("SELECT * FROM tokens WHERE api = ?", (api,))
        if not rows:
            return None
        r = rows[0]
        return Tokens(api, r["refresh_token"], r["access_token"], r["expires_at"])

    async def apis_with_refresh_token(self) -> set[str]:
        """APIs that have a stored refresh token."""
        rows = await self._read("SELECT api FROM tokens WHERE refresh_token IS NOT NULL")
        return {r["api"] for r in rows}

    async def save_tokens(self, tokens: Tokens, now: float) -> None:
        """Store ``tokens`` durably; a None refresh token keeps the stored one."""
        async with self.transaction(durable=True):
            await self.db.execute(
                "INSERT INTO tokens (api, refresh_token, access_token, expires_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (api) DO UPDATE SET "
                "refresh_token = COALESCE(excluded.refresh_token, refresh_token), "
                "access_token = excluded.access_token, expires_at = excluded.expires_at, "
                "updated_at = excluded.updated_at",
                (tokens.api, tokens.refresh_token, tokens.access_token, tokens.expires_at, now),
            )

    # -- ledger and events ---------------------------------------------------------------

    async def _ledger(self, api: str, sent: Sequence[float]) -> None:
        await self.db.executemany(
            "INSERT INTO ledger (api, at) VALUES (?, ?)", [(api, t) for t in sent]
        )

    async def sent_since(self, api: str, since: Sequence[float]) -> list[int]:
        """Requests to ``api`` recorded after each of ``since`` (one per declared window)."""
        counts = []
        for start in since:
            row = await self._read(
                "SELECT COUNT(*) AS n FROM ledger WHERE api = ? AND at > ?", (api, start)
            )
            counts.append(int(row[0]["n"]))
        return counts

    async def prune_ledger(self, api: str, before: float) -> None:
        """Forget requests older than the API's longest window."""
        async with self.transaction():
            await self.db.execute("DELETE FROM ledger WHERE api = ? AND at < ?", (api, before))

    async def _event(
        self,
        run_id: int | None,
        now: float,
        api: str | None,
        endpoint: str | None,
        level: str,
        message: str,
    ) -> None:
        await self.db.execute(
            "INSERT INTO events (run_id, at, api, endpoint, level, message) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, now, api, endpoint, level, message),
        )
