"""The completions ``bench_verifiers.py`` times: realistic ones built from the bundled data, and
adversarial inputs.

* GSM8K test solutions rewritten the way models answer (``<think>...</think>\\n<answer>N</answer>``,
  ``#### N``, ``\\boxed{N}``, "The answer is $1,234.", wrong answers, no answer);
* Countdown tasks with right, wrong and malformed equations;
* MATH-500 answers in ``\\boxed{}`` (right, wrong, missing);
* :func:`adversarial_inputs`: ``9**9**9**9``, 100k-digit literals, 10k nested parentheses, a 1 MB
  completion, ``<think>`` x 100k, deep LaTeX.

Every builder takes a seeded :class:`random.Random`, so a run's corpus is fixed by its seed.
"""
from __future__ import annotations

import json
import random
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[1] / "reasonkit" / "data"


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


_NOTE = re.compile(r"<<[^>]*>>")


def _money(n: str) -> str:
    """``1234`` -> ``$1,234`` (as models often write amounts)."""
    try:
        return f"${int(n):,}"
    except ValueError:
        return f"${n}"


def gsm8k_rows(n: int, rng: random.Random) -> list[dict[str, Any]]:
    """GSM8K test problems answered in the styles models use; gold is the full reference solution or
    the bare number (both forms occur in the wild)."""
    problems = _read_jsonl(DATA / "gsm8k_test.jsonl")
    styles = ["think_answer", "think_answer", "hash", "boxed", "answer_is", "money_tag", "wrong", "wrong",
              "no_answer", "notes_hash"]
    rows = []
    for i in range(n):
        p = problems[i % len(problems)]
        body, final = p["answer"].rsplit("####", 1)
        final = final.strip()
        reasoning = _NOTE.sub("", body).strip()
        style = styles[i % len(styles)]
        wrong = str(int(final.replace(",", "")) + rng.choice([-10, -1, 1, 2, 100])) if final.lstrip("-").isdigit() else final + "1"
        text = {
            "think_answer": f"<think>\n{reasoning}\n</think>\n<answer>{final}</answer>",
            "hash": f"{reasoning}\n#### {final}",
            "boxed": f"{reasoning}\nTherefore, the final answer is $\\boxed{{{final}}}$.",
            "answer_is": f"Let's think step by step. {reasoning} The answer is {_money(final)}.",
            "money_tag": f"<think>{reasoning}</think>\n<answer>{_money(final)}.00</answer>",
            "wrong": f"<think>\n{reasoning}\n</think>\n<answer>{wrong}</answer>",
            "no_answer": f"<think>\n{reasoning[: max(20, len(reasoning) // 2)]}",
            "notes_hash": f"{body.strip()}\n#### {final}",  # calculator notes kept, for stepwise
        }[style]
        gold = p["answer"] if i % 2 == 0 else final
        rows.append({"completion": text, "answer": gold, "gold_number": final, "style": style})
    return rows


def _exact_value(expr: str) -> Fraction:
    """Exact value of a generated expression (the generator's own check, independent of the verifier)."""
    import ast

    def ev(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Constant):
            return Fraction(node.value)
        if isinstance(node, ast.BinOp):
            a, b = ev(node.left), ev(node.right)
            return {ast.Add: a + b, ast.Sub: a - b, ast.Mult: a * b}.get(type(node.op)) if not isinstance(
                node.op, ast.Div) else a / b
        raise ValueError(expr)

    return ev(ast.parse(expr, mode="eval").body)


def _countdown_task(rng: random.Random) -> tuple[list[int], str, int]:
    while True:
        numbers = [rng.randint(1, 99) for _ in range(rng.choice([3, 4, 4]))]
        order = numbers[:]
        rng.shuffle(order)
        expr = str(order[0])
        for n in order[1:]:
            op = rng.choice("+-*/")
            # sometimes leave out redundant-looking parentheses, as models do; the value is computed
            # from the final string, so precedence is whatever the text says
            expr = f"({expr} {op} {n})" if rng.random() < 0.7 else f"{expr} {op} {n}"
        value = _exact_value(expr)
        if value.denominator == 1 and 0 < value < 1000:
            return numbers, expr, int(value)


def countdown_rows(n: int, rng: random.Random) -> list[dict[str, Any]]:
    styles = ["right", "right", "right_eq", "unicode", "wrong_value", "wrong_value", "reused", "no_tag",
              "power", "in_think_only"]
    rows = []
    for i in range(n):
        numbers, expr, target = _countdown_task(rng)
        style = styles[i % len(styles)]
        think = (f"<think>\nWe need {target} from {numbers}. Try {numbers[0]} + {numbers[1]} = "
                 f"{numbers[0] + numbers[1]}, too small. Then {expr} works.\n</think>\n")
        answer = {
            "right": expr,
            "right_eq": f"{expr} = {target}",
            "unicode": expr.replace("*", "×").replace("/", "÷"),
            "wrong_value": expr.replace("+", "-", 1) if "+" in expr else expr.replace("-", "+", 1) + " + 1",
            "reused": f"{expr} + {numbers[0]} - {numbers[0]}",
            "no_tag": None,
            "power": f"{numbers[0]}**2 + {numbers[1]}",
            "in_think_only": None,
        }[style]
        if style == "no_tag":
            text = think + f"So the answer is {expr}."
        elif style == "in_think_only":
            text = f"<think>The answer is <answer>{expr}</answer></think>\nDone."
        else:
            text = think + f"<answer>{answer}</answer>"
        rows.append({"completion": text, "numbers": numbers, "target": target, "style": style})
    return rows


