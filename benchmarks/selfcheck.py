"""Check the farm's counts, windows and 429s and time the bare loop; exit 1 on a wrong figure."""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
from collections import Counter
from typing import Any

import aiohttp
from bare_loop import fetch_all
from farm import max_in_window
from farmctl import Farm, lower_bound, start_farm

SPEC: dict[str, Any] = {
    "apis": [
        # 20 pages + 1,980 children = the 2,000-request yardstick run.
        {"name": "bulk", "limit": None, "latency": 0.0, "pages": 20, "per_page": 99},
        {"name": "slow", "limit": None, "latency": 0.05, "pages": 3, "per_page": 4},
        {"name": "capped", "limit": {"count": 5, "per": 1.0}, "latency": 0.0, "pages": 1,
         "per_page": 5, "children": False},
    ]
}  # fmt: skip
failures: list[str] = []


def check(what: str, got: object, want: object) -> None:
    """Record and print one comparison."""
    ok = got == want
    print(f"{'ok  ' if ok else 'FAIL'} {what}: {got!r}" + ("" if ok else f" (want {want!r})"))
    if not ok:
        failures.append(what)


def brute_max(ts: list[float], per: float) -> int:
    """Most arrivals in any window (t - per, t], by testing every arrival as window end."""
    return max((sum(t - per < u <= t for u in ts) for t in ts), default=0)


async def burst(url: str, n: int) -> list[tuple[int, str | None]]:
    """Fire n simultaneous requests; return each (status, Retry-After)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one() -> tuple[int, str | None]:
            async with session.get(url) as resp:
                await resp.read()
                return resp.status, resp.headers.get("Retry-After")

        return await asyncio.gather(*(one() for _ in range(n)))


async def paced(url: str, n: int, gap: float) -> list[int]:
    """Send n requests one after another, gap seconds apart; return the statuses."""
    statuses = []
    async with aiohttp.ClientSession() as session:
        for _ in range(n):
            async with session.get(url) as resp:
                await resp.read()
                statuses.append(resp.status)
            await asyncio.sleep(gap)
    return statuses


def api(farm: Farm, name: str, *keys: str) -> tuple[Any, ...]:
    """Pick fields of one API from the live report."""
    rep = farm.report()["apis"][name]
    return tuple(rep[k] for k in keys)


def windows() -> None:
    """Compare the two-pointer window count with brute force, boundaries included."""
    check("window (0, 1] excludes t-per", max_in_window([0.0, 1.0, 2.0], 1.0), 1)
    check("window of equal times", max_in_window([3.0, 3.0, 3.0, 3.5], 1.0), 4)
    rng = random.Random(7)
    bad = 0
    for _ in range(300):
        ts = [round(rng.uniform(0, 5), 1) for _ in range(rng.randint(0, 40))]
        bad += max_in_window(ts, 1.0) != brute_max(ts, 1.0)
    check("two-pointer == brute force on 300 random sets", bad, 0)
    check("lower_bound(SPEC)", round(lower_bound(SPEC), 9), 0.4)  # capped: 2 requests at 5/s


def bare(farm: Farm) -> None:
    """Run the bare loop on bulk (timed) and slow; compare with the farm's counts."""
    runs = []
    for _ in range(3):
        farm.reset()
        wall, cpu = time.perf_counter(), time.process_time()
        n = asyncio.run(fetch_all(farm.url, "bulk", 8))
        runs.append((time.perf_counter() - wall, time.process_time() - cpu))
        check("bare loop bulk requests", n, 2000)
        check("bulk report requests/ok/429", api(farm, "bulk", "requests", "ok", "429"), (n, n, 0))
    wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
    print(f"     bare loop, 2000 req at latency 0 (median of 3): {2000 / wall:,.0f} req/s, "
          f"{cpu / 2000 * 1e6:.0f} CPU us/req, {wall:.3f} s wall")  # fmt: skip
    t0 = time.perf_counter()
    check("bare loop slow requests", asyncio.run(fetch_all(farm.url, "slow", 8)), 15)
    check("slow wall >= page chain 0.2 s", time.perf_counter() - t0 >= 0.2, True)
    check("slow report requests/ok", api(farm, "slow", "requests", "ok"), (15, 15))


def limits(farm: Farm) -> None:
    """Burst, recover, reset and pace against the 5/s API."""
    url = f"{farm.url}/capped/user"
    got = dict(Counter(asyncio.run(burst(url, 12))))
    check("burst of 12 at 5/s: (status, Retry-After)", got, {(200, None): 5, (429, "1"): 7})
    keys = ("requests", "ok", "429", "max_in_window")
    check("capped after burst", api(farm, "capped", *keys), (12, 5, 7, 12))
    time.sleep(1.1)
    got = dict(Counter(asyncio.run(burst(url, 5))))
    check("burst of 5 after the window passed", got, {(200, None): 5})
    check("capped after recovery", api(farm, "capped", *keys), (17, 10, 7, 12))
    farm.reset()
    check("report after reset", farm.report()["total"], 0)
    # 0.3 s apart: four arrivals span 0.9 s, a fifth is 1.2 s on, so the window peaks at 4.
    check("paced 8 at 0.3 s", asyncio.run(paced(url, 8, 0.3)), [200] * 8)
    check("capped after paced", api(farm, "capped", *keys), (8, 8, 0, 4))
    check("page past the end", asyncio.run(burst(f"{farm.url}/capped/items?page=2", 1)),
          [(404, None)])  # fmt: skip


def main() -> None:
    """Run every check against one farm and exit non-zero on any failure."""
    windows()
    farm = start_farm(SPEC)
    try:
        bare(farm)
        limits(farm)
        live = farm.report()
    finally:
        final = farm.stop()
    check("report written on SIGTERM == last live report", final == live, True)
    print(f"{len(failures)} failure(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
