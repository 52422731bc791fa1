"""reasonkit: verifiers, a batched evaluation harness and a GRPO trainer for reasoning LLMs.

Importing this package never imports torch, transformers or vllm; those load only when a
generation backend or the trainer is used.
"""
__version__ = "0.1.0"

__all__ = ["__version__", "evaluate"]


def __getattr__(name: str):
    if name == "evaluate":
        # lazy: `reasonkit.evaluate` loads the eval harness (and pandas) only when first used
        from reasonkit.api import evaluate

        return evaluate
    raise AttributeError(f"module 'reasonkit' has no attribute {name!r}")
