"""One config pattern (issue 27, item 3): the ``reasonkit eval`` / ``train`` / ``sft`` options are generated
from their dataclasses' field metadata (type, Literal choices, bounds, help, aliases, repeatable), ``eval
--config FILE.yaml`` lays flags over a YAML file of EvalConfig fields, every run saves its resolved config
and the saved file re-runs to the same config; one run-directory rule and one adapter-directory check."""
from __future__ import annotations

import dataclasses
import typing

import click
import pytest
import yaml
from click.testing import CliRunner

from reasonkit.cli import main
from reasonkit.config_cli import (EXPLICIT_NONE, base_type, check_fields, field_options, literal_choices,
                                  overrides, run_dir)
from reasonkit.errors import ReasonkitError
from reasonkit.eval.cli import eval_cmd
from reasonkit.eval.config import EvalConfig
from reasonkit.grpo.cli import train_cmd
from reasonkit.grpo.config import ConfigError, TrainConfig
from reasonkit.engine.models import check_adapter_dir
from reasonkit.sft.cli import sft_cmd
from reasonkit.sft.config import SFTConfig

from cli_checks import one_line_error, use_fake_engine


def _params(cmd: click.Command) -> dict[str, click.Option]:
    return {p.name: p for p in cmd.params}


@pytest.mark.parametrize("cls, cmd", [(EvalConfig, eval_cmd), (TrainConfig, train_cmd), (SFTConfig, sft_cmd)],
                         ids=["eval", "train", "sft"])
def test_every_field_is_a_flag_with_its_type_choices_and_help(cls, cmd):
    hints, params = typing.get_type_hints(cls), _params(cmd)
    for f in dataclasses.fields(cls):
        meta = dict(f.metadata)
        if meta.get("cli") is False:
            assert f.name not in params or f.name == "resume"  # train's hand-written --resume [PATH]
            continue
        opt = params.get(f.name)
        assert opt is not None, f"{cls.__name__}.{f.name} has no flag"
        assert meta.get("help") and meta["help"] in " ".join((opt.help or "").split()), f.name
        assert opt.default is None, f"{f.name}: a flag must default to 'not given' so it can override --config"
        assert opt.opts[0] == (meta.get("flags") or ["--" + f.name.replace("_", "-")])[0]
        tp, choices = base_type(hints[f.name]), literal_choices(hints[f.name])
        if meta.get("multiple"):
            assert opt.multiple, f.name
        elif tp is bool:
            assert opt.is_flag and opt.secondary_opts == ["--no-" + opt.opts[0][2:]], f.name
        elif choices:
            assert list(opt.type.choices) == choices, f.name
        elif meta.get("none_words"):
            assert opt.type.convert("all", opt, None) is EXPLICIT_NONE and opt.type.convert("3", opt, None) == 3
        elif tp is int:
            assert opt.type is click.INT, f.name
        elif tp is float:
            assert opt.type is click.FLOAT, f.name


# The eval flags and aliases users type (all kept from the hand-written CLI), field by field.
@pytest.mark.parametrize("field_name, decls, multiple", [
    ("model", ["--model", "-m"], False), ("benchmark", ["--benchmark", "-b"], False),
    ("output", ["--output", "-o"], False), ("n", ["--n"], False), ("lora", ["--lora"], True),
    ("verifiers", ["--verifier"], True), ("columns", ["--column"], True), ("stop", ["--stop"], True),
    ("base_url", ["--base-url"], True), ("backend_options", ["--backend-options"], False),
    ("chat_template_kwargs", ["--chat-template-kwargs"], False), ("limit", ["--limit"], False),
    ("batch_size", ["--batch-size"], False), ("dtype", ["--dtype"], False), ("split", ["--split"], False),
])
def test_eval_flag_names_aliases_and_repeatable_flags(field_name, decls, multiple):
    opt = _params(eval_cmd)[field_name]
    assert opt.opts == decls and opt.multiple is multiple
    assert {"-q", "--quiet", "--config"} <= {o for p in eval_cmd.params for o in p.opts}


@pytest.mark.parametrize("argv, expected", [
    ([], {}),
    (["-m", "x", "-b", "countdown", "-o", "d"], {"model": "x", "benchmark": "countdown", "output": "d"}),
    (["--lora", "a=p1", "--lora", "p2"], {"lora": ("a=p1", "p2")}),
    (["--verifier", "gsm8k", "--verifier", "format"], {"verifiers": ("gsm8k", "format")}),
    (["--column", "question=problem", "--column", "answer=sol"],
     {"columns": {"question": "problem", "answer": "sol"}}),
    (["--backend-options", "batch_size=4,dtype=bf16"], {"backend_options": {"batch_size": 4, "dtype": "bf16"}}),
    (["--limit", "all"], {"limit": None}), (["--limit", "5"], {"limit": 5}),
    (["--rescore", "--no-raw", "--temperature", "0.5"], {"rescore": True, "raw": False, "temperature": 0.5}),
])
def test_eval_flags_become_field_values(argv, expected):
    ctx = eval_cmd.make_context("eval", list(argv))
    params = dict(ctx.params)
    params.pop("config_file"), params.pop("quiet")
    assert overrides(field_options(EvalConfig), params) == expected


