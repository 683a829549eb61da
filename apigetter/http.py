"""HTTP for one run: one aiohttp session, per-API rate-limit buckets, retries, redaction."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import orjson
from aiolimiter import AsyncLimiter
from yarl import URL

from apigetter import __version__
from apigetter.config import Redactor, Settings
from apigetter.contract import Api, Limit, fill
from apigetter.errors import FetchError, NeedsAttention, QuotaDeferred, RetryLater

USER_AGENT = f"apigetter/{__version__}"
# Windows up to this long are paced evenly within a run. Longer ones (hourly, daily quotas)
# are exact as a request budget from the ledger, and may be spent in bursts.
SHORT_WINDOW = 60.0
SPACING = 1.02
REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 5


def bucket(limit: Limit) -> AsyncLimiter:
    """Even pacing that can never let ``limit.count`` + 1 requests into one window.

    A bucket of size B refilled at rate r admits at most ``B + r * per`` requests in any
    window of ``per`` seconds. Small counts get B = 1 and one request every
    ``SPACING * per / count`` s: at most ``floor(count / SPACING) + 1 <= count``, at 98% of
    the declared rate. From 100 up, B = count // 50 and r = (count - B) / (SPACING * per):
    ``B + (count - B) / SPACING < count``, at 96%, and a late wake-up (a busy event loop at
    10 ms spacing) can catch up instead of being lost.
    """
    size = max(1, limit.count // 50)
    if size == 1:
        return AsyncLimiter(1, SPACING * limit.per_seconds / limit.count)
    return AsyncLimiter(size, size * SPACING * limit.per_seconds / (limit.count - size))


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait as the response says: Retry-After (seconds or date), or a reset time."""
    value = headers.get("Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - now)
            except (TypeError, ValueError):
                pass
    if headers.get("X-RateLimit-Remaining") == "0" and headers.get("X-RateLimit-Reset"):
        try:
            return max(0.0, float(headers["X-RateLimit-Reset"]) - now)
        except ValueError:
            return None
    return None


@dataclass
class Response:
    """A decoded JSON response."""

    status: int
    body: Any
    links: dict[str, str]


Credentials = Callable[[], Awaitable[Mapping[str, str]]]  # headers, fetched per request


@dataclass
class ApiClient:
    """Per-API state for one run: buckets, concurrency cap, quota left, secrets."""

    api: Api
    base_url: str
    headers: dict[str, str]
    params: dict[str, str]  # credentials in the query, for the API's own origin only
    budget: int | None = None  # requests left in the tightest declared window, across runs
    buckets: list[AsyncLimiter] = field(default_factory=list)
    slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(4))
    credentials: Credentials | None = None  # e.g. an OAuth2 access token (auth.py)
    budget_window: float = 0.0  # seconds until the tightest window has slid past

    @classmethod
    async def create(
        cls,
        api: Api,
        env: Mapping[str, str],
        base_url: str,
        recent: list[int],
        credentials: Credentials | None = None,
    ) -> ApiClient:
        """The client of ``api``, given how many requests earlier runs sent in each window."""
        own = {k: fill(v, env, quoted=False) for k, v in api.headers.items()}
        headers = {"User-Agent": USER_AGENT, **own, **api.auth.headers(env)}
        windows = list(zip(api.limits, recent, strict=True))
        long = [
            (lim.count - n, lim.per_seconds) for lim, n in windows if lim.per_seconds > SHORT_WINDOW
        ]
        short = [(lim, n) for lim, n in windows if lim.per_seconds <= SHORT_WINDOW]
        tightest = min(long) if long else None
        client = cls(
            api=api,
            base_url=base_url.rstrip("/") + "/",
            headers=headers,
            params=api.auth.params(env),
            budget=tightest[0] if tightest else None,
            buckets=[bucket(limit) for limit, _ in short],
            slots=asyncio.Semaphore(api.max_in_flight),
            credentials=credentials,
            budget_window=tightest[1] if tightest else 0.0,
        )
        for limiter, (_, n) in zip(client.buckets, short, strict=True):
            if n:  # a run that just ended paced this window: keep its spacing going
                await limiter.acquire()
        return client

    async def request_headers(self) -> Mapping[str, str]:
        """Headers for a request to the API's own origin, with fresh credentials."""
        if self.credentials is None:
            return self.headers
        return {**self.headers, **(await self.credentials())}

    def same_origin(self, url: URL) -> bool:
        """Whether ``url`` is on the API's own host (credentials go nowhere else)."""
        base = URL(self.base_url)
        return (url.scheme, url.host, url.port) == (base.scheme, base.host, base.port)


