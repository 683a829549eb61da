"""Run the benchmark scenarios (all, or --only S1,S3) and rewrite benchmarks/results.md."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from farmctl import lower_bound, start_farm
from harness import Proc, apigetter_env, child_env, make_home, measure

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
RESULTS = HERE / "results.md"
PY = sys.executable
NOWHERE = "http://127.0.0.1:9"  # the discard port: a request that should not happen fails
Result = dict[str, Any]


def farm_api(
    name: str, count: int, per: float, latency: float, pages: int, per_page: int
) -> Result:
    """One farm API of the spec format farm.py reads."""
    limit = {"count": count, "per": per} if count else None
    return {"name": name, "limit": limit, "latency": latency, "pages": pages, "per_page": per_page}


# 4 pages + 196 children + 1 snapshot = 201 requests per API at 20/s: 10.05 s by the bound.
S1_SPEC = {"apis": [farm_api(f"api{i}", 20, 1.0, 0.02, 4, 49) for i in range(50)]}
S2_SLICE = 3  # APIs the sequential client really fetches; a sum over identical APIs scales
S3_SPEC = {"apis": [farm_api("bulk", 0, 1.0, 0.0, 50, 99)]}  # 50 pages + 4,950 children
S3_CONCURRENCY = 8
S4_SPEC = {"apis": [farm_api(f"api{i}", 20, 1.0, 0.0, 1, 5) for i in range(10)]}
S6_SPEC = {"apis": [{**farm_api("big", 0, 1.0, 0.0, 1000, 100), "children": False}]}
# About 8 s of traffic at each declared rate, from a small per-second count to a 2 s window.
S7_SPEC = {
    "apis": [
        farm_api("five", 5, 1.0, 0.005, 1, 38),
        farm_api("twenty", 20, 1.0, 0.005, 2, 78),
        farm_api("hundred", 100, 1.0, 0.005, 8, 99),
        farm_api("window", 30, 2.0, 0.005, 2, 58),
    ]
}
REPEATS = 3  # per CPU figure; the median is reported
STARTS = 7  # per start-up figure


def fig(
    figure: str, value: float, unit: str, target: tuple[str, float] | None = None, digits: int = 2
) -> Result:
    """One table row; ``target`` is ("<=" or ">=", bound), in the row's unit."""
    row: Result = {"figure": figure, "value": value, "shown": f"{value:,.{digits}f}{unit}"}
    row["target"], row["met"] = "", None
    if target:
        op, bound = target
        row["target"] = f"{'≤' if op == '<=' else '≥'} {bound:g}{unit}"
        row["met"] = value <= bound if op == "<=" else value >= bound
    return row


def note(figure: str, text: str) -> Result:
    """A row whose value is text."""
    return {"figure": figure, "value": None, "shown": text, "target": "", "met": None}


def expected_requests(spec: Result) -> int:
    """Requests a complete fetch of ``spec`` takes: pages, children and the snapshot."""
    total = 0
    for api in spec["apis"]:
        children = api["pages"] * api["per_page"] if api.get("children", True) else 0
        total += api["pages"] + children + 1
    return total


def issue_bound(spec: Result) -> float:
    """The issue's bound: the slowest API's requests over its rate, plus its page chain."""
    worst = 0.0
    for api in spec["apis"]:
        lim = api["limit"]
        chain = (api["pages"] + 1) * api["latency"]
        requests = expected_requests({"apis": [api]})
        worst = max(worst, requests * lim["per"] / lim["count"] + chain)
    return worst


def window_use(report: Result) -> tuple[float, float]:
    """Of one API's traffic: the fullest window over the limit, and rate over declared rate."""
    lim = report["limit"]
    fullest = report["max_in_window"] / lim["count"]
    span = report["last"] - report["first"]
    return fullest, (report["requests"] - 1) / span / (lim["count"] / lim["per"])