@pytest.mark.parametrize("argv, needle", [
    (["--limit", "x"], "--limit 'x': give a whole number or 'all'"),
    (["--backend", "hff"], "--backend 'hff': unknown choice 'hff'; did you mean 'hf'?"),
    (["--split", "dev"], "--split 'dev'"),
    (["--column", "question"], "--column 'question': write FIELD=COLUMN"),
    (["--top-p", "0"], "--top-p 0.0: must be in (0, 1]"),
    (["--few-shot", "-1"], "--few-shot -1: must be at least 0"),
    (["--concurrency", "0", "--backend", "openai", "--base-url", "http://h/v1"], "--concurrency 0: must be at least 1"),
])
def test_bad_eval_flag_is_one_line_exit_2(tmp_path, argv, needle):
    one_line_error(CliRunner().invoke(main, ["eval", "-o", str(tmp_path / "o"), *argv]), needle)


def test_batch_size_and_dtype_are_shortcuts_into_backend_options():
    cfg = EvalConfig(batch_size=4, dtype="float32", backend_options={"dtype": "bfloat16"})
    assert cfg.backend_options == {"dtype": "bfloat16", "batch_size": 4}  # an explicit backend option wins
    assert cfg.batch_size is None and cfg.dtype is None
    assert EvalConfig.from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()


# --------------------------------------------------------------------------- eval --config

def _run(tmp_path, monkeypatch, *argv):
    use_fake_engine(monkeypatch)
    return CliRunner().invoke(main, ["eval", "-q", *argv])


def test_config_file_values_then_flags_override_them(tmp_path, monkeypatch):
    cfg = tmp_path / "eval.yaml"
    cfg.write_text(yaml.safe_dump({"limit": 2, "seed": 5, "verifiers": ["gsm8k"], "max_tokens": 32,
                                   "output": str(tmp_path / "from-file")}))
    res = _run(tmp_path, monkeypatch, "--config", str(cfg), "--seed", "7", "-o", str(tmp_path / "run"))
    assert res.exit_code == 0, res.output
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert (saved["limit"], saved["max_tokens"], saved["verifiers"]) == (2, 32, ["gsm8k"])  # from the file
    assert (saved["seed"], saved["output"]) == (7, str(tmp_path / "run"))  # the flags win
    assert saved["temperature"] == 0.0 and saved["benchmark"] == "gsm8k"  # the dataclass defaults
    assert not (tmp_path / "from-file").exists()


def test_a_saved_config_reruns_to_the_same_config(tmp_path, monkeypatch):
    run = tmp_path / "run"
    res = _run(tmp_path, monkeypatch, "--limit", "2", "-o", str(run), "--verifier", "gsm8k", "--n", "2",
               "--temperature", "0.7", "--column", "question=question", "--backend-options", "batch_size=2")
    assert res.exit_code == 0, res.output
    saved = yaml.safe_load((run / "config.yaml").read_text())
    again = EvalConfig.from_yaml(run / "config.yaml")
    assert again.to_dict() == saved and again.n == 2 and again.columns == {"question": "question"}
    before = (run / "samples.jsonl").read_bytes()
    res = _run(tmp_path, monkeypatch, "--config", str(run / "config.yaml"))  # the same run: resumed, not redone
    assert res.exit_code == 0, res.output
    assert (run / "samples.jsonl").read_bytes() == before
    assert yaml.safe_load((run / "config.yaml").read_text()) == saved


@pytest.mark.parametrize("content, needle", [
    ({"limt": 2}, "unknown key 'limt'; did you mean 'limit'?"),
    ({"n": "two"}, "n = 'two': must be a whole number"),
    ({"temperature": "hot"}, "temperature = 'hot': must be a number"),
    ({"raw": "yes"}, "raw = 'yes': must be true or false"),
    ({"backend": "hff"}, "backend = 'hff': unknown backend 'hff'; did you mean 'hf'?"),
    ({"top_p": 2}, "top_p = 2.0: must be in (0, 1]"),
    ({"limit": 0}, "limit = 0: must be at least 1"),
    ({"columns": ["question"]}, "columns = ['question']: must be a mapping"),
    ("a: [1,\n", "not valid YAML"),
    ("- 1\n- 2\n", "must be a mapping of key: value lines"),
])
def test_bad_key_or_value_in_the_config_file_is_one_line_naming_it(tmp_path, content, needle):
    cfg = tmp_path / "eval.yaml"
    cfg.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    line = one_line_error(CliRunner().invoke(main, ["eval", "--config", str(cfg), "-o", str(tmp_path / "o")]),
                          needle)
    assert f"config {cfg}" in line
    assert not (tmp_path / "o").exists()


