"""`rulejet run / check / explain / demo`: output contracts and bad input.

In-process through cli.main (capsys), plus one real subprocess run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rulejet.cli import main

RULES = """\
rules:
  - name: adult
    when: "user.age >= 18"
  - name: us
    when: 'country == "US"'
"""
EVENTS = [
    '{"user": {"age": 30}, "country": "US"}',
    '{"user": {"age": 12}, "country": "FR"}',
    "{bad",
    '{"user": {"age": 40}}',
]


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    events = tmp_path / "events.ndjson"
    events.write_text("\n".join(EVENTS) + "\n")
    return rules, events


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_run_json_is_one_object_with_the_counts(
    capsys: pytest.CaptureFixture[str], files: tuple[Path, Path]
) -> None:
    rules, events = files
    code, out, err = run(capsys, "run", str(rules), str(events), "--format", "json", "--quiet")
    assert code == 0, err
    got = json.loads(out)  # exactly one JSON document
    assert (got["events"], got["errors"], got["bytes"]) == (3, 1, events.stat().st_size)
    assert got["matches"] == {"adult": 2, "us": 1}
    assert isinstance(got["seconds"], float)
    assert [e["line"] for e in got["error_samples"]] == [3]


def test_run_text_names_the_file_of_each_malformed_line(
    capsys: pytest.CaptureFixture[str], files: tuple[Path, Path], tmp_path: Path
) -> None:
    rules, events = files
    other = tmp_path / "other.ndjson"
    other.write_text('{"user": {"age": 50}}\n\n{"user":\n')
    code, out, _ = run(capsys, "run", str(rules), str(events), str(other), "--quiet")
    assert code == 0
    assert f"{events}: line 3, column 2" in out
    assert f"{other}: line 3, column 9" in out


def test_strict_fails_naming_file_and_line(
    capsys: pytest.CaptureFixture[str], files: tuple[Path, Path]
) -> None:
    rules, events = files
    code, out, err = run(capsys, "run", str(rules), str(events), "--strict", "--quiet")
    assert code == 1 and out == ""
    assert f"{events}: expected a string key (line 3, column 2" in err


@pytest.mark.parametrize("kind", ["missing", "directory", "fifo", "device", "proc"])
def test_inputs_that_are_not_regular_files_are_refused(
    capsys: pytest.CaptureFixture[str], files: tuple[Path, Path], tmp_path: Path, kind: str
) -> None:
    """A pipe (even without a writer: no hang), a device or a /proc file
    (size 0, content anyway) cannot be mapped: a clear error, not 0 events."""
    rules, _ = files
    target = {
        "missing": str(tmp_path / "absent.ndjson"),
        "directory": str(tmp_path),
        "fifo": str(tmp_path / "fifo"),
        "device": "/dev/null",
        "proc": "/proc/self/status",
    }[kind]
    if kind == "fifo":
        os.mkfifo(target)
    code, out, err = run(capsys, "run", str(rules), target, "--format", "json", "--quiet")
    assert code == 1 and out == ""
    assert err.startswith("rulejet: error:") and target in err
    assert "Traceback" not in err


def test_mapped_file_refuses_a_pipe_without_hanging(tmp_path: Path) -> None:
    from rulejet import FileError, MappedFile

    os.mkfifo(tmp_path / "fifo")
    for target in (tmp_path / "fifo", "/proc/self/status"):
        with pytest.raises(FileError, match="not a regular file"):
            MappedFile(target)


def test_huge_thread_counts_are_fine(
    capsys: pytest.CaptureFixture[str], files: tuple[Path, Path]
) -> None:
    rules, events = files
    code, out, _ = run(
        capsys, "run", str(rules), str(events), "--threads", "100000000", "--format", "json"
    )
    assert code == 0
    assert json.loads(out)["matches"] == {"adult": 2, "us": 1}


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (b"rules:\n  - name: \xff\n    when: 'a == 1'\n", ":2:11:", "not UTF-8"),
        (b"rules: []\n1: a\n", ":2:1:", "unknown top-level key 1"),
        (b"rules:\n  - name: a\n    when: 'a == 1'\n    2: b\n", ":2:5:", "unknown key 2"),
        (b"rules:\n  - name: a\n    when_jsonlogic: true\n", ":3:21:", "JSONLogic mapping"),
        (b"rules:\n  - name: a\n    when_jsonlogic: 'a == 1'\n", ":3:21:", "JSONLogic mapping"),
        (
            b"rules:\n  - name: a\n    when: '" + b"(" * 70 + b"a" + b")" * 70 + b"'\n",
            ":3:",
            "nested more than 64 levels",
        ),
        (
            b"rules:\n  - name: a\n    when: '" + b" + ".join([b"a"] * 200) + b" == 1'\n",
            ":3:",
            "more than 128 levels deep",
        ),
        (
            b'{"rules": [{"name": "a", "when_jsonlogic": ' + b"[" * 5000 + b"]" * 5000 + b"}]}",
            ":1:1:",
            "nested too deeply",
        ),
        # json.loads accepts these constants, JSON does not; a string holding one is fine.
        (
            b'{"rules": [\n {"name": "NaN", "when_jsonlogic": {"==": [{"var": "a"}, NaN]}}]}',
            ":2:58:",
            "invalid JSON: NaN is not JSON",
        ),
        (
            b'{"rules": [\n {"name": "\\"Infinity", "when_jsonlogic": {">": [Infinity, 1]}}]}',
            ":2:50:",
            "invalid JSON: Infinity is not JSON",
        ),
        (b'{"rules": [{"name": "a", "x": -Infinity}]}', ":1:31:", "-Infinity is not JSON"),
        (b"rules:\n  - name: a\x01\n", ":2:12:", "unacceptable character #x0001"),
    ],
    ids=[
        "utf8",
        "int-key",
        "int-rule-key",
        "jl-bool",
        "jl-str",
        "parens",
        "depth",
        "json-deep",
        "json-nan",
        "json-infinity",
        "json-minus-infinity",
        "yaml-control-character",
    ],
)
def test_check_reports_bad_rule_files_with_position(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: bytes, where: str, message: str
) -> None:
    path = tmp_path / ("rules.json" if text.startswith(b"{") else "rules.yaml")
    path.write_bytes(text)
    for command in ("check", "run"):
        args = [command, str(path)] + ([str(path)] if command == "run" else [])
        code, _, err = run(capsys, *args)
        assert code == 1
        assert f"{path}{where}" in err and message in err, err
        assert "Traceback" not in err


def test_long_chains_and_deep_negations_check_fine(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    chain = " && ".join(f"a{i % 7} != {i}" for i in range(5000))
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"rules": [{"name": "long", "when": chain}]}))
    code, out, err = run(capsys, "check", str(path))
    assert code == 0, err
    assert "OK" in out


def test_explain_event_text_file_and_directory(
    capsys: pytest.CaptureFixture[str], files: tuple[Path, Path], tmp_path: Path
) -> None:
    rules, _ = files
    code, out, _ = run(capsys, "explain", str(rules), '{"user": {"age": 30}}')
    assert code == 0 and "MATCH adult" in out
    # A JSON string too long to be a file name is an event, not a path.
    code, out, err = run(capsys, "explain", str(rules), json.dumps("a" * 300))
    assert code == 0, err
    # From a file: its first line that is not blank.
    first_blank = tmp_path / "blank.ndjson"
    first_blank.write_text('\n\n{"user": {"age": 19}}\n')
    code, out, _ = run(capsys, "explain", str(rules), str(first_blank))
    assert code == 0 and "MATCH adult" in out
    code, out, err = run(capsys, "explain", str(rules), str(tmp_path))
    assert code == 1 and "is a directory" in err


def test_demo_json_prints_only_the_object(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "demo", "--events", "200", "--quiet", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["events"] == 200
    assert "generated 200 sample events" in err
    code, out, err = run(capsys, "demo", "--events", "-5")
    assert code == 2 and "--events" in err


def test_run_as_a_real_process(files: tuple[Path, Path]) -> None:
    rules, events = files
    cmd = [sys.executable, "-m", "rulejet.cli", "run", str(rules), str(events)]
    out = subprocess.run([*cmd, "--format", "json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["matches"] == {"adult": 2, "us": 1}


def test_json_output_refuses_routes_to_stdout(
    capsys: pytest.CaptureFixture[str], files: tuple[Path, Path], tmp_path: Path
) -> None:
    _, events = files
    rules = tmp_path / "r.yaml"
    rules.write_text(
        "sinks: {console: {stdout: true}}\n"
        "rules: [{name: r, when: 'user.age > 0', then: [{route: console}]}]\n"
    )
    code, out, err = run(capsys, "run", str(rules), str(events), "--format", "json")
    assert code == 1 and out == "" and "stdout" in err


def test_run_json_error_samples_name_their_file(
    capsys: pytest.CaptureFixture[str], files: tuple[Path, Path], tmp_path: Path
) -> None:
    rules, events = files
    other = tmp_path / "other.ndjson"
    other.write_text('{"user": {"age": 50}}\n{"user":\n')
    for inputs in ([events], [events, other]):
        code, out, err = run(capsys, "run", str(rules), *map(str, inputs), "--format", "json")
        assert code == 0, err
        samples = json.loads(out)["error_samples"]
        got = [(e["path"], e["line"]) for e in samples]
        assert got == [(str(events), 3), (str(other), 2)][: len(inputs)]


def test_run_over_several_files_sums_every_counter() -> None:
    from rulejet.cli import _sum
    from rulejet.runner import LineErrorInfo, RunStats

    def stats(n: int, threads: int) -> RunStats:
        return RunStats(
            events=n, bytes=10 * n, errors=1, seconds=0.5, matches={"r": n},
            eval_errors={"r": 1}, error_samples=[LineErrorInfo(n, 0, 1, "bad")], lines=n + 1,
            blank_lines=1, threads=threads, kernel="scalar", tags={"t": n}, routed={"s": n},
            native_allocations=n, actions_run={"r": n}, workers=threads,
        )  # fmt: skip

    total = _sum([("a", stats(2, 1)), ("b", stats(3, 4))]).as_dict()
    assert (total["events"], total["bytes"], total["errors"], total["seconds"]) == (5, 50, 2, 1.0)
    assert (total["lines"], total["blank_lines"], total["native_allocations"]) == (7, 2, 5)
    for key in ("matches", "tags", "routed", "actions_run"):
        assert list(total[key].values()) == [5], key
    assert total["eval_errors"] == {"r": 2}
    # Not counters: the most threads and worker processes any file ran with.
    assert (total["threads"], total["workers"]) == (4, 4)


@pytest.mark.parametrize("where", ["sink", "out"])
def test_log_sinks_create_missing_directories_as_path_sinks_do(
    capsys: pytest.CaptureFixture[str], files: tuple[Path, Path], tmp_path: Path, where: str
) -> None:
    """Found missing after the run, a path sink would have been written or not by the
    order of the routes (the first one written creates --out)."""
    from rulejet.log import Log

    _, events = files
    log_dir = "missing/parent/matches.log" if where == "sink" else "matches.log"
    rules = tmp_path / "r.yaml"
    rules.write_text(
        f"sinks: {{alerts: {{path: alerts.ndjson}}, durable: {{log: {log_dir}}}}}\n"
        "rules:\n"
        "  - {name: a, when: 'user.age > 18', then: [{route: durable}, {route: alerts}]}\n"
    )
    out = tmp_path / "out" / "sub" if where == "out" else tmp_path
    args = ["--out", str(out)]
    code, _, err = run(capsys, "run", str(rules), str(events), *args, "--format", "json")
    assert code == 0, err
    assert (out / "alerts.ndjson").read_text().count("\n") == 2
    assert [bytes(p) for _, p in Log.read(out / log_dir)] == [
        EVENTS[0].encode(),
        EVENTS[3].encode(),
    ]


def test_run_text_header_counts_the_malformed_lines_it_prints(
    capsys: pytest.CaptureFixture[str], files: tuple[Path, Path], tmp_path: Path
) -> None:
    rules, _ = files
    events = tmp_path / "bad.ndjson"
    events.write_text("{bad\n" * 30)
    code, out, _ = run(capsys, "run", str(rules), str(events), "--quiet")
    assert code == 0
    shown = out.split("malformed lines (")[1].splitlines()
    assert shown[0] == "first 10 of 30):"
    assert len([line for line in shown[1:] if line.startswith("  line ")]) == 10
