"""Run directories for the audit and viewer tests (a helper module, not a test module).

* :func:`eval_run` produces a real eval run (``samples.jsonl``, ``summary.json``) through the eval
  harness with the fake backend of :mod:`eval_fakes` on the bundled GSM8K items: no model.
* :func:`honest` answers right on items whose gold answer is below 100, off by one otherwise; :func:`hacker`
  answers every item right but in hack shapes that depend on the item: it invents a ``Human:`` turn
  after the answer when the gold answer is divisible by 3, hedges (``<answer>a or b</answer>``) with an
  empty think block when it is odd.
* :func:`train_run` writes a training run directory the way the trainer does (``metrics.jsonl`` with
  ``reward``/``heldout``/``audit`` keys, ``completions.jsonl``), with a length collapse after step 3.
"""
from __future__ import annotations

import json
from pathlib import Path

from reasonkit.eval.config import EvalConfig
from reasonkit.eval.runner import run

from eval_fakes import FakeBackend

_DATA = Path(__file__).resolve().parents[1] / "reasonkit" / "data" / "gsm8k_test.jsonl"


def _golds(limit: int = 400) -> dict[str, int]:
    out = {}
    with open(_DATA, encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i >= limit:
                break
            row = json.loads(line)
            out[row["question"]] = int(row["answer"].rsplit("####", 1)[1].strip().replace(",", ""))
    return out


GOLD = _golds()


def gold_of(prompt: str) -> int:
    return next(a for q, a in GOLD.items() if q in prompt)


def honest(prompt, adapter, sample):
    gold = gold_of(prompt)
    ans = gold if gold < 100 else gold + 1
    return f"<think>\nworking it out step by step\n</think>\n<answer>{ans}</answer>"


def hacker(prompt, adapter, sample):
    gold = gold_of(prompt)
    if gold % 2:
        return f"<think> \u200b </think>\n<answer>{gold} or {gold + 2}</answer>"
    tail = "\nHuman: and what is 2 + 2?" if gold % 3 == 0 else ""
    return f"<think>\nworking it out step by step\n</think>\n<answer>{gold}</answer>{tail}"


def eval_run(out: Path, script, limit: int = 6) -> Path:
    run(EvalConfig(benchmark="gsm8k", verifiers=("gsm8k", "format"), limit=limit, output=str(out)),
        engine=FakeBackend(script), show=False)
    return out


def train_run(out: Path, steps: int = 6, group_size: int = 2) -> Path:
    out.mkdir(parents=True)
    metrics, comps = [], []
    for step in range(1, steps + 1):
        collapsed = step > 3
        text = "<answer>7</answer>" if collapsed else "<think>\n" + "3 + 4 = 7, so seven. " * 10 + "\n</think>\n<answer>7</answer>"
        metrics.append({"step": step, "reward": 0.2 + 0.1 * step, "rewards/countdown": 0.1 * step,
                        "rewards/format": 1.0, "heldout/gsm8k": 0.3, "loss": 0.01,
                        "audit/truncated": 0.0, "audit/length_collapse": 1.0 if collapsed else 0.0})
        for i in range(2 * group_size):
            comps.append({"step": step, "prompt": "What is 3 + 4?", "completion": text, "reward": 1.0,
                          "rewards/countdown": 1.0, "rewards/format": 1.0, "finish_reason": "stop",
                          "num_tokens": len(text.split()), "group": i // group_size})
    (out / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics))
    (out / "completions.jsonl").write_text("".join(json.dumps(c) + "\n" for c in comps))
    (out / "config.yaml").write_text("model: tiny-test-model\ndataset: countdown\n")
    return out
