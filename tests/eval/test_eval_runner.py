"""The eval harness logic with a fake backend: run directory, scoring, resume, rescore, multi-adapter
warning, reports, the library call and the CLI (CliRunner). Fast: no model is loaded."""
from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

import reasonkit
from reasonkit.cli import main
from reasonkit.errors import ReasonkitError
from reasonkit.eval import cli as eval_cli
from reasonkit.eval import runner as runner_mod
from reasonkit.tasks.registry import generate_countdown, get_benchmark
from reasonkit.eval.config import EvalConfig
from reasonkit.tasks.data import DATA_DIR
from reasonkit.tasks.prompts import PromptTemplate
from reasonkit.eval.report import report
from reasonkit.eval.runner import run

from eval_fakes import FakeBackend, FakeTokenizer

VERIFIERS = ("gsm8k", "gsm8k_flexible", "format")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def gold_by_question():
    out = {}
    with open(DATA_DIR / "gsm8k_test.jsonl", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i >= 40:
                break
            row = json.loads(line)
            out[row["question"]] = row["answer"].rsplit("####", 1)[1].strip()
    return out


GOLD = gold_by_question()


def answer_of(prompt: str) -> str:
    for q, a in GOLD.items():
        if q in prompt:
            return a
    raise AssertionError("unknown prompt")


def even_items_right(prompt, adapter, sample):
    """Base: right on questions whose gold is even; adapter 'good' is right everywhere."""
    gold = answer_of(prompt)
    right = adapter == "good" or int(gold.replace(",", "")) % 2 == 0
    ans = gold if right else str(int(gold.replace(",", "")) + 1)
    return f"<think>\nsome steps\n</think>\n<answer>{ans}</answer>"


def cfg(tmp_path, **kw):
    base = dict(benchmark="gsm8k", verifiers=VERIFIERS, limit=6, output=str(tmp_path / "run"), chunk_size=2)
    base.update(kw)
    return EvalConfig(**base)


def read_rows(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_run_writes_samples_and_summary(tmp_path):
    engine = FakeBackend(even_items_right)
    rows, summary = run(cfg(tmp_path), engine=engine, show=False)
    run_dir = tmp_path / "run"
    saved = read_rows(run_dir / "samples.jsonl")
    assert len(saved) == len(rows) == 6
    row = saved[0]
    for key in ("benchmark", "item_id", "model", "adapter", "sample", "prompt", "completion", "num_tokens",
                "finish_reason", "gsm8k.score", "gsm8k.correct", "gsm8k.extracted", "gsm8k.reason",
                "gsm8k_flexible.correct", "format.correct"):
        assert key in row, key
    assert row["adapter"] == "base" and row["benchmark"] == "gsm8k"
    expected = sum(int(answer_of(r["prompt"]).replace(",", "")) % 2 == 0 for r in saved) / 6
    m = summary["adapters"]["base"]["verifiers"]["gsm8k"]
    assert m["accuracy"] == pytest.approx(expected)
    assert 0 < expected < 1  # the fixture mixes right and wrong answers
    assert summary["adapters"]["base"]["format_compliance"] == 1.0
    on_disk = json.loads((run_dir / "summary.json").read_text())
    assert on_disk["config"]["max_tokens"] == 256 and on_disk["seed"] == 0
    assert set(on_disk["versions"]) >= {"reasonkit", "torch", "transformers", "vllm"}
    assert (run_dir / "config.json").exists()
    assert [c[0] for c in engine.calls] == [2, 2, 2]  # chunks of 2 items


def test_prompt_is_chat_template_and_prefill_is_scored(tmp_path):
    bench = get_benchmark("countdown")
    item = bench.load(limit=1)[0]
    text = bench.render(item, FakeTokenizer())
    assert text.endswith("<|assistant|>Let me solve this step by step.\n<think>")
    assert str(item["target"]) in text and str(item["numbers"][0]) in text
    assert bench.score_prefix == "<think>"

    def solve(prompt, adapter, sample):
        nums = [int(x) for x in re.search(r"numbers ([\d, ]+)\.", prompt).group(1).split(",")]
        task = next(t for t in tasks if t["numbers"] == nums)
        return f" I try things.\n</think>\n<answer>{task['solution']}</answer>"

    tasks = bench.load(limit=4)
    rows, summary = run(EvalConfig(benchmark="countdown", limit=4, output=str(tmp_path / "cd")),
                        engine=FakeBackend(solve), show=False)
    assert all(r["countdown.correct"] for r in rows)
    # strict format passes only because "<think>" from the pre-fill is put back before scoring
    assert all(r["format.correct"] for r in rows), [r["format.reason"] for r in rows]
    assert not rows[0]["completion"].startswith("<think>")


def test_truncated_completions_are_not_scored_as_answers(tmp_path):
    def script(prompt, adapter, sample):
        return (f"<think>x</think>\n<answer>{answer_of(prompt)}</answer>", "length")

    rows, summary = run(cfg(tmp_path, limit=2), engine=FakeBackend(script), show=False)
    assert all(r["gsm8k.reason"] == "truncated" and r["gsm8k.correct"] is False for r in rows)
    assert rows[0]["gsm8k.details"]["untruncated"]["correct"] is True
    assert summary["adapters"]["base"]["truncation_rate"] == 1.0
    rows2, _ = run(cfg(tmp_path, limit=2, output=str(tmp_path / "r2"), score_truncated=True),
                   engine=FakeBackend(script), show=False)
    assert all(r["gsm8k.correct"] for r in rows2)


def test_a_stop_string_is_given_back_to_the_verifiers(tmp_path, monkeypatch):
    """``--stop '</answer>'`` cuts the tag from the text (vLLM's convention); the verifiers must still see
    it, or every answer would be "no_answer". samples.jsonl keeps the text as generated plus the stop string."""
    def script(prompt, adapter, sample):
        return (f"<think>x</think>\n<answer>{answer_of(prompt)}", "stop", "</answer>")

    rows, _ = run(cfg(tmp_path, limit=3, stop=("</answer>",)), engine=FakeBackend(script), show=False)
    assert all(r["gsm8k.correct"] and r["format.correct"] for r in rows), [r["gsm8k.reason"] for r in rows]
    assert all(r["stop_string"] == "</answer>" and not r["completion"].endswith("</answer>") for r in rows)
    monkeypatch.setattr(runner_mod, "open_backend", lambda config: pytest.fail("rescore loads no model"))
    again, _ = run(cfg(tmp_path, limit=3, stop=("</answer>",), rescore=True), show=False)
    assert [r["gsm8k.correct"] for r in again] == [True] * 3

    def unclosed(prompt, adapter, sample):  # ended by EOS, no stop string: an unclosed tag stays unclosed
        return (f"<think>x</think>\n<answer>{answer_of(prompt)}", "stop")

    rows, _ = run(cfg(tmp_path, limit=3, output=str(tmp_path / "eos")), engine=FakeBackend(unclosed), show=False)
    assert not any(r["format.correct"] for r in rows) and all("stop_string" not in r for r in rows)


def test_resume_after_kill_generates_only_missing_items(tmp_path):
    config = cfg(tmp_path, limit=6, chunk_size=2)
    killed = FakeBackend(even_items_right, fail_after_calls=2)
    with pytest.raises(KeyboardInterrupt):
        run(config, engine=killed, show=False)
    partial = read_rows(tmp_path / "run" / "samples.jsonl")
    assert len(partial) == 4  # two chunks of two items were flushed before the kill
    # a torn last line (killed mid-write) is dropped, not an error
    with open(tmp_path / "run" / "samples.jsonl", "a") as fh:
        fh.write('{"benchmark": "gsm8k", "item_id": "4", "compl')
    again = FakeBackend(even_items_right)
    rows, summary = run(config, engine=again, show=False)
    assert sum(c[0] for c in again.calls) == 2  # only the two missing items
    assert summary["resumed_groups"] == 4
    full, _ = run(cfg(tmp_path, output=str(tmp_path / "full")), engine=FakeBackend(even_items_right), show=False)
    key = lambda r: (r["item_id"], r["sample"], r["completion"], r["gsm8k.correct"])  # noqa: E731
    assert sorted(map(key, rows)) == sorted(map(key, full))
    assert len(read_rows(tmp_path / "run" / "samples.jsonl")) == 6


def test_resume_with_other_settings_is_refused(tmp_path):
    run(cfg(tmp_path, limit=2), engine=FakeBackend(even_items_right), show=False)
    with pytest.raises(ReasonkitError, match="max_tokens"):
        run(cfg(tmp_path, limit=2, max_tokens=64), engine=FakeBackend(even_items_right), show=False)
    # a larger limit is fine: the first two items are reused
    again = FakeBackend(even_items_right)
    run(cfg(tmp_path, limit=4), engine=again, show=False)
    assert sum(c[0] for c in again.calls) == 2


def test_rescore_needs_no_model(tmp_path, monkeypatch):
    run(cfg(tmp_path, limit=4), engine=FakeBackend(even_items_right), show=False)
    path = tmp_path / "run" / "samples.jsonl"
    rows = read_rows(path)
    for r in rows:  # corrupt the verdicts: rescore must recompute them from the completions
        r["gsm8k.correct"] = None
        r["gsm8k.reason"] = "bogus"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def no_model(config):
        raise AssertionError("rescore must not load a model")

    monkeypatch.setattr(runner_mod, "open_backend", no_model)
    rows2, summary = run(cfg(tmp_path, limit=4, rescore=True), show=False)
    assert all(r["gsm8k.reason"] in ("correct", "not_equal") for r in rows2)
    fresh, _ = run(cfg(tmp_path, limit=4, output=str(tmp_path / "x")), engine=FakeBackend(even_items_right),
                   show=False)
    assert [r["gsm8k.correct"] for r in rows2] == [r["gsm8k.correct"] for r in fresh]
    # rescoring with another verifier replaces the columns
    rows3, summary3 = run(cfg(tmp_path, rescore=True, verifiers=("gsm8k_flexible",)), show=False)
    assert "gsm8k.correct" not in rows3[0] and "gsm8k_flexible.correct" in rows3[0]
    assert summary3["primary_verifier"] == "gsm8k_flexible"


def _adapter_dir(path, nonzero=True):
    import torch
    from safetensors.torch import save_file

    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text(json.dumps({"r": 4, "peft_type": "LORA"}))
    b = torch.ones(8, 4) if nonzero else torch.zeros(8, 4)
    save_file({"base_model.model.layers.0.q_proj.lora_A.weight": torch.ones(4, 8),
               "base_model.model.layers.0.q_proj.lora_B.weight": b}, str(path / "adapter_model.safetensors"))
    return path


def test_adapters_side_by_side_and_ignored_adapter_warning(tmp_path):
    good = _adapter_dir(tmp_path / "good")
    ignored = _adapter_dir(tmp_path / "ignored")
    fresh = _adapter_dir(tmp_path / "fresh", nonzero=False)
    config = cfg(tmp_path, limit=4, lora=(str(good), f"ign={ignored}", f"fresh={fresh}"))
    engine = FakeBackend(even_items_right)
    rows, summary = run(config, engine=engine, show=False)
    assert {c[1] for c in engine.calls} == {None, "good", "ign", "fresh"}
    acc = {a: summary["adapters"][a]["verifiers"]["gsm8k"]["accuracy"] for a in summary["adapters"]}
    assert acc["good"] == 1.0 and acc["base"] < 1.0 and acc["ign"] == acc["base"]
    warnings = " ".join(summary["warnings"])
    assert "'ign'" in warnings and "identical to the base" in warnings
    assert "'fresh'" not in warnings  # zero lora_B: identical output is expected
    assert "'good'" not in warnings
    header, body, tests = report([tmp_path / "run"])
    assert header == ["metric", "base", "good", "ign", "fresh"]
    t = next(t for t in tests if t["column"] == "good")
    assert t["wins"] == 4 - round(acc["base"] * 4) and t["losses"] == 0


def test_report_two_runs_csv_and_markdown(tmp_path):
    run(cfg(tmp_path, limit=6, output=str(tmp_path / "a")), engine=FakeBackend(even_items_right), show=False)
    run(cfg(tmp_path, limit=6, output=str(tmp_path / "b")),
        engine=FakeBackend(lambda p, a, s: even_items_right(p, "good", s)), show=False)
    result = CliRunner().invoke(main, ["report", str(tmp_path / "a"), str(tmp_path / "b"),
                                       "--csv", str(tmp_path / "r.csv"), "--markdown", str(tmp_path / "r.md")])
    assert result.exit_code == 0, result.output
    csv_text = (tmp_path / "r.csv").read_text()
    assert csv_text.startswith("metric,a:base,b:base")
    md = (tmp_path / "r.md").read_text()
    assert "| metric | a:base | b:base |" in md and "sign test" in md
    assert "gsm8k accuracy %" in result.output


def test_report_output_in_missing_folder_is_refused_before_the_table(tmp_path):
    run(cfg(tmp_path, limit=2, output=str(tmp_path / "a")), engine=FakeBackend(even_items_right), show=False)
    for flag in ("--csv", "--markdown"):
        result = CliRunner().invoke(main, ["report", str(tmp_path / "a"), flag, str(tmp_path / "no" / "r.out")])
        assert result.exit_code == 2, result.output
        assert result.output.strip() == f"Error: {tmp_path / 'no' / 'r.out'}: folder {tmp_path / 'no'} does not exist"


def test_output_that_is_a_file_and_generate_file_not_utf8_are_one_line(tmp_path, fake_engine):
    taken = tmp_path / "taken"
    taken.write_text("x")
    result = CliRunner().invoke(main, ["eval", "--limit", "1", "-o", str(taken), "-q"])
    assert result.exit_code == 2 and result.output.startswith(f"Error: --output {taken}: "), result.output
    assert len(result.output.strip().splitlines()) == 1
    latin = tmp_path / "prompts.txt"
    latin.write_bytes("caf\u00e9?".encode("latin-1"))
    result = CliRunner().invoke(main, ["generate", "--file", str(latin)])
    assert result.exit_code == 2, result.output
    assert result.output.strip().startswith(f"Error: --file {latin}: not UTF-8 text (")


def test_evaluate_returns_dataframe_with_summary(tmp_path):
    df = reasonkit.evaluate(benchmark="gsm8k", engine=FakeBackend(even_items_right), show=False, limit=3,
                            verifiers=VERIFIERS, output=str(tmp_path / "lib"))
    assert len(df) == 3 and "gsm8k.correct" in df.columns
    assert df.attrs["summary"]["adapters"]["base"]["items"] == 3
    assert df["gsm8k.correct"].mean() == df.attrs["summary"]["adapters"]["base"]["verifiers"]["gsm8k"]["accuracy"]


def test_custom_benchmark_with_column_mapping(tmp_path):
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"What is {i} + {i}?", "gold": str(2 * i)}) + "\n"
                            for i in range(5)))

    def script(prompt, adapter, sample):
        i = int(re.search(r"What is (\d+)", prompt).group(1))
        return f"The answer is {2 * i if i % 2 else 0}."

    config = EvalConfig(benchmark="custom", data=str(data), verifiers=("gsm8k",), template="Q: {question}",
                        columns={"question": "prompt", "answer": "gold"}, limit=None, output=str(tmp_path / "c"))
    rows, summary = run(config, engine=FakeBackend(script), show=False)
    assert "<|user|>Q: What is 0 + 0?" in rows[0]["prompt"]
    assert [r["gsm8k.correct"] for r in rows] == [True, True, False, True, False]


