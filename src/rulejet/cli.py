"""The ``rulejet`` command line.

    rulejet run RULES FILE... [--threads N] [--format text|json] [--out DIR] [--strict]
    rulejet check RULES
    rulejet explain RULES EVENT
    rulejet demo [--events N] [--threads N]
    rulejet info [--dir DIR]
    rulejet lines FILE
    rulejet serve --rules RULES --root DIR --log DIR [--host H] [--port P] [--token-file F]
    rulejet log verify DIR [--format text|json]
    rulejet log read DIR [--from SEQ] [--follow] [--with-seq]

Exit status: 0 on success, 1 when something failed (bad rule file, missing
or unreadable input, a malformed line under --strict), 2 for bad usage.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import JSONError, RulejetError
from .sysinfo import system_info


def _cmd_info(args: argparse.Namespace) -> int:
    info = system_info(args.dir)
    if args.format == "json":
        print(json.dumps(info.as_dict()))
        return 0
    rows = [
        ("rulejet", info.version),
        ("python", info.python),
        ("machine", f"{info.machine}, Linux {info.kernel_release}"),
        ("kernel (active)", info.active_kernel),
        ("kernels available", ", ".join(info.available_kernels)),
        ("kernels compiled", ", ".join(info.compiled_kernels)),
        ("cpu features", ", ".join(info.cpu_features) or "-"),
        ("page size", str(info.page_size)),
        (f"O_DIRECT in {info.odirect_dir}", _yes_no(info.odirect)),
        ("io_uring", _yes_no(info.io_uring)),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


def _yes_no(value: bool | str) -> str:
    if isinstance(value, str):
        return value
    return "usable" if value else "not usable"


def _cmd_lines(args: argparse.Namespace) -> int:
    from .lines import iter_line_offsets

    total = sum(len(chunk) for chunk in iter_line_offsets(args.file))
    print(total)
    return 0


def _is_path(text: str) -> bool:
    """Whether text names something in the file system (an event's JSON
    text may be too long to be a name at all)."""
    try:
        return os.path.lexists(text)
    except (OSError, ValueError):
        return False


def _check_inputs(files: Sequence[str]) -> None:
    for f in files:
        p = Path(f)
        if p.is_dir():
            raise IsADirectoryError(21, "is a directory, not an NDJSON file", f)
        if not p.exists():
            raise FileNotFoundError(2, "no such file", f)
        if not p.is_file():  # a pipe or a device has no size to map
            why = "not a regular file (a pipe or a device cannot be mapped)"
            raise OSError(errno.ENODEV, why, f)
        if not os.access(p, os.R_OK):
            raise PermissionError(13, "not readable", f)


def _run(rules: str, files: Sequence[str], args: argparse.Namespace) -> int:
    from .rules import Engine
    from .runner import RunStats
    from .sinks import routes_to_stdout

    engine = Engine.from_file(rules)  # a bad rule file fails before any event is read
    _check_inputs(files)
    if args.format == "json" and routes_to_stdout(engine):
        raise ValueError("a route to stdout would mix matched lines into --format json's output")
    per_file: list[tuple[str, RunStats]] = []
    for f in files:
        try:
            stats = engine.run_file(
                f,
                threads=args.threads,
                strict=args.strict,
                out_dir=args.out,
                progress=not args.quiet,
            )
        except JSONError as e:  # --strict: say which input
            where = {"offset": e.offset, "line": e.line, "column": e.column}
            raise JSONError(f"{f}: {e.args[0]}", **where) from None
        per_file.append((f, stats))
    total = _sum(per_file)
    if args.format == "json":
        out = total.as_dict()
        out["error_samples"] = [{"path": f, **vars(e)} for f, e in _error_samples(per_file)]
        out["rules_file"] = rules
        out["files"] = (
            [{"path": f, **s.as_dict()} for f, s in per_file] if len(files) > 1 else files
        )
        print(json.dumps(out))
    else:
        _print_text(rules, files, total, engine.names)
        _print_malformed(per_file, total.errors)
    return 0


def _sum(per_file: list[tuple[str, Any]]) -> Any:
    first = per_file[0][1]
    if len(per_file) == 1:
        return first
    from dataclasses import replace

    def add(key: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for _, s in per_file:
            for k, v in getattr(s, key).items():
                out[k] = out.get(k, 0) + v
        return out

    return replace(
        first,
        events=sum(s.events for _, s in per_file),
        bytes=sum(s.bytes for _, s in per_file),
        errors=sum(s.errors for _, s in per_file),
        seconds=sum(s.seconds for _, s in per_file),
        lines=sum(s.lines for _, s in per_file),
        blank_lines=sum(s.blank_lines for _, s in per_file),
        native_allocations=sum(s.native_allocations for _, s in per_file),
        matches=add("matches"),
        eval_errors=add("eval_errors"),
        tags=add("tags"),
        routed=add("routed"),
        actions_run=add("actions_run"),
        in_python=add("in_python"),
        # Not counters: what the run needed at most, as one file's run reports it.
        threads=max(s.threads for _, s in per_file),
        workers=max(s.workers for _, s in per_file),
        error_samples=[e for _, e in _error_samples(per_file)],
    )


def _error_samples(per_file: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The first 100 malformed lines over all files, each with its file."""
    return [(f, e) for f, s in per_file for e in s.error_samples][:100]