def math_rows(n: int, rng: random.Random) -> list[dict[str, Any]]:
    problems = _read_jsonl(DATA / "math500_test.jsonl")
    styles = ["solution", "think_boxed", "think_boxed", "wrong", "no_answer"]
    rows = []
    for i in range(n):
        p = problems[i % len(problems)]
        style = styles[i % len(styles)]
        other = problems[(i * 7 + 3) % len(problems)]["answer"]
        short = p["solution"][:400]
        text = {
            "solution": p["solution"],
            "think_boxed": f"<think>\n{short}\n</think>\nThe final answer is $\\boxed{{{p['answer']}}}$.",
            "wrong": f"<think>\n{short}\n</think>\nThe final answer is $\\boxed{{{other}}}$.",
            "no_answer": f"<think>\n{short}",
        }[style]
        rows.append({"completion": text, "answer": p["answer"], "style": style})
    return rows


def corpus_for(name: str, corpora: dict[str, list[dict[str, Any]]] | None = None) -> str:
    if name.startswith("countdown"):
        return "countdown"
    if name.startswith("math"):
        return "math500"
    if name.startswith("format"):
        return "mixed"
    return "gsm8k"


# --- adversarial inputs ------------------------------------------------------------------------------

def adversarial_inputs() -> dict[str, str]:
    big = "9" * 100_000
    nested = "(" * 10_000 + "1" + ")" * 10_000
    sentence = "Each box holds 12 eggs, so 3 boxes hold 3 * 12 = 36 eggs. "
    return {
        "power_tower": "<think>x</think>\n<answer>9**9**9**9</answer>",
        "power_tower_bare": "9**9**9**9",
        "100k_digit_answer": f"<think>x</think>\n<answer>{big}</answer>",
        "100k_digit_hash": f"so\n#### {big}",
        "100k_digit_product": f"<answer>{big} * {big}</answer>",
        "10k_nested_parens": f"<think>x</think>\n<answer>{nested}</answer>",
        "1MB_completion": "<think>" + (sentence * (1_000_000 // len(sentence) + 1))[:1_000_000] + "</think>\n<answer>36</answer>",
        "1MB_digits_no_answer": ("1234567890 " * 100_000)[:1_000_000],
        "think_x100k": "<think>" * 100_000 + "\n<answer>4</answer>",
        "answer_open_x100k": "<answer>" * 100_000,
        "boxed_open_x100k": "\\boxed{" * 100_000,
        "hash_lines_x100k": "#### 1\n" * 100_000,
        "deep_latex_frac": "$\\boxed{" + "\\frac{1}{" * 5_000 + "2" + "}" * 5_001 + "$",
        "deep_latex_sqrt": "$\\boxed{" + "\\sqrt{" * 5_000 + "2" + "}" * 5_001 + "$",
        "latex_huge_exponent": "$\\boxed{10^{10^{10^{10^{10}}}}}$",
        "latex_factorial": "$\\boxed{(10^{100})!}$",
        "calc_notes_x100k": "<<2*3=6>>" * 100_000,
        "big_step": f"{big} * {big} = 1\n#### 1",
        "1MB_minus_signs": "-" * 1_000_000,
        "1MB_dollar_signs": "$" * 1_000_000,
        "1MB_equals_signs": "=" * 1_000_000,
        "answer_is_x20k": "The answer is " * 20_000,
        "think_pairs_x100k": "<think></think>" * 100_000,
        # the property tests' inputs not covered above
        "boxed_unclosed_x2000": "\\boxed{" * 2_000,
        "deep_latex_frac_unclosed": "\\boxed{" + "\\frac{1}{" * 2_000 + "2" + "}" * 4_001,
        "calc_notes_x10k": "<<48/2=24>>" * 10_000,
        # anti-hacking rules on long inputs: hedges, invented blocks, end-of-turn tokens, repeated steps
        "hedge_chain_x20k": "The answer is " + " or ".join(str(i) for i in range(20_000)),
        "question_blocks_x20k": "#### 4\n" + "Question: 2 + 2?\nAnswer: #### 4\n" * 20_000,
        "end_of_turn_x100k": "<think>a</think>\n<answer>4</answer>" + "<|im_end|>" * 100_000,
        "repeated_step_x100k": "<think>" + "2 + 2 = 4\n" * 100_000 + "</think>\n<answer>4</answer>",
        "factorial_steps_x20k": "<think>" + "5! = 120\n" * 20_000 + "</think>",
    }