def test_raw_template_and_few_shot():
    t = PromptTemplate(user="{question}", system="Solve.", raw=True, few_shot=(("1+1?", "2"),), prefill="Let's see.")
    assert t.render({"question": "2+2?"}) == "Solve.\n\nQuestion: 1+1?\nAnswer: 2\n\nQuestion: 2+2?\nAnswer: Let's see."
    b = get_benchmark("gsm8k", verifiers=("gsm8k",), few_shot=2)
    text = b.render(b.load(limit=1)[0], FakeTokenizer())
    assert text.count("<|user|>") == 3 and text.count("<|assistant|>") == 3
    assert "<answer>72</answer>" in text  # first train item's worked answer
    with pytest.raises(ReasonkitError, match="no chat template"):
        PromptTemplate().render({"question": "x"}, object())


def test_few_shot_never_shows_the_item_being_asked():
    """Sampling the train split with few-shot (``sft --sample-few-shot``): the first k train items are
    the examples, and each of them is also asked. Its own worked answer must not be in its prompt: the
    spare example takes its place (k examples still), as lm-eval leaves the current document out."""
    from reasonkit.tasks.prompts import fill

    b = get_benchmark("countdown", verifiers=("countdown",), few_shot=2)
    train = b.load("train", limit=3)
    for item in train:
        text = b.render(item, FakeTokenizer())
        question = fill(b.template.user, item)
        assert text.count(question) == 1, item["id"]  # asked once, never shown as an example
        assert text.count("<|user|>") == 3 and text.count("<|assistant|>") == 3  # still two examples
    test_item = b.load("test", limit=1)[0]
    assert b.template.shots(test_item) == b.template.few_shot  # another split: the examples as they are
    assert [q for q, _ in b.template.shots(train[0])] == [fill(b.template.user, train[1]), fill(b.template.user, train[2])]
    assert "few_shot_spare" not in get_benchmark("countdown", verifiers=("countdown",)).template.to_dict()


