"""Which SIMD kernel set runs the byte-scanning loops.

The native module picks the best kernel the CPU and OS support at import;
``RULEJET_KERNEL=scalar|sse2|avx2`` forces one (an unknown or unsupported
name makes the import fail with KernelError). Every kernel returns exactly
what the scalar kernel returns.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from . import _native


def active_kernel() -> str:
    """Name of the kernel set in use."""
    return _native.active_kernel()


def available_kernels() -> list[str]:
    """Kernels this CPU can run, best first."""
    return _native.available_kernels()


def compiled_kernels() -> list[str]:
    """Kernels compiled into this build, best first (some may be unsupported here)."""
    return _native.compiled_kernels()


def set_kernel(name: str) -> None:
    """Force a kernel set for the whole process.

    Raises KernelError if the name is unknown or the CPU lacks it.
    """
    _native.set_kernel(name)


@contextmanager
def use_kernel(name: str) -> Iterator[str]:
    """Run a block with ``name`` forced, then restore the previous kernel.

    Not for concurrent use from several threads: the kernel is process-wide.
    Raises KernelError like set_kernel.
    """
    previous = active_kernel()
    set_kernel(name)
    try:
        yield name
    finally:
        set_kernel(previous)


def cpu_features() -> list[str]:
    """CPU features the native module detected (OS support included)."""
    return _native.cpu_features()
