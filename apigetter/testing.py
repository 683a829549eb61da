"""Test a contract end to end against a fixture server, in a few lines of pytest.

::

    from apigetter.testing import run_end_to_end

    async def test_weather(tmp_path):
        result = await run_end_to_end(
            "contracts/weather.py", weather_app(), tmp_path, env={"WEATHER_TOKEN": "t0ken-x"}
        )
        assert len(result.day_items("readings")) == 96

``run_end_to_end`` validates the contract, serves the aiohttp ``app`` on 127.0.0.1, points
the contract's base URL at it and runs it as cron would, with a fake clock and a real
store in ``home``: a standard run, then one run per history chunk until every walk has
ended, then a rerun a week later that must write nothing. Each step asserts what it
promises (exit code 0, something written, walks that end, nothing new on the rerun) and
fails with the reason. The result holds every run's report, every request the app saw,
and the archive as it stands.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from apigetter.config import Settings
from apigetter.contract import Api
from apigetter.loader import load_contracts, load_file
from apigetter.runner import RunReport, run
from apigetter.store import Store

WEEK = 7 * 86400.0


def _require(condition: object, message: str) -> None:
    """Fail the calling test with ``message`` (an explicit raise survives ``python -O``)."""
    if not condition:
        raise AssertionError(message)


class FakeClock:
    """A wall clock that moves only when told to."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += seconds


@dataclass(frozen=True)
class Request:
    """One request the fixture server saw."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class EndToEnd:
    """What ``run_end_to_end`` did: the runs, the requests, and the archive it left."""

    api: Api
    settings: Settings
    reports: list[RunReport] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    walk_runs: int = 0  # runs it took every history walk to end
    archive: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> key -> data

    def latest(self, name: str) -> dict[str, Any]:
        """The latest archived content per key (day, entity id, or "" for a snapshot)."""
        return self.archive.get(name, {})

    def day_items(self, name: str) -> list[Any]:
        """Every item in the endpoint's latest day files."""
        return [item for rows in self.latest(name).values() for item in rows]

    def files(self, name: str | None = None) -> list[Path]:
        """Archived files, of one endpoint or child if named."""
        root = self.settings.data_dir / self.api.name
        if name:
            root = root / name
        return sorted(p for p in root.rglob("*.json") if ".staging" not in p.parts)

    def assert_every_endpoint_archived(self) -> None:
        """Every endpoint and child of the contract wrote something."""
        names = [n for ep in self.api.endpoints for n in (ep.name, *(c.name for c in ep.children))]
        empty = [name for name in names if not self.latest(name)]
        _require(not empty, f"{self.api.name}: nothing archived for {', '.join(empty)}")


def _recorder(requests: list[Request]) -> Middleware:
    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        requests.append(
            Request(request.method, request.path, dict(request.query), dict(request.headers))
        )
        return await handler(request)

    return record


def _contract(contract: str | Path) -> tuple[Api, tuple[Path, ...]]:
    """A contract file, or the name of a bundled contract; and the extra dirs to load."""
    path = Path(contract)
    if path.suffix == ".py":
        return load_file(path), (path,)
    loaded = load_contracts()
    _require(str(contract) in loaded.apis, f"no bundled contract named {contract!r}")
    return loaded.apis[str(contract)], ()


async def _walking(store: Store, api: str) -> list[str]:
    return [e.endpoint for e in await store.entries([api]) if e.kind == "historic"]


async def run_end_to_end(
    contract: str | Path,
    app: web.Application,
    home: Path,
    *,
    env: Mapping[str, str] | Callable[[str], Mapping[str, str]] | None = None,
    timezone: str = "UTC",
    origin_date: date = date(2010, 1, 1),
    max_runs: int = 200,
    clock: FakeClock | None = None,
) -> EndToEnd:
    """Run ``contract`` against ``app`` as cron would, asserting each step; see the module.

    ``env`` holds the contract's variables; the base URL override pointing at the app is
    added. A callable gets the app's root URL and returns the whole environment (for a
    server that hosts several APIs, such as the sandbox). Nothing comes from ``os.environ``.
    """
    from apigetter.sandbox import start

    api, extra = _contract(contract)
    _require(not api.problems(), f"{api.name}: {'; '.join(api.problems())}")
    requests: list[Request] = []
    app.middlewares.append(_recorder(requests))
    server, root = await start(app)
    try:
        own = {api.base_url_var: root}
        environ = dict(env(root)) if callable(env) else {**own, **(env or {})}
        missing = api.missing_env(environ)
        _require(not missing, f"{api.name}: missing {', '.join(missing)}")
        settings = Settings(
            home=home,
            env=environ,
            timezone=timezone,
            origin_date=origin_date,
            contracts=extra,
            retry_backoff=0.05,
        )
        result = EndToEnd(api, settings, requests=requests)
        clock = clock or FakeClock()
        await _exercise(result, clock, max_runs)
    finally:
        await server.cleanup()
    return result


async def _exercise(result: EndToEnd, clock: FakeClock, max_runs: int) -> None:
    api, settings = result.api, result.settings

    async def once() -> RunReport:
        report = await run(settings, only=[api.name], clock=clock)
        result.reports.append(report)
        mine = report.apis.get(api.name)
        why = (mine.errors or mine.note) if mine else report.status
        _require(mine and mine.state == "ok", f"{api.name} run {len(result.reports)}: {why}")
        return report

    first = await once()
    _require(first.apis[api.name].written > 0, f"{api.name}: the first run wrote nothing")
    pauses = [ep.history.pause for ep in api.endpoints if ep.history is not None]
    step = max(pauses, default=0.0) + 1.0
    store = await Store.open(settings.store_path)
    try:
        while walking := await _walking(store, api.name):
            _require(
                result.walk_runs < max_runs,
                f"{api.name}: history walks of {', '.join(walking)} did not end "
                f"within {max_runs} runs",
            )
            clock.advance(step)
            await once()
            result.walk_runs += 1
        before = result.files()
        every = max(ep.every for ep in api.endpoints)
        clock.advance(max(WEEK, every) + step)
        again = (await once()).apis[api.name]
        _require(
            again.written == 0 and result.files() == before,
            f"{api.name}: a rerun with nothing new upstream wrote {again.written} files",
        )
        _require(not await _walking(store, api.name), f"{api.name}: a finished walk restarted")
        names = [n for ep in api.endpoints for n in (ep.name, *(c.name for c in ep.children))]
        for (name, key), (_, path) in (await store.latest_files(api.name, names)).items():
            data = orjson.loads((settings.data_dir / path).read_bytes())
            result.archive.setdefault(name, {})[key] = data
    finally:
        await store.close()