def test_countdown_generator_is_seeded_and_solvable():
    import random

    from reasonkit.verifiers import resolve

    verify = resolve("countdown")
    tasks = [generate_countdown(random.Random(i)) for i in range(300)]
    assert all(len(t["numbers"]) in (3, 4) and 1 <= t["target"] <= 100 for t in tasks)
    assert {len(t["numbers"]) for t in tasks} == {3, 4}
    assert all(verify(f"<answer>{t['solution']}</answer>", numbers=t["numbers"], target=t["target"]).correct
               for t in tasks)
    b1, b2 = get_benchmark("countdown"), get_benchmark("countdown")
    assert b1.load(limit=20) == b2.load(limit=20)
    assert b1.load(limit=5) == b1.load(limit=20)[:5]  # a larger limit keeps the first items
    assert b1.load("train", limit=5) != b1.load("test", limit=5)
    assert get_benchmark("countdown", seed=1).load(limit=5) != b1.load(limit=5)


# --- the command line ---------------------------------------------------------------------------------------

@pytest.fixture
def fake_engine(monkeypatch):
    engines = []

    def open_backend(config):
        engines.append(FakeBackend(even_items_right))
        return engines[-1], "fake-model"

    monkeypatch.setattr(runner_mod, "open_backend", open_backend)
    return engines


