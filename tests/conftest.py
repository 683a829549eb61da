"""Fixtures: a real local farm server, a temp home, contracts on disk, the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import Farm, serve

CANARY = "canary-6f1e2d3c4b5a-SECRET"

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

    def files(self, *parts: str) -> list[Path]:
        """Archived files below data/<parts>, sorted."""
        return sorted(
            p for p in self.data.joinpath(*parts).rglob("*.json") if ".staging" not in p.parts
        )

    def cli(
        self, *args: str, extra: Mapping[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run the real ``apigetter`` command in a subprocess."""
        return subprocess.run(
            [sys.executable, "-m", "apigetter", *args],
            env={**self.env, **(extra or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

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
    farm = Farm()
    with serve(farm.app()) as url:
        farm.url = url
        yield farm


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
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
    return Setup(home, contracts, env)
