"""The ``rulejet`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .errors import RulejetError
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rulejet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="version, SIMD kernels, page size, I/O probes")
    info.add_argument("--dir", default=None, help="directory for the O_DIRECT probe")
    info.add_argument("--format", choices=("text", "json"), default="text")
    info.set_defaults(func=_cmd_info)

    lines = sub.add_parser("lines", help="count the lines of a file (SIMD line index)")
    lines.add_argument("file")
    lines.set_defaults(func=_cmd_lines)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except (RulejetError, OSError) as e:
        print(f"rulejet: error: {e}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
