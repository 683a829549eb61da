"""Real local HTTP servers for tests: a generic paged API farm, run in a background thread."""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import orjson
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Fault = tuple[int, dict[str, str], bytes] | Handler


def hang(seconds: float) -> Handler:
    """Answer only after ``seconds`` (past the client's timeout)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return web.json_response([])

    return handler


def drip(chunks: int, every: float) -> Handler:
    """Send a JSON body one byte at a time, ``every`` seconds apart."""

    async def handler(request: web.Request) -> web.StreamResponse:
        body = b"[" + b" " * (chunks - 2) + b"]"
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.content_length = len(body)
        await resp.prepare(request)
        for byte in body:
            await resp.write(bytes([byte]))
            await asyncio.sleep(every)
        return resp

    return handler


def reset_mid_body() -> Handler:
    """Promise 1,000 bytes, send a few, then drop the connection."""

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.content_length = 1000
        await resp.prepare(request)
        await resp.write(b'[{"id": 1, "created_at": ')
        assert request.transport is not None
        request.transport.abort()
        return resp

    return handler


def redirect(to: str) -> Fault:
    """A 302 to ``to``."""
    return (302, {"Location": to}, b"")


@dataclass(frozen=True)
class Hit:
    """One request as the server saw it."""

    api: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    start: float
    end: float


@dataclass
class Farm:
    """Several APIs of one shape: ``/<api>/items?page=N`` (Link pages), ``/<api>/user``,
    ``/<api>/item/<id>``. ``faults[path]`` holds answers served (once each) instead: a
    (status, headers, body) tuple or a handler for the misbehaviour."""

    latency: float = 0.0
    pages: int = 3
    per_page: int = 5
    hits: list[Hit] = field(default_factory=list)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    submitted: list[object] = field(default_factory=lambda: [1, 2, 3])  # child entity ids
    version: int = 1  # bump to change every body (upstream data changed)
    url: str = ""

    def items(self, api: str, page: int) -> list[dict[str, object]]:
        """Items of one page: newest first, two per day."""
        first = (page - 1) * self.per_page
        return [
            {
                "id": f"{api}-{n}",
                "v": self.version,
                "created_at": f"2026-11-{27 - n // 2:02d}T{10 + n % 2}:00:00Z",
            }
            for n in range(first, first + self.per_page)
        ]

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application()
        app.router.add_get("/{api}/items", self._items)
        app.router.add_get("/{api}/user", self._user)
        app.router.add_get("/{api}/item/{id}", self._item)
        app.router.add_get("/{tail:.*}", self._fault_only)
        return app

    async def _answer(
        self, request: web.Request, body: object, **headers: str
    ) -> web.StreamResponse:
        start = time.monotonic()
        await asyncio.sleep(self.latency)
        api = request.path.strip("/").split("/")[0]
        self.hits.append(
            Hit(
                api,
                request.path,
                dict(request.query),
                dict(request.headers),
                start,
                time.monotonic(),
            )
        )
        queued = self.faults.get(request.path)
        if queued:
            fault = queued.pop(0)
            if callable(fault):
                return await fault(request)
            status, extra, raw = fault
            return web.Response(status=status, headers=extra, body=raw)
        return web.Response(
            body=orjson.dumps(body), content_type="application/json", headers=headers
        )

    async def _items(self, request: web.Request) -> web.StreamResponse:
        api, page = request.match_info["api"], int(request.query.get("page", "1"))
        headers = {}
        if page < self.pages:
            headers["Link"] = f'<{self.url}/{api}/items?page={page + 1}>; rel="next"'
        return await self._answer(request, self.items(api, page), **headers)

    async def _user(self, request: web.Request) -> web.StreamResponse:
        api = request.match_info["api"]
        return await self._answer(
            request, {"login": api, "v": self.version, "submitted": self.submitted}
        )

    async def _item(self, request: web.Request) -> web.StreamResponse:
        return await self._answer(request, {"id": request.match_info["id"], "v": self.version})

    async def _fault_only(self, request: web.Request) -> web.StreamResponse:
        if request.path in self.faults:
            return await self._answer(request, None)
        raise web.HTTPNotFound()

    def by_api(self) -> dict[str, list[Hit]]:
        """Hits grouped by API."""
        grouped: dict[str, list[Hit]] = {}
        for hit in self.hits:
            grouped.setdefault(hit.api, []).append(hit)
        return grouped


@contextmanager
def serve(app: web.Application, tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 from a background thread; yields its base URL."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    ready = threading.Event()
    port: list[int] = []

    async def start() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
        await site.start()
        port.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        ready.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop)
    assert ready.wait(10), "server did not start"
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port[0]}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@contextmanager
def running(tls: ssl.SSLContext | None = None) -> Iterator[Farm]:
    """A farm served from a background thread, its ``url`` set."""
    farm = Farm()
    with serve(farm.app(), tls) as url:
        farm.url = url
        yield farm
