"""reasonkit.qa rewrites and corpora: seeded and varied, each doing what its docstring says, and the
completions they are applied to (gold corpora, a run's samples.jsonl)."""
from __future__ import annotations

import json
import random
import unicodedata

import pytest

from reasonkit.errors import ReasonkitError
from reasonkit.qa.corpora import load_corpus, load_samples
from reasonkit.qa.rewrites import REWRITES, Case, last_answer_span, split_think

NUMBER = Case("7", "gsm8k", "number", "She has 3 + 4 = 7 apples.\n#### 1234", "1234", "1240", {"answer": "#### 1234"})
R1 = Case("8", "r1", "number", "<think>\n3 * 6 = 18\n</think>\n\nShe pays **$18** in total.\n\n**Answer:** 18", "18", "21",
          {"answer": "18"})
LATEX = Case("9", "qwen_boxed", "latex", "So $x = 3$.\n\nThe final answer is\n\\[\n\\boxed{12}\n\\]", "12", "15",
             {"answer": "12"})
COUNTDOWN = Case("1", "r1", "countdown", "<think>\nTry things.\n</think>\n<answer>(3 + 5) * 2</answer>", "(3 + 5) * 2",
                 "3 + 5 + 2", {"numbers": [3, 5, 2], "target": 16})
CASES = {"number": NUMBER, "r1": R1, "latex": LATEX, "countdown": COUNTDOWN}
# answers under 1000 get no separators; no think block, no empty reasoning
NOT_APPLICABLE = {("thousands_separator", "latex"), ("thousands_separator", "r1"), ("empty_reasoning", "number"),
                  ("empty_reasoning", "latex")}
STYLES = ("R1", "Qwen2.5", "Llama-3", "SmolLM2", "any model")


def _applicable(case):
    return [r for r in REWRITES.values() if case.kind in r.kinds]


@pytest.mark.parametrize("name", list(REWRITES))
def test_docstring_names_a_style_and_the_effect(name):
    doc = REWRITES[name].fn.__doc__ or ""
    assert any(s in doc for s in STYLES), f"{name}: docstring names no output style"
    assert ("Preserves" in doc) == REWRITES[name].preserves and ("Breaks" in doc) == (not REWRITES[name].preserves)


@pytest.mark.parametrize("case_name, rewrite", [(c, r.name) for c, case in CASES.items() for r in _applicable(case)])
def test_seeded_deterministic_and_varied(case_name, rewrite):
    case, rw = CASES[case_name], REWRITES[rewrite]
    texts = [rw.apply(case, random.Random(seed)) for seed in range(24)]
    assert texts == [rw.apply(case, random.Random(seed)) for seed in range(24)]
    produced = {t for t in texts if t is not None}
    if (rewrite, case_name) in NOT_APPLICABLE:
        assert produced == set()
        return
    assert all(t != case.completion for t in produced)
    assert len(produced) >= 2, f"{rewrite} on {case_name}: one fixed text, not varied templates"


@pytest.mark.parametrize("case_name", list(CASES))
def test_invisible_chars_only_add_invisible_characters(case_name):
    case = CASES[case_name]
    for seed in range(12):
        text = REWRITES["invisible_chars"].apply(case, random.Random(seed))
        assert "".join(c for c in text if unicodedata.category(c) != "Cf") == case.completion
        assert text != case.completion


@pytest.mark.parametrize("case_name", ["number", "r1", "latex", "countdown"])
def test_think_tentative_leaves_the_reply_alone(case_name):
    case = CASES[case_name]
    for seed in range(8):
        text = REWRITES["think_tentative"].apply(case, random.Random(seed))
        head, reply = split_think(text)
        assert reply.strip() == split_think(case.completion)[1].strip()
        assert case.wrong in head


@pytest.mark.parametrize("case, rewrite, must_contain", [
    (NUMBER, "thousands_separator", ("1,234", "1 234")),
    (LATEX, "units", ("12\\,\\mathrm{m}", "12 \\text{ cm}", "12\\text{ dollars}", "12\\,\\mathrm{s}")),
    (R1, "units", ("$18", "18 dollars", "18 cm", "18 units", "18 minutes")),
    (NUMBER, "hash_marker", ("#### 1234",)),
    (LATEX, "boxed", ("\\boxed{12}",)),
])
def test_rewrite_writes_the_answer_in_the_new_form(case, rewrite, must_contain):
    for seed in range(8):
        text = REWRITES[rewrite].apply(case, random.Random(seed))
        assert any(form in text for form in must_contain), text


@pytest.mark.parametrize("case_name, rewrite", [(c, r) for c in ("number", "r1", "latex", "countdown")
                                                for r in ("hedge", "box_stuffing", "second_claim")])
def test_breaking_rewrites_add_the_wrong_answer(case_name, rewrite):
    case = CASES[case_name]
    for seed in range(8):
        text = REWRITES[rewrite].apply(case, random.Random(seed))
        assert case.wrong in text and text.count(case.wrong) > case.completion.count(case.wrong)


def test_thousands_separator_needs_an_answer_of_1000_or_more():
    small = Case("1", "gsm8k", "number", "So 999.\n#### 999", "999", "998", {})
    assert REWRITES["thousands_separator"].apply(small, random.Random(0)) is None


