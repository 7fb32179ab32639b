"""The path extractor against json.loads, on every kernel."""

from __future__ import annotations

import contextlib
import json
import math
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import rulejet
from rulejet import MISSING, JSONError, PathSet, RawJSON

from .conftest import ticks_while
from .json_strategies import MISSING_MARK, documents, paths_into, to_expr, walk


def same(got: object, want: Any) -> bool:
    """Equality as json.loads defines values (containers via RawJSON)."""
    if want is MISSING_MARK:
        return got is MISSING
    if isinstance(want, (dict, list)):
        return isinstance(got, RawJSON) and got.decode() == want and json.loads(bytes(got)) == want
    if isinstance(want, float):
        return (
            type(got) is float and got == want and math.copysign(1, got) == math.copysign(1, want)  # type: ignore[arg-type]
        )
    return type(got) is type(want) and got == want


def test_value_types() -> None:
    doc = (
        b'{"s": "a\\"b\\u00e9\\ud83d\\ude00\\n", "i": -42, "big": 123456789012345678901234567890,'
        b' "f": 1.5e-7, "t": true, "n": null, "o": {"k": [1, 2]}, "a": [1, {"x": 2}],'
        b' "neg0": -0, "negf": -0.0, "lone": "\\ud800x", "e": ""}'
    )
    ps = PathSet(["s", "i", "big", "f", "t", "n", "o", "a", "o.k[1]", "a[1].x", "neg0", "negf",
                  "lone", "e", "nope", "o.k[5]"])  # fmt: skip
    got = ps.extract(doc)
    want = json.loads(doc)
    assert got[:6] == [want["s"], -42, 123456789012345678901234567890, 1.5e-7, True, None]
    assert isinstance(got[6], RawJSON) and bytes(got[6]) == b'{"k": [1, 2]}'
    assert got[6].decode() == {"k": [1, 2]}
    assert got[7].decode() == [1, {"x": 2}]
    assert got[8:10] == [2, 2]
    assert got[10] == 0 and type(got[10]) is int
    assert math.copysign(1, got[11]) == -1.0
    assert got[12] == "\ud800x"
    assert got[13:] == ["", MISSING, MISSING]


def test_duplicate_keys_last_wins() -> None:
    ps = PathSet(["a", "a.b", "a.c", "z"])
    doc = b'{"a": {"b": 1, "c": 2}, "z": 0, "a": {"c": 3}, "z": 9}'
    assert json.loads(doc) == {"a": {"c": 3}, "z": 9}
    got = ps.extract(doc)
    assert bytes(got[0]) == b'{"c": 3}'
    assert got[1:] == [MISSING, 3, 9]
    assert ps.extract(b'{"a": {"b": 1}, "a": 5}')[:2] == [5, MISSING]
    assert PathSet(["a.b"]).extract(b'{"a": {"b": 1, "b": 2}}') == [2]


@pytest.mark.parametrize(
    "text",
    [
        "0",
        "-0",
        "7",
        "-7",
        "123456789012345678",
        "-123456789012345678",
        "1234567890123456789",
        "99999999999999999999",
        "0.1",
        "-0.0",
        "0.000001",
        "123.456",
        "9007199254740992.0",
        "9007199254740993.5",
        "900719925474099.3",
        "1.7976931348623157",
        "0.1234567890123456789012",
        "1.00000000000000000000001",
        "38.9",
        "-23.491",
        "148.293",
        "1e5",
        "1.5E-3",
        "1.0",
        "10.10",
    ],
)
def test_numbers_as_float_gives_them(text: str) -> None:
    # Integers up to 18 digits and short decimals take a one-pass path;
    # the rest the general one: every value is what json.loads gives.
    want = json.loads(text)
    got = PathSet(["a", "b"]).extract('{"a":' + text + ',"b":[' + text + "]}")
    assert got[0] == want and type(got[0]) is type(want)
    assert math.copysign(1, got[0]) == math.copysign(1, want)
    assert json.loads(bytes(got[1])) == [want]


@pytest.mark.parametrize(
    "doc",
    [
        b'{"a":123,"a":"x"}',
        b'{"a":"x","a":-1.5e3}',
        b'{"a":"\\u0041","a":"plain"}',
        b'{"a":"plain","a":"\\u0041"}',
        b'{"a":[1,2],"a":true}',
        b'{"a":{"k":1},"a":null}',
        b'{"a":null,"a":{"k":1},"b":0}',
        b'{"a":1,"b":2,"a":3,"b":{"c":4}}',
    ],
)
def test_duplicate_leaf_keys_are_overwritten_whole(doc: bytes) -> None:
    # A leaf's slot is written anew by the last duplicate: no field of the
    # first value (flags, number, span) may survive into the result.
    ps = PathSet(["a", "b", "$.zz"])
    want = json.loads(doc)
    got = [g.decode() if isinstance(g, RawJSON) else g for g in ps.extract(doc)]
    assert got == [want.get("a", MISSING), want.get("b", MISSING), MISSING]


