"""``--template`` / ``--system`` / ``--prefill`` values that name files (issue 28, item 4): .txt / .md
files are read, .jinja files are read with their ``{{ field }}`` placeholders, other existing files and
directories are refused in one line listing the extensions read, and a template with no ``{field}``
is refused unless ``--constant-prompt`` (CLI through CliRunner, fake engine, no model)."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from reasonkit.cli import main
from reasonkit.errors import ReasonkitError
from reasonkit.tasks.prompts import jinja_to_format, prompt_text

from cli_checks import one_line_error, use_fake_engine


def eval_args(out, *more):
    return ["eval", "--limit", "2", "-o", str(out), "-q", *more]


@pytest.mark.parametrize("name, content, flag, expected_in_prompt", [
    ("prompt.txt", "Solve: {question}\n", "--template", "<|user|>Solve: "),
    ("prompt.md", "# Task\n{question}\n", "--template", "<|user|># Task\n"),
    ("prompt.jinja", "Question: {{ question }}\nAnswer:", "--template", "<|user|>Question: "),
    ("prompt.j2", "Q: {{question}} {not a field}", "--template", "? {not a field}\n<|assistant|>"),
    ("system.txt", "You are terse.\n", "--system", "<|system|>You are terse.\n"),
    ("prefill.md", "Let me think.", "--prefill", "<|assistant|>Let me think."),
])
def test_a_text_file_is_read_not_sent_as_its_name(tmp_path, monkeypatch, name, content, flag, expected_in_prompt):
    seen: list[str] = []
    use_fake_engine(monkeypatch, prompts=seen)
    f = tmp_path / name
    f.write_text(content, encoding="utf-8")
    res = CliRunner().invoke(main, eval_args(tmp_path / "o", flag, str(f)))
    assert res.exit_code == 0, res.output
    assert len(seen) == 2 and all(expected_in_prompt in p for p in seen), seen[0]
    assert all(str(f) not in p and name not in p for p in seen)
    assert "Janet" in seen[0] and seen[0] != seen[1]  # each item still gets its own question
    assert "{question}" not in seen[0]


@pytest.mark.parametrize("flag", ["--template", "--system", "--prefill"])
@pytest.mark.parametrize("kind", ["pdf", "dir", "missing-txt", "json-for-system"])
def test_a_file_of_a_kind_not_read_is_one_line(tmp_path, monkeypatch, flag, kind):
    use_fake_engine(monkeypatch)
    if kind == "pdf":
        target = tmp_path / "prompt.pdf"
        target.write_bytes(b"%PDF-1.4")
        needles = [f"{flag} {target}", "not read", ".txt, .md, .jinja"]
    elif kind == "dir":
        target = tmp_path / "prompts"
        target.mkdir()
        needles = [f"{flag} {target}", "is a directory", ".txt"]
    elif kind == "missing-txt":
        target = tmp_path / "prompt.txt"
        needles = [f"{flag} {target}", "no such file"]
    else:
        target = tmp_path / "t.json"
        target.write_text('{"user": "{question}"}')
        if flag == "--template":  # a .json template file is read by --template: not an error
            res = CliRunner().invoke(main, eval_args(tmp_path / "o", flag, str(target)))
            assert res.exit_code == 0, res.output
            return
        needles = [f"{flag} {target}", "not read", ".jinja, .j2"]
    line = one_line_error(CliRunner().invoke(main, eval_args(tmp_path / "o", flag, str(target))), *needles)
    if flag != "--template":
        assert ".json," not in line and ".yaml" not in line  # only --template reads template files
    assert not (tmp_path / "o" / "samples.jsonl").exists()


@pytest.mark.parametrize("value", ["Answer {question} briefly.", "notes.txt is the name of a file I mention",
                                   "3.5", "<think>", ""])
def test_plain_text_values_stay_text(value):
    assert prompt_text("--system", value) == value


def test_constant_template_is_refused_unless_asked_for(tmp_path, monkeypatch):
    seen: list[str] = []
    use_fake_engine(monkeypatch, prompts=seen)
    one_line_error(CliRunner().invoke(main, eval_args(tmp_path / "o", "--template", "Solve the problem.")),
                   "every item would get the same prompt", "--constant-prompt")
    f = tmp_path / "same.txt"
    f.write_text("Solve the problem.")
    one_line_error(CliRunner().invoke(main, eval_args(tmp_path / "o", "--template", str(f))), "same prompt")
    assert not seen
    res = CliRunner().invoke(main, eval_args(tmp_path / "o", "--template", "Solve the problem.", "--constant-prompt"))
    assert res.exit_code == 0, res.output
    assert len(seen) == 2 and seen[0] == seen[1]
    # a field in the system prompt is enough: items differ
    res = CliRunner().invoke(main, eval_args(tmp_path / "o2", "--template", "Solve it.", "--system", "Q: {question}"))
    assert res.exit_code == 0, res.output


def test_train_config_refuses_a_constant_template(tmp_path):
    from reasonkit.grpo.config import TrainConfig
    from reasonkit.grpo.build import build_benchmark

    with pytest.raises(ReasonkitError, match="same prompt"):
        build_benchmark(TrainConfig(dataset="gsm8k", template="Solve the problem.", output=str(tmp_path)))
    bench = build_benchmark(TrainConfig(dataset="gsm8k", template="Solve the problem.", constant_prompt=True,
                                        output=str(tmp_path)))
    assert bench.template.user == "Solve the problem."


@pytest.mark.parametrize("text, expected", [
    ("Q: {{ question }}\nA:", "Q: {question}\nA:"),
    ("{{numbers}} -> {{ target }}", "{numbers} -> {target}"),
    ("set {a, b}: {{ question }}", "set {{a, b}}: {question}"),
])
def test_jinja_placeholders_become_fields(text, expected):
    assert jinja_to_format(text, "t") == expected


@pytest.mark.parametrize("text", ["{% for x in xs %}{{ x }}{% endfor %}", "{{ question | upper }}",
                                  "{# note #}{{ question }}"])
def test_jinja_beyond_placeholders_is_refused(text):
    with pytest.raises(ReasonkitError, match="only {{ field }} placeholders"):
        jinja_to_format(text, "--template t.jinja")
