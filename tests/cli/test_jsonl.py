"""The shared JSONL reader (reasonkit/jsonl.py) and its one-line errors in both CLIs' wording."""
from __future__ import annotations

import pytest

from reasonkit.errors import ReasonkitError
from reasonkit.jsonl import parse_jsonl


def test_rows_with_line_numbers_and_blank_lines_skipped():
    text = '{"a": 1}\n\n{"a": 2}\n   \n'
    assert parse_jsonl(text, "f.jsonl") == [(1, {"a": 1}), (3, {"a": 2})]
    assert parse_jsonl("", "f.jsonl") == []


@pytest.mark.parametrize("text,message", [
    ('{"a": 1}\n{"a": ', "f.jsonl line 2: malformed JSON (Expecting value at column 7)"),
    ('[1, 2]', "f.jsonl line 1: expected a JSON object, got list"),
    ('{"a": 1}\n"text"', "f.jsonl line 2: expected a JSON object, got str"),
])
def test_errors_name_source_and_line(text, message):
    with pytest.raises(ReasonkitError) as err:
        parse_jsonl(text, "f.jsonl")
    assert str(err.value) == message


def test_eval_data_file_error_names_the_flag(tmp_path):
    from reasonkit.tasks.data import read_local

    bad = tmp_path / "items.jsonl"
    bad.write_text('{"question": "q", "answer": "1"}\nnot json\n')
    with pytest.raises(ReasonkitError, match=r"^--data .*items.jsonl line 2: malformed JSON"):
        read_local(bad)


@pytest.mark.parametrize("line,reason", [
    ('{"a": ' + "9" * 5000 + "}", "Exceeds the limit"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
])
def test_json_the_parser_refuses_is_one_line_too(line, reason):
    with pytest.raises(ReasonkitError) as err:
        parse_jsonl('{"a": 1}\n' + line, "f.jsonl")
    assert str(err.value).startswith("f.jsonl line 2: unreadable JSON (")
    assert reason in str(err.value) and "\n" not in str(err.value)
