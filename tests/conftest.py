"""Fixtures: a real local farm server, a temp home, contracts on disk, the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from tests.servers import Farm, running

CANARY = "canary-6f1e2d3c4b5a-SECRET"
APIS = ("alpha", "beta", "gamma")

FARM_CONTRACT = """
from apigetter.contract import Api, Child, Endpoint, LinkHeaderPager, Limit, TokenAuth

API = Api(
    name="{name}",
    base_url="https://{name}.invalid",
    auth=TokenAuth("{upper}_TOKEN"),
    limits=({limits}),
    endpoints=(
        Endpoint(
            "user", "user",
            children=(Child("things", "item/{{id}}", ids=lambda u: u["submitted"]),),
        ),
        Endpoint("items", "items", paginator=LinkHeaderPager(), day_key="created_at"),
    ),
)
"""


@dataclass
class Setup:
    """A home dir, its contract dir and the environment a run gets."""

    home: Path
    contracts: Path
    env: dict[str, str]

    @property
    def data(self) -> Path:
        """The archive."""
        return self.home / "data"

    def add_farm_api(self, name: str, farm: Farm, limits: str = "") -> None:
        """A contract for one farm API, pointed at the farm, with a canary token."""
        text = FARM_CONTRACT.format(name=name, upper=name.upper(), limits=limits)
        (self.contracts / f"{name}.py").write_text(text)
        self.env[f"APIGETTER_{name.upper()}_BASE_URL"] = f"{farm.url}/{name}"
        self.env[f"{name.upper()}_TOKEN"] = CANARY

    def add_farm_apis(self, farm: Farm, names: tuple[str, ...] = APIS) -> None:
        """``add_farm_api`` for each of ``names``."""
        for name in names:
            self.add_farm_api(name, farm)

    def files(self, *parts: str) -> list[Path]:
        """Archived files below data/<parts>, sorted."""
        return sorted(
            p for p in self.data.joinpath(*parts).rglob("*.json") if ".staging" not in p.parts
        )

    def cli(
        self, *args: str, extra: Mapping[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run the real ``apigetter`` command in a subprocess."""
        result = subprocess.run(
            [sys.executable, "-m", "apigetter", *args],
            env={**self.env, **(extra or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert CANARY not in result.stdout + result.stderr
        return result

    def finish(self, proc: subprocess.Popen[str], timeout: float = 60) -> tuple[str, str]:
        """Wait for a process from ``popen``; its output must not hold the canary either."""
        out, err = proc.communicate(timeout=timeout)
        assert CANARY not in out + err
        return out, err

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """Start the real ``apigetter`` command without waiting."""
        return subprocess.Popen(
            [sys.executable, "-m", "apigetter", *args],
            env=self.env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )


@pytest.fixture
def farm() -> Iterator[Farm]:
    """A running farm server."""
    with running() as farm:
        yield farm


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    """An empty home with only our test contracts (the bundled ones lack credentials)."""
    home, contracts = tmp_path / "home", tmp_path / "contracts"
    contracts.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("APIGETTER_", "GITHUB_", "HACKERNEWS_", "STRAVA_", "OURA_", "REDDIT_"))
    }
    env.update(APIGETTER_HOME=str(home), APIGETTER_CONTRACTS=str(contracts))
    home.mkdir()
    # Small timings so failure paths do not slow the suite; a test may overwrite this.
    (home / "config.toml").write_text("retry_backoff = 0.05\nlease_seconds = 30\n")
    yield Setup(home, contracts, env)
    # Whatever the test did, the token used everywhere must be nowhere in the home.
    for path in home.rglob("*"):
        if path.is_file():
            assert CANARY.encode() not in path.read_bytes(), path


def wait_for_hits(farm: Farm, count: int, timeout: float = 20) -> None:
    """Block until the farm has seen ``count`` requests."""
    deadline = time.monotonic() + timeout
    while len(farm.hits) < count:
        assert time.monotonic() < deadline, f"only {len(farm.hits)} requests arrived"
        time.sleep(0.01)


def archived_once(setup: Setup, farm: Farm) -> None:
    """Every (api, endpoint, key) has exactly one file, and every item is in one."""
    keys: Counter[tuple[str, str, str]] = Counter()
    for path in setup.files():
        api, endpoint = path.parent.parent.name, path.parent.name
        keys[api, endpoint, path.name.split("--run-")[0]] += 1
    assert keys and max(keys.values()) == 1, keys.most_common(3)
    assert not list((setup.data / ".staging").glob("*"))
    for api in APIS:
        items = [r for p in setup.files(api, "items") for r in orjson.loads(p.read_bytes())]
        expected = [i["id"] for page in (1, 2, 3) for i in farm.items(api, page)]
        assert sorted(r["id"] for r in items) == sorted(expected)
        assert len(setup.files(api, "things")) == 3 and len(setup.files(api, "user")) == 1
