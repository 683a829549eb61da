"""The contract model's pure pieces: standard windows, history walkers, OAuth2 declaration."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from apigetter.contract import (
    Api,
    BeforeWalk,
    Context,
    CursorWalk,
    Endpoint,
    OAuth2Refresh,
    Page,
    PageWalk,
    Since,
    WindowWalk,
    moment_of,
    stamp,
)

NOW = datetime(2026, 11, 27, 6, 30, tzinfo=UTC)
LA = ZoneInfo("America/Los_Angeles")


def ctx(
    last: datetime | None = None, origin: date = date(2026, 1, 1), tz: ZoneInfo = LA
) -> Context:
    return Context(now=NOW, tz=tz, origin_date=origin, last_success=last, env={})


def page(items: list[Any], body: Any = None) -> Page:
    return Page("https://x.invalid/a", {}, 200, body if body is not None else items, items, {})


def test_since_first_run_goes_back_first_then_resumes_with_overlap() -> None:
    window = Since("after", fmt="epoch", first=timedelta(days=14), overlap=timedelta(days=7))
    assert window(ctx()) == {"after": str(int((NOW - timedelta(days=14)).timestamp()))}
    last = NOW - timedelta(hours=6)
    assert window(ctx(last)) == {"after": str(int((last - timedelta(days=7)).timestamp()))}
    # Without ``first`` the first run starts at the origin, never before it.
    assert Since("since")(ctx(origin=date(2026, 11, 1))) == {"since": "2026-11-01T07:00:00Z"}
    assert Since("since", first=timedelta(days=90))(ctx(origin=date(2026, 11, 1)))["since"] == (
        "2026-11-01T07:00:00Z"
    )


def test_since_date_and_datetime_windows_are_local() -> None:
    days = Since("start_date", fmt="date", end_param="end_date", first=timedelta(days=30))
    # 06:30 UTC is still the 26th in Los Angeles; the end is tomorrow there.
    assert days(ctx()) == {"start_date": "2026-10-27", "end_date": "2026-11-27"}
    times = Since(
        "start_datetime",
        fmt="datetime",
        end_param="end_datetime",
        first=timedelta(days=3),
        max_span=timedelta(days=30),
    )
    assert times(ctx()) == {
        "start_datetime": "2026-11-23T22:30:00-08:00",
        "end_datetime": "2026-11-26T22:30:00-08:00",
    }
    long_ago = ctx(NOW - timedelta(days=90))
    assert times(long_ago)["start_datetime"] == "2026-10-27T23:30:00-07:00"  # capped, DST


def test_stamp_formats() -> None:
    assert stamp(NOW, "iso", LA) == "2026-11-27T06:30:00Z"
    assert stamp(NOW, "epoch", LA) == str(int(NOW.timestamp()))
    assert stamp(NOW, "date", ZoneInfo("Asia/Tokyo")) == "2026-11-27"
    assert stamp(NOW, "date", LA) == "2026-11-26"


def test_page_walk_stops_at_a_short_page_or_the_origin() -> None:
    walk = PageWalk(start_page=2, size=2, date_field="at")
    recent = [{"at": "2026-11-20T00:00:00Z"}, {"at": "2026-11-19T00:00:00Z"}]
    assert walk.advance(ctx(), 2, [page(recent)]) == 3
    assert walk.advance(ctx(), 2, [page(recent[:1])]) is None
    old = [{"at": "2026-11-20T00:00:00Z"}, {"at": "2025-12-31T00:00:00Z"}]
    assert walk.advance(ctx(), 2, [page(old)]) is None


def test_cursor_walk_follows_the_body_cursor_until_it_is_gone() -> None:
    walk = CursorWalk(
        param="after", cursor_field="data.after", date_field="t", extra={"limit": 100}
    )
    assert walk.start(ctx()) == ""
    assert walk.params(ctx(), "") == {"limit": "100"}
    assert walk.params(ctx(), "t1_b") == {"limit": "100", "after": "t1_b"}
    items = [{"t": NOW.timestamp() - 60}]
    assert walk.advance(ctx(), "", [page(items, {"data": {"after": "t1_c"}})]) == "t1_c"
    assert walk.advance(ctx(), "t1_c", [page(items, {"data": {"after": None}})]) is None
    assert walk.advance(ctx(), "t1_c", [page(items, {"data": {"after": "t1_c"}})]) is None
    assert walk.advance(ctx(), "t1_c", [page([], {"data": {"after": "t1_d"}})]) is None
    old = [{"t": datetime(2025, 6, 1, tzinfo=UTC).timestamp()}]
    assert walk.advance(ctx(), "t1_c", [page(old, {"data": {"after": "t1_d"}})]) is None


def test_before_walk_moves_to_the_oldest_item_and_ends() -> None:
    walk = BeforeWalk(date_field="start_date", size=2, extra={"include": "x"})
    start = walk.start(ctx())
    assert start == str(int(NOW.timestamp()))
    assert walk.params(ctx(), start) == {"include": "x", "before": start, "per_page": "2"}
    items = [{"start_date": "2026-11-20T08:00:00Z"}, {"start_date": "2026-11-18T07:00:00Z"}]
    oldest = str(int(datetime(2026, 11, 18, 7, tzinfo=UTC).timestamp()))
    assert walk.advance(ctx(), start, [page(items)]) == oldest
    assert walk.advance(ctx(), start, [page(items[:1])]) is None  # short page: the end
    assert walk.advance(ctx(origin=date(2026, 11, 19)), start, [page(items)]) is None


def test_window_walk_in_local_datetimes_reaches_origin_and_ends() -> None:
    walk = WindowWalk(days=10, start_param="s", end_param="e", datetimes=True)
    here = ctx(origin=date(2026, 11, 10))
    cursor = walk.start(here)
    assert cursor == "2026-11-26"
    assert walk.params(here, cursor) == {
        "s": "2026-11-17T00:00:00-08:00",
        "e": "2026-11-27T00:00:00-08:00",
    }
    cursor = walk.advance(here, cursor, [])
    assert walk.params(here, cursor)["s"] == "2026-11-10T00:00:00-08:00"  # clipped at origin
    assert walk.advance(here, cursor, []) is None


def test_moment_of_reads_iso_epoch_and_local_dates() -> None:
    assert moment_of("2026-11-27T06:30:00Z", LA) == NOW
    assert moment_of(NOW.timestamp(), LA) == NOW
    assert moment_of("2026-11-27", LA) == datetime(2026, 11, 27, tzinfo=LA)
    assert moment_of("garbage", LA) is None
    assert moment_of(True, LA) is None


OAUTH = OAuth2Refresh(
    token_url="oauth/token",
    client_id="X_CLIENT_ID",
    client_secret="X_CLIENT_SECRET",
    refresh_token="X_REFRESH_TOKEN",
    access_token="X_TOKEN",
)


def test_oauth2_needs_client_credentials_unless_a_static_token_is_set() -> None:
    api = Api("x", "https://x.invalid", (Endpoint("me", "users/{X_USER}"),), auth=OAUTH)
    assert api.missing_env({}) == ["X_CLIENT_ID", "X_CLIENT_SECRET", "X_USER"]
    assert api.missing_env({"X_CLIENT_ID": "a", "X_CLIENT_SECRET": "b", "X_USER": "u"}) == []
    assert api.missing_env({"X_TOKEN": "t0k3n!", "X_USER": "u"}) == []  # no refresh needed
    assert OAUTH.headers({"X_TOKEN": "t0k3n!"}) == {"Authorization": "Bearer t0k3n!"}
    assert OAUTH.headers({}) == {}  # the engine adds the exchanged token
    assert set(OAUTH.secret_env()) == {
        "X_CLIENT_ID",
        "X_CLIENT_SECRET",
        "X_REFRESH_TOKEN",
        "X_TOKEN",
    }


@pytest.mark.parametrize(
    ("api", "problem"),
    [
        (
            Api("x", "https://x.invalid", (Endpoint("a", "a", id_key="id"),)),
            "id_key needs day_key",
        ),
        (
            Api("x", "https://x.invalid", (Endpoint("a", "a", params=Since("s", fmt="unix")),)),
            "unknown time format 'unix'",
        ),
        (
            Api(
                "x",
                "https://x.invalid",
                (Endpoint("a", "a"),),
                auth=OAuth2Refresh("t", "I", "S", "R", client_auth="header"),
            ),
            "client_auth must be one of body, basic",
        ),
        (
            Api("x", "https://x.invalid", (Endpoint("a", "a", history=WindowWalk(days=0)),)),
            "WindowWalk days must be at least 1",
        ),
    ],
)
def test_problems_name_what_is_wrong(api: Api, problem: str) -> None:
    assert any(problem in p for p in api.problems()), api.problems()


def test_warnings_flag_shrinking_day_files_and_missing_limits() -> None:
    api = Api("x", "https://x.invalid", (Endpoint("a", "a", day_key="at"),))
    assert api.problems() == []
    warnings = " ".join(api.warnings())
    assert "without id_key" in warnings and "no rate limit" in warnings
