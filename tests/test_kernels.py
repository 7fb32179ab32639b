"""Runtime dispatch: detection, forcing by name and by RULEJET_KERNEL."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import rulejet


def test_scalar_always_available() -> None:
    assert "scalar" in rulejet.available_kernels()
    assert rulejet.available_kernels()[-1] == "scalar"


def test_default_is_best_available() -> None:
    out = _run_python("import rulejet; print(rulejet.active_kernel())", kernel=None)
    assert out.stdout.strip() == rulejet.available_kernels()[0]


def test_available_follow_cpu_features() -> None:
    feats = rulejet.cpu_features()
    avail = rulejet.available_kernels()
    assert ("avx2" in avail) == ("avx2" in feats)
    if "sse2" in rulejet.compiled_kernels():
        assert ("sse2" in avail) == ("sse2" in feats)


def test_set_kernel_unknown_raises() -> None:
    before = rulejet.active_kernel()
    with pytest.raises(rulejet.KernelError, match="unknown kernel 'avx512'"):
        rulejet.set_kernel("avx512")
    assert rulejet.active_kernel() == before
    with pytest.raises(ValueError):  # KernelError is a ValueError
        rulejet.set_kernel("")


def test_use_kernel_restores(kernel: str) -> None:
    with rulejet.use_kernel("scalar"):
        assert rulejet.active_kernel() == "scalar"
    assert rulejet.active_kernel() == kernel


def _run_python(code: str, kernel: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RULEJET_KERNEL"}
    if kernel is not None:
        env["RULEJET_KERNEL"] = kernel
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("name", ["scalar", "sse2", "avx2"])
def test_env_forces_kernel(name: str) -> None:
    out = _run_python("import rulejet; print(rulejet.active_kernel())", kernel=name)
    if name in rulejet.available_kernels():
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == name
    else:
        assert out.returncode != 0
        assert "not supported by this CPU" in out.stderr or "unknown kernel" in out.stderr


def test_env_unknown_kernel_fails_import_clearly() -> None:
    out = _run_python("import rulejet", kernel="avx512")
    assert out.returncode != 0
    assert "KernelError" in out.stderr
    assert "RULEJET_KERNEL=avx512" in out.stderr
    assert "Segmentation" not in out.stderr


def test_native_line_starts_rejects_bad_kernel_name() -> None:
    from rulejet import _native

    with pytest.raises(rulejet.KernelError):
        _native.line_starts(b"a\nb", kernel="nope")
