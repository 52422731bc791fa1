"""Metamorphic testing of graders: does a verdict move the way a rewrite says it must?

For every case of a corpus (:mod:`.corpora`) and every grader, the base completion is scored once;
then every rewrite of :mod:`.rewrites` that fits the case's kind and the grader's target is applied
(with ``random.Random(f"{seed}:{rewrite}:{item}:{style}")``, so a seed fixes every text) and the
rewritten completion is scored. The rule a verdict must follow:

* a **preserving** rewrite: ``correct`` is unchanged (a correct completion stays correct, a wrong
  one stays wrong);
* a **breaking** rewrite: a completion judged correct becomes not correct (``correct`` False, or
  None: not paid). Cases whose base is not judged correct do not count for it (``skipped``);
* the **base** row (gold corpora only, whose completions are synthesised from the gold answer): the
  base completion is judged correct.

Cases whose base could not be scored (``correct`` None) count for no rewrite (``skipped``), and
neither does a rewritten completion whose verdict is a ``timeout`` (the machine's load decided it,
not the grader's policy; a crash, reason ``error``, is a failure). Per
rewrite and grader the suite reports ``n`` (cases that count), ``behaved`` and the share
``behaved / n``, with up to ``examples`` failing examples (the rewritten text and both verdicts).

Graders: ``format`` (strict think/answer format) gets the ``format`` rewrites; ``format_soft``
(a shape check that allows empty reasoning by policy) and ``stepwise`` (which grades reasoning
steps, not an answer) get none and are refused; every other verifier name or expression (gsm8k,
math, countdown, ``rg:TASK``, ``countdown+0.5*format``) gets the ``answer`` rewrites.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ..errors import ReasonkitError
from .corpora import Corpus
from .rewrites import REWRITES, Case, Rewrite
from reasonkit.tasks.registry import resolve_verifier
from reasonkit.verifiers.batch import score_row
from reasonkit.errors import did_you_mean

TIMEOUT = "timeout"  # reasonkit.verifiers.base.TIMEOUT (not imported at module level: keeps --help fast)

__all__ = ["Cell", "MetamorphicReport", "graders", "run_metamorphic", "BASE"]

BASE = "(base)"
_NOT_ANSWER_GRADERS = {"format_soft": "checks only the tag shape and allows empty reasoning by policy",
                       "stepwise": "grades reasoning steps, not a final answer"}


@dataclass
class Cell:
    rewrite: str
    preserves: bool | None  # None: the base row
    verifier: str
    n: int = 0
    behaved: int = 0
    skipped: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def share(self) -> float | None:
        return self.behaved / self.n if self.n else None

    @property
    def expectation(self) -> str:
        return {None: "correct", True: "unchanged", False: "not correct"}[self.preserves]

    def to_dict(self) -> dict[str, Any]:
        return {"rewrite": self.rewrite, "expect": self.expectation, "verifier": self.verifier, "n": self.n,
                "behaved": self.behaved, "share": self.share, "skipped": self.skipped, "failures": self.failures}


@dataclass
class MetamorphicReport:
    corpus: str
    seed: int
    cases: int
    cells: list[Cell]
    skipped: dict[str, int] = field(default_factory=dict)

    def cell(self, rewrite: str, verifier: str) -> Cell:
        for c in self.cells:
            if c.rewrite == rewrite and c.verifier == verifier:
                return c
        raise KeyError((rewrite, verifier))

    def to_dict(self) -> dict[str, Any]:
        return {"corpus": self.corpus, "seed": self.seed, "cases": self.cases, "skipped_rows": self.skipped,
                "cells": [c.to_dict() for c in self.cells]}


def graders(names: Sequence[str], corpus: Corpus) -> dict[str, tuple[Any, str]]:
    """``{name: (spec, target)}``; an unknown name, a grader no rewrite fits, or one whose reference
    fields the corpus lacks is a one-line error."""
    out = {}
    refs = corpus.cases[0].refs if corpus.cases else {}
    for name in names:
        if name in _NOT_ANSWER_GRADERS:
            raise ReasonkitError(f"--verifier {name}: {_NOT_ANSWER_GRADERS[name]}; no rewrite applies "
                                 "(use an answer verifier, or format)")
        spec = resolve_verifier(name)
        missing = [f for f in spec.fields if f not in refs]
        if missing and corpus.cases:
            raise ReasonkitError(f"--verifier {name}: needs reference field(s) {', '.join(missing)}, which corpus "
                                 f"{corpus.name} does not have (it has: {', '.join(sorted(refs)) or 'none'})")
        out[name] = (spec, "format" if name == "format" else "answer")
    return out


def _verdict(spec: Any, text: str, refs: dict[str, Any]):
    return score_row(spec, {"completion": text, **refs})


def _brief(v: Any) -> dict[str, Any]:
    return {"correct": v.correct, "extracted": v.extracted, "reason": v.reason}


def _example(case: Case, text: str, base: Any, got: Any) -> dict[str, Any]:
    gold = case.refs.get("answer", case.refs.get("target"))
    if isinstance(gold, str) and "####" in gold:
        gold = gold.rpartition("####")[2].strip()
    return {"item": case.item_id, "style": case.style, "gold": gold, "base": _brief(base), "got": _brief(got),
            "completion": text}


def run_metamorphic(corpus: Corpus, verifier_names: Sequence[str], rewrites: Sequence[str] | None = None,
                    seed: int = 0, examples: int = 3,
                    on_progress: Callable[[int, int], None] | None = None) -> MetamorphicReport:
    """Score every case and its rewrites with every grader (see the module docstring)."""
    specs = graders(verifier_names, corpus)
    chosen: list[Rewrite] = []
    for name in rewrites or list(REWRITES):
        if name not in REWRITES:
            raise ReasonkitError(f"--rewrite: {did_you_mean(name, list(REWRITES), 'rewrite')}")
        chosen.append(REWRITES[name])
    cells: dict[tuple[str, str], Cell] = {}
    if corpus.gold:
        for v in specs:
            cells[(BASE, v)] = Cell(BASE, None, v)
    for rw in chosen:
        for v, (_, target) in specs.items():
            if target in rw.targets:
                cells[(rw.name, v)] = Cell(rw.name, rw.preserves, v)

    for case in corpus.cases:
        bases = {v: _verdict(spec, case.completion, case.refs) for v, (spec, _) in specs.items()}
        if corpus.gold:
            for v, base in bases.items():
                cell = cells[(BASE, v)]
                if base.correct is None:
                    cell.skipped += 1
                    continue
                _count(cell, base.correct is True, case, case.completion, base, base, examples)
        for rw in chosen:
            targets = [v for v in specs if (rw.name, v) in cells]
            if not targets:
                continue
            text = rw.apply(case, random.Random(f"{seed}:{rw.name}:{case.item_id}:{case.style}"))
            if text is None or text == case.completion:
                continue
            for v in targets:
                base, cell = bases[v], cells[(rw.name, v)]
                if base.correct is None or (not rw.preserves and base.correct is not True):
                    cell.skipped += 1
                    continue
                got = _verdict(specs[v][0], text, case.refs)
                if got.reason == TIMEOUT:  # a verdict the machine's load decided, not the policy
                    cell.skipped += 1
                    continue
                ok = got.correct == base.correct if rw.preserves else got.correct is not True
                _count(cell, ok, case, text, base, got, examples)
        if on_progress:
            on_progress(1, len(corpus.cases))
    kept = [c for c in cells.values() if c.n or c.skipped or c.rewrite == BASE]  # drop rewrites that never applied
    return MetamorphicReport(corpus.name, seed, len(corpus.cases), kept, dict(corpus.skipped))


def _count(cell: Cell, ok: bool, case: Case, text: str, base: Any, got: Any, examples: int) -> None:
    cell.n += 1
    if ok:
        cell.behaved += 1
    elif len(cell.failures) < examples:
        cell.failures.append(_example(case, text, base, got))
