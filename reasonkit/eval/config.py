"""``EvalConfig``: everything one evaluation run depends on, checked up front and saved with the run.

The same dataclass backs ``reasonkit eval`` and ``reasonkit.evaluate(...)``. Invariants are checked in
``__post_init__`` with messages that say the fix; the resolved form (``to_dict``) is written to the run
directory and compared on resume: :data:`RESUME_KEYS`, derived from each field's ``identity``
metadata by :func:`reasonkit.eval.identity.identity_keys` (issue 23, item 4).

Each field also carries its command-line form (help, flag names and aliases, repeatable, bounds;
:mod:`reasonkit.config_cli`): ``reasonkit eval``'s options are generated from these fields, and
``--config FILE.yaml`` (:meth:`EvalConfig.from_yaml`) takes the same names. Types, choices and bounds
are checked by :func:`reasonkit.config_cli.check_fields`; the checks between fields stay here. The
runner also saves the config as ``OUTPUT/config.yaml`` (:meth:`EvalConfig.to_yaml`), which re-runs.
"""
from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from ..config_cli import check_fields, read_yaml, run_dir
from ..errors import ReasonkitError, check_keys
from reasonkit.engine.models import check_adapter_dir, parse_adapter
from reasonkit.engine.types import BACKENDS
from .identity import identity_keys
from reasonkit.engine import check_options
from reasonkit.engine.openai_http import public_url
from ..files import write_text


