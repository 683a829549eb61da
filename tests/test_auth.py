"""OAuth2 refresh tokens against the sandbox: one exchange, rotation stored first, crashes.

The sandbox rotates refresh tokens the way Strava, Reddit and Oura do: each exchange
issues a new one and the old one stops working. Losing a rotated token therefore means
the user has to authorize again, which is what these tests rule out.
"""

from __future__ import annotations

import asyncio
import sqlite3
import stat
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.typedefs import Handler
from yarl import URL

from apigetter import sandbox
from apigetter.auth import base_url, credentials
from apigetter.config import Settings, load_settings
from apigetter.contract import OAuth2Refresh
from apigetter.errors import ConfigError
from apigetter.http import ApiClient, Http, Redactor
from apigetter.loader import load_contracts
from apigetter.runner import run
from apigetter.store import Store
from apigetter.testing import FakeClock
from tests.conftest import Setup
from tests.servers import serve

OAUTH_APIS = ("strava", "reddit", "oura")
TOKEN_PATHS = {
    "strava": "/strava/oauth/token",
    "reddit": "/reddit/api/v1/access_token",
    "oura": "/oura/oauth/token",
}
API_PATHS = {  # a cheap authenticated GET of each API
    "strava": "api/v3/athlete",
    "reddit": "api/v1/me",
    "oura": "v2/usercollection/personal_info",
}
API_PREFIXES = {"strava": "/strava/api/", "reddit": "/reddit/", "oura": "/oura/v2/"}
CONTRACTS = load_contracts().apis


def stored_tokens(home: Path, api: str) -> tuple[str | None, str | None]:
    """(refresh, access) as committed to the store file, read by a separate connection."""
    if not (home / "apigetter.db").exists():
        return None, None
    with sqlite3.connect(home / "apigetter.db") as db:
        row = db.execute(
            "SELECT refresh_token, access_token FROM tokens WHERE api = ?", (api,)
        ).fetchone()
    db.close()
    return (row[0], row[1]) if row else (None, None)


def exchanges(app: web.Application, api: str) -> list[sandbox.Hit]:
    return [h for h in app[sandbox.REQUESTS] if h.path == TOKEN_PATHS[api]]


@dataclass
class Served:
    app: web.Application
    root: str
    settings: Settings


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    app = sandbox.make_app(latency=0.05)
    server, root = await sandbox.start(app)
    try:
        yield Served(app, root, load_settings(tmp_path, environ=sandbox.environ(root)))
    finally:
        await server.cleanup()


@pytest.mark.parametrize("name", OAUTH_APIS)
async def test_ten_concurrent_requests_cause_one_exchange(served: Served, name: str) -> None:
    api, env = CONTRACTS[name], served.settings.env
    store = await Store.open(served.settings.store_path)
    http = Http(served.settings, Redactor())
    try:
        creds = credentials(api, env, store, http, time.time)
        client = await ApiClient.create(api, env, base_url(api, env), [0] * len(api.limits), creds)
        url = client.base_url + API_PATHS[name]
        sent: list[float] = []
        answers = await asyncio.gather(*(http.get(client, url, {}, sent) for _ in range(10)))
    finally:
        await http.close()
        await store.close()
    assert [a.status for a in answers] == [200] * 10
    (exchange,) = exchanges(served.app, name)
    gets = [h for h in served.app[sandbox.REQUESTS] if h.method == "GET"]
    assert len(gets) == 10
    assert {h.headers["Authorization"] for h in gets} == {f"Bearer sandbox-{name}-access-1"}
    assert min(h.at for h in gets) >= exchange.done  # every request waited for the one exchange
    refresh, access = stored_tokens(served.settings.home, name)
    assert (refresh, access) == (f"sandbox-{name}-refresh-1", f"sandbox-{name}-access-1")


async def test_a_stored_access_token_is_reused_until_it_expires(served: Served) -> None:
    clock = FakeClock()
    await run(served.settings, only=["strava"], clock=clock)
    assert len(exchanges(served.app, "strava")) == 1
    clock.advance(3600)  # Strava's access tokens last six hours
    again = await run(served.settings, only=["strava"], clock=clock, force=True)
    assert again.exit_code == 0 and again.apis["strava"].requests > 0
    assert len(exchanges(served.app, "strava")) == 1
    clock.advance(6 * 3600)
    assert (await run(served.settings, only=["strava"], clock=clock, force=True)).exit_code == 0
    assert len(exchanges(served.app, "strava")) == 2
    assert stored_tokens(served.settings.home, "strava")[0] == "sandbox-strava-refresh-2"


