"""The worked example in docs/contracts.md runs as printed: its contract and its test."""

from __future__ import annotations

import asyncio
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from apigetter.loader import load_file

DOC = Path(__file__).parent.parent / "docs" / "contracts.md"
# The pytest settings the doc tells authors to use.
AUTHOR_CONFIG = ("-o", "asyncio_mode=auto", "-o", "asyncio_default_fixture_loop_scope=function")


def code_blocks() -> dict[str, str]:
    """Python blocks of the doc whose first line names their file (``# name.py``)."""
    blocks = re.findall(r"```python\n# (\S+\.py)\n(.*?)```", DOC.read_text(), re.S)
    return dict(blocks)


def test_the_worked_example_passes_its_own_test(tmp_path: Path) -> None:
    blocks = code_blocks()
    assert set(blocks) == {"stepcounter.py", "test_stepcounter.py"}
    for name, code in blocks.items():
        (tmp_path / name).write_text(code)
    api = load_file(tmp_path / "stepcounter.py")
    assert api.name == "stepcounter" and api.warnings() == []
    check = subprocess.run(
        [sys.executable, "-m", "apigetter", "contracts", "check", str(tmp_path / "stepcounter.py")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0 and "ok: stepcounter, 2 endpoints" in check.stdout
    # The doc's test, run by pytest as an author would (its own process and rootdir).
    home = tmp_path / "home"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *AUTHOR_CONFIG, "."],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_the_example_test_fails_when_the_contract_loses_pages(tmp_path: Path) -> None:
    """The helper is not a rubber stamp: a contract that ignores next_cursor fails it."""
    blocks = code_blocks()
    broken = blocks["stepcounter.py"].replace('paginator=CursorPager("cursor", "next_cursor"),', "")
    assert broken != blocks["stepcounter.py"]
    (tmp_path / "stepcounter.py").write_text(broken)
    (tmp_path / "test_stepcounter.py").write_text(blocks["test_stepcounter.py"])
    spec = importlib.util.spec_from_file_location("doc_example", tmp_path / "test_stepcounter.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(AssertionError):
        asyncio.run(module.test_stepcounter(tmp_path / "home"))
