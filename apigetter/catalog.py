"""What ``apigetter contracts`` shows and ``apigetter contracts check FILE`` checks."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from apigetter.auth import oauth, unauthorized
from apigetter.config import Settings
from apigetter.contract import DAY, HOUR, MINUTE, Api, Endpoint, Limit, OAuth2Refresh, TokenAuth
from apigetter.errors import ContractError
from apigetter.loader import load_contracts, load_file
from apigetter.store import Store

_UNITS = ((DAY, "day", "days"), (HOUR, "hour", "hours"), (MINUTE, "min", "min"))


def per(seconds: float) -> str:
    """``3600`` -> ``hour``, ``900`` -> ``15 min``, ``21600`` -> ``6 hours``."""
    for size, one, many in _UNITS:
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return one if count == 1 else f"{count} {many}"
    return "second" if seconds == 1 else f"{seconds:g} s"


def describe_limit(limit: Limit) -> str:
    """``Limit(5000, HOUR)`` -> ``5000 per hour``."""
    return f"{limit.count} per {per(limit.per_seconds)}"


def describe_auth(api: Api) -> str:
    """How the API authenticates, naming its variables (never their values)."""
    auth = api.auth
    if isinstance(auth, OAuth2Refresh):
        static = f"; or a static token in {auth.access_token}" if auth.access_token else ""
        return (
            f"OAuth2 refresh token ({auth.client_id}, {auth.client_secret}; "
            f"`apigetter authorize {api.name}` or {auth.refresh_token}{static})"
        )
    if isinstance(auth, TokenAuth):
        return f"token in {auth.var}"
    return "none" if not auth.env else f"{type(auth).__name__} ({', '.join(auth.env)})"


def describe_endpoint(ep: Endpoint) -> str:
    """One line: shape, schedule, paging, history, children."""
    shape = f"daily files by {ep.day_key}" if ep.day_key else "snapshot"
    parts = [shape, f"every {per(ep.every)}"]
    if type(ep.paginator).__name__ != "Paginator":
        parts.append(f"pages: {type(ep.paginator).__name__}")
    if ep.history is not None:
        parts.append(f"history: {type(ep.history).__name__}")
    if ep.children:
        parts.append(f"per entity: {', '.join(c.name for c in ep.children)}")
    return ", ".join(parts)


@dataclass
class ContractInfo:
    """One contract as ``apigetter contracts`` lists it."""

    name: str
    source: str
    state: str  # ready | not ready | broken
    needs: str = ""  # what is missing, or why it is broken
    auth: str = ""
    limits: list[str] = field(default_factory=list)
    max_in_flight: int = 0
    endpoints: dict[str, str] = field(default_factory=dict)  # name -> description


@dataclass
class Catalog:
    """Every contract found, valid or not."""

    contracts: list[ContractInfo]

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json`` (variable names only, never values)."""
        return asdict(self)


async def catalog(settings: Settings) -> Catalog:
    """Every contract: ready or what it needs, its endpoints and limits."""
    loaded = load_contracts(settings.contracts)
    env = settings.env
    ready = {n: a for n, a in loaded.apis.items() if not a.missing_env(env)}
    stored: set[str] = set()
    if any(oauth(a) for a in ready.values()) and settings.store_path.exists():
        store = await Store.open(settings.store_path)  # only if it exists: listing creates none
        try:
            stored = await store.apis_with_refresh_token()
        finally:
            await store.close()
    waiting = unauthorized(ready, env, stored)
    found = []
    for name, api in sorted(loaded.apis.items()):
        missing = api.missing_env(env)
        needs = f"missing {', '.join(missing)}" if missing else waiting.get(name, "")
        found.append(
            ContractInfo(
                name,
                loaded.sources.get(name, ""),
                "not ready" if needs else "ready",
                needs,
                describe_auth(api),
                [describe_limit(limit) for limit in api.limits],
                api.max_in_flight,
                {ep.name: describe_endpoint(ep) for ep in api.endpoints},
            )
        )
    found += [ContractInfo(e.api, e.path, "broken", e.reason) for e in loaded.errors]
    return Catalog(sorted(found, key=lambda c: c.name))


@dataclass
class Check:
    """The verdict of ``apigetter contracts check FILE``."""

    name: str
    problems: list[str]
    warnings: list[str]
    needs: list[str]
    endpoints: dict[str, str]

    @property
    def ok(self) -> bool:
        """Whether the contract loads and validates."""
        return not self.problems


def check(path: Path) -> Check:
    """Import and validate one contract file, without running it."""
    if not path.is_file():
        return Check(path.stem, [f"{path}: no such file"], [], [], {})
    try:
        api = load_file(path)
    except ContractError as exc:
        return Check(exc.api, [exc.reason], [], [], {})
    return Check(
        api.name,
        [],
        api.warnings(),
        api.required_env(),
        {ep.name: describe_endpoint(ep) for ep in api.endpoints},
    )
