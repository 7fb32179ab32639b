"""The rulejet command line, run as a real subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def rulejet(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("rulejet")
    cmd = [exe] if exe else [sys.executable, "-m", "rulejet.cli"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120)


def test_info_text(tmp_path: Path) -> None:
    out = rulejet("info", "--dir", str(tmp_path))
    assert out.returncode == 0, out.stderr
    for key in ("rulejet", "kernel (active)", "kernels available", "page size", "io_uring"):
        assert key in out.stdout
    assert f"O_DIRECT in {tmp_path}" in out.stdout


def test_info_json() -> None:
    out = rulejet("info", "--format", "json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["active_kernel"] in info["available_kernels"]
    assert info["page_size"] > 0
    assert isinstance(info["odirect"], (bool, str))
    assert isinstance(info["io_uring"], (bool, str))


def test_info_missing_dir_reports_error(tmp_path: Path) -> None:
    out = rulejet("info", "--dir", str(tmp_path / "missing"), "--format", "json")
    assert out.returncode == 0
    assert json.loads(out.stdout)["odirect"].startswith("error:")


def test_lines_counts(tmp_path: Path) -> None:
    path = tmp_path / "x.ndjson"
    path.write_bytes(b"{}\n" * 12345 + b"{}")
    out = rulejet("lines", str(path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "12346"


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_lines_bad_path(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "missing" if kind == "missing" else tmp_path
    out = rulejet("lines", str(target))
    assert out.returncode == 1
    assert out.stderr.startswith("rulejet: error:")
    assert str(target) in out.stderr
    assert "Traceback" not in out.stderr
