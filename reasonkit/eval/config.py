"""``EvalConfig``: everything one evaluation run depends on, checked up front and saved with the run.

The same dataclass backs ``reasonkit eval`` and ``reasonkit.evaluate(...)``. Invariants are checked in
``__post_init__`` with messages that say the fix; the resolved form (``to_dict``) is written to the run
directory and compared on resume: :data:`RESUME_KEYS`, derived from each field's ``identity``
metadata by :func:`reasonkit.eval.identity.identity_keys` (issue 23, item 4).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import ReasonkitError, check_keys
from reasonkit.engine.models import parse_adapter
from reasonkit.engine.types import BACKENDS
from .identity import identity_keys
from reasonkit.engine import check_options
from reasonkit.engine.openai_http import public_url


def _f(default: Any = None, *, identity: bool | str, factory: Any = None) -> Any:
    """A field with its place in the run's identity (see :mod:`reasonkit.eval.identity`)."""
    if factory is not None:
        return field(default_factory=factory, metadata={"identity": identity})
    return field(default=default, metadata={"identity": identity})


@dataclass
class EvalConfig:
    # identity=True: part of the run's identity (a resume with another value is refused); a string: folded
    # into that resolved record key; False: never changes a completion or a verdict.
    model: str | None = _f(None, identity=True)  # None = the embedded default (SmolLM2-135M-Instruct)
    lora: tuple[str, ...] = _f((), identity="adapters")  # "PATH" or "NAME=PATH"
    benchmark: str = _f("gsm8k", identity=True)
    backend: str = _f("auto", identity="resolved_backend")  # what auto chose is the identity
    split: str = _f("test", identity=True)
    limit: int | None = _f(8, identity=False)  # may grow or shrink
    n: int = _f(1, identity=True)
    temperature: float = _f(0.0, identity=True)
    top_p: float = _f(1.0, identity=True)
    max_tokens: int = _f(256, identity=True)
    seed: int = _f(0, identity=True)
    data: str | None = _f(None, identity=True)  # its rows: item fingerprints on every sample row
    output: str | None = _f(None, identity=False)  # run directory; default runs/eval/<benchmark>-<model>
    rescore: bool = _f(False, identity=False)
    verifiers: tuple[str, ...] = _f((), identity=True)  # override / extend the benchmark's verifiers
    template: str | None = _f(None, identity=True)  # user message with {fields}, or a .txt/.md/.jinja/.json/.yaml file
    system: str | None = _f(None, identity="template")  # override the template's system prompt ("" removes it)
    prefill: str | None = _f(None, identity="template")  # override the template's assistant pre-fill
    raw: bool = _f(False, identity="template")  # no chat template (base models)
    constant_prompt: bool = _f(False, identity=False)  # accept a --template with no {field} (same prompt for all)
    few_shot: int = _f(0, identity=True)
    columns: dict[str, str] = _f(identity=True, factory=dict)  # template/verifier field -> data column
    stop: tuple[str, ...] = _f((), identity=True)
    chunk_size: int = _f(64, identity=False)  # items generated (and saved) per step; smaller = finer resume
    score_truncated: bool = _f(False, identity=True)  # score completions that hit max_tokens as answers anyway
    backend_options: dict[str, Any] = _f(identity="engine_options", factory=dict)  # passed to get_backend
    # --backend openai: replicas (each ending in /v1), requests in flight, where the key is read from
    base_url: tuple[str, ...] = _f((), identity=False)
    concurrency: int | None = _f(None, identity=False)  # None = 64 per replica
    api_key_env: str = _f("OPENAI_API_KEY", identity=False)
    chat_template_kwargs: dict[str, Any] = _f(identity=True, factory=dict)
    skip_base: bool = _f(False, identity=False)  # with --lora: generate with the adapters only (no base rows)

    def __post_init__(self) -> None:
        self.lora = tuple(self.lora or ())
        self.verifiers = tuple(self.verifiers or ())
        self.stop = tuple(self.stop or ())
        self.columns = dict(self.columns or {})
        self.base_url = (self.base_url,) if isinstance(self.base_url, str) else tuple(self.base_url or ())
        self.chat_template_kwargs = dict(self.chat_template_kwargs or {})
        if self.backend not in BACKENDS:
            raise ReasonkitError(f"--backend {self.backend!r}: choose one of {', '.join(BACKENDS)}")
        if self.split not in ("test", "train"):
            raise ReasonkitError(f"--split {self.split!r}: choose test or train")
        if self.limit is not None and self.limit < 1:
            raise ReasonkitError(f"--limit {self.limit}: must be at least 1 (--limit all for every item)")
        if self.n < 1:
            raise ReasonkitError(f"--n {self.n}: must be at least 1 sample per item")
        if self.temperature < 0:
            raise ReasonkitError(f"--temperature {self.temperature}: must be >= 0 (0 = greedy)")
        if self.temperature == 0 and self.n > 1:
            raise ReasonkitError(f"--n {self.n} with --temperature 0 gives {self.n} identical greedy samples; "
                                 "set --temperature (e.g. 0.7) for pass@k, or --n 1")
        if not 0 < self.top_p <= 1:
            raise ReasonkitError(f"--top-p {self.top_p}: must be in (0, 1]")
        if self.max_tokens < 1:
            raise ReasonkitError(f"--max-tokens {self.max_tokens}: must be at least 1")
        if self.chunk_size < 1:
            raise ReasonkitError(f"chunk_size {self.chunk_size}: must be at least 1")
        if self.few_shot < 0:
            raise ReasonkitError(f"--few-shot {self.few_shot}: must be >= 0")
        if self.benchmark == "custom" and not self.data:
            raise ReasonkitError("--benchmark custom needs --data PATH (JSONL, parquet, CSV or a hub id)")
        if self.benchmark == "custom" and not self.verifiers:
            raise ReasonkitError("--benchmark custom needs --verifier NAME (e.g. gsm8k, math, countdown)")
        self._check_server()
        names = []
        for spec in self.lora if self.backend != "openai" else ():
            name, path = parse_adapter(spec)
            if name == "base":
                raise ReasonkitError(f"--lora {spec}: the name 'base' is reserved for the model without adapter")
            if name in names:
                raise ReasonkitError(f"--lora {spec}: two adapters named {name!r}; name them with --lora NAME=PATH")
            p = Path(path).expanduser()
            if not p.is_dir():
                raise ReasonkitError(f"--lora {path}: adapter directory does not exist")
            if not (p / "adapter_config.json").is_file():
                raise ReasonkitError(f"--lora {path}: no adapter_config.json (not a peft LoRA adapter)")
            names.append(name)
        if self.model is not None:
            text = str(self.model)
            if (text.startswith((".", "/", "~")) or text.lower().endswith(".gguf")) and \
                    not Path(text).expanduser().exists():
                raise ReasonkitError(f"--model {text}: model path does not exist")
        if self.backend_options or self.backend == "openai":  # unknown engine options: one line, before any file

            check_options(self.backend, self.engine_options())
        for spec in (self.data,) if self.data else ():
            if not spec.startswith("hub:") and (spec.startswith((".", "/", "~")) or Path(spec).suffix) \
                    and not Path(spec).expanduser().exists():
                raise ReasonkitError(f"--data {spec}: no such file")

    def _check_server(self) -> None:
        if self.backend != "openai":
            for flag, value in (("--base-url", self.base_url), ("--concurrency", self.concurrency)):
                if value:
                    raise ReasonkitError(f"{flag} is for --backend openai (an OpenAI-compatible server)")
            return
        if not self.base_url:
            raise ReasonkitError("--backend openai needs --base-url http://HOST:PORT/v1 (repeat it for replicas)")
        if self.concurrency is not None and self.concurrency < 1:
            raise ReasonkitError(f"--concurrency {self.concurrency}: must be at least 1")
        if not self.api_key_env.isidentifier():
            raise ReasonkitError(f"--api-key-env {self.api_key_env!r}: give the NAME of an environment variable")
        for spec in self.lora:
            if "=" in spec or "/" in spec:
                raise ReasonkitError(f"--lora {spec}: with --backend openai, --lora is the served adapter's name "
                                     "(vllm serve --enable-lora --lora-modules NAME=PATH), not a path")
            if spec == "base":
                raise ReasonkitError("--lora base: the name 'base' is reserved for the model without adapter")
        if len(set(self.lora)) != len(self.lora):
            raise ReasonkitError("--lora: the same served adapter is named twice")

    @property
    def adapters(self) -> list[tuple[str, str]]:
        """(name, absolute path) of each adapter, in the order given (openai: (served name, ""))."""
        if self.backend == "openai":
            return [(name, "") for name in self.lora]
        return [(n, str(Path(p).expanduser().resolve())) for n, p in map(parse_adapter, self.lora)]

    def run_dir(self) -> Path:
        if self.output:
            return Path(self.output).expanduser()
        model = Path(str(self.model)).name if self.model else "default"
        return Path("runs") / "eval" / f"{self.benchmark}-{model.replace('.gguf', '')}"

    def engine_options(self) -> dict[str, Any]:
        """The keyword options of ``get_backend``: ``backend_options`` plus the server flags."""
        opts = dict(self.backend_options)
        if self.backend == "openai":
            opts.update(base_url=list(self.base_url), concurrency=self.concurrency, api_key_env=self.api_key_env,
                        chat_template_kwargs=self.chat_template_kwargs or None)
        return opts

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)

        d["base_url"] = [public_url(u) for u in self.base_url]
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "eval config") -> "EvalConfig":
        """A config from a mapping of field names; an unknown key is refused with "did you mean"."""
        check_keys(d, (f.name for f in fields(cls)), where)
        return cls(**d)


# Record keys whose change makes saved completions or verdicts invalid for the new run: resume refuses a
# mismatch. Derived from the fields' metadata, so a new option cannot be left out.
RESUME_KEYS = identity_keys(EvalConfig)
