"""Shared fixtures: kernel parametrization and the ../shared data location."""

from __future__ import annotations

import os
from collections.abc import Iterator
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
