"""Benchmarks by name: where the data comes from, how an item is prompted, which verifiers score it.

API (used by ``reasonkit eval`` and by the GRPO trainer for its data and periodic evaluation)::

    from reasonkit.tasks.registry import get_benchmark
    bench = get_benchmark("gsm8k")                      # or "math500", "countdown", "custom"
    items = bench.load(split="test", data=None, limit=8)  # list[dict]
    text = bench.render(items[0], tokenizer)            # chat template + generation prompt + pre-fill
    bench.verifiers                                     # ("gsm8k", "gsm8k_flexible", "stepwise", "format")
    bench.references(items[0], "gsm8k")                 # {"answer": "...#### 18"}: the verifier's fields
    bench.score_prefix                                  # text put before a completion when scoring

``configure_benchmark(name, template=..., system=..., prefill=..., raw=...)`` applies the prompt
flags of ``reasonkit eval`` / ``reasonkit train`` on top of a benchmark's default prompt.

Every item is a dict with ``"id"`` (stable: the row's index in its split, or the generator's index),
the question fields the template reads (``question``; ``numbers`` and ``target`` for Countdown) and the
reference fields the verifiers read (``answer``; ``numbers``/``target``).

=============  ==============================================  ==========================================
name           data                                            verifiers
=============  ==============================================  ==========================================
gsm8k (v1)     hub ``openai/gsm8k`` config ``main``; offline    gsm8k (strict), gsm8k_flexible, stepwise,
               copy of test and train in ``reasonkit/data``     format
math500 (v1)   hub ``HuggingFaceH4/MATH-500`` (test only);      math, format
               offline copy
countdown (v1) built-in seeded generator of solvable 3–4 number  countdown, format
               tasks (default); ``--data hub:Jiayi-Pan/...``
custom (v1)    ``--data`` JSONL / parquet / CSV / hub id, a      the ones named with ``--verifier``
               column mapping, ``--verifier``, ``--template``
rg:TASK (v1)   a reasoning-gym generator, with options:         rg:TASK (the task's score_answer),
               ``rg:chain_sum:difficulty=0,size=2000``          format
               (see :mod:`reasonkit.verifiers.reasoning_gym`)
=============  ==============================================  ==========================================

A benchmark's version changes whenever its items, prompt or scoring change; it is saved with every run
and resuming a run made with another version is refused.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any, Sequence

from reasonkit.errors import ReasonkitError, did_you_mean
from reasonkit.tasks import prompts
from reasonkit.tasks.data import load_rows
from reasonkit.tasks.prompts import PromptTemplate, check_not_constant, load_template, prompt_text
from reasonkit.verifiers.base import UnknownNameError
from reasonkit.verifiers.reasoning_gym import make_config, parse_task, generate_items


def resolve_verifier(name: str) -> Any:
    """``reasonkit.verifiers.resolve`` for a name the user gave: a bad name or expression is a
    :class:`ReasonkitError` (one line with the registry's "did you mean", exit 2)."""
    # lazy: importing reasonkit.verifiers registers the whole suite (about 0.5 s); only resolving needs it
    from reasonkit.verifiers import VerifierLookupError, resolve

    try:
        return resolve(name)
    except VerifierLookupError as exc:
        raise ReasonkitError(str(exc)) from None


def resolve_all(names: Sequence[str]) -> dict[str, Any]:
    """``{name: resolve_verifier(name)}`` for every name."""
    return {name: resolve_verifier(name) for name in names}


@dataclass
class Benchmark:
    name: str
    version: int
    verifiers: tuple[str, ...]
    template: PromptTemplate
    hub: dict[str, tuple[str, str | None, str]] = field(default_factory=dict)  # split -> (repo, config, hub split)
    offline: dict[str, str] = field(default_factory=dict)  # split -> file in reasonkit/data
    columns: dict[str, str] = field(default_factory=dict)  # item field -> source column
    few_shot: int = 0
    seed: int = 0

    # --- data ---------------------------------------------------------------------------------------
    def load(self, split: str = "test", data: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        if split not in ("test", "train"):
            raise ReasonkitError(f"split {split!r}: choose test or train")
        if data is None and split not in self.hub and split not in self.offline:
            raise ReasonkitError(f"benchmark {self.name!r} has no {split} split; pass --data PATH")
        hub = self.hub.get(split)
        rows, self.source = load_rows(data, (hub[0], hub[1]) if hub else None,
                                      hub[2] if hub else split, self.offline.get(split))
        if limit is not None:
            rows = rows[:limit]
        items = [self.to_item(row, i) for i, row in enumerate(rows)]
        self.check_items(items, data or self.source)
        return items

    def to_item(self, row: dict[str, Any], index: int) -> dict[str, Any]:
        """Map source columns to the item fields (``columns`` maps item field -> source column)."""
        item = dict(row)
        for name, col in self.columns.items():
            if col in row:
                item[name] = row[col]
        # Stable ids: the row's index in its split unless the user maps an id column (--column id=COL).
        item["id"] = str(row[self.columns["id"]]) if "id" in self.columns and self.columns["id"] in row \
            else str(index)
        return item

    def required_fields(self) -> list[str]:
        names = list(self.template.fields)
        for v in self.verifiers:
            for f in resolve_verifier(v).fields:
                if f not in names:
                    names.append(f)
        return names

    def check_items(self, items: list[dict[str, Any]], where: str) -> None:
        if not items:
            raise ReasonkitError(f"{where}: no items")
        columns = sorted(k for k in items[0] if k != "id")
        self.template.check_columns(columns, where)
        for name in self.required_fields():
            for i, item in enumerate(items):
                if name not in item:
                    raise ReasonkitError(f"{where} row {i}: missing column {name!r} needed by benchmark "
                                         f"{self.name!r} (columns: {', '.join(columns)}); map one with "
                                         f"--column {name}=COLUMN")

    # --- prompts and scoring ------------------------------------------------------------------------
    def with_few_shot(self, k: int) -> "Benchmark":
        """A copy whose template carries ``k`` worked examples from the train split, and one spare
        shown instead of an example that is the item being asked (:meth:`PromptTemplate.shots`)."""
        if k <= 0:
            return self
        examples = self.load("train", limit=k + 1)
        shots = tuple((prompts.fill(self.template.user, ex), self.example_answer(ex)) for ex in examples)
        spare = shots[k] if len(shots) > k else None
        return replace(self, template=replace(self.template, few_shot=shots[:k], few_shot_spare=spare), few_shot=k)

    def example_answer(self, item: dict[str, Any]) -> str:
        raise ReasonkitError(f"benchmark {self.name!r} has no worked answers for few-shot examples")

    def render(self, item: dict[str, Any], tokenizer: Any = None,
               chat_template_kwargs: dict[str, Any] | None = None) -> str:
        return self.template.render(item, tokenizer, chat_template_kwargs)

    @property
    def score_prefix(self) -> str:
        return self.template.score_prefix

    def references(self, item: dict[str, Any], verifier: str) -> dict[str, Any]:
        return {f: item[f] for f in resolve_verifier(verifier).fields}

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "verifiers": list(self.verifiers),
                "template": self.template.to_dict(), "columns": dict(self.columns), "seed": self.seed}


class GSM8K(Benchmark):
    def example_answer(self, item: dict[str, Any]) -> str:
        # The reference solution without calculator notes, final number in the answer tags.
        import re

        body, _, final = item["answer"].rpartition("####")
        body = re.sub(r"<<[^>]*>>", "", body).strip()
        return f"<think>\n{body}\n</think>\n<answer>{final.strip()}</answer>"


class Countdown(Benchmark):
    """Countdown: the built-in generator unless ``--data`` names a file or hub data set.

    Item ``i`` of a split depends only on (seed, split, i), so a larger ``limit`` keeps the first
    items. Without a limit the generator gives 500 test or 10,000 train tasks (ask for more with
    ``limit``). The hub set ``Jiayi-Pan/Countdown-Tasks-3to4`` has only a train split
    (``--data hub:Jiayi-Pan/Countdown-Tasks-3to4 --split train``); its ``nums`` column is read as
    ``numbers``.
    """

    sizes = {"test": 500, "train": 10_000}

    def load(self, split: str = "test", data: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        if data is not None:
            return super().load(split, data, limit)
        n = (self.sizes[split] if limit is None else limit)
        base = self.seed * 2 + (0 if split == "test" else 1)  # test and train never share a stream
        items = [dict(generate_countdown(random.Random(f"countdown-{base}-{i}")), id=str(i)) for i in range(n)]
        self.source = f"generator:seed={self.seed}:{split}"
        return items

    def to_item(self, row: dict[str, Any], index: int) -> dict[str, Any]:
        item = super().to_item(row, index)
        if "numbers" not in item and "nums" in item:  # Jiayi-Pan/Countdown-Tasks-3to4 columns
            item["numbers"] = item["nums"]
        return item

    def example_answer(self, item: dict[str, Any]) -> str:
        return f" I combine the numbers.\n</think>\n<answer>{item['solution']}</answer>"


_OPS = ("+", "-", "*", "/")


def generate_countdown(rng: random.Random, max_target: int = 100, counts: tuple[int, ...] = (3, 4),
                       max_number: int = 99) -> dict[str, Any]:
    """A solvable Countdown task: ``counts`` numbers (3 or 4) in 1..``max_number``, a target in
    1..``max_target`` reached by combining all of them with + - * / (exact, every intermediate a
    positive integer)."""
    while True:
        count = rng.choice(counts)
        numbers = [rng.randint(1, max_number) for _ in range(count)]
        pool: list[tuple[Fraction, str]] = [(Fraction(x), str(x)) for x in numbers]
        while len(pool) > 1:  # combine two random operands until one expression is left
            a, b = rng.sample(range(len(pool)), 2)
            (va, ea), (vb, eb) = pool[a], pool[b]
            op = rng.choice(_OPS)
            if op == "/" and (vb == 0 or (va / vb).denominator != 1):
                op = rng.choice(("+", "*"))
            if op == "-" and va <= vb:
                (va, ea), (vb, eb) = (vb, eb), (va, ea)
                if va == vb:
                    op = "+"
            value = {"+": va + vb, "-": va - vb, "*": va * vb, "/": va / vb if vb else va}[op]
            pool = [p for i, p in enumerate(pool) if i not in (a, b)] + [(value, f"({ea} {op} {eb})")]
        value, expr = pool[0]
        if value.denominator == 1 and 1 <= value <= max_target:
            return {"numbers": numbers, "target": int(value), "solution": expr[1:-1]}


class ReasoningGym(Benchmark):
    """A reasoning-gym task: items from :func:`reasonkit.verifiers.reasoning_gym.generate_items` (seeded
    by ``--seed``; test and train never share an item seed, and no test question reaches train)."""

    def load(self, split: str = "test", data: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        if data is not None:
            return super().load(split, data, limit)
        try:
            items = generate_items(self.name[3:], split, seed=self.seed, limit=limit)
        except (ValueError, TypeError) as exc:
            raise ReasonkitError(f"benchmark {self.name!r}: {exc}") from None
        self.source = f"reasoning-gym:{self.name[3:]}:seed={self.seed}:{split}"
        return items


def _reasoning_gym(name: str, seed: int = 0, **_: Any) -> Benchmark:
    try:
        task, options = parse_task(name[3:])
        make_config(task, options, 0, 1)  # unknown options / levels fail now, not after loading a model
    except (UnknownNameError, ValueError, TypeError) as exc:
        raise ReasonkitError(f"benchmark {name!r}: {exc}") from None
    return ReasoningGym(name, 1, (f"rg:{task}", "format"), prompts.REASONING_GYM, seed=seed)


def _custom(columns: dict[str, str] | None = None, verifiers: Sequence[str] = (),
            template: PromptTemplate | None = None, **_: Any) -> Benchmark:
    return Benchmark("custom", 1, tuple(verifiers), template or PromptTemplate(), columns=dict(columns or {}))


_FACTORIES = {
    "gsm8k": lambda **kw: GSM8K(
        "gsm8k", 1, ("gsm8k", "gsm8k_flexible", "stepwise", "format"), prompts.GSM8K,
        hub={"test": ("openai/gsm8k", "main", "test"), "train": ("openai/gsm8k", "main", "train")},
        offline={"test": "gsm8k_test.jsonl", "train": "gsm8k_train.jsonl"}),
    "math500": lambda **kw: Benchmark(
        "math500", 1, ("math", "format"), prompts.MATH500,
        hub={"test": ("HuggingFaceH4/MATH-500", None, "test")}, offline={"test": "math500_test.jsonl"},
        columns={"question": "problem"}),
    "countdown": lambda seed=0, **kw: Countdown("countdown", 1, ("countdown", "format"), prompts.COUNTDOWN,
                                                seed=seed),
    "custom": _custom,
}


def benchmark_names() -> list[str]:
    return sorted(_FACTORIES)



def get_benchmark(name: str, *, verifiers: Sequence[str] | None = None, template: PromptTemplate | None = None,
                  columns: dict[str, str] | None = None, few_shot: int = 0, seed: int = 0) -> Benchmark:
    """A benchmark by name. ``verifiers`` / ``template`` / ``columns`` override its defaults (and are
    how ``custom`` is described); ``few_shot`` adds k worked examples from the train split."""
    if name.startswith("rg:"):
        bench = _reasoning_gym(name, seed=seed)
    elif name not in _FACTORIES:
        raise ReasonkitError(str(did_you_mean(name, tuple(_FACTORIES) + ("rg:<task>",), "benchmark")))
    else:
        bench = _FACTORIES[name](columns=columns, verifiers=verifiers or (), template=template, seed=seed)
    if verifiers:
        bench.verifiers = tuple(verifiers)
    if template is not None:
        bench.template = template
    if columns:
        bench.columns = {**bench.columns, **columns}
    if not bench.verifiers:
        raise ReasonkitError(f"benchmark {name!r} needs at least one --verifier")
    for v in bench.verifiers:
        resolve_verifier(v)  # unknown name -> did-you-mean error now, not after generation
    return bench.with_few_shot(few_shot)


def configure_benchmark(name: str, *, verifiers: Sequence[str] | None = None, columns: dict[str, str] | None = None,
                        seed: int = 0, template: str | None = None, system: str | None = None,
                        prefill: str | None = None, raw: bool = False, few_shot: int = 0,
                        constant_prompt: bool = False) -> Benchmark:
    """A benchmark with a template / system prompt / pre-fill / raw mode applied on top of its
    default prompt: the rules behind ``reasonkit eval``'s flags, shared with ``reasonkit train``.
    Values naming files are read (or refused) by :func:`~reasonkit.tasks.prompts.prompt_text`; a user
    template with no ``{field}`` is refused unless ``constant_prompt``."""
    system, prefill = prompt_text("--system", system), prompt_text("--prefill", prefill)
    default = get_benchmark(name, verifiers=verifiers, columns=columns, seed=seed) if name != "custom" else None
    chosen = load_template(template, default.template if default is not None else PromptTemplate())
    if template is not None:
        check_not_constant(replace(chosen, system=system if system is not None else chosen.system,
                                   prefill=prefill if prefill is not None else chosen.prefill), constant_prompt)
    if system is not None:
        chosen = replace(chosen, system=system or None)
    if prefill is not None:
        chosen = replace(chosen, prefill=prefill)
    if raw:
        chosen = replace(chosen, raw=True)
    return get_benchmark(name, verifiers=verifiers, template=chosen, columns=columns, few_shot=few_shot,
                         seed=seed)
