"""The offline sandbox behaves like the five providers it fakes, over real HTTP."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from apigetter.sandbox import (
    DEFAULT_NOW,
    FAULTS,
    OURA_PERSONAL_TOKEN,
    REQUESTS,
    SANDBOX_ENV,
    Fault,
    base_urls,
    make_app,
    start,
)

GITHUB = {"Authorization": f"Bearer {SANDBOX_ENV['GITHUB_TOKEN']}"}
OURA = {"Authorization": f"Bearer {OURA_PERSONAL_TOKEN}"}


@pytest.fixture
def app() -> web.Application:
    """A fresh sandbox app with the default seed and clock."""
    return make_app()


@pytest.fixture
async def urls(app: web.Application) -> AsyncIterator[dict[str, str]]:
    """The app served on a free local port, as base URLs per API."""
    runner, root = await start(app)
    yield base_urls(root)
    await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client that names itself, as Reddit requires."""
    async with aiohttp.ClientSession(headers={"User-Agent": "apigetter-tests/1"}) as session:
        yield session


async def fetch(
    http: aiohttp.ClientSession, url: str, **kwargs: Any
) -> tuple[int, Any, aiohttp.ClientResponse]:
    """GET ``url``; return the status, the JSON body (None when empty) and the response."""
    async with http.get(url, **kwargs) as response:
        body = await response.read()
        return response.status, (await response.json() if body else None), response


async def test_github_requires_a_token(urls: dict[str, str], http: aiohttp.ClientSession) -> None:
    status, body, _ = await fetch(http, f"{urls['github']}/users/{SANDBOX_ENV['GITHUB_USERNAME']}")
    assert status == 401
    assert body["message"] == "Requires authentication"
    status, body, _ = await fetch(
        http, f"{urls['github']}/user/starred", headers={"Authorization": "token wrong"}
    )
    assert (status, body["message"]) == (401, "Bad credentials")


async def test_github_events_link_chain_ends_at_300_then_422(
    urls: dict[str, str], http: aiohttp.ClientSession
) -> None:
    first = f"{urls['github']}/users/{SANDBOX_ENV['GITHUB_USERNAME']}/events?per_page=100"
    events: list[dict[str, Any]] = []
    url: str | None = first
    while url:
        assert url.startswith(urls["github"])  # absolute, on the host that was asked
        status, page, response = await fetch(http, url, headers=GITHUB)
        assert status == 200
        events += page
        assert response.headers["X-RateLimit-Limit"] == "5000"
        url = str(response.links["next"]["url"]) if "next" in response.links else None
    assert len(events) == len({e["id"] for e in events}) == 300
    stamps = [e["created_at"] for e in events]
    assert stamps == sorted(stamps, reverse=True)
    assert set(events[0]) >= {"id", "type", "actor", "repo", "payload", "public", "created_at"}
    status, body, _ = await fetch(http, f"{first}&page=4", headers=GITHUB)
    assert status == 422
    assert body["message"].startswith("In order to keep the API fast for everyone")


async def test_github_etag_answers_304_without_spending_quota(
    urls: dict[str, str], http: aiohttp.ClientSession
) -> None:
    user = f"{urls['github']}/users/{SANDBOX_ENV['GITHUB_USERNAME']}"
    status, profile, response = await fetch(http, user, headers=GITHUB)
    assert status == 200
    assert profile["login"] == SANDBOX_ENV["GITHUB_USERNAME"]
    etag, used = response.headers["ETag"], int(response.headers["X-RateLimit-Used"])
    assert etag[0] == etag[-1] == '"'
    status, body, response = await fetch(http, user, headers=GITHUB | {"If-None-Match": etag})
    assert (status, body) == (304, None)
    assert int(response.headers["X-RateLimit-Used"]) == used
    _, _, response = await fetch(http, user, headers=GITHUB | {"If-None-Match": '"stale"'})
    assert int(response.headers["X-RateLimit-Used"]) == used + 1


