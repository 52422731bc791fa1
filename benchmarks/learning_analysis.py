"""Where a held-out change of ``learning_run.py`` comes from, read from an eval's ``samples.jsonl`` rows.

Two readings, both per adapter (``base`` and the trained ``adapter`` of one ``reasonkit eval --lora``):

- ``breakdown``: how the completions are written (closed answer tag, the reference number anywhere in
  the answer text, an equation written out), next to accuracy, so that a gain in form is not read as
  a gain in computing.
- ``same_form``: only the items where the base already wrote an equation, first sample of each, the
  same items for both models. A change there is a change in the numbers, not in the form. It is a
  paired comparison, so it carries its own exact sign test (``reasonkit.eval.report.sign_test``) and
  the first items the adapter got wrong where the base was right, with both answers, to show what
  went wrong (an untrained task's drop from interference reads as, e.g., a sum where a product was
  asked).

- ``computed``: accuracy by the ``gsm8k_computed`` verifier, re-scored from the completions: an
  answer written as unevaluated arithmetic is wrong (:func:`unevaluated`; one definition, the
  verifier's). The ``gsm8k`` verifier reads ``<answer>5 - 3</answer>`` as its value, 2 (a GSM8K
  reply may end "the answer is 20 - 2"). On an arithmetic task the question *is* that expression, so
  a policy paid by ``gsm8k`` can earn reward by restating the question (``Calculate -9 / 9.`` ->
  ``-9 / 9``): the re-run of 2026-12-07 learned exactly that. This reading says how much of a gain
  is left when only a stated number counts, with its paired sign test.

And ``plot``: the run's PNG (reward per step, held-out accuracy per periodic eval, truncated share).
"""
from __future__ import annotations

import re
from pathlib import Path


def answer_text(row: dict) -> str:
    """The completion up to its first ``</answer>`` (all of it when there is none)."""
    return row["completion"].split("</answer>")[0]


def shows_equation(row: dict) -> bool:
    return "=" in answer_text(row)


def score_text(row: dict, prefill: str) -> str:
    """What the eval's verifiers read for ``row``: the template's score prefix, then the completion."""
    from reasonkit.tasks.prompts import PromptTemplate

    return PromptTemplate(prefill=prefill).score_prefix + row["completion"]


def _computed_verdict(row: dict, prefill: str):
    from reasonkit.verifiers.base import get_verifier

    if "gsm8k_computed.reason" in row:  # judged by it already
        return row["gsm8k_computed.correct"] is True, row["gsm8k_computed.reason"]
    v = get_verifier("gsm8k_computed")(score_text(row, prefill), answer=(row.get("reference") or {}).get("answer"))
    return v.correct is True, v.reason


def unevaluated(row: dict, prefill: str) -> bool:
    """The ``gsm8k_computed`` verifier refuses the answer as arithmetic left undone (``5 - 3``, ``-9 / 9``;
    reason ``unevaluated``): one definition, the verifier's, re-scored from the row's completion."""
    return _computed_verdict(row, prefill)[1] == "unevaluated"


def computed(rows: list[dict], prefill: str) -> dict:
    """Per adapter: the share of answers written as unevaluated arithmetic (``unevaluated``) and the
    accuracy by ``gsm8k_computed`` (``accuracy``), re-scored from the completions with the pre-fill the
    eval used; base vs adapter paired on the first sample of each item (``adapter_only`` /
    ``base_only`` items right by this reading, exact sign test)."""
    from reasonkit.eval.report import sign_test

    verdicts = [_computed_verdict(r, prefill) for r in rows]
    out: dict = {}
    for name in sorted({r["adapter"] for r in rows}):
        mine = [v for r, v in zip(rows, verdicts) if r["adapter"] == name]
        out[name] = {"unevaluated": sum(reason == "unevaluated" for _, reason in mine) / max(len(mine), 1),
                     "accuracy": sum(ok for ok, _ in mine) / max(len(mine), 1)}
    first = {(r["adapter"], r["item_id"]): v[0] for r, v in zip(rows, verdicts) if r.get("sample", 0) == 0}
    items = [i for (m, i) in first if m == "base" and ("adapter", i) in first]
    wins = sum(first[("adapter", i)] and not first[("base", i)] for i in items)
    losses = sum(first[("base", i)] and not first[("adapter", i)] for i in items)
    out["paired"] = {"items": len(items), "adapter_only": wins, "base_only": losses, "p_value": sign_test(wins, losses)}
    return out


