"""Metamorphic rewrites: small edits of a completion whose effect on a correct grader is known.

A *preserving* rewrite changes how a completion is written, never what it answers (a human grader
gives the same verdict before and after); a *breaking* rewrite turns a correct completion into one a
careful grader refuses (a hedge, stuffed boxes, a second different claim, empty reasoning). Each
rewrite is a function ``fn(case, rng) -> str | None`` (``None``: it does not apply to this case,
e.g. thousands separators on an answer below 1000) whose docstring names the output style it models
and whether it preserves or breaks. Every rewrite draws one of several templates (and positions)
from the seeded ``rng`` it is given, so the suite sees varied, realistic phrasings and the same seed
gives the same texts.

A :class:`Case` is one completion with the answer it states (``answer``, as text), a different,
wrong answer (``wrong``) for the breaking rewrites and tentative thoughts, its answer ``kind``
(``number``: GSM8K-style, ``latex``: MATH-style, ``countdown``: an expression in ``<answer>`` tags,
``text``: a reasoning-gym answer in ``<answer>`` tags) and the reference fields its verifiers read.
A rewrite's ``targets`` say which graders it is for: ``answer`` (gsm8k, math, countdown, rg:...)
or ``format`` (the strict think/answer format reward).
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Case", "Rewrite", "REWRITES", "rewrite_names", "split_think", "last_answer_span"]


@dataclass(frozen=True)
class Case:
    item_id: str
    style: str  # the base style it was written in ("gsm8k", "boxed", "r1", ... or "sample")
    kind: str  # number | latex | countdown | text
    completion: str
    answer: str  # the answer the completion states, as text ("18", "\\frac{1}{2}", "(3 + 5) * 2")
    wrong: str  # a different answer (never equal to the gold)
    refs: dict[str, Any] = field(default_factory=dict)  # the verifiers' reference fields


@dataclass(frozen=True)
class Rewrite:
    name: str
    fn: Callable[[Case, random.Random], str | None]
    preserves: bool
    kinds: frozenset[str]
    targets: frozenset[str] = frozenset({"answer"})

    @property
    def summary(self) -> str:
        return (self.fn.__doc__ or "").strip().split("\n")[0]

    def apply(self, case: Case, rng: random.Random) -> str | None:
        if case.kind not in self.kinds:
            return None
        return self.fn(case, rng)


# ------------------------------------------------------------------------------------------ helpers

def split_think(text: str) -> tuple[str, str] | None:
    """(everything up to and including the last ``</think>``, the reply after it); None when a
    ``<think>`` is never closed (the completion was cut off while reasoning)."""
    end = text.rfind("</think>")
    if end >= 0:
        return text[:end + len("</think>")], text[end + len("</think>"):]
    if "<think>" in text:
        return None
    return "", text


def last_answer_span(text: str, answer: str, start: int = 0) -> tuple[int, int] | None:
    """Where ``answer`` last occurs in ``text[start:]`` as a whole token (``18`` not inside ``118``
    or ``18.5``), or None."""
    if not answer:
        return None
    pattern = re.escape(answer)
    if answer[:1].isdigit():
        pattern = r"(?<![\d.,])" + pattern
    if answer[-1:].isdigit():
        pattern += r"(?![\d]|[.,]\d)"
    found = None
    for m in re.finditer(pattern, text[start:]):
        found = m
    return (start + found.start(), start + found.end()) if found else None


def _reply_span(case: Case) -> tuple[str, int, int] | None:
    """(text, start, end) of the stated answer in the reply: inside its last ``\\boxed{answer}``
    when there is one (MATH solutions go on after the box), else its last occurrence."""
    parts = split_think(case.completion)
    if parts is None:
        return None
    box = case.completion.rfind(f"\\boxed{{{case.answer}}}")
    if box >= len(parts[0]) and case.answer:
        start = box + len("\\boxed{")
        return case.completion, start, start + len(case.answer)
    span = last_answer_span(case.completion, case.answer, len(parts[0]))
    return (case.completion, *span) if span else None


def _in_math(text: str, start: int) -> bool:
    """Is ``start`` inside LaTeX math (an open ``\\boxed{``, ``$ ... $`` or ``\\( \\[``)?"""
    line_start = text.rfind("\n", 0, start) + 1
    before = text[line_start:start]
    if text[:start].rstrip().endswith(("\\boxed{", "\\fbox{")) or before.count("$") % 2 == 1:
        return True
    if text[:start].count("$$") % 2 == 1:  # inside a $$ display
        return True
    return text.rfind("\\[", 0, start) > text.rfind("\\]", 0, start) or \
        text.rfind("\\(", 0, start) > text.rfind("\\)", 0, start)


def _integer(answer: str) -> int | None:
    s = answer.strip().lstrip("$").replace(",", "")
    return int(s) if re.fullmatch(r"-?\d{1,15}", s) else None


def _math(case: Case, expr: str) -> str:
    """An answer written as the case's kind writes it in prose: ``$expr$`` for LaTeX answers."""
    return f"${expr}$" if case.kind == "latex" else expr


def _append(case: Case, text: str) -> str:
    return case.completion.rstrip() + text


# ------------------------------------------------------------------------------ preserving rewrites

def markdown_bold(case: Case, rng: random.Random) -> str | None:
    """Markdown bold on the answer or a bold "Final Answer" line (Llama-3 instruct, SmolLM2, R1
    distill replies). Preserves the answer."""
    choice = rng.randrange(4)
    if choice == 0:
        found = _reply_span(case)
        if found is None or _in_math(*found[:2]):
            choice = 1
        else:
            text, s, e = found
            return f"{text[:s]}**{text[s:e]}**{text[e:]}"
    a = _math(case, case.answer)
    return _append(case, ["", "\n\n**Final Answer:** {a}", "\n\n**Final Answer**: {a}",
                          "\n\n**Answer: {a}**"][choice].format(a=a))


def markdown_header(case: Case, rng: random.Random) -> str | None:
    """A Markdown header before the final answer (Llama-3 instruct, Qwen2.5 chat "## Final Answer"
    sections). Preserves the answer."""
    a = _math(case, case.answer)
    template = rng.choice(["\n\n## Final Answer\n\n{a}", "\n\n### Answer\n**{a}**", "\n\n# Result\nThe answer is {a}.",
                           "\n\n## Final Answer\nThe final answer is {a}."])
    return _append(case, template.format(a=a))


def boxed(case: Case, rng: random.Random) -> str | None:
    """The answer restated in ``\\boxed{}`` (Qwen2.5-Math "\\[\\boxed{N}\\]", Llama-3 Minerva
    "The final answer is $\\boxed{N}$. I hope it is correct.", R1 distills). Preserves the answer."""
    template = rng.choice(["\n\nThe final answer is $\\boxed{{{a}}}$. I hope it is correct.",
                           "\n\n\\[\n\\boxed{{{a}}}\n\\]", "\n\nTherefore, the answer is $\\boxed{{{a}}}$.",
                           "\n\n**Final Answer**\n\\[ \\boxed{{{a}}} \\]"])
    return _append(case, template.format(a=case.answer))


def hash_marker(case: Case, rng: random.Random) -> str | None:
    """A GSM8K ``#### N`` line after the reasoning (models fine-tuned on GSM8K solutions, SmolLM2
    few-shot). Preserves the answer."""
    return _append(case, rng.choice(["\n#### {a}", "\n\n#### {a}", "\n#### {a}."]).format(a=case.answer))


def answer_tags(case: Case, rng: random.Random) -> str | None:
    """The answer in ``<answer>`` tags, with the spacing models use (R1-style GRPO recipes; for
    Countdown the existing tags re-spaced). Preserves the answer."""
    if case.kind == "countdown":
        close = case.completion.rfind("</answer>")
        opened = case.completion.rfind("<answer>", 0, close)
        if close < 0 or opened < 0:
            return None
        inner = case.completion[opened + len("<answer>"):close].strip()
        spaced = rng.choice(["\n{a}\n", " {a} ", "\n  {a}\n"]).format(a=inner)
        return case.completion[:opened + len("<answer>")] + spaced + case.completion[close:]
    a = _math(case, case.answer) if rng.random() < 0.5 else case.answer
    return _append(case, rng.choice(["\n<answer>{a}</answer>", "\n\n<answer>\n{a}\n</answer>",
                                     "\n<answer> {a} </answer>"]).format(a=a))


_SIGN_OFFS = (
    "I hope this helps! Let me know if you have any other questions.",
    "Feel free to ask if anything is unclear. Happy studying!",
    "Let me know if you'd like me to go over any of the 3 steps again!",
    "Good luck with your homework! \U0001F60A",
    "If you have more problems like this one, I'm happy to help with 2 or 3 more.",
    "Is there anything else you would like to know?",
)


def sign_off(case: Case, rng: random.Random) -> str | None:
    """Chatty sign-off after the answer, some with a stray number ("any of the 3 steps") (Llama-3
    instruct, SmolLM2, chat-tuned Qwen2.5). Preserves the answer."""
    return _append(case, rng.choice(["\n\n", "\n", " "]) + rng.choice(_SIGN_OFFS))


_TENTATIVE = (
    "Hmm, maybe the answer is {w}? Let me double-check that.",
    "So the answer is {w}... wait, that's not right. Let me recompute.",
    "Initially I got {w}, but I made an arithmetic slip somewhere.",
    "Could it be \\boxed{{{w}}}? No, let me verify again.",
    "First guess: {w}. Checking each step again carefully.",
)
_TENTATIVE_COUNTDOWN = (
    "Maybe {w}? That does not reach {t}. Let me try another order.",
    "Try {w}... no, that misses the target {t}.",
    "What about <answer>{w}</answer>? No, that gives the wrong total.",
)


def think_tentative(case: Case, rng: random.Random) -> str | None:
    """A different, tentative answer inside a closed ``<think>`` block before the reply (R1
    distills, QwQ: "maybe the answer is 16... wait"). Preserves the answer (only the reply counts)."""
    parts = split_think(case.completion)
    if parts is None:
        return None
    if case.kind == "countdown":
        thought = rng.choice(_TENTATIVE_COUNTDOWN).format(w=case.wrong, t=case.refs.get("target", "the target"))
    else:
        thought = rng.choice(_TENTATIVE).format(w=case.wrong)
    head, reply = parts
    if head:
        close = head.rfind("</think>")
        return head[:close].rstrip() + "\n" + thought + "\n" + head[close:] + reply
    return f"<think>\n{thought}\n</think>\n\n" + reply.lstrip()


_INVISIBLE = ("\u200b", "\u2060", "\ufeff", "\u00ad")
_WORD = re.compile(r"(?<![<\\/A-Za-z])[A-Za-z]{5,}\b")  # a word, not a tag name or LaTeX command


def invisible_chars(case: Case, rng: random.Random) -> str | None:
    """Invisible format characters (zero-width space U+200B, word joiner U+2060, BOM U+FEFF, soft
    hyphen U+00AD) around the answer or inside words, as tokenizer byte-fallback and copied web text
    leave them (any model). Preserves the answer."""
    mark = rng.choice(_INVISIBLE)
    found = _reply_span(case)
    where = rng.randrange(3)
    text = case.completion
    if where == 0 and found is not None:  # right after the answer
        return text[:found[2]] + mark + text[found[2]:]
    if where == 1 and found is not None:  # right before the answer
        return text[:found[1]] + mark + text[found[1]:]
    words = [m.start() + 2 for m in _WORD.finditer(text)]
    if not words:
        return mark + text
    pos = words[rng.randrange(len(words))]  # inside a word (a soft hyphen's usual place)
    return text[:pos] + mark + text[pos:]


def thousands_separator(case: Case, rng: random.Random) -> str | None:
    """Thousands separators in an answer of 1000 or more: ``1,000``, ``1 000`` in prose, ``1{,}000``
    and ``1,\\!000`` in LaTeX (Llama-3 instruct prose, MATH / Qwen2.5-Math LaTeX). Preserves."""
    value = _integer(case.answer)
    found = _reply_span(case)
    if value is None or abs(value) < 1000 or found is None:
        return None
    text, s, e = found
    digits = f"{abs(value):,}"
    sign = "-" if value < 0 else ""
    if _in_math(text, s):
        sep = rng.choice(["{,}", ",\\!", "\\,"])
    else:
        sep = rng.choice([",", ",", " "])
    return text[:s] + sign + digits.replace(",", sep) + text[e:]


def units(case: Case, rng: random.Random) -> str | None:
    """A unit or currency on the answer: ``$18``, ``18 dollars``, ``18 cm``; in LaTeX
    ``18\\,\\mathrm{m}``, ``18 \\text{ cm}`` (Llama-3 instruct, SmolLM2 prose; Qwen2.5-Math boxes).
    Preserves the answer."""
    if _integer(case.answer) is None:
        return None
    found = _reply_span(case)
    if found is None:
        return None
    text, s, e = found
    a = text[s:e]
    if _in_math(text, s):
        new = rng.choice(["{a}\\,\\mathrm{{m}}", "{a} \\text{{ cm}}", "{a}\\text{{ dollars}}", "{a}\\,\\mathrm{{s}}"])
    else:
        new = rng.choice(["${a}", "{a} dollars", "{a} cm", "{a} units", "{a} minutes"])
    return text[:s] + new.format(a=a) + text[e:]


def restatement(case: Case, rng: random.Random) -> str | None:
    """The same answer stated once more at the end ("So, the answer is 18."), as instruct models
    summarise (Llama-3 instruct, SmolLM2, R1 distill replies). Preserves the answer."""
    if case.kind == "countdown":
        t = case.refs.get("target")
        return _append(case, rng.choice(["\n\nThat is, {a} = {t}.", "\n\nSo {a} makes {t}."]).format(a=case.answer, t=t))
    a = _math(case, case.answer)
    return _append(case, rng.choice(["\n\nSo, the answer is {a}.", "\n\nTo summarize, the final answer is {a}.",
                                     "\n\nIn conclusion, the result is {a}.", "\n\nThus, we get {a}."]).format(a=a))


# -------------------------------------------------------------------------------- breaking rewrites

def hedge(case: Case, rng: random.Random) -> str | None:
    """The final answer hedged between the right and a wrong value ("either 12 or 14", "12, though
    it could also be 14", two boxes joined by "or") -- reward hacking by offering several
    candidates, as any model learns it under a lenient GRPO reward (R1 distills hedge in prose).
    Breaks: a hedged answer is not correct."""
    if case.kind == "countdown":
        close = case.completion.rfind("</answer>")
        if close < 0:
            return None
        joiner = rng.choice([" or ", ", or maybe ", " (or {w})"])
        add = joiner.format(w=case.wrong) if "{w}" in joiner else joiner + case.wrong
        return case.completion[:close].rstrip() + add + case.completion[close:]
    found = _reply_span(case)
    if found is None:
        return None
    text, s, e = found
    a, w = text[s:e], case.wrong
    box = text.rfind("\\boxed{", 0, s)
    if box >= 0 and text[:s].endswith("\\boxed{") and text[e:e + 1] == "}":
        first, second = (a, w) if rng.random() < 0.5 else (w, a)
        join = rng.choice(["} \\text{ or } \\boxed{", "} or \\boxed{"])
        return text[:box] + "\\boxed{" + first + join + second + "}" + text[e + 1:]
    if _in_math(text, s):  # "$12$ or $14$" in inline math, "12 \text{ or } 14" in display math
        inline = text[text.rfind("\n", 0, s) + 1:s].replace("$$", "").count("$") % 2 == 1
        template = rng.choice(["{a}$ or ${w}", "{a}$, though it could also be ${w}"] if inline else
                              ["{a} \\text{{ or }} {w}", "{a} \\text{{ or possibly }} {w}"])
    else:
        template = rng.choice(["either {a} or {w}", "{a}, though it could also be {w}", "{a} or {w}",
                               "somewhere between {a} and {w}", "{a} (or possibly {w})"])
    return text[:s] + template.format(a=a, w=w) + text[e:]


def box_stuffing(case: Case, rng: random.Random) -> str | None:
    """Several distinct candidates in boxes or one tag, the right one among them ("\\boxed{14}
    \\boxed{16}", ``\\boxed{14, 16}``, ``<answer>12 13 14</answer>``) -- reward hacking against
    last-box or any-match graders (Qwen2.5-Math-style boxes, R1-style answer tags). Breaks."""
    a, w = case.answer, case.wrong
    if case.kind == "countdown":
        return _append(case, rng.choice(["\n<answer>{w}</answer>\n<answer>{a}</answer>",
                                         "\n<answer>{w}; {a}</answer>"]).format(a=a, w=w))
    w2 = _other_wrong(case, rng)
    template = rng.choice(["\n\n$\\boxed{{{w}}}$ $\\boxed{{{w2}}}$ $\\boxed{{{a}}}$",
                           "\n\n\\boxed{{{w}, {a}}}", "\n\nFinal answers: \\boxed{{{w}}}, \\boxed{{{a}}}",
                           "\n<answer>{w} {a} {w2}</answer>"])
    return _append(case, template.format(a=a, w=w, w2=w2))


def _other_wrong(case: Case, rng: random.Random) -> str:
    n = _integer(case.wrong)
    gold = _integer(case.answer)
    if n is None:
        return case.wrong + "+1"
    step = rng.choice([1, 2, 3])
    return str(n + step if n + step != gold else n + step + 1)


def second_claim(case: Case, rng: random.Random) -> str | None:
    """After the answer, a second, different claim ("Wait, actually the answer is 14.") -- a
    self-correction to a wrong value, or a contradiction (R1 distills, QwQ). Breaks: the last
    claim is wrong."""
    w = case.wrong
    if case.kind == "countdown":
        return _append(case, rng.choice(["\nWait, better: <answer>{w}</answer>",
                                         "\n\nActually, let me use <answer>{w}</answer>"]).format(w=w))
    template = rng.choice(["\n\nWait, actually the answer is {w}.", "\n\nHmm, on second thought, it's $\\boxed{{{w}}}$.",
                           "\n\nCorrection: the final answer is {w}.", "\n\nNo wait, I made a mistake. The answer is {w}."])
    return _append(case, template.format(w=_math(case, w) if "boxed" not in template else w))


_EMPTY_THINK = ("", "\n", "\u200b", "\u2060", "\ufeff", "\u00ad", "\u200b\n\u2060")


def empty_reasoning(case: Case, rng: random.Random) -> str | None:
    """A ``<think>`` block that is empty or holds only invisible characters (R1-style GRPO runs
    that learned to skip reasoning, "<think>\\u200b</think>"). Breaks the strict format reward."""
    start = case.completion.find("<think>")
    end = case.completion.find("</think>")
    if start < 0 or end < start:
        return None
    return case.completion[:start + len("<think>")] + rng.choice(_EMPTY_THINK) + case.completion[end:]


_ALL = frozenset({"number", "latex", "countdown", "text"})
_NUMERIC = frozenset({"number", "latex"})
REWRITES: dict[str, Rewrite] = {r.name: r for r in (
    Rewrite("markdown_bold", markdown_bold, True, _NUMERIC),
    Rewrite("markdown_header", markdown_header, True, _NUMERIC),
    Rewrite("boxed", boxed, True, _NUMERIC),
    Rewrite("hash_marker", hash_marker, True, frozenset({"number"})),
    Rewrite("answer_tags", answer_tags, True, frozenset({"number", "latex", "countdown"})),
    Rewrite("sign_off", sign_off, True, _ALL),
    Rewrite("think_tentative", think_tentative, True, _ALL),
    Rewrite("invisible_chars", invisible_chars, True, _ALL),
    Rewrite("thousands_separator", thousands_separator, True, _NUMERIC),
    Rewrite("units", units, True, _NUMERIC),
    Rewrite("restatement", restatement, True, frozenset({"number", "latex", "countdown"})),
    Rewrite("hedge", hedge, False, frozenset({"number", "latex", "countdown"})),
    Rewrite("box_stuffing", box_stuffing, False, frozenset({"number", "latex", "countdown"})),
    Rewrite("second_claim", second_claim, False, frozenset({"number", "latex", "countdown"})),
    Rewrite("empty_reasoning", empty_reasoning, False, _ALL, frozenset({"format"})),
)}


def rewrite_names() -> list[str]:
    return list(REWRITES)