def test_cli_eval_with_fake_backend(tmp_path, fake_engine):
    out = tmp_path / "cli"
    args = ["eval", "--limit", "3", "--output", str(out), "-q"] + sum((["--verifier", v] for v in VERIFIERS), [])
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "wrote 3 samples" in result.output and "gsm8k accuracy" in result.output
    assert len(read_rows(out / "samples.jsonl")) == 3
    # the same command again: nothing left to generate, no engine opened
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert len(fake_engine) == 1


@pytest.mark.parametrize("args, message", [
    (["--benchmark", "gsm8", "--limit", "1"], "unknown benchmark 'gsm8'; did you mean 'gsm8k'"),
    (["--verifier", "gsm8kk", "--limit", "1"], "unknown verifier 'gsm8kk'; did you mean 'gsm8k'"),
    (["--model", "./no/such/model"], "model path does not exist"),
    (["--lora", "/no/such/adapter"], "adapter directory does not exist"),
    (["--benchmark", "custom"], "needs --data"),
    (["--n", "4"], "identical greedy samples"),
    (["--backend", "tpu"], "--backend 'tpu'"),
    (["--limit", "x"], "--limit 'x'"),
    (["--data", "missing.jsonl"], "no such file"),
])
def test_cli_bad_input_is_one_line_exit_2(args, message, tmp_path):
    result = CliRunner().invoke(main, ["eval", "-o", str(tmp_path / "o")] + args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_cli_data_missing_columns_and_template_fields(tmp_path, fake_engine, monkeypatch):
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"prompt": "What is 2+2?", "gold": "4"}) + "\n")
    base = ["eval", "-b", "custom", "--data", str(data), "--verifier", "gsm8k", "-o", str(tmp_path / "o"), "-q"]
    r = CliRunner().invoke(main, base + ["--column", "question=prompt"])
    assert r.exit_code == 2 and "missing column 'answer'" in r.output, r.output
    r = CliRunner().invoke(main, base + ["--column", "answer=gold"])
    assert r.exit_code == 2 and "{question} has no column" in r.output, r.output
    r = CliRunner().invoke(main, base + ["--column", "answer=gold", "--template", "{prompt} in {units}"])
    assert r.exit_code == 2 and "{units} has no column" in r.output, r.output
    fake_engine.clear()
    monkeypatch.setattr(runner_mod, "open_backend",
                        lambda config: (FakeBackend(lambda p, a, s: "<answer>4</answer>"), "fake-model"))
    r = CliRunner().invoke(main, base + ["--column", "answer=gold", "--column", "question=prompt"])
    assert r.exit_code == 0, r.output
    assert read_rows(tmp_path / "o" / "samples.jsonl")[0]["gsm8k.correct"] is True


