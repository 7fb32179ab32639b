"""Rule files (YAML and JSON): loading, and every problem reported at once."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from rulejet import Engine, InputError, RuleFileError, load_rule_file
from rulejet.rulefile import Problem, RuleFile

VALID_YAML = """\
# a comment
sinks:
  alerts: {path: alerts.ndjson}
  console: {stdout: true}
rules:
  - name: adult-us
    when: 'user.age >= 18 && user.profile.country == "US"'
    then: [count, {tag: adults}, {route: alerts}, stop]
    priority: 10
    tags: [demo]
  - name: from-jsonlogic
    when_jsonlogic: {">": [{"var": "http.status"}, 499]}
  - name: quiet
    when: "false"
    enabled: false
  - name: josé
    when: name.startsWith("Jo") || name == 'O"Brien'
"""

VALID_RULES = {
    "sinks": {"alerts": {"path": "alerts.ndjson"}, "console": {"stdout": True}},
    "rules": [
        {
            "name": "adult-us",
            "when": 'user.age >= 18 && user.profile.country == "US"',
            "then": ["count", {"tag": "adults"}, {"route": "alerts"}, "stop"],
            "priority": 10,
            "tags": ["demo"],
        },
        {"name": "from-jsonlogic", "when_jsonlogic": {">": [{"var": "http.status"}, 499]}},
        {"name": "quiet", "when": "false", "enabled": False},
        {"name": "josé", "when": 'name.startsWith("Jo") || name == \'O"Brien\''},
    ],
}


def _check_valid(rf: RuleFile, path: Path) -> None:
    assert rf.path == str(path)
    assert rf.sinks == VALID_RULES["sinks"]
    assert [s.name for s in rf.rules] == ["adult-us", "from-jsonlogic", "quiet", "josé"]
    adult, logic, quiet, jose = rf.rules
    assert adult.when == VALID_RULES["rules"][0]["when"]  # type: ignore[index]
    assert adult.when_jsonlogic is None
    assert adult.then == ["count", {"tag": "adults"}, {"route": "alerts"}, "stop"]
    assert (adult.priority, adult.tags, adult.enabled) == (10, ["demo"], True)
    assert logic.when is None
    assert logic.when_jsonlogic == {">": [{"var": "http.status"}, 499]}
    assert (logic.then, logic.priority, logic.tags) == ([], 0, [])
    assert quiet.enabled is False
    assert jose.when == 'name.startsWith("Jo") || name == \'O"Brien\''


@pytest.mark.parametrize("suffix", ["yaml", "json"])
def test_valid_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"rules.{suffix}"
    if suffix == "yaml":
        path.write_text(VALID_YAML, encoding="utf-8")
    else:
        path.write_text(json.dumps(VALID_RULES, indent=2, ensure_ascii=False), encoding="utf-8")
    rf = load_rule_file(path)
    _check_valid(rf, path)
    if suffix == "yaml":
        assert [(s.line, s.column) for s in rf.rules] == [(6, 5), (11, 5), (13, 5), (16, 5)]

    engine = Engine.from_file(path)
    assert engine.names == ["adult-us", "from-jsonlogic", "josé"]  # quiet is disabled
    assert engine.sinks == VALID_RULES["sinks"]
    event = {"user": {"age": 20, "profile": {"country": "US"}}, "http": {"status": 503}}
    assert engine.evaluate(event) == ["adult-us"]  # stop
    assert engine.evaluate({"http": {"status": 503}, "name": 'O"Brien'}) == [
        "from-jsonlogic",
        "josé",
    ]
    assert engine.rules[0].tags == ["demo"]


def test_route_to_undeclared_sink_is_fine_at_load_time(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("rules:\n  - name: r\n    when: 'n > 1'\n    then: [{route: later}]\n")
    rf = load_rule_file(path)
    assert rf.rules[0].then == [{"route": "later"}]
    assert rf.sinks == {}
    events = tmp_path / "ev.ndjson"
    events.write_bytes(b'{"n": 2}\n{"n": 0}\n')
    stats = Engine.from_file(path).run_file(events, out_dir=tmp_path / "out")
    assert stats.routed == {"later": 1}
    assert (tmp_path / "out" / "later.ndjson").read_bytes() == b'{"n": 2}\n'


BAD_YAML = """\
rules:
  - name: ok
    when: 'a > 1'
  - name: broken
    when: 'user.age >> 18'
  - name: plain
    when: a.b ==
  - name: ok
    when: 'true'
  - name: nowhen
    priority: 3
  - name: both
    when: 'true'
    when_jsonlogic: {"==": [1, 1]}
  - name: act
    when: 'true'
    then: [count, explode]
  - name: prio
    when: 'true'
    priority: high
    colour: red
  - name: regex
    when: 'a.matches("x{99999}")'
  - name: lists
    when: 'a in [b, 1]'
  - name: badtags
    when: 'true'
    tags: oops
    enabled: 1
