"""Store and filesystem faults, bad contracts: a clear error, nothing partial, work stays due."""

from __future__ import annotations

import os
import resource
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import Setup
from tests.servers import Farm


def due_entries(setup: Setup) -> set[tuple[str, str]]:
    with sqlite3.connect(setup.home / "apigetter.db") as db:
        rows = db.execute("SELECT api, endpoint FROM queue WHERE kind = 'standard'").fetchall()
        done = db.execute("SELECT api, endpoint FROM endpoints WHERE last_result = 'ok'").fetchall()
    return {tuple(r) for r in rows} - {tuple(r) for r in done}  # type: ignore[misc]


@pytest.fixture
def locked(setup: Setup) -> Iterator[sqlite3.Connection]:
    """Another writer holding the store's write lock for the whole test."""
    assert setup.cli("status").returncode == 0  # creates the store
    db = sqlite3.connect(setup.home / "apigetter.db", isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    yield db
    db.execute("ROLLBACK")
    db.close()


def test_a_locked_store_is_a_clear_error(setup: Setup, farm: Farm, locked: object) -> None:
    (setup.home / "config.toml").write_text("busy_timeout = 0.3\n")
    setup.add_farm_api("alpha", farm)
    result = setup.cli("run")
    assert result.returncode == 2
    assert f"store {setup.home / 'apigetter.db'}: cannot write: database is locked" in result.stderr
    assert "Traceback" not in result.stderr
    assert not farm.hits and not setup.data.exists()


def test_a_corrupt_store_is_named_and_left_alone(setup: Setup, farm: Farm) -> None:
    setup.add_farm_api("alpha", farm)
    store = setup.home / "apigetter.db"
    store.write_bytes(b"SQLite format 3\x00" + b"\xff" * 5000)
    before = store.read_bytes()
    for command in (["run"], ["status"]):
        result = setup.cli(*command)
        assert result.returncode == 2
        assert f"store {store}" in result.stderr and "corrupt" in result.stderr
        assert "Traceback" not in result.stderr
    assert store.read_bytes() == before and not farm.hits


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` read-only: a read-only bind mount for root (who ignores modes), else 0555."""
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield
        finally:
            path.chmod(0o755)
        return
    mount = ["mount", "--bind", str(path), str(path)]
    if subprocess.run(mount, capture_output=True, check=False).returncode != 0:
        pytest.skip("root without mount permission cannot make a read-only dir")
    try:
        remount = ["mount", "-o", "remount,bind,ro", str(path)]
        subprocess.run(remount, capture_output=True, check=True)
        yield
    finally:
        subprocess.run(["umount", str(path)], capture_output=True, check=True)


def test_a_read_only_home_is_a_clear_error(setup: Setup, farm: Farm) -> None:
    setup.add_farm_api("alpha", farm)
    (setup.home / "config.toml").unlink()
    with read_only(setup.home):
        result = setup.cli("run")
    assert result.returncode == 2, result.stderr
    assert f"store {setup.home / 'apigetter.db'}: cannot open" in result.stderr
    assert "Read-only file system" in result.stderr or "Permission denied" in result.stderr
    assert "Traceback" not in result.stderr
    assert not farm.hits


def test_an_unwritable_data_dir_fails_endpoints_and_keeps_them_due(
    setup: Setup, farm: Farm
) -> None:
    setup.add_farm_api("alpha", farm)
    setup.data.write_text("not a directory")  # every file write fails with ENOTDIR
    result = setup.cli("run")
    assert result.returncode == 1
    assert f"{setup.data}" in result.stderr and "Not a directory" in result.stderr
    assert "Traceback" not in result.stderr
    assert due_entries(setup) == {("alpha", "user"), ("alpha", "items")}
    setup.data.unlink()
    assert setup.cli("run", "--force").returncode == 0  # the next run carries on
    assert len(setup.files("alpha", "items")) == 8


def test_a_full_disk_writes_no_partial_file(setup: Setup, farm: Farm) -> None:
    setup.add_farm_api("alpha", farm)
    assert setup.cli("run", "--api", "alpha").returncode == 0  # store and dirs exist
    farm.version, farm.per_page = 2, 20000  # the next pages are ~1 MB each
    limit = 256 * 1024

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run(
        [sys.executable, "-m", "apigetter", "run", "--force"],
        env=setup.env,
        preexec_fn=small_disk,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "File too large" in result.stderr and f"{setup.data}" in result.stderr
    assert "Traceback" not in result.stderr
    assert all(p.stat().st_size < limit for p in setup.files())  # nothing partial in place
    assert not list((setup.data / ".staging").iterdir())
    assert ("alpha", "items") in due_entries(setup)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "from apigetter.contract import Api, Endpoint\n\n"
            "API = Api(name='bad', base_url='https://x.invalid',\n"
            "          endpoints=(Endpoint('e', 'p', evry=3),))\n",
            "failed to import at line 4: TypeError: Endpoint.__init__() got an unexpected "
            "keyword argument 'evry'",
        ),
        (
            "from apigetter.contract import Api, Endpoint, Limit\n"
            "API = Api(name='bad', base_url='https://x.invalid', limits=(Limit('5', 1),),\n"
            "          endpoints=(Endpoint('e', 'p', every='daily'),))\n",
            "Limit count must be int, not '5'; endpoint 'e' every must be a number, not 'daily'",
        ),
        ("API = 42\n", "defines no API = Api(...)"),
        ("import json\njson.loads('{')\n", "failed to import at line 2: JSONDecodeError"),
    ],
)
def test_a_bad_contract_names_file_line_and_field(
    setup: Setup, farm: Farm, source: str, message: str
) -> None:
    setup.add_farm_api("alpha", farm)
    path = setup.contracts / "bad.py"
    path.write_text(source)
    result = setup.cli("run")
    assert result.returncode == 1
    assert f"contract bad ({path}): {message}" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert setup.files("alpha", "user")


def test_a_contract_hook_that_raises_fails_only_its_endpoint(setup: Setup, farm: Farm) -> None:
    setup.add_farm_api("alpha", farm)
    path = setup.contracts / "alpha.py"
    path.write_text(path.read_text().replace('u["submitted"]', 'u["nope"]'))
    result = setup.cli("run")
    assert result.returncode == 1
    assert result.stderr.strip() == "alpha: user: KeyError: 'nope'"
    assert len(setup.files("alpha", "items")) == 8 and not setup.files("alpha", "user")
