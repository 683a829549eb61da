"""The contract model: everything a contract author needs, and nothing else.

A contract is a Python module that defines ``API = Api(...)``. A simple one::

    from apigetter.contract import DAY, Api, Endpoint, LinkHeaderPager, Limit, TokenAuth

    API = Api(
        name="github",
        base_url="https://api.github.com",
        auth=TokenAuth("GITHUB_TOKEN"),
        limits=(Limit(5000, per_seconds=3600),),
        endpoints=(
            Endpoint("user", "users/{GITHUB_USERNAME}", every=DAY),
            Endpoint("starred", "user/starred", paginator=LinkHeaderPager(),
                     params={"per_page": 100}),
        ),
    )

``{UPPER_CASE}`` in a path, a static param or a header is read from the environment
(or ``.env``) at run time; an API whose values are missing is skipped as *not ready*.
Params may be a function of :class:`Context`, called when the endpoint is fetched, such
as :class:`Since` (a window from the last success). History walkers (:class:`PageWalk`,
:class:`CursorWalk`, :class:`BeforeWalk`, :class:`WindowWalk`) fetch all history chunk by
chunk until ``origin_date``; :class:`OAuth2Refresh` declares refresh-token auth.
docs/contracts.md builds a contract from zero to a tested one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0

ParamValue = str | int | float | bool
Params = Mapping[str, ParamValue]
Cursor = str | int | None

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True)
class Limit:
    """At most ``count`` requests in any window of ``per_seconds``."""

    count: int
    per_seconds: float


@dataclass(frozen=True)
class Context:
    """What params and history walkers may look at when a request is built."""

    now: datetime
    tz: ZoneInfo
    origin_date: date
    last_success: datetime | None
    env: Mapping[str, str]
    overlap: timedelta = timedelta(days=1)

    @property
    def today(self) -> date:
        """Today in the configured time zone."""
        return self.now.astimezone(self.tz).date()

    @property
    def origin(self) -> datetime:
        """Midnight of ``origin_date`` in the configured time zone."""
        return datetime.combine(self.origin_date, time(), self.tz)

    @property
    def since(self) -> datetime:
        """Start of the standard window: last success minus overlap, else origin date."""
        if self.last_success is not None:
            return self.last_success - self.overlap
        return self.origin

    def window_start(
        self, first: timedelta | None = None, overlap: timedelta | None = None
    ) -> datetime:
        """Where a standard window starts: the last success minus ``overlap`` (default the
        context's); on the first run only ``first`` back from now (a history walk fetches
        the rest), or the origin date when ``first`` is None. Never before the origin."""
        if self.last_success is not None:
            start = self.last_success - (self.overlap if overlap is None else overlap)
        elif first is not None:
            start = self.now - first
        else:
            start = self.origin
        return max(start, self.origin)


@dataclass(frozen=True)
class Page:
    """One fetched page, as paginators and history walkers see it."""

    url: str
    params: Mapping[str, str]
    status: int
    body: Any
    items: list[Any]
    links: Mapping[str, str]  # rel -> absolute URL, from the Link header


NextRequest = tuple[str, dict[str, str]]  # absolute URL and its query params


class Paginator:
    """Finds the next page of a response; the base class never pages."""

    def first(self, params: dict[str, str]) -> dict[str, str]:
        """Params of the first page."""
        return params

    def next(self, page: Page) -> NextRequest | None:
        """The request for the page after ``page``, or None at the end."""
        return None


@dataclass(frozen=True)
class LinkHeaderPager(Paginator):
    """Follows ``Link: <url>; rel="next"`` (GitHub and friends)."""

    def next(self, page: Page) -> NextRequest | None:
        url = page.links.get("next")
        return (url, {}) if url else None


@dataclass(frozen=True)
class PageNumberPager(Paginator):
    """``?page=N``; stops at an empty or short page."""

    param: str = "page"
    start: int = 1
    size_param: str | None = "per_page"
    size: int | None = 100

    def first(self, params: dict[str, str]) -> dict[str, str]:
        first = {**params, self.param: str(self.start)}
        if self.size_param and self.size:
            first[self.size_param] = str(self.size)
        return first

    def next(self, page: Page) -> NextRequest | None:
        if not page.items or (self.size and len(page.items) < self.size):
            return None
        number = int(page.params.get(self.param, self.start)) + 1
        return page.url, {**page.params, self.param: str(number)}


@dataclass(frozen=True)
class CursorPager(Paginator):
    """A token from the body (``field``, dotted) sent back as ``param``."""

    param: str = "next_token"
    field: str = "next_token"

    def next(self, page: Page) -> NextRequest | None:
        token = dig(page.body, self.field)
        if token in (None, ""):
            return None
        return page.url, {**page.params, self.param: str(token)}


STAMP_FORMATS = ("iso", "epoch", "date", "datetime")


def stamp(moment: datetime, fmt: str, tz: ZoneInfo) -> str:
    """A moment as a query param: ``iso`` (UTC, ``...Z``), ``epoch`` seconds, or the local
    ``date`` / ``datetime`` (with offset) in ``tz``."""
    if fmt == "epoch":
        return str(int(moment.timestamp()))
    if fmt == "date":
        return moment.astimezone(tz).date().isoformat()
    if fmt == "datetime":
        return moment.astimezone(tz).replace(microsecond=0).isoformat()
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _param_text(value: ParamValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class Since:
    """Params of a standard window that starts where the last success left off.

    ``Since("after", fmt="epoch", first=timedelta(days=14))`` sends ``after=<epoch>``: the
    last success minus the overlap, or on the first run 14 days back (the endpoint's history
    walk fetches the rest), never before ``origin_date``. ``end_param`` also sends the
    window's end: now, or tomorrow for ``fmt="date"`` (so today is inside whether the API's
    end date is inclusive or not). ``max_span`` caps the window (an API that refuses longer
    ones); ``extra`` are static params sent along.
    """

    param: str
    fmt: str = "iso"  # one of STAMP_FORMATS
    end_param: str | None = None
    first: timedelta | None = None
    overlap: timedelta | None = None  # None: the context's (one day)
    max_span: timedelta | None = None
    extra: Params = field(default_factory=dict)

    def __call__(self, ctx: Context) -> dict[str, ParamValue]:
        start = ctx.window_start(self.first, self.overlap)
        if self.max_span is not None:
            start = max(start, ctx.now - self.max_span)
        params: dict[str, ParamValue] = {**self.extra, self.param: stamp(start, self.fmt, ctx.tz)}
        if self.end_param:
            end = ctx.now + timedelta(days=1) if self.fmt == "date" else ctx.now
            params[self.end_param] = stamp(end, self.fmt, ctx.tz)
        return params


class History:
    """Walks back through all history, one chunk per due run, until it says done.

    Every walker ends at ``origin_date``: date windows never reach before it, and walkers
    over pages stop once the oldest item of a chunk (its ``date_field``) is older.
    """

    pause: float = 15 * MINUTE  # between chunks
    end_statuses: tuple[int, ...] = ()  # a status that means "no more history"
    paginate: bool = False  # follow the endpoint's paginator inside a chunk

    def start(self, ctx: Context) -> Cursor:
        """The cursor of the first chunk."""
        raise NotImplementedError

    def params(self, ctx: Context, cursor: Cursor) -> dict[str, str]:
        """Query params of the chunk at ``cursor``."""
        raise NotImplementedError

    def advance(self, ctx: Context, cursor: Cursor, pages: list[Page]) -> Cursor:
        """The next chunk's cursor, or None when the walk is complete."""
        raise NotImplementedError