class Http:
    """One aiohttp session shared by every API of a run."""

    def __init__(self, settings: Settings, redact: Redactor) -> None:
        self.settings = settings
        self.redact = redact
        timeout = aiohttp.ClientTimeout(
            total=settings.request_timeout, sock_connect=settings.connect_timeout
        )
        self.session = aiohttp.ClientSession(
            timeout=timeout,
            connector=aiohttp.TCPConnector(limit=100, limit_per_host=0),
        )

    async def close(self) -> None:
        """Close the session and its connections."""
        await self.session.close()

    async def get(
        self,
        client: ApiClient,
        url: str,
        params: Mapping[str, str],
        sent: list[float],
        accept: Iterable[int] = (),
    ) -> Response:
        """GET ``url`` as JSON, paced, retried, and following redirects safely.

        Statuses in ``accept`` are returned instead of raised. Each request's wall-clock
        time is appended to ``sent`` for the cross-run ledger.
        """
        settings = self.settings
        for attempt in range(settings.retries + 1):
            try:
                status, headers, raw, final = await self._send(client, url, params, sent)
            except aiohttp.ClientConnectorCertificateError as exc:  # not transient: no retry
                raise FetchError(f"{self._error(exc)} ({self._where(url)})") from None
            except (TimeoutError, aiohttp.ClientError) as exc:
                reason = "timed out" if isinstance(exc, TimeoutError) else self._error(exc)
                if attempt == settings.retries:
                    raise FetchError(f"{reason} ({self._where(url)})") from None
                await asyncio.sleep(self._backoff(attempt))
                continue
            if 200 <= status < 300 or status in accept:
                return Response(
                    status,
                    self._decode(status, headers, raw, final),
                    self._links(headers, final),
                )
            wait = retry_after(headers, time.time())
            limited = status == 429 or (status == 403 and wait is not None)
            if limited or status >= 500:
                wait = self._backoff(attempt) if wait is None else wait
                reason = f"HTTP {status}{self._excerpt(raw)}"
                if wait > settings.max_retry_wait:
                    raise RetryLater(
                        f"{reason}; retry after {math.ceil(wait)}s", time.time() + wait
                    )
                if attempt < settings.retries:
                    await asyncio.sleep(wait)
                    continue
                raise FetchError(f"{reason} after {attempt + 1} attempts")
            if status in (401, 403):
                raise NeedsAttention(f"HTTP {status}: credentials refused{self._excerpt(raw)}")
            raise FetchError(f"HTTP {status} ({self._where(final)}){self._excerpt(raw)}")
        raise AssertionError("unreachable")

    async def _send(
        self, client: ApiClient, url: str, params: Mapping[str, str], sent: list[float]
    ) -> tuple[int, Mapping[str, str], bytes, URL]:
        """One request plus its redirects; credentials only go to the API's own origin."""
        target = URL(url, encoded=True)  # paths were quoted by contract.fill already
        query: Mapping[str, str] | None = params or None
        for _ in range(MAX_REDIRECTS + 1):
            # Credentials first, outside the slot: an OAuth2 exchange must not hold one.
            own = client.same_origin(target)
            headers = await client.request_headers() if own else {"User-Agent": USER_AGENT}
            address = target.update_query(client.params) if own and client.params else target
            # Take the slot first: a token taken while waiting for a slot would let
            # requests bunch up when slots free, and the server would see a burst.
            async with client.slots:
                await self._take(client)
                sent.append(time.time())
                async with self.session.get(
                    address, params=query, headers=headers, allow_redirects=False
                ) as resp:
                    location = resp.headers.get("Location")
                    if resp.status in REDIRECTS and location:
                        target = target.join(URL(location))
                        query = None
                        continue
                    return resp.status, resp.headers, await self._read(resp), resp.url
        raise FetchError(f"more than {MAX_REDIRECTS} redirects ({self._where(url)})")

    async def _take(self, client: ApiClient) -> None:
        """Wait for every bucket of the API; refuse once the cross-run quota is spent."""
        if client.budget is not None:
            if client.budget <= 0:
                until = time.time() + client.budget_window
                raise QuotaDeferred("declared quota used up; deferred", until)
            client.budget -= 1
        for limiter in client.buckets:
            await limiter.acquire()

    async def _read(self, resp: aiohttp.ClientResponse) -> bytes:
        cap = self.settings.max_body_bytes
        if (resp.content_length or 0) > cap:
            raise FetchError(f"body of {resp.content_length} bytes exceeds the {cap} byte cap")
        body = bytearray()
        async for chunk in resp.content.iter_any():
            body += chunk
            if len(body) > cap:  # a lying or missing Content-Length must not fill memory
                raise FetchError(f"body exceeds the {cap} byte cap")
        return bytes(body)

    def _decode(self, status: int, headers: Mapping[str, str], raw: bytes, url: URL) -> Any:
        if not raw.strip():
            return None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            kind = headers.get("Content-Type", "no content type").split(";")[0]
            raise FetchError(
                f"HTTP {status} but not JSON ({kind}, {self._where(url)}){self._excerpt(raw)}"
            ) from None

    def _links(self, headers: Mapping[str, str], url: URL) -> dict[str, str]:
        links: dict[str, str] = {}
        for part in headers.get("Link", "").split(","):
            target, _, attrs = part.partition(";")
            rel = next(
                (
                    a.split("=", 1)[1].strip('" ')
                    for a in attrs.split(";")
                    if a.strip().startswith("rel=")
                ),
                None,
            )
            if rel and target.strip().startswith("<"):
                links[rel] = str(url.join(URL(target.strip()[1:-1])))
        return links

    def _backoff(self, attempt: int) -> float:
        delay: float = self.settings.retry_backoff * 2**attempt
        return delay * random.uniform(0.5, 1.5)

    def _excerpt(self, raw: bytes) -> str:
        text = " ".join(raw[:300].decode("utf-8", "replace").split())[:120]
        return f": {self.redact(text)}" if text else ""

    def _where(self, url: str | URL) -> str:
        """A URL without its query (which may hold keys), redacted."""
        return self.redact(str(URL(str(url)).with_query(None)))

    def _error(self, exc: BaseException) -> str:
        return self.redact(f"{type(exc).__name__}: {exc}")[:200]
