"""Emulated third-party API farm: one aiohttp process serving K APIs with latency and limits."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

JSON = {"Content-Type": "application/json"}
RETRY = {**JSON, "Retry-After": "1"}
LIMITED = orjson.dumps({"message": "API rate limit exceeded"})
MISSING = orjson.dumps({"message": "Not Found"})


def max_in_window(arrivals: list[float], per: float) -> int:
    """Return the most arrivals in any window (t - per, t], by two pointers over sorted times."""
    ts = sorted(arrivals)
    best = lo = 0
    for hi, t in enumerate(ts):
        while ts[lo] <= t - per:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def item(name: str, n: int) -> dict[str, Any]:
    """Build list item n of API `name`, created over five days of November 2026."""
    sec = n * 3607 % 86400
    stamp = f"2026-11-{20 + n % 5}T{sec // 3600:02}:{sec // 60 % 60:02}:{sec % 60:02}Z"
    return {"id": f"{name}-{n}", "created_at": stamp, "value": n * 7919 % 10007}


def write_atomic(path: str, data: bytes) -> None:
    """Write via rename so a poller never sees a half-written file."""
    tmp = Path(f"{path}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class Api:
    """One emulated API: precomputed bodies, fixed latency and a sliding-window limiter."""

    def __init__(self, cfg: dict[str, Any], base: str) -> None:
        self.name: str = cfg["name"]
        self.latency = float(cfg.get("latency", 0.0))
        self.limit: dict[str, float] | None = cfg.get("limit")
        self.count = int(self.limit["count"]) if self.limit else 0
        # Unlimited APIs still report their peak requests per second.
        self.per = float(self.limit["per"]) if self.limit else 1.0
        pages, per_page = int(cfg["pages"]), int(cfg["per_page"])
        items = [item(self.name, n) for n in range(pages * per_page)]
        self.pages = [orjson.dumps(items[p * per_page : (p + 1) * per_page]) for p in range(pages)]
        next_url = f"{base}/{self.name}/items?page="
        self.heads = [{**JSON, "Link": f'<{next_url}{p}>; rel="next"'} for p in range(2, pages + 1)]
        self.heads.append(JSON)
        extra = {"owner": {"login": self.name}, "state": "open", "body": "x" * 84}  # ~200 B bodies
        self.children = {i["id"]: orjson.dumps({**i, **extra}) for i in items}
        self.user = orjson.dumps({"login": f"{self.name}-bot", "plan": "free", "items": len(items)})
        self.reset()

    def reset(self) -> None:
        """Forget all arrivals and counters."""
        self.arrivals: list[float] = []
        self.lo = 0  # first arrival still inside the trailing window
        self.ok = 0
        self.limited = 0

    def admit(self) -> bool:
        """Record an arrival; refuse it if the trailing window now holds more than `count`."""
        now = time.monotonic()
        arrivals = self.arrivals
        arrivals.append(now)
        if self.limit is None:
            return True
        while arrivals[self.lo] <= now - self.per:
            self.lo += 1
        if len(arrivals) - self.lo <= self.count:
            return True
        self.limited += 1
        return False

    async def respond(self, body: bytes | None, headers: dict[str, str]) -> web.Response:
        """Answer after the API's latency; the limit is judged at arrival like a real gateway."""
        admitted = self.admit()
        if self.latency:
            await asyncio.sleep(self.latency)
        if not admitted:
            return web.Response(status=429, body=LIMITED, headers=RETRY)
        if body is None:
            return web.Response(status=404, body=MISSING, headers=JSON)
        self.ok += 1
        return web.Response(body=body, headers=headers)

    async def items(self, request: web.Request) -> web.Response:
        """Serve one page of the item list, linking to the next."""
        page = request.query.get("page", "1")
        p = int(page) - 1 if page.isdigit() else -1
        if 0 <= p < len(self.pages):
            return await self.respond(self.pages[p], self.heads[p])
        return await self.respond(None, JSON)

    async def child(self, request: web.Request) -> web.Response:
        """Serve one item's detail."""
        return await self.respond(self.children.get(request.match_info["id"]), JSON)

    async def snapshot(self, request: web.Request) -> web.Response:
        """Serve the account snapshot."""
        return await self.respond(self.user, JSON)

    def report(self) -> dict[str, Any]:
        """Summarise this API's traffic."""
        a = self.arrivals
        return {
            "requests": len(a),
            "ok": self.ok,
            "429": self.limited,
            "max_in_window": max_in_window(a, self.per),
            "limit": self.limit,
            "first": a[0] if a else None,
            "last": a[-1] if a else None,
        }


def report(apis: list[Api]) -> bytes:
    """Serialise the whole farm's report."""
    per_api = {api.name: api.report() for api in apis}
    return orjson.dumps({"apis": per_api, "total": sum(r["requests"] for r in per_api.values())})


async def serve(spec: dict[str, Any], port_file: str, report_file: str | None) -> None:
    """Serve until SIGTERM/SIGINT, then write the final report."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound before building APIs so Link headers can carry the port
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    apis = [Api(cfg, base) for cfg in spec["apis"]]
    app = web.Application()
    for api in apis:
        app.router.add_get(f"/{api.name}/items", api.items)
        app.router.add_get(f"/{api.name}/items/{{id}}", api.child)
        app.router.add_get(f"/{api.name}/user", api.snapshot)

    async def get_report(_: web.Request) -> web.Response:
        return web.Response(body=report(apis), headers=JSON)

    async def post_reset(_: web.Request) -> web.Response:
        for api in apis:
            api.reset()
        return web.Response(status=204)

    app.router.add_get("/_report", get_report)
    app.router.add_post("/_reset", post_reset)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.SockSite(runner, sock, backlog=1024).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    write_atomic(port_file, f"{sock.getsockname()[1]}\n".encode())
    await stop.wait()
    if report_file:
        write_atomic(report_file, report(apis))
    await runner.cleanup()


def main() -> None:
    """Parse arguments and run the farm."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", required=True, help="JSON file with {'apis': [...]}")
    parser.add_argument("--port-file", required=True, help="written with the port once listening")
    parser.add_argument("--report", help="final report written here on SIGTERM/SIGINT")
    args = parser.parse_args()
    spec = orjson.loads(Path(args.spec).read_bytes())
    asyncio.run(serve(spec, args.port_file, args.report))


if __name__ == "__main__":
    main()
