"""S3 yardstick: the plainest correct aiohttp + orjson loop over one unlimited farm API."""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp
import orjson


async def fetch_all(url: str, api: str, concurrency: int) -> int:
    """Follow the item pages' Link chain, then fetch every child; return the request count."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        ids: list[str] = []
        pages = 0
        next_url: str | None = f"{url}/{api}/items?page=1"
        while next_url:
            async with session.get(next_url) as resp:
                resp.raise_for_status()
                ids += [item["id"] for item in orjson.loads(await resp.read())]
                link = resp.links.get("next")
            next_url = str(link["url"]) if link else None
            pages += 1
        sem = asyncio.Semaphore(concurrency)

        async def child(item_id: str) -> None:
            async with sem, session.get(f"{url}/{api}/items/{item_id}") as resp:
                resp.raise_for_status()
                orjson.loads(await resp.read())

        await asyncio.gather(*(child(i) for i in ids))
    return pages + len(ids)


def main() -> None:
    """Run fetch_all once and print requests, wall and CPU seconds as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", help="farm base URL, e.g. http://127.0.0.1:PORT")
    parser.add_argument("--api", default="api0")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    wall, cpu = time.perf_counter(), time.process_time()
    n = asyncio.run(fetch_all(args.url, args.api, args.concurrency))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(orjson.dumps({"requests": n, "wall_s": round(wall, 4), "cpu_s": round(cpu, 4)}).decode())


if __name__ == "__main__":
    main()
