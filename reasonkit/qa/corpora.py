"""Where the QA suite's completions come from: a gold corpus or a run's ``samples.jsonl``.

**Gold corpora** (``gsm8k``: the shipped GSM8K test set; ``math500``: the shipped MATH-500;
``countdown``: the built-in Countdown generator's test tasks; ``rg:TASK``: a reasoning-gym task's
test items). ``limit`` items are drawn with ``random.Random(seed)`` (all of them without a limit),
and for each a *correct completion* is synthesised from the gold answer in one of several base
styles, taken in turn so that every style is covered:

* GSM8K: the item's own solution (calculator notes removed) ending in ``#### N``; the same
  reasoning ending "The answer is N." (Llama-3 8-shot CoT); ending "$\\boxed{N}$" (Qwen2.5-Math);
  inside ``<think>`` with a reply "**Answer:** N" (R1 distills).
* MATH-500: the item's own solution (its ``\\boxed{}``); the reasoning unboxed with Minerva's
  "Final Answer: The final answer is $G$. I hope it is correct."; ``<think>`` + a boxed reply;
  the reasoning and a display ``\\[\\boxed{G}\\]``.
* Countdown: ``<think>…</think>`` then ``<answer>EXPR</answer>`` or ``<answer>EXPR = T</answer>``.
* reasoning-gym: ``<think>…</think>`` or plain reasoning, then ``<answer>ANSWER</answer>``.

**Samples** (``reasonkit eval`` output, rows as :mod:`reasonkit.eval.store` writes them): each row's
text as the verifiers saw it (the benchmark's ``score_prefix`` from the run's ``config.json``, the
completion, its ``stop_string``), its ``reference`` fields, and the answer it states as the
verifiers extract it. Rows of failed requests, cut-off completions (``finish_reason`` ``length``)
and rows stating no answer are left out (counted in ``skipped``).
"""
from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ReasonkitError
from ..files import read_json, read_text
from ..jsonl import parse_jsonl
from .rewrites import Case, split_think
from reasonkit.verifiers.gsm8k import parse_gsm8k_gold
from reasonkit.verifiers import last_boxed_content, extract_gsm8k_answer, last_tag_content
from reasonkit.tasks.registry import generate_countdown
from reasonkit.verifiers.base import VerifierLookupError
from reasonkit.verifiers.reasoning_gym import generate_items
from reasonkit.errors import did_you_mean
from reasonkit.tasks.prompts import PromptTemplate

__all__ = ["Corpus", "CORPORA", "load_corpus", "load_samples"]

CORPORA = ("gsm8k", "math500", "countdown", "rg:TASK")
_DATA = Path(__file__).resolve().parent.parent / "data"
_DEFAULT_VERIFIERS = {"number": ("gsm8k", "gsm8k_flexible", "math"), "latex": ("math",),
                      "countdown": ("countdown", "format"), "text": ()}


@dataclass
class Corpus:
    name: str
    cases: list[Case]
    gold: bool  # synthesised correct completions (the base must be judged correct)
    verifiers: tuple[str, ...]  # the graders that fit it by default
    skipped: dict[str, int] = field(default_factory=dict)


def _pick(n: int, limit: int | None, seed: int) -> list[int]:
    if limit is None or limit >= n:
        return list(range(n))
    return sorted(random.Random(seed).sample(range(n), limit))


def _wrong_number(answer: str, rng: random.Random) -> str:
    value = parse_gsm8k_gold(answer)
    if value is None:
        return str(rng.randint(2, 97))
    step = rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    out = value + step if rng.random() < 0.5 or value - step < 0 else value - step
    return str(out.numerator) if out.denominator == 1 else str(float(out))


def _wrong_latex(answer: str, rng: random.Random) -> str:
    if re.fullmatch(r"-?\d{1,12}", answer.strip()):
        return _wrong_number(answer.strip(), rng)
    return str(rng.randint(2, 97))  # a gold that is no integer never equals an integer


def _wrong_expr(numbers: list[int], target: int) -> str:
    for op in (" + ", " * ", " - "):
        expr = op.join(str(n) for n in numbers)
        value = sum(numbers) if op == " + " else (_product(numbers) if op == " * " else numbers[0] - sum(numbers[1:]))
        if value != target:
            return expr
    return f"({numbers[0]} + {numbers[0]})"


def _product(numbers: list[int]) -> int:
    out = 1
    for n in numbers:
        out *= n
    return out


# ------------------------------------------------------------------------------------ gold corpora

