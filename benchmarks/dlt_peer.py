"""S8 peer: the farm fetched by dlt's rest_api source into local JSONL files, as a user would."""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
import orjson
from dlt.sources.rest_api import rest_api_resources


def farm_resources(url: str, apis: list[dict[str, Any]]) -> Iterator[Any]:
    """Per API: Link-paged items, one child request per item, and the user snapshot."""
    for api in apis:
        name = api["name"]
        resources: list[Any] = [{"name": f"{name}_items", "endpoint": {"path": "items"}}]
        if api.get("children", True):
            path = f"items/{{resources.{name}_items.id}}"
            resources.append({"name": f"{name}_details", "endpoint": {"path": path}})
        resources.append({"name": f"{name}_user", "endpoint": {"path": "user"}})
        yield from rest_api_resources(
            {
                "client": {"base_url": f"{url}/{name}/", "paginator": "header_link"},
                "resource_defaults": {"endpoint": {"paginator": "header_link"}},
                "resources": resources,
            }
        )


def main() -> None:
    """Extract, normalize and load once; print each step's wall time as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", help="farm base URL, e.g. http://127.0.0.1:PORT")
    parser.add_argument("--spec", required=True, type=Path, help="the farm's JSON spec")
    parser.add_argument("--dest", required=True, type=Path, help="an empty working dir")
    args = parser.parse_args()
    apis = orjson.loads(args.spec.read_bytes())["apis"]

    def every_api() -> Iterator[Any]:
        yield from farm_resources(args.url, apis)

    # One source holding every API, parallelized: dlt's documented way to fetch
    # resources concurrently (separate sources would run one after another).
    farm = dlt.source(every_api, name="farm", parallelized=True)

    pipeline = dlt.pipeline(
        pipeline_name="farm",
        destination=dlt.destinations.filesystem(bucket_url=str(args.dest / "data")),
        dataset_name="farm",
        pipelines_dir=str(args.dest / "pipelines"),
    )
    steps: dict[str, float] = {}
    start = time.perf_counter()
    pipeline.extract(farm(), loader_file_format="jsonl")
    steps["extract_s"] = time.perf_counter() - start
    pipeline.normalize()
    steps["normalize_s"] = time.perf_counter() - start - sum(steps.values())
    pipeline.load()
    steps["load_s"] = time.perf_counter() - start - sum(steps.values())
    print(orjson.dumps({k: round(v, 3) for k, v in steps.items()}).decode())


if __name__ == "__main__":
    main()