async def test_github_gists_since_filters_by_update_time(
    urls: dict[str, str], http: aiohttp.ClientSession
) -> None:
    _, every, _ = await fetch(http, f"{urls['github']}/gists", headers=GITHUB)
    since = sorted(g["updated_at"] for g in every)[len(every) // 2]
    _, recent, _ = await fetch(
        http, f"{urls['github']}/gists", params={"since": since}, headers=GITHUB
    )
    assert 0 < len(recent) < len(every)
    assert all(g["updated_at"] >= since for g in recent)


async def strava_refresh(
    http: aiohttp.ClientSession, urls: dict[str, str], refresh_token: str
) -> tuple[int, Any]:
    """Exchange a Strava refresh token."""
    form = {
        "client_id": SANDBOX_ENV["STRAVA_CLIENT_ID"],
        "client_secret": SANDBOX_ENV["STRAVA_CLIENT_SECRET"],
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
    }
    async with http.post(f"{urls['strava']}/oauth/token", data=form) as response:
        return response.status, await response.json()


async def test_strava_rotation_retires_the_old_refresh_token(
    urls: dict[str, str], http: aiohttp.ClientSession
) -> None:
    athlete = f"{urls['strava']}/api/v3/athlete"
    assert (await fetch(http, athlete))[0] == 401
    status, token = await strava_refresh(http, urls, SANDBOX_ENV["STRAVA_REFRESH_TOKEN"])
    assert status == 200
    assert token["token_type"] == "Bearer"
    assert token["refresh_token"] != SANDBOX_ENV["STRAVA_REFRESH_TOKEN"]
    status, error = await strava_refresh(http, urls, SANDBOX_ENV["STRAVA_REFRESH_TOKEN"])
    assert status == 400
    assert error["errors"][0]["resource"] == "RefreshToken"
    status, newer = await strava_refresh(http, urls, token["refresh_token"])
    assert status == 200
    assert newer["refresh_token"] != token["refresh_token"]
    bearer = {"Authorization": f"Bearer {newer['access_token']}"}
    status, body, response = await fetch(http, athlete, headers=bearer)
    assert status == 200
    assert body["id"]
    assert response.headers["X-RateLimit-Limit"] == "200,2000"
    assert response.headers["X-RateLimit-Usage"] == "1,1"


async def test_strava_activities_page_newest_first_and_have_streams(
    urls: dict[str, str], http: aiohttp.ClientSession
) -> None:
    _, token = await strava_refresh(http, urls, SANDBOX_ENV["STRAVA_REFRESH_TOKEN"])
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    listing = f"{urls['strava']}/api/v3/athlete/activities"
    activities: list[dict[str, Any]] = []
    for page in range(1, 10):
        _, batch, _ = await fetch(
            http, listing, params={"page": page, "per_page": 50}, headers=bearer
        )
        if not batch:
            break
        activities += batch
    assert 100 < len(activities) < 200
    starts = [a["start_date"] for a in activities]
    assert starts == sorted(starts, reverse=True)
    outdoor = next(a for a in activities if a["start_latlng"])
    streams = f"{urls['strava']}/api/v3/activities/{outdoor['id']}/streams"
    params = {"keys": "latlng,time,altitude", "key_by_type": "true"}
    status, body, _ = await fetch(http, streams, params=params, headers=bearer)
    assert status == 200
    assert set(body) == {"latlng", "time", "altitude", "distance"}
    assert body["latlng"]["data"][0] == outdoor["start_latlng"]
    assert body["distance"]["data"][-1] == pytest.approx(outdoor["distance"], abs=0.1)


async def test_oura_next_token_pages_cover_the_window(
    urls: dict[str, str], http: aiohttp.ClientSession
) -> None:
    start, end = "2026-09-01", "2026-10-31"
    url = f"{urls['oura']}/v2/usercollection/daily_activity"
    days: list[str] = []
    pages, params = 0, {"start_date": start, "end_date": end}
    while True:
        status, body, _ = await fetch(http, url, params=params, headers=OURA)
        assert status == 200
        assert len(body["data"]) <= 10
        days += [doc["day"] for doc in body["data"]]
        pages += 1
        if body["next_token"] is None:
            break
        params = {"start_date": start, "end_date": end, "next_token": body["next_token"]}
    assert pages > 1
    assert days == sorted(set(days))  # ascending, no duplicates
    assert all(start <= day <= end for day in days)
    # A few days are missing, as when the ring is not worn, but most are there.
    assert 50 < len(days) <= (date.fromisoformat(end) - date.fromisoformat(start)).days + 1


async def test_oura_heartrate_refuses_windows_over_30_days(
    urls: dict[str, str], http: aiohttp.ClientSession
) -> None:
    url = f"{urls['oura']}/v2/usercollection/heartrate"
    params = {
        "start_datetime": "2026-10-01T00:00:00+00:00",
        "end_datetime": "2026-11-05T00:00:00+00:00",
    }
    assert (await fetch(http, url, params=params, headers=OURA))[0] == 400
    params["start_datetime"] = "2026-11-04T00:00:00+00:00"
    status, body, _ = await fetch(http, url, params=params, headers=OURA)
    assert status == 200
    assert {"bpm", "source", "timestamp"} <= set(body["data"][0])
    assert body["next_token"]
    assert (await fetch(http, url, params=params))[0] == 401


async def test_reddit_after_cursor_walks_to_null(
    urls: dict[str, str], http: aiohttp.ClientSession
) -> None:
    client = f"{SANDBOX_ENV['REDDIT_CLIENT_ID']}:{SANDBOX_ENV['REDDIT_CLIENT_SECRET']}"
    basic = {"Authorization": f"Basic {base64.b64encode(client.encode()).decode()}"}
    form = {"grant_type": "refresh_token", "refresh_token": SANDBOX_ENV["REDDIT_REFRESH_TOKEN"]}
    token_url = f"{urls['reddit']}/api/v1/access_token"
    async with http.post(token_url, data=form, headers=basic) as response:
        assert response.status == 200
        token = await response.json()
    assert token["token_type"] == "bearer"
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    url = f"{urls['reddit']}/user/{SANDBOX_ENV['REDDIT_USERNAME']}/comments"
    names: list[str] = []
    after: str | None = None
    while True:
        params = {"limit": "100"} | ({"after": after} if after else {})
        status, listing, response = await fetch(http, url, params=params, headers=bearer)
        assert status == 200
        assert listing["kind"] == "Listing"
        assert "x-ratelimit-remaining" in response.headers
        names += [child["data"]["name"] for child in listing["data"]["children"]]
        after = listing["data"]["after"]
        if after is None:
            break
        assert after == names[-1]
    assert len(names) == len(set(names)) > 100
    assert all(name.startswith("t1_") for name in names)
    async with aiohttp.ClientSession(skip_auto_headers=["User-Agent"]) as anonymous:
        assert (await fetch(anonymous, url, headers=bearer))[0] == 429


async def test_hackernews_user_lists_a_deleted_item_as_null(
    urls: dict[str, str], http: aiohttp.ClientSession
) -> None:
    base = urls["hackernews"]
    status, user, _ = await fetch(http, f"{base}/user/{SANDBOX_ENV['HACKERNEWS_USERNAME']}.json")
    assert status == 200
    assert 20 <= len(user["submitted"]) <= 40
    items = [(await fetch(http, f"{base}/item/{i}.json"))[1] for i in user["submitted"]]
    assert items.count(None) == 1
    assert all(item["by"] == user["id"] for item in items if item)
    assert (await fetch(http, f"{base}/user/nobody-here.json"))[1] is None


async def test_hits_record_requests_in_arrival_order() -> None:
    app = make_app(latency=0.05)
    runner, root = await start(app)
    try:
        urls = base_urls(root)
        async with aiohttp.ClientSession() as http:
            user = f"{urls['github']}/users/{SANDBOX_ENV['GITHUB_USERNAME']}"
            await asyncio.gather(
                fetch(http, user, headers=GITHUB),
                fetch(http, f"{urls['hackernews']}/item/1.json", params={"print": "pretty"}),
            )
    finally:
        await runner.cleanup()
    hits = app[REQUESTS]
    assert [h.at for h in hits] == sorted(h.at for h in hits)
    assert {h.api for h in hits} == {"github", "hackernews"}
    github = next(h for h in hits if h.api == "github")
    assert github.headers["Authorization"] == GITHUB["Authorization"]
    assert github.method == "GET"
    assert github.path == f"/github/users/{SANDBOX_ENV['GITHUB_USERNAME']}"
    hn = next(h for h in hits if h.api == "hackernews")
    assert hn.query == {"print": "pretty"}
    assert all(h.done - h.at >= 0.05 for h in hits)
    assert hits[0].done > hits[1].at  # they overlapped


async def test_a_queued_fault_is_served_once(
    app: web.Application, urls: dict[str, str], http: aiohttp.ClientSession
) -> None:
    url = f"{urls['github']}/user/starred"
    app[FAULTS]["/github/user/starred"] = [Fault(503, {"Retry-After": "1"}, b"down")]
    async with http.get(url, headers=GITHUB) as response:
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
        assert await response.read() == b"down"
    status, stars, _ = await fetch(http, url, headers=GITHUB)
    assert status == 200
    assert len(stars) == 30


async def hn_profile(**options: Any) -> Any:
    """The HN user served by a sandbox built with ``options``."""
    runner, root = await start(make_app(**options))
    try:
        async with aiohttp.ClientSession() as http:
            base = base_urls(root)["hackernews"]
            return (await fetch(http, f"{base}/user/{SANDBOX_ENV['HACKERNEWS_USERNAME']}.json"))[1]
    finally:
        await runner.cleanup()


async def test_data_follows_seed_and_clock() -> None:
    default = await hn_profile()
    assert await hn_profile(seed=1, now=DEFAULT_NOW) == default
    assert (await hn_profile(seed=2))["submitted"] != default["submitted"]
    later = await hn_profile(now=DEFAULT_NOW + timedelta(days=10))
    assert later["created"] == default["created"] + 10 * 86400


AUTHORIZE = {  # provider -> (authorize path, token path, client id variable)
    "strava": ("/strava/oauth/authorize", "/strava/oauth/token", "STRAVA"),
    "reddit": ("/reddit/api/v1/authorize", "/reddit/api/v1/access_token", "REDDIT"),
    "oura": ("/oura/oauth/authorize", "/oura/oauth/token", "OURA"),
}


@pytest.mark.parametrize("provider", sorted(AUTHORIZE))
async def test_authorization_code_is_redirected_back_and_spent_once(
    urls: dict[str, str], http: aiohttp.ClientSession, provider: str
) -> None:
    authorize, token, prefix = AUTHORIZE[provider]
    root = urls["github"].removesuffix("/github")
    redirect = "http://127.0.0.1:9/callback"
    query = {
        "client_id": SANDBOX_ENV[f"{prefix}_CLIENT_ID"],
        "response_type": "code",
        "redirect_uri": redirect,
        "state": "st4te",
        "scope": "read",
    }
    async with http.get(f"{root}{authorize}", params=query, allow_redirects=False) as response:
        assert response.status == 302
        back = response.headers["Location"]
    assert back.startswith(f"{redirect}?") and "state=st4te" in back
    code = dict(pair.split("=") for pair in back.split("?")[1].split("&"))["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect}
    client = (SANDBOX_ENV[f"{prefix}_CLIENT_ID"], SANDBOX_ENV[f"{prefix}_CLIENT_SECRET"])
    headers: dict[str, str] = {}
    if provider == "reddit":  # Basic client auth
        pair = base64.b64encode(":".join(client).encode()).decode()
        headers["Authorization"] = f"Basic {pair}"
    else:
        form |= {"client_id": client[0], "client_secret": client[1]}
    async with http.post(f"{root}{token}", data=form, headers=headers) as response:
        assert response.status == 200
        tokens = await response.json()
    assert tokens["refresh_token"] == f"sandbox-{provider}-refresh-1"
    async with http.post(f"{root}{token}", data=form, headers=headers) as response:
        assert response.status == 400  # a code is spent once
    bad = {**query, "client_id": "someone-else"}
    async with http.get(f"{root}{authorize}", params=bad, allow_redirects=False) as response:
        assert response.status == 400


async def test_oura_refresh_tokens_are_single_use_and_old_tokens_still_work(
    urls: dict[str, str], http: aiohttp.ClientSession
) -> None:
    client = {"client_id": SANDBOX_ENV["OURA_CLIENT_ID"]}
    client["client_secret"] = SANDBOX_ENV["OURA_CLIENT_SECRET"]
    form = client | {"grant_type": "refresh_token"}
    form["refresh_token"] = SANDBOX_ENV["OURA_REFRESH_TOKEN"]
    async with http.post(f"{urls['oura']}/oauth/token", data=form) as response:
        token = await response.json()
    async with http.post(f"{urls['oura']}/oauth/token", data=form) as response:
        assert response.status == 400  # rotated: the first refresh token is spent
    info = f"{urls['oura']}/v2/usercollection/personal_info"
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    assert (await fetch(http, info, headers=bearer))[0] == 200
    assert (await fetch(http, info, headers=OURA))[0] == 200  # a legacy personal token
    days = f"{urls['oura']}/v2/usercollection/daily_sleep"
    status, body, _ = await fetch(http, days, params={"start_date": "2026-11-01"}, headers=OURA)
    assert status == 200 and {"score", "contributors", "day"} <= set(body["data"][0])