def test_empty_reasoning_empties_the_think_block():
    for seed in range(10):
        text = REWRITES["empty_reasoning"].apply(COUNTDOWN, random.Random(seed))
        inner = text[text.index("<think>") + 7:text.index("</think>")]
        assert not inner.strip() or all(unicodedata.category(c) == "Cf" or c.isspace() for c in inner)
        assert text.endswith("<answer>(3 + 5) * 2</answer>")
    assert REWRITES["empty_reasoning"].apply(NUMBER, random.Random(0)) is None  # no think block


@pytest.mark.parametrize("text, expected", [
    ("no tags", ("", "no tags")),
    ("<think>a</think> b", ("<think>a</think>", " b")),
    ("<think>a</think>x</think>y", ("<think>a</think>x</think>", "y")),
    ("<think>cut off", None),
])
def test_split_think(text, expected):
    assert split_think(text) == expected


@pytest.mark.parametrize("text, answer, expected", [
    ("118 and 18 apples", "18", (8, 10)),
    ("18.5 then 18", "18", (10, 12)),
    ("1,234 not 1,2345", "1,234", (0, 5)),
    ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}", (7, 18)),
    ("only 118", "18", None),
    ("x", "", None),
])
def test_last_answer_span(text, answer, expected):
    assert last_answer_span(text, answer) == expected


# --------------------------------------------------------------------------------------------- corpora

@pytest.mark.parametrize("corpus, styles", [
    ("gsm8k", {"gsm8k", "answer_is", "boxed", "r1"}),
    ("math500", {"solution", "minerva", "r1", "qwen_boxed"}),
    ("countdown", {"r1", "equation"}),
])
def test_gold_corpora_cover_every_base_style(corpus, styles):
    data = load_corpus(corpus, 8, seed=3)
    assert len(data.cases) == 8 and data.gold
    assert {c.style for c in data.cases} == styles
    assert all(c.wrong != c.answer for c in data.cases)


def test_corpus_items_are_drawn_by_seed():
    ids = lambda seed: [c.item_id for c in load_corpus("gsm8k", 10, seed).cases]  # noqa: E731
    assert ids(1) == ids(1) and ids(1) != ids(2)
    assert len(set(ids(1))) == 10


def test_unknown_corpus_is_one_line():
    with pytest.raises(ReasonkitError, match="did you mean 'gsm8k'"):
        load_corpus("gsm8", 5)


def _run_dir(tmp_path, rows, prefill="<think>\n"):
    (tmp_path / "config.json").write_text(json.dumps({"template": {"user": "{question}", "prefill": prefill}}))
    (tmp_path / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


def _row(i, completion, finish="stop", **extra):
    return {"benchmark": "gsm8k", "item_id": str(i), "adapter": "base", "sample": 0, "completion": completion,
            "finish_reason": finish, "reference": {"answer": "#### 18"}, "gsm8k.correct": True,
            "stepwise.correct": True, **extra}


def test_samples_read_as_the_verifiers_saw_them(tmp_path):
    run = _run_dir(tmp_path, [
        _row(0, "6 * 3 = 18\n</think>\nThe answer is 18."),
        _row(1, "still thinking", finish="length"),
        _row(2, "boom", finish="error"),
        _row(3, "I do not know</think>\nNo idea."),
    ])
    data = load_samples(run)  # the run directory is enough
    assert [c.item_id for c in data.cases] == ["0/0"]
    case = data.cases[0]
    assert case.completion.startswith("<think>\n6 * 3") and case.answer == "18" and case.wrong != "18"
    assert case.kind == "number" and case.refs == {"answer": "#### 18"} and not data.gold
    assert data.verifiers == ("gsm8k",)  # the run's verifiers, stepwise left out
    assert data.skipped == {"cut off (length)": 1, "failed request": 1, "no stated answer": 1}


@pytest.mark.parametrize("content, message", [
    ('{"completion": 3, "reference": {}}\n', "line 1: not a reasonkit eval row"),
    ('{"completion": "x"}\n', "line 1: not a reasonkit eval row"),
    ("", "no rows"),
    ("{oops\n", "line 1: malformed JSON"),
])
def test_bad_samples_are_one_line(tmp_path, content, message):
    path = tmp_path / "samples.jsonl"
    path.write_text(content)
    with pytest.raises(ReasonkitError, match=message):
        load_samples(path)


def test_in_place_rewrites_edit_the_boxed_answer_not_a_later_mention():
    """MATH solutions often go on after the box ("... $\\boxed{13}$. $$x \\equiv 13 \\pmod{18}.$$")."""
    case = Case("1", "solution", "latex", "So the answer is $\\boxed{13}$. $$x\\equiv 13\\pmod {18}.$$", "13", "21",
                {"answer": "13"})
    for seed in range(8):
        for name in ("hedge", "units", "markdown_bold"):
            text = REWRITES[name].apply(case, random.Random(seed))
            assert text.endswith("$$x\\equiv 13\\pmod {18}.$$") or name == "markdown_bold", (name, text)
        assert "\\boxed{13}" not in REWRITES["units"].apply(case, random.Random(seed))