def _f(default: Any = None, *, identity: bool | str, factory: Any = None, help: str = "", **cli: Any) -> Any:
    """A field with its place in the run's identity (see :mod:`reasonkit.eval.identity`) and its command-line
    form (see :mod:`reasonkit.config_cli`: help, flags, multiple, bounds...)."""
    metadata = {"identity": identity, "help": help, **cli}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class EvalConfig:
    # identity=True: part of the run's identity (a resume with another value is refused); a string: folded
    # into that resolved record key; False: never changes a completion or a verdict.
    model: str | None = _f(None, identity=True, flags=("--model", "-m"), help="Hub id, local directory or .gguf "
                           "file. Default: the embedded SmolLM2-135M-Instruct (offline).")
    lora: tuple[str, ...] = _f((), identity="adapters", multiple=True, metavar="[NAME=]PATH",
                               help="A peft LoRA adapter; repeat for several. Base and adapters run side by side in "
                               "one engine. With --backend openai: the served adapter's NAME.")
    benchmark: str = _f("gsm8k", identity=True, flags=("--benchmark", "-b"), help="gsm8k, math500, countdown, "
                        "custom, or rg:TASK[:difficulty=0,test_size=N,KEY=V] (reasoning-gym).")
    backend: Literal[BACKENDS] = _f("auto", identity="resolved_backend",  # what auto chose is the identity
                                    help="auto (chosen by the run's cost; the choice and reason are printed), vllm, "
                                    "hf, openai (a server: see --base-url).")
    split: Literal["test", "train"] = _f("test", identity=True, help="Split the items come from.")
    limit: int | None = _f(8, identity=False, none_words=("all", "none"), ge=1, hint=" (--limit all for every item)",
                           help="First N items ('all' for every item); may grow or shrink on resume.")
    n: int = _f(1, identity=True, flags=("--n",), ge=1, hint=" sample per item",
                help="Samples per item (pass@k, maj@k for k<=n).")
    temperature: float = _f(0.0, identity=True, ge=0, hint=" (0 = greedy)", help="0 = greedy.")
    top_p: float = _f(1.0, identity=True, gt=0, le=1, help="Nucleus sampling.")
    max_tokens: int = _f(256, identity=True, ge=1, help="Completion length limit (new tokens).")
    seed: int = _f(0, identity=True, help="Sampling seed (each item gets its own from it).")
    data: str | None = _f(None, identity=True, metavar="PATH",  # its rows: item fingerprints on every sample row
                          help="Data file (.jsonl/.json/.parquet/.csv) or hub:org/name[:config].")
    output: str | None = _f(None, identity=False, flags=("--output", "-o"), metavar="DIR",
                            help="Run directory (default runs/eval/<benchmark>-<model>). The same command resumes it.")
    rescore: bool = _f(False, identity=False,
                       help="Recompute verdicts from the completions saved in --output; no model.")
    verifiers: tuple[str, ...] = _f((), identity=True, flags=("--verifier",), multiple=True, metavar="NAME",
                                    help="Verifier(s) to score with (replaces the benchmark's; required for custom). "
                                    "The first one is the headline.")
    template: str | None = _f(None, identity=True, help="User message with {fields}, or a file: .txt/.md (the "
                              "message), .jinja ({{ field }} placeholders), .json/.yaml (a full template).")
    system: str | None = _f(None, identity="template",
                            help="System prompt, or a .txt/.md file holding it ('' for none).")
    prefill: str | None = _f(None, identity="template", help="Assistant pre-fill, or a .txt/.md file ('' for none).")
    raw: bool = _f(False, identity="template", help="No chat template (base models).")
    constant_prompt: bool = _f(False, identity=False,
                               help="Accept a --template with no {field} (same prompt for all).")
    few_shot: int = _f(0, identity=True, ge=0, help="Worked examples from the train split.")
    columns: dict[str, str] = _f(identity=True, factory=dict, flags=("--column",), multiple=True,
                                 metavar="FIELD=COLUMN", help="Map a data column to a template/verifier field.")
    stop: tuple[str, ...] = _f((), identity=True, multiple=True, metavar="TEXT", help="Stop string.")
    chunk_size: int = _f(64, identity=False, ge=1,
                         help="Items generated (and saved) per step; smaller = finer resume.")
    score_truncated: bool = _f(False, identity=True, help="Score completions that hit --max-tokens as answers.")
    backend_options: dict[str, Any] = _f(identity="engine_options", factory=dict, metavar="K=V,...",
                                         help="Engine options, e.g. tensor_parallel_size=2,max_model_len=4096 (vllm) "
                                         "or timeout=600,max_retries=8 (openai).")
    # shortcuts into backend_options (moved there by __post_init__, so they count through engine_options)
    batch_size: int | None = _f(None, identity=False, ge=1,
                                help="hf backend: sequences per generate batch (backend_options batch_size).")
    dtype: str | None = _f(None, identity=False,
                           help="Model dtype: auto, float32, bfloat16, float16 (backend_options dtype).")
    # --backend openai: replicas (each ending in /v1), requests in flight, where the key is read from
    base_url: tuple[str, ...] = _f((), identity=False, multiple=True, metavar="URL",
                                   help="--backend openai: server base URL ending in /v1; repeat for replicas.")
    concurrency: int | None = _f(None, identity=False, ge=1,
                                 help="--backend openai: requests in flight (default 64 per replica).")
    api_key_env: str = _f("OPENAI_API_KEY", identity=False,
                          help="Environment variable holding the API key (never written anywhere).")
    chat_template_kwargs: dict[str, Any] = _f(identity=True, factory=dict, metavar="K=V,...",
                                              help="Passed to the chat template, e.g. enable_thinking=false.")
    skip_base: bool = _f(False, identity=False, help="With --lora: generate with the adapters only (no base rows).")

    def __post_init__(self) -> None:
        for name in ("lora", "verifiers", "stop", "base_url"):  # a YAML / Python string is one entry
            value = getattr(self, name)
            setattr(self, name, (value,) if isinstance(value, str) else value)
        for name in ("columns", "backend_options", "chat_template_kwargs"):
            if getattr(self, name) is None:
                setattr(self, name, {})
        check_fields(self, label=_flag_label)  # types, Literal choices and bounds of every field
        for name in ("lora", "verifiers", "stop", "base_url"):
            setattr(self, name, tuple(getattr(self, name) or ()))
        self.columns, self.chat_template_kwargs = dict(self.columns), dict(self.chat_template_kwargs)
        self.backend_options = dict(self.backend_options)
        for name in ("batch_size", "dtype"):  # shortcuts: an explicit backend option wins
            if getattr(self, name):
                self.backend_options.setdefault(name, getattr(self, name))
            setattr(self, name, None)
        if self.temperature == 0 and self.n > 1:
            raise ReasonkitError(f"--n {self.n} with --temperature 0 gives {self.n} identical greedy samples; "
                                 "set --temperature (e.g. 0.7) for pass@k, or --n 1")
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
            check_adapter_dir(path, "--lora")
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
        """``--output``, else ``runs/eval/<benchmark>-<model>`` (:func:`reasonkit.config_cli.run_dir`)."""
        return run_dir("eval", self.output, self.benchmark, self.model)

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

    @classmethod
    def from_yaml(cls, path: str | Path, **flags: Any) -> "EvalConfig":
        """The config of a YAML file (keys = field names) with ``flags`` (field values) laid over it.
        An unknown key or a value of the wrong type / outside its bounds is one line naming the file;
        the invariants between fields are checked once the flags are in."""
        data = read_yaml(path)
        where = f"config {path}"
        check_keys(data, (f.name for f in fields(cls)), where)
        probe = cls.__new__(cls)  # the file's values alone, held to their annotations
        for f in fields(cls):
            default = f.default_factory() if f.default_factory is not MISSING else f.default
            setattr(probe, f.name, data.get(f.name, default))
        try:
            check_fields(probe, label=lambda name, v: f"{name} = {v!r}")
        except ReasonkitError as exc:
            raise ReasonkitError(f"{where}: {exc.message}") from None
        return cls(**{**data, **flags})

    def to_yaml(self, path: str | Path) -> Path:
        """Write the resolved config (``to_dict``) as YAML: ``reasonkit eval --config`` re-runs it."""
        import yaml

        path = Path(path)
        write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True))
        return path


def _flag_label(name: str, value: Any) -> str:
    return f"--{name.replace('_', '-')} {value!r}"


# Record keys whose change makes saved completions or verdicts invalid for the new run: resume refuses a
# mismatch. Derived from the fields' metadata, so a new option cannot be left out.
RESUME_KEYS = identity_keys(EvalConfig)
