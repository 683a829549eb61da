"""Security defaults: TLS is verified, files are private, nothing from data reaches a shell."""

from __future__ import annotations

import ast
import ssl
import stat
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Setup
from tests.servers import Farm, running

PACKAGE = Path(__file__).parent.parent / "apigetter"


def test_tls_is_always_verified(setup: Setup, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        capture_output=True,
        check=True,
    )
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    with running(tls) as farm:
        setup.add_farm_api("alpha", farm)
        result = setup.cli("run")
    assert result.returncode == 1
    assert "certificate verify failed" in result.stderr
    assert not farm.hits  # nothing, not even the token, went over the unverified channel


def test_store_and_archive_files_are_private(setup: Setup, farm: Farm) -> None:
    setup.add_farm_api("alpha", farm)
    assert setup.cli("run").returncode == 0
    assert stat.S_IMODE((setup.home / "apigetter.db").stat().st_mode) == 0o600
    for path in setup.files():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


@pytest.mark.parametrize("module", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_no_shell_eval_or_exec(module: Path) -> None:
    """Config, contract and API values never reach a shell or an evaluator. Contracts are
    imported as modules (loader.py), which is what the user asked for, nothing more."""
    tree = ast.parse(module.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = {a.name for a in node.names} | {getattr(node, "module", None) or ""}
            assert not names & {"subprocess", "pickle", "marshal", "shelve"}, module
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                assert func.id not in ("eval", "exec", "compile", "__import__"), node.lineno
            elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                call = f"{func.value.id}.{func.attr}"
                assert not call.startswith(
                    ("os.system", "os.popen", "os.exec", "os.spawn", "asyncio.create_subprocess")
                ), node.lineno