def test_cli_adapter_for_another_base(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 4, "base_model_name_or_path": "Qwen/Qwen2.5-7B"}))
    r = CliRunner().invoke(main, ["eval", "--model", str(model), "--lora", str(adapter), "-o", str(tmp_path / "o"),
                                  "--verifier", "gsm8k", "-q"])
    assert r.exit_code == 2, r.output
    assert "was trained on Qwen/Qwen2.5-7B" in r.output


def test_cli_resume_mismatch_and_rescore_without_run(tmp_path, fake_engine):
    out = str(tmp_path / "run")
    assert CliRunner().invoke(main, ["eval", "--limit", "2", "-o", out, "-q", "--verifier", "gsm8k"]).exit_code == 0
    r = CliRunner().invoke(main, ["eval", "--limit", "2", "-o", out, "-q", "--verifier", "gsm8k", "--seed", "3"])
    assert r.exit_code == 2 and "existing run has seed=0" in r.output
    r = CliRunner().invoke(main, ["eval", "-o", str(tmp_path / "none"), "--rescore"])
    assert r.exit_code == 2 and "no config.json" in r.output
    r = CliRunner().invoke(main, ["report", str(tmp_path / "none")])
    assert r.exit_code == 2 and "not a run directory" in r.output


@pytest.mark.parametrize("name, verifiers", [
    ("gsm8k", ("gsm8k", "gsm8k_flexible", "stepwise", "format")),
    ("math500", ("math", "format")),
    ("countdown", ("countdown", "format")),
])
def test_default_benchmarks_resolve(name, verifiers):
    bench = get_benchmark(name)
    assert bench.verifiers == verifiers and bench.version >= 1
    items = bench.load(limit=2)
    assert [it["id"] for it in items] == ["0", "1"]
    for v in verifiers:
        bench.references(items[0], v)  # every reference field is present