def _print_text(rules: str, files: Sequence[str], s: Any, names: list[str]) -> None:
    rate = s.bytes / s.seconds / 1e6 if s.seconds else 0.0
    eps = s.events / s.seconds / 1e6 if s.seconds else 0.0
    print(f"rules    {rules} ({len(names)} rules)")
    print(f"input    {', '.join(files)}")
    print(
        f"events   {s.events:,}   bytes {s.bytes:,}   malformed {s.errors:,}"
        f"   blank {s.blank_lines:,}"
    )
    print(
        f"time     {s.seconds:.3f} s   {rate:,.0f} MB/s   {eps:.2f}M events/s"
        f"   threads {s.threads}   kernel {s.kernel}"
    )
    width = max([len(n) for n in names] + [4])
    print(f"\n{'rule':<{width}}  {'matches':>12}  {'eval errors':>11}")
    for n in names:
        print(f"{n:<{width}}  {s.matches.get(n, 0):>12,}  {s.eval_errors.get(n, 0):>11,}")
    if s.tags:
        print("\ntags     " + ", ".join(f"{k}={v:,}" for k, v in sorted(s.tags.items())))
    if s.routed:
        print("routed   " + ", ".join(f"{k}={v:,}" for k, v in sorted(s.routed.items())))
    if any(s.in_python.values()):
        undecided = ", ".join(f"{k}={v:,}" for k, v in s.in_python.items() if v)
        print(f"JSONLogic events evaluated in Python (undecided on the VM): {undecided}")


def _print_malformed(per_file: list[tuple[str, Any]], errors: int) -> None:
    """The first malformed lines, each with its file when there are several."""
    samples = _error_samples(per_file)[:10]  # the rest are in --format json
    if not samples:
        return
    print(f"\nmalformed lines (first {len(samples)} of {errors:,}):")
    for f, e in samples:
        where = f"{f}: " if len(per_file) > 1 else ""
        print(f"  {where}line {e.line}, column {e.column} (byte {e.offset}): {e.message}")


def _cmd_run(args: argparse.Namespace) -> int:
    return _run(args.rules, args.files, args)


