"""reasoning-gym as verifier (``rg:<task>``), benchmark (``reasonkit eval -b rg:...``) and training data
(``reasonkit train --dataset rg:...``), on the real reasoning-gym package."""
from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

pytest.importorskip("reasoning_gym")

from reasonkit.cli import main  # noqa: E402
from reasonkit.verifiers import reasoning_gym as rgv  # noqa: E402
from reasonkit.verifiers import resolve  # noqa: E402

SPEC = "chain_sum:difficulty=0,test_size=40,size=200"


def test_verifier_scores_with_the_tasks_own_scorer_and_composes():
    (item,) = rgv.generate_items(SPEC, "test", limit=1)
    ref = {k: item[k] for k in ("answer", "question", "rg_metadata")}
    v = resolve("rg:chain_sum")
    good = v(f"<think>sum</think>\n<answer>{item['answer']}</answer>", **ref)
    assert (good.score, good.correct, good.reason) == (1.0, True, "correct")
    wrong = v("<answer>12345</answer>", **ref)
    assert (wrong.score, wrong.correct, wrong.reason) == (0.0, False, "not_equal")
    assert v(f"the answer is {item['answer']}", **ref).reason == "no_answer"
    both = resolve("rg:chain_sum+0.2*format")(f"<think>sum</think>\n<answer>{item['answer']}</answer>", **ref)
    assert both.score == pytest.approx(1.2) and both.correct is True


# Completions a products run really wrote (benchmarks/learning_run.py, the assistant turn pre-filled with
# "<think>\n</think>\n<answer>"), for "3 * 8": (completion, rg:products score, rg:products.exact score).
PRODUCTS_OUTPUTS = [
    ("3*8=24</answer>", 1 / 3, 0.0),                      # the expression: partial credit, the collapse
    ("3 * 8 = 24</answer>", None, 0.0),
    ("3*8 = 24</answer>\n<answer>24</answer>", 1.0, 1.0),  # the last answer block is the answer
    ("24</answer>", 1.0, 1.0),
    ("25</answer>", 0.0, 0.0),
    (" 24 </answer>", 1.0, 1.0),
    ("8</answer>", 0.0, 0.0),
]


@pytest.mark.parametrize("completion, partial, exact", PRODUCTS_OUTPUTS)
def test_exact_drops_the_partial_credit_that_pays_for_the_expression(completion, partial, exact):
    (item,) = [it for it in rgv.generate_items("products:difficulty=0", "test", limit=50) if it["answer"] == "24"][:1] \
        or [{"answer": "24", "question": "Solve the following multiplication: 3 * 8.", "rg_metadata": {}}]
    ref = {k: item[k] for k in ("answer", "question", "rg_metadata")}
    text = "<answer>" + completion
    plain, strict = resolve("rg:products")(text, **ref), resolve("rg:products.exact")(text, **ref)
    if partial is not None:
        assert plain.score == pytest.approx(partial, abs=1e-3)
    assert strict.score == exact and strict.correct is plain.correct is (exact == 1.0)
    assert strict.details["task_score"] == pytest.approx(plain.score)


def test_exact_is_the_only_suffix():
    with pytest.raises(Exception, match="rg:|reasoning-gym verifier"):
        resolve("rg:products.strict")


def test_scorer_crash_and_timeout_are_unscored_not_zero(monkeypatch):
    ref = {"answer": "3", "question": "1 + 2 =", "rg_metadata": {}}

    def crash(answer, entry):
        raise KeyError("metadata")

    def slow(answer, entry):
        time.sleep(3)
        return 1.0

    monkeypatch.setattr(rgv, "_scorer", lambda task: crash)
    v = rgv.verify_rg("<answer>3</answer>", task="chain_sum", **ref)
    assert v.correct is None and v.reason == "verifier_error:KeyError" and "KeyError" in v.details["error"]
    monkeypatch.setattr(rgv, "_scorer", lambda task: slow)
    t0 = time.monotonic()
    v = rgv.verify_rg("<answer>3</answer>", task="chain_sum", timeout=0.2, **ref)
    assert time.monotonic() - t0 < 1.5
    assert v.correct is None and v.reason == "timeout"
    # in a composite an unscored term contributes 0 (issue 23 item 7); only a completion no term can score
    # is unscored
    v = resolve("rg:chain_sum+0.2*format")("<think>x</think>\n<answer>3</answer>", **ref)
    assert v.correct is False and v.score == pytest.approx(0.2) and v.details["unscored"] == ["rg:chain_sum"]


def test_items_follow_the_options_and_train_never_sees_a_test_question():
    test = rgv.generate_items(SPEC, "test")
    train = rgv.generate_items(SPEC, "train")
    assert len(test) == 40 and 0 < len(train) <= 200
    assert not {t["question"] for t in test} & {t["question"] for t in train}
    assert all(it["rg_metadata"]["num_terms"] == 2 and it["rg_metadata"]["num_digits"] == 1 for it in test)
    assert rgv.generate_items(SPEC, "test") == test  # deterministic
    assert rgv.generate_items(SPEC, "test", seed=1) != test
    harder = rgv.generate_items("chain_sum:max_terms=4,min_terms=4", "test", limit=3)
    assert all(it["rg_metadata"]["num_terms"] == 4 for it in harder)
    with pytest.raises(ValueError, match="no option 'foo'"):
        rgv.generate_items("chain_sum:foo=1", "test")
    with pytest.raises(KeyError, match="did you mean 'chain_sum'"):
        rgv.parse_task("chain_summ")


@pytest.mark.parametrize("bench, needle", [("rg:chain_summ", "did you mean"), ("rg:chain_sum:foo=1", "no option"),
                                           ("rg:chain_sum:difficulty=99", "choose a level")])
def test_eval_cli_bad_task_or_option_is_one_line_exit_2(bench, needle, tmp_path):
    res = CliRunner().invoke(main, ["eval", "-b", bench, "--backend", "hf", "-o", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    assert needle in res.output and "Traceback" not in res.output


def test_eval_and_train_cli_run_a_reasoning_gym_task(tiny_model_dir, tmp_path):
    res = CliRunner().invoke(main, ["eval", "-b", f"rg:{SPEC}", "--model", tiny_model_dir, "--backend", "hf",
                                    "--limit", "3", "--max-tokens", "4", "-q", "-o", str(tmp_path / "ev")])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in (tmp_path / "ev" / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all("rg:chain_sum.reason" in r for r in rows)
    assert rows[0]["reference"]["answer"] == rgv.generate_items(SPEC, "test", limit=1)[0]["answer"]

    cfg = tmp_path / "train.yaml"
    cfg.write_text(f"dataset: 'rg:{SPEC}'\nmodel: {tiny_model_dir}\nmax_steps: 1\nmax_tokens: 4\n"
                   f"group_size: 2\nprompts_per_step: 1\noutput: {tmp_path / 'tr'}\n")
    res = CliRunner().invoke(main, ["train", "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    saved = (tmp_path / "tr" / "config.yaml").read_text()
    assert "rg:chain_sum" in saved
    row = json.loads((tmp_path / "tr" / "metrics.jsonl").read_text().splitlines()[0])
    assert "rewards/rg:chain_sum" in row and "rewards/format" in row
