"""The cold start of ``learning_countdown.py``: solver-written Countdown demonstrations in the answer form.

Each training task's generator solution is written out as the model is asked to answer: the steps it
evaluates in the think block (:func:`trace`, exact), the equation in the answer tags. Every row carries
the ``countdown`` verifier's verdict on it, so ``reasonkit sft --from-samples`` filters it as it filters
sampled completions. This is supervised learning on text the script supplies (DeepSeek-R1's cold
start), not something the model found: the results pages say so.
"""
from __future__ import annotations

import json
from pathlib import Path


def trace(solution: str) -> list[str]:
    """The steps a solution expression evaluates, innermost first: ``(10 + 12) - 6`` ->
    ``["10 + 12 = 22", "22 - 6 = 16"]`` (exact: the generator's intermediates are whole numbers)."""
    import ast
    from fractions import Fraction

    ops = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
    lines: list[str] = []

    def value(node) -> Fraction:
        if isinstance(node, ast.Constant):
            return Fraction(node.value)
        left, right = value(node.left), value(node.right)
        op = ops[type(node.op)]
        out = {"+": left + right, "-": left - right, "*": left * right, "/": left / right}[op]
        lines.append(f"{left} {op} {right} = {out}")
        return out

    value(ast.parse(solution, mode="eval").body)
    return lines


def demonstrations(a, train: Path, out: Path) -> Path:
    """``out``/samples.jsonl: the first ``--cold-start`` training tasks, each with its solution written in
    the answer form (the steps in the think block, the equation in the answer tags) and the ``countdown``
    verifier's verdict on it - the columns ``reasonkit sft --from-samples`` filters on."""
    from transformers import AutoTokenizer

    from reasonkit.engine.models import resolve_model
    from reasonkit.tasks.registry import configure_benchmark
    from reasonkit.verifiers import get_verifier

    bench = configure_benchmark("countdown", seed=a.seed)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(a.model))
    verify = get_verifier("countdown")
    rows = [json.loads(x) for x in train.read_text().splitlines()][: a.cold_start]
    out.mkdir(parents=True, exist_ok=True)
    with (out / "samples.jsonl").open("w") as fh:
        for i, row in enumerate(rows):
            item = bench.to_item(row, i)
            completion = "\n" + "\n".join(trace(row["solution"])) + f"\n</think>\n<answer>{row['solution']}</answer>"
            v = verify(bench.template.score_prefix + completion, numbers=row["numbers"], target=row["target"])
            fh.write(json.dumps({"item_id": str(row["id"]), "sample": 0, "prompt": bench.render(item, tokenizer),
                                 "completion": completion, "finish_reason": "stop",
                                 "num_tokens": len(tokenizer(completion)["input_ids"]), "countdown.correct": v.correct,
                                 "countdown.score": v.score, "countdown.reason": v.reason}) + "\n")
    return out / "samples.jsonl"
