"""In-process aiohttp fake of the Hacker News, GitHub, Strava, Oura and Reddit APIs."""

from __future__ import annotations

import asyncio
import base64
import bisect
import hashlib
import math
import random
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler
from yarl import URL

DEFAULT_NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)

SANDBOX_ENV: dict[str, str] = {
    "HACKERNEWS_USERNAME": "quillhopper",
    "GITHUB_TOKEN": "ghp_sandbox0000000000000000000000000000",
    "GITHUB_USERNAME": "octo-archivist",
    "STRAVA_CLIENT_ID": "48151",
    "STRAVA_CLIENT_SECRET": "sandbox-strava-client-secret",
    "STRAVA_REFRESH_TOKEN": "sandbox-strava-refresh-0",
    "OURA_CLIENT_ID": "sandbox-oura-client",
    "OURA_CLIENT_SECRET": "sandbox-oura-client-secret",
    "OURA_REFRESH_TOKEN": "sandbox-oura-refresh-0",
    "REDDIT_CLIENT_ID": "sandboxClientId",
    "REDDIT_CLIENT_SECRET": "sandbox-reddit-client-secret",
    "REDDIT_REFRESH_TOKEN": "sandbox-reddit-refresh-0",
    "REDDIT_USERNAME": "archive_me_please",
}


# A legacy Oura personal access token: still accepted as a bearer, as old ones are.
OURA_PERSONAL_TOKEN = "sandbox-oura-personal-access-token"  # noqa: S105 - fake


@dataclass(frozen=True)
class Hit:
    """One request as the sandbox saw it."""

    at: float
    done: float
    api: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass(frozen=True)
class Fault:
    """A canned response served once, instead of the normal answer."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


REQUESTS: web.AppKey[list[Hit]] = web.AppKey("REQUESTS")
DATA: web.AppKey[Sandbox] = web.AppKey("DATA")  # generated data and token state, for tests
FAULTS: web.AppKey[dict[str, list[Fault]]] = web.AppKey("FAULTS")
_LATENCY: web.AppKey[float] = web.AppKey("latency")

_Obj = dict[str, Any]
_Handler = Callable[[web.Request], Awaitable[web.Response]]

_WORDS = ("amber", "birch", "cinder", "delta", "ember", "fjord", "garnet", "harbor", "lumen")
_TITLES = (
    "Show HN: {A}, a tiny {b} archiver",
    "How do you back up your {b} data?",
    "{A} quietly drops events older than 90 days",
    "What ten years of {b} logs taught us",
)
_REMARKS = (
    "I run this nightly from cron and resume from the last cursor.",
    "Their {b} export silently skips deleted items, which bit me.",
    "Caching ETags cut our {b} quota use in half.",
    "Have you tried the {a} endpoint? It pages by timestamp.",
)
_COMMITS = ("Fix {b} pagination off-by-one", "Retry {a} requests on 429", "Tidy {a} fixtures")
_SUBREDDITS = ("selfhosted", "DataHoarder", "Python", "running", "homelab", "QuantifiedSelf")
# Reddit throttles library-default agents as if no User-Agent had been sent.
_DEFAULT_AGENTS = ("Python/", "Python-urllib/", "python-requests/", "python-httpx/")
_GH_DOCS = "https://docs.github.com/rest"
_GH_LIMIT = (
    "In order to keep the API fast for everyone, pagination is limited for this resource. "
    "Check the rel=last link relation in the Link response header to see how far back you "
    "can traverse."
)
# Event type -> relative frequency.
_GH_KINDS = {
    "PushEvent": 45,
    "WatchEvent": 15,
    "IssueCommentEvent": 12,
    "PullRequestEvent": 10,
    "CreateEvent": 8,
    "IssuesEvent": 6,
    "ForkEvent": 4,
}
# Sport -> (relative frequency, speed range in m/s, distance range in m).
_SPORTS = {
    "Run": (60, (2.4, 3.4), (4_000, 21_000)),
    "Ride": (25, (5.5, 9.0), (12_000, 90_000)),
    "Walk": (10, (1.2, 1.6), (2_000, 9_000)),
    "Swim": (5, (0.6, 0.9), (800, 3_000)),
}
# Strava's default activity names, by local start hour: before 12, 12-14, 14-17, from 17.
_PERIODS = ("Morning", "Lunch", "Afternoon", "Evening")
_OURA_PAGE, _HEARTRATE_PAGE = 10, 200


def _phrase(rng: random.Random, templates: Sequence[str]) -> str:
    """Fill a random template with random words."""
    a, b = rng.sample(_WORDS, 2)
    return rng.choice(templates).format(a=a, A=a.title(), b=b)


def _name(rng: random.Random) -> str:
    """Return a slug such as ``ember-lumen``."""
    return "-".join(rng.sample(_WORDS, 2))


def _b36(number: int) -> str:
    """Encode as Reddit ids are: lower-case base 36."""
    digits = ""
    while number:
        number, digit = divmod(number, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[digit] + digits
    return digits


def _iso(moment: datetime) -> str:
    """Format as GitHub and Strava do: UTC, whole seconds, trailing Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _at(day: date, hours: float) -> str:
    """Format, as Oura does, the moment ``hours`` after midnight UTC of ``day``."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return (midnight + timedelta(hours=hours)).isoformat(timespec="seconds")


def _parse_dt(text: str) -> datetime:
    """Parse an ISO 8601 timestamp, reading a naive one as UTC."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _json(data: Any, status: int = 200) -> web.Response:
    """Serialise ``data`` as a JSON response."""
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _const(data: Any) -> _Handler:
    """Return a handler that always answers ``data``."""

    async def handler(request: web.Request) -> web.Response:
        return _json(data)

    return handler


def _num(request: web.Request, name: str, default: int, top: int) -> int:
    """Read an integer query parameter clamped to 1..top; absent or malformed gives the default."""
    try:
        return max(1, min(top, int(request.query.get(name, default))))
    except ValueError:
        return default


def _is_me(request: web.Request, provider: str) -> bool:
    """Tell whether the path's {user} is the sandbox account (usernames ignore case there)."""
    return request.match_info["user"].lower() == SANDBOX_ENV[f"{provider}_USERNAME"].lower()


def _gh_404() -> web.Response:
    """Answer GitHub's not-found error."""
    return _json({"message": "Not Found", "documentation_url": _GH_DOCS, "status": "404"}, 404)


