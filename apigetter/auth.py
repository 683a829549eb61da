"""OAuth2 refresh-token auth: token exchange, one per run and API, rotated tokens stored first.

A contract declares ``OAuth2Refresh`` (contract.py); this module does the work:

- ``OAuth2Session`` hands every request of one API its access token. The first request
  (or the first after the token expires) exchanges the refresh token under a lock, so ten
  requests starting at once cause one exchange. A rotated refresh token and the new access
  token are committed to the store (durably) before the access token is returned, so a
  crash right after the exchange loses nothing; the stored refresh token wins over the
  environment's from then on. A still-valid stored access token is reused across runs.
- ``authorize`` bootstraps the refresh token: authorization-code flow with a loopback
  redirect to ``http://127.0.0.1:<port>/callback``.

Every token value (environment and stored, access and refresh) goes into the run's
``Redactor`` as soon as it is known; none is ever logged.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from apigetter.config import Settings
from apigetter.contract import Api, OAuth2Refresh, fill
from apigetter.errors import ConfigError, FetchError, NeedsAttention
from apigetter.store import Store, Tokens

if TYPE_CHECKING:  # aiohttp is imported only when something is fetched (see runner.py)
    import aiohttp
    from aiohttp import web

    from apigetter.config import Redactor
    from apigetter.http import Credentials, Http

log = logging.getLogger("apigetter")
EXPIRY_MARGIN = 300.0  # an access token this close to expiry is renewed first
CALLBACK_PATH = "/callback"
MAX_TOKEN_BODY = 1 << 20


def oauth(api: Api) -> OAuth2Refresh | None:
    """The API's OAuth2 declaration, if it has one."""
    return api.auth if isinstance(api.auth, OAuth2Refresh) else None


def base_url(api: Api, env: Mapping[str, str]) -> str:
    """The API's base URL, after the ``APIGETTER_<NAME>_BASE_URL`` override."""
    return env.get(api.base_url_var) or fill(api.base_url, env)


def auth_url(api: Api, env: Mapping[str, str], which: str) -> str:
    """The ``token`` or ``authorize`` URL: the override, an absolute URL, or relative to the
    (possibly overridden) base URL."""
    decl = oauth(api)
    assert decl is not None
    override = env.get(f"APIGETTER_{api.name.upper()}_{which.upper()}_URL")
    if override:
        return override
    url = decl.token_url if which == "token" else decl.authorize_url or ""
    if url.startswith(("https://", "http://")):
        return url
    return base_url(api, env).rstrip("/") + "/" + url.lstrip("/")


def _request_headers(api: Api, env: Mapping[str, str]) -> dict[str, str]:
    """Headers for the token URL: the API's own (a User-Agent Reddit insists on), no auth."""
    from apigetter.http import USER_AGENT

    own = {k: fill(v, env, quoted=False) for k, v in api.headers.items()}
    return {"Accept": "application/json", "User-Agent": USER_AGENT, **own}


