"""The fault matrix: each hostile answer fails one endpoint clearly; everything else completes."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from email.utils import formatdate

import pytest

from tests.conftest import CANARY, Setup
from tests.servers import Farm, Fault, drip, hang, redirect, reset_mid_body, running

CONFIG = (
    "request_timeout = 1.0\nretries = 1\nretry_backoff = 0.01\nmax_retry_wait = 5\n"
    "max_body_bytes = 20000\nlease_seconds = 30\n"
)
FAULTS: dict[str, tuple[Callable[[Farm, str], Fault], str]] = {
    "429 Retry-After seconds": (
        lambda f, o: (429, {"Retry-After": "0"}, b'{"message": "slow down"}'),
        'HTTP 429: {"message": "slow down"} after 2 attempts',
    ),
    "429 Retry-After date": (
        lambda f, o: (429, {"Retry-After": formatdate(time.time() + 3600, usegmt=True)}, b""),
        "HTTP 429; retry after 3",
    ),
    "429 rate limit reset": (
        lambda f, o: (
            429,
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + 950)},
            b"{}",
        ),
        "HTTP 429: {}; retry after 9",
    ),
    "403 rate limit reset": (
        lambda f, o: (
            403,
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + 950)},
            b'{"message": "API rate limit exceeded"}',
        ),
        'HTTP 403: {"message": "API rate limit exceeded"}; retry after 9',
    ),
    "500": (lambda f, o: (500, {}, b"Internal Server Error"), "HTTP 500: Internal Server Error"),
    "502": (lambda f, o: (502, {}, b"<html>Bad Gateway</html>"), "HTTP 502: <html>Bad Gateway"),
    "503": (lambda f, o: (503, {}, b""), "HTTP 503 after 2 attempts"),
    "hang past the timeout": (lambda f, o: hang(3), "timed out (http://127.0.0.1:"),
    "reset mid-body": (lambda f, o: reset_mid_body(), "ClientPayloadError"),
    "truncated JSON": (
        lambda f, o: (200, {"Content-Type": "application/json"}, b'[{"id": 1, "crea'),
        "HTTP 200 but not JSON (application/json",
    ),
    "HTML error page with 200": (
        lambda f, o: (200, {"Content-Type": "text/html"}, b"<html><h1>Oops</h1></html>"),
        "HTTP 200 but not JSON (text/html, http://127.0.0.1:",
    ),
    "wrong content type": (
        lambda f, o: (200, {"Content-Type": "application/xml"}, b"<items/>"),
        "HTTP 200 but not JSON (application/xml",
    ),
    "body over the cap": (
        lambda f, o: (200, {"Content-Type": "application/json"}, b"[" + b"1," * 20000 + b"1]"),
        "exceeds the 20000 byte cap",
    ),
    "redirect loop": (lambda f, o: redirect("/alpha/items"), "more than 5 redirects"),
    "redirect to another host": (
        lambda f, o: redirect(f"{o}/steal"),
        'HTTP 401: credentials refused: {"message": "Requires authentication"}',
    ),
    "slow drip": (lambda f, o: drip(40, 0.1), "timed out"),
}


@pytest.fixture
def other() -> Iterator[Farm]:
    """A second host, to redirect to."""
    with running() as farm:
        yield farm


@pytest.mark.parametrize("name", list(FAULTS))
def test_fault_fails_one_endpoint_and_nothing_else(
    setup: Setup, farm: Farm, other: Farm, name: str
) -> None:
    (setup.home / "config.toml").write_text(CONFIG)
    make, reason = FAULTS[name]
    setup.add_farm_api("alpha", farm)
    setup.add_farm_api("beta", farm)
    farm.faults["/alpha/items"] = [make(farm, other.url) for _ in range(12)]
    other.faults["/steal"] = [(401, {}, b'{"message": "Requires authentication"}')] * 8
    before = time.time()
    result = setup.cli("run")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("alpha: items: "), result.stderr
    assert reason in lines[0]
    assert "Traceback" not in result.stderr
    # Everything else completed...
    assert setup.files("alpha", "user") and len(setup.files("alpha", "things")) == 3
    assert len(setup.files("beta", "items")) == 8
    assert not setup.files("alpha", "items")
    # ...and the failed entry stays, due later.
    with sqlite3.connect(setup.home / "apigetter.db") as db:
        attempts, run_after = db.execute(
            "SELECT attempts, run_after FROM queue WHERE api = 'alpha' AND endpoint = 'items'"
        ).fetchone()
        (error,) = db.execute(
            "SELECT last_error FROM endpoints WHERE api = 'alpha' AND endpoint = 'items'"
        ).fetchone()
    assert attempts == 1 and run_after > before + 59
    assert reason in error
    for hit in other.hits:
        assert "Authorization" not in hit.headers
    farm.faults.clear()  # the provider recovers, and so does the endpoint
    assert setup.cli("-v", "run", "--force").returncode == 0
    assert setup.files("alpha", "items")


def test_credentials_never_cross_hosts(setup: Setup, farm: Farm, other: Farm) -> None:
    setup.add_farm_api("alpha", farm)
    (setup.contracts / "keyed.py").write_text(
        "from apigetter.contract import Api, Endpoint, QueryKeyAuth\n"
        "API = Api(name='keyed', base_url='https://x.invalid', auth=QueryKeyAuth('KEYED_KEY'),\n"
        "          headers={'X-Api-Key': '{KEYED_KEY}'},\n"
        "          endpoints=(Endpoint('user', 'user'), Endpoint('items', 'items')))\n"
    )
    setup.env["APIGETTER_KEYED_BASE_URL"] = f"{farm.url}/keyed"
    setup.env["KEYED_KEY"] = CANARY
    farm.faults["/alpha/items"] = [redirect(f"{other.url}/steal?page=1")]
    farm.faults["/keyed/items"] = [redirect(f"{other.url}/steal?page=2")]
    other.faults["/steal"] = [(200, {"Content-Type": "application/json"}, b"[]")] * 2
    assert setup.cli("run").returncode == 0
    own = [h for h in farm.hits if h.api == "keyed"]
    assert own and all(h.query.get("api_key") == CANARY for h in own)
    assert all(h.headers.get("X-Api-Key") == CANARY for h in own)
    assert len(other.hits) == 2
    for hit in other.hits:
        assert CANARY not in repr(hit.headers) + repr(hit.query)
        assert "Authorization" not in hit.headers and "X-Api-Key" not in hit.headers
