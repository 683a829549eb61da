"""The command line: documented commands, exit codes, clean errors, status output."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import typer.main

from apigetter import __version__
from apigetter.catalog import check
from apigetter.cli import app
from tests.conftest import CANARY, Setup
from tests.servers import Farm

COMMANDS = sorted(c.name or "" for c in typer.main.get_command(app).commands.values())  # type: ignore[attr-defined]


def test_every_command_is_documented(setup: Setup) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert COMMANDS == ["authorize", "contracts", "demo", "run", "status"]
    for name in [*COMMANDS, "contracts check"]:
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


def test_contracts_lists_readiness_endpoints_and_limits(setup: Setup, farm: Farm) -> None:
    setup.add_farm_api("alpha", farm, limits="Limit(5, per_seconds=1),")
    (setup.contracts / "broken.py").write_text("API = 1\n")
    setup.env.update(STRAVA_CLIENT_ID="48151", STRAVA_CLIENT_SECRET="not-a-real-secret")
    result = setup.cli("contracts")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "alpha: ready" in out and "5 per second" in out
    assert "items            daily files by created_at, every day, pages: LinkHeaderPager" in out
    assert "broken: broken: defines no API" in out
    assert "github: not ready: missing GITHUB_TOKEN, GITHUB_USERNAME" in out
    assert "strava: not ready: not authorized: run `apigetter authorize strava`" in out
    assert "100 per 15 min; 1000 per day" in out
    assert "not-a-real-secret" not in out and CANARY not in out
    assert not (setup.home / "apigetter.db").exists()  # listing creates no store
    data = orjson.loads(setup.cli("contracts", "--json").stdout)
    states = {c["name"]: c["state"] for c in data["contracts"]}
    assert states["alpha"] == "ready" and states["broken"] == "broken"
    assert set(states) >= {"github", "hackernews", "oura", "reddit", "strava"}


def test_contracts_check_validates_a_file(setup: Setup) -> None:
    good = setup.contracts / "good.py"
    good.write_text(
        "from apigetter.contract import Api, Endpoint\n"
        "API = Api(name='good', base_url='https://good.invalid',\n"
        "          endpoints=(Endpoint('days', 'days/{GOOD_USER}', day_key='at'),))\n"
    )
    result = setup.cli("contracts", "check", str(good))
    assert result.returncode == 0
    assert "ok: good, 1 endpoints" in result.stdout and "needs   GOOD_USER" in result.stdout
    assert "warning: endpoint 'days' splits days without id_key" in result.stdout
    bad = setup.contracts / "bad.py"
    bad.write_text(good.read_text().replace("day_key='at'", "id_key='id'"))
    result = setup.cli("contracts", "check", str(bad))
    assert result.returncode == 1 and "id_key needs day_key" in result.stderr
    missing = setup.cli("contracts", "check", str(setup.contracts / "nope.py"))
    assert missing.returncode == 1 and "no such file" in missing.stderr
    bundled = Path(__file__).parent.parent / "contracts"
    for path in sorted(bundled.glob("*.py")):  # in-process: the CLI path is covered above
        verdict = check(path)
        assert verdict.ok and not verdict.warnings, (path, verdict)
