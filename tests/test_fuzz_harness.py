"""The atheris harness stays runnable: replay the suite files and random bytes."""

from __future__ import annotations

import random
import sys

from .conftest import REPO, require_shared

sys.path.insert(0, str(REPO / "fuzz"))
import fuzz_json


def test_harness_replays_json_test_suite() -> None:
    suite = require_shared("testdata", "JSONTestSuite", "test_parsing")
    for path in sorted(suite.iterdir()):
        data = path.read_bytes()
        for selector in range(3):
            fuzz_json.one_input(bytes([selector]) + data)


def test_harness_random_bytes() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        fuzz_json.one_input(bytes(rng.randrange(256) for _ in range(rng.randrange(80))))
