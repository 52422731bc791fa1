"""Reward adapters: reasonkit verifiers as TRL ``reward_funcs`` and as AgileRL ``reward_fn``.

(a) :func:`trl_reward` — TRL ``GRPOTrainer`` calls each reward function as
``fn(prompts=..., completions=..., completion_ids=..., **columns, trainer_state=..., log_extra=...,
log_metric=...)`` where every dataset column other than ``prompt`` arrives as a keyword list aligned
with ``completions`` (TRL 1.16, ``GRPOTrainer._calculate_rewards``). Completions are strings, or lists
of chat messages (``[{"role": "assistant", "content": "..."}]``) for conversational datasets. The
adapter returns ``list[float | None]``: ``None`` where the verifier could not score (TRL treats it as
missing: that reward function is left out of the sum for that sample). TRL logs each function under
its ``__name__`` (``rewards/countdown_reward/mean``); a composite also logs each component's mean
through ``log_metric`` (``countdown_format_reward/countdown``) and the verdict reasons through
``log_extra``. :func:`trl_reward_funcs` instead splits a composite into one reward function per
component plus the weights for ``GRPOConfig(reward_weights=...)``.

(b) :func:`agilerl_reward` — the AgileRL Countdown recipe (``tutorials/LLM_Finetuning/grpo_reasoning.py``)
passes its ``HuggingFaceGym(reward_fn=...)`` one completion at a time as
``reward_fn(completion, solution, prompt)``, where ``solution`` is the data set's answer column (the
Countdown ``target``, often a 0-d tensor) and ``prompt`` its question column (the Countdown ``nums``,
a 1-d tensor). The recipe's prompt pre-fills ``<think>``; pass ``prefill="<think>"`` to score the
completion as if that prefix were part of it. (With a padded batch collate, AgileRL pads ``nums``
with zeros; that padding would count as extra numbers, so keep ``data_batch_size_per_gpu=1`` or pass
``solution`` as a dict.)

Neither adapter ever turns a failure into reward 0: a missing column and a verifier crash raise with
a message naming the reward and the sample (``on_error="none"`` in TRL instead warns and returns
``None``); an unscored sample is ``None`` for TRL and, for AgileRL (which needs a float), raises
unless ``on_unscored`` gives an explicit value.
"""
from __future__ import annotations

import json
import math
import re
import warnings
from typing import Any, Mapping, Sequence

from .base import Verdict
from .compose import AnySpec, CompositeSpec, resolve


class MissingColumnError(KeyError):
    """A reward function needs a dataset column that the trainer did not pass."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def completion_text(completion: Any) -> str:
    """A completion as plain text: strings as is; chat messages -> their contents joined."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        completion = [completion]
    if isinstance(completion, Sequence):
        parts = []
        for message in completion:
            content = message.get("content", "") if isinstance(message, Mapping) else message
            if isinstance(content, list):  # multimodal content parts: keep the text ones
                content = "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
            parts.append("" if content is None else str(content))
        return "".join(parts)
    raise TypeError(f"a completion must be a string or a list of chat messages, not {type(completion).__name__}")


def _reward_name(spec: AnySpec) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", spec.name).strip("_") + "_reward"


def reward_value(verdict: Verdict) -> float | None:
    """The reward a verdict pays: its score, or None when the verifier could not score."""
    return float(verdict.score) if verdict.scored else None


