"""Shared fixtures.

* ``default_model_path`` (session): the embedded SmolLM2-135M-Instruct as a cached safetensors
  directory (converted from the GGUF file on first use, ~25 s; then reused from
  ``$REASONKIT_CACHE`` or ``~/.cache/reasonkit``).
* ``tiny_model_dir`` (session): a tiny randomly initialised Llama (hidden 64, 2 layers; weights drawn
  with std 0.2 so greedy output is varied text rather than one repeated token) saved with a tiny
  byte-level BPE tokenizer (1024 tokens, SmolLM2's special tokens and chat template; trained in the
  session by ``tests/tiny_tokenizer.py``) to a temp directory, for fast unit tests of generation and
  training code. Needs neither the GGUF file nor its conversion; loads in well under a second.
* ``tiny_lora_dirs`` (session): two different LoRA adapters (r=8, q/v projections, non-zero
  random B matrices) for the tiny model, as ``{"a": path, "b": path}``.
* ``browser`` (session): a headless selenium Chrome webdriver on Debian's ``/usr/bin/chromium`` and
  ``/usr/bin/chromedriver`` (skips the test when selenium or either binary is missing).

The directory of the running interpreter goes first on ``PATH``: CI runs ``.venv/bin/python -m pytest``
without activating the venv, and the tests that launch ``accelerate`` / ``torchrun`` / ``reasonkit``
as real processes looked them up on ``PATH`` and skipped themselves when they were not there (so the
DDP, DeepSpeed and FSDP2 tests never ran in CI). The venv's launchers are the ones that belong to
this interpreter.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# The test command runs many tiny models one after another: one torch thread each (a pool only adds
# barrier cost, and collapses when the machine is busy; see reasonkit/threads.py), unless the user set it.
# Set here, before any test module imports torch.
os.environ.setdefault("OMP_NUM_THREADS", "1")

_BIN = str(Path(sys.executable).parent)
if _BIN not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _BIN + os.pathsep + os.environ.get("PATH", "")


@pytest.fixture(scope="session")
def default_model_path() -> str:
    from reasonkit.engine.models import resolve_model

    return resolve_model(None)


@pytest.fixture(scope="session")
def default_tokenizer(default_model_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(default_model_path)


TINY_CONFIG = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=2, max_position_embeddings=2048, tie_word_embeddings=True,
                   initializer_range=0.2)  # 0.2, not 0.02: varied greedy text instead of one token repeated


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from tiny_tokenizer import build_tiny_tokenizer

    out = tmp_path_factory.mktemp("tiny-llama")
    tok = build_tiny_tokenizer(out)
    config = LlamaConfig(vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, **TINY_CONFIG)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                               pad_token_id=tok.pad_token_id)
    model.save_pretrained(out, safe_serialization=True)
    return str(out)


def make_lora_adapter(model_dir: str, out_dir, seed: int, r: int = 8, target_modules=("q_proj", "v_proj"),
                      scale: float = 1.0) -> str:
    """Save a LoRA adapter for ``model_dir`` with random, non-zero weights (no training)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    torch.manual_seed(seed)
    peft_model = get_peft_model(base, LoraConfig(r=r, lora_alpha=2 * r, target_modules=list(target_modules),
                                                 init_lora_weights=False, task_type="CAUSAL_LM"))
    if scale != 1.0:
        with torch.no_grad():
            for name, param in peft_model.named_parameters():
                if "lora_" in name:
                    param.mul_(scale)
    peft_model.save_pretrained(str(out_dir))
    return str(out_dir)


@pytest.fixture(scope="session")
def tiny_lora_dirs(tmp_path_factory, tiny_model_dir) -> dict[str, str]:
    root = tmp_path_factory.mktemp("tiny-loras")
    return {"a": make_lora_adapter(tiny_model_dir, root / "a", seed=1),
            "b": make_lora_adapter(tiny_model_dir, root / "b", seed=2)}


@pytest.fixture(scope="session")
def lora_factory():
    """``make_lora_adapter(model_dir, out_dir, seed, r=8, target_modules=("q_proj", "v_proj"), scale=1.0)``."""
    return make_lora_adapter


# --- browser (reasonkit view, docs site) ------------------------------------------------------------
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium driven by selenium (a ``selenium.webdriver.Chrome``), for any test that opens
    an HTML file (``browser.get(path.as_uri())``). Debian's ``chromium`` + ``chromium-driver``, which
    ``make setup`` installs (apt-get, as root) when missing; nothing downloads a browser at run time.
    Skipped only when Chromium is not installed. Window 1400x1000, so screenshots are comparable."""
    import shutil

    chromium = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if chromium is None:
        pytest.skip(f"Chromium is not installed ({CHROMIUM}); `make setup` as root installs chromium and "
                    "chromium-driver with apt-get")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not os.path.exists(driver_path):
        pytest.fail(f"{chromium} is installed but chromedriver is not: apt-get install chromium-driver")
    options = Options()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", "--allow-file-access-from-files"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
# --- end browser ---