def test_flags_can_complete_a_config_file(tmp_path, monkeypatch):
    """Invariants between fields are checked once the flags are in (a file may leave --data to the command)."""
    data = tmp_path / "qa.jsonl"
    data.write_text('{"question": "2+2?", "answer": "4"}\n')
    cfg = tmp_path / "eval.yaml"
    cfg.write_text("benchmark: custom\nverifiers: [gsm8k]\n")
    one_line_error(CliRunner().invoke(main, ["eval", "--config", str(cfg)]), "--benchmark custom needs --data")
    res = _run(tmp_path, monkeypatch, "--config", str(cfg), "--data", str(data), "-o", str(tmp_path / "run"))
    assert res.exit_code == 0, res.output
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["data"] == str(data)


# --------------------------------------------------------------------------- shared pieces

@pytest.mark.parametrize("kind, output, task, model, expected", [
    ("eval", None, "gsm8k", None, "runs/eval/gsm8k-default"),
    ("eval", None, "gsm8k", "Qwen/Qwen2.5-0.5B-Instruct", "runs/eval/gsm8k-Qwen2.5-0.5B-Instruct"),
    ("eval", None, "math500", "/m/SmolLM2.Q4_1.gguf", "runs/eval/math500-SmolLM2.Q4_1"),
    ("train", None, "rg:leg_counting", None, "runs/train/rg_leg_counting-default"),
    ("sft", None, "countdown", "./models/tiny", "runs/sft/countdown-tiny"),
    ("train", "out/x", "countdown", None, "out/x"),
])
def test_one_run_directory_rule(kind, output, task, model, expected):
    assert run_dir(kind, output, task, model).as_posix() == expected


def test_the_three_configs_use_the_one_run_directory_rule():
    assert EvalConfig(model=None, benchmark="countdown").run_dir() == run_dir("eval", None, "countdown", None)
    assert TrainConfig(dataset="gsm8k").run_dir() == run_dir("train", None, "gsm8k", None)
    assert SFTConfig(dataset="gsm8k").run_dir() == run_dir("sft", None, "gsm8k", None)


@pytest.mark.parametrize("make, flag, needle", [
    (lambda p: None, "--lora", "--lora {p}: adapter directory does not exist"),
    (lambda p: p.mkdir(), "--lora", "--lora {p} is not a LoRA adapter: adapter_config.json is missing"),
    (lambda p: None, None, "adapter directory {p} does not exist"),
    (lambda p: p.mkdir(), "init_adapter", "init_adapter {p} is not a LoRA adapter"),
])
def test_one_adapter_directory_check(tmp_path, make, flag, needle):
    path = tmp_path / "adapter"
    make(path)
    with pytest.raises(ReasonkitError) as err:
        check_adapter_dir(path, flag)
    assert needle.format(p=path) in err.value.message
    (path.mkdir(exist_ok=True), (path / "adapter_config.json").write_text("{}"))
    assert check_adapter_dir(path, flag) == path


@pytest.mark.parametrize("cls, values, needle", [
    (EvalConfig, {"lora": "/no/adapter"}, "--lora /no/adapter: adapter directory does not exist"),
    (SFTConfig, {"init_adapter": "/no/adapter"}, "init_adapter /no/adapter: adapter directory does not exist"),
    (TrainConfig, {"init_adapter": "/no/adapter"}, "init_adapter: adapter directory /no/adapter does not exist"),
])
def test_eval_train_and_sft_run_the_one_adapter_check(cls, values, needle):
    with pytest.raises(ReasonkitError, match=needle.replace("(", r"\(")):
        cls(**values)


@dataclasses.dataclass
class _Bounded:
    a: int = dataclasses.field(default=1, metadata={"ge": 1})
    b: float = dataclasses.field(default=0.5, metadata={"gt": 0, "le": 1})
    c: float | None = dataclasses.field(default=None, metadata={"ge": 0, "lt": 1, "hint": " (a fraction)"})
    d: typing.Literal["x", "y"] = "x"


@pytest.mark.parametrize("values, needle", [
    ({"a": 0}, "a = 0: must be at least 1"), ({"a": True}, "a = True: must be a whole number"),
    ({"b": 0}, "b = 0.0: must be in (0, 1]"), ({"b": 1.5}, "b = 1.5: must be in (0, 1]"),
    ({"b": float("nan")}, "must be a finite number"),
    ({"c": 1.0}, "c = 1.0: must be in [0, 1) (a fraction)"), ({"d": "z"}, "d = 'z': unknown d 'z' (choose from: x, y)"),
])
def test_check_fields_bounds_and_types(values, needle):
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace("[", r"\[").replace(")", r"\)")):
        check_fields(_Bounded(**values), ConfigError)


def test_check_fields_accepts_good_values_and_makes_numbers_float():
    cfg = _Bounded(a=3, b=1, c=None, d="y")
    check_fields(cfg)
    assert cfg.b == 1.0 and isinstance(cfg.b, float)


def test_the_shipped_example_config_loads(monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    cfg = EvalConfig.from_yaml("examples/eval.yaml", max_tokens=32)
    assert (cfg.benchmark, cfg.limit, cfg.max_tokens, cfg.verifiers) == ("custom", None, 32, ("gsm8k",))
    assert cfg.columns == {"question": "prompt", "answer": "gold"}
