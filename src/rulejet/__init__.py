"""rulejet: a fast, trustworthy rule engine for JSON events, with a C core."""

from .arena import Arena, ArenaBuffer
from .errors import (
    BusyError,
    ClosedError,
    CloseTimeoutError,
    FileError,
    InputError,
    JSONError,
    KernelError,
    LogCorruptionError,
    PathError,
    RingError,
    RulejetError,
)
from .expr import ExprError, parse_expr
from .jsonlogic import JSONLogicError, from_jsonlogic
from .kernels import (
    active_kernel,
    available_kernels,
    compiled_kernels,
    cpu_features,
    set_kernel,
    use_kernel,
)
from .lines import iter_line_offsets, line_offsets
from .log import Log, ReadReport
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
from .pools import BufferPool, FramePool
from .ring import Ring
from .rulefile import RuleFileError, load_rule_file
from .rules import Engine, Explanation, Rule
from .runner import RunStats
from .sysinfo import package_version, system_info

__version__ = package_version()

__all__ = [
    "MISSING",
    "Arena",
    "ArenaBuffer",
    "BufferPool",
    "BusyError",
    "CloseTimeoutError",
    "ClosedError",
    "Engine",
    "Explanation",
    "ExprError",
    "ExtractResult",
    "FileError",
    "FramePool",
    "InputError",
    "JSONError",
    "JSONLogicError",
    "KernelError",
    "LineError",
    "Log",
    "LogCorruptionError",
    "MappedFile",
    "Missing",
    "Path",
    "PathError",
    "PathSet",
    "RawJSON",
    "ReadReport",
    "Ring",
    "RingError",
    "Rule",
    "RuleFileError",
    "RulejetError",
    "RunStats",
    "ScanSummary",
    "__version__",
    "active_kernel",
    "available_kernels",
    "compiled_kernels",
    "cpu_features",
    "from_jsonlogic",
    "iter_line_offsets",
    "line_offsets",
    "load_rule_file",
    "parse_expr",
    "set_kernel",
    "system_info",
    "use_kernel",
    "validate",
]
