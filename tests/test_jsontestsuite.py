"""Conformance: JSONTestSuite's y_ files accepted, n_ files rejected, and the
documented outcome for every i_ (implementation-defined) file."""

from __future__ import annotations

import json

import pytest

import rulejet
from rulejet import JSONError, PathSet

from .conftest import SHARED, require_shared
from .test_extract import same

SUITE = SHARED / "testdata" / "JSONTestSuite" / "test_parsing"
FILES = sorted(p.name for p in SUITE.iterdir()) if SUITE.is_dir() else ["(suite absent)"]

# What rulejet does with each i_ file; the README lists the same table.
# Numbers beyond double range follow float(): huge -> inf, tiny -> 0.0;
# big integers become exact Python ints. Lone surrogates written as \u
# escapes are accepted (as json.loads does); raw bytes must be strict UTF-8,
# so encoded surrogates, overlongs and Latin-1 are rejected; only UTF-8
# input is read (no UTF-16, no BOM). Nesting up to 1024 levels is accepted.
I_ACCEPTED = {
    "i_number_double_huge_neg_exp.json",
    "i_number_huge_exp.json",
    "i_number_neg_int_huge_exp.json",
    "i_number_pos_double_huge_exp.json",
    "i_number_real_neg_overflow.json",
    "i_number_real_pos_overflow.json",
    "i_number_real_underflow.json",
    "i_number_too_big_neg_int.json",
    "i_number_too_big_pos_int.json",
    "i_number_very_big_negative_int.json",
    "i_object_key_lone_2nd_surrogate.json",
    "i_string_1st_surrogate_but_2nd_missing.json",
    "i_string_1st_valid_surrogate_2nd_invalid.json",
    "i_string_incomplete_surrogate_and_escape_valid.json",
    "i_string_incomplete_surrogate_pair.json",
    "i_string_incomplete_surrogates_escape_valid.json",
    "i_string_invalid_lonely_surrogate.json",
    "i_string_invalid_surrogate.json",
    "i_string_inverted_surrogates_U+1D11E.json",
    "i_string_lone_second_surrogate.json",
    "i_structure_500_nested_arrays.json",
}


def _outcome(data: bytes) -> bool:
    try:
        rulejet.validate(data)
    except JSONError:
        return False
    return True


@pytest.mark.parametrize("name", FILES)
def test_suite_file(kernel: str, name: str) -> None:
    path = require_shared("testdata", "JSONTestSuite", "test_parsing", name)
    data = path.read_bytes()
    kind = name[0]
    root = PathSet(["$"])
    if kind == "y":
        rulejet.validate(data)
        got = root.extract(data, validate=True)[0]
        assert same(got, json.loads(data)), (got, json.loads(data))
    elif kind == "n":
        with pytest.raises(JSONError):
            rulejet.validate(data)
        with pytest.raises(JSONError):
            root.extract(data, validate=True)
    else:
        assert _outcome(data) == (name in I_ACCEPTED)
        if name in I_ACCEPTED and name != "i_structure_500_nested_arrays.json":
            got = root.extract(data)[0]
            assert same(got, json.loads(data))


def test_i_table_names_real_files() -> None:
    require_shared("testdata", "JSONTestSuite", "test_parsing")
    assert set(FILES) >= I_ACCEPTED
    assert sum(f.startswith("y_") for f in FILES) > 90
    assert sum(f.startswith("n_") for f in FILES) > 180
