"""The plan is a pure function: queue rows + contracts + state + now -> due entries."""

from __future__ import annotations

from apigetter.contract import Api, Endpoint, PageWalk
from apigetter.plan import plan
from apigetter.store import EndpointState, Entry

NOW = 1_800_000_000.0
API = Api(
    name="demo",
    base_url="https://demo.invalid",
    endpoints=(
        Endpoint("profile", "me"),
        Endpoint("events", "events", history=PageWalk()),
    ),
)
APIS = {"demo": API}


def test_a_missing_entry_is_due_now_and_a_walk_starts() -> None:
    made = plan(APIS, [], {}, NOW)
    assert [(e.endpoint, e.kind) for e in made.due] == [
        ("profile", "standard"),
        ("events", "standard"),
        ("events", "historic"),
    ]
    assert made.start_history == [Entry("demo", "events", "historic", NOW)]
    assert not made.not_due and not made.stale


def test_future_entries_wait_unless_forced() -> None:
    entries = [
        Entry("demo", "profile", "standard", NOW + 60),
        Entry("demo", "events", "standard", NOW - 1),
        Entry("demo", "events", "historic", NOW + 900, cursor=3),
    ]
    made = plan(APIS, entries, {}, NOW)
    assert [(e.endpoint, e.kind) for e in made.due] == [("events", "standard")]
    assert {(e.endpoint, e.kind) for e in made.not_due} == {
        ("profile", "standard"),
        ("events", "historic"),
    }
    assert not made.start_history
    forced = plan(APIS, entries, {}, NOW, force=True)
    assert len(forced.due) == 3 and forced.due[2].cursor == 3


def test_a_finished_walk_never_restarts() -> None:
    done = {("demo", "events"): EndpointState("demo", "events", history_done=NOW - 86400 * 365)}
    made = plan(APIS, [], done, NOW)
    assert [(e.endpoint, e.kind) for e in made.due] == [
        ("profile", "standard"),
        ("events", "standard"),
    ]
    assert not made.start_history


def test_entries_of_removed_endpoints_are_stale() -> None:
    entries = [
        Entry("demo", "gone", "standard", NOW),
        Entry("demo", "profile", "historic", NOW),  # profile has no walker
        Entry("other", "x", "standard", NOW),  # an API not in this plan is left alone
    ]
    made = plan(APIS, entries, {}, NOW)
    assert {(e.endpoint, e.kind) for e in made.stale} == {
        ("gone", "standard"),
        ("profile", "historic"),
    }
    assert all(e.endpoint != "gone" for e in made.due)
