"""Fuzz the JSON path engine and the path compiler (atheris).

    python fuzz/fuzz_json.py -max_total_time=60 [CORPUS_DIR]   # pip install atheris

CORPUS_DIR (writable: libFuzzer adds to it) can start as a copy of
JSONTestSuite's test_parsing files; .ci/run does that.

Each input drives the path compiler, single-document extraction (with and
without full validation), validate() and the NDJSON batch loop, on every
kernel this CPU has. Only success or the documented exceptions may
result; a crash, hang or sanitizer report is a bug. For native coverage
build the extension with RULEJET_SANITIZE=1 and preload the ASan runtime
(scripts/native-tests.sh shows how).
"""

from __future__ import annotations

import contextlib
import sys

import rulejet
from rulejet import JSONError, PathError

PATH_SETS = [
    rulejet.PathSet(["a", "$[0]", "a.b[2]", "/x/0", "$['k\\u00e9y'].z"]),
    rulejet.PathSet(["$"]),
    rulejet.PathSet(["user.profile.country", "event", "tags[1]", "/0/0/0"]),
]
KERNELS = rulejet.available_kernels()


def one_input(data: bytes) -> None:
    if not data:
        return
    selector, body = data[0], data[1:]
    with contextlib.suppress(PathError):
        rulejet.Path(body.decode("utf-8", "replace"))
    ps = PATH_SETS[selector % len(PATH_SETS)]
    with rulejet.use_kernel(KERNELS[selector % len(KERNELS)]):
        for fn in (ps.extract, rulejet.validate, ps.extract_lines, ps.scan_lines):
            with contextlib.suppress(JSONError):
                fn(body)
        with contextlib.suppress(JSONError):
            ps.extract(body, validate=True)


def main() -> None:
    import atheris

    # Coverage feedback for the Python layer; the C core runs uninstrumented
    # unless built with clang's -fsanitize=fuzzer-no-link.
    with atheris.instrument_imports():
        import rulejet.paths  # noqa: F401

    atheris.Setup(sys.argv, lambda data: one_input(bytes(data)))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
