"""Where routed lines go: files, stdout or durable logs.

Every sink a rule routes to is opened before any event is read. Opened
after the run, a sink that cannot be (no permission, a file where its
directory should be, a log another writer holds) failed the run once the
Python actions had run and other sinks had been written.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from array import array
from collections.abc import Collection, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from . import _native

if TYPE_CHECKING:
    from types import TracebackType

    from .log import Log
    from .rules import Engine

LOG_BATCH = 4096  # routed lines appended to a log per call


def routes(
    engine: Engine, fired: Collection[int] | None = None
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(route name, its sink's spec, {} if undeclared) for every route
    action, or for those of the rules at the positions in fired."""
    for pos, rule in enumerate(engine.rules):
        if fired is not None and pos not in fired:
            continue
        for act in rule.actions:
            if isinstance(act, dict) and "route" in act:
                yield act["route"], engine.sinks.get(act["route"]) or {}


def routes_to_stdout(engine: Engine) -> bool:
    """Whether some rule routes lines to a stdout sink."""
    return any(spec.get("stdout") for _, spec in routes(engine))


def check_routes(
    engine: Engine, out_dir: str | os.PathLike[str] | None, held: str | None = None
) -> None:
    """ValueError for a rule set whose routes Sinks would refuse (a route
    with nowhere to go, one path as a file and a log, one log with two sync
    settings) or that route to the log held open at held, without opening
    anything: for rulejet serve, which opens sinks per request, after the
    durable append."""
    logs = _shared_logs({name: _target(name, spec, out_dir) for name, spec in routes(engine)})
    for name, real in logs.items():
        if held is not None and real == os.path.realpath(held):
            raise ValueError(f"route {name!r} writes to the server's own log ({held})")


def make_parents(path: str) -> None:
    """Create the missing directories above path, each made durable in its
    parent (a crash could otherwise lose a new directory and what a log in
    it had flushed)."""
    parent = os.path.dirname(os.path.abspath(path))
    missing = []
    while not os.path.isdir(parent):
        missing.append(parent)
        up = os.path.dirname(parent)
        if up == parent:
            break
        parent = up
    for d in reversed(missing):
        try:
            os.mkdir(d)
        except FileExistsError:
            if not os.path.isdir(d):
                raise
            continue  # made by someone else meanwhile
        try:
            fd = os.open(os.path.dirname(d), os.O_RDONLY | os.O_DIRECTORY)
        except PermissionError:
            continue  # a parent we may write but not read (-wx) cannot be fsynced
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class Sinks:
    """The open sinks of one run, by route name (routed: the pairs routes()
    gives); a context manager that closes them. Every route is resolved
    first (ValueError for one with nowhere to go, or for two sinks naming
    one log with different sync settings), then every log opened, then
    every file: OSError, or BusyError for a log another writer holds,
    closes what was opened and removes the files this call created that
    are still empty (another run appending to the same file may have
    opened it meanwhile: its lines are never thrown away). Logs come first
    because a busy log is the likeliest failure, and failing before any
    file is created leaves nothing to remove. A run that fails later (a
    malformed line under strict, a failed write) keeps its sink files."""

    def __init__(
        self,
        routed: Iterator[tuple[str, Mapping[str, Any]]],
        out_dir: str | os.PathLike[str] | None,
    ) -> None:
        self._fds: dict[str, tuple[int, bool]] = {}  # name: (fd, ours to close)
        self._logs: dict[str, Log] = {}
        targets = {name: _target(name, spec, out_dir) for name, spec in routed}
        logs = _shared_logs(targets)
        created: list[tuple[str, int]] = []
        try:
            # Every missing directory first: a path that cannot have one (a
            # file where it should be, no permission) fails before a new log
            # is created (a log cannot be removed: another run may open it
            # as soon as this one closes it).
            for kind, path, _spec in targets.values():
                if kind != "stdout":
                    make_parents(path)
            by_dir: dict[str, Log] = {}
            for name, real in logs.items():
                if real not in by_dir:
                    from .log import Log

                    kind, path, spec = targets[name]
                    by_dir[real] = Log.open(path, spec.get("sync", "group"))
                self._logs[name] = by_dir[real]  # one writer per log
            for name, (kind, path, _spec) in targets.items():
                if kind == "stdout":
                    self._fds[name] = sys.stdout.fileno(), False
                elif kind == "path":
                    fd, made = _open_shared(path)
                    self._fds[name] = fd, True
                    if made:
                        created.append((path, fd))
        except BaseException:
            for path, fd in created:  # before close: our shared locks still held
                _remove_if_unshared(path, fd)
            with contextlib.suppress(Exception):  # the first error is the one to report
                self.close()
            raise

    def write(self, name: str, view: memoryview, spans: array[int]) -> int:
        """Write the lines at spans ((offset, length) pairs into view) to
        the route's sink: vectored writes straight from view to a file or
        stdout, appends to a log (without the newline) that return once the
        lines are on stable storage. Returns the number of lines."""
        log = self._logs.get(name)
        if log is None:
            fd, ours = self._fds[name]
            if not ours:  # stdout: Python's buffered output goes first
                sys.stdout.flush()
            _native.write_lines(fd, view, spans.tobytes())
            return len(spans) // 2
        batch = []
        for k in range(0, len(spans), 2):
            batch.append(view[spans[k] : spans[k] + spans[k + 1]])
            if len(batch) == LOG_BATCH:
                log.append_many(batch)
                batch.clear()
        log.append_many(batch)
        log.flush()
        return len(spans) // 2

    def close(self) -> None:
        for fd, ours in self._fds.values():
            if ours:
                os.close(fd)
        self._fds.clear()
        errors = []
        for log in {id(log): log for log in self._logs.values()}.values():
            try:
                log.close()
            except Exception as e:  # close every log before reporting
                errors.append(e)
        self._logs.clear()
        if errors:
            raise errors[0]

    def __enter__(self) -> Sinks:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _target(
    name: str, spec: Mapping[str, Any], out_dir: str | os.PathLike[str] | None
) -> tuple[str, str, Mapping[str, Any]]:
    """("stdout" | "log" | "path", the path, spec) for a route."""
    if spec.get("stdout"):
        try:
            sys.stdout.fileno()
        except (AttributeError, OSError, ValueError):  # UnsupportedOperation too
            raise ValueError(
                f"route {name!r} goes to stdout, which has no file"
                " descriptor here (redirected to a Python object?)"
            ) from None
        return "stdout", "", spec
    kind = "log" if "log" in spec else "path"
    if kind in spec:
        return kind, os.path.join(out_dir, spec[kind]) if out_dir else os.fspath(spec[kind]), spec
    if out_dir is not None:
        return "path", os.path.join(out_dir, f"{name}.ndjson"), spec
    raise ValueError(f"route {name!r} has no sink: declare it under sinks: or pass --out DIR")


