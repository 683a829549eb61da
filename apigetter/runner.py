"""One run: claim APIs, plan, fetch every due endpoint concurrently, write, advance, release."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from apigetter.auth import base_url, credentials, unauthorized
from apigetter.config import Redactor, Settings
from apigetter.contract import Api, Child, Context, Endpoint, Page, dig, fill
from apigetter.errors import (
    ConfigError,
    FetchError,
    NeedsAttention,
    OutputError,
    QuotaDeferred,
    RetryLater,
    StoreError,
)
from apigetter.loader import load_contracts
from apigetter.output import Archive, Output, day_outputs, entity_output, snapshot_output
from apigetter.plan import failed, plan, succeeded
from apigetter.store import EndpointState, Entry, FileRow, Latest, LostClaim, Store

if TYPE_CHECKING:
    from apigetter.http import ApiClient, Http

log = logging.getLogger("apigetter")


@dataclass
class ApiReport:
    """What one run did for one API."""

    name: str
    state: str = "ok"  # ok | failed | not ready | held | broken
    requests: int = 0
    items: int = 0
    written: int = 0
    unchanged: int = 0
    not_due: int = 0
    errors: list[str] = field(default_factory=list)
    note: str = ""


@dataclass
class RunReport:
    """The outcome of one invocation; ``exit_code`` is what the CLI returns."""

    run_id: int | None = None
    status: str = "done"  # done | failed | skipped | interrupted | dry-run
    apis: dict[str, ApiReport] = field(default_factory=dict)
    due: list[Entry] = field(default_factory=list)  # filled by dry runs

    @property
    def exit_code(self) -> int:
        """0 all good or skipped, 1 something failed, 130 interrupted."""
        if self.status == "interrupted":
            return 130
        return 1 if any(r.state in ("failed", "broken") for r in self.apis.values()) else 0

    def summary(self) -> dict[str, Any]:
        """Totals for the run row: counts only, never data or secrets."""
        keys = ("requests", "items", "written", "unchanged")
        totals = {k: sum(getattr(r, k) for r in self.apis.values()) for k in keys}
        return {**totals, "errors": sum(len(r.errors) for r in self.apis.values())}


def select_apis(settings: Settings, only: Sequence[str], report: RunReport) -> dict[str, Api]:
    """Loaded, enabled and ready APIs; everything else goes into ``report`` with a reason."""
    loaded = load_contracts(settings.contracts)
    wanted = set(only or settings.apis or [*loaded.apis, *(e.api for e in loaded.errors)])
    unknown = wanted - set(loaded.apis) - {e.api for e in loaded.errors}
    if unknown:
        raise ConfigError(
            f"unknown API: {', '.join(sorted(unknown))} (known: {', '.join(sorted(loaded.apis))})"
        )
    for error in loaded.errors:
        if error.api in wanted:
            report.apis[error.api] = ApiReport(error.api, "broken", note=str(error))
    ready = {}
    for name in sorted(wanted & set(loaded.apis)):
        api = loaded.apis[name]
        if missing := api.missing_env(settings.env):
            report.apis[name] = ApiReport(name, "not ready", note=f"missing {', '.join(missing)}")
        else:
            ready[name] = api
    return ready


async def drop_unauthorized(
    apis: dict[str, Api], settings: Settings, store: Store, report: RunReport
) -> None:
    """Move OAuth2 APIs without any refresh token (env or store) to ``report``."""
    stored = await store.apis_with_refresh_token()
    for name, note in unauthorized(apis, settings.env, stored).items():
        report.apis[name] = ApiReport(name, "not ready", note=note)
        del apis[name]


def _check_something_to_run(apis: dict[str, Api], only: Sequence[str], report: RunReport) -> None:
    """``--api`` naming only APIs that cannot run is a usage error, with the reasons."""
    if only and not apis:
        problems = "; ".join(f"{r.name}: {r.note}" for r in report.apis.values())
        raise ConfigError(f"nothing to run: {problems}")


async def run(
    settings: Settings,
    *,
    only: Sequence[str] = (),
    force: bool = False,
    dry_run: bool = False,
    clock: Callable[[], float] = time.time,
) -> RunReport:
    """Fetch every due endpoint of the selected APIs once; never raises for one endpoint."""
    report = RunReport()
    apis = select_apis(settings, only, report)
    _check_something_to_run(apis, only, report)
    if not apis:
        return report
    store = await Store.open(settings.store_path, settings.busy_timeout)
    try:
        await drop_unauthorized(apis, settings, store, report)
        _check_something_to_run(apis, only, report)
        if not apis:
            return report
        if dry_run:
            report.status = "dry-run"
            names = sorted(apis)
            made = plan(
                apis, await store.entries(names), await store.states(names), clock(), force=force
            )
            report.due = made.due
            return report
        return await Runner(settings, store, apis, report, clock).run(force)
    finally:
        await store.close()


class Runner:
    """The state of one claimed run."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        apis: dict[str, Api],
        report: RunReport,
        clock: Callable[[], float],
    ) -> None:
        self.settings, self.store, self.apis, self.report = settings, store, apis, report
        self.clock = clock
        self.archive = Archive(settings.data_dir)
        self.run_id = 0
        self.started = 0.0
        self.stamp = ""
        self.redact = Redactor.for_env(settings.env)

    async def run(self, force: bool) -> RunReport:
        """Claim, recover, plan, fetch, release."""
        self.started = self.clock()
        self.stamp = datetime.fromtimestamp(self.started, UTC).strftime("%Y%m%dT%H%M%SZ")
        claim = await self.store.claim(
            sorted(self.apis),
            pid=os.getpid(),
            host=socket.gethostname(),
            now=self.started,
            lease=self.settings.lease_seconds,
        )
        self.run_id = self.report.run_id = claim.run_id
        for name, holder in claim.held.items():
            self.report.apis[name] = ApiReport(name, "held", note=f"held by run {holder}")
            del self.apis[name]
        if not claim.claimed:
            self.report.status = "skipped"
            return self.report
        beat = asyncio.create_task(self._heartbeat(asyncio.current_task()))
        status = "failed"
        try:
            await self._recover()
            await self._fetch_all(force)
            status = "failed" if self.report.exit_code else "done"
        except asyncio.CancelledError:
            status = self.report.status = "interrupted"
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
            await self.store.finish(self.run_id, status, self.clock(), self.report.summary())
        self.report.status = status
        return self.report

    async def _heartbeat(self, main: asyncio.Task[Any] | None) -> None:
        """Keep our claim fresh; if another run took it over, stop fetching."""
        while True:
            await asyncio.sleep(self.settings.lease_seconds / 3)
            try:
                alive = await self.store.heartbeat(self.run_id, self.clock())
            except StoreError as exc:  # busy for a while: the next beat may get through
                log.warning("heartbeat of run %s failed: %s", self.run_id, exc)
                continue
            if not alive and main:
                log.error("run %s lost its claim (heartbeat too late); stopping", self.run_id)
                main.cancel()
                return

    async def _recover(self) -> None:
        """Roll forward files a crashed run committed but did not move into place."""
        names = sorted(self.apis)
        if staged := await self.store.staged_files(names):
            await self.store.placed(self.archive.place(staged))
        active = {r.id for r in await self.store.active_runs()}
        keep = {temp for temp, _ in await self.store.staged_files(None)}
        self.archive.clear_orphans(active, keep)

    async def _fetch_all(self, force: bool) -> None:
        names = sorted(self.apis)
        states = await self.store.states(names)
        made = plan(self.apis, await self.store.entries(names), states, self.started, force=force)
        if made.stale:
            await self.store.remove_entries(self.run_id, made.stale, self.started)
        if made.start_history:
            await self.store.start_history(made.start_history)
        for entry in made.not_due:
            self._api(entry.api).not_due += 1
        if not made.due:  # the common cron tick: no HTTP machinery needed at all
            return
        from apigetter.http import ApiClient, Http

        redact, env = self.redact, self.settings.env
        http = Http(self.settings, redact)
        try:
            clients = {}
            for name in sorted({entry.api for entry in made.due}):
                api = self.apis[name]
                redact.add(*(env.get(v, "") for v in api.auth.secret_env()))
                base = base_url(api, env)
                creds = credentials(api, env, self.store, http, self.clock)
                recent = await self._recent(api)
                clients[name] = await ApiClient.create(api, env, base, recent, creds)
            by_endpoint: dict[tuple[str, str], list[Entry]] = {}
            for entry in made.due:
                by_endpoint.setdefault((entry.api, entry.endpoint), []).append(entry)
            await asyncio.gather(
                *(
                    self._endpoint(http, clients[api], entries, states.get((api, ep)))
                    for (api, ep), entries in by_endpoint.items()
                )
            )
        finally:
            await http.close()

    async def _recent(self, api: Api) -> list[int]:
        """Requests earlier runs sent within each of the API's declared windows."""
        if not api.limits:
            return []
        longest = max(limit.per_seconds for limit in api.limits)
        await self.store.prune_ledger(api.name, self.started - longest)
        return await self.store.sent_since(
            api.name, [self.started - limit.per_seconds for limit in api.limits]
        )

    def _api(self, name: str) -> ApiReport:
        return self.report.apis.setdefault(name, ApiReport(name))

    async def _endpoint(
        self, http: Http, client: ApiClient, entries: list[Entry], state: EndpointState | None
    ) -> None:
        """The standard entry, then the historic one: they may write the same day files."""
        endpoint = next(ep for ep in client.api.endpoints if ep.name == entries[0].endpoint)
        for entry in entries:
            await self._entry(http, client, endpoint, entry, state)

    async def _entry(
        self,
        http: Http,
        client: ApiClient,
        ep: Endpoint,
        entry: Entry,
        state: EndpointState | None,
    ) -> None:
        """Fetch one queue entry, write its files and advance it in one transaction."""
        api, report = client.api, self._api(client.api.name)
        sent: list[float] = []
        last = state.last_success if state else None
        ctx = Context(
            now=datetime.fromtimestamp(self.started, UTC),
            tz=self.settings.tz,
            origin_date=self.settings.origin_date,
            env=self.settings.env,
            last_success=datetime.fromtimestamp(last, UTC) if last else None,
        )
        staged: list[str | None] = []
        try:
            data, count, next_entry = await self._fetch(http, client, ep, entry, ctx, sent)
            names = [ep.name, *(c.name for c in ep.children)]
            latest = await self.store.latest_files(api.name, names)
            # File work runs in worker threads: a slow disk must not stall other APIs' pacing.
            outputs = await asyncio.to_thread(self._outputs, api.name, ep, data, latest)
            rows = await asyncio.to_thread(self.archive.stage, self.run_id, outputs, latest)
            staged = [row.staged for row in rows]
            found, child_error = len(outputs), ""
            for child in ep.children:
                child_rows, entities, error = await self._children(
                    http, client, child, data, sent, latest, staged
                )
                rows += child_rows
                found += entities
                count += entities
                child_error = child_error or error
            done = entry.kind == "historic" and next_entry is None
            await self.store.commit_success(
                self.run_id, entry, next_entry, rows, sent, self.clock(), history_done=done
            )
            staged = []  # committed: from here on the next run rolls them forward if need be
            moves = [(r.staged, r.path) for r in rows]
            try:
                await self.store.placed(await asyncio.to_thread(self.archive.place, moves))
            except (OSError, StoreError) as exc:
                log.warning("%s/%s: files stay staged for the next run: %s", api.name, ep.name, exc)
            report.items += count
            report.written += len(rows)
            report.unchanged += found - len(rows)
            if child_error:  # the parent advanced; children without a file are retried next time
                report.state = "failed"
                report.errors.append(child_error)
        except FetchError as exc:
            await self._failed(entry, exc, staged, sent, report)
        except LostClaim:
            self.archive.discard(staged)
        except StoreError as exc:  # cannot record anything: the entry simply stays due
            self.archive.discard(staged)
            report.state = "failed"
            report.errors.append(f"{entry.endpoint}: {exc}")
        except Exception as exc:  # a contract hook, or a response shape it did not expect
            log.debug("%s/%s failed", api.name, ep.name, exc_info=True)
            reason = self.redact(f"{type(exc).__name__}: {exc}")[:200]
            await self._failed(entry, FetchError(reason), staged, sent, report)
        except BaseException:  # cancelled: nothing was committed, the entry stays due
            self.archive.discard(staged)
            raise
        finally:
            report.requests += len(sent)

    async def _fetch(
        self,
        http: Http,
        client: ApiClient,
        ep: Endpoint,
        entry: Entry,
        ctx: Context,
        sent: list[float],
    ) -> tuple[Any, int, Entry | None]:
        """All pages of one entry, merged; and the entry that follows it (None: walk done)."""
        env = self.settings.env
        url = client.base_url + fill(ep.path, env).lstrip("/")
        if entry.kind == "standard":
            params = ep.params(ctx) if callable(ep.params) else ep.params
            text = {k: _text(v, env) for k, v in params.items()}
            pages, _ = await self._pages(http, client, ep, url, text, sent, paginate=True)
            data, count = _merge(pages, ep)
            return data, count, succeeded(entry, ep.every, self.started)
        walk = ep.history
        assert walk is not None
        cursor = walk.start(ctx) if entry.cursor is None else entry.cursor
        pages, ended = await self._pages(
            http,
            client,
            ep,
            url,
            walk.params(ctx, cursor),
            sent,
            paginate=walk.paginate,
            accept=walk.end_statuses,
        )
        cursor = None if ended else walk.advance(ctx, cursor, pages)
        data, count = _merge(pages, ep)
        return data, count, succeeded(entry, walk.pause, self.clock(), cursor)

    async def _failed(
        self,
        entry: Entry,
        exc: FetchError,
        staged: list[str | None],
        sent: list[float],
        report: ApiReport,
    ) -> None:
        """Keep the entry due, later: capped exponential backoff, or the provider's time."""
        self.archive.discard(staged)
        now = self.clock()
        quota = isinstance(exc, QuotaDeferred)  # our own budget: wait, but no failure
        until = exc.until if isinstance(exc, RetryLater) else 0.0
        later = failed(entry, now, self.settings.backoff_cap, until, counts=not quota)
        result = (
            "attention"
            if isinstance(exc, NeedsAttention)
            else ("deferred" if isinstance(exc, RetryLater) else "error")
        )
        message = f"{entry.endpoint}: {exc.reason}"
        try:
            await self.store.commit_failure(self.run_id, later, result, message, sent, now)
        except StoreError as exc:
            message = f"{message}; not recorded: {exc}"
        except LostClaim:
            return
        if quota:
            report.note = message
            return
        report.state = "failed"
        report.errors.append(message)

    async def _pages(
        self,
        http: Http,
        client: ApiClient,
        ep: Endpoint,
        url: str,
        params: dict[str, str],
        sent: list[float],
        *,
        paginate: bool,
        accept: tuple[int, ...] = (),
    ) -> tuple[list[Page], bool]:
        """Every page of one request (up to the cap); True if an ``accept`` status ended it."""
        pages: list[Page] = []
        request: tuple[str, dict[str, str]] | None = (
            url,
            ep.paginator.first(params) if paginate else params,
        )
        while request and len(pages) < ep.max_pages:
            resp = await http.get(client, request[0], request[1], sent, accept)
            if resp.status in accept:
                return pages, True
            items = dig(resp.body, ep.items)
            page = Page(
                request[0],
                request[1],
                resp.status,
                resp.body,
                items if isinstance(items, list) else [],
                resp.links,
            )
            pages.append(page)
            request = ep.paginator.next(page) if paginate else None
        if request:
            self._api(client.api.name).note = f"{ep.name}: stopped at {ep.max_pages} pages"
        return pages, False

    def _outputs(self, api: str, ep: Endpoint, data: Any, latest: Latest) -> list[Output]:
        if data is None:
            return []
        if not (ep.day_key and isinstance(data, list)):
            return [snapshot_output(api, ep.name, data, self.stamp)]

        def stored(day: str) -> list[Any]:
            found = latest.get((ep.name, day))
            return self.archive.read_list(found[1]) if found and ep.id_key else []

        return day_outputs(
            api, ep.name, data, ep.day_key, self.settings.tz, self.stamp, ep.id_key, stored
        )

    async def _children(
        self,
        http: Http,
        client: ApiClient,
        child: Child,
        data: Any,
        sent: list[float],
        latest: Latest,
        staged: list[str | None],
    ) -> tuple[list[FileRow], int, str]:
        """One request per entity, each staged as it arrives (its name added to ``staged``).
        Returns the staged rows, how many entities came back, and the first failure."""
        ids = child.entity_ids(data)
        if child.new_only:
            ids = [i for i in ids if (child.name, i) not in latest]
        ids = ids[: child.max_per_run]
        env = self.settings.env
        params = {k: _text(v, env) for k, v in child.params.items()}

        stager = Stager(self.archive, self.run_id, latest, staged)

        async def one(entity: str) -> bool:
            url = client.base_url + fill(child.path, {**env, "id": entity}).lstrip("/")
            body = (await http.get(client, url, params, sent)).body
            if body is None:  # deleted (Hacker News answers null): nothing to archive
                return False
            stager.add(entity_output(client.api.name, child.name, entity, body, self.stamp))
            return True

        results = await asyncio.gather(*(one(i) for i in ids), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, FetchError):
                raise r
        rows = await stager.finish()
        entities = sum(1 for r in results if r is True)
        # Out of quota is no failure: those entities have no file, so the next run asks again.
        if deferred := sum(isinstance(r, QuotaDeferred) for r in results):
            self._api(client.api.name).note = f"{child.name}: {deferred} deferred (quota)"
        failures = [
            r for r in results if isinstance(r, FetchError) and not isinstance(r, QuotaDeferred)
        ]
        if not failures:
            return rows, entities, ""
        reason = f"{child.name}: {len(failures)} of {len(ids)} failed: {failures[0].reason}"
        return rows, entities, reason