def fetch(spec: Result, *, repeats: int = 1, **contract: Any) -> list[tuple[Proc, Result]]:
    """``apigetter run`` on one farm, ``repeats`` times from a fresh home: process, farm report."""
    done = []
    expected = expected_requests(spec) - (0 if contract.get("user", True) else len(spec["apis"]))
    with start_farm(spec) as farm:
        for _ in range(repeats):
            farm.reset()
            with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
                cmd = make_home(Path(tmp), spec, **contract)
                proc = measure([*cmd, "run", "-q"], apigetter_env(spec, farm.url))
            report = farm.report()
            proc.check("apigetter run")
            if (ok := sum(a["ok"] for a in report["apis"].values())) != expected:
                raise RuntimeError(f"apigetter fetched {ok} of {expected} responses")
            done.append((proc, report))
    return done


def s1(done: dict[str, Result]) -> Result:
    """Makespan of 50 rate-limited APIs against the bound."""
    [(proc, report)] = fetch(S1_SPEC)
    apis = report["apis"].values()
    bound = issue_bound(S1_SPEC)
    span = max(a["last"] for a in apis) - min(a["first"] for a in apis)
    refused, fullest = sum(a["429"] for a in apis), max(window_use(a)[0] for a in apis)
    return {
        "rows": [
            fig("makespan of `apigetter run`, 50 APIs x 201 requests at 20/s", proc.wall, " s"),
            fig("bound: max N_i / r_i + page chain", bound, " s"),
            fig("makespan / bound", proc.wall / bound, "x", ("<=", 1.05)),
            fig("first to last request, as the farm saw it", span, " s"),
            fig("CPU of the run", proc.cpu, " s"),
            note("429s / fullest window over its limit", f"{refused} / {fullest:.2f}"),
        ],
        "makespan_s": proc.wall,
        "cpu_s": proc.cpu,
        "rss_mb": proc.rss_mb,
        "bound_s": bound,
        "floor_s": lower_bound(S1_SPEC),
        "farm": report,
    }


def s2(done: dict[str, Result]) -> Result:
    """The replaced design's makespan: one API, one request at a time, paced to its limit."""
    apigetter = previous("S1", done)
    spec = {"apis": S1_SPEC["apis"][:S2_SLICE]}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp, start_farm(spec) as farm:
        path = Path(tmp) / "spec.json"
        path.write_text(json.dumps(spec))
        proc = measure([PY, str(HERE / "sequential.py"), farm.url, "--spec", str(path)])
        proc.check("sequential client")
    counts = json.loads(proc.out)
    scaled = proc.wall * len(S1_SPEC["apis"]) / S2_SLICE
    return {
        "rows": [
            fig(f"sequential client, {S2_SLICE} of the 50 S1 APIs (measured)", proc.wall, " s"),
            fig("sequential client, all 50 APIs (scaled x50/3)", scaled, " s", digits=0),
            fig("apigetter's speed-up (S1 makespan)", scaled / apigetter["makespan_s"], "x"),
        ],
        "measured_s": proc.wall,
        "scaled_s": scaled,
        "counts": counts,
        "notes": [
            f"S2 fetches {S2_SLICE} of the 50 identical S1 APIs and scales by 50/{S2_SLICE}: "
            "one API after another makes the makespan a sum over APIs, and all 50 would "
            "take over 8 minutes."
        ],
    }


