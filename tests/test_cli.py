"""The command line: documented commands, exit codes, clean errors, status output."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import typer.main

from apigetter import __version__
from apigetter.cli import app
from tests.conftest import Setup
from tests.servers import Farm

COMMANDS = sorted(c.name or "" for c in typer.main.get_command(app).commands.values())  # type: ignore[attr-defined]


def test_every_command_is_documented(setup: Setup) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert COMMANDS == ["authorize", "demo", "run", "status"]
    for name in COMMANDS:
        result = setup.cli(*name.split(), "--help")
        assert result.returncode == 0 and "Usage:" in result.stdout
        assert f"apigetter {name}" in readme


def test_version(setup: Setup) -> None:
    assert setup.cli("--version").stdout.strip() == f"apigetter {__version__}"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("colour = 'blue'\n", "unknown key 'colour'"),
        ("retries = 'many'\n", "retries must be int"),
        ("timezone = 'Mars/Olympus'\n", "unknown timezone"),
        ("retries = \n", "config.toml: Invalid value (at line 1"),
    ],
)
def test_bad_config_is_a_clear_error(setup: Setup, config: str, message: str) -> None:
    (setup.home / "config.toml").write_text(config)
    result = setup.cli("run")
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_unknown_api_is_a_usage_error(setup: Setup, farm: Farm) -> None:
    setup.add_farm_api("alpha", farm)
    result = setup.cli("run", "--api", "nope")
    assert result.returncode == 2 and "unknown API: nope" in result.stderr
    assert not farm.hits


def test_run_only_the_named_api(setup: Setup, farm: Farm) -> None:
    setup.add_farm_api("alpha", farm)
    setup.add_farm_api("beta", farm)
    assert setup.cli("run", "--api", "beta").returncode == 0
    assert {h.api for h in farm.hits} == {"beta"}


def test_dry_run_fetches_nothing(setup: Setup, farm: Farm) -> None:
    setup.add_farm_api("alpha", farm)
    result = setup.cli("run", "--dry-run")
    assert result.returncode == 0 and not farm.hits
    assert "due  alpha/user (standard)" in result.stdout


def test_status_shows_results_and_json(setup: Setup, farm: Farm) -> None:
    setup.add_farm_api("alpha", farm)
    farm.faults["/alpha/items"] = [(404, {}, b'{"message": "Not Found"}')]
    assert setup.cli("run").returncode == 1
    text = setup.cli("status", "--api", "alpha")
    assert text.returncode == 0
    assert "user             next in 24.0h" in text.stdout
    assert "error: items: HTTP 404" in text.stdout
    data = orjson.loads(setup.cli("status", "--json").stdout)
    alpha = next(a for a in data["apis"] if a["name"] == "alpha")
    results = {e["name"]: e["last_result"] for e in alpha["endpoints"]}
    assert results == {"user": "ok", "items": "error"}
    assert data["last_run"]["status"] == "failed" and data["active_runs"] == []
