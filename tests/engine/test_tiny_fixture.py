"""The tiny model of the fast tests (tests/conftest.py: ``tiny_model_dir``, tokenizer from
tests/tiny_tokenizer.py) is fit for what the tests compare: its tokenizer round-trips any text and
keeps the chat template's special tokens whole, and greedy decoding of the tests' prompts gives
non-empty, varied token sequences (so tests comparing greedy ids or texts between code paths compare
something). It needs no embedded model: no GGUF file, no conversion."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from tiny_tokenizer import CHAT_TEMPLATE, SPECIAL_TOKENS, VOCAB_SIZE  # noqa: E402

PROMPTS = [
    "<|im_start|>user\nWhat is 12 * 7?<|im_end|>\n<|im_start|>assistant\n",
    "Hi",
    "The capital of France is",
    "1, 2, 3, 4, 5, 6, 7, 8,",
    "<|im_start|>user\nA train leaves at 3 pm and travels 60 miles per hour for two hours. "
    "How far does it go?<|im_end|>\n<|im_start|>assistant\n",
]


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()


def test_the_tiny_model_folder_holds_no_embedded_model(tiny_model_dir):
    from pathlib import Path

    files = sorted(p.name for p in Path(tiny_model_dir).iterdir())
    assert "tokenizer.json" in files and "model.safetensors" in files and "chat_template.jinja" in files
    assert not any(name.endswith(".gguf") for name in files)


def test_special_tokens_and_ids(tok, model):
    assert len(tok) == VOCAB_SIZE == model.config.vocab_size
    assert tok.convert_tokens_to_ids(SPECIAL_TOKENS) == [0, 1, 2]
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<|im_start|>", "<|im_end|>", "<|im_end|>")
    assert (model.config.eos_token_id, model.config.pad_token_id) == (2, 2)


@pytest.mark.parametrize("text", PROMPTS + [
    "<think>9 * 2 = 18</think>\n<answer>18</answer>",
    "Janet’s ducks lay 16 eggs — $2 each; naïve 中文 \t tabs\n\nand \\frac{1}{2}",
])
def test_any_text_round_trips(tok, text):
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    assert ids.count(1) == text.count("<|im_start|>") and ids.count(2) == text.count("<|im_end|>")


def test_chat_template_is_smollm2s(tok):
    assert tok.chat_template == CHAT_TEMPLATE
    text = tok.apply_chat_template([{"role": "user", "content": "What is 2 + 2?"}], tokenize=False,
                                   add_generation_prompt=True)
    assert text.endswith("<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n")
    assert text.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")


def test_greedy_output_is_non_empty_and_varied(tok, model):
    completions = []
    for prompt in PROMPTS:
        ids = tok(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=12,
                             do_sample=False, pad_token_id=tok.pad_token_id)
        new = out[0, ids.shape[1]:].tolist()
        assert len(new) == 12 and tok.eos_token_id not in new, (prompt, new)  # no early stop
        assert len(set(new)) >= 3, (prompt, new)  # not one token repeated
        completions.append(tuple(new))
    assert len(set(completions)) == len(PROMPTS)  # the prompt changes the output