def oldest(pages: list[Page], date_field: str, tz: ZoneInfo) -> datetime | None:
    """The earliest readable ``date_field`` among the items of the last page."""
    found = [moment_of(dig(item, date_field), tz) for item in pages[-1].items] if pages else []
    moments = [m for m in found if m is not None]
    return min(moments) if moments else None


def _reached_origin(ctx: Context, pages: list[Page], date_field: str | None) -> bool:
    if date_field is None:
        return False
    earliest = oldest(pages, date_field, ctx.tz)
    return earliest is not None and earliest < ctx.origin


@dataclass(frozen=True)
class PageWalk(History):
    """Page after page until an empty or short page, an end status (GitHub's 422), or an
    item older than ``origin_date`` (when ``date_field`` names the items' date)."""

    param: str = "page"
    start_page: int = 1
    size_param: str | None = "per_page"
    size: int = 100
    pause: float = 15 * MINUTE
    end_statuses: tuple[int, ...] = ()
    date_field: str | None = None

    def start(self, ctx: Context) -> Cursor:
        return self.start_page

    def params(self, ctx: Context, cursor: Cursor) -> dict[str, str]:
        params = {self.param: str(cursor)}
        if self.size_param:
            params[self.size_param] = str(self.size)
        return params

    def advance(self, ctx: Context, cursor: Cursor, pages: list[Page]) -> Cursor:
        if not pages or not pages[-1].items or len(pages[-1].items) < self.size:
            return None
        if _reached_origin(ctx, pages, self.date_field):
            return None
        return int(cursor or self.start_page) + 1


