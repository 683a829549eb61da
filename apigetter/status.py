"""What ``apigetter status`` shows: per API and endpoint, next due, last result, history."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from apigetter.config import Settings
from apigetter.runner import RunReport, drop_unauthorized, select_apis
from apigetter.store import RunRow, Store


@dataclass
class EndpointStatus:
    """One endpoint's queue and last outcome."""

    name: str
    next_due: float | None  # None: due now (never fetched)
    last_success: float | None
    last_result: str | None
    last_error: str | None
    history: str  # none | running (N chunks) | complete


@dataclass
class ApiStatus:
    """One API: ready or why not, and its endpoints."""

    name: str
    state: str
    endpoints: list[EndpointStatus] = field(default_factory=list)


@dataclass
class Status:
    """The whole picture at ``now``."""

    now: float
    apis: list[ApiStatus]
    active_runs: list[RunRow]
    last_run: RunRow | None

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json`` (no secrets are ever held here)."""
        return asdict(self)


async def collect(settings: Settings, only: list[str], now: float | None = None) -> Status:
    """Read contracts and the store; changes nothing but creating an empty store."""
    report = RunReport()
    ready = select_apis(settings, only, report)
    names = sorted({*ready, *report.apis})
    store = await Store.open(settings.store_path, settings.busy_timeout)
    try:
        await drop_unauthorized(ready, settings, store, report)
        entries = {(e.api, e.endpoint, e.kind): e for e in await store.entries(names)}
        states = await store.states(names)
        active = await store.active_runs()
        recent = [r for r in await store.runs(1)]
    finally:
        await store.close()
    apis = []
    for name in names:
        if name not in ready:
            apis.append(ApiStatus(name, f"{report.apis[name].state}: {report.apis[name].note}"))
            continue
        api = ApiStatus(name, "ready")
        for ep in ready[name].endpoints:
            state = states.get((name, ep.name))
            standard = entries.get((name, ep.name, "standard"))
            historic = entries.get((name, ep.name, "historic"))
            if ep.history is None:
                history = "none"
            elif state and state.history_done:
                history = "complete"
            else:
                chunks = state.history_chunks if state else 0
                history = f"running ({chunks} chunks)" if historic or chunks else "not started"
            api.endpoints.append(
                EndpointStatus(
                    ep.name,
                    standard.run_after if standard else None,
                    state.last_success if state else None,
                    state.last_result if state else None,
                    state.last_error if state else None,
                    history,
                )
            )
        apis.append(api)
    return Status(now or time.time(), apis, active, recent[0] if recent else None)
