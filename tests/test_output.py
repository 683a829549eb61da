"""Archive files: names from hostile data, day keys in time zones, day files never shrink."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from apigetter.contract import day_of
from apigetter.output import Archive, day_outputs, safe_name

UTC = ZoneInfo("UTC")


@pytest.mark.parametrize(
    "hostile",
    ["../../evil", "..", ".", "a/b\\c", "nul\x00byte", "CON", "lpt1.txt", "x" * 300, "", "é✓"],
)
def test_safe_names_stay_one_plain_segment(hostile: str) -> None:
    name = safe_name(hostile)
    assert name and "/" not in name and "\\" not in name and "\x00" not in name
    assert not name.startswith(".") and len(name) <= 100
    assert name.lower() not in ("con", "lpt1.txt")


def test_long_names_stay_distinct() -> None:
    assert safe_name("x" * 300 + "a") != safe_name("x" * 300 + "b")


@pytest.mark.parametrize(
    ("zone", "day"),
    [("UTC", "2026-11-27"), ("America/Los_Angeles", "2026-11-26"), ("Asia/Tokyo", "2026-11-27")],
)
def test_day_keys_follow_the_configured_zone(zone: str, day: str) -> None:
    # 03:30 UTC is still the evening before in Los Angeles, and midday in Tokyo.
    assert day_of("2026-11-27T03:30:00Z", ZoneInfo(zone)).isoformat() == day  # type: ignore[union-attr]
    assert day_of(1795750200, ZoneInfo(zone)).isoformat() == day  # type: ignore[union-attr]
    # A bare date is that date everywhere; a local time without offset is taken as is.
    assert day_of("2026-11-27", ZoneInfo(zone)).isoformat() == "2026-11-27"  # type: ignore[union-attr]
    assert day_of("2026-11-27T23:59:00", ZoneInfo(zone)).isoformat() == "2026-11-27"  # type: ignore[union-attr]


def test_unreadable_days_are_kept_not_dropped() -> None:
    items = [{"id": 1, "at": "garbage"}, {"id": 2}, {"id": 3, "at": "2026-11-27T01:00:00Z"}]
    outputs = day_outputs("api", "ep", items, "at", UTC, "S")
    assert {o.key: len(orjson.loads(o.content)) for o in outputs} == {
        "2026-11-27": 1,
        "undated": 2,
    }


def test_a_partial_day_never_replaces_a_fuller_file(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    full = [{"id": n, "at": f"2026-11-27T{n:02d}:00:00Z", "v": 1} for n in range(1, 6)]
    (first,) = day_outputs("api", "ep", full, "at", UTC, "S1", "id")
    (row,) = archive.stage(1, [first], {})
    archive.place([(row.staged, row.path)])
    latest = {("ep", row.key): (row.hash, row.path)}
    # A later window covers only part of the day, with one item changed upstream.
    partial = [{"id": 2, "at": "2026-11-27T02:00:00Z", "v": 2}]
    (second,) = day_outputs(
        "api", "ep", partial, "at", UTC, "S2", "id", lambda day: archive.read_list(row.path)
    )
    merged = orjson.loads(second.content)
    assert sorted(i["id"] for i in merged) == [1, 2, 3, 4, 5]
    assert next(i for i in merged if i["id"] == 2)["v"] == 2
    # The same items in another order are the same file: nothing new is written.
    (again,) = day_outputs(
        "api", "ep", list(reversed(full)), "at", UTC, "S3", "id", lambda day: full
    )
    assert archive.stage(2, [again], latest) == []
