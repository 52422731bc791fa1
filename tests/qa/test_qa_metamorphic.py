"""The verifier QA suite over the shipped corpora: every verifier keeps its verdict under every
preserving rewrite, loses it under every breaking one, and judges the synthesised gold completions
correct.

One regression row per (corpus, verifier, rewrite). Where today's verifiers fail a rewrite the row
is ``xfail(strict=True)`` with the class of issue 26 it belongs to, so it flips (XPASS fails the
run) once the verifier is fixed -- then delete the mark. Bounded corpora (seeded, a few dozen items)
keep the module to seconds.
"""
from __future__ import annotations

import re
from functools import lru_cache

import pytest

from reasonkit.qa.corpora import load_corpus
from reasonkit.qa.metamorphic import BASE, run_metamorphic
from reasonkit.qa.rewrites import REWRITES

SEED = 0
CORPORA = {  # corpus: (kind, items, verifiers)
    "gsm8k": ("number", 32, ("gsm8k", "gsm8k_flexible", "math")),
    "math500": ("latex", 40, ("math",)),
    "countdown": ("countdown", 24, ("countdown", "format")),
}

# (corpus, rewrite, verifier) -> class of issue 26 the failure belongs to
GAPS = {
}


@lru_cache(maxsize=None)
def _report(corpus: str):
    _, limit, verifiers = CORPORA[corpus]
    return run_metamorphic(load_corpus(corpus, limit, SEED), verifiers, seed=SEED, examples=2)


def _rows():
    for corpus, (kind, _, verifiers) in CORPORA.items():
        for verifier in verifiers:
            target = "format" if verifier == "format" else "answer"
            names = [BASE] + [r.name for r in REWRITES.values() if kind in r.kinds and target in r.targets]
            for name in names:
                gap = GAPS.get((corpus, name, verifier))
                marks = [pytest.mark.xfail(strict=True, reason=f"verifier gap, issue 26 class {gap}")] if gap else []
                yield pytest.param(corpus, name, verifier, marks=marks, id=f"{corpus}-{name}-{verifier}")


@pytest.mark.parametrize("corpus, rewrite, verifier", list(_rows()))
def test_verdict_behaves(corpus, rewrite, verifier):
    cell = _report(corpus).cell(rewrite, verifier)
    assert cell.n >= 1, f"{rewrite} applied to no {corpus} case"
    assert cell.behaved == cell.n, (
        f"{cell.n - cell.behaved}/{cell.n} verdicts of {verifier} not {cell.expectation} under {rewrite}; "
        f"first: {cell.failures[0]}")


def test_every_gap_names_a_row_that_exists():
    rows = {(p.values[0], p.values[1], p.values[2]) for p in _rows()}
    assert set(GAPS) <= rows


def test_breaking_rewrites_skip_cases_judged_wrong():
    """A breaking rewrite of a completion the verifier already refuses says nothing: not counted."""
    corpus = load_corpus("gsm8k", 4, SEED)
    wrong = [type(c)(c.item_id, c.style, c.kind, c.completion, c.answer, c.wrong, {"answer": "#### 999999"})
             for c in corpus.cases]
    corpus.cases = wrong
    report = run_metamorphic(corpus, ["gsm8k"], ["hedge", "sign_off"], seed=SEED)
    hedge, sign_off, base = report.cell("hedge", "gsm8k"), report.cell("sign_off", "gsm8k"), report.cell(BASE, "gsm8k")
    assert (hedge.n, hedge.skipped) == (0, 4)
    assert sign_off.n == 4 and sign_off.behaved == 4  # wrong stays wrong
    assert base.n == 4 and base.behaved == 0 and len(base.failures) == 3


def _slow_then_fast(completion: str, answer: str):
    """A grader that crashes on bold text and runs out of time on hedges."""
    from reasonkit.verifiers.base import Verdict

    if "**" in completion:
        raise RuntimeError("boom")
    if re.search(r"\b(?:or|though|between)\b", completion):
        return Verdict(0.0, None, None, "timeout")
    return Verdict(1.0, True, answer, "correct")


def test_timeouts_are_skipped_and_crashes_are_failures(monkeypatch):
    from reasonkit.verifiers import base

    monkeypatch.setitem(base._REGISTRY, "qa_test", base.VerifierSpec("qa_test", _slow_then_fast, ("answer",), "t"))
    corpus = load_corpus("gsm8k", 8, SEED)
    corpus.cases = [c for c in corpus.cases if not re.search(r"\*\*|\b(?:or|though|between)\b", c.completion)]
    report = run_metamorphic(corpus, ["qa_test"], ["markdown_bold", "hedge"], seed=SEED)
    bold, hedge = report.cell("markdown_bold", "qa_test"), report.cell("hedge", "qa_test")
    assert bold.n == len(corpus.cases) > 0 and bold.behaved == 0  # a crash on a preserving rewrite fails
    assert bold.failures[0]["got"]["reason"] == "verifier_error:RuntimeError"
    assert (hedge.n, hedge.skipped) == (0, len(corpus.cases))  # timeouts: nothing to judge
