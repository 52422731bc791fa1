"""A tiny byte-level BPE tokenizer for the tiny test models, built in the test session (no GGUF file,
no conversion of the embedded model).

It has the shape of the embedded SmolLM2 tokenizer, at 1/48 of its vocabulary: byte-level BPE (any
text encodes and decodes back exactly, so token ids and texts can be compared between code paths),
``<|endoftext|>`` / ``<|im_start|>`` / ``<|im_end|>`` as special tokens 0 / 1 / 2 (bos ``<|im_start|>``,
eos and pad ``<|im_end|>``, as in SmolLM2) and SmolLM2's ChatML chat template. The merges are trained
with ``tokenizers`` on a few hundred strings: the chat-template text, the first GSM8K test questions
and solutions shipped in ``reasonkit/data``, Countdown-style arithmetic and the ``<think>`` /
``<answer>`` tags, so prompts of the tests tokenise into a realistic number of tokens. Training is
deterministic (same corpus, same merges), and takes well under a second.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # transformers is imported when a tokenizer is built, not when this module is
    from transformers import PreTrainedTokenizerFast

VOCAB_SIZE = 1024
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# SmolLM2-135M-Instruct's chat template, as its tokenizer ships it
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
_GSM8K = Path(__file__).resolve().parents[1] / "reasonkit" / "data" / "gsm8k_test.jsonl"


def corpus(n_gsm8k: int = 200) -> list[str]:
    """The training strings: chat turns, GSM8K questions and solutions, arithmetic, answer tags."""
    texts = ["<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n",
             "<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n<think>2 + 2 = 4</think>\n"
             "<answer>4</answer><|im_end|>\n",
             "Reason step by step inside <think> </think> tags, then give only the final answer inside "
             "<answer> </answer> tags.", "The capital of France is Paris.", "Name a colour. Blue."]
    with _GSM8K.open(encoding="utf-8") as f:
        for _, line in zip(range(n_gsm8k), f):
            row = json.loads(line)
            texts += [f"<|im_start|>user\n{row['question']}<|im_end|>\n<|im_start|>assistant\n",
                      f"<think>{row['answer']}</think>\n<answer>{row['answer'].split('####')[-1].strip()}</answer>"]
    for a in range(1, 13):
        for b in range(1, 13):
            op = "+-*/"[(a + b) % 4]
            value = {"+": a + b, "-": a - b, "*": a * b, "/": a / b}[op]
            texts.append(f"Using the numbers [{a}, {b}, {a + b}], create an equation that equals {a * b}. "
                         f"<think>{a} {op} {b} = {value:g}</think> <answer>({a} {op} {b})</answer>")
    return texts


def build_tiny_tokenizer(out_dir) -> PreTrainedTokenizerFast:
    """Train the tokenizer, save it (tokenizer.json, config, chat template) to ``out_dir`` and return it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(corpus(), trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                  pad_token="<|im_end|>", unk_token="<|endoftext|>")
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(str(out_dir))
    return tok