def _st_404() -> web.Response:
    """Answer Strava's unknown-activity error."""
    errors = [{"resource": "Activity", "field": "id", "code": "invalid"}]
    return _json({"message": "Record Not Found", "errors": errors}, 404)


def _bearer(request: web.Request) -> str | None:
    """Return the request's bearer token, if it has one."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" else None


def _next_token(offset: int, total: int) -> str | None:
    """Return Oura's opaque token for the page starting at ``offset``, or None past the end."""
    if offset >= total:
        return None
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _offset(token: str | None) -> int:
    """Decode a next_token; raises ValueError when it is not one of ours."""
    return int(base64.urlsafe_b64decode(token).decode().removeprefix("offset:")) if token else 0


@dataclass
class _Window:
    """A fixed rate-limit window aligned to multiples of ``seconds`` on the wall clock."""

    seconds: int
    start: int = 0
    used: int = 0

    def hit(self) -> None:
        """Count one request, opening a fresh window once the current one has elapsed."""
        # Wall clock, not the data's ``now``: clients compare resets with their own clock.
        start = int(time.time()) // self.seconds * self.seconds
        if start != self.start:
            self.start, self.used = start, 0
        self.used += 1

    @property
    def reset(self) -> int:
        """Epoch second at which the window ends."""
        return self.start + self.seconds


@dataclass
class _OAuth:
    """Token state of a provider whose every refresh rotates the refresh token."""

    name: str
    refresh: str
    client_id: str
    access: set[str] = field(default_factory=set)
    codes: dict[str, str] = field(default_factory=dict)  # authorization code -> redirect_uri

    async def authorize(self, request: web.Request) -> web.Response:
        """Consent at once and redirect back with a one-time code, as a user clicking Allow."""
        query = request.query
        redirect = query.get("redirect_uri", "")
        if query.get("client_id") != self.client_id or query.get("response_type") != "code":
            return _json({"message": "Bad Request", "error": "invalid_client"}, 400)
        if not redirect.startswith(("http://127.0.0.1:", "http://localhost:")):
            return _json({"message": "Bad Request", "error": "invalid redirect_uri"}, 400)
        code = f"sandbox-{self.name}-code-{len(self.codes) + 1}"
        self.codes[code] = redirect
        back = {"code": code, "state": query.get("state", "")}
        if "scope" in query:
            back["scope"] = query["scope"]
        raise web.HTTPFound(str(URL(redirect).update_query(back)))

    def redeem(self, code: str, redirect_uri: str | None) -> bool:
        """Spend an authorization code (once); the redirect URI must match when sent."""
        expected = self.codes.pop(code, None)
        return expected is not None and redirect_uri in (None, expected)

    def rotate(self) -> tuple[str, str]:
        """Issue an access token and a new refresh token; the previous refresh token dies."""
        serial = len(self.access) + 1
        self.refresh = f"sandbox-{self.name}-refresh-{serial}"
        token = f"sandbox-{self.name}-access-{serial}"
        # Earlier access tokens stay valid: real ones outlive a refresh until they expire.
        self.access.add(token)
        return token, self.refresh