def test_escaped_keys_match_unescaped_paths() -> None:
    ps = PathSet(["a", "é", """$['q"']""", "$['\\u0000']"])
    doc = b'{"\\u0061": 1, "\\u00e9": 2, "q\\"": 3, "\\u0000": 4}'
    assert ps.extract(doc) == [1, 2, 3, 4]
    assert ps.extract('{"é": 5}') == [MISSING, 5, MISSING, MISSING]


def test_pointer_digit_tokens_match_keys_and_indexes() -> None:
    ps = PathSet(["/x/0", "$.x[0]", "$.x.0"])
    assert ps.extract(b'{"x": ["arr"]}') == ["arr", "arr", MISSING]
    assert ps.extract(b'{"x": {"0": "obj"}}') == ["obj", MISSING, "obj"]


def test_arrays_skip_after_last_wanted_index() -> None:
    ps = PathSet(["$[1]", "$[3].a"])
    assert ps.extract(b'[0, "one", 2, {"a": "x"}, [[["]"]]], {"}": 1}]') == ["one", "x"]
    assert ps.extract(b"[0]") == [MISSING, MISSING]


def test_root_path() -> None:
    assert PathSet(["$"]).extract(b" 12 ") == [12]
    assert bytes(PathSet(["$"]).extract(b'[1, "a"]')[0]) == b'[1, "a"]'


def test_skipped_parts_are_only_bracket_checked() -> None:
    # Documented: a subtree no path enters is skipped, not validated...
    ps = PathSet(["b"])
    assert ps.extract(b'{"a": [1, , 2], "b": 3}') == [3]
    # ...unless validate=True, which checks the whole document first.
    with pytest.raises(JSONError):
        ps.extract(b'{"a": [1, , 2], "b": 3}', validate=True)
    # Traversed parts are always validated, and brackets must balance.
    for bad in (b'{"a": [1, 2}, "b": 3', b'{"b": 03}', b'{"a": "\x01", "b": 1}', b'{"b": 3'):
        with pytest.raises(JSONError):
            ps.extract(bad)
    # Once every wanted key is seen, the rest of the object is skipped too.
    assert ps.extract(b'{"b": 3, "c": [1,,]}') == [3]
    with pytest.raises(JSONError):
        ps.extract(b'{"b": 3, "c": [1,,]}', validate=True)


def test_rest_of_object_skipped_only_when_no_wanted_key_can_follow() -> None:
    ps = PathSet(["a", "b"])
    # A later duplicate (plain or escaped) must still win.
    assert ps.extract(b'{"a": 1, "b": 2, "x": {"y": 1}, "a": 3}') == [3, 2]
    assert ps.extract(rb'{"a": 1, "b": 2, "x": 0, "\u0061": 4}') == [4, 2]
    # The key's text inside a value forces a careful parse, same result.
    assert ps.extract(rb'{"a": 1, "b": 2, "s": "\"a\"", "t": ["a"]}') == [1, 2]


def test_small_containers_skip_to_their_end(kernel: str) -> None:
    """Skipped containers that close within one kernel window are ended
    from a single classify: brackets and quotes inside strings, escapes,
    nesting and the window's edge (every length up to past 32 bytes) must
    give the same end as the general skip, and the next line's bytes never
    count."""
    ps = PathSet(["b", "x.y"])
    shapes = [
        '["{s}"]',
        '["{s}]"]',
        '{{"k":"{s}}}"}}',
        '["{s}\\"]"]',
        '["{s}\\\\"]',
        '[[1],"{s}"]',
        '["{s}",{{}}]',
        '{{"k":["{s}"]}}',
        "[]",
        "{{}}",
        '[ "{s}" ]',
    ]
    for n in range(0, 40):
        for shape in shapes:
            skipped = shape.format(s="x" * n)
            for doc in (f'{{"a":{skipped},"b":{n}}}', f'{{"b":{n},"x":{{"z":{skipped}}}}}'):
                want = json.loads(doc)
                assert ps.extract(doc.encode()) == [n, MISSING], doc
                # Captured whole when a path ends on it.
                got = PathSet(["a"]).extract(doc.encode())[0]
                assert same(got, want.get("a", MISSING_MARK)), doc
                packed = (doc + "\n" + '"]]}}"' * 8).encode()
                lines = ps.extract_lines(packed)
                assert lines.columns[0][0] == n and lines.errors[0][0] == 2, doc


