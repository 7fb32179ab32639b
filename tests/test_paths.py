"""Path syntax: JSONPath dot/bracket, bare dotted, JSON Pointer."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rulejet import Path, PathError, PathSet

from .json_strategies import to_expr


@pytest.mark.parametrize(
    ("expr", "steps"),
    [
        ("$", ()),
        ("", ()),
        ("$.user.profile.name", ("user", "profile", "name")),
        ("user.profile.name", ("user", "profile", "name")),
        ("$['odd key'].x", ("odd key", "x")),
        ('$["dq \\" key"]', ('dq " key',)),
        ("$['\\u00e9t\\'e']", ("ét'e",)),
        ("$.tags[0]", ("tags", 0)),
        ("tags[12]", ("tags", 12)),
        ("$.a.b[2].c", ("a", "b", 2, "c")),
        ("['a'][0]", ("a", 0)),
        ("$.é.ключ", ("é", "ключ")),
        ("$.a-b.c_d.$e", ("a-b", "c_d", "$e")),
        ("/user/profile/name", ("user", "profile", "name")),
        ("/tags/0", ("tags", ("0", 0))),
        ("/tags/01", ("tags", "01")),
        ("/a~1b/c~0d", ("a/b", "c~d")),
        ("/", ("",)),
        ("//x", ("", "x")),
    ],
)
def test_parse(expr: str, steps: tuple[object, ...]) -> None:
    assert Path(expr).steps == steps


@pytest.mark.parametrize(
    ("expr", "column", "message"),
    [
        ("$.a..b", 5, "recursive descent"),
        ("$.a.*", 5, "wildcards"),
        ("$[*]", 3, "wildcards"),
        ("$.a[-1]", 5, "negative"),
        ("$.a[01]", 5, "leading zero"),
        ("$.a[1", 6, "expected ']'"),
        ("$.a['x", 5, "unterminated"),
        ("$.a['\\q']", 6, "invalid escape"),
        ("$.a b", 4, "unexpected ' '"),
        ("$x", 2, "unexpected 'x'"),
        ("$.", 3, "expected a field name"),
        ("/a~2", 3, "'~' must be followed"),
        ("a.b.", 5, "expected a field name"),
        ("$['a']x", 7, "unexpected 'x'"),
    ],
)
def test_bad_expressions_show_column(expr: str, column: int, message: str) -> None:
    with pytest.raises(PathError) as info:
        Path(expr)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.column == column, str(err)
    assert message in str(err)
    # The caret sits under the column.
    lines = str(err).split("\n")
    assert lines[1] == "  " + expr
    assert lines[2].index("^") == column + 1


def test_non_string_path() -> None:
    with pytest.raises(TypeError):
        Path(3)  # type: ignore[arg-type]


def test_equal_paths_share_a_slot() -> None:
    ps = PathSet(["a.b", "$.a.b", "/a/b", "a"])
    assert ps._native.n_paths == 4
    assert ps._native.n_slots == 2  # every spelling of a.b shares one slot
    assert ps.extract(b'{"a": {"b": 7}}')[:3] == [7, 7, 7]


@given(st.lists(st.one_of(st.text(max_size=10), st.integers(0, 2**64 - 1)), max_size=6))
def test_bracket_spelling_round_trips(steps: list[str | int]) -> None:
    assert Path(to_expr(steps)).steps == tuple(steps)


@given(st.text(max_size=30))
def test_parser_never_crashes(expr: str) -> None:
    try:
        Path(expr)
    except PathError as e:
        assert e.column is not None and 1 <= e.column <= len(expr) + 1


def test_pointer_digit_tokens_past_u64_are_keys() -> None:
    key = str(1 << 64)
    assert PathSet([f"/{key}"]).extract(f'{{"{key}": 1}}'.encode()) == [1]
    assert PathSet([f"/{(1 << 64) - 1}"]).extract(b"[1]") != [1]  # an index too, just absent


def test_quoted_keys_with_lone_surrogates_match_escaped_keys() -> None:
    # json.loads keeps "\ud83d" as a lone surrogate; so does the path.
    ps = PathSet(['$["\\ud83d"]', '$["\\ud83d\\ude00"]'])
    assert ps.extract(b'{"\\ud83d": 1, "\\ud83d\\ude00": 2}') == [1, 2]
    assert ps.extract(b'{"\\ud83d\\ude00": 2}')[1] == 2
