#!/usr/bin/env bash
# Build and run the native (Python-free) tests, by default under
# AddressSanitizer and UBSan with every finding fatal.
#   scripts/native-tests.sh            sanitized build (ASan + UBSan)
#   scripts/native-tests.sh plain      -O2 build, no sanitizers
#   scripts/native-tests.sh python     also build the extension with
#                                      sanitizers and run the pytest suite on it
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-sanitize}"
CC="${CC:-gcc}"
out=tests/native/build
mkdir -p "$out"
srcs=(src/rulejet/_native/core/*.c src/rulejet/_native/kernels/*.c tests/native/test_core.c)
flags=(-std=c11 -D_GNU_SOURCE -pthread -Wall -Wextra -Werror -Wno-missing-field-initializers -g)
san=(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
case "$mode" in
  plain) "$CC" "${flags[@]}" -O2 "${srcs[@]}" -o "$out/test_core" -lm ;;
  sanitize|python) "$CC" "${flags[@]}" -O1 "${san[@]}" "${srcs[@]}" -o "$out/test_core" -lm ;;
  *) echo "usage: $0 [sanitize|plain|python]" >&2; exit 2 ;;
esac
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 "$out/test_core"

if [ "$mode" = python ]; then
  # The extension under ASan/UBSan, loaded into an uninstrumented python:
  # the ASan runtime must be preloaded, and CPython's own allocations are
  # not leak-checked (they are not ours to fix).
  build=$(mktemp -d)
  trap 'rm -rf "$build"' EXIT
  cp -r src/rulejet "$build/rulejet"
  rm -f "$build"/rulejet/*.so
  if ! RULEJET_SANITIZE=1 python3 setup.py -q build_ext --build-lib "$build" \
    --build-temp "$build/tmp" >"$build/build.log" 2>&1; then
    tail -n 40 "$build/build.log" >&2; echo "sanitized build failed" >&2; exit 1
  fi
  so=("$build"/rulejet/_native*.so)
  # Capture first: with pipefail, `ldd | grep -q` fails at random when grep
  # exits early and ldd dies of SIGPIPE.
  deps=$(ldd "${so[0]}")
  [[ "$deps" == *libasan* ]] || { echo "sanitized build missing" >&2; exit 1; }
  preload="$("$CC" -print-file-name=libasan.so):$("$CC" -print-file-name=libubsan.so)"
  LD_PRELOAD="$preload" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 PYTHONPATH="$build" \
    RULEJET_RING_STRESS="${RULEJET_RING_STRESS:-1000000}" \
    python3 -m pytest -q --capture=sys -p no:cacheprovider tests -k "not static and not cli and not native_suite" "${@:2}"
fi