def _gsm8k(limit: int | None, seed: int) -> Corpus:
    rows = [r for _, r in parse_jsonl(read_text(_DATA / "gsm8k_test.jsonl"), "gsm8k_test.jsonl")]
    cases = []
    for k, i in enumerate(_pick(len(rows), limit, seed)):
        rng = random.Random(f"{seed}:gsm8k:{i}")
        body, _, gold = rows[i]["answer"].rpartition("####")
        body, gold = re.sub(r"<<[^>]*>>", "", body).strip(), gold.strip()
        last = body.splitlines()[-1] if body else ""
        style, text = [
            ("gsm8k", f"{body}\n#### {gold}"),
            ("answer_is", f"{body}\n{rng.choice(['The answer is', 'The final answer is'])} {gold}."),
            ("boxed", f"{body}\n\nTherefore, the final answer is $\\boxed{{{gold}}}$."),
            ("r1", f"<think>\n{body}\n</think>\n\n{last}\n\n**Answer:** {gold}"),
        ][k % 4]
        # the gold number, not the whole solution: the suite tests reading the completion, not the gold
        cases.append(Case(str(i), style, "number", text, gold, _wrong_number(gold, rng), {"answer": gold}))
    return Corpus("gsm8k", cases, True, _DEFAULT_VERIFIERS["number"])


def _unbox(text: str) -> str:
    content = last_boxed_content(text)
    pos = text.rfind("\\boxed{")
    if content is None or pos < 0:
        return text
    end = text.find("}", pos + len("\\boxed{") + len(content))
    return text[:pos] + content + text[end + 1:] if end >= 0 else text


def _math500(limit: int | None, seed: int) -> Corpus:
    rows = [r for _, r in parse_jsonl(read_text(_DATA / "math500_test.jsonl"), "math500_test.jsonl")]
    cases, skipped = [], 0
    for k, i in enumerate(_pick(len(rows), limit, seed)):
        rng = random.Random(f"{seed}:math500:{i}")
        solution, gold = rows[i]["solution"].strip(), str(rows[i]["answer"]).strip()
        shown = last_boxed_content(solution)
        if not shown:
            skipped += 1
            continue
        plain = _unbox(solution)
        style, text, stated = [
            ("solution", solution, shown),
            ("minerva", f"{plain}\n\nFinal Answer: The final answer is ${gold}$. I hope it is correct.", gold),
            ("r1", f"<think>\n{plain}\n</think>\n\nThe answer is $\\boxed{{{gold}}}$.", gold),
            ("qwen_boxed", f"{plain}\n\nThe final answer is\n\\[\n\\boxed{{{gold}}}\n\\]", gold),
        ][k % 4]
        cases.append(Case(str(i), style, "latex", text, stated, _wrong_latex(gold, rng), {"answer": gold}))
    return Corpus("math500", cases, True, _DEFAULT_VERIFIERS["latex"], {"no boxed answer": skipped} if skipped else {})


def _countdown(limit: int | None, seed: int) -> Corpus:
    cases = []
    for i in range(500 if limit is None else limit):
        task = generate_countdown(random.Random(f"countdown-{2 * seed}-{i}"))  # the eval test stream
        nums, target, expr = task["numbers"], task["target"], task["solution"]
        style, text = [
            ("r1", f"<think>\nI need {target} from {nums}. Combining them: {expr} works.\n</think>\n<answer>{expr}</answer>"),
            ("equation", f"<think>\nLet me combine the numbers step by step.\n</think>\n<answer>{expr} = {target}</answer>"),
        ][i % 2]
        cases.append(Case(str(i), style, "countdown", text, expr, _wrong_expr(nums, target),
                          {"numbers": nums, "target": target}))
    return Corpus("countdown", cases, True, _DEFAULT_VERIFIERS["countdown"])


def _reasoning_gym(name: str, limit: int | None, seed: int) -> Corpus:
    try:
        items = generate_items(name[3:], "test", seed=seed, limit=limit or 100)
    except ImportError:
        raise ReasonkitError(f"--corpus {name}: needs reasoning-gym (pip install 'reasonkit[rg]')") from None
    except (VerifierLookupError, ValueError, TypeError) as exc:
        raise ReasonkitError(f"--corpus {name}: {exc}") from None
    cases = []
    answers = [it["answer"] for it in items]
    for k, it in enumerate(items):
        rng = random.Random(f"{seed}:{name}:{k}")
        others = [a for a in answers if a != it["answer"]]
        wrong = rng.choice(others) if others else it["answer"] + "0"
        text = [f"<think>\nLet me work it out.\n</think>\n<answer>{it['answer']}</answer>",
                f"Let me solve this step by step.\nSo the result follows.\n<answer>{it['answer']}</answer>"][k % 2]
        cases.append(Case(it["id"], ["r1", "plain"][k % 2], "text", text, it["answer"], wrong,
                          {"answer": it["answer"], "question": it["question"], "rg_metadata": it["rg_metadata"]}))
    task = name[3:].partition(":")[0]
    return Corpus(name, cases, True, (f"rg:{task}",))


