"""Exception classes shared by the Python layer and the native module.

Every rulejet exception derives from RulejetError. Bad input also derives
from ValueError and carries where it went wrong; I/O failures derive from
OSError with errno and the path. The native module imports this file at
init, so it must not import anything else from rulejet.
"""

from __future__ import annotations


class RulejetError(Exception):
    """Base class of every exception rulejet raises."""


class InputError(RulejetError, ValueError):
    """Malformed input; ``offset`` is the byte offset of the problem (or None),
    ``line`` and ``column`` are 1-based when known."""

    def __init__(
        self,
        message: str,
        *,
        offset: int | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message)
        self.offset = offset
        self.line = line
        self.column = column

    def __str__(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.column is not None:
            where.append(f"column {self.column}")
        if self.offset is not None:
            where.append(f"byte offset {self.offset}")
        base = super().__str__()
        return f"{base} ({', '.join(where)})" if where else base


class FileError(RulejetError, OSError):
    """An operating-system call failed; ``errno`` and ``filename`` are set."""


class ClosedError(RulejetError, ValueError):
    """The object (a memory map, a pool, a log) is closed or closing."""


class BusyError(RulejetError, BufferError):
    """The operation would free memory that a live buffer view still uses."""


class KernelError(RulejetError, ValueError):
    """An unknown kernel name, or one this CPU cannot run."""


class CloseTimeoutError(RulejetError, TimeoutError):
    """close(timeout=...) ran out of time waiting for readers; nothing changed."""


class JSONError(InputError):
    """Malformed JSON; ``offset`` is the byte offset, ``line``/``column`` 1-based."""


class PathError(InputError):
    """A path expression that does not parse; ``column`` is 1-based."""


class RingError(RulejetError, ValueError):
    """A shared-memory ring file that is not a sound ring: bad magic,
    version, sizes or header checksum."""


class LogCorruptionError(RulejetError, ValueError):
    """A durable log holds bytes that are not the record expected there.
    ``segment`` is the segment file and ``offset`` the byte offset (both
    None when unknown)."""

    def __init__(self, message: str, segment: str | None = None, offset: int | None = None) -> None:
        super().__init__(message)
        self.segment = segment
        self.offset = offset

    def __str__(self) -> str:
        base = super().__str__()
        if self.segment is None:
            return base
        return f"{base} ({self.segment}, byte offset {self.offset})"