def test_cli_generate_prompts_and_file(tmp_path, monkeypatch):
    seen = []

    def open_backend(config):
        engine = FakeBackend(lambda p, a, s: f"reply from {a or 'base'}")
        seen.append((engine, config))
        return engine, "fake-model"

    monkeypatch.setattr(eval_cli, "open_backend", open_backend)  # `generate` opens the backend itself
    prompts = tmp_path / "p.txt"
    prompts.write_text("What is 2+2?\n\nName a prime.\n")
    adapter = _adapter_dir(tmp_path / "ad")
    r = CliRunner().invoke(main, ["generate", "Hello?", "--file", str(prompts), "--lora", f"mine={adapter}",
                                  "--max-tokens", "8"])
    assert r.exit_code == 0, r.output
    assert r.output.count("reply from mine") == 3 and "### Name a prime." in r.output
    assert seen[0][0].closed and seen[0][1].max_tokens == 8
    r = CliRunner().invoke(main, ["generate"])
    assert r.exit_code == 2 and "no prompt" in r.output


def test_default_gsm8k_verifiers_score_steps_and_format(tmp_path):
    def script(prompt, adapter, sample):
        return "<think>\n48 / 2 = 24\n48 + 24 = 71\n</think>\n<answer>72</answer>"

    rows, summary = run(EvalConfig(limit=2, output=str(tmp_path / "d")), engine=FakeBackend(script), show=False)
    base = summary["adapters"]["base"]
    assert list(base["verifiers"]) == ["gsm8k", "gsm8k_flexible", "stepwise", "format"]
    assert base["stepwise_accuracy"] == pytest.approx(0.5)  # one of two steps is right
    assert base["format_compliance"] == 1.0
    assert rows[0]["stepwise.score"] == pytest.approx(0.5)


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".json"])
def test_custom_data_formats(tmp_path, suffix):
    pd = pytest.importorskip("pandas")
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    df = pd.DataFrame({"q": ["What is 1 + 1?", "What is 2 + 2?"], "a": ["2", "4"]})
    path = tmp_path / f"data{suffix}"
    {".parquet": lambda: df.to_parquet(path), ".csv": lambda: df.to_csv(path, index=False),
     ".json": lambda: path.write_text(df.to_json(orient="records"))}[suffix]()
    config = EvalConfig(benchmark="custom", data=str(path), verifiers=("gsm8k",), limit=None,
                        columns={"question": "q", "answer": "a"}, output=str(tmp_path / "o"))
    rows, _ = run(config, engine=FakeBackend(lambda p, a, s: "The answer is 4."), show=False)
    assert [r["gsm8k.correct"] for r in rows] == [False, True]
    assert str(rows[1]["reference"]["answer"]) == "4"


def test_cli_interrupt_keeps_finished_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(runner_mod, "open_backend",
                        lambda config: (FakeBackend(even_items_right, fail_after_calls=1), "fake-model"))
    out = tmp_path / "int"
    r = CliRunner().invoke(main, ["eval", "--limit", "4", "--chunk-size", "2", "-o", str(out), "-q",
                                  "--verifier", "gsm8k"])
    assert r.exit_code == 130 and "run the same command to resume" in r.output
    assert len(read_rows(out / "samples.jsonl")) == 2


def test_hub_fallback_and_offline_detection(monkeypatch):
    from reasonkit.tasks import data as data_mod

    data_mod.hub_reachable.cache_clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert data_mod.hub_reachable() is False
    data_mod.hub_reachable.cache_clear()

    def broken_hub(repo, config, split):
        raise ConnectionError("hub down")

    monkeypatch.setattr(data_mod, "hub_reachable", lambda: True)
    monkeypatch.setattr(data_mod, "read_hub", broken_hub)
    bench = get_benchmark("gsm8k", verifiers=("gsm8k",))
    assert len(bench.load(limit=3)) == 3 and bench.source == "offline:gsm8k_test.jsonl"
    monkeypatch.setattr(data_mod, "read_hub", lambda repo, config, split: [{"question": "q?", "answer": "#### 1"}])
    assert bench.load()[0]["question"] == "q?" and bench.source == "hub:openai/gsm8k:main"
    with pytest.raises(ReasonkitError, match="no train split"):
        get_benchmark("math500", verifiers=("format",), few_shot=1)