def _gen_hn(rng: random.Random, now: datetime) -> _Obj:
    """Build the HN user and every item its 30 submissions touch; one submission is deleted."""
    user, t0 = SANDBOX_ENV["HACKERNEWS_USERNAME"], int(now.timestamp())
    # HN ids grow with time (~0.4 a second), so derive them from timestamps 60+ s apart.
    times = rng.sample(range(t0 - 700 * 86400, t0 - 7200, 60), 30)
    mine = {46_000_000 - (t0 - ts) * 2 // 5: ts for ts in times}
    items: dict[int, _Obj | None] = {}

    def add(near: int, item: _Obj) -> int:
        """Store someone else's item under the first free id at or after ``near``."""
        while near in items or near in mine:
            near += 1
        items[near] = {"id": near, "by": f"{rng.choice(_WORDS)}{rng.randint(2, 99)}"} | item
        return near

    for iid, ts in mine.items():
        own: _Obj = {"by": user, "id": iid, "time": ts}
        story: _Obj = {"title": _phrase(rng, _TITLES), "url": f"https://{_name(rng)}.example/"}
        if rng.random() < 0.6:
            posted = ts - rng.randint(600, 40_000)
            story |= {"type": "story", "time": posted, "kids": [iid], "score": rng.randint(9, 900)}
            parent = add(iid - (ts - posted) * 2 // 5, story | {"descendants": rng.randint(3, 400)})
            items[iid] = own | {"parent": parent, "text": _phrase(rng, _REMARKS), "type": "comment"}
            continue
        kids = []
        for _ in range(rng.randint(0, 3)):
            reply: _Obj = {"parent": iid, "text": _phrase(rng, _REMARKS), "type": "comment"}
            reply["time"] = min(t0, ts + rng.randint(60, 7200))
            kids.append(add(iid + rng.randint(40, 3000), reply))
        own |= story | {"descendants": len(kids), "score": rng.randint(1, 600), "type": "story"}
        # HN omits "kids" rather than sending an empty list.
        items[iid] = own | {"kids": kids} if kids else own
    items[rng.choice(sorted(mine))] = None
    about = "Archiving my own trail across APIs.<p>https://example.com"
    profile = {"about": about, "created": t0 - 3300 * 86400, "id": user, "karma": 4242}
    return {"users": {user: profile | {"submitted": sorted(mine, reverse=True)}}, "items": items}


def _gh_user(login: str, uid: int) -> _Obj:
    """Return GitHub's "simple user" object."""
    node_id = base64.b64encode(f"04:User{uid}".encode()).decode()
    avatar = f"https://avatars.githubusercontent.com/u/{uid}?v=4"
    return (
        {"login": login, "id": uid, "node_id": node_id, "avatar_url": avatar}
        | {"url": f"https://api.github.com/users/{login}", "type": "User", "site_admin": False}
        | {"html_url": f"https://github.com/{login}"}
    )


def _gh_repo(rng: random.Random, now: datetime, owner: _Obj) -> _Obj:
    """Return a repository owned by ``owner``."""
    name = _name(rng)
    full = f"{owner['login']}/{name}"
    created = _iso(now - timedelta(days=rng.randint(400, 3000)))
    return (
        {"id": rng.randint(10**8, 10**9), "name": name, "full_name": full, "owner": owner}
        | {"html_url": f"https://github.com/{full}", "url": f"https://api.github.com/repos/{full}"}
        | {"description": _phrase(rng, _TITLES), "private": False, "fork": False}
        | {"created_at": created, "stargazers_count": rng.randint(0, 30_000)}
        | {"language": rng.choice(("Go", "Python", "Rust", "TypeScript"))}
    )


def _gh_gist(rng: random.Random, now: datetime, owner: _Obj) -> _Obj:
    """Return a gist of ``owner`` holding one Markdown file."""
    gid, filename, login = f"{rng.getrandbits(128):032x}", f"{_name(rng)}.md", owner["login"]
    raw = f"https://gist.githubusercontent.com/{login}/{gid}/raw/{filename}"
    created = now - timedelta(days=rng.randint(30, 900))
    updated = min(now, created + timedelta(hours=rng.randint(0, 9000)))
    return (
        {"id": gid, "url": f"https://api.github.com/gists/{gid}", "owner": owner}
        | {"html_url": f"https://gist.github.com/{login}/{gid}", "public": rng.random() < 0.8}
        | {"files": {filename: {"filename": filename, "type": "text/markdown", "raw_url": raw}}}
        | {"created_at": _iso(created), "updated_at": _iso(updated), "comments": rng.randint(0, 5)}
        | {"description": _phrase(rng, _TITLES)}
    )


def _gh_payload(rng: random.Random, kind: str) -> _Obj:
    """Return the payload of an event of type ``kind``."""
    issue = {"number": rng.randint(1, 900), "title": _phrase(rng, _TITLES), "state": "open"}
    comment = {"id": rng.getrandbits(31), "body": _phrase(rng, _REMARKS)}
    commits = [
        {"sha": f"{rng.getrandbits(160):040x}", "message": _phrase(rng, _COMMITS), "distinct": True}
        for _ in range(rng.randint(1, 3))
    ]
    # Every kind is built, then one picked, so each event draws the same amount of randomness.
    payloads: dict[str, _Obj] = {
        "PushEvent": {"ref": "refs/heads/main", "head": commits[-1]["sha"], "commits": commits},
        "WatchEvent": {"action": "started"},
        "IssueCommentEvent": {"action": "created", "issue": issue, "comment": comment},
        "PullRequestEvent": {"action": "opened", "number": issue["number"], "pull_request": issue},
        "CreateEvent": {"ref": _name(rng), "ref_type": "branch", "pusher_type": "user"},
        "IssuesEvent": {"action": "opened", "issue": issue},
        "ForkEvent": {"forkee": {"id": rng.getrandbits(30), "name": _name(rng)}},
    }
    return payloads[kind]


def _gen_github(rng: random.Random, now: datetime) -> _Obj:
    """Build the profile, 320 events over 20 days, 240 stars, 45 followers and 12 gists."""
    login = SANDBOX_ENV["GITHUB_USERNAME"]
    me = _gh_user(login, 31_337_042)
    people = [_gh_user(f"{_name(rng)}{n}", rng.randint(10**6, 10**8)) for n in range(60)]
    own = [_gh_repo(rng, now, me) for _ in range(6)]
    others = [_gh_repo(rng, now, rng.choice(people)) for _ in range(260)]
    stars = [(_iso(now - timedelta(minutes=rng.randint(60, 10**6))), repo) for repo in others[:240]]
    actor = {key: me[key] for key in ("id", "login", "url", "avatar_url")}
    actor |= {"display_login": login, "gravatar_id": ""}
    # More events than the 300 the API pages through, as for any busy account.
    ages = sorted(rng.randint(30, 20 * 86400) for _ in range(320))
    events, event_id = [], 52_000_000_000
    for age in ages:
        kind = rng.choices(list(_GH_KINDS), list(_GH_KINDS.values()))[0]
        pool = own if kind in ("PushEvent", "PullRequestEvent", "CreateEvent") else others
        repo = rng.choice(pool)
        event_id -= rng.randint(1_000, 200_000)
        events.append(
            {"id": str(event_id), "type": kind, "actor": actor, "payload": _gh_payload(rng, kind)}
            | {"repo": {"id": repo["id"], "name": repo["full_name"], "url": repo["url"]}}
            | {"public": True, "created_at": _iso(now - timedelta(seconds=age))}
        )
    gists = [_gh_gist(rng, now, me) for _ in range(12)]
    gists.sort(key=lambda gist: gist["updated_at"], reverse=True)
    followers = rng.sample(people, 45)
    profile = (
        me
        | {"name": "Ada Sandbox", "company": None, "blog": "https://example.com", "email": None}
        | {"location": "Utrecht, NL", "bio": "Archives everything.", "public_repos": len(own)}
        | {"public_gists": sum(g["public"] for g in gists), "followers": len(followers)}
        | {"following": 23, "created_at": _iso(now - timedelta(days=4600))}
    )
    stars.sort(key=lambda star: star[0], reverse=True)
    return {
        "profile": profile,
        "events": events,
        "stars": stars,
        "followers": followers,
        "gists": gists,
    }


def _track(rng: random.Random, activity: _Obj) -> dict[str, list[Any]]:
    """Synthesise an activity's streams, sampled evenly along a loop from its start point."""
    moving, start = activity["moving_time"], activity["start_latlng"]
    count = max(2, min(200, moving // 15))
    steps = [rng.uniform(0.6, 1.4) for _ in range(count - 1)]
    scale = activity["distance"] / sum(steps)
    heading, north, east = rng.uniform(0, math.tau), [0.0], [0.0]  # metres from the start
    dist, alt, bpm = [0.0], [rng.uniform(0, 12)], [rng.randint(85, 100)]
    for step in steps:
        heading += rng.uniform(-0.5, 0.5)
        north.append(north[-1] + step * scale * math.cos(heading))
        east.append(east[-1] + step * scale * math.sin(heading))
        dist.append(dist[-1] + step * scale)
        alt.append(alt[-1] + rng.uniform(-0.8, 0.8))
        bpm.append(max(90, min(185, bpm[-1] + rng.randint(-4, 5))))
    times = [round(i * moving / (count - 1)) for i in range(count)]
    streams: dict[str, list[Any]] = {"time": times, "distance": [round(d, 1) for d in dist]}
    streams["heartrate"] = bpm
    if not start:  # pool swims record neither position nor altitude
        return streams
    # Spread the walk's drift over its length so it ends where it began, as end_latlng says.
    lat0, lng0 = start
    per_degree = 111_320.0, 111_320 * math.cos(math.radians(lat0))  # metres, north and east
    latlng = []
    for i, (n, e) in enumerate(zip(north, east, strict=True)):
        share = i / (count - 1)
        lat = lat0 + (n - north[-1] * share) / per_degree[0]
        lng = lng0 + (e - east[-1] * share) / per_degree[1]
        latlng.append([round(lat, 6), round(lng, 6)])
    return streams | {"latlng": latlng, "altitude": [round(a, 1) for a in alt]}


def _gen_strava(rng: random.Random, now: datetime) -> _Obj:
    """Build the athlete and ~150 activities over the last 200 days (streams come on demand)."""
    athlete = (
        {"id": 7_654_321, "username": "ada_sandbox", "firstname": "Ada", "lastname": "Sandbox"}
        | {"city": "Utrecht", "country": "Netherlands", "sex": "F", "premium": True}
        | {"resource_state": 3, "created_at": _iso(now - timedelta(days=3000))}
    )
    listing: list[tuple[int, _Obj]] = []
    details: dict[int, _Obj] = {}
    activity_id = 15_900_000_000
    for back in range(200, 0, -1):
        if rng.random() < 0.25:
            continue
        sport = rng.choices(list(_SPORTS), [weight for weight, _, _ in _SPORTS.values()])[0]
        _, speeds, distances = _SPORTS[sport]
        day = now - timedelta(days=back)
        start = day.replace(hour=rng.randint(5, 19), minute=rng.randint(0, 59), second=0)
        distance, speed = rng.uniform(*distances), rng.uniform(*speeds)
        moving, activity_id = int(distance / speed), activity_id + rng.randint(50_000, 900_000)
        # Activities start around Utrecht; pool swims have no position at all.
        lat, lng = 52.09 + rng.uniform(-0.03, 0.03), 5.12 + rng.uniform(-0.05, 0.05)
        origin = [round(lat, 6), round(lng, 6)] if sport != "Swim" else []
        local = start + timedelta(hours=1)  # Strava's local times are wall-clock times marked Z
        name = f"{_PERIODS[bisect.bisect((12, 14, 17), local.hour)]} {sport}"
        summary = (
            {"id": activity_id, "resource_state": 2, "name": name, "type": sport}
            | {"sport_type": sport, "athlete": {"id": athlete["id"], "resource_state": 1}}
            | {"distance": round(distance, 1), "moving_time": moving, "elapsed_time": moving + 60}
            | {"total_elevation_gain": round(distance / rng.uniform(80, 400), 1)}
            | {"start_date": _iso(start), "start_date_local": _iso(local), "manual": False}
            | {"timezone": "(GMT+01:00) Europe/Amsterdam", "utc_offset": 3600.0}
            | {"start_latlng": origin, "end_latlng": origin, "private": False}
            | {"average_speed": round(speed, 3), "max_speed": round(speed * 1.4, 3)}
            | {"kudos_count": rng.randint(0, 25), "has_heartrate": True}
            | {"map": {"id": f"a{activity_id}", "summary_polyline": "", "resource_state": 2}}
        )
        listing.append((int(start.timestamp()), summary))
        details[activity_id] = summary | {"resource_state": 3, "calories": round(distance / 16)}
        details[activity_id] |= {"description": _phrase(rng, _REMARKS), "device_name": "Garmin"}
    listing.reverse()  # newest first, as the API lists them
    return {"athlete": athlete, "listing": listing, "details": details}


def _oura_day(rng: random.Random, day: date) -> dict[str, _Obj]:
    """Return the document of each daily collection for ``day``, without "id" and "day"."""
    bedtime, wake = -rng.uniform(0.3, 2.5), rng.uniform(5.8, 8.2)
    in_bed = int((wake - bedtime) * 3600)
    deep, rem, awake = (int(in_bed * rng.uniform(0.1, 0.2)) for _ in range(3))
    return {
        "daily_activity": (
            {"score": rng.randint(60, 98), "steps": rng.randint(3000, 17000)}
            | {"active_calories": rng.randint(200, 900), "total_calories": rng.randint(1900, 2900)}
            | {"equivalent_walking_distance": rng.randint(2000, 13000), "timestamp": _at(day, 4)}
        ),
        "daily_readiness": (
            {"score": rng.randint(55, 95), "temperature_deviation": round(rng.gauss(0, 0.25), 2)}
            | {"contributors": {"hrv_balance": rng.randint(50, 100)}, "timestamp": _at(day, 0)}
        ),
        "daily_stress": (
            {"stress_high": rng.randrange(0, 14400, 900), "day_summary": "normal"}
            | {"recovery_high": rng.randrange(0, 10800, 900)}
        ),
        "daily_spo2": (
            {"spo2_percentage": {"average": round(rng.uniform(95, 99), 3)}}
            | {"breathing_disturbance_index": rng.randint(0, 12)}
        ),
        "sleep": (
            {"bedtime_start": _at(day, bedtime), "bedtime_end": _at(day, wake)}
            | {"time_in_bed": in_bed, "total_sleep_duration": in_bed - awake, "awake_time": awake}
            | {"deep_sleep_duration": deep, "rem_sleep_duration": rem, "lowest_heart_rate": 46}
            | {"light_sleep_duration": in_bed - awake - deep - rem, "average_hrv": 52}
            | {"efficiency": round(100 * (in_bed - awake) / in_bed), "type": "long_sleep"}
        ),
        "sleep_time": (
            {"recommendation": "follow_optimal_bedtime", "status": "optimal_found"}
            | {"optimal_bedtime": {"day_tz": 3600, "start_offset": -5400, "end_offset": 1800}}
        ),
    }


def _gen_oura(rng: random.Random, now: datetime) -> dict[str, list[_Obj]]:
    """Build each collection over the last 120 days, oldest first as Oura lists them."""
    out: dict[str, list[_Obj]] = {"workout": []}  # the one collection some days lack
    for back in range(120, 0, -1):
        day = now.date() - timedelta(days=back)
        if rng.random() < 0.05:  # ring left on the charger: real histories have gaps
            continue
        documents = _oura_day(rng, day)
        if rng.random() < 0.45:
            begin, hours = rng.uniform(7, 19), rng.uniform(0.3, 1.5)
            documents["workout"] = (
                {"activity": rng.choice(("walking", "running", "cycling")), "label": None}
                | {"calories": rng.randint(80, 700), "distance": rng.randint(0, 15000)}
                | {"start_datetime": _at(day, begin), "end_datetime": _at(day, begin + hours)}
                | {"intensity": "moderate", "source": rng.choice(("manual", "autodetected"))}
            )
        for kind, document in documents.items():
            document_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            out.setdefault(kind, []).append({"id": document_id, "day": str(day)} | document)
        # Own stream, so adding this collection left the others' data as it was.
        extra = random.Random(f"{day}:daily_sleep:{rng.random()}")
        score = {k: extra.randint(50, 100) for k in ("deep_sleep", "efficiency", "rem_sleep")}
        score |= {k: extra.randint(50, 100) for k in ("latency", "restfulness", "timing")}
        out.setdefault("daily_sleep", []).append(
            {"id": str(uuid.UUID(int=extra.getrandbits(128), version=4)), "day": str(day)}
            | {"score": extra.randint(55, 95), "contributors": score | {"total_sleep": 80}}
            | {"timestamp": _at(day, 0)}
        )
    return out


def _gen_reddit(rng: random.Random, now: datetime) -> _Obj:
    """Build the account, 250 comments and 60 posts over two years, newest first."""
    user, t0 = SANDBOX_ENV["REDDIT_USERNAME"], int(now.timestamp())
    out: _Obj = {}
    # Reddit ids are base-36 counters growing with time; spacing the samples keeps them unique.
    for kind, count, spacing, top, rate in (
        ("comments", 250, 60, 47_000_000_000, 20),
        ("submitted", 60, 3600, 1_990_000_000, 1),
    ):
        out[kind] = []
        for ts in sorted(rng.sample(range(t0 - 730 * 86400, t0 - 600, spacing), count))[::-1]:
            rid, sub = _b36(top - (t0 - ts) * rate), rng.choice(_SUBREDDITS)
            link = _b36(1_990_000_000 - (t0 - ts) - rng.randint(0, 90_000))
            item = {"id": rid, "author": user, "subreddit": sub, "score": rng.randint(-2, 300)}
            item |= {"subreddit_name_prefixed": f"r/{sub}", "created_utc": float(ts)}
            if kind == "comments":
                item |= {"name": f"t1_{rid}", "body": _phrase(rng, _REMARKS)}
                item |= {"link_id": f"t3_{link}", "parent_id": f"t3_{link}"}
                item |= {"permalink": f"/r/{sub}/comments/{link}/comment/{rid}/"}
            else:
                item |= {"name": f"t3_{rid}", "title": _phrase(rng, _TITLES), "is_self": True}
                item |= {"selftext": _phrase(rng, _REMARKS), "num_comments": rng.randint(0, 80)}
                item |= {"permalink": f"/r/{sub}/comments/{rid}/", "upvote_ratio": 0.97}
            out[kind].append(item)
    karma = [
        {
            "sr": sub,
            "comment_karma": sum(c["score"] for c in out["comments"] if c["subreddit"] == sub),
            "link_karma": sum(p["score"] for p in out["submitted"] if p["subreddit"] == sub),
        }
        for sub in _SUBREDDITS
    ]
    links, comments = (sum(k[key] for k in karma) for key in ("link_karma", "comment_karma"))
    out["me"] = (
        {"name": user, "id": _b36(rng.getrandbits(36)), "created_utc": float(t0 - 2900 * 86400)}
        | {"link_karma": links, "comment_karma": comments, "total_karma": links + comments}
        | {"has_verified_email": True, "verified": True, "is_gold": False, "is_mod": False}
    )
    out["karma"] = {"kind": "KarmaList", "data": karma}
    trophies = [
        {"kind": "t6", "data": {"name": name, "granted_at": None, "award_id": None, "id": None}}
        for name in ("Seven-Year Club", "Verified Email")
    ]
    out["trophies"] = {"kind": "TrophyList", "data": {"trophies": trophies}}
    out["prefs"] = {"lang": "en", "over_18": False, "num_comments": 200, "hide_ups": False}
    return out


class Sandbox:
    """Generated data, token state and route handlers of one sandbox app."""

    def __init__(self, now: datetime, seed: int) -> None:
        """Generate every provider's data from ``seed`` and ``now``."""
        # One random stream per provider keeps each one's data stable when another's changes.
        rngs = {api: random.Random(f"{seed}:{api}") for api in base_urls("")}
        self.now, self.seed = now, seed
        self.hn = _gen_hn(rngs["hackernews"], now)
        self.gh = _gen_github(rngs["github"], now)
        self.st = _gen_strava(rngs["strava"], now)
        self.oura = _gen_oura(rngs["oura"], now)
        self.rd = _gen_reddit(rngs["reddit"], now)
        self.gh_rate, self.rd_rate = _Window(3600), _Window(600)
        self.st_rates = (_Window(900), _Window(86400))  # Strava's 15-minute and daily limits
        self.st_auth = _OAuth(
            "strava", SANDBOX_ENV["STRAVA_REFRESH_TOKEN"], SANDBOX_ENV["STRAVA_CLIENT_ID"]
        )
        self.rd_auth = _OAuth(
            "reddit", SANDBOX_ENV["REDDIT_REFRESH_TOKEN"], SANDBOX_ENV["REDDIT_CLIENT_ID"]
        )
        self.oura_auth = _OAuth(
            "oura", SANDBOX_ENV["OURA_REFRESH_TOKEN"], SANDBOX_ENV["OURA_CLIENT_ID"]
        )

    def routes(self) -> list[web.RouteDef]:
        """Return every route of every provider, wrapped in that provider's guard."""
        gh, st, oura, rd = self._github, self._strava, self._oura, self._reddit
        person: _Obj = {"id": str(uuid.UUID(int=self.seed, version=4)), "age": 36, "weight": 61.5}
        person |= {"height": 1.7, "biological_sex": "female", "email": "ada@example.com"}
        daily = "|".join(self.oura)
        return [
            web.get("/hackernews/v0/user/{id}.json", self.hn_user),
            web.get(r"/hackernews/v0/item/{id:\d+}.json", self.hn_item),
            web.get("/github/users/{user}", gh(self.gh_user)),
            web.get("/github/users/{user}/events", gh(self.gh_events)),
            web.get("/github/user/starred", gh(self.gh_starred)),
            web.get("/github/user/followers", gh(self.gh_followers)),
            web.get("/github/gists", gh(self.gh_gists)),
            web.get("/strava/oauth/authorize", self.st_auth.authorize),
            web.post("/strava/oauth/token", self.st_token),
            web.get("/strava/api/v3/athlete", st(_const(self.st["athlete"]))),
            web.get("/strava/api/v3/athlete/activities", st(self.st_activities)),
            web.get(r"/strava/api/v3/activities/{id:\d+}", st(self.st_activity)),
            web.get(r"/strava/api/v3/activities/{id:\d+}/streams", st(self.st_streams)),
            web.get("/oura/oauth/authorize", self.oura_auth.authorize),
            web.post("/oura/oauth/token", self.oura_token),
            web.get(f"/oura/v2/usercollection/{{kind:{daily}}}", oura(self.oura_days)),
            web.get("/oura/v2/usercollection/heartrate", oura(self.oura_heartrate)),
            web.get("/oura/v2/usercollection/personal_info", oura(_const(person))),
            web.get("/reddit/api/v1/authorize", self.rd_auth.authorize),
            web.post("/reddit/api/v1/access_token", rd(self.rd_token, bearer=False)),
            web.get("/reddit/api/v1/me", rd(_const(self.rd["me"]))),
            web.get("/reddit/api/v1/me/karma", rd(_const(self.rd["karma"]))),
            web.get("/reddit/api/v1/me/trophies", rd(_const(self.rd["trophies"]))),
            web.get("/reddit/api/v1/me/prefs", rd(_const(self.rd["prefs"]))),
            web.get("/reddit/user/{user}/{kind:comments|submitted}", rd(self.rd_listing)),
        ]

    async def hn_user(self, request: web.Request) -> web.Response:
        """Answer a user, or null when unknown, as Firebase does."""
        return _json(self.hn["users"].get(request.match_info["id"]))

    async def hn_item(self, request: web.Request) -> web.Response:
        """Answer an item, or null when unknown or deleted."""
        return _json(self.hn["items"].get(int(request.match_info["id"])))

    def _github(self, handler: _Handler) -> _Handler:
        """Wrap a GitHub route with token auth, ETag/304 and rate-limit headers."""

        async def guarded(request: web.Request) -> web.Response:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() not in ("bearer", "token") or token != SANDBOX_ENV["GITHUB_TOKEN"]:
                message = "Bad credentials" if token else "Requires authentication"
                body = {"message": message, "documentation_url": _GH_DOCS, "status": "401"}
                return _json(body, 401)
            response = await handler(request)
            etag = ""
            if response.status == 200 and isinstance(response.body, bytes):
                etag = f'"{hashlib.sha256(response.body).hexdigest()}"'
            sent = request.headers.get("If-None-Match", "").split(",")
            fresh = bool(etag) and etag in (tag.strip().removeprefix("W/") for tag in sent)
            if not fresh:  # GitHub does not charge conditional requests answered with 304
                self.gh_rate.hit()
            used = self.gh_rate.used
            headers = {"X-RateLimit-Limit": "5000", "X-RateLimit-Used": str(used)}
            headers["X-RateLimit-Remaining"] = str(max(0, 5000 - used))
            headers["X-RateLimit-Reset"] = str(self.gh_rate.reset)
            headers["X-RateLimit-Resource"] = "core"
            if etag:
                headers["ETag"] = etag
            if fresh:
                return web.Response(status=304, headers=headers)
            response.headers.update(headers)
            return response

        return guarded

    def _gh_page(self, request: web.Request, items: Sequence[Any], cap: int = 0) -> web.Response:
        """Serve one page of ``items`` with GitHub's Link header; ``cap`` limits reachable items."""
        per_page, page = _num(request, "per_page", 30, 100), _num(request, "page", 1, 10**6)
        if cap:
            if (page - 1) * per_page >= cap:
                body = {"message": _GH_LIMIT, "documentation_url": _GH_DOCS, "status": "422"}
                return _json(body, 422)
            items = items[:cap]
        last = max(1, math.ceil(len(items) / per_page))
        rels = [("prev", page - 1, page > 1), ("next", page + 1, page < last)]
        rels += [("last", last, page < last), ("first", 1, page > 1)]
        url = request.url
        links = [f'<{url.update_query(page=n)}>; rel="{rel}"' for rel, n, shown in rels if shown]
        response = _json(items[(page - 1) * per_page : page * per_page])
        if links:
            response.headers["Link"] = ", ".join(links)
        return response

    async def gh_user(self, request: web.Request) -> web.Response:
        """Answer the sandbox user's profile."""
        return _json(self.gh["profile"]) if _is_me(request, "GITHUB") else _gh_404()

    async def gh_events(self, request: web.Request) -> web.Response:
        """Answer a page of the user's events, newest first, of which only 300 are reachable."""
        if not _is_me(request, "GITHUB"):
            return _gh_404()
        return self._gh_page(request, self.gh["events"], cap=300)

    async def gh_starred(self, request: web.Request) -> web.Response:
        """Answer a page of starred repositories; the star+json media type adds starred_at."""
        stars = self.gh["stars"]
        if "star+json" in request.headers.get("Accept", ""):
            return self._gh_page(request, [{"starred_at": at, "repo": repo} for at, repo in stars])
        return self._gh_page(request, [repo for _, repo in stars])

    async def gh_followers(self, request: web.Request) -> web.Response:
        """Answer a page of followers."""
        return self._gh_page(request, self.gh["followers"])

    async def gh_gists(self, request: web.Request) -> web.Response:
        """Answer a page of gists, only those updated at or after ``since`` when it is given."""
        gists = self.gh["gists"]
        if since := request.query.get("since"):
            try:
                cutoff = _iso(_parse_dt(since))
            except ValueError:
                error = {"resource": "Gist", "field": "since", "code": "invalid"}
                body = {"message": "Validation Failed", "errors": [error], "status": "422"}
                return _json(body, 422)
            gists = [gist for gist in gists if gist["updated_at"] >= cutoff]
        return self._gh_page(request, gists)

    def _strava(self, handler: _Handler) -> _Handler:
        """Wrap a Strava API route with bearer auth and the 15-minute/daily usage headers."""

        async def guarded(request: web.Request) -> web.Response:
            if _bearer(request) not in self.st_auth.access:
                errors = [{"resource": "Athlete", "field": "access_token", "code": "invalid"}]
                return _json({"message": "Authorization Error", "errors": errors}, 401)
            for window in self.st_rates:
                window.hit()
            response = await handler(request)
            response.headers["X-RateLimit-Limit"] = "200,2000"
            response.headers["X-RateLimit-Usage"] = ",".join(str(w.used) for w in self.st_rates)
            return response

        return guarded

    async def st_token(self, request: web.Request) -> web.Response:
        """Exchange the current refresh token for an access token, rotating the refresh token."""
        # Strava's own examples send these as query parameters; form bodies work as well.
        params = {**request.query, **(await request.post())}
        client = (SANDBOX_ENV["STRAVA_CLIENT_ID"], SANDBOX_ENV["STRAVA_CLIENT_SECRET"])
        if (params.get("client_id"), params.get("client_secret")) != client:
            errors = [{"resource": "Application", "field": "client_id", "code": "invalid"}]
            return _json({"message": "Bad Request", "errors": errors}, 400)
        if params.get("grant_type") == "authorization_code":
            if not self.st_auth.redeem(str(params.get("code", "")), None):
                errors = [{"resource": "AuthorizationCode", "field": "code", "code": "invalid"}]
                return _json({"message": "Bad Request", "errors": errors}, 400)
        elif (params.get("grant_type"), params.get("refresh_token")) != (
            "refresh_token",
            self.st_auth.refresh,
        ):
            errors = [{"resource": "RefreshToken", "field": "refresh_token", "code": "invalid"}]
            return _json({"message": "Bad Request", "errors": errors}, 400)
        access, refresh = self.st_auth.rotate()
        token = {"token_type": "Bearer", "access_token": access, "refresh_token": refresh}
        # Expiry is on the wall clock: clients compare it with their own.
        return _json(token | {"expires_at": int(time.time()) + 21600, "expires_in": 21600})

    async def st_activities(self, request: web.Request) -> web.Response:
        """Answer a page of activities started strictly between ``after`` and ``before``."""
        try:
            before = int(request.query.get("before", 2**62))
            after = int(request.query.get("after", 0))
        except ValueError:
            errors = [{"resource": "Activity", "field": "before/after", "code": "invalid"}]
            return _json({"message": "Bad Request", "errors": errors}, 400)
        per_page, page = _num(request, "per_page", 30, 200), _num(request, "page", 1, 10**6)
        matching = [summary for start, summary in self.st["listing"] if after < start < before]
        return _json(matching[(page - 1) * per_page : page * per_page])

    async def st_activity(self, request: web.Request) -> web.Response:
        """Answer one detailed activity."""
        detail = self.st["details"].get(int(request.match_info["id"]))
        return _st_404() if detail is None else _json(detail)

    async def st_streams(self, request: web.Request) -> web.Response:
        """Answer the requested streams plus distance, the series they are sampled along."""
        activity = self.st["details"].get(int(request.match_info["id"]))
        if activity is None:
            return _st_404()
        # Streams are built on demand, from their own seed, so make_app stays fast.
        track = _track(random.Random(f"{self.seed}:{activity['id']}"), activity)
        keys = dict.fromkeys([*request.query.get("keys", "").split(","), "distance"])
        meta = {"series_type": "distance", "resolution": "high"}
        streams = {
            key: {"data": track[key], "original_size": len(track[key])} | meta
            for key in keys
            if key in track
        }
        if request.query.get("key_by_type") == "true":
            return _json(streams)
        return _json([{"type": key} | stream for key, stream in streams.items()])

    def _oura(self, handler: _Handler) -> _Handler:
        """Wrap an Oura route with personal-access-token auth."""

        async def guarded(request: web.Request) -> web.Response:
            token = _bearer(request)
            if token != OURA_PERSONAL_TOKEN and token not in self.oura_auth.access:
                return _json({"detail": "Invalid or expired access token"}, 401)
            return await handler(request)

        return guarded

    async def oura_token(self, request: web.Request) -> web.Response:
        """Exchange a code or the current refresh token (single use: it rotates)."""
        form = await request.post()
        client = (SANDBOX_ENV["OURA_CLIENT_ID"], SANDBOX_ENV["OURA_CLIENT_SECRET"])
        if (form.get("client_id"), form.get("client_secret")) != client:
            return _json({"error": "invalid_client"}, 401)
        if form.get("grant_type") == "authorization_code":
            code, redirect = str(form.get("code", "")), str(form.get("redirect_uri", ""))
            if not self.oura_auth.redeem(code, redirect):
                return _json({"error": "invalid_grant"}, 400)
        elif (form.get("grant_type"), form.get("refresh_token")) != (
            "refresh_token",
            self.oura_auth.refresh,
        ):
            return _json({"error": "invalid_grant"}, 400)
        access, refresh = self.oura_auth.rotate()
        token = {"token_type": "bearer", "access_token": access, "refresh_token": refresh}
        return _json(token | {"expires_in": 86400})

    async def oura_days(self, request: web.Request) -> web.Response:
        """Answer a page of one daily collection between start_date and end_date inclusive."""
        query = request.query
        try:
            end = date.fromisoformat(query.get("end_date", str(self.now.date())))
            start = date.fromisoformat(query.get("start_date", str(end - timedelta(days=1))))
            offset = _offset(query.get("next_token"))
        except ValueError:
            return _json({"detail": "Invalid start_date, end_date or next_token"}, 400)
        days = self.oura[request.match_info["kind"]]
        chosen = [doc for doc in days if str(start) <= doc["day"] <= str(end)]
        page = chosen[offset : offset + _OURA_PAGE]
        return _json({"data": page, "next_token": _next_token(offset + _OURA_PAGE, len(chosen))})

    async def oura_heartrate(self, request: web.Request) -> web.Response:
        """Answer a page of 5-minute heart-rate samples; windows over 30 days are refused."""
        query = request.query
        try:
            end = _parse_dt(query.get("end_datetime", self.now.isoformat()))
            start = _parse_dt(query.get("start_datetime", str(end - timedelta(days=1))))
            offset = _offset(query.get("next_token"))
        except ValueError:
            return _json({"detail": "Invalid start_datetime, end_datetime or next_token"}, 400)
        if not timedelta(0) <= end - start <= timedelta(days=30):
            return _json({"detail": "The time range must be positive and at most 30 days"}, 400)
        first = max(start, self.now - timedelta(days=120)).timestamp()
        grid = range(math.ceil(first / 300) * 300, int(min(end, self.now).timestamp()) + 1, 300)
        data = [self._beat(ts) for ts in grid[offset : offset + _HEARTRATE_PAGE]]
        return _json({"data": data, "next_token": _next_token(offset + _HEARTRATE_PAGE, len(grid))})

    def _beat(self, ts: int) -> _Obj:
        """Return the sample at ``ts``, derived from it alone so any window is reproducible."""
        moment = datetime.fromtimestamp(ts, UTC)
        asleep = moment.hour < 6
        bpm = (48 if asleep else 62) + zlib.crc32(f"{self.seed}:{ts}".encode()) % 20
        source = "sleep" if asleep else "awake"
        return {"bpm": bpm, "source": source, "timestamp": moment.isoformat()}

    def _reddit(self, handler: _Handler, *, bearer: bool = True) -> _Handler:
        """Wrap a Reddit route: default user agents are throttled, API routes need a bearer."""

        async def guarded(request: web.Request) -> web.Response:
            agent = request.headers.get("User-Agent", "")
            if not agent or agent.startswith(_DEFAULT_AGENTS):
                return _json({"message": "Too Many Requests", "error": 429}, 429)
            if not bearer:
                return await handler(request)
            if _bearer(request) not in self.rd_auth.access:
                return _json({"message": "Unauthorized", "error": 401}, 401)
            self.rd_rate.hit()
            response = await handler(request)
            response.headers["x-ratelimit-used"] = str(self.rd_rate.used)
            response.headers["x-ratelimit-remaining"] = f"{max(0, 600 - self.rd_rate.used):.1f}"
            response.headers["x-ratelimit-reset"] = str(self.rd_rate.reset - int(time.time()))
            return response

        return guarded

    async def rd_token(self, request: web.Request) -> web.Response:
        """Exchange the current refresh token, with client Basic auth, rotating it."""
        client = f"{SANDBOX_ENV['REDDIT_CLIENT_ID']}:{SANDBOX_ENV['REDDIT_CLIENT_SECRET']}"
        basic = f"Basic {base64.b64encode(client.encode()).decode()}"
        if request.headers.get("Authorization") != basic:
            return _json({"message": "Unauthorized", "error": 401}, 401)
        form = await request.post()
        if form.get("grant_type") == "authorization_code":
            code, redirect = str(form.get("code", "")), str(form.get("redirect_uri", ""))
            if not self.rd_auth.redeem(code, redirect):
                return _json({"error": "invalid_grant"}, 400)
        elif (form.get("grant_type"), form.get("refresh_token")) != (
            "refresh_token",
            self.rd_auth.refresh,
        ):
            return _json({"error": "invalid_grant"}, 400)
        access, refresh = self.rd_auth.rotate()
        token = {"access_token": access, "token_type": "bearer", "expires_in": 3600}
        return _json(token | {"scope": "history identity read", "refresh_token": refresh})

    async def rd_listing(self, request: web.Request) -> web.Response:
        """Answer a Listing page of the user's comments or posts, newest first."""
        if not _is_me(request, "REDDIT"):
            return _json({"message": "Not Found", "error": 404}, 404)
        items, start = self.rd[request.match_info["kind"]], 0
        if after := request.query.get("after"):
            names = [item["name"] for item in items]
            # An unknown cursor yields an empty listing, as on reddit.
            start = names.index(after) + 1 if after in names else len(items)
        limit = _num(request, "limit", 25, 100)
        page = items[start : start + limit]
        children = [{"kind": item["name"][:2], "data": item} for item in page]
        cursor = page[-1]["name"] if start + limit < len(items) else None
        listing = {"after": cursor, "before": None, "dist": len(page), "children": children}
        return _json({"kind": "Listing", "data": listing | {"modhash": None, "geo_filter": ""}})


@web.middleware
async def _observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Apply latency, serve a queued fault instead of the route, and record the request."""
    app, at = request.app, time.monotonic()
    try:
        await asyncio.sleep(app[_LATENCY])
        if faults := app[FAULTS].get(request.path):
            fault = faults.pop(0)
            return web.Response(status=fault.status, headers=fault.headers, body=fault.body)
        return await handler(request)
    finally:
        hits, path = app[REQUESTS], request.path
        hit = Hit(
            at=at,
            done=time.monotonic(),
            api=path.split("/")[1],
            method=request.method,
            path=path,
            query=dict(request.query),
            headers=dict(request.headers),
        )
        # Concurrent requests finish out of order; keep the list in arrival order.
        bisect.insort(hits, hit, key=lambda recorded: recorded.at)


def make_app(
    *, latency: float = 0.0, now: datetime | None = None, seed: int = 1
) -> web.Application:
    """Build the sandbox app serving all five fake providers (a naive ``now`` is read as UTC)."""
    moment = now or DEFAULT_NOW
    app = web.Application(middlewares=[_observe])
    app[REQUESTS], app[FAULTS], app[_LATENCY] = [], {}, latency
    app[DATA] = Sandbox(moment if moment.tzinfo else moment.replace(tzinfo=UTC), seed)
    app.add_routes(app[DATA].routes())
    return app


async def start(
    app: web.Application, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on host:port (0 picks a free port); return the runner and the base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner, f"http://{host}:{runner.addresses[0][1]}"


def base_urls(root: str) -> dict[str, str]:
    """Map each API name to its base URL under the sandbox's root URL."""
    root = root.rstrip("/")
    return {
        "hackernews": f"{root}/hackernews/v0",
        "github": f"{root}/github",
        "strava": f"{root}/strava",
        "oura": f"{root}/oura",
        "reddit": f"{root}/reddit",
    }


def environ(root: str) -> dict[str, str]:
    """The sandbox's credentials plus every URL override that points the bundled contracts
    at the sandbox served at ``root`` (base URLs, and token / authorize URLs on other hosts)."""
    env = dict(SANDBOX_ENV)
    for name, url in base_urls(root).items():
        env[f"APIGETTER_{name.upper()}_BASE_URL"] = url
    reddit, oura = base_urls(root)["reddit"], base_urls(root)["oura"]
    env["APIGETTER_REDDIT_TOKEN_URL"] = f"{reddit}/api/v1/access_token"
    env["APIGETTER_REDDIT_AUTHORIZE_URL"] = f"{reddit}/api/v1/authorize"
    env["APIGETTER_OURA_AUTHORIZE_URL"] = f"{oura}/oauth/authorize"
    return env