def _cmd_check(args: argparse.Namespace) -> int:
    from .rulefile import load_rule_file
    from .rules import Engine

    rf = load_rule_file(args.rules)
    print(f"{args.rules}: OK, {len(rf.rules)} rules")
    engine = Engine.from_file(args.rules)
    if reasons := engine.python_path_reasons():
        print("note: the JSONLogic rules run in Python, every event decoded (slower):")
        for why in reasons:
            print(f"  {why}")
    if parts := engine.python_part_reasons():
        print("note: parts of JSONLogic rules run in Python, on the events the rest leaves")
        print("  undecided (each such event decoded):")
        for why in parts:
            print(f"  {why}")
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from .rules import Engine

    engine = Engine.from_file(args.rules)
    text = args.event
    if not text.lstrip().startswith(("{", "[")) and _is_path(text):
        if Path(text).is_dir():
            raise IsADirectoryError(21, "is a directory, not an event or an NDJSON file", text)
        with open(text, "rb") as f:  # its first event: the first line that is not blank
            first = next((line for line in f if line.strip()), b"")
        text = first.decode("utf-8", "surrogateescape")
    for line in engine.explain(text.encode("utf-8", "surrogateescape")):
        print(line)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import demo_rules_path, write_events

    with tempfile.TemporaryDirectory(prefix="rulejet-demo-") as tmp:
        events = os.path.join(tmp, "events.ndjson")
        size = write_events(events, args.events)
        print(  # stdout is the JSON object alone with --format json
            f"generated {args.events:,} sample events ({size / 1e6:.1f} MB) in {events}",
            file=sys.stdout if args.format == "text" else sys.stderr,
        )
        args.out = args.out or tmp
        code = _run(str(demo_rules_path()), [events], args)
        if args.format == "text":
            print(f"\n(the demo's rules: {demo_rules_path()})")
        return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rulejet", description="Rule engine for JSON events.")
    sub = parser.add_subparsers(dest="command", required=True)

    def run_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
        p.add_argument("--format", choices=("text", "json"), default="text")
        p.add_argument("--out", default=None, help="directory for route sinks")
        p.add_argument("--strict", action="store_true", help="stop at the first malformed line")
        p.add_argument("--quiet", action="store_true", help="no progress bar")

    run = sub.add_parser("run", help="evaluate a rule file over NDJSON files")
    run.add_argument("rules")
    run.add_argument("files", nargs="+")
    run_options(run)
    run.set_defaults(func=_cmd_run)

    check = sub.add_parser("check", help="validate a rule file, listing every problem")
    check.add_argument("rules")
    check.set_defaults(func=_cmd_check)

    explain = sub.add_parser("explain", help="show how each rule treats one event")
    explain.add_argument("rules")
    explain.add_argument("event", help="a JSON document, or a file whose first line is one")
    explain.set_defaults(func=_cmd_explain)

    demo = sub.add_parser("demo", help="generate sample events and run the bundled rules")
    demo.add_argument("--events", type=int, default=200_000)
    run_options(demo)
    demo.set_defaults(func=_cmd_demo)

    info = sub.add_parser("info", help="version, SIMD kernels, page size, I/O probes")
    info.add_argument("--dir", default=None, help="directory for the O_DIRECT probe")
    info.add_argument("--format", choices=("text", "json"), default="text")
    info.set_defaults(func=_cmd_info)

    lines = sub.add_parser("lines", help="count the lines of a file (SIMD line index)")
    lines.add_argument("file")
    lines.set_defaults(func=_cmd_lines)

    srv = sub.add_parser("serve", help="HTTP service: files, log ranges, evaluate, ingest")
    srv.add_argument("--rules", required=True, help="rule file (reloadable: POST /v1/rules/reload)")
    srv.add_argument("--root", required=True, help="directory served under /files/")
    srv.add_argument("--log", required=True, help="durable log directory for /v1/ingest")
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=8080)
    srv.add_argument("--token-file", default=None, help="require Authorization: Bearer <token>")
    srv.add_argument("--max-body", type=int, default=64 << 20, help="bytes; larger bodies get 413")
    srv.add_argument("--body-timeout", type=float, default=30.0, help="seconds; slower gets 408")
    srv.add_argument("--out", default=None, help="directory for route sinks")
    srv.set_defaults(func=_cmd_serve)

    log = sub.add_parser("log", help="durable logs: verify one, or print its records")
    log_sub = log.add_subparsers(dest="log_command", required=True)
    verify = log_sub.add_parser("verify", help="check every record; list damage with offsets")
    verify.add_argument("dir")
    verify.add_argument("--format", choices=("text", "json"), default="text")
    verify.set_defaults(func=_cmd_log_verify)
    read = log_sub.add_parser("read", help="print records, one per line (raw payloads)")
    read.add_argument("dir")
    read.add_argument("--from", dest="from_seq", type=int, default=0, help="first sequence number")
    read.add_argument("--follow", action="store_true", help="keep printing new records")
    read.add_argument("--with-seq", action="store_true", help="prefix each line: SEQ<tab>")
    read.set_defaults(func=_cmd_log_read)
    return parser


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        from .server import Config, serve
    except ImportError as e:
        print(f"rulejet: error: serve needs aiohttp and prometheus-client ({e}); "
              'pip install "rulejet[serve]"', file=sys.stderr)  # fmt: skip
        return 1
    token = None
    if args.token_file:
        with open(args.token_file) as f:
            token = f.read().strip()
        if not token:
            print(f"rulejet: error: {args.token_file}: empty token", file=sys.stderr)
            return 1
    if not os.path.isdir(args.root):
        print(f"rulejet: error: {args.root}: not a directory", file=sys.stderr)
        return 1
    cfg = Config(args.rules, args.root, args.log, token=token, max_body=args.max_body,
                 body_timeout=args.body_timeout, out_dir=args.out)  # fmt: skip
    serve(cfg, host=args.host, port=args.port,
          print_fn=lambda msg: print(msg, file=sys.stderr, flush=True))  # fmt: skip
    return 0