def test_strings_never_end_on_the_next_line(kernel: str) -> None:
    """Loads may run past a line's end into the next; a quote found there
    does not close this line's string."""
    ps = PathSet(["a"])
    got = ps.extract_lines(b'{"b": 1, "a": "ab\n"}\n{"a": "x"}\n{"a": "q')
    assert got.columns[0] == [MISSING, MISSING, "x", MISSING]
    assert [e[0] for e in got.errors] == [1, 2, 4]
    assert all("unterminated string" in str(e) for e in got.errors)


@pytest.mark.parametrize("pad", [0, 1, 30, 55, 56, 57, 62, 63, 64, 65, 120, 127, 128, 200])
def test_rest_skip_across_blocks(kernel: str, pad: int) -> None:
    """The one-pass skip of an object's rest looks at 64-byte blocks: a
    later duplicate, an escape, or the end of the object may fall on
    either side of a block boundary; the next line's bytes never count."""
    ps = PathSet(["a", "b"])
    filler = '"f": "' + "x" * pad + '"'
    docs = {
        f'{{"a": 1, "b": 2, {filler}, "a": 3}}': [3, 2],
        f'{{"a": 1, "b": 2, {filler}, "\\u0061": 4}}': [4, 2],
        f'{{"a": 1, "b": 2, {filler}, "g": {{"a": 5}}, "h": "}}"}}': [1, 2],
        f'{{"a": 1, "b": 2, {filler}, "g": ["a", "b\\\\"]}}': [1, 2],
        f'{{"a": 1, "b": 2, {filler}}}': [1, 2],
    }
    for doc, want in docs.items():
        assert ps.extract(doc.encode()) == want, doc
        assert json.loads(doc)["a"] == want[0]
    # Lines packed together: what follows an object (the next line, with
    # its own "a" and backslashes) must not change this line's result.
    lines = [f'{{"a": {i}, "b": 0, {filler}}}' for i in range(3)]
    lines.insert(1, '{"a": "\\\\", "b": 1, "a": 9}')
    got = ps.extract_lines("\n".join(lines).encode())
    assert got.columns[0] == [0, 9, 1, 2]
    assert not got.errors


@pytest.mark.parametrize(
    ("doc", "offset", "message"),
    [
        (b"", 0, "empty document"),
        (b"   ", 3, "empty document"),
        (b'{"a": 1} x', 9, "unexpected data"),
        (b'{"a" 1}', 5, "expected ':'"),
        (b'{"a": tru}', 6, "invalid literal"),
        (b'{"a": -}', 6, "invalid number"),
        (b'{"a": 1.}', 8, "digit expected"),
        (b'{"a": "x\\q"}', 8, "invalid escape"),
        (b'{"a": "\xff"}', 7, "invalid UTF-8"),
        (b'{"a": NaN}', 6, "expected a value"),
        (b'{"a": [1, 2', 6, "unterminated"),
        (b'{"a": "abc', 6, "unterminated string"),
    ],
)
def test_errors_carry_offsets(kernel: str, doc: bytes, offset: int, message: str) -> None:
    ps = PathSet(["a"])
    with pytest.raises(JSONError) as info:
        ps.extract(doc)
    assert info.value.offset == offset, str(info.value)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_error_line_and_column() -> None:
    with pytest.raises(JSONError) as info:
        PathSet(["a"]).extract(b'{\n  "a":\n    tru\n}')
    assert (info.value.line, info.value.column) == (3, 5)


@given(doc=documents(), data=st.data())
def test_matches_json_loads(kernel: str, doc: tuple[Any, bytes], data: st.DataObject) -> None:
    value, text = doc
    paths = [data.draw(paths_into(value)) for _ in range(data.draw(st.integers(1, 6)))]
    ps = PathSet([to_expr(p) for p in paths])
    got = ps.extract(text)
    for steps, g in zip(paths, got, strict=True):
        assert same(g, walk(value, steps)), (steps, g, walk(value, steps))
    rulejet.validate(text)


@given(doc=documents(), data=st.data())
def test_every_prefix_is_handled(kernel: str, doc: tuple[Any, bytes], data: st.DataObject) -> None:
    value, text = doc
    ps = PathSet([to_expr(data.draw(paths_into(value)))])
    cut = data.draw(st.integers(0, len(text)))
    for fn in (lambda b: ps.extract(b), rulejet.validate, lambda b: ps.extract(b, validate=True)):
        try:
            fn(text[:cut])
        except JSONError as e:
            assert e.offset is not None and 0 <= e.offset <= cut


