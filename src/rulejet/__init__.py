"""rulejet: a fast, trustworthy rule engine for JSON events, with a C core."""

from .errors import (
    BusyError,
    ClosedError,
    CloseTimeoutError,
    FileError,
    InputError,
    JSONError,
    KernelError,
    PathError,
    RulejetError,
)
from .kernels import (
    active_kernel,
    available_kernels,
    compiled_kernels,
    cpu_features,
    set_kernel,
    use_kernel,
)
from .lines import iter_line_offsets, line_offsets
from .mapped import MappedFile
from .paths import (
    MISSING,
    ExtractResult,
    LineError,
    Missing,
    Path,
    PathSet,
    RawJSON,
    ScanSummary,
    validate,
)
from .sysinfo import package_version, system_info

__version__ = package_version()

__all__ = [
    "MISSING",
    "BusyError",
    "CloseTimeoutError",
    "ClosedError",
    "ExtractResult",
    "FileError",
    "InputError",
    "JSONError",
    "KernelError",
    "LineError",
    "MappedFile",
    "Missing",
    "Path",
    "PathError",
    "PathSet",
    "RawJSON",
    "RulejetError",
    "ScanSummary",
    "__version__",
    "active_kernel",
    "available_kernels",
    "compiled_kernels",
    "cpu_features",
    "iter_line_offsets",
    "line_offsets",
    "set_kernel",
    "system_info",
    "use_kernel",
    "validate",
]
