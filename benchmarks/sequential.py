"""S2 baseline: the replaced design, one API after another and one request at a time."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

MAX_429 = 100  # a baseline that keeps being refused is broken, not slow


class Paced:
    """Sends one request at a time, no closer together than the declared rate allows."""

    def __init__(self, session: aiohttp.ClientSession, limit: dict[str, float] | None) -> None:
        self.session = session
        # 1% slack: arrival jitter must not push a 21st request into a window of 20.
        self.gap = 1.01 * limit["per"] / limit["count"] if limit else 0.0
        self.next = 0.0
        self.requests = self.refused = 0

    async def get(self, url: str) -> tuple[Any, str | None]:
        """GET ``url`` as JSON, waiting out the pace and any 429; return body and next link."""
        while True:
            await asyncio.sleep(max(0.0, self.next - time.monotonic()))
            self.next = time.monotonic() + self.gap
            self.requests += 1
            async with self.session.get(url) as resp:
                body = await resp.read()
                if resp.status == 429 and self.refused < MAX_429:
                    self.refused += 1
                    self.next += float(resp.headers.get("Retry-After", "1"))
                    continue
                resp.raise_for_status()
                link = resp.links.get("next")
                return orjson.loads(body), str(link["url"]) if link else None


async def fetch_api(session: aiohttp.ClientSession, url: str, api: dict[str, Any]) -> Paced:
    """Every page, then every item's detail, then the user snapshot, strictly in turn."""
    client = Paced(session, api.get("limit"))
    base = f"{url}/{api['name']}"
    ids: list[str] = []
    next_url: str | None = f"{base}/items"
    while next_url:
        items, next_url = await client.get(next_url)
        ids += [item["id"] for item in items]
    if api.get("children", True):
        for item_id in ids:
            await client.get(f"{base}/items/{item_id}")
    await client.get(f"{base}/user")
    return client


async def fetch_all(url: str, apis: list[dict[str, Any]]) -> dict[str, int]:
    """Fetch the APIs one after another over one connection; return request counts."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
        done = [await fetch_api(session, url, api) for api in apis]
    return {"requests": sum(c.requests for c in done), "429": sum(c.refused for c in done)}


def main() -> None:
    """Fetch the first ``--apis`` APIs of a farm spec and print counts and wall time as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", help="farm base URL, e.g. http://127.0.0.1:PORT")
    parser.add_argument("--spec", required=True, type=Path, help="the farm's JSON spec")
    parser.add_argument("--apis", type=int, help="only the first N APIs")
    args = parser.parse_args()
    apis = orjson.loads(args.spec.read_bytes())["apis"][: args.apis]
    start = time.perf_counter()
    counts = asyncio.run(fetch_all(args.url, apis))
    print(orjson.dumps({**counts, "wall_s": round(time.perf_counter() - start, 4)}).decode())


if __name__ == "__main__":
    main()