"""


def test_every_problem_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_YAML, encoding="utf-8")
    with pytest.raises(RuleFileError) as info:
        load_rule_file(path)
    err = info.value
    got = [(p.line, p.column, p.message) for p in err.problems]
    assert got == [
        (5, 22, "rule 'broken': expected a value, found '>'"),
        (7, 17, "rule 'plain': expected a value, found end of expression"),
        (8, 5, "duplicate rule name 'ok' (first at rule 1)"),
        (10, 5, "rule 'nowhen' needs exactly one of 'when' and 'when_jsonlogic'"),
        (12, 5, "rule 'both' needs exactly one of 'when' and 'when_jsonlogic'"),
        (
            17,
            11,
            "rule 'act': unknown action 'explode' (use count, stop, {tag: NAME} or {route: NAME})",
        ),
        (21, 13, "unknown key 'colour' in rule 8"),
        (20, 15, "priority must be an integer"),
        (23, 22, err.problems[8].message),
        (25, 17, "rule 'lists': list literals may hold only literals"),
        (28, 11, "tags must be a list of strings"),
        (29, 14, "enabled must be true or false"),
    ]
    assert err.problems[8].message.startswith("rule 'regex': unsupported in matches(): regex")

    # Each condition problem quotes its source line with a caret under the spot.
    broken = err.problems[0]
    assert broken.source == "    when: 'user.age >> 18'"
    assert broken.source[broken.caret] == ">"
    assert broken.source[broken.caret - 1] == ">"  # the second '>' is the unexpected one
    assert broken.caret == broken.column - 1
    plain = err.problems[1]
    assert plain.caret == len("    when: a.b ==")  # just past the end of the condition
    regex = err.problems[8]
    assert regex.source[regex.caret :].startswith('"x{99999}"')
    lists = err.problems[9]
    assert lists.source[lists.caret :].startswith("[b, 1]")

    text = str(err)
    assert text.splitlines()[:3] == [
        f"{path}:5:22: error: rule 'broken': expected a value, found '>'",
        "      when: 'user.age >> 18'",
        "  " + " " * len("    when: 'user.age >") + "^",
    ]
    assert text.count(f"{path}:") == len(err.problems)
    # The exception itself points at the first problem.
    assert (err.line, err.column) == (5, 22)


def test_bad_expression_in_json(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(
        "{\n"
        '  "rules": [\n'
        '    {"name": "ok", "when": "a > 1"},\n'
        '    {"name": "broken", "when": "user.age >> 18"},\n'
        '    {"name": "esc", "when": "name == \\"x\\" &&"},\n'
        '    {"name": "ok", "when": "true"}\n'
        "  ]\n"
        "}\n",
        encoding="utf-8",
    )
    with pytest.raises(RuleFileError) as info:
        load_rule_file(path)
    broken, esc, dup = info.value.problems
    line4 = '    {"name": "broken", "when": "user.age >> 18"},'
    assert (broken.line, broken.column) == (4, line4.index(">>") + 2)
    assert broken.source == line4
    assert broken.source[broken.caret - 1 : broken.caret + 1] == ">>"
    assert broken.message == "rule 'broken': expected a value, found '>'"
    # Escapes move columns: the condition itself is shown, caret at the spot.
    assert esc.line == 5
    assert esc.source == 'name == "x" &&'
    assert esc.caret == len(esc.source)
    assert (dup.line, dup.message) == (6, "duplicate rule name 'ok' (first at rule 1)")


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("yaml", "rules:\n  - name: x\n    when: [unclosed\n", (4, 1)),
        ("json", '{"rules": [\n  {"name": "x",}\n]}', (2, 16)),
    ],
)
def test_syntax_errors(tmp_path: Path, name: str, text: str, where: tuple[int, int]) -> None:
    path = tmp_path / f"bad.{name}"
    path.write_text(text)
    with pytest.raises(RuleFileError) as info:
        load_rule_file(path)
    (problem,) = info.value.problems
    assert (problem.line, problem.column) == where
    assert problem.message.startswith(f"invalid {name.upper()}")


@pytest.mark.parametrize("text", ["", "rules: 5\n", "- a\n- b\n", "rules:\n  - 5\n"])
def test_shape_problems(tmp_path: Path, text: str) -> None:
    path = tmp_path / "shape.yaml"
    path.write_text(text)
    with pytest.raises(RuleFileError) as info:
        load_rule_file(path)
    assert info.value.problems


def test_unknown_top_level_key_and_bad_sink(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "sinks:\n  bad: {path: 5}\n  good: {path: g.ndjson}\n"
        "rules:\n  - name: r\n    when: 'true'\n"
        "extras: 1\n"
    )
    with pytest.raises(RuleFileError) as info:
        load_rule_file(path)
    messages = [p.message for p in info.value.problems]
    assert messages == [
        "unknown top-level key 'extras'",
        "sink 'bad' must be {path: FILE}, {stdout: true} or {log: DIR}"
        " (with an optional sync: group|always|interval|none)",
    ]
    assert [p.line for p in info.value.problems] == [7, 2]


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_top_level_keys_and_sink_names_are_found_where_written(tmp_path: Path, suffix: str) -> None:
    # Both names also appear earlier in the text (a rule's name, a route), where a text
    # search would put the caret.
    data = {
        "rules": [{"name": "extras", "when": "n == 1", "then": [{"route": "bad"}]}],
        "sinks": {"bad": {"path": 5}},
        "extras": 1,
    }
    path = tmp_path / f"r{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(data, indent=2))
    else:
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    lines = path.read_text().splitlines()
    q = '"' if suffix == ".json" else ""

    def spot(text: str, after: int = 0) -> tuple[int, int]:
        row = next(i for i, line in enumerate(lines) if i >= after and text in line)
        return row + 1, lines[row].index(text) + 1

    with pytest.raises(RuleFileError) as info:
        load_rule_file(path)
    where = [(p.line, p.column) for p in info.value.problems]
    sinks_row = spot(f"{q}sinks{q}:")[0]
    assert where == [spot(f"{q}extras{q}: 1"), spot(f"{q}bad{q}:", after=sinks_row)]


def test_keys_yaml_reads_as_other_types_are_found_where_written(tmp_path: Path) -> None:
    # yes: is True and ~: is None once loaded; "2": and 2: are different keys.
    path = tmp_path / "r.yaml"
    path.write_text(
        "rules:\n  - name: r\n    when: n == 1\n"
        'yes: 1\n~: 2\n"2": 3\n2: 4\n'
        "sinks:\n  on: {path: x}\n  'on': {path: y}\n"
    )
    with pytest.raises(RuleFileError) as info:
        load_rule_file(path)
    found = {(p.line, p.column, p.message.split(" (")[0]) for p in info.value.problems}
    assert found == {
        (4, 1, "unknown top-level key True"),
        (5, 1, "unknown top-level key None"),
        (6, 1, "unknown top-level key '2'"),
        (7, 1, "unknown top-level key 2"),
        (9, 3, "sink name True is not a string"),
    }


def test_error_types(tmp_path: Path) -> None:
    assert issubclass(RuleFileError, ValueError)
    assert issubclass(RuleFileError, InputError)
    with pytest.raises(FileNotFoundError):
        load_rule_file(tmp_path / "absent.yaml")
    with pytest.raises(FileNotFoundError):
        Engine.from_file(tmp_path / "absent.json")
    path = tmp_path / "bad.yaml"
    path.write_text("rules:\n  - name: r\n    when: '1 +'\n")
    with pytest.raises(ValueError, match=r"rule .r.: expected a value"):
        Engine.from_file(path)


def test_problem_str_without_line() -> None:
    assert str(Problem("f.yaml", 0, 0, "boom")) == "f.yaml: error: boom"
    assert str(Problem("f.yaml", 3, 7, "boom", "  when: x", 8)) == (
        "f.yaml:3:7: error: boom\n    when: x\n          ^"
    )


def test_yaml_and_json_rule_files_read_numbers_and_escapes_alike(tmp_path: Path) -> None:
    # yaml's SafeLoader (YAML 1.1) read 1e3 as a string and "\ud83d\ude00" as two lone
    # surrogates; JSON reads a number and one character.
    conditions = {
        "plain-exp": '{"===": [{"var": "a"}, 1e3]}',
        "dot-exp": '{"===": [{"var": "b"}, 1.5e3]}',
        "signed-exp": '{"===": [{"var": "a"}, 1E+3]}',
        "negative-exp": '{"===": [{"var": "c"}, 25e-1]}',
        "infinity": '{"===": [{"var": "a"}, 1e400]}',
        "pair": '{"===": [{"var": "s"}, "\\ud83d\\ude00"]}',
        "lone": '{"===": [{"var": "t"}, "x\\ud83d"]}',
    }
    yaml_text = "rules:\n" + "".join(
        f"  - name: {name}\n    when_jsonlogic: {cond}\n" for name, cond in conditions.items()
    )
    json_text = json.dumps({"rules": [{"name": n, "when_jsonlogic": "@" + n} for n in conditions]})
    for name, cond in conditions.items():
        json_text = json_text.replace(f'"@{name}"', cond)
    (tmp_path / "r.yaml").write_text(yaml_text)
    (tmp_path / "r.json").write_text(json_text)
    event = b'{"a": 1000, "b": 1500, "c": 2.5, "s": "\\ud83d\\ude00", "t": "x\\ud83d"}'
    expected = [n for n in conditions if n != "infinity"]
    for suffix in ("yaml", "json"):
        assert Engine.from_file(tmp_path / f"r.{suffix}").evaluate(event) == expected, suffix
    jl = load_rule_file(tmp_path / "r.yaml").rules[-2].when_jsonlogic
    assert jl["==="][1] == "\U0001f600"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1e3", 1000.0),
        ("-1.5E-3", -0.0015),
        ("12", 12),
        ("0x10", 16),
        (".inf", math.inf),
        ("-.inf", -math.inf),
        ("1e", "1e"),
        ("e3", "e3"),
        ("1e3x", "1e3x"),
        ('"\\ude00\\ud83d"', "\ude00\ud83d"),  # out of order: both stay lone
    ],
)
def test_yaml_rule_file_scalars(tmp_path: Path, text: str, value: object) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(f"rules:\n  - name: r\n    when_jsonlogic: {{'==': [1, {text}]}}\n")
    assert load_rule_file(path).rules[0].when_jsonlogic["=="][1] == value
    # The loader has its own tables: yaml's SafeLoader still reads YAML 1.1.
    assert yaml.safe_load("1e3") == "1e3"


def test_json_problems_are_placed_in_their_own_rule(tmp_path: Path) -> None:
    # The rule name "b" is also a value inside rule a; a text search for it from the
    # previous rule's line placed rule b's problem inside rule a.
    lines = [
        "{",
        '  "rules": [1, 2],',  # replaced by the later "rules", as json.loads does
        '  "r\\u0075les": [',
        "    {",
        '      "name": "a",',
        '      "when_jsonlogic": {"==": [{"var": "b"}, 1]}',
        "    },",
        "    {",
        '      "name": "b",',
        '      "when_jsonlogic": {"==": [{"var": "x"}, 1, 2]}',
        "    },",
        "    5,",
        '    {"when": "true", "name": "c", "tags": 3, "zz": {"name": "c"}}',
        "  ]",
        "}",
    ]
    path = tmp_path / "r.json"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RuleFileError) as info:
        load_rule_file(path)
    places = [(p.line, p.column, p.message.split(":")[0]) for p in info.value.problems]
    assert places == [
        (10, lines[9].index("{") + 1, "rule 'b'"),  # at the when_jsonlogic value
        (12, 5, "rule 3 is not a mapping"),
        (13, lines[12].index('{"name"') + 1, "unknown key 'zz' in rule 4"),
        (13, lines[12].index("3") + 1, "tags must be a list of strings"),
    ]


def test_json_number_spellings_stay_strings_outside_jsonlogic(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "rules:\n"
        "  - name: 123e4567\n"  # a hex-like id: a string, as YAML 1.1 reads it
        '    when: "x == 1"\n'
        "    tags: [8e12345, 1e3, -.5]\n"
        "    then: [{tag: 2026e11}]\n"
        "  - name: j\n"
        '    when_jsonlogic: {"in": [{"var": "x"}, [1e3, "1e3"]]}\n'
    )
    rf = load_rule_file(path)
    first, second = rf.rules
    assert first.name == "123e4567" and first.tags == ["8e12345", "1e3", "-.5"]
    assert all(type(t) is str for t in [first.name, *first.tags])
    assert second.when_jsonlogic == {"in": [{"var": "x"}, [1000.0, "1e3"]]}


@pytest.mark.parametrize(
    "when",
    [
        "user.age >= 18 &&\n      country >> 'US'",  # plain, folded into one line
        "|\n      user.age >= 18 &&\n      country >> 'US'",
        ">\n      user.age >= 18 &&\n      country >> 'US'",
        "|-  # a comment on the header line\n      user.age >= 18 &&\n\n      country >> 'US'",
        ">\n      user.age >= 18 &&\n        (a ||\n         b) &&\n      country >> 'US'",
        "\"user.age >= 18 &&\n      country >> 'US'\"",
        "'user.age >= 18 &&\n      country >> ''US'''",
    ],
    ids=["plain", "literal", "folded", "literal-comment", "folded-indented", "double", "single"],
)
def test_multi_line_condition_errors_point_into_the_file(tmp_path: Path, when: str) -> None:
    path = tmp_path / "r.yaml"
    text = f"rules:\n  - name: r\n    when: {when}\n"
    path.write_text(text)
    with pytest.raises(RuleFileError) as info:
        load_rule_file(path)
    (problem,) = info.value.problems
    lines = text.splitlines()
    row = next(i for i, line in enumerate(lines) if ">>" in line)
    assert (problem.line, problem.column) == (row + 1, lines[row].index(">>") + 2)
    assert problem.source == lines[row]
    assert problem.source[problem.caret - 1 : problem.caret + 1] == ">>"
    assert problem.message == "rule 'r': expected a value, found '>'"


def test_multi_line_condition_error_at_its_end_points_past_its_last_character(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("rules:\n  - name: r\n    when: |\n      a &&\n      b ==\n")
    with pytest.raises(RuleFileError) as info:
        load_rule_file(path)
    (problem,) = info.value.problems
    assert (problem.line, problem.column) == (5, len("      b ==") + 1)
    assert (problem.source, problem.caret) == ("      b ==", len("      b =="))


def test_multi_line_condition_with_escapes_points_at_the_scalar_start(tmp_path: Path) -> None:
    """Escapes move characters: the scalar's start, and the condition's own line."""
    path = tmp_path / "r.yaml"
    path.write_text('rules:\n  - name: r\n    when: "a == \\"x\\" &&\\n  b >> 1"\n')
    with pytest.raises(RuleFileError) as info:
        load_rule_file(path)
    (problem,) = info.value.problems
    assert (problem.line, problem.column) == (3, 11)
    assert problem.source == "  b >> 1"  # the condition's line holding the spot
    assert problem.source[problem.caret - 1 : problem.caret + 1] == ">>"


@pytest.mark.parametrize("char", ["\x01", "\ufffe", "\x7f", "\x0b"])
def test_characters_yaml_refuses_are_reported_at_their_line_and_column(
    tmp_path: Path, char: str
) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(f"rules:\r\n  - name: a\n    when: 'x {char}> 1'\n", encoding="utf-8")
    with pytest.raises(RuleFileError) as info:
        load_rule_file(path)
    (problem,) = info.value.problems
    assert (problem.line, problem.column) == (3, len("    when: 'x ") + 1)
    unacceptable = f"unacceptable character #x{ord(char):04x}"
    assert problem.message == f"invalid YAML: {unacceptable}: special characters are not allowed"
    # Shown as a visible replacement, so the caret lines up on a terminal.
    assert problem.source == "    when: 'x \ufffd> 1'"
    assert problem.source[problem.caret] == "\ufffd"
