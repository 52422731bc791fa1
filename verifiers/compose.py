"""Weighted sums of registered verifiers, picked by name: ``compose("countdown+0.5*format")``.

The seed recipe's Countdown reward is ``countdown+format`` (0..2). A composite behaves like a
registered :class:`~reasonkit.verifiers.base.VerifierSpec`: it has ``name``, ``fields`` (the union of
its components' reference fields, in order) and is called as ``spec(completion, **fields)``; each
component receives only the fields it declares.

Policy of the composite verdict:

* ``score`` = Σ weight·score over the components; ``correct``, ``extracted`` and ``reason`` come from
  the first (primary) component, so ``countdown+format`` is "correct" when the equation is right.
* A component that could not score (its ``correct`` is None: bad gold, timeout on gold, or nothing
  to judge, like ``stepwise`` on a completion with no arithmetic) contributes **0** to the sum; the
  other components still count. We chose 0 over renormalising the remaining weights so that the
  reward keeps one scale for every completion (renormalising ``gsm8k+0.2*stepwise`` would pay a right
  answer without steps 1.0 and one with steps up to 1.2, depending only on whether steps were
  written). ``details["unscored"]`` names such components. If the primary component could not score
  but another did, ``correct`` is False (the composite is "correct" only when its primary says so)
  and ``reason`` is ``"<primary>: <its reason>"``.
* Only a completion that **no** component can score is unscored: ``correct=None``, ``score=0.0`` as
  a placeholder (the same convention as every unscored verdict; check ``verdict.scored``),
  ``reason`` = the primary's reason. The reward adapters turn an unscored verdict into ``None``
  (TRL: missing), never into a silent 0, and the GRPO trainer drops it from loss and baseline.
  Before this policy one unscored term made the whole composite unscored, so in
  ``gsm8k+0.2*stepwise`` every completion without arithmetic, right answers included, left the
  GRPO loss (issue 23 item 7).
* ``details["components"]`` = ``{name: verdict.to_dict()}``, ``details["weights"]`` = ``{name: w}``;
  :meth:`CompositeSpec.component_scores` returns ``{name: score or None}`` for trainers that log each.

Expression grammar: terms joined by ``+``; a term is ``name``, ``w*name`` or ``name*w`` with ``w`` a
(possibly negative) decimal number, e.g. ``countdown + 0.5*format`` or ``gsm8k+-0.1*format``.
A name listed twice is an error. A component can carry bound options through
``compose(..., options={"format": {"prefilled_think": True}})``.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Union

from .base import Verdict, VerifierLookupError, VerifierSpec, get_verifier

_WEIGHT = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_NAME = r"[A-Za-z_][A-Za-z0-9_]*(?::[A-Za-z0-9_.\-]+)?"  # "gsm8k", a family member "rg:leg_counting"
_TERM = re.compile(rf"^(?:(?P<w1>{_WEIGHT})\s*\*\s*(?P<n1>{_NAME})|(?P<n2>{_NAME})(?:\s*\*\s*(?P<w2>{_WEIGHT}))?)$")


@dataclass(frozen=True)
class CompositeSpec:
    """A weighted sum of verifiers; call it like a VerifierSpec. Pickles by component specs."""

    name: str
    components: tuple[tuple[VerifierSpec, float], ...]
    fields: tuple[str, ...] = ()
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)  # for duck-typing with VerifierSpec (always empty)

    @property
    def weights(self) -> dict[str, float]:
        return {spec.name: w for spec, w in self.components}

    @property
    def max_score(self) -> float:
        """Largest possible score when every component scores 1.0 and weights are non-negative."""
        return sum(max(w, 0.0) for _, w in self.components)

    def __call__(self, completion: str, **fields: Any) -> Verdict:
        verdicts: dict[str, Verdict] = {}
        for spec, _ in self.components:
            verdicts[spec.name] = spec(completion, **{k: fields[k] for k in spec.fields if k in fields})
        primary_name = self.components[0][0].name
        primary = verdicts[primary_name]
        # an unscored component contributes 0 (see the module docstring)
        total = sum(w * verdicts[spec.name].score for spec, w in self.components if verdicts[spec.name].scored)
        details: dict[str, Any] = {
            "components": {name: _as_dict(v) for name, v in verdicts.items()},
            "weights": self.weights,
        }
        unscored = [name for name, v in verdicts.items() if not v.scored]
        if unscored:
            details["unscored"] = unscored
        if len(unscored) == len(verdicts):  # nothing could be scored: the completion is unscored
            return Verdict(0.0, None, primary.extracted, primary.reason, details)
        if not primary.scored:
            return Verdict(float(total), False, primary.extracted, f"{primary_name}: {primary.reason}", details)
        return Verdict(float(total), primary.correct, primary.extracted, primary.reason, details)

    def component_scores(self, verdict: Verdict) -> dict[str, float | None]:
        """Per-component scores of a verdict this composite returned (None where unscored)."""
        comps = verdict.details.get("components", {})
        return {spec.name: (comps[spec.name]["score"] if comps.get(spec.name, {}).get("correct") is not None
                            else None) for spec, _ in self.components}


AnySpec = Union[VerifierSpec, CompositeSpec]


def _as_dict(v: Verdict) -> dict[str, Any]:
    """Like ``Verdict.to_dict`` but shallow (``dataclasses.asdict`` deep-copies; 3x slower here)."""
    return {"score": v.score, "correct": v.correct, "extracted": v.extracted, "reason": v.reason,
            "details": v.details}


def parse_expression(expression: str) -> dict[str, float]:
    """``"countdown + 0.5*format"`` -> ``{"countdown": 1.0, "format": 0.5}``; VerifierLookupError (a
    ValueError) when malformed."""
    weights: dict[str, float] = {}
    terms = expression.split("+")
    # "a+-0.5*b" splits into "a", "-0.5*b"; "+0.5*b" at the start gives an empty first term
    for i, raw in enumerate(terms):
        term = raw.strip()
        if not term:
            if i == 0 and len(terms) > 1:
                continue
            raise VerifierLookupError(f"empty term in verifier expression {expression!r}")
        m = _TERM.match(term)
        if not m:
            raise VerifierLookupError(f"cannot read term {term!r} in verifier expression {expression!r}; "
                             "write terms like 'countdown', '0.5*format' or 'format*0.5' joined by '+'")
        name = m.group("n1") or m.group("n2")
        weight = float(m.group("w1") or m.group("w2") or 1.0)
        if name in weights:
            raise VerifierLookupError(f"verifier {name!r} is listed twice in {expression!r}; give it one weight")
        weights[name] = weight
    return weights


def compose(spec: str | Mapping[str, float], *, options: Mapping[str, Mapping[str, Any]] | None = None,
            name: str | None = None) -> CompositeSpec:
    """A :class:`CompositeSpec` from ``"countdown+0.5*format"`` or ``{"countdown": 1, "format": 0.5}``.

    Unknown verifier names raise :class:`~reasonkit.verifiers.base.UnknownNameError` with a
    "did you mean"; malformed expressions, empty dicts and non-numeric weights raise ValueError.
    """
    if isinstance(spec, str):
        weights = parse_expression(spec)
    elif isinstance(spec, Mapping):
        weights = {}
        for key, w in spec.items():
            if isinstance(w, bool) or not isinstance(w, (int, float)):
                raise VerifierLookupError(f"weight of {key!r} must be a number, not {w!r}")
            weights[str(key)] = float(w)
    else:
        raise TypeError(f"compose() takes an expression string or a {{name: weight}} dict, not {type(spec).__name__}")
    if not weights:
        raise VerifierLookupError("compose() needs at least one verifier")
    options = dict(options or {})
    for key in options:
        if key not in weights:
            raise ValueError(f"options given for {key!r}, which is not a component of {list(weights)}")
    components = []
    for key, w in weights.items():
        base = get_verifier(key)  # UnknownNameError with "did you mean"
        if options.get(key):
            base = dataclasses.replace(base, options={**base.options, **options[key]})
        components.append((base, w))
    fields: list[str] = []
    for base, _ in components:
        fields.extend(f for f in base.fields if f not in fields)
    label = name or "+".join(k if w == 1.0 else f"{w:g}*{k}" for k, w in weights.items())
    return CompositeSpec(label, tuple(components), tuple(fields),
                         description="weighted sum: " + ", ".join(f"{w:g}×{k}" for k, w in weights.items()))


def resolve(verifier: str | Mapping[str, float] | AnySpec) -> AnySpec:
    """Anything a user may pass as "the verifier" -> a callable spec with ``name`` and ``fields``.

    The one resolution path of ``reasonkit eval``, ``train``, ``verify`` and the Python API. A
    registered name (``"countdown"``), a family member (``"rg:TASK"``), an expression
    (``"countdown+format"``), a weight dict, a :class:`VerifierSpec` or :class:`CompositeSpec`
    (returned as is). ``spec.fields`` are the reference fields it reads from a data row. A name or
    expression that does not resolve raises :class:`VerifierLookupError` (one line, "did you mean").
    """
    if isinstance(verifier, (VerifierSpec, CompositeSpec)):
        return verifier
    if isinstance(verifier, str):
        if "+" not in verifier and "*" not in verifier:
            return get_verifier(verifier.strip())  # UnknownNameError with "did you mean"
        return compose(verifier)
    if isinstance(verifier, Mapping):
        return compose(verifier)
    raise TypeError(f"expected a verifier name, expression, weight dict or spec, not {type(verifier).__name__}")
