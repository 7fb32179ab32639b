"""``rulejet serve``: the engine as an HTTP service, on aiohttp.

Endpoints (every ``/v1/`` one needs ``Authorization: Bearer TOKEN`` when
the server has a token file):

- ``GET|HEAD /files/{path}``: a file under ``--root``, sent with sendfile
  (byte ranges, ETag / Last-Modified, 304), see rulejet._files.
- ``GET /v1/logs/{name}?from=SEQ&max_bytes=N``: raw records of a durable
  log, straight from its segment file with sendfile. ``name`` is
  ``ingest`` (the ``--log`` directory) or a log sink of the rule file.
  The body is whole records in the log's own format (16-byte header:
  CRC-32C u32, length u32, seq u64; payload; zero padding to 8), from
  one segment; headers ``X-Rulejet-First-Seq`` and ``X-Rulejet-Next-Seq``
  say which, so a client resumes with ``from=`` the next one. 204 when
  nothing from SEQ is durable yet, 410 when SEQ was removed by retention.
- ``POST /v1/evaluate``: NDJSON (or one JSON document) in, NDJSON out: one
  line per event, ``{"line": N, "matches": [...]}`` in priority order, or
  ``{"line": N, "error": ..., "offset": ...}`` for a malformed event.
- ``POST /v1/ingest``: the same, and every matched event is appended to
  the durable log (``"seq"`` in its line) and routed like ``rulejet run``
  routes; the answer comes only after the group commit that holds them, so
  a 200 means durable.
- ``GET /healthz``; ``GET /metrics`` (Prometheus text); ``POST
  /v1/rules/reload``: the rule file again; a bad one is refused with its
  problems and the old set stays. Requests in flight finish on the set
  they started with (each takes one reference to it).

Limits: bodies over ``max_body`` get 413, request lines and headers over
8 KiB get 400, a body not received within ``body_timeout`` gets 408,
idle keep-alive connections close after 75 s. SIGTERM (or SIGINT) stops
accepting, lets requests in flight finish, then flushes and closes the
log.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ._files import FileRoot, SendfileResponse, file_response
from .errors import LogCorruptionError
from .log import Log, LogIndex
from .rulefile import RuleFileError
from .rules import Engine
from .runner import _act, run_partition
from .sinks import Sinks, check_routes, routes

MAX_BODY = 64 << 20
BODY_TIMEOUT = 30.0


@dataclass
class Config:
    rules: str
    root: str
    log: str
    token: str | None = None
    max_body: int = MAX_BODY
    body_timeout: float = BODY_TIMEOUT
    log_sync: str = "group"
    out_dir: str | None = None


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.events = Counter("rulejet_events", "Events evaluated", registry=r)
        self.errors = Counter("rulejet_event_errors", "Malformed events", registry=r)
        self.matches = Counter("rulejet_matches", "Matches per rule", ["rule"], registry=r)
        self.requests = Histogram(
            "rulejet_request_seconds", "Request latency", ["endpoint", "status"], registry=r
        )
        self.commits = Histogram(
            "rulejet_log_commit_seconds",
            "Time from append to durable, per ingest request",
            registry=r,
            buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0),
        )
        self._request_children: dict[tuple[str, int], Any] = {}

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        # labels() looks the child up by string each time: keep them.
        child = self._request_children.get((endpoint, status))
        if child is None:
            child = self.requests.labels(endpoint, str(status))
            self._request_children[endpoint, status] = child
        child.observe(seconds)


class Service:
    """The server's state: the current engine (swapped whole on reload),
    the ingest log, log indexes and metrics."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.root = FileRoot(cfg.root)
        self.engine = Engine.from_file(cfg.rules)
        check_routes(self.engine, cfg.out_dir, held=cfg.log)
        self.metrics = Metrics()
        self.log = Log.open(cfg.log, cfg.log_sync)  # type: ignore[arg-type]
        self.indexes: dict[str, LogIndex] = {}
        self.reloads = 0
        self.sinks_lock = threading.Lock()

    def log_dirs(self) -> dict[str, str]:
        dirs = {"ingest": self.cfg.log}
        for name, spec in self.engine.sinks.items():
            if "log" in spec:
                out = self.cfg.out_dir
                dirs[name] = os.path.join(out, spec["log"]) if out else spec["log"]
        return dirs

    # ---- evaluation ----

    def evaluate_body(
        self, engine: Engine, body: bytes
    ) -> tuple[list[dict[str, Any]], Any, list[bytes]]:
        """Per event line: matches (rule names, priority order) or an error;
        also the run's result and the body's lines."""
        # Every malformed line is reported here, not just the first 100.
        result = run_partition(
            engine, body, list(range(len(engine.rules))), max_errors=body.count(b"\n") + 1
        )
        names = engine.names
        by_line = {m[0]: m for m in result.matches}
        errors = {e.line: e for e in result.errors}
        out: list[dict[str, Any]] = []
        lines = body.split(b"\n")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            if number in errors:
                e = errors[number]
                out.append({"line": number, "error": e.message, "offset": e.offset})
            elif number in by_line:
                out.append({"line": number, "matches": [names[p] for p in by_line[number][3]]})
            else:
                out.append({"line": number, "matches": []})
        self.metrics.events.inc(result.lines - result.blank - result.bad)
        self.metrics.errors.inc(result.bad)
        for name, count in zip(names, result.counts, strict=True):
            if count:
                self.metrics.matches.labels(name).inc(count)
        return out, result, lines