class TRLReward:
    """A TRL ``reward_funcs`` entry wrapping a verifier (picklable; see module docstring)."""

    def __init__(self, verifier: Any, *, columns: Mapping[str, str] | None = None, on_error: str = "raise",
                 prefill: str = "", name: str | None = None, log_details: bool = True):
        if on_error not in ("raise", "none"):
            raise ValueError(f"on_error must be 'raise' or 'none', not {on_error!r}")
        self.spec = resolve(verifier)
        self.columns = dict(columns or {})  # verifier field -> dataset column name
        unknown = set(self.columns) - set(self.spec.fields)
        if unknown:
            raise ValueError(f"columns maps {sorted(unknown)}, which {self.spec.name!r} does not read "
                             f"(its fields: {list(self.spec.fields)})")
        self.on_error = on_error
        self.prefill = prefill
        self.log_details = log_details
        self.__name__ = name or _reward_name(self.spec)
        self.last_verdicts: list[Verdict | None] = []

    def __repr__(self) -> str:
        return f"TRLReward({self.spec.name!r}, name={self.__name__!r})"

    def _column(self, field: str, kwargs: Mapping[str, Any], n: int) -> Sequence[Any]:
        column = self.columns.get(field, field)
        if column not in kwargs:
            have = sorted(k for k in kwargs if k not in ("trainer_state", "log_extra", "log_metric", "environments"))
            raise MissingColumnError(
                f"reward {self.__name__!r} needs the dataset column {column!r} for verifier field {field!r}, "
                f"but the trainer passed only {have}; add the column to the dataset or map it with "
                f"trl_reward(..., columns={{{field!r}: 'your_column'}})")
        values = kwargs[column]
        if len(values) != n:
            raise ValueError(f"reward {self.__name__!r}: column {column!r} has {len(values)} values "
                             f"for {n} completions")
        return values

    def score(self, completions: Sequence[Any], **kwargs: Any) -> list[Verdict | None]:
        """Verdicts for a batch (None where the verifier crashed and ``on_error='none'``)."""
        n = len(completions)
        columns = {f: self._column(f, kwargs, n) for f in self.spec.fields}
        verdicts: list[Verdict | None] = []
        for i, completion in enumerate(completions):
            fields = {f: values[i] for f, values in columns.items()}
            try:
                verdicts.append(self.spec(self.prefill + completion_text(completion), **fields))
            except Exception as exc:
                message = f"reward {self.__name__!r}: verifier {self.spec.name!r} crashed on sample {i}: " \
                          f"{type(exc).__name__}: {exc}"
                if self.on_error == "raise":
                    raise RuntimeError(message) from exc
                warnings.warn(message + " (reward None)", RuntimeWarning, stacklevel=2)
                verdicts.append(None)
        return verdicts

    def __call__(self, completions: Sequence[Any], prompts: Sequence[Any] | None = None,
                 completion_ids: Sequence[Any] | None = None, **kwargs: Any) -> list[float | None]:
        verdicts = self.score(completions, **kwargs)
        self.last_verdicts = verdicts
        if self.log_details:
            self._log(verdicts, kwargs)
        return [None if v is None else reward_value(v) for v in verdicts]

    def _log(self, verdicts: list[Verdict | None], kwargs: Mapping[str, Any]) -> None:
        log_metric, log_extra = kwargs.get("log_metric"), kwargs.get("log_extra")
        if callable(log_extra):
            log_extra(f"{self.__name__}_reason", [("error" if v is None else v.reason) for v in verdicts])
        if callable(log_metric) and isinstance(self.spec, CompositeSpec):
            for component, mean in component_means(self.spec, verdicts).items():
                if mean is not None:
                    log_metric(f"{self.__name__}/{component}", mean)


def component_means(spec: CompositeSpec, verdicts: Sequence[Verdict | None]) -> dict[str, float | None]:
    """Mean score of each component over the scored verdicts of a batch (None if none scored)."""
    sums: dict[str, list[float]] = {s.name: [] for s, _ in spec.components}
    for v in verdicts:
        if v is None:
            continue
        for name, score in spec.component_scores(v).items():
            if score is not None:
                sums[name].append(score)
    return {name: (sum(xs) / len(xs) if xs else None) for name, xs in sums.items()}


def trl_reward(verifier: Any, *, columns: Mapping[str, str] | None = None, on_error: str = "raise",
               prefill: str = "", name: str | None = None, log_details: bool = True) -> TRLReward:
    """A TRL GRPOTrainer reward function for a verifier name, expression (``"countdown+format"``) or spec.

    ``columns`` maps verifier fields to dataset columns (``{"numbers": "nums"}`` for
    Jiayi-Pan/Countdown-Tasks); ``prefill`` is prepended to every completion (e.g. ``"<think>"`` when
    the prompt pre-fills it); ``name`` overrides ``__name__`` (default ``countdown_reward``);
    ``log_details=False`` skips the ``log_extra``/``log_metric`` calls. After each call the verdicts
    are kept in ``.last_verdicts``.
    """
    return TRLReward(verifier, columns=columns, on_error=on_error, prefill=prefill, name=name,
                     log_details=log_details)