def load_corpus(name: str, limit: int | None = None, seed: int = 0) -> Corpus:
    """A gold corpus by name (see the module docstring); a bad name is a one-line error."""
    if limit is not None and limit < 1:
        raise ReasonkitError(f"--limit {limit}: choose 1 or more items")
    if name == "gsm8k":
        return _gsm8k(limit, seed)
    if name in ("math500", "math"):
        return _math500(limit, seed)
    if name == "countdown":
        return _countdown(limit, seed)
    if name.startswith("rg:") and len(name) > 3:
        return _reasoning_gym(name, limit, seed)

    raise ReasonkitError(f"--corpus: {did_you_mean(name, CORPORA, 'corpus')}")


# ----------------------------------------------------------------------------------------- samples

def _kind(row: dict[str, Any], refs: dict[str, Any]) -> str:
    bench = str(row.get("benchmark") or "")
    if bench.startswith("rg:"):
        return "text"
    if bench == "math500":
        return "latex"
    if bench == "countdown" or ("numbers" in refs and "target" in refs):
        return "countdown"

    return "number" if parse_gsm8k_gold(refs.get("answer")) is not None else "latex"


def _stated(kind: str, text: str) -> str | None:
    """The answer the completion states, as its verifiers find it (None: it states none)."""
    parts = split_think(text)
    if parts is None:
        return None
    reply = parts[1]
    if kind == "number":
        m, _ = extract_gsm8k_answer(text, flexible=True)
        return m.text.strip().rstrip(".") if m is not None else None
    if kind == "latex":
        return last_tag_content(reply, "answer") or last_boxed_content(reply) or None
    return last_tag_content(reply, "answer") or None


def _wrong_for(kind: str, answer: str, refs: dict[str, Any], rng: random.Random) -> str:
    if kind == "number":
        return _wrong_number(answer, rng)
    if kind == "countdown":
        try:
            nums = [int(n) for n in (json.loads(refs["numbers"]) if isinstance(refs["numbers"], str) else refs["numbers"])]
            return _wrong_expr(nums, int(refs["target"]))
        except (KeyError, TypeError, ValueError):
            return "1 + 1"
    if kind == "latex":
        return _wrong_latex(answer, rng)
    return answer + "0"


def _score_prefix(samples: Path) -> str:
    cfg = samples.parent / "config.json"
    if not cfg.exists():
        return ""

    saved = read_json(cfg)
    try:
        return PromptTemplate.from_dict(saved["template"]).score_prefix
    except (KeyError, TypeError, ValueError):
        return ""


def load_samples(path: Path, limit: int | None = None, seed: int = 0) -> Corpus:
    """The scoreable rows of a run's ``samples.jsonl`` as cases (see the module docstring)."""
    if path.is_dir():
        path = path / "samples.jsonl"
    rows = parse_jsonl(read_text(path, "--samples ", "a samples.jsonl file"), str(path))
    if not rows:
        raise ReasonkitError(f"--samples {path}: no rows (the file is empty)")
    prefix = _score_prefix(path)
    cases, skipped, verifiers = [], {"failed request": 0, "cut off (length)": 0, "no stated answer": 0}, {}
    for lineno, row in rows:
        if not isinstance(row.get("completion"), str) or not isinstance(row.get("reference"), dict):
            raise ReasonkitError(f"--samples {path} line {lineno}: not a reasonkit eval row "
                                 "(needs 'completion' text and a 'reference' object)")
        if row.get("finish_reason") == "error" or row.get("error"):
            skipped["failed request"] += 1
            continue
        if row.get("finish_reason") == "length":
            skipped["cut off (length)"] += 1
            continue
        refs = row["reference"]
        text = prefix + row["completion"] + (row.get("stop_string") or "")
        kind = _kind(row, refs)
        stated = _stated(kind, text)
        if not stated:
            skipped["no stated answer"] += 1
            continue
        rng = random.Random(f"{seed}:{lineno}")
        item = f"{row.get('item_id', lineno)}/{row.get('sample', 0)}"
        cases.append(Case(item, "sample", kind, text, stated, _wrong_for(kind, stated, refs, rng), refs))
        for key in row:
            name = key[:-len(".correct")] if key.endswith(".correct") else None
            if name and name not in ("format_soft", "stepwise"):
                verifiers[name] = None
    if limit is not None:
        cases = [cases[i] for i in _pick(len(cases), limit, seed)]
    kinds = {c.kind for c in cases}
    default = tuple(verifiers) or (_DEFAULT_VERIFIERS[kinds.pop()] if len(kinds) == 1 else ())
    return Corpus(str(path), cases, False, default, {k: v for k, v in skipped.items() if v})