@given(
    doc=documents(),
    edits=st.lists(
        st.tuples(
            st.integers(0, 10**6), st.sampled_from(list(b'{}[]",:\\ 0-.eEtfnu\x00\x1f\xc3\xa9'))
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_mutations_agree_with_json_loads(
    kernel: str, doc: tuple[Any, bytes], edits: list[tuple[int, int]]
) -> None:
    text = bytearray(doc[1])
    for pos, byte in edits:
        if text:
            text[pos % len(text)] = byte
    mutated = bytes(text)
    try:
        expected: Any = json.loads(mutated)
        ok = True
    except (ValueError, RecursionError):
        ok = False
    try:
        rulejet.validate(mutated)
        accepted = True
    except JSONError:
        accepted = False
    # json.loads also takes NaN/Infinity, which RFC 8259 (and we) reject.
    if ok and not any(t in mutated for t in (b"NaN", b"Infinity")):
        assert accepted
        root = PathSet(["$"]).extract(mutated)[0]
        assert same(root, expected)
    if not ok:
        assert not accepted


@given(st.binary(max_size=300))
def test_random_bytes_never_crash(kernel: str, blob: bytes) -> None:
    ps = PathSet(["a", "$[0]", "a.b[2]", "/x/0"])
    for fn in (ps.extract, rulejet.validate, ps.extract_lines):
        with contextlib.suppress(JSONError):
            fn(blob)


def test_deep_nesting_rejected_cleanly(kernel: str) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(JSONError, match="nesting deeper") as info:
        rulejet.validate(deep)
    assert info.value.offset == 1024
    with pytest.raises(JSONError):
        rulejet.validate(b"[" * 100_000)
    # The extractor skips what no path enters with a counter, not recursion.
    assert PathSet(["$[0][0]"]).extract(deep)[0].decode.__name__ == "decode"
    assert PathSet(["a"]).extract(b'{"x": ' + deep + b', "a": 1}') == [1]
    with pytest.raises(JSONError):
        PathSet(["a"]).extract(b'{"x": ' + b"[" * 100_000 + b', "a": 1}')


def test_accepts_buffers_and_str() -> None:
    ps = PathSet(["a"])
    for doc in (b'{"a": 1}', bytearray(b'{"a": 1}'), memoryview(b'{"a": 1}'), '{"a": 1}'):
        assert ps.extract(doc) == [1]
    with pytest.raises(TypeError):
        ps.extract(12)  # type: ignore[arg-type]


def test_rawjson_is_zero_copy_and_pins_source(tmp_path: Any) -> None:
    path = tmp_path / "d.json"
    path.write_bytes(b'{"o": {"k": 1}}')
    mf = rulejet.MappedFile(path)
    with mf.lease() as view:
        (obj,) = PathSet(["o"]).extract(view)
    assert memoryview(obj).readonly and bytes(memoryview(obj)) == b'{"k": 1}'
    with pytest.raises(rulejet.BusyError):  # the value still points into the map
        mf.close()
    assert obj == b'{"k": 1}' and hash(obj) == hash(b'{"k": 1}') and len(obj) == 8
    del obj
    with pytest.raises(rulejet.BusyError):  # the lease's view could not be released
        mf.close()
    del view
    mf.close()


# ---- NDJSON batches ----


def test_extract_lines_columns_and_errors(kernel: str) -> None:
    buf = b'{"a": 1, "b": "x"}\n\n{"a": 2\r\n  \n{oops}\n{"b": [1]}\r\n[1]\n{"a": 3}'
    r = PathSet(["a", "b"]).extract_lines(buf)
    assert r.lines == 8 and r.blank_lines == 2
    assert r.columns[0] == [1, MISSING, MISSING, MISSING, MISSING, MISSING, MISSING, 3]
    assert r.columns[1][0] == "x" and bytes(r.columns[1][5]) == b"[1]"
    assert [(e.line, e.column) for e in r.errors] == [(3, 9), (5, 2)]
    assert r.errors[0].offset == buf.index(b'{"a": 2') + 8
    assert "expected" in r.errors[1].message
    s = PathSet(["a", "b"]).scan_lines(buf)
    assert (s.lines, s.errors, s.blank_lines, s.present) == (8, 2, 2, [2, 2])


@given(docs=st.lists(documents(), max_size=12), data=st.data())
def test_extract_lines_matches_per_document(
    kernel: str, docs: list[tuple[Any, bytes]], data: st.DataObject
) -> None:
    lines = [text.replace(b"\n", b" ").replace(b"\r", b" ") for _, text in docs]
    buf = b"\n".join(lines) + data.draw(st.sampled_from([b"", b"\n"]))
    exprs = ["$", "$.a", "$[0]", "$.user", "$.b[1]"]
    ps = PathSet(exprs)
    r = ps.extract_lines(buf)
    assert r.lines == len(rulejet.line_offsets(buf))  # the same line rules
    for j, line in enumerate(lines):
        if line.strip():
            want = ps.extract(line)
            got = [col[j] for col in r.columns]
            assert [bytes(g) if isinstance(g, RawJSON) else g for g in got] == [
                bytes(w) if isinstance(w, RawJSON) else w for w in want
            ]


def test_extract_lines_over_many_chunks() -> None:
    buf = b"".join(b'{"i": %d, "s": "%d"}\n' % (i, i) for i in range(150_000))
    r = PathSet(["i", "s"]).extract_lines(buf)
    assert r.lines == 150_000 and r.columns[0] == list(range(150_000))
    assert r.columns[1][-1] == "149999"
    # The native arrays became the lists' own: they grow, shrink and copy.
    col = r.columns[0]
    col.extend(range(10))
    del col[:149_000]
    col.append(-1)
    assert len(col) == 1011 and col[-1] == -1 and col[:2] == [149_000, 149_001]
    assert sys.getrefcount(col) >= 2 and col.copy() == col
    lines = b'{"i": 1}\nnot json\n{"i": 2}\n{}\n' * 3
    r = PathSet(["i"]).extract_lines(lines)  # uneven chunk estimates still fit
    assert r.columns[0] == [1, MISSING, 2, MISSING] * 3 and len(r.errors) == 3


def test_extract_lines_releases_gil() -> None:
    buf = b'{"a": {"b": [1, 2, 3]}, "c": "xxxxxxxxxxxxxxxxxxxx"}\n' * 400_000
    # 0.1 s: each of the ~7 native chunks may wait that long for the GIL.
    assert ticks_while(lambda: PathSet(["c"]).scan_lines(buf), 0.1) > 0


def test_str_documents_with_lone_surrogates_match_json_loads() -> None:
    # json.loads accepts a lone surrogate in a str; so does extract(str).
    text = json.dumps({"a": "x\ud800y", "b": ["\udfff"]}, ensure_ascii=False)
    want = json.loads(text)
    got = PathSet(["a", "b"]).extract(text)
    assert got[0] == want["a"] and got[1].decode() == want["b"]
    rulejet.validate(text)


def test_extract_lines_counts_what_it_found() -> None:
    ps = rulejet.PathSet(["a", "b.c", "d"])
    r = ps.extract_lines(b'{"a": 1, "b": {"c": 2}}\n{"a": null}\n\n{bad\n{"d": [1]}\n')
    assert (
        r.present == [sum(v is not rulejet.MISSING for v in col) for col in r.columns] == [2, 1, 1]
    )


def test_integers_past_pythons_digit_limit_are_json_errors() -> None:
    import sys

    digits = sys.get_int_max_str_digits() + 1
    doc = b'{"a": ' + b"1" * digits + b"}"
    with pytest.raises(ValueError):
        json.loads(doc)  # json.loads refuses them too
    with pytest.raises(JSONError) as info:
        PathSet(["a"]).extract(doc)
    assert (info.value.line, info.value.column) == (1, 7)
    assert PathSet(["b"]).extract(doc) == [MISSING]  # unread, nothing to convert


def test_extract_lines_reports_too_long_integers_per_line_and_goes_on() -> None:
    import sys

    big = b"7" * (sys.get_int_max_str_digits() + 1)
    ok = b"8" * sys.get_int_max_str_digits()  # at the limit: converts
    buf = (
        b'{"a": 1, "b": 2}\n{"a": x}\n{"b": 3, "a": '
        + big
        + b'}\n{"a": '
        + ok
        + b', "b": 5}\n{"a": 4}\n'
    )
    r = PathSet(["a", "b"]).extract_lines(buf)
    assert r.lines == 5
    assert r.columns == [[1, MISSING, MISSING, int(ok), 4], [2, MISSING, MISSING, 5, MISSING]]
    assert [(e.line, e.column) for e in r.errors] == [(2, 7), (3, 15)]  # in line order
    assert "digits" in r.errors[1].message
    assert r.present == [3, 2]  # the rejected line's values are not counted