class Stager:
    """Stages files in a worker thread while requests go on: whatever arrived during one
    thread hop goes in the next, so the loop never waits on the disk and hops stay few."""

    def __init__(self, archive: Archive, run_id: int, latest: Latest, staged: list[str | None]):
        self.archive, self.run_id, self.latest, self.staged = archive, run_id, latest, staged
        self.pending: list[Output] = []
        self.rows: list[FileRow] = []
        self.error: OutputError | None = None
        self.task: asyncio.Task[None] | None = None

    def add(self, out: Output) -> None:
        """Queue one output; start draining if nothing is."""
        self.pending.append(out)
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        while self.pending:
            batch, self.pending = self.pending, []
            try:
                rows = await asyncio.to_thread(self.archive.stage, self.run_id, batch, self.latest)
            except OutputError as exc:
                self.error = self.error or exc
                continue
            self.rows += rows
            self.staged.extend(row.staged for row in rows)

    async def finish(self) -> list[FileRow]:
        """Every staged row, once the queue is empty; the first disk error, if any."""
        if self.task is not None:
            await self.task
        if self.error is not None:
            raise self.error
        return self.rows


def _merge(pages: list[Page], ep: Endpoint) -> tuple[Any, int]:
    """All pages' items as one list (or the single body of a snapshot), and the item count."""
    if not pages:
        return None, 0
    if ep.items is not None or isinstance(pages[0].body, list):
        items = [item for page in pages for item in page.items]
        return items, len(items)
    return pages[0].body, 1


def _text(value: object, env: Mapping[str, str]) -> str:
    """A query param as text, with ``{ENV}`` placeholders filled."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return fill(value, env, quoted=False) if isinstance(value, str) else str(value)