def _same_number(text: str, answer) -> bool:
    try:
        return float(text) == float(str(answer))
    except (TypeError, ValueError):
        return False


def breakdown(rows: list[dict]) -> dict:
    """Per adapter: the share of completions that close the answer tag before ``max_tokens``
    (``finished``); the share whose answer text (up to the first ``</answer>``, all of it when there is
    none) contains the reference answer as a number (``number_in_answer``: a lenient reading that
    credits ``3*8=24`` and an unfinished ``24 and then...``, which the strict scorer refuses); the share
    that write out an equation before the answer (``shows_equation``: an ``=`` in that text). A gain in
    accuracy with an equal ``number_in_answer`` is a gain in answering in the form asked, not in
    computing; a gain that comes with a rise of ``shows_equation`` comes from writing the sum out."""
    out: dict = {}
    for name in sorted({r["adapter"] for r in rows}):
        mine = [r for r in rows if r["adapter"] == name]
        right = [any(_same_number(x, (r.get("reference") or {}).get("answer"))
                     for x in re.findall(r"-?\d+(?:\.\d+)?", answer_text(r))) for r in mine]
        out[name] = {"samples": len(mine),
                     "finished": sum("</answer>" in r["completion"] and r["finish_reason"] != "length"
                                     for r in mine) / max(len(mine), 1),
                     "number_in_answer": sum(right) / max(len(mine), 1),
                     "shows_equation": sum(map(shows_equation, mine)) / max(len(mine), 1)}
    return out


def same_form(rows: list[dict], verifier: str, examples: int = 3) -> dict:
    """Base and adapter on the items where the base wrote an equation (first sample of each): accuracy
    of each, the items only the base got right (``base_only``) and only the adapter (``adapter_only``),
    the exact two-sided sign test on those, and up to ``examples`` of the base-only items with both
    answer texts."""
    from reasonkit.eval.report import sign_test

    from reasonkit.records import as_rows

    first = {(r.adapter, r.item_id): r for r in as_rows(rows) if r.get("sample", 0) == 0}
    items = [i for (m, i), r in first.items() if m == "base" and shows_equation(r) and ("adapter", i) in first]
    right = {(m, i): bool(first[(m, i)].correct(verifier)) for i in items for m in ("base", "adapter")}
    base_only = [i for i in items if right[("base", i)] and not right[("adapter", i)]]
    adapter_only = [i for i in items if right[("adapter", i)] and not right[("base", i)]]
    return {"items": len(items),
            **{m: sum(right[(m, i)] for i in items) / max(len(items), 1) for m in ("base", "adapter")},
            "base_only": len(base_only), "adapter_only": len(adapter_only),
            "p_value": sign_test(len(adapter_only), len(base_only)),
            "examples": [{"item_id": i, "answer": (first[("base", i)].get("reference") or {}).get("answer"),
                          "base": answer_text(first[("base", i)]).strip()[:80],
                          "adapter": answer_text(first[("adapter", i)]).strip()[:80]} for i in base_only[:examples]]}


def plot(steps: list[dict], evals: list[dict], task: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
    x = [r["step"] for r in steps]
    key = next((k for k in steps[0] if k.startswith("rewards/rg:")), "reward")
    ax[0].plot(x, [r.get(key) for r in steps], label=key)
    ax[0].plot(x, [r.get("reward") for r in steps], label="total reward", alpha=0.6)
    ax[0].set_title("training reward per step")
    ax[0].legend(fontsize=7)
    for k in sorted({k for e in evals for k in e if k.startswith("eval/")}):
        ax[1].plot([e["step"] for e in evals], [e.get(k) for e in evals], marker="o", label=k)
    ax[1].set_title("held-out accuracy (periodic eval)")
    ax[1].legend(fontsize=7)
    ax[2].plot(x, [r.get("truncated") for r in steps])
    ax[2].set_title("truncated share")
    for a_ in ax:
        a_.set_xlabel("step")
    fig.suptitle(task, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
