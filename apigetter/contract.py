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
Params may be a function of :class:`Context`, called when the endpoint is fetched.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
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
    def since(self) -> datetime:
        """Start of the standard window: last success minus overlap, else origin date."""
        if self.last_success is not None:
            return self.last_success - self.overlap
        return datetime.combine(self.origin_date, datetime.min.time(), self.tz)


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


class History:
    """Walks back through all history, one chunk per due run, until it says done."""

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


@dataclass(frozen=True)
class PageWalk(History):
    """Page after page until an empty page (or an end status, e.g. GitHub's 422)."""

    param: str = "page"
    start_page: int = 1
    size_param: str | None = "per_page"
    size: int = 100
    pause: float = 15 * MINUTE
    end_statuses: tuple[int, ...] = ()

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
        return int(cursor or self.start_page) + 1


@dataclass(frozen=True)
class WindowWalk(History):
    """Date windows of ``days`` back from today until ``origin_date``; gaps do not end it."""

    days: int = 30
    start_param: str = "start_date"
    end_param: str = "end_date"
    pause: float = 15 * MINUTE
    paginate: bool = True

    def start(self, ctx: Context) -> Cursor:
        return ctx.today.isoformat()

    def params(self, ctx: Context, cursor: Cursor) -> dict[str, str]:
        end = date.fromisoformat(str(cursor))
        start = max(end - timedelta(days=self.days - 1), ctx.origin_date)
        return {self.start_param: start.isoformat(), self.end_param: end.isoformat()}

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

    env: tuple[str, ...] = ()

    def headers(self, env: Mapping[str, str]) -> dict[str, str]:
        """Headers to send on every request to the API's own host."""
        return {}

    def params(self, env: Mapping[str, str]) -> dict[str, str]:
        """Query params to send on every request to the API's own host."""
        return {}


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
        return [n for n in self.required_env() if not env.get(n)]

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
        for limit in self.limits:
            if limit.count < 1 or limit.per_seconds <= 0:
                found.append(f"{limit} must have a positive count and window")
        if self.max_in_flight < 1:
            found.append("max_in_flight must be at least 1")
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