def trl_reward_funcs(verifier: Any, **kwargs: Any) -> tuple[list[TRLReward], list[float]]:
    """One TRL reward function per component of a composite, and their weights.

    Use as ``GRPOTrainer(reward_funcs=funcs, args=GRPOConfig(reward_weights=weights, ...))`` so TRL
    logs each component under its own name. TRL drops a ``None`` reward from the weighted sum for
    that sample (nansum), whereas the composite itself makes the whole sample unscored.
    """
    spec = resolve(verifier)
    if not isinstance(spec, CompositeSpec):
        return [TRLReward(spec, **kwargs)], [1.0]
    return [TRLReward(s, **kwargs) for s, _ in spec.components], [w for _, w in spec.components]


def _plain(value: Any) -> Any:
    """0-d tensors -> Python scalars, other tensors/arrays -> lists (without importing torch)."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return value.tolist()
    return value


class AgileRLReward:
    """An AgileRL ``HuggingFaceGym(reward_fn=...)`` callable: ``fn(completion, solution, prompt) -> float``."""

    def __init__(self, verifier: Any, *, solution_field: str | None = None, prompt_field: str | None = None,
                 prefill: str = "", on_unscored: float | str = "raise", name: str | None = None):
        self.spec = resolve(verifier)
        fields = list(self.spec.fields)
        if solution_field is None and fields:
            solution_field = next((f for f in ("target", "answer") if f in fields), fields[0])
        if prompt_field is None:
            rest = [f for f in fields if f != solution_field]
            prompt_field = rest[0] if len(rest) == 1 else None
        for label, f in (("solution_field", solution_field), ("prompt_field", prompt_field)):
            if f is not None and f not in fields:
                raise ValueError(f"{label}={f!r} is not a field of {self.spec.name!r} (fields: {fields})")
        if not (on_unscored in ("raise", "nan") or (isinstance(on_unscored, (int, float))
                                                     and not isinstance(on_unscored, bool))):
            raise ValueError(f"on_unscored must be 'raise', 'nan' or a number, not {on_unscored!r}")
        self.solution_field, self.prompt_field = solution_field, prompt_field
        self.prefill, self.on_unscored = prefill, on_unscored
        self.__name__ = name or _reward_name(self.spec)
        self.last_verdict: Verdict | None = None

    def _fields(self, solution: Any, prompt: Any) -> dict[str, Any]:
        solution = _plain(solution)
        if isinstance(solution, str) and solution.lstrip().startswith("{"):
            try:
                solution = json.loads(solution)
            except ValueError:
                pass
        if isinstance(solution, Mapping):  # the whole reference as a dict: take every field from it
            missing = [f for f in self.spec.fields if f not in solution]
            if missing:
                raise MissingColumnError(f"reward {self.__name__!r}: solution dict lacks {missing}")
            return {f: solution[f] for f in self.spec.fields}
        fields: dict[str, Any] = {}
        if self.solution_field is not None:
            fields[self.solution_field] = solution
        if self.prompt_field is not None:
            fields[self.prompt_field] = _plain(prompt)
        missing = [f for f in self.spec.fields if f not in fields]
        if missing:
            raise MissingColumnError(f"reward {self.__name__!r}: cannot fill fields {missing} from (solution, "
                                     "prompt); pass solution as a dict holding every field")
        return fields

    def __call__(self, completion: Any, solution: Any = None, prompt: Any = None) -> float:
        verdict = self.spec(self.prefill + completion_text(completion), **self._fields(solution, prompt))
        self.last_verdict = verdict
        if verdict.scored:
            return float(verdict.score)
        if self.on_unscored == "raise":
            raise ValueError(f"reward {self.__name__!r} could not score this sample ({verdict.reason}: "
                             f"{verdict.details.get('error', '')}); fix the reference or pass on_unscored=")
        return math.nan if self.on_unscored == "nan" else float(self.on_unscored)


def agilerl_reward(verifier: Any, *, solution_field: str | None = None, prompt_field: str | None = None,
                   prefill: str = "", on_unscored: float | str = "raise") -> AgileRLReward:
    """AgileRL-style ``reward_fn(completion, solution, prompt) -> float`` for a verifier or composite.

    By default ``solution`` fills ``target`` (else ``answer``, else the first field) and ``prompt``
    fills the one remaining field (Countdown: ``numbers``), as the AgileRL Countdown recipe passes
    them; or pass ``solution`` as a dict (or JSON object string) holding every field. For the recipe's
    reward: ``agilerl_reward("countdown+format", prefill="<think>")`` (0..2).
    """
    return AgileRLReward(verifier, solution_field=solution_field, prompt_field=prompt_field,
                         prefill=prefill, on_unscored=on_unscored)
