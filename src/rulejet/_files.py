"""Serving files under a root over aiohttp, the zero-copy way.

``resolve_under(root, path)`` is the only door from a request path to the
file system: it refuses absolute paths, ``..`` components, NUL bytes and
anything whose real path (symlinks resolved) leaves the root, so no byte
from outside is ever sent. ``SendfileResponse`` sends a byte range of an
open file with ``loop.sendfile`` (os.sendfile: the kernel copies page
cache to socket; Python never reads the body). ``file_response`` adds
ETag / Last-Modified, conditional requests (304), single byte ranges
(206, 416) and content types. Everything here runs on the event loop: the
stat and open calls are microseconds on a warm cache, cheaper than a hop
to a thread pool (which is what makes aiohttp's FileResponse slow for
small files).
"""

from __future__ import annotations

import contextlib
import mimetypes
import os
import stat
from email.utils import formatdate, parsedate_to_datetime
from typing import Any

from aiohttp import web


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
    """A response whose body is ``count`` bytes of ``fobj`` from ``offset``,
    sent with loop.sendfile after the headers. Closes fobj when done."""

    def __init__(self, fobj: Any, offset: int, count: int, **kw: Any) -> None:
        super().__init__(**kw)
        self._fobj, self._offset, self._count = fobj, offset, count
        self.content_length = count

    async def prepare(self, request: web.BaseRequest) -> Any:
        try:
            writer = await super().prepare(request)
            if request.method == "HEAD" or not self._count:
                return writer
            transport = request.transport
            if transport is None:
                raise ConnectionResetError("connection lost")
            loop = request._loop
            try:
                await loop.sendfile(transport, self._fobj, self._offset, self._count)
            except NotImplementedError:  # a transport without sendfile (TLS)
                self._fobj.seek(self._offset)
                left = self._count
                while left:
                    chunk = self._fobj.read(min(left, 1 << 16))
                    if not chunk:
                        break
                    await writer.write(chunk)  # type: ignore[union-attr]
                    left -= len(chunk)
            await super().write_eof()
            return writer
        finally:
            self._fobj.close()


def file_response(request: web.Request, path: str) -> web.StreamResponse:
    """GET/HEAD of the regular file at ``path`` (already resolved)."""
    try:
        # O_NONBLOCK: opening a FIFO planted under the root must not hang
        # the loop (regular files ignore the flag).
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        raise web.HTTPNotFound() from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise web.HTTPNotFound()
    fobj = os.fdopen(fd, "rb")
    try:
        etag = etag_for(st)
        headers = {
            "ETag": etag,
            "Last-Modified": formatdate(st.st_mtime, usegmt=True),
            "Accept-Ranges": "bytes",
        }
        inm = request.headers.get("If-None-Match")
        ims = request.headers.get("If-Modified-Since")
        not_modified = False
        if inm is not None:
            not_modified = _etag_matches(inm, etag)
        elif ims is not None:
            with contextlib.suppress(TypeError, ValueError, IndexError):
                not_modified = int(st.st_mtime) <= parsedate_to_datetime(ims).timestamp()
        if not_modified:
            fobj.close()
            return web.Response(status=304, headers=headers)
        ctype, encoding = mimetypes.guess_type(path)
        headers["Content-Type"] = ctype or "application/octet-stream"
        if encoding:
            headers["Content-Encoding"] = encoding
        size = st.st_size
        offset, count, status = 0, size, 200
        rng = request.headers.get("Range")
        if_range = request.headers.get("If-Range")
        if rng is not None and (if_range is None or if_range.strip() == etag):
            r = parse_range(rng, size)
            if r is False:
                fobj.close()
                return web.Response(
                    status=416, headers={**headers, "Content-Range": f"bytes */{size}"}
                )
            if isinstance(r, tuple):
                offset, count, status = r[0], r[1] - r[0], 206
                headers["Content-Range"] = f"bytes {r[0]}-{r[1] - 1}/{size}"
        return SendfileResponse(fobj, offset, count, status=status, headers=headers)
    except BaseException:
        fobj.close()
        raise
