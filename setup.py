"""Build the rulejet._native C extension (the rest is in pyproject.toml).

Build switches (environment): RULEJET_DEBUG=1 keeps asserts and -O0 -g;
RULEJET_SANITIZE=1 adds AddressSanitizer and UBSan; RULEJET_COVERAGE=1
adds gcov instrumentation. The default build is -O2 for the baseline CPU:
wider ISAs are enabled per function inside their kernels only.
"""

import os
from pathlib import Path

from setuptools import Extension, setup

NATIVE = Path("src/rulejet/_native")
sources = sorted(
    str(p) for sub in ("core", "kernels", "binding") for p in (NATIVE / sub).glob("*.c")
)
# Headers, so an in-place rebuild recompiles what includes them (setuptools
# tracks no #include dependencies; kernels include json_generic.h).
headers = sorted(
    str(p) for sub in ("core", "kernels", "binding") for p in (NATIVE / sub).glob("*.h")
)

# _GNU_SOURCE: memmem, strtod_l, uselocale, O_DIRECT, REG_STARTEND (glibc; the
# project targets Linux).
cflags = ["-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Wno-missing-field-initializers"]
ldflags: list[str] = []
if os.environ.get("RULEJET_DEBUG"):
    cflags += ["-O0", "-g", "-UNDEBUG"]
else:
    cflags += ["-O2", "-DNDEBUG"]
if os.environ.get("RULEJET_SANITIZE"):
    san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"]
    cflags += san
    ldflags += san
if os.environ.get("RULEJET_COVERAGE"):
    cflags += ["--coverage"]
    ldflags += ["--coverage"]

setup(
    ext_modules=[
        Extension(
            "rulejet._native",
            sources=sources,
            depends=headers,
            extra_compile_args=cflags,
            extra_link_args=ldflags,
        )
    ]
)
