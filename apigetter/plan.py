"""Which endpoints are due: a pure function of contracts, queue, endpoint state and now."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from apigetter.contract import Api, Cursor
from apigetter.store import EndpointState, Entry


@dataclass(frozen=True)
class Plan:
    """Due entries in run order, walks to start, entries to drop, and what is not due."""

    due: list[Entry] = field(default_factory=list)
    start_history: list[Entry] = field(default_factory=list)
    stale: list[Entry] = field(default_factory=list)
    not_due: list[Entry] = field(default_factory=list)


def plan(
    apis: Mapping[str, Api],
    entries: Iterable[Entry],
    states: Mapping[tuple[str, str], EndpointState],
    now: float,
    *,
    force: bool = False,
) -> Plan:
    """Standard entries are due when missing or past ``run_after`` (always with ``force``);
    an endpoint with a history walker that never finished gets a historic entry."""
    result = Plan()
    by_key = {(e.api, e.endpoint, e.kind): e for e in entries}
    for entry in by_key.values():
        if entry.api not in apis:  # not part of this run (another API, or one not ready)
            continue
        endpoint = next((ep for ep in apis[entry.api].endpoints if ep.name == entry.endpoint), None)
        if endpoint is None or (entry.kind == "historic" and endpoint.history is None):
            result.stale.append(entry)
    for name in sorted(apis):
        for ep in apis[name].endpoints:
            queued = [
                by_key.get((name, ep.name, "standard")) or Entry(name, ep.name, "standard", now)
            ]
            if ep.history is not None:
                historic = by_key.get((name, ep.name, "historic"))
                state = states.get((name, ep.name))
                if historic is None and (state is None or state.history_done is None):
                    historic = Entry(name, ep.name, "historic", now)
                    result.start_history.append(historic)
                if historic is not None:
                    queued.append(historic)
            for entry in queued:
                due = force or entry.run_after <= now
                (result.due if due else result.not_due).append(entry)
    return result


def succeeded(entry: Entry, delay: float, base: float, cursor: Cursor = None) -> Entry | None:
    """The entry after a success: a standard one is due ``delay`` after ``base`` (the run's
    start); a historic one moves to ``cursor`` after its pause, or ends (None) without one."""
    if entry.kind == "historic" and cursor is None:
        return None
    return Entry(entry.api, entry.endpoint, entry.kind, base + delay, 0, cursor)


def failed(
    entry: Entry, now: float, cap: float, until: float = 0.0, *, counts: bool = True
) -> Entry:
    """The entry after a failure: still there, due after a capped exponential backoff (or
    the provider's ``until``, if later). A failure that ``counts`` not just waits."""
    backoff = min(cap, 60.0 * 2**entry.attempts) if counts else 0.0
    return Entry(
        entry.api,
        entry.endpoint,
        entry.kind,
        max(now + backoff, until),
        entry.attempts + counts,
        entry.cursor,
    )
