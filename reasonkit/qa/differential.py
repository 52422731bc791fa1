"""Differential testing: two graders over the same completions, and every completion they disagree on.

Completions: for a gold corpus (:mod:`.corpora`), each case's base completion plus every ``answer``
rewrite of it (:mod:`.rewrites`, seeded as in :mod:`.metamorphic`), so that the graders meet the
forms models write; for a run's ``samples.jsonl``, its scoreable rows as they are. Both graders
score every completion; a *disagreement* is a completion whose ``correct`` differs (``None`` --
could not score -- counts as its own value). Agreement counts: both correct, both not correct,
only A correct, only B correct, rows one of them could not score, and rows where one of them ran
out of time (``timeout``: the machine's load decided it, so it is never a disagreement).

Graders are verifier names or expressions (``gsm8k``, ``math``, ``rg:chain_sum``, ...) and two
reference graders that exist for this comparison only:

* ``math-verify``: the ``math`` verifier with its fast path off (every pair goes to math-verify);
  ``--a math --b math-verify`` checks the fast path's promise of identical verdicts;
* ``rg-native:TASK``: reasoning-gym's own pipeline for a task -- its ``extract_answer`` (the last
  ``<answer>`` block, by its regex) and the task's ``score_answer``, ``correct`` when the score is
  1 -- against which ``rg:TASK`` (reasonkit's extraction and timeouts around the same scorer) is
  compared.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import ReasonkitError
from .corpora import Corpus
from .rewrites import REWRITES
from reasonkit.verifiers.base import CORRECT, NO_ANSWER, NOT_EQUAL, Verdict, VerifierSpec
from reasonkit.verifiers.reasoning_gym import task_scorer, check_task
from reasonkit.tasks.registry import resolve_verifier
from reasonkit.verifiers.math import verify_math
from reasonkit.verifiers.batch import score_row

TIMEOUT = "timeout"  # reasonkit.verifiers.base.TIMEOUT

__all__ = ["resolve_grader", "DiffReport", "run_differential", "completions"]


def _native_rg(completion: str, *, answer: str, question: str = "", rg_metadata: Any = None, task: str):
    from reasoning_gym.utils import extract_answer

    extracted = extract_answer(completion)
    if extracted is None:
        return Verdict(0.0, False, None, NO_ANSWER)
    value = float(task_scorer(task)(answer=extracted, entry={"question": question, "answer": answer,
                                                             "metadata": rg_metadata or {}}))
    return Verdict(value, value >= 1.0, extracted, CORRECT if value >= 1.0 else NOT_EQUAL)


def resolve_grader(name: str) -> Any:
    """A verifier spec for ``name`` (see the module docstring); unknown names are one-line errors."""
    if name == "math-verify":
        return VerifierSpec("math-verify", verify_math, ("answer",), "math-verify alone (no fast path)",
                            {"fast": False})
    if name.startswith("rg-native:"):
        task = name.partition(":")[2]
        try:
            check_task(task)
        except ValueError as exc:
            raise ReasonkitError(f"grader {name!r}: {exc}") from None
        return VerifierSpec(name, _native_rg, ("answer", "question", "rg_metadata"),
                            "reasoning-gym's extract_answer + score_answer", {"task": task})

    return resolve_verifier(name)


@dataclass
class DiffReport:
    a: str
    b: str
    corpus: str
    completions: int
    counts: dict[str, int]
    disagreements: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "corpus": self.corpus, "completions": self.completions,
                "counts": self.counts, "disagreements": self.disagreements}


def completions(corpus: Corpus, seed: int = 0) -> list[tuple[str, str, str, dict[str, Any]]]:
    """``(item, source, text, refs)``: the base completions and, for gold corpora, their rewrites."""
    out = []
    for case in corpus.cases:
        out.append((case.item_id, "base" if corpus.gold else "sample", case.completion, case.refs))
        if not corpus.gold:
            continue
        for rw in REWRITES.values():
            if "answer" not in rw.targets:
                continue
            text = rw.apply(case, random.Random(f"{seed}:{rw.name}:{case.item_id}:{case.style}"))
            if text is not None and text != case.completion:
                out.append((case.item_id, rw.name, text, case.refs))
    return out


def run_differential(corpus: Corpus, a: str, b: str, seed: int = 0, limit_shown: int | None = None,
                     on_progress: Callable[[int, int], None] | None = None) -> DiffReport:
    """Score every completion with graders ``a`` and ``b`` and list where they disagree."""
    specs = {}
    for label, name in (("--a", a), ("--b", b)):
        spec = resolve_grader(name)
        refs = corpus.cases[0].refs if corpus.cases else {}
        missing = [f for f in spec.fields if f not in refs]
        if missing and corpus.cases:
            raise ReasonkitError(f"{label} {name}: needs reference field(s) {', '.join(missing)}, which "
                                 f"{corpus.name} does not have (it has: {', '.join(sorted(refs)) or 'none'})")
        specs[label] = spec
    texts = completions(corpus, seed)
    counts = {"both correct": 0, "both not correct": 0, "only A correct": 0, "only B correct": 0, "unscored": 0,
              "timeout": 0, "disagreements": 0}
    report = DiffReport(a, b, corpus.name, len(texts), counts)
    for item, source, text, refs in texts:
        if on_progress:
            on_progress(1, len(texts))
        row = {"completion": text, **refs}
        va, vb = score_row(specs["--a"], row), score_row(specs["--b"], row)
        if TIMEOUT in (va.reason, vb.reason):  # decided by the machine's load, not by either policy
            counts["timeout"] += 1
        elif va.correct is None or vb.correct is None:
            counts["unscored"] += 1
        elif va.correct and vb.correct:
            counts["both correct"] += 1
        elif va.correct:
            counts["only A correct"] += 1
        elif vb.correct:
            counts["only B correct"] += 1
        else:
            counts["both not correct"] += 1
        if va.correct == vb.correct or TIMEOUT in (va.reason, vb.reason):
            continue
        counts["disagreements"] += 1
        if limit_shown is None or len(report.disagreements) < limit_shown:
            report.disagreements.append({
                "item": item, "source": source, "completion": text,
                "a": {"correct": va.correct, "extracted": va.extracted, "reason": va.reason},
                "b": {"correct": vb.correct, "extracted": vb.extracted, "reason": vb.reason}})
    return report