def test_evaluate_import_is_light():
    import subprocess
    import sys

    code = ("import sys, reasonkit; reasonkit.evaluate; from reasonkit.tasks.registry import get_benchmark; "
            "print(sorted(m for m in ('torch', 'transformers', 'vllm', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- issue 23, item 4 and (c): everything that changes a completion or a verdict is the run's identity ---

@pytest.mark.parametrize("first, second, setting", [
    ([], ["--score-truncated"], "score_truncated"),
    ([], ["--chat-template-kwargs", "enable_thinking=false"], "chat_template_kwargs.enable_thinking"),
    (["--dtype", "bfloat16"], ["--dtype", "float32"], "engine_options.dtype"),
    ([], ["--dtype", "float32"], "engine_options.dtype"),
    ([], ["--backend-options", "fast_decode=false"], "engine_options.fast_decode"),
    ([], ["--batch-size", "3"], "engine_options.batch_size"),
    ([], ["--system", "Be brief."], "template.system"),
    ([], ["--stop", "###"], "stop"),
    ([], ["--max-tokens", "64"], "max_tokens"),
])
def test_issue23_item4_resume_refuses_a_changed_setting(tmp_path, fake_engine, first, second, setting):
    base = ["eval", "--limit", "2", "-o", str(tmp_path / "run"), "-q", "--verifier", "gsm8k"]
    assert CliRunner().invoke(main, base + first).exit_code == 0
    r = CliRunner().invoke(main, base + second)
    assert r.exit_code == 2, r.output
    assert f"existing run has {setting}=" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_issue23_item4_settings_that_change_nothing_resume(tmp_path, fake_engine):
    base = ["eval", "-o", str(tmp_path / "run"), "-q", "--verifier", "gsm8k"]
    assert CliRunner().invoke(main, base + ["--limit", "2", "--chunk-size", "1"]).exit_code == 0
    r = CliRunner().invoke(main, base + ["--limit", "3", "--backend-options", "threads=1"])
    assert r.exit_code == 0, r.output
    assert [e.calls for e in fake_engine][-1] == [(1, None)]  # only the new item was generated


def test_issue23_item4_auto_backend_is_chosen_once_per_run(tmp_path, monkeypatch):
    """``--backend auto`` chooses by the tokens left; a resume with fewer left kept its first choice."""
    from reasonkit import engine as backends

    monkeypatch.setattr(backends, "vllm_available", lambda: True)
    monkeypatch.setattr(backends, "_has_gpu", lambda: False)
    monkeypatch.setattr(backends, "CPU_VLLM_STARTUP_S", 9.6)  # break-even at 800 tokens: 4 x 256 -> vllm, 1 -> hf
    opened = []

    def open_backend(config):
        opened.append(config.backend)
        return FakeBackend(even_items_right), "fake-model"

    monkeypatch.setattr(runner_mod, "open_backend", open_backend)
    base = ["eval", "-o", str(tmp_path / "run"), "-q", "--verifier", "gsm8k"]
    assert CliRunner().invoke(main, base + ["--limit", "4"]).exit_code == 0
    assert CliRunner().invoke(main, base + ["--limit", "5"]).exit_code == 0
    assert opened == ["vllm", "vllm"]
    r = CliRunner().invoke(main, base + ["--limit", "6", "--backend", "hf"])
    assert r.exit_code == 2 and "existing run has resolved_backend='vllm'" in r.output


def test_issue23_item4_every_config_field_says_whether_it_is_identity():
    from dataclasses import dataclass, field

    from reasonkit.eval.config import RESUME_KEYS
    from reasonkit.eval.identity import identity_keys

    for key in ("score_truncated", "chat_template_kwargs", "engine_options", "resolved_backend", "template",
                "adapters", "benchmark_version", "stop", "seed"):
        assert key in RESUME_KEYS
    for key in ("limit", "output", "chunk_size", "rescore", "base_url", "concurrency"):
        assert key not in RESUME_KEYS

    @dataclass
    class Forgot:
        a: int = field(default=0, metadata={"identity": True})
        b: int = 0

    with pytest.raises(TypeError, match="Forgot.b"):
        identity_keys(Forgot)


@pytest.fixture
def answer_four(monkeypatch):
    monkeypatch.setattr(runner_mod, "open_backend",
                        lambda config: (FakeBackend(lambda p, a, s: "<answer>4</answer>"), "fake-model"))


def test_issue23_itemc_data_edited_in_place_is_refused_on_resume_and_rescore(tmp_path, answer_four):
    data = tmp_path / "qa.jsonl"
    rows = [{"question": f"What is {i} + {4 - i}?", "answer": "#### 4"} for i in range(3)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    base = ["eval", "-b", "custom", "--data", str(data), "--verifier", "gsm8k", "-o", str(tmp_path / "run"), "-q"]
    assert CliRunner().invoke(main, base + ["--limit", "2"]).exit_code == 0
    assert CliRunner().invoke(main, base + ["--limit", "3"]).exit_code == 0  # unchanged rows: resumes
    rows[1] = {"question": "What is 2 + 3?", "answer": "#### 5"}  # edited in place: same row, other task
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for extra in (["--limit", "3"], ["--rescore"]):
        r = CliRunner().invoke(main, base + extra)
        assert r.exit_code == 2, r.output
        assert f"{data}: item 1 is not the one" in r.output and len(r.output.strip().splitlines()) == 1


# --- issue 23, item 5: report pairs items by identity and says what differs between runs ----------

def _countdown_run(tmp_path, name, seed, **kw):
    config = EvalConfig(benchmark="countdown", limit=4, seed=seed, output=str(tmp_path / name), **kw)
    return run(config, engine=FakeBackend(lambda p, a, s: "<answer>1 + 2</answer>"), show=False)


def test_issue23_item5_report_does_not_pair_different_tasks_under_one_id(tmp_path):
    """Countdown with seeds 0 and 1: ids 0..3 are different tasks. Paired by index they made a sign test
    over 4 "shared" items; by identity they share none."""
    _countdown_run(tmp_path, "s0", 0)
    _countdown_run(tmp_path, "s1", 1)
    result = CliRunner().invoke(main, ["report", str(tmp_path / "s0"), str(tmp_path / "s1")])
    assert result.exit_code == 0, result.output
    header, body, tests = report([tmp_path / "s0", tmp_path / "s1"])
    assert tests[0]["shared_items"] == 0 and tests[0]["p_value"] is None
    assert tests[0]["same_id_other_content"] == 4
    out = " ".join(result.output.split())
    assert "share no items" in out and "4 item id(s) of s1:base are in s0:base with other content" in out
    assert "seed: s0=0, s1=1" in out


def test_issue23_item5_report_names_differing_settings_and_counts_differing_completions(tmp_path):
    run(cfg(tmp_path, limit=4, output=str(tmp_path / "a")), engine=FakeBackend(even_items_right), show=False)
    good = lambda p, a, s: even_items_right(p, "good", s)  # noqa: E731 - one of the 4 items is answered otherwise
    run(cfg(tmp_path, limit=4, output=str(tmp_path / "b"), max_tokens=64, backend_options={"dtype": "float32"}),
        engine=FakeBackend(good), show=False)
    result = CliRunner().invoke(main, ["report", str(tmp_path / "a"), str(tmp_path / "b"),
                                       "--markdown", str(tmp_path / "r.md")])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "max tokens: a=256, b=64" in out and "dtype: a='auto', b='float32'" in out
    assert "a:base vs b:base (same model and adapter): 1 of 4 completions differ" in out
    assert out.index("max tokens") < out.index("gsm8k accuracy")  # above the table
    assert "max tokens: a=256, b=64" in (tmp_path / "r.md").read_text()
    header, body, tests = report([tmp_path / "a", tmp_path / "b"])
    assert tests[0]["shared_items"] == 4  # same items: paired as before


@pytest.mark.parametrize("a_ref, b_ref, shared", [
    ({"answer": "#### 4"}, {"answer": "#### 4"}, 1),
    ({"answer": "#### 4"}, {"answer": "#### 5"}, 0),
])
def test_issue23_item5_rows_without_fingerprint_pair_on_their_reference(a_ref, b_ref, shared):
    from reasonkit.eval.report import Column

    def col(ref, label, fingerprint=None):
        row = {"benchmark": "gsm8k", "item_id": "0", "sample": 0, "reference": ref, "completion": "x"}
        if fingerprint:
            row["item_fingerprint"] = fingerprint
        return Column(label, {}, rows=[row])

    assert len(col(a_ref, "a").shared_with(col(b_ref, "b"))[0]) == shared  # two runs written before fingerprints
    assert len(col(a_ref, "a", "f1").shared_with(col(b_ref, "b"))[0]) == shared  # one new, one old
    assert len(col(a_ref, "a", "f1").shared_with(col(a_ref, "b", "f2"))[0]) == 0  # content hashes decide


class _SeedRecorder(FakeBackend):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.seeds: dict[str, int] = {}

    def generate(self, prompts, sampling, adapter=None, progress=None):
        outs = super().generate(prompts, sampling, adapter, progress)
        for p, seed in zip(prompts, sampling.seeds):
            self.seeds[answer_of(p)] = seed
        return outs


def test_issue23_itemb_an_item_gets_its_seed_whatever_its_chunk_or_a_resume(tmp_path):
    sampled = dict(temperature=0.7, n=2, limit=5)
    whole = _SeedRecorder(even_items_right)
    run(cfg(tmp_path, output=str(tmp_path / "whole"), chunk_size=5, **sampled), engine=whole, show=False)
    killed = _SeedRecorder(even_items_right, fail_after_calls=1)
    with pytest.raises(KeyboardInterrupt):
        run(cfg(tmp_path, output=str(tmp_path / "parts"), chunk_size=2, **sampled), engine=killed, show=False)
    resumed = _SeedRecorder(even_items_right)
    run(cfg(tmp_path, output=str(tmp_path / "parts"), chunk_size=3, **sampled), engine=resumed, show=False)
    assert len(killed.seeds) == 2 and len(resumed.seeds) == 3
    assert {**killed.seeds, **resumed.seeds} == whole.seeds
    assert len(set(whole.seeds.values())) == 5  # one seed per item
    other = _SeedRecorder(even_items_right)
    run(cfg(tmp_path, output=str(tmp_path / "other"), seed=1, **sampled), engine=other, show=False)
    assert set(other.seeds.values()).isdisjoint(whole.seeds.values())  # --seed still matters
