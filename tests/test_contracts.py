"""Every bundled contract validates and runs end to end against the sandbox.

Each run goes through ``apigetter.testing.run_end_to_end`` (a standard run, every history
walk to its end, a rerun a week later that writes nothing); then a per-provider check
compares the archive with everything the sandbox holds, so a lost page shows up.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from apigetter import sandbox
from apigetter.config import Settings, load_settings
from apigetter.loader import load_contracts
from apigetter.runner import run
from apigetter.testing import EndToEnd, FakeClock, run_end_to_end

BUNDLED = load_contracts()
NOW = datetime.now(UTC).replace(microsecond=0)
# Before every sandbox history except Reddit's (two years), whose walk must stop here.
ORIGIN = (NOW - timedelta(days=400)).date()


def check_github(result: EndToEnd, data: sandbox.Sandbox) -> None:
    assert len(result.latest("starred")[""]) == len(data.gh["stars"]) == 240
    assert len(result.latest("followers")[""]) == len(data.gh["followers"]) == 45
    since = f"{ORIGIN}T00:00:00Z"  # the first run asks for gists updated since origin_date
    recent = {g["id"] for g in data.gh["gists"] if g["updated_at"] >= since}
    assert {g["id"] for g in result.day_items("gists")} == recent
    events = result.day_items("events")
    assert sorted(e["id"] for e in events) == sorted(e["id"] for e in data.gh["events"][:300])


def check_strava(result: EndToEnd, data: sandbox.Sandbox) -> None:
    listed = {summary["id"] for _, summary in data.st["listing"]}
    assert {a["id"] for a in result.day_items("activities")} == listed
    assert (
        set(result.latest("activity")) == set(result.latest("streams")) == {str(i) for i in listed}
    )
    assert all("latlng" in s or "time" in s for s in result.latest("streams").values())


def check_oura(result: EndToEnd, data: sandbox.Sandbox) -> None:
    for name, documents in data.oura.items():
        assert {d["id"] for d in result.day_items(name)} == {d["id"] for d in documents}, name
    samples = {s["timestamp"] for s in result.day_items("heartrate")}
    first = NOW - timedelta(days=120)
    assert len(samples) >= 119 * 288  # every 5-minute sample of the sandbox's 120 days
    assert all(datetime.fromisoformat(t) >= first - timedelta(minutes=5) for t in samples)


def check_reddit(result: EndToEnd, data: sandbox.Sandbox) -> None:
    origin = datetime.combine(ORIGIN, datetime.min.time(), UTC).timestamp()
    for kind in ("comments", "submitted"):
        archived = {c["data"]["name"] for c in result.day_items(kind)}
        recent = {item["name"] for item in data.rd[kind] if item["created_utc"] >= origin}
        assert recent <= archived, kind  # the walk went back at least to origin_date...
        assert len(archived) < len(data.rd["comments"]) or kind == "submitted"  # ...and stopped
    assert result.latest("karma")[""]["kind"] == "KarmaList"


def check_hackernews(result: EndToEnd, data: sandbox.Sandbox) -> None:
    (profile,) = data.hn["users"].values()
    alive = {str(i) for i in profile["submitted"] if data.hn["items"][i] is not None}
    assert set(result.latest("items")) == alive


CHECKS: dict[str, Callable[[EndToEnd, sandbox.Sandbox], None]] = {
    "github": check_github,
    "strava": check_strava,
    "oura": check_oura,
    "reddit": check_reddit,
    "hackernews": check_hackernews,
}


def test_bundled_contracts_load_cleanly() -> None:
    assert not BUNDLED.errors
    assert set(BUNDLED.apis) == set(CHECKS)
    for api in BUNDLED.apis.values():
        assert api.problems() == [] and api.warnings() == [], api.name
        for ep in api.endpoints:
            assert not ep.day_key or ep.id_key, f"{api.name}/{ep.name}: day files could shrink"


@pytest.mark.parametrize("name", sorted(BUNDLED.apis))
async def test_contract_end_to_end(tmp_path: Path, name: str) -> None:
    app = sandbox.make_app(now=NOW)
    result = await run_end_to_end(
        name,
        app,
        tmp_path,
        env=sandbox.environ,
        origin_date=ORIGIN,
        clock=FakeClock(NOW.timestamp()),
    )
    result.assert_every_endpoint_archived()
    CHECKS[name](result, app[sandbox.DATA])
    token_requests = [r for r in result.requests if r.method == "POST"]
    runs_with_requests = sum(1 for r in result.reports if r.apis[name].requests)
    assert len(token_requests) <= runs_with_requests  # at most one exchange per run


@dataclass
class Sandboxed:
    app: web.Application
    settings: Settings

    def hits(self, api: str) -> list[sandbox.Hit]:
        return [h for h in self.app[sandbox.REQUESTS] if h.api == api]

    def files(self, *parts: str) -> list[Path]:
        root = self.settings.data_dir.joinpath(*parts)
        return sorted(p for p in root.rglob("*.json") if ".staging" not in p.parts)

    def historic_entries(self) -> int:
        with sqlite3.connect(self.settings.store_path) as db:
            return int(
                db.execute("SELECT COUNT(*) FROM queue WHERE kind = 'historic'").fetchone()[0]
            )


@pytest.fixture
async def sandboxed(tmp_path: Path) -> AsyncIterator[Sandboxed]:
    app = sandbox.make_app(now=NOW)
    server, root = await sandbox.start(app)
    try:
        yield Sandboxed(app, load_settings(tmp_path, environ=sandbox.environ(root)))
    finally:
        await server.cleanup()


async def test_github_history_walks_to_the_event_limit(sandboxed: Sandboxed) -> None:
    clock = FakeClock(NOW.timestamp())
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
    days = {p.name.split("--")[0] for p in sandboxed.files("github", "events")}
    assert len(days) >= 10


async def test_github_sends_one_request_at_a_time(sandboxed: Sandboxed) -> None:
    report = await run(sandboxed.settings, only=["github"])
    assert report.exit_code == 0
    hits = sorted(sandboxed.hits("github"), key=lambda h: h.at)
    assert len(hits) > 5
    assert all(a.done <= b.at for a, b in itertools.pairwise(hits))


async def test_github_starred_and_followers_keep_every_page(sandboxed: Sandboxed) -> None:
    await run(sandboxed.settings, only=["github"])
    for name, count in (("starred", 240), ("followers", 45)):
        pages = [h for h in sandboxed.hits("github") if h.path.endswith(f"/user/{name}")]
        assert len(pages) == -(-count // 100)
        (snapshot,) = sandboxed.files("github", name)
        assert len(orjson.loads(snapshot.read_bytes())) == count


async def test_hackernews_skips_null_items(sandboxed: Sandboxed) -> None:
    report = await run(sandboxed.settings, only=["hackernews"])
    assert report.exit_code == 0
    items = [h for h in sandboxed.hits("hackernews") if "/item/" in h.path]
    archived = sandboxed.files("hackernews", "items")
    assert len(archived) == len(items) - 1  # the deleted (null) item is nothing to archive


async def test_hackernews_unknown_user_is_nothing_to_archive(sandboxed: Sandboxed) -> None:
    env = {**sandboxed.settings.env, "HACKERNEWS_USERNAME": "nobody-here"}
    settings = load_settings(sandboxed.settings.home, environ=env)
    report = await run(settings, only=["hackernews"])
    assert report.exit_code == 0 and report.apis["hackernews"].written == 0


async def test_reddit_names_itself_and_pages_by_after(sandboxed: Sandboxed) -> None:
    clock = FakeClock(NOW.timestamp())
    for _ in range(5):
        assert (await run(sandboxed.settings, only=["reddit"], clock=clock)).exit_code == 0
        clock.advance(3600)
    hits = sandboxed.hits("reddit")
    user = sandboxed.settings.env["REDDIT_USERNAME"]
    assert all(h.headers["User-Agent"].endswith(f"(by /u/{user})") for h in hits)
    (token,) = [h for h in hits if h.path.endswith("/access_token")][:1]
    assert token.headers["Authorization"].startswith("Basic ")
    comments = [h for h in hits if h.path.endswith("/comments")]
    afters = [h.query.get("after") for h in comments]
    assert afters[0] is None and {"t1_"} == {a[:3] for a in afters if a}
    assert all(h.query["limit"] == "100" for h in comments)
    assert sandboxed.historic_entries() == 0  # both walks ended: cursor gone (2010 origin)
    archived = {
        c["data"]["name"]
        for p in sandboxed.files("reddit", "comments")
        for c in orjson.loads(p.read_bytes())
    }
    assert archived == {c["name"] for c in sandboxed.app[sandbox.DATA].rd["comments"]}


def items_by_day(files: list[Path]) -> dict[str, list[Any]]:
    return {p.name.split("--")[0]: orjson.loads(p.read_bytes()) for p in files}
