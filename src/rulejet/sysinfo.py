"""Facts about this machine that decide which fast paths rulejet can take."""

from __future__ import annotations

import os
import platform
import tempfile
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from . import _native
from .errors import FileError


@dataclass(frozen=True)
class SystemInfo:
    version: str
    python: str
    machine: str
    kernel_release: str
    active_kernel: str
    available_kernels: list[str]
    compiled_kernels: list[str]
    cpu_features: list[str]
    page_size: int
    odirect_dir: str
    odirect: bool | str
    io_uring: bool | str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def package_version() -> str:
    try:
        return version("rulejet")
    except PackageNotFoundError:  # running from a source tree
        return "0+unknown"


def probe_odirect(directory: str | os.PathLike[str]) -> bool:
    """True if O_DIRECT writes work in ``directory`` (False on tmpfs and others
    that refuse it). Raises FileError if the directory is unusable."""
    return _native.probe_odirect(os.fspath(directory))


def probe_io_uring() -> bool:
    """True if this kernel lets the process create an io_uring instance."""
    return _native.probe_io_uring()


def _outcome(probe: Any, *args: Any) -> bool | str:
    try:
        return bool(probe(*args))
    except FileError as e:
        return f"error: {e}"


def system_info(odirect_dir: str | os.PathLike[str] | None = None) -> SystemInfo:
    """Collect version, kernel choice, page size and the O_DIRECT/io_uring probes."""
    directory = os.fspath(odirect_dir) if odirect_dir is not None else tempfile.gettempdir()
    return SystemInfo(
        version=package_version(),
        python=platform.python_version(),
        machine=platform.machine(),
        kernel_release=platform.release(),
        active_kernel=_native.active_kernel(),
        available_kernels=_native.available_kernels(),
        compiled_kernels=_native.compiled_kernels(),
        cpu_features=_native.cpu_features(),
        page_size=_native.page_size(),
        odirect_dir=directory,
        odirect=_outcome(probe_odirect, directory),
        io_uring=_outcome(probe_io_uring),
    )
