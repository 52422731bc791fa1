"""reasonkit: verifiers, a batched evaluation harness and a GRPO trainer for reasoning LLMs.

Importing this package never imports torch, transformers or vllm; those load only when a
generation backend or the trainer is used.
"""
__version__ = "0.1.0"
