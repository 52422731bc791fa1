"""The two scoring policies every scorer applies: a verifier that crashes, and a truncated completion.

``reasonkit eval`` (:mod:`reasonkit.eval.scoring`), the GRPO reward (:func:`reasonkit.grpo.rollout.score`),
``reasonkit verify`` and :func:`reasonkit.verifiers.score_batch` all go through these functions, so a
completion gets the same verdict whichever of them scores it.

**Verifier crash.** A verifier that raises on a completion gives the verdict "could not score":
``Verdict(0.0, None, None, "verifier_error:<ExceptionType>", {"error": "<Type>: <message>"})``
(:func:`crash_verdict`). ``correct`` is None, so it is counted apart (eval: ``could_not_score`` and
the verdict's reason; GRPO: reward NaN, advantage 0, out of the loss mask, counted in ``unscored``;
``verify``: the ``errors`` count) and never averaged in: the 0.0 is a placeholder, never a score. A
worker process that dies on a row is a crash of that row (``verifier_error:BrokenProcessPool``). A
row that cannot be scored at all (not a mapping, a reference field missing) keeps the reason
``error``. :func:`is_error` is true for both kinds.

**Truncation** (:func:`apply_truncation`). A completion that stopped at ``max_tokens`` (finish reason
``length``) is an unfinished answer. Unless ``score_truncated`` is set:

* a verdict the verifier could give (``correct`` True or False) becomes
  ``Verdict(0.0, False, <extracted>, "truncated", {"untruncated": {score, correct, reason}})``: wrong,
  with what the verifier would have said kept for analysis;
* a verdict the verifier could not give (``correct`` None: bad gold, a crash, a timeout) stays "could
  not score", with ``details["truncated"] = True``: unscored, not wrong (issue 23, item 7).

With ``score_truncated`` the verdict is the verifier's own. The same rule applies to each component
of a weighted sum (:func:`truncate_components`), so the per-component rewards agree with the total.
"""
from __future__ import annotations

from typing import Any

from .base import ERROR, Verdict

VERIFIER_ERROR = "verifier_error"  # reason prefix: "verifier_error:<ExceptionType>"
TRUNCATED = "truncated"
LENGTH = "length"  # the finish reason of a completion that hit max_tokens


def crash_verdict(exc: BaseException, where: str = "") -> Verdict:
    """The verdict of a verifier that raised ``exc`` (``where``: e.g. ``"row 3: verifier 'gsm8k' raised "``)."""
    kind = type(exc).__name__
    return Verdict(0.0, None, None, f"{VERIFIER_ERROR}:{kind}", {"error": f"{where}{kind}: {exc}"[:2000]})


def is_error(reason: str | None) -> bool:
    """True for the reason of a verifier crash (``verifier_error:<Type>``) or an unscorable row (``error``)."""
    return reason == ERROR or (isinstance(reason, str) and reason.startswith(VERIFIER_ERROR + ":"))


def call_verifier(verifier: Any, completion: str, refs: dict[str, Any]) -> Verdict:
    """``verifier(completion, **refs)``, or :func:`crash_verdict` when it raises. A verifier of one's
    own that returns a mapping with the verdict fields is taken as that verdict."""
    try:
        v = verifier(completion, **refs)
        if isinstance(v, Verdict):
            return v
        d = dict(v)
        return Verdict(d.get("score"), d.get("correct"), d.get("extracted"), d.get("reason") or "",
                       d.get("details") or {})
    except Exception as exc:  # noqa: BLE001 - one bad completion must not stop a run
        return crash_verdict(exc)


def is_truncated(finish_reason: str | None, score_truncated: bool = False) -> bool:
    """Whether the truncation policy applies to a completion with this finish reason."""
    return finish_reason == LENGTH and not score_truncated


def apply_truncation(verdict: Verdict, finish_reason: str | None, score_truncated: bool = False) -> Verdict:
    """The verdict a completion with ``finish_reason`` gets (see the module docstring)."""
    if not is_truncated(finish_reason, score_truncated):
        return verdict
    if verdict.correct is None:  # could not score: unscored, not "wrong"
        return Verdict(verdict.score, None, verdict.extracted, verdict.reason,
                       {**(verdict.details or {}), "truncated": True})
    return Verdict(0.0, False, verdict.extracted, TRUNCATED,
                   {"untruncated": {"score": verdict.score, "correct": verdict.correct, "reason": verdict.reason}})


def truncate_components(components: dict[str, dict[str, Any]], finish_reason: str | None,
                        score_truncated: bool = False) -> dict[str, dict[str, Any]]:
    """The components of a weighted sum's verdict (``details["components"]``) under the same policy."""
    if not is_truncated(finish_reason, score_truncated):
        return components
    out = {}
    for name, c in components.items():
        v = apply_truncation(Verdict(c.get("score", 0.0), c.get("correct"), c.get("extracted"), c.get("reason", ""),
                                     c.get("details") or {}), finish_reason, score_truncated)
        out[name] = {"score": v.score, "correct": v.correct, "extracted": v.extracted, "reason": v.reason,
                     "details": v.details}
    return out