async def test_a_refused_refresh_token_needs_attention_after_one_try(served: Served) -> None:
    bad = "not-the-right-refresh-token"
    env = {**served.settings.env, "STRAVA_REFRESH_TOKEN": bad}
    settings = load_settings(served.settings.home, environ=env)
    # The provider echoes the token it refused: it must still not reach any message.
    echo = b'{"message": "Bad Request", "detail": "unknown token ' + bad.encode() + b'"}'
    served.app[sandbox.FAULTS]["/strava/oauth/token"] = [sandbox.Fault(400, {}, echo)]
    report = await run(settings, only=["strava"])
    strava = report.apis["strava"]
    assert report.exit_code == 1 and strava.state == "failed"
    assert len(exchanges(served.app, "strava")) == 1  # not one per endpoint
    assert all("token exchange refused: HTTP 400" in e for e in strava.errors)
    assert all("apigetter authorize strava" in e for e in strava.errors)
    assert bad not in " ".join(strava.errors) and "***" in strava.errors[0]
    with sqlite3.connect(settings.store_path) as db:
        results = {r for (r,) in db.execute("SELECT last_result FROM endpoints")}
    db.close()
    assert results == {"attention"}


async def test_without_a_refresh_token_an_oauth_api_is_not_ready(served: Served) -> None:
    env = {k: v for k, v in served.settings.env.items() if k != "REDDIT_REFRESH_TOKEN"}
    settings = load_settings(served.settings.home, environ=env)
    report = await run(settings, only=["reddit", "github"])
    assert report.apis["reddit"].state == "not ready"
    assert "apigetter authorize reddit" in report.apis["reddit"].note
    assert report.apis["github"].state == "ok" and not exchanges(served.app, "reddit")
    with pytest.raises(ConfigError, match="nothing to run: reddit: not authorized"):
        await run(settings, only=["reddit"])


async def test_a_static_access_token_skips_the_exchange(served: Served) -> None:
    env = {
        **{k: v for k, v in served.settings.env.items() if not k.startswith("OURA_")},
        "OURA_TOKEN": sandbox.OURA_PERSONAL_TOKEN,
    }
    report = await run(load_settings(served.settings.home, environ=env), only=["oura"])
    assert report.exit_code == 0 and report.apis["oura"].written > 0
    assert not exchanges(served.app, "oura")


# -- real processes --------------------------------------------------------------------


@pytest.fixture
def threaded() -> Iterator[tuple[web.Application, str]]:
    """The sandbox served from a background thread, for tests that run the real CLI."""
    app = sandbox.make_app()
    with serve(app) as root:
        yield app, root


def stall_api_requests(app: web.Application, prefix: str) -> tuple[threading.Event, list[bool]]:
    """Hold every API request under ``prefix`` (not token requests) until released."""
    arrived, stalling = threading.Event(), [True]

    @web.middleware
    async def stall(request: web.Request, handler: Handler) -> web.StreamResponse:
        if stalling[0] and request.method == "GET" and request.path.startswith(prefix):
            arrived.set()
            while stalling[0]:  # until the test lets go (the client is dead by then)
                await asyncio.sleep(0.05)
        return await handler(request)

    app.middlewares.append(stall)
    return arrived, stalling


@pytest.mark.parametrize("name", OAUTH_APIS)
async def test_a_rotated_refresh_token_survives_a_crash_right_after_the_exchange(
    setup: Setup, name: str
) -> None:
    app = sandbox.make_app()
    arrived, stalling = stall_api_requests(app, API_PREFIXES[name])
    with serve(app) as root:
        setup.env.update(sandbox.environ(root))
        victim = setup.popen("run", "--api", name)
        try:
            # The first API request arrives only after the exchange: the rotated refresh
            # token must already be committed, or it would be lost with the process.
            assert arrived.wait(30), "no API request arrived"
            assert stored_tokens(setup.home, name)[0] == f"sandbox-{name}-refresh-1"
        finally:
            victim.kill()
            victim.communicate(timeout=10)
        stalling[0] = False
        assert len(exchanges(app, name)) == 1
        # The environment's refresh token died with the rotation...
        token_url = sandbox.environ(root).get(
            f"APIGETTER_{name.upper()}_TOKEN_URL", f"{root}{TOKEN_PATHS[name]}"
        )
        async with aiohttp.ClientSession() as http:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": setup.env[f"{name.upper()}_REFRESH_TOKEN"],
            }
            async with http.post(token_url, data=form, headers={"User-Agent": "test/1"}) as r:
                assert r.status in (400, 401)
        # ...and the next run, once the stored access token has expired, exchanges the
        # rotated one from the store and archives everything.
        settings = load_settings(setup.home, environ=setup.env)
        later = FakeClock(time.time() + 2 * 86400)
        before = len(exchanges(app, name))
        report = await run(settings, only=[name], clock=later)
    assert report.exit_code == 0, report.apis[name].errors
    assert report.apis[name].written > 0
    assert len(exchanges(app, name)) == before + 1
    assert stored_tokens(setup.home, name)[0] == f"sandbox-{name}-refresh-2"