async def _read_body(request: web.Request, svc: Service) -> bytes:
    try:
        async with asyncio.timeout(svc.cfg.body_timeout):
            return await request.read()
    except TimeoutError:
        raise web.HTTPRequestTimeout(text="request body too slow\n") from None


def _ndjson(items: list[dict[str, Any]]) -> web.Response:
    body = "".join(json.dumps(i, separators=(",", ":")) + "\n" for i in items)
    return web.Response(text=body, content_type="application/x-ndjson")


def _body_events(body: bytes) -> bytes:
    """One JSON document (possibly pretty-printed) or NDJSON, as NDJSON."""
    stripped = body.strip()
    if stripped.startswith(b"{") and b"\n" in stripped:
        try:
            return json.dumps(json.loads(stripped), separators=(",", ":")).encode() + b"\n"
        except ValueError:
            pass  # NDJSON after all (or malformed: reported per line)
    return body


async def evaluate(request: web.Request) -> web.Response:
    svc: Service = request.app["svc"]
    engine = svc.engine  # this request keeps this rule set even if a reload swaps it
    body = _body_events(await _read_body(request, svc))
    out, _, _ = await asyncio.to_thread(svc.evaluate_body, engine, body)
    return _ndjson(out)


async def ingest(request: web.Request) -> web.Response:
    svc: Service = request.app["svc"]
    engine = svc.engine
    body = _body_events(await _read_body(request, svc))

    def work() -> list[dict[str, Any]]:
        out, result, lines = svc.evaluate_body(engine, body)
        matched = [item for item in out if item.get("matches")]
        t0 = time.perf_counter()
        if matched:
            first, _end = svc.log.append_many(
                [lines[item["line"] - 1] for item in matched], durable=True
            )
            for k, item in enumerate(matched):
                item["seq"] = first + k
        svc.metrics.commits.observe(time.perf_counter() - t0)
        fired = {pos for match in result.matches for pos in match[3]}
        if _routes(engine) and fired:
            # Only the sinks this body routes to; one request at a time
            # holds them (two would find each other's log busy).
            with svc.sinks_lock, Sinks(routes(engine, fired), svc.cfg.out_dir) as sinks:
                _act(engine, memoryview(body), result, sinks)
        return out

    return _ndjson(await asyncio.to_thread(work))


def _routes(engine: Engine) -> bool:
    return any(isinstance(a, dict) and "route" in a for r in engine.rules for a in r.actions)


async def reload_rules(request: web.Request) -> web.Response:
    svc: Service = request.app["svc"]
    try:
        engine = await asyncio.to_thread(Engine.from_file, svc.cfg.rules)
        check_routes(engine, svc.cfg.out_dir, held=svc.cfg.log)
    except RuleFileError as e:
        problems = [
            {"file": p.file, "line": p.line, "column": p.column, "message": p.message}
            for p in e.problems
        ]
        return web.json_response({"reloaded": False, "problems": problems}, status=422)
    except (OSError, ValueError) as e:
        problems = [{"message": str(e)}]
        return web.json_response({"reloaded": False, "problems": problems}, status=422)
    svc.engine = engine  # one reference swap: atomic for every request that follows
    svc.reloads += 1
    return web.json_response({"reloaded": True, "rules": engine.names})


async def serve_file(request: web.Request) -> web.StreamResponse:
    svc: Service = request.app["svc"]
    return file_response(request, svc.root, request.match_info["path"])


