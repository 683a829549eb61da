"""The command line: parse, call one function, render, return an exit code."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from apigetter import __version__
from apigetter.config import Redactor, Settings, load_settings
from apigetter.errors import ApigetterError

if TYPE_CHECKING:
    from apigetter.catalog import Catalog, Check
    from apigetter.runner import RunReport
    from apigetter.status import Status

T = TypeVar("T")
EXIT_USAGE = 2

app = typer.Typer(
    help="Keep a personal archive of your data from many HTTP APIs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"apigetter {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(help="Home dir for the store, data and config.toml [env: APIGETTER_HOME]."),
    ] = None,
    contracts: Annotated[
        list[Path] | None,
        typer.Option("--contracts", help="Extra contract dir or file (repeatable)."),
    ] = None,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Log details.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Keep a personal archive of your data from many HTTP APIs."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Only our own logger gets chatty: libraries log at DEBUG what we must not show
    # (aiosqlite logs every statement with its parameters, tokens included).
    logging.getLogger("apigetter").setLevel(logging.DEBUG if verbose else logging.WARNING)
    ctx.obj = {"home": home, "contracts": tuple(contracts or ()), "verbose": verbose}


def _settings(ctx: typer.Context) -> Settings:
    return load_settings(ctx.obj["home"], contracts=ctx.obj["contracts"])


def _call(ctx: typer.Context, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` with SIGINT/SIGTERM cancelling it; library errors exit 2, cleanly."""

    async def guarded() -> T:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)  # type: ignore[union-attr]
        return await work()

    try:
        return asyncio.run(guarded())
    except ApigetterError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    except asyncio.CancelledError:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None
    except Exception as exc:  # a bug: one clean line, the traceback only with -v
        if ctx.obj["verbose"]:
            raise
        text = Redactor.for_env(os.environ)(f"{type(exc).__name__}: {exc}")
        typer.echo(f"error: {text} (run with -v for the traceback)", err=True)
        raise typer.Exit(EXIT_USAGE) from None


def _ago(moment: float | None, now: float) -> str:
    """'in 3h', '12m ago', 'now'."""
    if moment is None:
        return "now"
    delta = moment - now
    size = abs(delta)
    text = (
        f"{size:.0f}s"
        if size < 90
        else f"{size / 60:.0f}m"
        if size < 5400
        else f"{size / 3600:.1f}h"
        if size < 172800
        else f"{size / 86400:.0f}d"
    )
    return "now" if -1 < delta <= 0 else (f"in {text}" if delta > 0 else f"{text} ago")


@app.command()
def run(
    ctx: typer.Context,
    api: Annotated[
        list[str] | None, typer.Option("--api", help="Only this API (repeatable).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Ignore run_after: fetch everything now.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Show what is due; fetch nothing.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Print only errors.")] = False,
) -> None:
    """Fetch every due endpoint of every API (or of --api), concurrently."""
    from apigetter.runner import run as run_all

    report = _call(
        ctx, lambda: run_all(_settings(ctx), only=api or [], force=force, dry_run=dry_run)
    )
    _render_run(report, quiet)
    raise typer.Exit(report.exit_code)


def _render_run(report: RunReport, quiet: bool = False) -> None:
    if report.status == "skipped":
        if not quiet:
            held = ", ".join(f"{r.name} ({r.note})" for r in report.apis.values())
            typer.echo(f"skipped: another run holds every requested API: {held}")
        return
    for entry in report.due:
        typer.echo(f"due  {entry.api}/{entry.endpoint} ({entry.kind})")
    for name, r in sorted(report.apis.items()):
        if r.state in ("failed", "broken"):
            for error in r.errors or [r.note]:
                typer.echo(f"{name}: {error}", err=True)
        if quiet or (report.status == "dry-run" and r.state == "ok"):
            continue
        if r.state in ("ok", "failed"):
            typer.echo(
                f"{name:<12} {r.state:<7} {r.requests} requests, {r.items} items, "
                f"{r.written} written, {r.unchanged} unchanged, {r.not_due} not due"
                + (f"  ({r.note})" if r.note else "")
            )
        elif r.state != "broken":
            typer.echo(f"{name:<12} {r.state}: {r.note}")
    if report.status == "interrupted":
        typer.echo("interrupted: in-flight endpoints stay due", err=True)


