"""The verdict type and the by-name registry that every verifier shares.

Names resolve in one place, :func:`get_verifier`: a registered name (``gsm8k``), or
``prefix:argument`` for a *family* registered with :func:`register_family` (a factory that builds
the spec for one argument, e.g. a reasoning-gym task ``rg:<task>``; built once, then cached).
Weighted sums (``countdown+0.5*format``) are resolved by :func:`reasonkit.verifiers.resolve`, which
every entry point (``reasonkit eval``, ``train``, ``verify``, the Python API) calls. A bad name or
expression raises :class:`VerifierLookupError` (a ``ValueError``) whose message is one line with a
"did you mean" where one is close.

A verifier is a pure function ``fn(completion: str, **reference_fields, **options) -> Verdict``.
It never raises on model output (garbage text is a verdict, not an exception); it may raise
only for programmer errors such as a missing reference field. "Could not score" (e.g. the gold
answer does not parse) is ``correct=None``, which is distinct from "wrong" (``correct=False``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from reasonkit.errors import did_you_mean as _unknown_name_message

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


class VerifierLookupError(ValueError):
    """A verifier name or expression that does not resolve; the message is one line for the user."""


class UnknownNameError(VerifierLookupError, KeyError):
    """An unknown registry name; the message carries a "did you mean" suggestion."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def did_you_mean(name: str, choices: list[str] | tuple[str, ...], kind: str) -> UnknownNameError:
    """:func:`reasonkit.errors.did_you_mean`'s message as the registry's exception (raised by callers)."""
    return UnknownNameError(_unknown_name_message(name, choices, kind))


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
_FAMILIES: dict[str, tuple[Callable[[str], VerifierSpec], str]] = {}
_BUILT: dict[str, VerifierSpec] = {}


def register(name: str, fn: Callable[..., Verdict], fields: tuple[str, ...] = (), description: str = "",
             **options: Any) -> VerifierSpec:
    if name in _REGISTRY:
        raise ValueError(f"verifier {name!r} is already registered")
    spec = VerifierSpec(name, fn, tuple(fields), description or (fn.__doc__ or "").strip().split("\n")[0], options)
    _REGISTRY[name] = spec
    return spec


def register_family(prefix: str, factory: Callable[[str], VerifierSpec], description: str = "") -> None:
    """Make ``prefix:ARG`` resolve to ``factory(ARG)`` (a :class:`VerifierSpec` named ``prefix:ARG``).
    The factory raises :class:`VerifierLookupError` for an argument it does not know."""
    if prefix in _FAMILIES or not prefix.isidentifier():
        raise ValueError(f"verifier family {prefix!r} is already registered or not an identifier")
    _FAMILIES[prefix] = (factory, description)


def get_verifier(name: str) -> VerifierSpec:
    """The spec registered as ``name``, or built by its family for ``prefix:ARG``."""
    spec = _REGISTRY.get(name) or _BUILT.get(name)
    if spec is not None:
        return spec
    prefix, colon, arg = name.partition(":")
    if colon and prefix in _FAMILIES:
        if not arg:
            raise VerifierLookupError(f"verifier {name!r}: give the {prefix} argument, e.g. {prefix}:NAME")
        spec = _FAMILIES[prefix][0](arg)
        _BUILT[name] = spec
        return spec
    raise did_you_mean(name, tuple(_REGISTRY) + tuple(f"{p}:" for p in _FAMILIES), "verifier")


def verifier_names() -> list[str]:
    """Registered names (families are listed by :func:`verifier_families`)."""
    return sorted(_REGISTRY)


def verifier_families() -> dict[str, str]:
    """``{prefix: description}`` of the registered families."""
    return {p: d for p, (_, d) in sorted(_FAMILIES.items())}