def s3(done: dict[str, Result]) -> Result:
    """CPU per request against the bare aiohttp + orjson loop, same URLs and concurrency."""
    runs = fetch(S3_SPEC, repeats=REPEATS, max_in_flight=S3_CONCURRENCY, user=False)
    requests = expected_requests(S3_SPEC) - 1  # no snapshot: exactly the bare loop's URLs
    bare: list[Proc] = []
    with start_farm(S3_SPEC) as farm:
        cmd = [PY, str(HERE / "bare_loop.py"), farm.url, "--api", "bulk"]
        for _ in range(REPEATS):
            proc = measure([*cmd, "--concurrency", str(S3_CONCURRENCY)]).check("bare loop")
            bare.append(proc)
    ours = statistics.median(p.cpu for p, _ in runs) / requests * 1e6
    theirs = statistics.median(p.cpu for p in bare) / requests * 1e6
    return {
        "rows": [
            fig(f"apigetter CPU per request ({requests:,} requests)", ours, " µs", digits=0),
            fig("bare aiohttp + orjson loop CPU per request", theirs, " µs", digits=0),
            fig("apigetter / bare loop", ours / theirs, "x", ("<=", 1.5)),
            fig("apigetter wall", statistics.median(p.wall for p, _ in runs), " s"),
            fig("bare loop wall", statistics.median(p.wall for p in bare), " s"),
        ],
        "apigetter": [vars(p) | {"out": ""} for p, _ in runs],
        "bare": [vars(p) | {"out": ""} for p in bare],
        "notes": [
            "S3 counts each whole process (interpreter start included) by wait4; apigetter "
            "also writes its 4,955 files and store rows, the bare loop writes nothing."
        ],
    }


def s4(done: dict[str, Result]) -> Result:
    """Wall time of a cron tick with nothing due, and of `apigetter status`."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        cmd = make_home(Path(tmp), S4_SPEC)
        with start_farm(S4_SPEC) as farm:
            measure([*cmd, "run", "-q"], apigetter_env(S4_SPEC, farm.url)).check("first run")
        # The farm is gone: a run that found something due would fail, not pass quietly.
        env = apigetter_env(S4_SPEC, NOWHERE)
        runs = [measure([*cmd, "run", "-q"], env).check("idle run") for _ in range(STARTS)]
        status = [measure([*cmd, "status"], env).check("status") for _ in range(STARTS)]
    bare = [measure([PY, "-c", "pass"]) for _ in range(STARTS)]
    wall = {k: statistics.median(p.wall for p in v) for k, v in
            {"run": runs, "status": status, "python": bare}.items()}  # fmt: skip
    return {
        "rows": [
            fig("`apigetter run`, 10 APIs, nothing due", wall["run"], " s", ("<=", 0.2), 3),
            fig("`apigetter status`, 10 APIs", wall["status"], " s", ("<=", 0.2), 3),
            fig("`python -c pass`", wall["python"], " s", digits=3),
        ],
        "wall_s": wall,
        "rss_mb": {"run": runs[0].rss_mb, "status": status[0].rss_mb},
    }


async def plan_times(folder: Path) -> tuple[list[float], list[float], int]:
    """Fill a store with 1,000 APIs x 10 standard entries, half due; time reading and planning."""
    from apigetter.contract import Api, Endpoint
    from apigetter.plan import plan
    from apigetter.store import Entry, Store

    endpoints = tuple(Endpoint(f"ep{j}", f"ep{j}") for j in range(10))
    apis = {f"api{i:04}": Api(f"api{i:04}", NOWHERE, endpoints) for i in range(1000)}
    now = time.time()
    store = await Store.open(folder / "apigetter.db")
    try:
        await store.start_history(  # a plain INSERT of queue rows, whatever their kind
            [
                Entry(name, ep.name, "standard", now + (3600 if (i + j) % 2 else -60))
                for i, name in enumerate(apis)
                for j, ep in enumerate(endpoints)
            ]
        )
        names = sorted(apis)
        reads, plans = [], []
        for _ in range(STARTS):
            start = time.perf_counter()
            entries, states = await store.entries(names), await store.states(names)
            reads.append(time.perf_counter() - start)
            start = time.perf_counter()
            made = plan(apis, entries, states, now)
            plans.append(time.perf_counter() - start)
    finally:
        await store.close()
    return reads, plans, len(made.due)


def s5(done: dict[str, Result]) -> Result:
    """Plan time for 1,000 APIs x 10 endpoints in a real store."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        reads, plans, due = asyncio.run(plan_times(Path(tmp)))
    if due != 5000:
        raise RuntimeError(f"plan found {due} of 5,000 due entries")
    read, planned = statistics.median(reads) * 1e3, statistics.median(plans) * 1e3
    return {
        "rows": [
            fig("`plan()` over 10,000 queue rows (5,000 due)", planned, " ms", ("<=", 50), 1),
            fig("reading those rows from the store", read, " ms", digits=1),
        ],
        "plan_ms": planned,
        "read_ms": read,
    }