@dataclass(frozen=True)
class CursorWalk(History):
    """Back through a cursor-paged listing, one page per chunk: the body's cursor
    (``cursor_field``, dotted) goes back as ``param`` (Reddit's ``after``). Ends when the
    body has no cursor, a page is empty, or an item is older than ``origin_date``."""

    param: str = "after"
    cursor_field: str = "after"
    date_field: str | None = None
    extra: Params = field(default_factory=dict)  # static params of every chunk
    pause: float = 15 * MINUTE
    end_statuses: tuple[int, ...] = ()

    def start(self, ctx: Context) -> Cursor:
        return ""  # the newest page

    def params(self, ctx: Context, cursor: Cursor) -> dict[str, str]:
        params = {k: _param_text(v) for k, v in self.extra.items()}
        if cursor:
            params[self.param] = str(cursor)
        return params

    def advance(self, ctx: Context, cursor: Cursor, pages: list[Page]) -> Cursor:
        if not pages or not pages[-1].items or _reached_origin(ctx, pages, self.date_field):
            return None
        token = dig(pages[-1].body, self.cursor_field)
        if token in (None, "") or str(token) == str(cursor):
            return None
        return str(token)


@dataclass(frozen=True)
class BeforeWalk(History):
    """Back in time by the oldest item seen: each chunk asks for items before the oldest
    ``date_field`` of the previous chunk (Strava's ``before``). Ends at an empty or short
    page, or at ``origin_date``."""

    param: str = "before"
    date_field: str = "start_date"
    fmt: str = "epoch"  # how the moment is sent: one of STAMP_FORMATS
    size_param: str | None = "per_page"
    size: int = 100
    extra: Params = field(default_factory=dict)
    pause: float = 15 * MINUTE
    end_statuses: tuple[int, ...] = ()

    def start(self, ctx: Context) -> Cursor:
        return stamp(ctx.now, self.fmt, ctx.tz)

    def params(self, ctx: Context, cursor: Cursor) -> dict[str, str]:
        params = {k: _param_text(v) for k, v in self.extra.items()}
        params[self.param] = str(cursor)
        if self.size_param:
            params[self.size_param] = str(self.size)
        return params

    def advance(self, ctx: Context, cursor: Cursor, pages: list[Page]) -> Cursor:
        if not pages or len(pages[-1].items) < self.size:
            return None
        earliest = oldest(pages, self.date_field, ctx.tz)
        if earliest is None or earliest < ctx.origin:
            return None
        following = stamp(earliest, self.fmt, ctx.tz)
        return None if following == str(cursor) else following


@dataclass(frozen=True)
class WindowWalk(History):
    """Date windows of ``days`` back from today until ``origin_date``; gaps do not end it.

    With ``datetimes`` the window is sent as local date-times with offset (midnight to
    midnight in the configured zone), for APIs such as Oura's heart rate.
    """

    days: int = 30
    start_param: str = "start_date"
    end_param: str = "end_date"
    pause: float = 15 * MINUTE
    paginate: bool = True
    datetimes: bool = False
    extra: Params = field(default_factory=dict)

    def start(self, ctx: Context) -> Cursor:
        return ctx.today.isoformat()

    def params(self, ctx: Context, cursor: Cursor) -> dict[str, str]:
        end = date.fromisoformat(str(cursor))
        start = max(end - timedelta(days=self.days - 1), ctx.origin_date)
        params = {k: _param_text(v) for k, v in self.extra.items()}
        if self.datetimes:
            params[self.start_param] = datetime.combine(start, time(), ctx.tz).isoformat()
            after = end + timedelta(days=1)
            params[self.end_param] = datetime.combine(after, time(), ctx.tz).isoformat()
        else:
            params[self.start_param] = start.isoformat()
            params[self.end_param] = end.isoformat()
        return params

    def advance(self, ctx: Context, cursor: Cursor, pages: list[Page]) -> Cursor:
        next_end = date.fromisoformat(str(cursor)) - timedelta(days=self.days)
        return None if next_end < ctx.origin_date else next_end.isoformat()


