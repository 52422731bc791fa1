"""The verdict type and the by-name registry that every verifier shares.

A verifier is a pure function ``fn(completion: str, **reference_fields, **options) -> Verdict``.
It never raises on model output (garbage text is a verdict, not an exception); it may raise
only for programmer errors such as a missing reference field. "Could not score" (e.g. the gold
answer does not parse) is ``correct=None``, which is distinct from "wrong" (``correct=False``).
"""
from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

# Machine-readable reasons. Verifiers may add their own, but reuse these where they fit.
CORRECT = "correct"
NOT_EQUAL = "not_equal"
NO_ANSWER = "no_answer"
PARSE_ERROR = "parse_error"
WRONG_NUMBERS = "wrong_numbers"
TIMEOUT = "timeout"
BAD_GOLD = "bad_gold"  # the reference could not be parsed: correct=None
ERROR = "error"  # the verifier itself crashed (only produced by batch scoring): correct=None


@dataclass(frozen=True)
class Verdict:
    score: float
    correct: bool | None
    extracted: str | None
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def scored(self) -> bool:
        """False when the verifier could not score (bad gold, crash, timeout on gold)."""
        return self.correct is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class UnknownNameError(KeyError):
    """An unknown registry name; the message carries a "did you mean" suggestion."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def did_you_mean(name: str, choices: list[str] | tuple[str, ...], kind: str) -> UnknownNameError:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return UnknownNameError(f"unknown {kind} {name!r}{hint} (choose from: {', '.join(sorted(choices))})")


@dataclass(frozen=True)
class VerifierSpec:
    name: str
    fn: Callable[..., Verdict]
    fields: tuple[str, ...]  # reference fields the verifier reads from a data row
    description: str
    options: dict[str, Any] = field(default_factory=dict)  # bound keyword options for this name

    def __call__(self, completion: str, **fields: Any) -> Verdict:
        return self.fn(completion, **{**fields, **self.options})


_REGISTRY: dict[str, VerifierSpec] = {}
# Families of names built on demand: "rg:chain_sum" -> _FAMILIES["rg"]("chain_sum") (e.g. reasoning-gym).
_FAMILIES: dict[str, Callable[[str], VerifierSpec]] = {}


def register_family(prefix: str, factory: Callable[[str], VerifierSpec]) -> None:
    """Names ``prefix:<rest>`` resolve to ``factory(rest)`` (which raises UnknownNameError if it must)."""
    if prefix in _FAMILIES:
        raise ValueError(f"verifier family {prefix!r} is already registered")
    _FAMILIES[prefix] = factory


def register(name: str, fn: Callable[..., Verdict], fields: tuple[str, ...] = (), description: str = "",
             **options: Any) -> VerifierSpec:
    if name in _REGISTRY:
        raise ValueError(f"verifier {name!r} is already registered")
    spec = VerifierSpec(name, fn, tuple(fields), description or (fn.__doc__ or "").strip().split("\n")[0], options)
    _REGISTRY[name] = spec
    return spec


def get_verifier(name: str) -> VerifierSpec:
    if name in _REGISTRY:
        return _REGISTRY[name]
    prefix, sep, rest = name.partition(":")
    if sep and prefix in _FAMILIES:
        return _FAMILIES[prefix](rest)
    raise did_you_mean(name, tuple(_REGISTRY) + tuple(f"{p}:<name>" for p in _FAMILIES), "verifier")


def verifier_names() -> list[str]:
    return sorted(_REGISTRY)