async def log_range(request: web.Request) -> web.StreamResponse:
    svc: Service = request.app["svc"]
    name = request.match_info["name"]
    directory = svc.log_dirs().get(name)
    if directory is None or not os.path.isdir(directory):
        raise web.HTTPNotFound(text=f"no log named {name!r}\n")
    try:
        from_seq = int(request.query.get("from", "0"))
        max_bytes = int(request.query.get("max_bytes", str(1 << 20)))
        if from_seq < 0 or max_bytes <= 0:
            raise ValueError
    except ValueError:
        raise web.HTTPBadRequest(
            text="from and max_bytes must be non-negative integers\n"
        ) from None
    index = svc.indexes.setdefault(directory, LogIndex(directory))
    upto = svc.log.stats()["durable"] if name == "ingest" else None
    try:
        rng = index.find(from_seq, max_bytes, upto)
    except KeyError:
        raise web.HTTPGone(text=f"record {from_seq} was removed by retention\n") from None
    except LogCorruptionError as e:
        raise web.HTTPInternalServerError(text=f"log damaged: {e}\n") from None
    if rng is None:
        return web.Response(status=204, headers={"X-Rulejet-Next-Seq": str(from_seq)})
    headers = {
        "Content-Type": "application/x-rulejet-log",
        "X-Rulejet-First-Seq": str(rng.first_seq),
        "X-Rulejet-Next-Seq": str(rng.next_seq),
        "X-Rulejet-Segment": os.path.basename(rng.segment),
    }
    fd = os.open(rng.segment, os.O_RDONLY | os.O_CLOEXEC)  # closed by SendfileResponse
    return SendfileResponse(fd, rng.offset, rng.length, headers=headers)


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def metrics(request: web.Request) -> web.Response:
    svc: Service = request.app["svc"]
    resp = web.Response(body=generate_latest(svc.metrics.registry))
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp


def _instrument(svc: Service, endpoint: str, handler: Any, auth: bool) -> Any:
    """The handler with the bearer-token check (``auth``; constant-time
    compare) and latency metrics. A wrapper per route rather than a
    middleware: it is cheaper per request, which small files notice."""
    token = svc.cfg.token.encode() if svc.cfg.token is not None and auth else None
    observe = svc.metrics.observe_request

    async def instrumented(request: web.Request) -> web.StreamResponse:
        t0 = time.perf_counter()
        status = 500
        try:
            if token is not None:
                given = request.headers.get("Authorization", "")
                # aiohttp decodes header bytes with surrogateescape: any bytes come back
                raw = given[7:].encode("utf-8", "surrogateescape")
                given_b = raw if given.startswith("Bearer ") else b""
                if not hmac.compare_digest(given_b, token):
                    status = 401
                    return web.Response(
                        status=401, text="missing or wrong token\n",
                        headers={"WWW-Authenticate": "Bearer"},
                    )  # fmt: skip
            resp = await handler(request)
            status = resp.status
            return resp  # type: ignore[no-any-return]
        except web.HTTPException as e:
            status = e.status
            raise
        finally:
            observe(endpoint, status, time.perf_counter() - t0)

    return instrumented


def make_app(cfg: Config) -> web.Application:
    svc = Service(cfg)
    app = web.Application(
        client_max_size=cfg.max_body,
        handler_args={"max_line_size": 8190, "max_field_size": 8190},
    )
    app["svc"] = svc
    routes = [
        ("GET", "/files/{path:.+}", serve_file, False),  # GET also answers HEAD
        ("GET", "/v1/logs/{name}", log_range, True),
        ("POST", "/v1/evaluate", evaluate, True),
        ("POST", "/v1/ingest", ingest, True),
        ("POST", "/v1/rules/reload", reload_rules, True),
        ("GET", "/healthz", healthz, False),
        ("GET", "/metrics", metrics, False),
    ]
    for method, path, handler, auth in routes:
        wrapped = _instrument(svc, path, handler, auth)
        if method == "GET":
            app.router.add_get(path, wrapped)  # and HEAD
        else:
            app.router.add_post(path, wrapped)

    async def close_log(app: web.Application) -> None:
        await asyncio.to_thread(svc.log.close)  # flushes: every acknowledged append is on disk
        svc.root.close()

    app.on_cleanup.append(close_log)
    return app


def serve(cfg: Config, host: str = "127.0.0.1", port: int = 8080, print_fn: Any = print) -> None:
    """Run until SIGTERM/SIGINT; requests in flight finish, the log closes."""
    app = make_app(cfg)
    web.run_app(
        app,
        host=host,
        port=port,
        print=print_fn,
        shutdown_timeout=30.0,
        keepalive_timeout=75.0,
        handle_signals=True,
        access_log=None,
    )
