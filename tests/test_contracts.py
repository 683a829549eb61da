"""Every bundled contract validates and runs end to end against the sandbox."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from apigetter import sandbox
from apigetter.config import Settings, load_settings
from apigetter.loader import load_contracts
from apigetter.runner import run

BUNDLED = load_contracts()


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Sandboxed:
    app: web.Application
    settings: Settings

    def hits(self, api: str) -> list[sandbox.Hit]:
        return [h for h in self.app[sandbox.REQUESTS] if h.api == api]

    def files(self) -> list[Path]:
        return sorted(
            p for p in self.settings.data_dir.rglob("*.json") if ".staging" not in p.parts
        )

    def historic_entries(self) -> int:
        with sqlite3.connect(self.settings.store_path) as db:
            return int(
                db.execute("SELECT COUNT(*) FROM queue WHERE kind = 'historic'").fetchone()[0]
            )


@pytest.fixture
async def sandboxed(tmp_path: Path) -> AsyncIterator[Sandboxed]:
    app = sandbox.make_app()
    server, root = await sandbox.start(app)
    env = dict(sandbox.SANDBOX_ENV)
    for name, url in sandbox.base_urls(root).items():
        env[f"APIGETTER_{name.upper()}_BASE_URL"] = url
    try:
        yield Sandboxed(app, load_settings(tmp_path, environ=env))
    finally:
        await server.cleanup()


def test_bundled_contracts_load_cleanly() -> None:
    assert not BUNDLED.errors
    assert {"github", "hackernews"} <= set(BUNDLED.apis)


@pytest.mark.parametrize("name", sorted(BUNDLED.apis))
async def test_contract_end_to_end(sandboxed: Sandboxed, name: str) -> None:
    clock = Clock()
    first = await run(sandboxed.settings, only=[name], clock=clock)
    assert first.exit_code == 0, first.apis[name].errors
    assert first.apis[name].written > 0
    # Walk every history to its end: one chunk per run, each after the walker's pause.
    for _ in range(40):
        if not sandboxed.historic_entries():
            break
        clock.advance(3600)
        assert (await run(sandboxed.settings, only=[name], clock=clock)).exit_code == 0
    assert sandboxed.historic_entries() == 0
    # A week later everything is due again, upstream has not changed: nothing new.
    files = sandboxed.files()
    clock.advance(7 * 86400)
    again = await run(sandboxed.settings, only=[name], clock=clock)
    assert again.exit_code == 0 and again.apis[name].written == 0
    assert sandboxed.files() == files
    assert sandboxed.historic_entries() == 0  # a finished walk never restarts


async def test_github_history_walks_to_the_event_limit(sandboxed: Sandboxed) -> None:
    clock = Clock()
    for _ in range(10):
        await run(sandboxed.settings, only=["github"], clock=clock)
        clock.advance(3600)
    pages = [
        int(h.query.get("page", "1"))
        for h in sandboxed.hits("github")
        if h.path.endswith("/events")
    ]
    assert max(pages) == 4  # 300 events at 100 a page: page 4 answers 422 and ends the walk
    assert sandboxed.historic_entries() == 0
    with sqlite3.connect(sandboxed.settings.store_path) as db:
        (done,) = db.execute(
            "SELECT history_done FROM endpoints WHERE api = 'github' AND endpoint = 'events'"
        ).fetchone()
    assert done is not None
    days = {p.name.split("--")[0] for p in sandboxed.files() if p.parent.name == "events"}
    assert len(days) >= 10


async def test_github_starred_keeps_every_page(sandboxed: Sandboxed) -> None:
    await run(sandboxed.settings, only=["github"])
    starred_pages = [h for h in sandboxed.hits("github") if h.path.endswith("/user/starred")]
    assert len(starred_pages) > 1
    import orjson

    (snapshot,) = [p for p in sandboxed.files() if p.parent.name == "starred"]
    assert len(orjson.loads(snapshot.read_bytes())) > 100


async def test_hackernews_skips_null_items(sandboxed: Sandboxed) -> None:
    report = await run(sandboxed.settings, only=["hackernews"])
    assert report.exit_code == 0
    items = [h for h in sandboxed.hits("hackernews") if "/item/" in h.path]
    archived = [p for p in sandboxed.files() if p.parent.name == "items"]
    assert len(archived) == len(items) - 1  # the deleted (null) item is nothing to archive