def test_tokens_never_leave_the_store(setup: Setup, threaded: tuple[web.Application, str]) -> None:
    _, root = threaded
    setup.env.update(sandbox.environ(root))
    results = [setup.cli("-v", "run", "--api", "strava", "--api", "reddit", "--api", "oura")]
    results += [setup.cli("status"), setup.cli("status", "--json"), setup.cli("contracts")]
    results.append(setup.cli("contracts", "--json"))
    assert results[0].returncode == 0, results[0].stderr
    secrets = [v for k, v in sandbox.SANDBOX_ENV.items() if "SECRET" in k or "TOKEN" in k]
    for api in OAUTH_APIS:
        secrets += [f"sandbox-{api}-refresh-1", f"sandbox-{api}-access-1"]
    assert stored_tokens(setup.home, "strava") == (
        "sandbox-strava-refresh-1",
        "sandbox-strava-access-1",
    )
    for result in results:
        for secret in secrets:
            assert secret not in result.stdout + result.stderr
    store = setup.home / "apigetter.db"
    for path in setup.home.rglob("*"):
        if path.is_file() and not path.name.startswith(store.name):
            content = path.read_bytes()
            assert not [s for s in secrets if s.encode() in content], path
    for path in setup.home.glob("apigetter.db*"):  # the store and its WAL: private
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


# -- apigetter authorize ----------------------------------------------------------------


def consent_link(process: subprocess.Popen[str]) -> URL:
    """The consent URL ``apigetter authorize`` prints."""
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("http"):
            return URL(line.strip())
    raise AssertionError(f"no URL printed: {process.communicate(timeout=5)}")


def get(url: str) -> tuple[int, str]:
    """GET like a browser: follow redirects; (status, body) even for errors."""
    try:
        with urllib.request.urlopen(url, timeout=20) as page:  # noqa: S310 - loopback
            return page.status, page.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.mark.parametrize("name", OAUTH_APIS)
def test_authorize_stores_the_tokens_that_runs_then_use(
    setup: Setup, threaded: tuple[web.Application, str], name: str
) -> None:
    app, root = threaded
    setup.env.update(sandbox.environ(root))
    del setup.env[f"{name.upper()}_REFRESH_TOKEN"]  # nothing but what authorize stores
    decl = CONTRACTS[name].auth
    assert isinstance(decl, OAuth2Refresh)
    process = setup.popen("authorize", name, "--port", "0", "--timeout", "30")
    try:
        link = consent_link(process)
        assert link.query["client_id"] == setup.env[decl.client_id]
        assert link.query["scope"] == decl.scope and len(link.query["state"]) >= 24
        assert link.query["redirect_uri"].startswith("http://127.0.0.1:")
        status, page = get(str(link))  # the sandbox consents and redirects to the loopback
        assert (status, "Authorized" in page) == (200, True)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert f"{name}: authorized" in out
    secrets = [f"sandbox-{name}-code-1", f"sandbox-{name}-refresh-1", f"sandbox-{name}-access-1"]
    assert not [s for s in secrets if s in out + err + page]
    assert stored_tokens(setup.home, name)[0] == f"sandbox-{name}-refresh-1"
    result = setup.cli("run", "--api", name)
    assert result.returncode == 0, result.stderr
    assert len(exchanges(app, name)) == 1  # the run used the stored access token


def test_authorize_ignores_a_forged_redirect_and_reports_a_denial(
    setup: Setup, threaded: tuple[web.Application, str]
) -> None:
    setup.env.update(sandbox.environ(threaded[1]))
    process = setup.popen("authorize", "strava", "--port", "0", "--timeout", "30")
    try:
        link = consent_link(process)
        callback = URL(link.query["redirect_uri"])
        forged = get(str(callback.with_query(code="stolen", state="guessed")))
        assert forged[0] == 400 and "Wrong state" in forged[1]
        denied = callback.with_query(error="access_denied", state=link.query["state"])
        assert get(str(denied))[0] == 400
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 1
    assert "strava refused: access_denied" in err and "Traceback" not in err
    assert not (setup.home / "apigetter.db").exists()  # nothing stored, not even a store


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("authorize", "github"), "github does not use OAuth2"),
        (("authorize", "nope"), "unknown API: nope"),
        (("authorize", "strava", "--port", "0", "--timeout", "0.5"), "no redirect from strava"),
    ],
)
def test_authorize_usage_errors(
    setup: Setup, threaded: tuple[web.Application, str], args: tuple[str, ...], message: str
) -> None:
    setup.env.update(sandbox.environ(threaded[1]))
    result = setup.cli(*args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
