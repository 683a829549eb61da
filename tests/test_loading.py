"""Where contracts come from (checkout, installed wheel, entry points), and contracts changing."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import Setup
from tests.servers import Farm

ROOT = Path(__file__).parent.parent


def test_installed_layout_finds_bundled_contracts_and_schema(tmp_path: Path) -> None:
    """A wheel ships contracts/ as apigetter/_contracts and schema.sql inside the package."""
    site = tmp_path / "site"
    shutil.copytree(ROOT / "apigetter", site / "apigetter", ignore=shutil.ignore_patterns("__py*"))
    shutil.copytree(ROOT / "contracts", site / "apigetter" / "_contracts")
    shutil.copy(ROOT / "schema.sql", site / "apigetter" / "schema.sql")
    probe = (
        "import asyncio, pathlib, apigetter.config as c\n"
        "from apigetter.loader import load_contracts\n"
        "from apigetter.store import Store\n"
        "print(c.PACKAGE_DIR)\n"
        "print(sorted(load_contracts().apis))\n"
        "async def main():\n"
        f"    s = await Store.open(pathlib.Path({str(tmp_path / 's.db')!r}))\n"
        "    await s.close()\n"
        "asyncio.run(main())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out[0] == str(site / "apigetter")
    assert "github" in out[1] and "hackernews" in out[1]
    with sqlite3.connect(tmp_path / "s.db") as db:
        assert db.execute("SELECT COUNT(*) FROM queue").fetchone() == (0,)


def test_entry_point_contracts_are_loaded(setup: Setup, farm: Farm, tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "myapis-1.0.dist-info").mkdir(parents=True)
    (site / "myapis-1.0.dist-info" / "METADATA").write_text("Name: myapis\nVersion: 1.0\n")
    (site / "myapis-1.0.dist-info" / "entry_points.txt").write_text(
        "[apigetter.contracts]\nplugged = myapis:API\n"
    )
    (site / "myapis.py").write_text(
        "from apigetter.contract import Api, Endpoint\n"
        "API = Api(name='plugged', base_url='https://x.invalid',\n"
        "          endpoints=(Endpoint('me', 'user'),))\n"
    )
    setup.env["PYTHONPATH"] = str(site)
    setup.env["APIGETTER_PLUGGED_BASE_URL"] = f"{farm.url}/plugged"
    result = setup.cli("run", "--api", "plugged")
    assert result.returncode == 0, result.stderr
    assert [h.path for h in farm.hits] == ["/plugged/user"]
    assert farm.hits[0].headers["User-Agent"].startswith("apigetter/")


def test_removed_endpoints_lose_their_entries_with_a_logged_event(setup: Setup, farm: Farm) -> None:
    setup.add_farm_api("alpha", farm)
    assert setup.cli("run").returncode == 0
    path = setup.contracts / "alpha.py"
    text = path.read_text()
    path.write_text(text.replace('Endpoint("items", "items",', 'Endpoint("items2", "items",'))
    assert setup.cli("run").returncode == 0
    with sqlite3.connect(setup.home / "apigetter.db") as db:
        entries = db.execute("SELECT endpoint FROM queue WHERE api = 'alpha'").fetchall()
        events = db.execute("SELECT endpoint, message FROM events").fetchall()
    assert sorted(entries) == [("items2",), ("user",)]
    assert events == [("items", "standard entry removed: endpoint no longer in the contract")]


def test_the_page_cap_stops_a_runaway_cursor(setup: Setup, farm: Farm) -> None:
    setup.add_farm_api("alpha", farm)
    path = setup.contracts / "alpha.py"
    path.write_text(
        path.read_text().replace("LinkHeaderPager(),", "LinkHeaderPager(), max_pages=2,")
    )
    result = setup.cli("run")
    assert result.returncode == 0
    assert [h.query.get("page") for h in farm.hits if h.path == "/alpha/items"] == [None, "2"]
    assert "items: stopped at 2 pages" in result.stdout


def test_status_shows_the_active_run(setup: Setup, farm: Farm) -> None:
    farm.latency = 1.0
    setup.add_farm_api("alpha", farm)
    runner = setup.popen("run")
    try:
        deadline = time.monotonic() + 20
        while not farm.hits and time.monotonic() < deadline:
            time.sleep(0.05)
        status = setup.cli("status")
    finally:
        setup.finish(runner)
    assert status.returncode == 0
    assert "active run 1: pid" in status.stdout and "APIs alpha" in status.stdout
