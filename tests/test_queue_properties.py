"""The queue as a state machine (hypothesis), on a real store: any sequence of outcomes keeps
every endpoint scheduled, never loses or doubles an entry, never moves run_after backwards
(except --force), and never restarts a finished history walk."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from apigetter.contract import DAY, HOUR, Api, Endpoint, PageWalk
from apigetter.plan import failed, plan, succeeded
from apigetter.store import Entry, Store

CAP = 6 * HOUR
RETRY_AFTER = 2 * HOUR
EVERY = {"profile": DAY, "events": 6 * HOUR, "extra": HOUR}
WALK = PageWalk(pause=900)
OUTCOMES = st.sampled_from(["ok", "ok", "failure", "crash", "429", "quota", "walk-ends"])


def contract(with_extra: bool) -> dict[str, Api]:
    endpoints = [
        Endpoint("profile", "me", every=EVERY["profile"]),
        Endpoint("events", "ev", every=EVERY["events"], history=WALK),
    ]
    if with_extra:
        endpoints.append(Endpoint("extra", "x", every=EVERY["extra"]))
    return {"demo": Api(name="demo", base_url="https://demo.invalid", endpoints=tuple(endpoints))}


class QueueMachine(RuleBasedStateMachine):
    """Runs of the real plan/succeeded/failed functions against a real SQLite store."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp())
        self.loop = asyncio.new_event_loop()
        self.store = self.wait(Store.open(self.dir / "s.db"))
        self.now = 1_800_000_000.0
        self.with_extra = True
        self.forced = False
        self.last_seen: dict[tuple[str, str, str], float] = {}
        self.walk_done = False
        self.scheduled: set[tuple[str, str]] = set()  # (endpoint, kind) that had an entry

    def wait(self, coro):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.wait(self.store.close())
        self.loop.close()
        shutil.rmtree(self.dir)

    def entries(self) -> list[Entry]:
        return self.wait(self.store.entries(["demo"]))  # type: ignore[no-any-return]

    @rule(seconds=st.floats(min_value=0, max_value=2 * DAY))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds

    @rule()
    def contract_changes(self) -> None:
        self.with_extra = not self.with_extra

    @rule(outcomes=st.lists(OUTCOMES, min_size=4, max_size=4), force=st.booleans())
    def run(self, outcomes: list[str], force: bool) -> None:
        apis = contract(self.with_extra)
        claim = self.wait(
            self.store.claim(["demo"], pid=os.getpid(), host="h", now=self.now, lease=1e9)
        )
        states = self.wait(self.store.states(["demo"]))
        made = plan(apis, self.entries(), states, self.now, force=force)
        self.forced = force
        if made.stale:
            self.wait(self.store.remove_entries(claim.run_id, made.stale, self.now))
            self.scheduled -= {(e.endpoint, e.kind) for e in made.stale}
        self.wait(self.store.start_history(made.start_history))
        for entry, outcome in zip(made.due, outcomes * 2, strict=False):
            every = EVERY[entry.endpoint] if entry.kind == "standard" else WALK.pause
            if outcome == "crash":
                continue  # killed before the commit: nothing changes
            if outcome in ("ok", "walk-ends"):
                cursor = None if outcome == "walk-ends" else int(entry.cursor or 1) + 1
                nxt = succeeded(entry, every, self.now, cursor)
                done = entry.kind == "historic" and nxt is None
                self.walk_done |= done
                self.scheduled.discard((entry.endpoint, "historic") if done else ("", ""))
                self.wait(
                    self.store.commit_success(
                        claim.run_id, entry, nxt, [], [], self.now, history_done=done
                    )
                )
                continue
            until = self.now + RETRY_AFTER if outcome in ("429", "quota") else 0.0
            later = failed(entry, self.now, CAP, until, counts=outcome != "quota")
            self.wait(
                self.store.commit_failure(claim.run_id, later, "error", outcome, [], self.now)
            )
        self.wait(self.store.finish(claim.run_id, "done", self.now))

    @invariant()
    def one_entry_per_endpoint_and_kind(self) -> None:
        keys = [(e.endpoint, e.kind) for e in self.entries()]
        assert len(keys) == len(set(keys))

    @invariant()
    def no_entry_is_lost(self) -> None:
        present = {(e.endpoint, e.kind) for e in self.entries()}
        assert self.scheduled <= present
        self.scheduled = present

    @invariant()
    def every_endpoint_comes_due_within_a_bound(self) -> None:
        bound = max(*EVERY.values(), CAP, RETRY_AFTER)
        for entry in self.entries():
            assert entry.run_after <= self.now + bound, entry

    @invariant()
    def run_after_never_moves_backwards(self) -> None:
        for entry in self.entries():
            key = (entry.endpoint, entry.kind, str(entry.cursor))
            before = self.last_seen.get(key)
            if before is not None and not self.forced:
                assert entry.run_after >= before, entry
            self.last_seen[key] = entry.run_after

    @invariant()
    def a_finished_walk_never_restarts(self) -> None:
        if self.walk_done:
            assert all(e.kind != "historic" for e in self.entries())


QueueMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=20, deadline=None, derandomize=True
)
TestQueue = QueueMachine.TestCase