def s6(done: dict[str, Result]) -> Result:
    """Peak RSS while fetching 100,000 items over 1,000 pages."""
    [(proc, report)] = fetch(S6_SPEC)
    return {
        "rows": [
            fig("peak RSS, 100,000 items over 1,000 pages", proc.rss_mb, " MB", ("<=", 150), 0),
            fig("wall of that run", proc.wall, " s"),
        ],
        "rss_mb": proc.rss_mb,
        "wall_s": proc.wall,
        "farm": report,
    }


def s7(done: dict[str, Result]) -> Result:
    """Fullest window against the declared limit, and achieved against allowed rate."""
    [(_, report)] = fetch(S7_SPEC)
    rows = []
    for api in S7_SPEC["apis"]:
        seen = report["apis"][api["name"]]
        fullest, rate = window_use(seen)
        shape = f"{api['limit']['count']} per {api['limit']['per']:g} s"
        rows.append(fig(f"{shape}: fullest window / limit", fullest, "", ("<=", 1.0)))
        rows.append(fig(f"{shape}: achieved / allowed rate", rate * 100, "%", (">=", 95), 1))
    rows.append(fig("429s", sum(a["429"] for a in report["apis"].values()), "", digits=0))
    return {
        "rows": rows,
        "farm": report,
        "notes": [
            "S7's achieved rate is (requests - 1) / (last - first arrival) at the farm; "
            "the fullest window is the most arrivals in any (t - per, t]."
        ],
    }


def s8(done: dict[str, Result]) -> Result:
    """The S1 farm fetched by dlt's rest_api source, against apigetter's S1 figures."""
    if importlib.util.find_spec("dlt") is None:
        hint = "not run: dlt is not installed (pip install -e '.[bench-peers]')"
        return {"rows": [note("dlt rest_api on the S1 farm", hint)]}
    apigetter = previous("S1", done)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp, start_farm(S1_SPEC) as farm:
        path = Path(tmp) / "spec.json"
        path.write_text(json.dumps(S1_SPEC))
        env = child_env(
            RUNTIME__DLTHUB_TELEMETRY="false",  # nothing may leave the loopback
            DLT_DATA_DIR=str(Path(tmp) / "dlt-home"),
            NO_PROXY="127.0.0.1,localhost",
        )
        cmd = [PY, str(HERE / "dlt_peer.py"), farm.url, "--spec", str(path), "--dest", tmp]
        proc = measure(cmd, env, cwd=Path(tmp)).check("dlt")
        report = farm.report()
    steps = json.loads(proc.out.strip().splitlines()[-1])
    apis = report["apis"].values()
    refused, fullest = sum(a["429"] for a in apis), max(window_use(a)[0] for a in apis)
    split = ", ".join(f"{k.removesuffix('_s')} {v:.1f} s" for k, v in steps.items())
    return {
        "rows": [
            fig("dlt makespan (extract, normalize, load to JSONL files)", proc.wall, " s"),
            note("dlt steps", split),
            fig("dlt CPU", proc.cpu, " s"),
            fig("apigetter / dlt makespan", apigetter["makespan_s"] / proc.wall, "x"),
            fig("apigetter / dlt CPU", apigetter["cpu_s"] / proc.cpu, "x"),
            note("dlt 429s / fullest window over its limit", f"{refused} / {fullest:.2f}"),
            fig("dlt peak RSS", proc.rss_mb, " MB", digits=0),
        ],
        "wall_s": proc.wall,
        "cpu_s": proc.cpu,
        "steps": steps,
        "farm": report,
        "notes": [
            "S8 runs dlt as its docs suggest for concurrency: one source with every API's "
            "resources, parallelized; dlt has no declared-limit pacing, so it relies on 429 "
            "and Retry-After."
        ],
    }