async def _post_token(
    session: aiohttp.ClientSession,
    api: Api,
    env: Mapping[str, str],
    form: Mapping[str, str],
    redact: Redactor,
    settings: Settings,
) -> dict[str, Any]:
    """POST a token request; the JSON answer, or NeedsAttention when it is refused."""
    import aiohttp
    from yarl import URL

    decl = oauth(api)
    assert decl is not None
    url = auth_url(api, env, "token")
    data = dict(form)
    headers = _request_headers(api, env)
    if decl.client_auth == "basic":
        pair = f"{env[decl.client_id]}:{env[decl.client_secret]}".encode()
        headers["Authorization"] = f"Basic {base64.b64encode(pair).decode()}"
        redact.add(headers["Authorization"].removeprefix("Basic "))
    else:
        data |= {"client_id": env[decl.client_id], "client_secret": env[decl.client_secret]}
    where = redact(str(URL(url).with_query(None)))
    for attempt in range(settings.retries + 1):
        try:
            async with session.post(url, data=data, headers=headers, allow_redirects=False) as resp:
                status, raw = resp.status, await resp.content.read(MAX_TOKEN_BODY)
        except (TimeoutError, aiohttp.ClientError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
            if attempt == settings.retries:
                raise FetchError(f"token exchange failed: {reason} ({where})") from None
            await asyncio.sleep(settings.retry_backoff * 2**attempt)
            continue
        body = _json(raw)
        if isinstance(body, dict):  # a token in an error body must not reach a message
            redact.add(*(str(v) for k, v in body.items() if "token" in k and v))
        excerpt = redact(" ".join(raw[:300].decode("utf-8", "replace").split())[:160])
        if (status == 429 or status >= 500) and attempt < settings.retries:
            await asyncio.sleep(settings.retry_backoff * 2**attempt)
            continue
        if status in (400, 401, 403):
            raise NeedsAttention(
                f"token exchange refused: HTTP {status}: {excerpt}; "
                f"run `apigetter authorize {api.name}`"
            )
        if not 200 <= status < 300:
            raise FetchError(f"token exchange failed: HTTP {status} ({where}): {excerpt}")
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise FetchError(f"token exchange answered without an access_token ({where})")
        return body
    raise AssertionError("unreachable")


def _json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def _tokens(api: str, body: Mapping[str, Any], now: float) -> Tokens:
    """Tokens from a token response; expiry on the run's clock (``expires_in`` preferred)."""
    expires_at: float | None = None
    if isinstance(body.get("expires_in"), int | float):
        expires_at = now + float(body["expires_in"])
    elif isinstance(body.get("expires_at"), int | float):
        expires_at = now + float(body["expires_at"]) - time.time()
    refresh = body.get("refresh_token")
    return Tokens(
        api,
        refresh if isinstance(refresh, str) and refresh else None,
        body["access_token"],
        expires_at,
    )


class OAuth2Session:
    """One API's access token during one run: fetched lazily, exchanged at most once."""

    def __init__(
        self,
        api: Api,
        env: Mapping[str, str],
        store: Store,
        http: Http,
        clock: Callable[[], float],
    ) -> None:
        decl = oauth(api)
        assert decl is not None
        self.api, self.decl, self.env, self.store, self.http = api, decl, env, store, http
        self.clock = clock
        self.lock = asyncio.Lock()
        self.access: str | None = None
        self.expires_at: float | None = None
        self.failure: FetchError | None = None
        self.checked_store = False
        http.redact.add(*(env.get(name, "") for name in decl.secret_env()))

    async def __call__(self) -> Mapping[str, str]:
        """The Authorization header, exchanging the refresh token first if needed."""
        async with self.lock:
            if self.failure is not None:  # one failed exchange per run is enough
                again = NeedsAttention if isinstance(self.failure, NeedsAttention) else FetchError
                raise again(self.failure.reason)
            if not self._valid(self.access, self.expires_at, in_run=True):
                try:
                    await self._renew()
                except FetchError as exc:
                    self.failure = exc
                    raise
            return {"Authorization": f"{self.decl.scheme} {self.access}"}

    def _valid(self, token: str | None, expires_at: float | None, *, in_run: bool) -> bool:
        """Usable for a while yet; a token of unknown expiry only within the run it came in."""
        if token is None:
            return False
        if expires_at is None:
            return in_run
        return expires_at - EXPIRY_MARGIN > self.clock()

    async def _renew(self) -> None:
        stored = await self.store.tokens(self.api.name)
        if stored is not None:
            self.http.redact.add(stored.refresh_token or "", stored.access_token or "")
        if not self.checked_store:
            self.checked_store = True
            if stored and self._valid(stored.access_token, stored.expires_at, in_run=False):
                self.access, self.expires_at = stored.access_token, stored.expires_at
                return
        refresh = (stored.refresh_token if stored else None) or self.env.get(
            self.decl.refresh_token
        )
        if not refresh:
            raise NeedsAttention(
                f"no refresh token: run `apigetter authorize {self.api.name}` "
                f"or set {self.decl.refresh_token}"
            )
        body = await _post_token(
            self.http.session,
            self.api,
            self.env,
            {"grant_type": "refresh_token", "refresh_token": refresh},
            self.http.redact,
            self.http.settings,
        )
        tokens = _tokens(self.api.name, body, self.clock())
        self.http.redact.add(tokens.refresh_token or "", tokens.access_token or "")
        # Committed before the access token is used: a rotated refresh token (the old one
        # is dead now) must survive a crash on the very next line.
        await self.store.save_tokens(tokens, self.clock())
        log.info("%s: access token renewed", self.api.name)
        self.access, self.expires_at = tokens.access_token, tokens.expires_at


def credentials(
    api: Api, env: Mapping[str, str], store: Store, http: Http, clock: Callable[[], float]
) -> Credentials | None:
    """Per-request credentials of ``api`` for one run; None when its headers are static."""
    decl = oauth(api)
    if decl is None or decl.static(env):
        return None
    return OAuth2Session(api, env, store, http, clock)


def unauthorized(
    apis: Mapping[str, Api], env: Mapping[str, str], stored: set[str]
) -> dict[str, str]:
    """OAuth2 APIs with no refresh token in ``env`` or the store (``stored`` names the APIs
    that have one), with what to do about it."""
    found = {}
    for name, api in apis.items():
        decl = oauth(api)
        if decl is None or decl.static(env) or env.get(decl.refresh_token) or name in stored:
            continue
        found[name] = (
            f"not authorized: run `apigetter authorize {name}` (or set {decl.refresh_token})"
        )
    return found


# -- apigetter authorize ---------------------------------------------------------------


@dataclass(frozen=True)
class Authorized:
    """What ``apigetter authorize`` did (no secrets)."""

    api: str
    redirect_uri: str
    expires_at: float | None


def authorize_link(api: Api, env: Mapping[str, str], redirect_uri: str, state: str) -> str:
    """The provider's consent page for this API, with our redirect and state."""
    from yarl import URL

    decl = oauth(api)
    assert decl is not None
    query = {
        "client_id": env[decl.client_id],
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "state": state,
        **({"scope": decl.scope} if decl.scope else {}),
        **decl.authorize_params,
    }
    return str(URL(auth_url(api, env, "authorize")).update_query(query))


def _page(title: str, text: str, status: int = 200) -> web.Response:
    from aiohttp import web

    body = f"<!doctype html><title>{title}</title><h1>{title}</h1><p>{text}</p>"
    return web.Response(text=body, content_type="text/html", status=status)


async def authorize(
    settings: Settings,
    name: str,
    *,
    show: Callable[[str, str], None],
    port: int | None = None,
    timeout: float = 300.0,
    open_browser: bool = False,
) -> Authorized:
    """Get and store the tokens of the API ``name`` with the authorization-code flow.

    Listens on 127.0.0.1 (``port``, else the contract's ``redirect_port``, 0: any), calls
    ``show(url, redirect_uri)`` with the consent URL, exchanges the code the provider
    redirects back with, and stores the tokens. Raises ConfigError for what the user must
    fix first, NeedsAttention when the provider refuses.
    """
    import html
    import secrets
    import webbrowser

    import aiohttp
    from aiohttp import web

    from apigetter.config import Redactor
    from apigetter.loader import load_contracts

    loaded = load_contracts(settings.contracts)
    if name not in loaded.apis:
        broken = next((str(e) for e in loaded.errors if e.api == name), "")
        raise ConfigError(
            broken or f"unknown API: {name} (known: {', '.join(sorted(loaded.apis))})"
        )
    api = loaded.apis[name]
    decl = oauth(api)
    env = settings.env
    if decl is None or decl.static(env):
        raise ConfigError(f"{api.name} does not use OAuth2 refresh tokens: nothing to authorize")
    if not decl.authorize_url and not env.get(f"APIGETTER_{api.name.upper()}_AUTHORIZE_URL"):
        raise ConfigError(f"{api.name}: the contract declares no authorize_url")
    if missing := decl.missing(env):
        raise ConfigError(f"{api.name}: set {', '.join(missing)} first (see README)")
    redact = Redactor(env.get(name, "") for name in decl.secret_env())
    state = secrets.token_urlsafe(24)
    outcome: asyncio.Future[Tokens] = asyncio.get_running_loop().create_future()
    redirect_uri = ""
    client = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(
            total=settings.request_timeout, sock_connect=settings.connect_timeout
        )
    )

    async def callback(request: web.Request) -> web.Response:
        if outcome.done():
            return _page("Already done", "You can close this tab.", 409)
        if not secrets.compare_digest(request.query.get("state", ""), state):
            return _page("Wrong state", "This redirect is not the one apigetter asked for.", 400)
        if error := request.query.get("error"):
            outcome.set_exception(NeedsAttention(f"{api.name} refused: {redact(error)[:80]}"))
            return _page("Not authorized", f"{api.name} answered: {html.escape(error[:80])}", 400)
        code = request.query.get("code", "")
        if not code:
            return _page("No code", "The redirect carried no authorization code.", 400)
        redact.add(code)
        try:
            body = await _post_token(
                client,
                api,
                env,
                {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
                redact,
                settings,
            )
            tokens = _tokens(api.name, body, time.time())
            redact.add(tokens.refresh_token or "", tokens.access_token or "")
            if tokens.refresh_token is None:
                raise FetchError(f"{api.name} sent no refresh token with the access token")
            store = await Store.open(settings.store_path)
            try:
                await store.save_tokens(tokens, time.time())
            finally:
                await store.close()
        except Exception as exc:
            outcome.set_exception(exc)
            return _page("Failed", html.escape(redact(str(exc))[:200]), 502)
        outcome.set_result(tokens)
        return _page("Authorized", f"apigetter can now read {api.name}. You can close this tab.")

    app = web.Application()
    app.router.add_get(CALLBACK_PATH, callback)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        listen = decl.redirect_port if port is None else port
        try:
            await web.TCPSite(runner, "127.0.0.1", listen).start()
        except OSError as exc:
            raise ConfigError(f"cannot listen on 127.0.0.1:{listen}: {exc.strerror}") from None
        redirect_uri = f"http://127.0.0.1:{runner.addresses[0][1]}{CALLBACK_PATH}"
        link = authorize_link(api, env, redirect_uri, state)
        show(link, redirect_uri)
        if open_browser:
            webbrowser.open(link)
        try:
            tokens = await asyncio.wait_for(asyncio.shield(outcome), timeout)
        except TimeoutError:
            raise ConfigError(f"no redirect from {api.name} within {timeout:.0f}s") from None
    finally:
        await runner.cleanup()
        await client.close()
    return Authorized(api.name, redirect_uri, tokens.expires_at)
