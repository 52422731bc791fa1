"""``SFTConfig``: everything one ``reasonkit sft`` run (rejection-sampling fine-tuning) depends on.

Sources, later ones win: the defaults below, a YAML file whose keys are the field names, then
command-line flags (generated from these fields by :mod:`reasonkit.config_cli`). Invariants are
checked in ``__post_init__``; a violation is a :class:`reasonkit.errors.ReasonkitError` whose one line
says the fix. The resolved config is written to ``OUTPUT/config.yaml`` and compared when the same
command is run again into the same output (it then continues where it stopped).

Importing this module imports neither torch nor transformers.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from reasonkit.config_cli import check_fields, read_yaml, run_dir
from reasonkit.errors import ReasonkitError, check_keys
from reasonkit.verifiers import VerifierLookupError, get_verifier
from reasonkit.engine.models import check_adapter_dir

# Fields that do not change what a run computes: they may differ when a run is continued.
NOT_IDENTITY = ("output", "backend", "backend_options")


@dataclass
class SFTConfig:
    # --- model ----------------------------------------------------------------------------------------
    model: str | None = field(default=None, metadata={"help": "hub id or local dir; None = the embedded "
                                                              "SmolLM2-135M-Instruct"})
    dtype: Literal["auto", "bf16", "fp32"] = field(
        default="auto", metadata={"help": "auto (bf16 on a GPU that supports it, else fp32) | bf16 | fp32"})
    init_adapter: str | None = field(
        default=None, metadata={"help": "start from this LoRA adapter (sampling and fine-tuning)"})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank; 0 = full fine-tuning"})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator (scale = alpha / r)"})
    lora_dropout: float = field(default=0.0, metadata={"help": "dropout on the LoRA branch"})
    lora_target_modules: Any = field(default="all-linear",
                                     metadata={"help": "modules that get LoRA: a list, or peft's 'all-linear'",
                                               "list": True})
    # --- data and filter --------------------------------------------------------------------------------
    dataset: str = field(default="countdown", metadata={
        "help": "a benchmark of the eval harness: countdown | gsm8k | math500 | custom | rg:TASK[:...]"})
    data: str | None = field(default=None, metadata={"help": "data file or hub:org/name (custom, or to replace a "
                                                             "built-in's data)"})
    split: Literal["train", "test"] = field(default="train", metadata={"help": "split the items come from"})
    limit: int | None = field(default=64, metadata={"help": "training items sampled per iteration (None = all)"})
    template: str | None = field(default=None, metadata={"help": "user message with {fields}, or a template file"})
    system: str | None = field(default=None, metadata={"help": "replace the template's system prompt"})
    prefill: str | None = field(default=None, metadata={"help": "replace the assistant pre-fill"})
    raw: bool = field(default=False, metadata={"help": "plain-text prompt, no chat template (base models)"})
    columns: dict = field(default_factory=dict, metadata={"help": "template / verifier field -> data column"})
    verifier: str | None = field(default=None, metadata={
        "help": "the filter: a completion is kept when this verifier says correct (default: the data set's "
                "headline verifier)"})
    from_samples: str | None = field(default=None, metadata={
        "help": "samples.jsonl of an eval run: the first iteration filters these instead of sampling"})
    # --- sampling ---------------------------------------------------------------------------------------
    iterations: int = field(default=1, metadata={"help": "rounds of sample -> filter -> fine-tune"})
    sample_few_shot: int = field(default=0, metadata={
        "help": "worked examples in the sampling prompt only (STaR's bootstrap for a model that cannot yet "
                "write the answer form); the kept completions are trained on the plain prompt"})
    samples_per_item: int = field(default=8, metadata={"help": "k completions sampled per item"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature (> 0)"})
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling"})
    max_tokens: int = field(default=128, metadata={"help": "completion length limit (new tokens)"})
    stop: tuple = field(default=(), metadata={"help": "stop strings of the sampler (kept on the trained text)"})
    backend: str = field(default="auto", metadata={"help": "sampling engine: auto | hf | vllm"})
    backend_options: dict = field(default_factory=dict, metadata={"help": "options for the sampling engine"})
    max_per_item: int = field(default=2, metadata={"help": "correct completions kept per item"})
    shortest_first: bool = field(default=True, metadata={"help": "keep the shortest correct completions"})
    # --- supervised step --------------------------------------------------------------------------------
    epochs: float = field(default=2.0, metadata={"help": "passes over the kept completions per iteration"})
    learning_rate: float = field(default=1e-4, metadata={"help": "AdamW learning rate (constant)"})
    batch_size: int = field(default=8, metadata={"help": "completions per optimiser step"})
    max_length: int | None = field(default=None, metadata={"help": "truncate prompt + completion to this many "
                                                                    "tokens (None = no limit)"})
    seed: int = field(default=0, metadata={"help": "seed for the items, sampling and initialisation"})
    output: str | None = field(default=None, metadata={"help": "run directory; default runs/sft/<dataset>-<model>"})

    def __post_init__(self) -> None:
        check_fields(self)  # types (from the annotations), Literal choices
        self.columns = dict(self.columns or {})
        self.backend_options = dict(self.backend_options or {})
        self.stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        if isinstance(self.lora_target_modules, (list, tuple)):
            self.lora_target_modules = tuple(str(m) for m in self.lora_target_modules)
            if self.lora_target_modules == ("all-linear",):
                self.lora_target_modules = "all-linear"
        for name in ("iterations", "samples_per_item", "max_tokens", "max_per_item", "batch_size"):
            if getattr(self, name) < 1:
                raise ReasonkitError(f"{name} = {getattr(self, name)}: must be at least 1")
        if self.sample_few_shot < 0:
            raise ReasonkitError(f"sample_few_shot = {self.sample_few_shot}: must be >= 0 (0 = the plain prompt)")
        if self.limit is not None and self.limit < 1:
            raise ReasonkitError(f"limit = {self.limit}: must be at least 1 (or None for every item)")
        if self.lora_r < 0:
            raise ReasonkitError(f"lora_r = {self.lora_r}: must be >= 0 (0 = full fine-tuning)")
        if self.temperature <= 0:
            raise ReasonkitError(f"temperature = {self.temperature}: rejection sampling needs > 0 (e.g. 1.0); "
                                 "greedy gives one completion per item")
        if not 0 < self.top_p <= 1:
            raise ReasonkitError(f"top_p = {self.top_p}: must be in (0, 1]")
        if self.epochs <= 0 or self.learning_rate <= 0:
            raise ReasonkitError("epochs and learning_rate must be > 0")
        if self.backend not in ("auto", "hf", "vllm"):
            raise ReasonkitError(f"backend = {self.backend!r}: choose auto, hf or vllm (the prompts are rendered "
                                 "here, so the text trained on is the text sampled from)")
        if self.init_adapter is not None and self.lora_r == 0:
            raise ReasonkitError("init_adapter with lora_r = 0: full fine-tuning cannot start from an adapter; "
                                 "set lora_r > 0 or leave init_adapter out")
        if self.init_adapter is not None:
            check_adapter_dir(self.init_adapter, "init_adapter")
        if self.from_samples is not None and not Path(self.from_samples).is_file():
            raise ReasonkitError(f"from_samples {self.from_samples}: no such file (an eval run's samples.jsonl)")
        self._check_names()

    def _check_names(self) -> None:
        if self.verifier is not None:
            try:
                get_verifier(self.verifier)
            except VerifierLookupError as exc:
                raise ReasonkitError(f"verifier: {exc}") from None

    def run_dir(self) -> Path:
        """``output``, else ``runs/sft/<dataset>-<model>`` (:func:`reasonkit.config_cli.run_dir`)."""
        return run_dir("sft", self.output, self.dataset, self.model)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def identity(self) -> dict[str, Any]:
        return {k: v for k, v in self.to_dict().items() if k not in NOT_IDENTITY}

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "sft config") -> "SFTConfig":
        check_keys(data, (f.name for f in fields(cls)), where)
        return cls(**data)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "SFTConfig":
        return cls.from_dict(read_yaml(path), where=f"config {path}")
