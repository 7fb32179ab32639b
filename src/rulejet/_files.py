"""Serving files under a root over aiohttp, the zero-copy way.

``FileRoot.open(path)`` is the only door from a request path to the file
system: the kernel's openat2(RESOLVE_BENEATH) refuses any resolution that
leaves the root (``..``, absolute paths, symlinks pointing out), in the
same call that opens; where openat2 is missing, ``resolve_under`` checks
the real path first. No byte from outside the root is ever sent.
``SendfileResponse`` sends a byte range of an open file with sendfile
(the kernel copies page cache to socket; Python never reads the body). ``file_response`` adds
ETag / Last-Modified, conditional requests (304), single byte ranges
(206, 416) and content types. Everything here runs on the event loop: the
stat and open calls are microseconds on a warm cache, cheaper than a hop
to a thread pool (which is what makes aiohttp's FileResponse slow for
small files).
"""

from __future__ import annotations

import contextlib
import errno
import mimetypes
import os
import stat
from email.utils import formatdate, parsedate_to_datetime
from typing import Any

from aiohttp import web

from . import _native


def resolve_under(root_real: str, rel: str) -> str | None:
    """The real path of ``rel`` under ``root_real`` (itself a realpath), or
    None if it is not a regular file inside the root."""
    if not rel or "\0" in rel or rel.startswith(("/", "\\")):
        return None
    parts = rel.replace("\\", "/").split("/")
    if any(p in ("..", ".") for p in parts):
        return None
    real = os.path.realpath(os.path.join(root_real, *parts))
    if real != root_real and not real.startswith(root_real + os.sep):
        return None  # a symlink (or anything else) pointing outside
    return real


def etag_for(st: os.stat_result) -> str:
    return f'"{st.st_mtime_ns:x}-{st.st_size:x}-{st.st_ino:x}"'


def _etag_matches(header: str, etag: str) -> bool:
    # Weak comparison (RFC 9110 13.1.2): W/ prefixes do not matter here.
    want = etag.removeprefix("W/")
    for tag in header.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == want:
            return True
    return False