def _cmd_log_verify(args: argparse.Namespace) -> int:
    from .log import list_segments, verify

    if not os.path.isdir(args.dir):
        print(f"rulejet: error: {args.dir}: not a log directory", file=sys.stderr)
        return 1
    rep = verify(args.dir)
    segments = len(list_segments(args.dir))
    if args.format == "json":
        out = {
            "segments": segments,
            "records": rep.records,
            "skipped_records": rep.skipped_records,
            "skipped_bytes": rep.skipped_bytes,
            "problems": [{"segment": s, "offset": o, "problem": w} for s, o, w in rep.problems],
            "torn_tail": (
                {"segment": rep.torn_tail[0], "offset": rep.torn_tail[1]} if rep.torn_tail else None
            ),
        }
        print(json.dumps(out))
    else:
        print(f"{args.dir}: {segments} segment(s), {rep.records:,} records")
        for s, o, w in rep.problems:
            print(f"  damage: {s} at byte {o}: {w}")
        if rep.skipped_records or rep.skipped_bytes:
            print(f"  skipped {rep.skipped_records:,} records, {rep.skipped_bytes:,} bytes")
        if rep.torn_tail:
            seg, off = rep.torn_tail
            print(f"  torn tail (truncated at the next open): {seg} at byte {off}")
        if not rep.problems:
            print("  ok" if not rep.torn_tail else "  ok apart from the torn tail")
    return 1 if rep.problems else 0


def _cmd_log_read(args: argparse.Namespace) -> int:
    from .log import Log

    if not os.path.isdir(args.dir):
        print(f"rulejet: error: {args.dir}: not a log directory", file=sys.stderr)
        return 1
    out = sys.stdout.buffer
    try:
        for seq, payload in Log.read(args.dir, args.from_seq, follow=args.follow):
            if args.with_seq:
                out.write(b"%d\t" % seq)
            out.write(payload)
            out.write(b"\n")
            if args.follow:
                out.flush()
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        return 0
    out.flush()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "threads", 1) < 1:
        print("rulejet: error: --threads must be at least 1", file=sys.stderr)
        return 2
    if getattr(args, "events", 0) < 0:
        print("rulejet: error: --events must not be negative", file=sys.stderr)
        return 2
    from .rulefile import RuleFileError

    try:
        code: int = args.func(args)
    except RuleFileError as e:
        print(e, file=sys.stderr)  # every problem, one per line, with carets
        return 1
    except (RulejetError, OSError, ValueError) as e:
        print(f"rulejet: error: {e}", file=sys.stderr)
        return 1
    except RecursionError:  # the checks above should have refused it first
        print("rulejet: error: input nested too deeply", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