def _shared_logs(targets: Mapping[str, tuple[str, str, Mapping[str, Any]]]) -> dict[str, str]:
    """Route name: its log directory's real path (symlinks resolved, so
    two spellings of one log share its writer instead of one finding it
    busy). Sinks naming one log must agree on its sync setting."""
    logs: dict[str, str] = {}
    sync: dict[str, tuple[str, Any]] = {}
    files = {os.path.realpath(p): n for n, (k, p, _) in targets.items() if k == "path"}
    for name, (kind, path, spec) in targets.items():
        if kind != "log":
            continue
        if os.path.realpath(path) in files:
            raise ValueError(
                f"routes {files[os.path.realpath(path)]!r} and {name!r} name one path"
                f" ({path}) as a file and as a log"
            )
        real = logs[name] = os.path.realpath(path)
        mode = spec.get("sync", "group")
        first = sync.setdefault(real, (name, mode))
        if first[1] != mode:
            raise ValueError(
                f"routes {first[0]!r} and {name!r} write to one log ({path})"
                f" with different sync settings ({first[1]!r}, {mode!r})"
            )
    return logs


def _open_shared(path: str) -> tuple[int, bool]:
    """An append fd for path and whether this call created the file, with a
    shared flock held while the fd is open: a run that fails to start removes
    a file it created only if it can lock it exclusively (no other run has it
    open). A file such a run unlinked before our lock is opened again."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC
    while True:
        try:
            fd, made = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o644), True
        except FileExistsError:
            fd, made = os.open(path, flags), False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            if os.fstat(fd).st_nlink:
                return fd, made
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # removed by a run that failed meanwhile: open it anew


def _remove_if_unshared(path: str, fd: int) -> None:
    """Remove the file this run created at path (fd open on it) if it is
    still empty, still at path, and no other run holds it open."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        made, now = os.fstat(fd), os.stat(path)
    except OSError:
        return
    if (now.st_dev, now.st_ino) == (made.st_dev, made.st_ino) and now.st_size == 0:
        os.unlink(path)
