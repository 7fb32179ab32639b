"""Runs the Python-free native tests (core + every kernel) under ASan/UBSan."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from .conftest import REPO


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is needed to build native tests")
def test_native_suite_under_sanitizers() -> None:
    out = subprocess.run(
        ["bash", str(REPO / "scripts" / "native-tests.sh"), "sanitize"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert " 0 failed" in out.stdout
