"""End to end: the real CLI in subprocesses against a real local farm and a real store."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter

import orjson

from tests.conftest import CANARY, Setup
from tests.servers import Farm, Hit


def overlapping(a: list[Hit], b: list[Hit]) -> bool:
    """Whether some request of ``a`` was in flight while one of ``b`` was."""
    return any(x.start < y.end and y.start < x.end for x in a for y in b)


def test_apis_are_fetched_concurrently(setup: Setup, farm: Farm) -> None:
    farm.latency = 0.05
    setup.add_farm_apis(farm)
    started = time.monotonic()
    result = setup.cli("run")
    wall = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    apis = farm.by_api()
    assert set(apis) == {"alpha", "beta", "gamma"}
    assert overlapping(apis["alpha"], apis["beta"])
    assert overlapping(apis["beta"], apis["gamma"])
    sequential = sum(h.end - h.start for h in farm.hits)
    print(
        f"\nconcurrency: wall {wall:.2f}s (with interpreter start) vs sequential {sequential:.2f}s"
    )


def test_every_item_of_every_link_page_lands_in_day_files(setup: Setup, farm: Farm) -> None:
    setup.add_farm_api("alpha", farm)
    assert setup.cli("run").returncode == 0
    pages = [h for h in farm.hits if h.path == "/alpha/items"]
    assert len(pages) == 3
    archived = [row for p in setup.files("alpha", "items") for row in orjson.loads(p.read_bytes())]
    expected = [item for page in (1, 2, 3) for item in farm.items("alpha", page)]
    assert sorted(r["id"] for r in archived) == sorted(str(i["id"]) for i in expected)
    for path in setup.files("alpha", "items"):
        day = path.name.split("--")[0]
        assert all(r["created_at"].startswith(day) for r in orjson.loads(path.read_bytes()))


def test_rerun_with_unchanged_upstream_writes_nothing(setup: Setup, farm: Farm) -> None:
    setup.add_farm_api("alpha", farm)
    assert setup.cli("run").returncode == 0
    before = setup.files()
    again = setup.cli("run", "--force")
    assert again.returncode == 0
    assert len(farm.hits) == 7 + 4  # fetched again, except children already archived...
    assert setup.files() == before  # ...and nothing new was written
    assert "0 written" in again.stdout
    farm.version = 2
    assert setup.cli("run", "--force").returncode == 0
    assert len(setup.files()) > len(before)  # changed upstream data is archived


def test_nothing_due_means_no_requests(setup: Setup, farm: Farm) -> None:
    setup.add_farm_api("alpha", farm)
    assert setup.cli("run").returncode == 0
    sent = len(farm.hits)
    result = setup.cli("run")
    assert result.returncode == 0
    assert len(farm.hits) == sent
    assert "2 not due" in result.stdout


def test_ten_concurrent_processes_call_each_url_once(setup: Setup, farm: Farm) -> None:
    farm.latency = 0.2
    setup.add_farm_apis(farm)
    procs = [setup.popen("run") for _ in range(10)]
    outputs = [setup.finish(p) for p in procs]
    assert [p.returncode for p in procs] == [0] * 10, outputs
    seen = Counter((h.path, tuple(sorted(h.query.items()))) for h in farm.hits)
    assert seen and max(seen.values()) == 1, seen.most_common(3)
    assert len(farm.hits) == 3 * 7
    skipped = [out for out, _ in outputs if out.startswith("skipped:")]
    assert skipped, "no invocation overlapped another"
    assert all(len(out.strip().splitlines()) == 1 for out in skipped)


def test_rate_limit_holds_while_other_apis_run_free(setup: Setup, farm: Farm) -> None:
    farm.submitted = list(range(1, 17))
    setup.add_farm_api("slow", farm, limits="Limit(5, per_seconds=1),")
    setup.add_farm_api("fast1", farm)
    setup.add_farm_api("fast2", farm)
    assert setup.cli("run").returncode == 0
    apis = farm.by_api()
    slow = sorted(h.start for h in apis["slow"])
    assert len(slow) == 1 + 16 + 3
    worst = max(sum(1 for t in slow if s <= t < s + 1.0) for s in slow)
    assert worst <= 5
    for name in ("fast1", "fast2"):
        assert max(h.end for h in apis[name]) < slow[-1]  # they did not wait for the bucket


def test_retry_after_short_is_retried(setup: Setup, farm: Farm) -> None:
    setup.add_farm_api("alpha", farm)
    farm.faults["/alpha/user"] = [(429, {"Retry-After": "1"}, b'{"message": "slow down"}')]
    result = setup.cli("run")
    assert result.returncode == 0, result.stderr
    assert [h.path for h in farm.hits].count("/alpha/user") == 2
    assert setup.files("alpha", "user")


def test_retry_after_long_reschedules_only_that_endpoint(setup: Setup, farm: Farm) -> None:
    setup.add_farm_api("alpha", farm)
    setup.add_farm_api("beta", farm)
    farm.faults["/alpha/user"] = [(429, {"Retry-After": "3600"}, b"{}")]
    before = time.time()
    result = setup.cli("run")
    assert result.returncode == 1
    assert "alpha: user: HTTP 429" in result.stderr and "retry after 3600s" in result.stderr
    assert "Traceback" not in result.stderr
    assert [h.path for h in farm.hits].count("/alpha/user") == 1  # not retried in-run
    assert setup.files("beta", "user") and setup.files("alpha", "items")
    assert not setup.files("alpha", "user")
    with sqlite3.connect(setup.home / "apigetter.db") as db:
        (run_after,) = db.execute(
            "SELECT run_after FROM queue WHERE api = 'alpha' AND endpoint = 'user'"
        ).fetchone()
    assert run_after >= before + 3600


def test_broken_and_unready_contracts_do_not_stop_the_others(setup: Setup, farm: Farm) -> None:
    setup.add_farm_api("alpha", farm)
    (setup.contracts / "broken.py").write_text("API = Api(name='broken',\n")
    (setup.contracts / "needy.py").write_text(
        "from apigetter.contract import Api, Endpoint\n"
        "API = Api(name='needy', base_url='https://x.invalid', "
        "endpoints=(Endpoint('me', 'users/{NEEDY_USER}'),))\n"
    )
    result = setup.cli("run")
    assert result.returncode == 1  # a broken contract needs attention
    assert "broken" in result.stderr and "syntax error" in result.stderr
    assert "needy" in result.stdout and "missing NEEDY_USER" in result.stdout
    assert "Traceback" not in result.stderr
    assert setup.files("alpha", "user")


def test_hostile_entity_id_stays_inside_the_data_dir(setup: Setup, farm: Farm) -> None:
    farm.submitted = ["../../evil", "..", "a/b", "NUL", "x" * 300]
    setup.add_farm_api("alpha", farm)
    assert setup.cli("run").returncode == 0
    root = setup.data.resolve()
    written = setup.files("alpha", "things")
    assert len(written) == 5
    for path in written:
        assert path.resolve().is_relative_to(root / "alpha" / "things")
        assert len(path.name) < 160
    assert not (setup.home.parent / "evil").exists()


def test_canary_token_never_leaves(setup: Setup, farm: Farm) -> None:
    setup.add_farm_api("alpha", farm)
    echo = b'{"error": "bad token ' + CANARY.encode() + b'"}'
    farm.faults["/alpha/items"] = [(500, {}, echo)] * 4
    farm.faults["/alpha/item/2"] = [(400, {}, echo)]
    outputs = [setup.cli("run"), setup.cli("-v", "run", "--force"), setup.cli("status")]
    outputs.append(setup.cli("status", "--json"))
    assert any(h.headers.get("Authorization") == f"Bearer {CANARY}" for h in farm.hits)
    assert outputs[0].returncode == 1 and "bad token ***" in outputs[0].stderr
    for result in outputs:
        assert CANARY not in result.stdout + result.stderr
    for path in setup.home.rglob("*"):
        if path.is_file():
            assert CANARY.encode() not in path.read_bytes(), path


def test_a_long_window_is_a_budget_not_a_pace(setup: Setup, farm: Farm) -> None:
    farm.submitted = list(range(1, 17))  # 1 user + 16 children + 3 item pages = 20 requests
    limits = "Limit(20, per_seconds=900), Limit(1000, per_seconds=86400),"
    setup.add_farm_api("quota", farm, limits=limits)
    started = time.monotonic()
    assert setup.cli("run").returncode == 0
    # Paced as a leaky bucket, 20 per 15 minutes would allow one request every 47 s.
    assert time.monotonic() - started < 15
    assert len(farm.hits) == 20
    before = time.time()
    again = setup.cli("run", "--force")  # the 15-minute window is spent: nothing is sent
    assert again.returncode == 0 and len(farm.hits) == 20
    assert "declared quota used up; deferred" in again.stdout
    with sqlite3.connect(setup.home / "apigetter.db") as db:
        (run_after,) = db.execute(
            "SELECT MIN(run_after) FROM queue WHERE api = 'quota' AND kind = 'standard'"
        ).fetchone()
    # Deferred until the spent window has passed, not until the daily one has.
    assert before + 900 <= run_after < before + 1000


def test_a_spent_quota_defers_work_without_failing(setup: Setup, farm: Farm) -> None:
    setup.add_farm_api("alpha", farm, limits="Limit(3, per_seconds=3600),")
    first = setup.cli("run")
    assert first.returncode == 0, first.stderr
    assert len(farm.hits) == 3 and not first.stderr
    assert "deferred" in first.stdout
    again = setup.cli("run", "--force")  # the ledger remembers the hour's 3 requests
    assert again.returncode == 0 and len(farm.hits) == 3
