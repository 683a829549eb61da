"""Day keys in the configured time zone, the same way in every contract, end to end.

The bundled contracts run against the sandbox with ``timezone`` set in config.toml to a
zone west of UTC, UTC itself, and one east of it; every item must sit in the file of its
own local day, and the same instant must move between days as the zone changes.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from apigetter import sandbox
from apigetter.config import load_settings
from apigetter.contract import day_of, dig
from apigetter.loader import load_contracts
from apigetter.runner import run
from apigetter.testing import FakeClock

ZONES = ("America/Los_Angeles", "UTC", "Asia/Tokyo")
NOW = datetime.now(UTC).replace(microsecond=0)
CONTRACTS = load_contracts().apis
DAY_SPLIT = {
    (api.name, ep.name): ep.day_key
    for api in CONTRACTS.values()
    for ep in api.endpoints
    if ep.day_key
}


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Archive]:
    """One archive per zone, from identical sandbox data at the same moment."""

    async def archive(zone: str) -> Archive:
        # A sandbox per zone: each first run rotates the sandbox's refresh tokens.
        app = sandbox.make_app(now=NOW)
        server, root = await sandbox.start(app)
        try:
            home = tmp_path_factory.mktemp(zone.replace("/", "-"))
            origin = (NOW - timedelta(days=400)).date()
            (home / "config.toml").write_text(f'timezone = "{zone}"\norigin_date = {origin}\n')
            settings = load_settings(home, environ=sandbox.environ(root))
            day_split = sorted({api for api, _ in DAY_SPLIT})
            report = await run(settings, only=day_split, clock=FakeClock(NOW.timestamp()))
            assert report.exit_code == 0, {n: r.errors for n, r in report.apis.items()}
            return Archive(settings.data_dir, app[sandbox.REQUESTS])
        finally:
            await server.cleanup()

    return {zone: asyncio.run(archive(zone)) for zone in ZONES}


class Archive:
    """The day files of one zone's run: (api, endpoint) -> day -> items."""

    def __init__(self, data: Path, hits: list[sandbox.Hit]) -> None:
        self.hits = hits
        self.days: dict[tuple[str, str], dict[str, list[Any]]] = {}
        for (api, endpoint), _ in DAY_SPLIT.items():
            for path in sorted((data / api / endpoint).glob("*.json")):
                day = path.name.split("--")[0]
                self.days.setdefault((api, endpoint), {})[day] = orjson.loads(path.read_bytes())

    def day_of_item(self, key: tuple[str, str], field: str, value: str) -> str:
        """The file day holding the item whose ``field`` is ``value``."""
        found = [
            day
            for day, items in self.days[key].items()
            if any(str(dig(i, field)) == value for i in items)
        ]
        assert len(found) == 1, (key, value, found)
        return found[0]


@pytest.mark.parametrize("zone", ZONES)
def test_every_item_is_in_the_file_of_its_local_day(
    archives: dict[str, Archive], zone: str
) -> None:
    archive, tz = archives[zone], ZoneInfo(zone)
    assert set(archive.days) == set(DAY_SPLIT)  # every day-split endpoint of every contract
    for key, days in archive.days.items():
        for day, items in days.items():
            for item in items:
                assert day_of(dig(item, DAY_SPLIT[key]), tz).isoformat() == day, (key, item)  # type: ignore[union-attr]


def test_the_same_instant_moves_between_days_with_the_zone(
    archives: dict[str, Archive],
) -> None:
    events = archives["UTC"].days[("github", "events")]
    every = [e for items in events.values() for e in items]
    # 00:00-06:59 UTC is the evening before in Los Angeles, the same day in Tokyo;
    # 16:00-23:59 UTC is already the next day in Tokyo.
    early = next(e for e in every if datetime.fromisoformat(e["created_at"]).hour < 7)
    late = next(e for e in every if datetime.fromisoformat(e["created_at"]).hour >= 16)
    expected = {
        (early["id"], "America/Los_Angeles"): -1,
        (early["id"], "UTC"): 0,
        (early["id"], "Asia/Tokyo"): 0,
        (late["id"], "UTC"): 0,
        (late["id"], "Asia/Tokyo"): 1,
    }
    utc_days = {e["id"]: datetime.fromisoformat(e["created_at"]).date() for e in (early, late)}
    for (event, zone), shift in expected.items():
        found = archives[zone].day_of_item(("github", "events"), "id", event)
        assert found == (utc_days[event] + timedelta(days=shift)).isoformat(), (event, zone)
    # Epoch seconds (Reddit) follow the same rule as ISO instants (GitHub, Strava).
    comment = archives["UTC"].days[("reddit", "comments")]
    first = next(iter(next(iter(comment.values()))))
    moment = datetime.fromtimestamp(first["data"]["created_utc"], UTC)
    for zone in ZONES:
        found = archives[zone].day_of_item(
            ("reddit", "comments"), "data.name", first["data"]["name"]
        )
        assert found == moment.astimezone(ZoneInfo(zone)).date().isoformat()


def test_oura_days_stay_put_and_heart_rate_windows_are_local(
    archives: dict[str, Archive],
) -> None:
    # A document's "day" is already a local day: no zone moves it.
    ids = {
        zone: {
            d["id"]: day
            for day, items in archives[zone].days[("oura", "daily_activity")].items()
            for d in items
        }
        for zone in ZONES
    }
    assert ids["UTC"] == ids["America/Los_Angeles"] == ids["Asia/Tokyo"]
    offsets = {"America/Los_Angeles": ("-08:00", "-07:00"), "UTC": ("+00:00",)}
    offsets["Asia/Tokyo"] = ("+09:00",)
    for zone, allowed in offsets.items():
        windows = [h.query for h in archives[zone].hits if h.path.endswith("/heartrate")]
        assert windows
        for query in windows:
            assert query["start_datetime"].endswith(allowed), (zone, query)
