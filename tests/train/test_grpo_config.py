"""TrainConfig: invariants with messages that say the fix, YAML loading and overrides, and every
recipe / accelerate config shipped in train/."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from reasonkit.errors import ReasonkitError
from reasonkit.grpo.config import ConfigError, TrainConfig

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ROOT / "train"


def test_defaults_are_a_quick_valid_run():
    c = TrainConfig()
    assert c.model is None and c.use_lora and c.lora_r == 8
    assert c.reward_spec == "countdown+format"
    assert c.completions_per_step == 8 and c.micro_batch_size(1) == 8
    assert c.warmup_steps == 0 and c.trackers == []


@pytest.mark.parametrize("kwargs,message", [
    (dict(batch_size=6), "batch_size 6 is not divisible by group_size 4: use a multiple of 4 such as 8"),
    (dict(batch_size=8, prompts_per_step=3), "disagrees with prompts_per_step 3"),
    (dict(group_size=1), "group_size = 1: GRPO compares completions of the same prompt, so it needs at least 2"),
    (dict(epsilon_high=0.1), "epsilon_high = 0.1 is below epsilon = 0.2"),
    (dict(epsilon=1.5), "epsilon = 1.5: the clip range must be in (0, 1)"),
    (dict(beta=-0.1), "beta = -0.1: the KL weight must be >= 0"),
    (dict(loss_type="dr-grpo"), "unknown loss type 'dr-grpo'; did you mean 'dr_grpo'?"),
    (dict(scale_rewards="groups"), "unknown scale rewards 'groups'; did you mean 'group'?"),
    (dict(zero_variance="skipp"), "did you mean 'skip'?"),
    (dict(backend="vlm"), "did you mean 'vllm'?"),
    (dict(dtype="bf32"), "unknown dtype 'bf32'"),
    (dict(lr_scheduler="cosin"), "did you mean 'cosine'?"),
    (dict(dataset="gsm8"), "unknown dataset 'gsm8'; did you mean 'gsm8k'?"),
    (dict(rewards="countdwn+format"), "rewards 'countdwn+format': unknown verifier 'countdwn'; did you mean 'countdown'?"),
    (dict(rewards="countdown+*format"), "cannot read term '*format'"),
    (dict(dataset="custom"), "dataset custom needs data"),
    (dict(lora_r="8"), "lora_r = '8': must be a whole number"),
    (dict(learning_rate="fast"), "learning_rate = 'fast': must be a number"),
    (dict(mask_truncated="yes"), "mask_truncated = 'yes': must be true or false"),
    (dict(temperature=0), "temperature = 0.0: GRPO samples its completions"),
    (dict(top_p=1.5), "top_p = 1.5"),
    (dict(max_steps=0), "max_steps = 0: must be at least 1"),
    (dict(num_iterations=0), "num_iterations = 0"),
    (dict(warmup=2.5), "warmup = 2.5: give whole steps"),
    (dict(report_to="wandbb"), "did you mean 'wandb'?"),
    (dict(report_to=["none", "wandb"]), "'none' cannot be combined"),
    (dict(gradient_accumulation_steps=3), "gradient_accumulation_steps 3 does not divide the 8 completions"),
    (dict(per_device_batch_size=3), "per_device_batch_size 3 x gradient_accumulation_steps 1 does not divide"),
    (dict(lora_target_modules=[]), "lora_target_modules is empty"),
    (dict(lora_target_modules=5), "lora_target_modules 5: give module names"),
    (dict(report_to=5), "report_to 5: give a tracker name or a list of them"),
    (dict(data="missing/file.jsonl"), "data missing/file.jsonl: no such file"),
    (dict(resume="no/such/checkpoint"), "resume no/such/checkpoint: no such checkpoint directory"),
    (dict(split="validation"), "split = 'validation': unknown split 'validation' (choose from: test, train)"),
])
def test_invariants_say_the_fix(kwargs, message):
    with pytest.raises(ConfigError) as exc:
        TrainConfig(**kwargs)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_config_error_is_a_value_error_and_exits_2():
    with pytest.raises(ValueError):
        TrainConfig(group_size=1)
    err = ConfigError("x")
    assert isinstance(err, ReasonkitError) and err.exit_code == 2


def test_accepted_forms():
    c = TrainConfig(batch_size=16, group_size=8, report_to=["tensorboard", "wandb"], resume=True,
                    lora_target_modules="all-linear", warmup=0.25, max_steps=10, epsilon_high=0.28,
                    dataset="custom", data=str(ROOT / "reasonkit" / "data" / "gsm8k_test.jsonl"),
                    rewards="gsm8k+0.5*format", columns={"question": "question"})
    assert c.num_prompts_per_step == 2 and c.completions_per_step == 16
    assert c.trackers == ["tensorboard", "wandb"] and c.resume == "latest"
    assert c.warmup_steps == 3 and c.lora_target_modules == "all-linear"
    assert TrainConfig(lora_r=0).use_lora is False
    assert TrainConfig(learning_rate=1).learning_rate == 1.0  # ints accepted for floats


def test_check_world():
    c = TrainConfig(prompts_per_step=3, group_size=4)  # 12 completions
    assert c.micro_batch_size(2) == 6 and c.micro_batch_size(3) == 4
    with pytest.raises(ConfigError, match="cannot be split over 5 processes"):
        c.check_world(5)
    with pytest.raises(ConfigError, match="6 completions per process cannot be split into gradient_accumulation"):
        TrainConfig(prompts_per_step=3, group_size=4, gradient_accumulation_steps=4).check_world(2)
    with pytest.raises(ConfigError, match="set per_device_batch_size to 3"):
        TrainConfig(prompts_per_step=3, group_size=4, per_device_batch_size=6, gradient_accumulation_steps=2
                    ).check_world(2)


def test_deepspeed_values():
    c = TrainConfig(prompts_per_step=4, group_size=4, gradient_accumulation_steps=2, max_grad_norm=0.5)
    assert c.deepspeed_values(2) == {"train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 2,
                                     "train_batch_size": 16, "gradient_clipping": 0.5}


def test_yaml_round_trip_and_overrides(tmp_path):
    c = TrainConfig(group_size=8, rewards="countdown+0.5*format", lora_target_modules=["q_proj", "v_proj"],
                    epsilon_high=0.28, beta=0.04)
    path = c.to_yaml(tmp_path / "run" / "config.yaml")
    back = TrainConfig.from_yaml(path)
    assert back == c and back.to_dict() == c.to_dict()
    assert yaml.safe_load(path.read_text())["lora_target_modules"] == ["q_proj", "v_proj"]

    o = back.with_overrides(model=None, group_size=None, max_steps=3, lora_r=0)
    assert (o.max_steps, o.lora_r, o.group_size) == (3, 0, 8)
    assert back.with_overrides(model=None) is back
    # a step size given as a flag replaces the file's other form
    f = TrainConfig(prompts_per_step=2).with_overrides(batch_size=24)
    assert f.num_prompts_per_step == 6 and f.prompts_per_step is None
    with pytest.raises(ConfigError, match="batch_size 6 is not divisible by group_size 4"):
        TrainConfig().with_overrides(batch_size=6)
    with pytest.raises(ConfigError, match="did you mean 'lora_r'"):
        TrainConfig().with_overrides(lora_rank=4)


def test_yaml_errors_name_the_file_and_key(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("group_size: 4\nlora_rank: 16\n")
    with pytest.raises(ConfigError) as exc:
        TrainConfig.from_yaml(p)
    msg = str(exc.value)
    assert str(p) in msg and "'lora_rank'" in msg and "did you mean 'lora_r'" in msg

    p.write_text("group_size: 1\n")
    with pytest.raises(ConfigError, match=f"config {p}: group_size = 1"):
        TrainConfig.from_yaml(p)

    p.write_text("group_size: [4\nbeta: 0\n")
    with pytest.raises(ConfigError, match=r"not valid YAML") as exc:
        TrainConfig.from_yaml(p)
    assert "line" in str(exc.value) and "\n" not in str(exc.value)

    p.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        TrainConfig.from_yaml(p)
    with pytest.raises(ConfigError, match="cannot read it"):
        TrainConfig.from_yaml(tmp_path / "nope.yaml")
    p.write_text("")
    assert TrainConfig.from_yaml(p) == TrainConfig()


RECIPES = sorted(TRAIN.glob("*.yaml"))


def test_recipes_exist():
    assert {p.name for p in RECIPES} >= {"countdown-lora.yaml", "gsm8k-trl.yaml", "quick-cpu.yaml"}


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_recipe_loads(path):
    c = TrainConfig.from_yaml(path)
    assert set(yaml.safe_load(path.read_text())) <= set(c.to_dict())
    c.check_world(1)


def test_recipe_values():
    cd = TrainConfig.from_yaml(TRAIN / "countdown-lora.yaml")
    assert (cd.model, cd.group_size, cd.lora_r, cd.lora_alpha, cd.max_tokens) == ("Qwen/Qwen2.5-3B", 12, 32, 32, 1024)
    assert cd.reward_spec == "countdown+format" and cd.beta == 0.001
    cd.check_world(2)  # the recipe's 2 processes
    g = TrainConfig.from_yaml(TRAIN / "gsm8k-trl.yaml")
    assert (g.dataset, g.group_size, g.lora_alpha, g.max_tokens, g.lr_scheduler) == ("gsm8k", 16, 64, 786, "cosine")
    q = TrainConfig.from_yaml(TRAIN / "quick-cpu.yaml")
    assert q.model is None and q.max_steps <= 20 and q.reward_spec == "gsm8k_computed" and q.dataset.startswith("rg:chain_sum") and not q.score_truncated
    assert q.beta == 0.04  # the KL term (beta 0 made a measured run worse than the base: see the file)


ACCELERATE = {"single.yaml": "NO", "ddp.yaml": "MULTI_GPU", "deepspeed-zero2.yaml": "DEEPSPEED",
              "deepspeed-zero3.yaml": "DEEPSPEED", "fsdp2.yaml": "FSDP"}


@pytest.mark.parametrize("name,kind", sorted(ACCELERATE.items()))
def test_accelerate_configs(name, kind):
    cfg = yaml.safe_load((TRAIN / "accelerate" / name).read_text())
    assert cfg["distributed_type"] == kind
    assert isinstance(cfg["num_processes"], int) and cfg["num_processes"] >= 1
    if kind == "DEEPSPEED":
        ds_file = ROOT / cfg["deepspeed_config"]["deepspeed_config_file"]
        ds = json.loads(ds_file.read_text())
        assert ds["zero_optimization"]["stage"] == (2 if "zero2" in name else 3)
    if kind == "FSDP":
        assert cfg["fsdp_config"]["fsdp_version"] == 2


def test_accelerate_reads_the_configs():
    from accelerate.commands.config.config_args import load_config_from_file

    for name, kind in ACCELERATE.items():
        cfg = load_config_from_file(str(TRAIN / "accelerate" / name))
        assert cfg.distributed_type.value == kind if hasattr(cfg.distributed_type, "value") \
            else str(cfg.distributed_type) == kind


def test_import_is_light():
    code = ("import sys; import reasonkit.grpo.config as c; c.TrainConfig(); "
            "print(sorted(m for m in ('torch', 'transformers', 'vllm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_vllm_sync_and_the_auto_correction_follow_the_engine():
    from reasonkit.grpo.is_correction import engine_dtype_differs, resolve_mode

    assert TrainConfig(backend="vllm").resolved_vllm_sync() == "weights"
    assert TrainConfig(backend="vllm", vllm_sync="adapter").resolved_vllm_sync() == "adapter"
    server = TrainConfig(backend="vllm-server", base_url="http://127.0.0.1:1/v1")
    assert server.resolved_vllm_sync() == "adapter"
    # a bf16 engine under an fp32 trainer is corrected by default; the same dtype is not
    bf16 = TrainConfig(backend="vllm", dtype="fp32", backend_options={"dtype": "bfloat16"})
    same = TrainConfig(backend="vllm", dtype="fp32", backend_options={"dtype": "float32"})
    assert engine_dtype_differs(bf16) and not engine_dtype_differs(same)
    assert not engine_dtype_differs(TrainConfig(backend="vllm", dtype="fp32"))
    assert resolve_mode("auto", "vllm", engine_dtype_differs(bf16)) == "token_truncate"
    assert resolve_mode("auto", "vllm", engine_dtype_differs(same)) == "none"
    assert resolve_mode("none", "vllm", True) == "none"