SCENARIOS: dict[str, tuple[str, Callable[[dict[str, Result]], Result]]] = {
    "S1": ("makespan", s1),
    "S2": ("sequential baseline", s2),
    "S3": ("overhead", s3),
    "S4": ("start-up", s4),
    "S5": ("planning", s5),
    "S6": ("memory", s6),
    "S7": ("limit accuracy", s7),
    "S8": ("peer: dlt", s8),
}


def previous(name: str, done: dict[str, Result]) -> Result:
    """A scenario's result from this invocation, else from benchmarks/out/."""
    if name in done:
        return done[name]
    path = OUT / f"{name}.json"
    if not path.exists():
        raise SystemExit(f"this scenario compares with {name}: run --only {name},... first")
    result: Result = json.loads(path.read_text())
    return result


def machine() -> str:
    """Cores, CPU, Python and the temp dir's file system, which dominates file creation."""
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    models = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    cpu = models[0] if models else platform.processor() or "unknown CPU"
    tmp = Path(tempfile.gettempdir()).resolve()
    mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    fs = max((m for m in mounts if tmp.is_relative_to(m[1])), key=lambda m: len(m[1]))[2]
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), "
        f"Python {platform.python_version()}, temp dir {tmp} on {fs}"
    )


def write_results(command: str, total: float, load: str) -> None:
    """Rewrite results.md from every scenario result in benchmarks/out/."""
    results = {p.stem: json.loads(p.read_text()) for p in sorted(OUT.glob("S*.json"))}
    now = datetime.now(UTC)
    lines = [
        "# Benchmark results",
        "",
        f"Generated {now:%Y-%m-%d %H:%M} UTC by `{command}` in {total:.0f} s, on {machine()}; "
        f"load average {load} (other processes on the machine share its cores).",
        "See benchmarks/README.md for what each scenario measures. Benchmarks assert no "
        "times: a target is to be measured against.",
        "",
        "| scenario | figure | value | target | met? |",
        "|---|---|---|---|---|",
    ]
    notes = []
    for name, (title, _) in SCENARIOS.items():
        if name not in results:
            continue
        result = results[name]
        for row in result["rows"]:
            met = {True: "yes", False: "**no**", None: ""}[row["met"]]
            cells = [f"{name} {title}", row["figure"], row["shown"], row["target"], met]
            lines.append("| " + " | ".join(cells) + " |")
        notes += result.get("notes", [])
        when = datetime.fromisoformat(result["measured_at"])
        if (now - when).total_seconds() > total + 60:
            notes.append(f"{name} comes from an earlier invocation ({when:%Y-%m-%d %H:%M} UTC).")
    lines += ["", *(f"- {n}" for n in notes)]
    RESULTS.write_text("\n".join(lines) + "\n")


def main() -> None:
    """Run the chosen scenarios in order, saving each as it finishes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", help="comma-separated scenarios, e.g. S1,S3")
    args = parser.parse_args()
    chosen = args.only.upper().split(",") if args.only else list(SCENARIOS)
    if unknown := set(chosen) - set(SCENARIOS):
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    OUT.mkdir(exist_ok=True)
    load = f"{os.getloadavg()[0]:.1f}"
    started = time.perf_counter()
    done: dict[str, Result] = {}
    for name in SCENARIOS:
        if name not in chosen:
            continue
        title, scenario = SCENARIOS[name]
        began = time.perf_counter()
        result = scenario(done)
        result["seconds"] = time.perf_counter() - began
        result["measured_at"] = datetime.now(UTC).isoformat()
        done[name] = result
        (OUT / f"{name}.json").write_text(json.dumps(result, indent=1, ensure_ascii=False))
        print(f"{name} {title} ({result['seconds']:.0f} s)")
        for row in result["rows"]:
            print(f"    {row['figure']}: {row['shown']}  {row['target']}")
    command = "make bench" if not args.only else f"python benchmarks/run.py --only {args.only}"
    load += f" at the start, {os.getloadavg()[0]:.1f} at the end"
    write_results(command, time.perf_counter() - started, load)


if __name__ == "__main__":
    main()