@dataclass(frozen=True)
class Child:
    """One request per entity of the parent endpoint (e.g. each item a user submitted)."""

    name: str
    path: str  # with "{id}" for the entity id
    ids: str | Callable[[Any], Iterable[str | int]] = "id"  # a field of each item, or a function
    params: Params = field(default_factory=dict)
    new_only: bool = True  # fetch only entities not archived yet
    max_per_run: int = 1000

    def entity_ids(self, data: Any) -> list[str]:
        """The entity ids named by the parent's data (items list or snapshot body)."""
        if callable(self.ids):
            found: Iterable[Any] = self.ids(data)
        else:
            rows = data if isinstance(data, list) else [data]
            found = (row.get(self.ids) for row in rows if isinstance(row, dict))
        return list(dict.fromkeys(str(i) for i in found if i is not None and i != ""))


@dataclass(frozen=True)
class Endpoint:
    """One URL to archive: a snapshot, or items split into day files."""

    name: str
    path: str
    every: float = DAY  # seconds between standard fetches
    params: Params | Callable[[Context], Params] = field(default_factory=dict)
    items: str | None = None  # dotted path to the item list in the body; None: the body
    day_key: str | None = None  # item field with a date/time: one file per day
    id_key: str | None = None  # item id field: day files become unions that never shrink
    paginator: Paginator = field(default_factory=Paginator)
    max_pages: int = 50  # per run, so a runaway cursor cannot loop forever
    history: History | None = None
    children: tuple[Child, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "children", tuple(self.children))


class Auth:
    """How requests prove who we are; the base class sends nothing."""

    env: tuple[str, ...] = ()  # variables it needs

    def headers(self, env: Mapping[str, str]) -> dict[str, str]:
        """Headers to send on every request to the API's own host."""
        return {}

    def params(self, env: Mapping[str, str]) -> dict[str, str]:
        """Query params to send on every request to the API's own host."""
        return {}

    def missing(self, env: Mapping[str, str]) -> list[str]:
        """Needed variables that are absent or empty in ``env``."""
        return [name for name in self.env if not env.get(name)]

    def secret_env(self) -> tuple[str, ...]:
        """Variables whose values are secrets: redacted from every error and excerpt."""
        return self.env


@dataclass(frozen=True)
class TokenAuth(Auth):
    """A static token in a header: ``Authorization: Bearer <TOKEN>``."""

    var: str
    scheme: str = "Bearer"
    header: str = "Authorization"

    @property
    def env(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.var,)

    def headers(self, env: Mapping[str, str]) -> dict[str, str]:
        token = env[self.var]
        return {self.header: f"{self.scheme} {token}" if self.scheme else token}


CLIENT_AUTH = ("body", "basic")


@dataclass(frozen=True)
class OAuth2Refresh(Auth):
    """OAuth2 with a refresh token (RFC 6749 section 6), for APIs whose access tokens expire.

    The fields name environment variables, except the URLs and settings. The engine
    exchanges the refresh token for an access token at most once per run and API (and
    again only when that one expires), stores a rotated refresh token in the store before
    the new access token is used, and prefers the stored refresh token over the
    environment's. ``apigetter authorize NAME`` gets the first refresh token through the
    authorization-code flow with a loopback redirect to ``http://127.0.0.1:<port>/callback``.

    ``token_url`` and ``authorize_url`` may be relative to the API's base URL; absolute
    ones can be overridden with ``APIGETTER_<NAME>_TOKEN_URL`` / ``..._AUTHORIZE_URL``.
    ``client_auth`` says how the client proves itself at the token URL: ``body`` (client_id
    and client_secret form fields) or ``basic`` (HTTP Basic). With ``access_token`` set
    and that variable present, its value is used as a static bearer token instead (e.g. a
    personal access token) and nothing is exchanged.
    """

    token_url: str
    client_id: str
    client_secret: str
    refresh_token: str
    client_auth: str = "body"
    authorize_url: str | None = None
    scope: str = ""
    authorize_params: Mapping[str, str] = field(default_factory=dict)
    redirect_port: int = 0  # 0: any free port (providers that match the host only)
    access_token: str | None = None
    scheme: str = "Bearer"

    @property
    def env(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.client_id, self.client_secret)

    def static(self, env: Mapping[str, str]) -> bool:
        """Whether a static access token from the environment replaces the exchange."""
        return bool(self.access_token and env.get(self.access_token))

    def headers(self, env: Mapping[str, str]) -> dict[str, str]:
        if self.access_token and self.static(env):
            return {"Authorization": f"{self.scheme} {env[self.access_token]}"}
        return {}  # the engine adds the exchanged access token

    def missing(self, env: Mapping[str, str]) -> list[str]:
        return [] if self.static(env) else super().missing(env)

    def secret_env(self) -> tuple[str, ...]:
        names = (self.client_id, self.client_secret, self.refresh_token, self.access_token)
        return tuple(n for n in names if n)

    def problems(self) -> list[str]:
        """What is wrong with this declaration."""
        found = []
        if not self.token_url:
            found.append("OAuth2Refresh needs a token_url")
        if self.client_auth not in CLIENT_AUTH:
            found.append(f"OAuth2Refresh client_auth must be one of {', '.join(CLIENT_AUTH)}")
        if not 0 <= self.redirect_port <= 65535:
            found.append("OAuth2Refresh redirect_port must be a port number (0: any)")
        return found


