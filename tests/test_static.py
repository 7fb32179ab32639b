"""Static checks that belong to the test suite: layout rules, ruff, mypy."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from .conftest import REPO

NATIVE = REPO / "src" / "rulejet" / "_native"


def test_core_and_kernels_do_not_include_python_headers() -> None:
    offenders = [
        str(path.relative_to(REPO))
        for sub in ("core", "kernels")
        for path in (NATIVE / sub).iterdir()
        if re.search(r'#\s*include\s*[<"]Python\.h', path.read_text())
    ]
    assert offenders == []


def test_native_sources_exist() -> None:
    # Guards the test above against passing on a moved tree.
    assert list((NATIVE / "core").glob("*.c")) and list((NATIVE / "kernels").glob("*.c"))


def _tool(name: str) -> list[str]:
    if shutil.which(name):
        return [name]
    pytest.skip(f"{name} is not installed (pip install '.[test]' brings it)")


def test_ruff_clean() -> None:
    out = subprocess.run([*_tool("ruff"), "check", str(REPO)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_ruff_format_clean() -> None:
    out = subprocess.run(
        [*_tool("ruff"), "format", "--check", str(REPO)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_clean() -> None:
    out = subprocess.run(
        [*_tool("mypy"), "--python-executable", sys.executable],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stdout + out.stderr