def parse_range(header: str, size: int) -> tuple[int, int] | bool | None:
    """(start, end exclusive) for a single satisfiable byte range; None to
    ignore the header (not bytes, or several ranges: the whole file is
    sent); False if unsatisfiable (416)."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if not first:  # the last N bytes
            n = int(last)
            if n <= 0:
                return False
            return (max(0, size - n), size) if size else False
        start = int(first)
        end = int(last) + 1 if last else size
    except ValueError:
        return None
    if start < 0 or start >= size or end <= start:
        return False
    return start, min(end, size)


class SendfileResponse(web.StreamResponse):
    """A response whose body is ``count`` bytes of the open descriptor
    ``fd`` from ``offset``, sent with sendfile after the headers. Owns fd
    (closes it when done)."""

    def __init__(self, fd: int, offset: int, count: int, **kw: Any) -> None:
        super().__init__(**kw)
        self._fd, self._offset, self._count = fd, offset, count
        self.content_length = count

    async def prepare(self, request: web.BaseRequest) -> Any:
        try:
            writer = await super().prepare(request)
            if request.method == "HEAD" or not self._count:
                return writer
            transport = request.transport
            if transport is None:
                raise ConnectionResetError("connection lost")
            offset, count = self._offset, self._count
            sock = transport.get_extra_info("socket")
            if sock is not None and transport.get_write_buffer_size() == 0:
                # The headers are out and nothing is queued: send straight
                # from the file now (small files finish in this one call),
                # sparing the loop's sendfile machinery.
                try:
                    sent = os.sendfile(sock.fileno(), self._fd, offset, count)
                    offset, count = offset + sent, count - sent
                except (BlockingIOError, InterruptedError):
                    pass
            if count:
                with open(self._fd, "rb", closefd=False) as fobj:
                    try:
                        await request._loop.sendfile(transport, fobj, offset, count)
                    except NotImplementedError:  # a transport without sendfile (TLS)
                        fobj.seek(offset)
                        while count:
                            chunk = fobj.read(min(count, 1 << 16))
                            if not chunk:
                                break
                            await writer.write(chunk)  # type: ignore[union-attr]
                            count -= len(chunk)
            await super().write_eof()
            return writer
        finally:
            os.close(self._fd)


class FileRoot:
    """The directory served under /files/. ``open(rel)`` returns an open
    descriptor of a regular file beneath it, or None. With openat2 (Linux
    5.6+) the kernel itself refuses any resolution that would leave the
    root (``..``, absolute paths, symlinks pointing out) in the same call
    that opens, so there is no check-then-open race; elsewhere the real
    path is checked first (resolve_under)."""

    def __init__(self, root: str) -> None:
        self.real = os.path.realpath(root)
        self.fd = os.open(self.real, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.beneath = True
        self._meta: dict[tuple[str, int, int, int], dict[str, str]] = {}

    def open(self, rel: str) -> int | None:
        if not rel or "\0" in rel or rel.startswith("/"):
            return None
        if self.beneath:
            try:
                return _native.open_beneath(self.fd, rel)
            except OSError as e:
                if e.errno == errno.ENOSYS:
                    self.beneath = False
                elif e.errno != errno.EXDEV:
                    return None  # ENOENT, EACCES, ...
        # openat2 refuses absolute symlinks even when they land inside the
        # root: resolve the real path, and if it is inside, open that
        # symlink-free relative path beneath the root again (a component
        # swapped for an outward symlink meanwhile is still refused).
        path = resolve_under(self.real, rel)
        if path is None:
            return None
        try:
            if self.beneath:
                return _native.open_beneath(self.fd, os.path.relpath(path, self.real))
            return os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return None

    def headers(self, rel: str, st: os.stat_result) -> dict[str, str]:
        """ETag, Last-Modified and Content-Type, cached per file version."""
        key = (rel, st.st_ino, st.st_mtime_ns, st.st_size)
        h = self._meta.get(key)
        if h is None:
            if len(self._meta) > 4096:
                self._meta.clear()
            ctype, encoding = mimetypes.guess_type(rel)
            h = {
                "ETag": etag_for(st),
                "Last-Modified": formatdate(st.st_mtime, usegmt=True),
                "Accept-Ranges": "bytes",
                "Content-Type": ctype or "application/octet-stream",
            }
            if encoding:
                h["Content-Encoding"] = encoding
            self._meta[key] = h
        return dict(h)

    def close(self) -> None:
        os.close(self.fd)


def file_response(request: web.Request, root: FileRoot, rel: str) -> web.StreamResponse:
    """GET/HEAD of the regular file ``rel`` under ``root``: 200, 206, 304,
    416 or 404 (anything that is not a regular file beneath the root)."""
    fd = root.open(rel)
    if fd is None:
        raise web.HTTPNotFound()
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise web.HTTPNotFound()
    try:
        headers = root.headers(rel, st)
        etag = headers["ETag"]
        inm = request.headers.get("If-None-Match")
        ims = request.headers.get("If-Modified-Since")
        not_modified = False
        if inm is not None:
            not_modified = _etag_matches(inm, etag)
        elif ims is not None:
            with contextlib.suppress(TypeError, ValueError, IndexError):
                not_modified = int(st.st_mtime) <= parsedate_to_datetime(ims).timestamp()
        if not_modified:
            os.close(fd)
            for k in ("Content-Type", "Content-Encoding"):
                headers.pop(k, None)
            return web.Response(status=304, headers=headers)
        size = st.st_size
        offset, count, status = 0, size, 200
        rng = request.headers.get("Range")
        if rng is not None:
            if_range = request.headers.get("If-Range")
            r = parse_range(rng, size) if if_range is None or if_range.strip() == etag else None
            if r is False:
                os.close(fd)
                headers.pop("Content-Encoding", None)
                return web.Response(
                    status=416, headers={**headers, "Content-Range": f"bytes */{size}"}
                )
            if isinstance(r, tuple):
                offset, count, status = r[0], r[1] - r[0], 206
                headers["Content-Range"] = f"bytes {r[0]}-{r[1] - 1}/{size}"
        return SendfileResponse(fd, offset, count, status=status, headers=headers)
    except BaseException:
        os.close(fd)
        raise