@dataclass(frozen=True)
class QueryKeyAuth(Auth):
    """An API key in the query string: ``?api_key=<KEY>``."""

    var: str
    param: str = "api_key"

    @property
    def env(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.var,)

    def params(self, env: Mapping[str, str]) -> dict[str, str]:
        return {self.param: env[self.var]}


@dataclass(frozen=True)
class Api:
    """A third-party API: where it lives, how to authenticate, its limits, its endpoints."""

    name: str
    base_url: str
    endpoints: tuple[Endpoint, ...]
    limits: tuple[Limit, ...] = ()
    auth: Auth = field(default_factory=Auth)
    headers: Mapping[str, str] = field(default_factory=dict)
    max_in_flight: int = 4  # concurrent requests to this API

    def __post_init__(self) -> None:
        object.__setattr__(self, "endpoints", tuple(self.endpoints))
        object.__setattr__(self, "limits", tuple(self.limits))

    @property
    def base_url_var(self) -> str:
        """Environment variable that overrides the base URL."""
        return f"APIGETTER_{self.name.upper()}_BASE_URL"

    def required_env(self) -> list[str]:
        """Environment names this API needs: credentials and ``{PLACEHOLDERS}``."""
        texts = [self.base_url, *self.headers.values()]
        for ep in self.endpoints:
            texts.append(ep.path)
            if not callable(ep.params):
                texts.extend(str(v) for v in ep.params.values())
            for child in ep.children:
                texts.extend([child.path, *(str(v) for v in child.params.values())])
        names = {n for t in texts for n in _PLACEHOLDER.findall(t) if n.isupper()}
        return sorted(names | set(self.auth.env))

    def missing_env(self, env: Mapping[str, str]) -> list[str]:
        """Required names absent or empty in ``env``."""
        placeholders = set(self.required_env()) - set(self.auth.env)
        missing = {n for n in placeholders if not env.get(n)} | set(self.auth.missing(env))
        return sorted(missing)

    def problems(self) -> list[str]:
        """Everything wrong with this contract, as sentences; empty when valid."""
        found = self._wrong_types()
        if found:  # the checks below assume the types are right
            return found
        if not _NAME.match(self.name):
            found.append(f"name {self.name!r} must be lower case letters, digits, _")
        if not self.base_url.startswith(("https://", "http://", "{")):
            found.append(f"base_url {self.base_url!r} must start with https://")
        if not self.endpoints:
            found.append("has no endpoints")
        names = [ep.name for ep in self.endpoints]
        for ep in self.endpoints:
            if names.count(ep.name) > 1:
                found.append(f"endpoint {ep.name!r} is defined twice")
            if not _NAME.match(ep.name):
                found.append(f"endpoint name {ep.name!r} must be lower case letters, digits, _")
            if ep.every <= 0 or ep.max_pages < 1:
                found.append(f"endpoint {ep.name!r}: every and max_pages must be positive")
            for child in ep.children:
                if "{id}" not in child.path:
                    found.append(f"child {child.name!r} path must contain {{id}}")
                if not _NAME.match(child.name) or child.name in names:
                    found.append(f"child name {child.name!r} must be a new lower case name")
            if ep.id_key and not ep.day_key:
                found.append(f"endpoint {ep.name!r}: id_key needs day_key (it merges day files)")
            found.extend(f"endpoint {ep.name!r}: {p}" for p in _params_problems(ep))
        for limit in self.limits:
            if limit.count < 1 or limit.per_seconds <= 0:
                found.append(f"{limit} must have a positive count and window")
        if self.max_in_flight < 1:
            found.append("max_in_flight must be at least 1")
        if isinstance(self.auth, OAuth2Refresh):
            found.extend(self.auth.problems())
        return found

    def _wrong_types(self) -> list[str]:
        number = (int, float)
        checks: list[tuple[str, object, type | tuple[type, ...]]] = [
            ("name", self.name, str),
            ("base_url", self.base_url, str),
            ("auth", self.auth, Auth),
            ("headers", self.headers, Mapping),
            ("max_in_flight", self.max_in_flight, int),
        ]
        for limit in self.limits:
            checks.append(("limits", limit, Limit))
            if isinstance(limit, Limit):
                checks += [
                    ("Limit count", limit.count, int),
                    ("Limit per", limit.per_seconds, number),
                ]
        for ep in self.endpoints:
            checks.append(("endpoints", ep, Endpoint))
            if isinstance(ep, Endpoint):
                at = f"endpoint {ep.name!r}"
                checks += [
                    (f"{at} name", ep.name, str),
                    (f"{at} path", ep.path, str),
                    (f"{at} every", ep.every, number),
                    (f"{at} max_pages", ep.max_pages, int),
                    (f"{at} paginator", ep.paginator, Paginator),
                    (f"{at} history", ep.history, (History, type(None))),
                    *((f"{at} children", child, Child) for child in ep.children),
                ]
        return [
            f"{label} must be {getattr(kind, '__name__', 'a number')}, not {value!r}"
            for label, value, kind in checks
            if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool))
        ]

    def warnings(self) -> list[str]:
        """Things that work but are probably not meant; empty when none."""
        found = []
        for ep in self.endpoints:
            if ep.day_key and not ep.id_key:
                found.append(
                    f"endpoint {ep.name!r} splits days without id_key: a fetch that covers "
                    "part of a day replaces a fuller day file"
                )
            if ep.history is not None and ep.history.pause < MINUTE:
                found.append(f"endpoint {ep.name!r}: history pause under a minute")
        if not self.limits:
            found.append("declares no rate limit")
        return found


