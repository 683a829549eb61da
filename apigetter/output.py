"""Archive files: day / snapshot / entity JSON, staged then moved into place atomically.

A file is first written to ``<data>/.staging/``; the store commit that advances the queue
records its final path; only then is it renamed into place. A crash between the two is
rolled forward by the next run (``place``), so no file is half-written, lost or doubled.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from apigetter.contract import day_of, dig
from apigetter.errors import OutputError
from apigetter.store import FileRow, Latest

UNDATED = "undated"  # items whose day key is missing or unreadable: kept, never dropped
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_RESERVED = re.compile(r"^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$", re.IGNORECASE)
MAX_NAME = 100


def safe_name(text: str) -> str:
    """A file name from API data: no separators, dots-only, NULs, reserved names or excess."""
    name = _UNSAFE.sub("_", text).lstrip(".") or "_"
    if _RESERVED.match(name):
        name = f"_{name}"
    if len(name) > MAX_NAME:
        digest = hashlib.blake2b(text.encode(), digest_size=6).hexdigest()
        name = f"{name[: MAX_NAME - 13]}-{digest}"
    return name


@functools.cache
def _folder_of(api: str, endpoint: str) -> str:
    """``<api>/<endpoint>``, sanitised (a handful per run, asked for once per file)."""
    return f"{safe_name(api)}/{safe_name(endpoint)}"


@dataclass(frozen=True)
class Output:
    """One file to archive: its dedupe key, where it goes, and its bytes."""

    endpoint: str  # the endpoint or child name that owns the key
    key: str
    folder: str  # relative to the data dir
    name: str
    content: bytes

    @property
    def hash(self) -> str:
        """Content hash for dedupe."""
        return hashlib.blake2b(self.content, digest_size=16).hexdigest()


def day_outputs(
    api: str,
    endpoint: str,
    items: list[Any],
    day_key: str,
    tz: ZoneInfo,
    stamp: str,
    id_key: str | None = None,
    stored: Callable[[str], list[Any]] = lambda day: [],
) -> list[Output]:
    """One file per day of the items' ``day_key`` field, in the user's time zone.

    With ``id_key``, a day file is the union of the day's stored items and the new ones
    (new versions win), newest first: a fetch that covers part of a day never shrinks it.
    """
    days: dict[str, list[Any]] = defaultdict(list)
    for item in items:
        when = day_of(dig(item, day_key), tz)
        days[when.isoformat() if when else UNDATED].append(item)
    if id_key:
        for key, rows in days.items():
            merged = {str(dig(row, id_key)): row for row in stored(key)}
            merged.update((str(dig(row, id_key)), row) for row in rows)
            days[key] = sorted(
                merged.values(),
                key=lambda row: (str(dig(row, day_key)), str(dig(row, id_key))),
                reverse=True,
            )
    folder = _folder_of(api, endpoint)
    return [
        Output(endpoint, day, folder, f"{day}--run-{stamp}.json", orjson.dumps(rows))
        for day, rows in sorted(days.items())
    ]


def snapshot_output(api: str, endpoint: str, data: Any, stamp: str) -> Output:
    """The whole response as one ``<stamp>.json``."""
    folder = _folder_of(api, endpoint)
    return Output(endpoint, "", folder, f"{stamp}.json", orjson.dumps(data))


def entity_output(api: str, child: str, entity: str, data: Any, stamp: str) -> Output:
    """A child response as ``<entity-id>--run-<stamp>.json``."""
    folder = _folder_of(api, child)
    return Output(
        child, entity, folder, f"{safe_name(entity)}--run-{stamp}.json", orjson.dumps(data)
    )


class Archive:
    """The data dir: stage files, move committed ones into place, clear leftovers."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir.resolve()
        self.staging = self.root / ".staging"
        self._ready: set[str] = set()  # folders known to exist inside the root this run

    def _folder(self, folder: str) -> Path:
        """``root/folder``, created, and checked once per run to stay inside the root."""
        path = self.root / folder
        if folder not in self._ready:
            if not path.resolve().is_relative_to(self.root):
                raise OutputError("path escapes the data dir", str(path))
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._ready.add(folder)
        return path

    def stage_one(self, run_id: int, out: Output, latest: Latest) -> FileRow | None:
        """Write ``out`` to staging unless it equals the latest file of its key."""
        digest = out.hash
        if latest.get((out.endpoint, out.key), ("",))[0] == digest:
            return None
        temp = f"{run_id}-{os.urandom(6).hex()}.json"
        try:
            self._folder(".staging")
            final = self._final(out)
            fd = os.open(self.staging / temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(out.content)
            except OSError:
                (self.staging / temp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise OutputError(exc.strerror or str(exc), str(exc.filename or self.root)) from exc
        return FileRow(out.endpoint, out.key, digest, final, temp)

    def stage(self, run_id: int, outputs: Iterable[Output], latest: Latest) -> list[FileRow]:
        """Stage every changed output; on a failure, none of them."""
        rows: list[FileRow] = []
        try:
            for out in outputs:
                if row := self.stage_one(run_id, out, latest):
                    rows.append(row)
        except OutputError:
            self.discard(row.staged for row in rows)
            raise
        return rows

    def _final(self, out: Output) -> str:
        """A free path for ``out`` inside the data dir (a second run in the same second
        gets ``-2``; nothing is ever overwritten)."""
        folder = self._folder(out.folder)
        stem, suffix = out.name.rsplit(".", 1)
        name, n = out.name, 1
        while (folder / name).exists():
            n += 1
            name = f"{stem}-{n}.{suffix}"
        return f"{out.folder}/{name}"

    def read_list(self, path: str) -> list[Any]:
        """The items of an archived day file (empty if it is gone or not a list)."""
        try:
            data = orjson.loads((self.root / path).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return []
        return data if isinstance(data, list) else []

    def place(self, moves: Iterable[tuple[str | None, str]]) -> list[str]:
        """Rename staged files to their final paths; returns the staged names handled."""
        done = []
        for temp, final in moves:
            if temp is None:
                continue
            folder, name = final.rsplit("/", 1)
            target = self._folder(folder) / name
            try:
                os.rename(self.staging / temp, target)
            except FileNotFoundError:
                if not target.exists():
                    raise
            done.append(temp)
        return done

    def discard(self, names: Iterable[str | None]) -> None:
        """Remove staged files that will never be committed."""
        for name in names:
            if name:
                (self.staging / name).unlink(missing_ok=True)

    def clear_orphans(self, active_runs: set[int], keep: set[str]) -> None:
        """Remove staged files of runs that ended without committing them."""
        if not self.staging.is_dir():
            return
        for path in self.staging.iterdir():
            run = path.name.split("-", 1)[0]
            if path.name not in keep and (not run.isdigit() or int(run) not in active_runs):
                path.unlink(missing_ok=True)