@app.command()
def status(
    ctx: typer.Context,
    api: Annotated[list[str] | None, typer.Option("--api", help="Only this API.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show each API's endpoints: next due, last result, history, and active runs."""
    from apigetter.status import collect

    state = _call(ctx, lambda: collect(_settings(ctx), api or []))
    if as_json:
        _print_json(state.as_dict())
    else:
        _render_status(state)


def _print_json(data: object) -> None:
    import orjson

    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def _render_status(state: Status) -> None:
    now = state.now
    for row in state.active_runs:
        typer.echo(
            f"active run {row.id}: pid {row.pid} on {row.host}, started "
            f"{_ago(row.started_at, now)}, heartbeat {_ago(row.heartbeat_at, now)}, "
            f"APIs {', '.join(row.apis)}"
        )
    if last := state.last_run:
        totals = ", ".join(f"{v} {k}" for k, v in (last.summary or {}).items())
        typer.echo(
            f"last run {last.id}: {last.status}, {_ago(last.started_at, now)}"
            + (f", {totals}" if totals else "")
        )
    for a in state.apis:
        typer.echo(f"{a.name}: {a.state}")
        for ep in a.endpoints:
            success = _ago(ep.last_success, now) if ep.last_success else "-"
            typer.echo(
                f"  {ep.name:<16} next {_ago(ep.next_due, now):<10} "
                f"last {ep.last_result or '-':<9} success {success:<9} history {ep.history}"
                + (f"\n    error: {ep.last_error}" if ep.last_error else "")
            )


@app.command()
def authorize(
    ctx: typer.Context,
    api: Annotated[str, typer.Argument(help="The API to authorize, e.g. strava.")],
    port: Annotated[
        int | None,
        typer.Option(help="Loopback port for the redirect [default: the contract's, else any]."),
    ] = None,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the consent page in a browser.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the redirect.")] = 300.0,
) -> None:
    """Get an OAuth2 refresh token: open the printed URL, allow access, tokens are stored."""
    from apigetter.auth import authorize as authorize_api
    from apigetter.errors import FetchError

    def show(url: str, redirect_uri: str) -> None:
        typer.echo(f"Open this URL to let apigetter read {api} (it redirects to {redirect_uri}):")
        typer.echo(url)

    async def work() -> object:
        try:
            return await authorize_api(
                _settings(ctx),
                api,
                show=show,
                port=port,
                timeout=timeout,
                open_browser=open_browser,
            )
        except FetchError as exc:  # the provider refused: not a usage error
            return exc

    outcome = _call(ctx, work)
    if isinstance(outcome, FetchError):
        typer.echo(f"error: {outcome}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{api}: authorized; the tokens are in the store, `apigetter run` uses them")


contracts_app = typer.Typer(
    help="List the contracts: ready or what they need, endpoints, limits.",
    invoke_without_command=True,
)
app.add_typer(contracts_app, name="contracts")


@contracts_app.callback()
def contracts(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List the contracts: ready or what they need, endpoints, limits."""
    if ctx.invoked_subcommand is not None:
        return
    from apigetter.catalog import catalog

    found = _call(ctx, lambda: catalog(_settings(ctx)))
    if as_json:
        _print_json(found.as_dict())
    else:
        _render_catalog(found)


def _render_catalog(found: Catalog) -> None:
    for c in found.contracts:
        typer.echo(f"{c.name}: {c.state}" + (f": {c.needs}" if c.needs else "") + f"  ({c.source})")
        if c.state == "broken":
            continue
        typer.echo(f"  auth    {c.auth}")
        limits = "; ".join(c.limits) or "none declared"
        typer.echo(f"  limits  {limits}; at most {c.max_in_flight} in flight")
        for name, text in c.endpoints.items():
            typer.echo(f"  {name:<16} {text}")


@contracts_app.command("check")
def contracts_check(
    file: Annotated[Path, typer.Argument(help="The contract file to check.")],
) -> None:
    """Import and validate one contract file without running it; exit 1 if it is invalid."""
    from apigetter.catalog import check

    _render_check(result := check(file))
    raise typer.Exit(0 if result.ok else 1)


def _render_check(result: Check) -> None:
    for problem in result.problems:
        typer.echo(f"error: {result.name}: {problem}", err=True)
    if not result.ok:
        return
    typer.echo(f"ok: {result.name}, {len(result.endpoints)} endpoints")
    for name, text in result.endpoints.items():
        typer.echo(f"  {name:<16} {text}")
    if result.needs:
        typer.echo(f"  needs   {', '.join(result.needs)}")
    for warning in result.warnings:
        typer.echo(f"warning: {warning}")


@app.command()
def demo(ctx: typer.Context) -> None:
    """Run twice against a built-in offline sandbox of the bundled APIs, then show status."""
    from apigetter.demo import run_demo

    shown = _call(ctx, run_demo)
    typer.echo(f"sandbox {shown.sandbox_url}, home {shown.home}\n")
    for title, report in zip(("run 1:", "run 2, 6.5 hours later:"), shown.runs, strict=True):
        typer.echo(title)
        _render_run(report)
        typer.echo("")
    typer.echo("status:")
    _render_status(shown.status)
    typer.echo(f"\n{len(shown.files)} files in {shown.home / 'data'}, for example:")
    for path in shown.files[:: max(1, len(shown.files) // 6)][:6]:
        typer.echo(f"  {path.relative_to(shown.home)}")
    raise typer.Exit(max(r.exit_code for r in shown.runs))


def main() -> None:
    """Console entry point."""
    app()