def _params_problems(ep: Endpoint) -> list[str]:
    """Problems of an endpoint's window params and history walker."""
    found = []
    walk = ep.history
    formats = [ep.params.fmt] if isinstance(ep.params, Since) else []
    if isinstance(walk, BeforeWalk):
        formats.append(walk.fmt)
    for fmt in formats:
        if fmt not in STAMP_FORMATS:
            found.append(f"unknown time format {fmt!r} (use {', '.join(STAMP_FORMATS)})")
    if isinstance(walk, WindowWalk) and walk.days < 1:
        found.append("WindowWalk days must be at least 1")
    if isinstance(walk, PageWalk | BeforeWalk) and walk.size < 1:
        found.append("history size must be at least 1")
    return found


def fill(template: str, values: Mapping[str, str], *, quoted: bool = True) -> str:
    """Replace ``{NAME}`` with its value, URL-quoted for paths (so ids add no segments)."""
    if quoted:
        return _PLACEHOLDER.sub(lambda m: _segment(str(values[m.group(1)])), template)
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), template)


def _segment(value: str) -> str:
    """One URL path segment; ``.`` and ``..`` are encoded so they cannot climb the path."""
    return "%2E" * len(value) if value in (".", "..") else quote(value, safe="")


def dig(data: Any, path: str | None) -> Any:
    """``dig(body, "data.after")``: follow dotted keys, None where one is missing."""
    if not path:
        return data
    for key in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def day_of(value: Any, tz: ZoneInfo) -> date | None:
    """The day, in ``tz``, of an ISO date/time string or epoch seconds; None if unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).astimezone(tz).date()
    if not isinstance(value, str) or not value:
        return None
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    # A local time without offset already is a wall-clock time in the user's zone.
    return moment.astimezone(tz).date() if moment.tzinfo else moment.date()


def moment_of(value: Any, tz: ZoneInfo) -> datetime | None:
    """An ISO date/time string or epoch seconds as an aware datetime; None if unreadable.

    A date alone is midnight in ``tz``; a local time without offset is a time in ``tz``.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), tz)
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)
