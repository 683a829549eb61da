"""Find, import and validate contracts: bundled, extra dirs, and installed entry points."""

from __future__ import annotations

import importlib.util
import sys
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from apigetter.config import bundled
from apigetter.contract import Api
from apigetter.errors import ContractError

ENTRY_POINT_GROUP = "apigetter.contracts"


@dataclass
class Loaded:
    """The valid contracts by name, and the ones that failed, with their reasons."""

    apis: dict[str, Api] = field(default_factory=dict)
    errors: list[ContractError] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # name -> file or entry point


def _validated(obj: Any, label: str, path: str) -> Api:
    """The ``Api`` a module or entry point provides, or a ContractError saying why not."""
    api = getattr(obj, "API", obj)
    if not isinstance(api, Api):
        raise ContractError(label, "defines no API = Api(...)", path)
    if problems := api.problems():
        raise ContractError(
            label if not isinstance(api.name, str) else api.name, "; ".join(problems), path
        )
    return api


def load_file(path: Path) -> Api:
    """Import one contract file and return its validated ``Api``."""
    label = path.stem
    spec = importlib.util.spec_from_file_location(f"apigetter_contract_{label}", path)
    if spec is None or spec.loader is None:
        raise ContractError(label, "is not an importable Python file", str(path))
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise ContractError(
            label, f"syntax error at line {exc.lineno}: {exc.msg}", str(path)
        ) from None
    except Exception as exc:  # a contract is user code: any failure is reported, not raised
        lines = [
            f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)
        ]
        where = f" at line {lines[-1]}" if lines else ""
        raise ContractError(
            label, f"failed to import{where}: {type(exc).__name__}: {exc}", str(path)
        ) from None
    finally:
        sys.modules.pop(spec.name, None)
    return _validated(module, label, str(path))


def _files(dirs: Iterable[Path]) -> Iterable[Path]:
    for directory in dirs:
        if directory.is_dir():
            yield from sorted(p for p in directory.glob("*.py") if not p.name.startswith("_"))
        elif directory.suffix == ".py":
            yield directory


def load_contracts(extra_dirs: Iterable[Path] = ()) -> Loaded:
    """Every contract; a later definition of a name (user dirs, entry points) wins."""
    loaded = Loaded()

    def keep(api: Api, source: str) -> None:
        loaded.apis[api.name] = api
        loaded.sources[api.name] = source
        loaded.errors = [e for e in loaded.errors if e.api != api.name]

    for path in _files([bundled("contracts"), *extra_dirs]):
        try:
            keep(load_file(path), str(path))
        except ContractError as exc:
            loaded.errors.append(exc)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            keep(_validated(ep.load(), ep.name, ep.value), f"entry point {ep.value}")
        except ContractError as exc:
            loaded.errors.append(exc)
        except Exception as exc:
            loaded.errors.append(ContractError(ep.name, f"entry point failed: {exc}", ep.value))
    return loaded
