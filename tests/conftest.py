"""Shared fixtures: kernel parametrization and the ../shared data location."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

import rulejet

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

# Small hypothesis profile locally, a larger one in CI (CI=true).
# The kernel fixture is deliberately shared by all examples of a test.
_shared_fixture = [HealthCheck.function_scoped_fixture]
settings.register_profile(
    "dev", max_examples=100, deadline=None, suppress_health_check=_shared_fixture
)
settings.register_profile(
    "ci",
    max_examples=400,
    deadline=None,
    suppress_health_check=[*_shared_fixture, HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

# Every ISA the project knows, so a CPU lacking one shows a skip, never a pass.
ALL_KERNELS = ["scalar", "sse2", "avx2"]


def ticks_while(fn: Callable[[], object], switch_interval: float) -> int:
    """How far a busy Python thread gets while fn runs. With a long switch
    interval that thread only runs while fn has released the GIL, so a
    result of 0 means fn held it throughout. switch_interval bounds how long
    each GIL reacquisition by fn may wait behind the busy thread."""
    ticks = 0
    started, done = threading.Event(), threading.Event()

    def ticker() -> None:
        nonlocal ticks
        started.set()
        while not done.is_set():
            ticks += 1

    old = sys.getswitchinterval()
    t = threading.Thread(target=ticker)
    t.start()
    started.wait()
    sys.setswitchinterval(switch_interval)
    try:
        before = ticks
        fn()
        return ticks - before
    finally:
        sys.setswitchinterval(old)
        done.set()
        t.join()


def require_shared(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: ../shared is only beside the repo in the workplace")
    return path


@pytest.fixture(params=ALL_KERNELS)
def kernel(request: pytest.FixtureRequest) -> Iterator[str]:
    """Force each kernel in turn; skip those this CPU or build lacks."""
    name: str = request.param
    if name not in rulejet.compiled_kernels():
        pytest.skip(f"kernel {name} is not compiled for this architecture")
    if name not in rulejet.available_kernels():
        pytest.skip(f"this CPU cannot run kernel {name}")
    with rulejet.use_kernel(name):
        assert rulejet.active_kernel() == name
        yield name
