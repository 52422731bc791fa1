"""MATH-style answer verifier (LaTeX, ``\\boxed{}``) built on math-verify, with timeouts that work
in threads and worker processes.

Policy:

* **Gold**: the ``answer`` field as MATH-500 writes it (``\\frac{1}{2}``, ``\\left( 3, \\frac{\\pi}{2}
  \\right)``, ``\\text{(C)}``, ...). It is wrapped in ``$\\boxed{...}$`` as math-verify recommends
  (left alone when it already holds a ``\\boxed``) and parsed with math-verify's default LaTeX +
  expression extraction. A gold that does not parse -> ``correct=None``, reason ``bad_gold``.
* **Prediction**: math-verify's own extraction over the completion (the last ``\\boxed{}`` first,
  then "final answer is ..." and other LaTeX / plain expressions). Nothing extracted -> reason
  ``no_answer`` (wrong). Only the last :data:`MAX_CHARS` characters of a longer completion are read
  (``details["truncated"]``): answers sit at the end, and math-verify's regexes slow down on huge text.
* **Comparison**: ``math_verify.verify(gold, prediction)`` with its defaults (numeric tolerance,
  symbolic equality, sets, intervals, matrices, ``\\text`` answers as strings). Verdicts are
  math-verify's own; we only add the bounds below.
* **Timeouts**: math-verify bounds each call with ``signal.alarm``, which raises ``ValueError`` off the
  main thread (Math-Verify issues #50 and #55). We call it with its timeouts disabled
  (``parsing_timeout=None, timeout_seconds=None``) and enforce one deadline for the whole
  gold-parse + parse + verify ourselves:

  - in the main thread of a process (scripts, ``ProcessPoolExecutor`` / multiprocessing workers):
    ``signal.setitimer`` with our own handler; any outer ``SIGALRM`` handler and timer are restored
    (the outer timer is re-armed with its remaining time);
  - in any other thread: the job runs in a reusable helper process
    (``python -m reasonkit.verifiers._math_worker``, started on first need and then pooled; at most
    :data:`MAX_WORKERS` at once), which is killed and replaced when the deadline passes. The first
    call from a thread pays the helper's start-up (~1-2 s, not charged to the deadline).

  A timeout -> ``correct=None``, reason ``timeout``. ``timeout=None`` (or ``<= 0``) disables the bound.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from functools import lru_cache
from typing import Any

from .base import BAD_GOLD, CORRECT, NO_ANSWER, NOT_EQUAL, TIMEOUT, Verdict, register

__all__ = ["verify_math", "gold_to_latex", "DEFAULT_TIMEOUT", "MAX_CHARS", "MAX_WORKERS", "shutdown_workers"]

DEFAULT_TIMEOUT = 5.0  # seconds for gold parse + prediction parse + verify together
MAX_CHARS = 30_000
_WORKER_START_TIMEOUT = 120.0

_mv: Any = None


def _math_verify():
    """Import math-verify lazily (it pulls in sympy: ~1 s) and silence its 'timeout disabled' warning,
    which is expected here because we enforce the deadline ourselves."""
    global _mv
    if _mv is None:
        import math_verify
        import math_verify.grader
        import math_verify.parser

        math_verify.parser.TIMEOUT_WARNING_SHOWN = True
        math_verify.grader.TIMEOUT_WARNING_SHOWN = True
        logging.getLogger("math_verify").setLevel(logging.ERROR)
        _mv = math_verify
    return _mv


def gold_to_latex(answer: Any) -> str:
    """The gold answer as math-verify wants it: ``$\\boxed{...}$``."""
    s = str(answer).strip()
    if "\\boxed" in s:
        return s if "$" in s else f"${s}$"
    if s.startswith("$") and s.endswith("$") and len(s) > 1:
        s = s.strip("$")
    return f"$\\boxed{{{s}}}$"


@lru_cache(maxsize=4096)
def _parse_gold(answer: str) -> list:
    mv = _math_verify()
    return mv.parse(gold_to_latex(answer), parsing_timeout=None)


def _score_unbounded(completion: str, answer: str) -> tuple[bool | None, str | None, str, dict]:
    """(correct, extracted, reason, details) with no time bound -- callers add one."""
    mv = _math_verify()
    gold = _parse_gold(answer)
    if not gold:
        return None, None, BAD_GOLD, {}
    pred = mv.parse(completion, parsing_timeout=None)
    if not pred:
        return False, None, NO_ANSWER, {}
    # parse() returns [sympy object, matched string]; show the string (str(sympy) can be slow)
    extracted = pred[-1] if isinstance(pred[-1], str) else str(pred[0])
    ok = bool(mv.verify(gold, pred, timeout_seconds=None))
    return ok, extracted[:500], CORRECT if ok else NOT_EQUAL, {}


# ----------------------------------------------------------------------------- main-thread deadline
_NO_SIGNALS = object()


class _Deadline(BaseException):
    """Raised by our SIGALRM handler; a BaseException so math-verify's ``except Exception`` cannot
    swallow it."""


def _on_alarm(signum, frame):
    raise _Deadline


def _can_use_alarm() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def _score_with_alarm(completion: str, answer: str, timeout: float):
    """Returns the result, None on timeout, or _NO_SIGNALS when signals cannot be used here."""
    try:
        old_handler = signal.signal(signal.SIGALRM, _on_alarm)
    except ValueError:  # e.g. the main thread of a sub-interpreter
        return _NO_SIGNALS
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, timeout)
    start = time.monotonic()
    try:
        try:
            return _score_unbounded(completion, answer)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _Deadline:
        return None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        if old_delay > 0:  # give an outer timer (e.g. pytest-timeout) back what it had left
            signal.setitimer(signal.ITIMER_REAL, max(old_delay - (time.monotonic() - start), 0.001), old_interval)


# --------------------------------------------------------------------------- worker-process deadline
class _Worker:
    """One helper process running ``_math_worker``; line-delimited JSON over pipes."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reasonkit.verifiers._math_worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        self.buf = b""
        if self._readline(time.monotonic() + _WORKER_START_TIMEOUT) != b'"ready"':
            self.kill()
            raise RuntimeError("the math-verify worker process did not start "
                               "(is reasonkit installed in this Python environment?)")

    def _readline(self, deadline: float) -> bytes | None:
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise RuntimeError(f"the math-verify worker process exited (code {self.proc.poll()})")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def run(self, completion: str, answer: str, timeout: float):
        self.proc.stdin.write(json.dumps({"completion": completion, "answer": answer}).encode() + b"\n")
        self.proc.stdin.flush()
        line = self._readline(time.monotonic() + timeout)
        if line is None:
            return None
        res = json.loads(line)
        if res and res[0] == "__error__":
            raise RuntimeError(f"math-verify failed in the worker process: {res[1]}")
        return tuple(res)

    def kill(self) -> None:
        try:
            self.proc.kill()
            self.proc.wait(timeout=5)
        except Exception:  # noqa: BLE001 - already gone
            pass
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
            except Exception:  # noqa: BLE001 - a broken pipe is fine here
                pass


_idle: list[_Worker] = []
_idle_lock = threading.Lock()
#: At most this many helper processes at once (each holds sympy: ~100 MB); more threads wait their
#: turn (the wait is not charged to their deadline).
MAX_WORKERS = max(2, min(8, os.cpu_count() or 2))
_slots = threading.BoundedSemaphore(MAX_WORKERS)


def _score_in_worker(completion: str, answer: str, timeout: float):
    with _slots:
        return _score_in_pooled_worker(completion, answer, timeout)


def _score_in_pooled_worker(completion: str, answer: str, timeout: float):
    with _idle_lock:
        worker = _idle.pop() if _idle else None
    if worker is None or worker.proc.poll() is not None:
        worker = _Worker()
    try:
        res = worker.run(completion, answer, timeout)
    except BaseException:
        worker.kill()
        raise
    if res is None:  # deadline passed: the process may be stuck inside sympy
        worker.kill()
        return None
    with _idle_lock:
        _idle.append(worker)
    return res


def _forget_workers_after_fork() -> None:
    """A forked child (e.g. a multiprocessing worker) must not share the parent's helper processes
    or locks: it starts with an empty pool of its own."""
    global _idle_lock, _slots
    _idle.clear()
    _idle_lock = threading.Lock()
    _slots = threading.BoundedSemaphore(MAX_WORKERS)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers_after_fork)


@atexit.register
def shutdown_workers() -> None:
    """Stop the pooled helper processes (also done at interpreter exit)."""
    with _idle_lock:
        workers, _idle[:] = list(_idle), []
    for w in workers:
        w.kill()


# ----------------------------------------------------------------------------------------- verifier
def verify_math(completion: str, answer, *, timeout: float | None = DEFAULT_TIMEOUT) -> Verdict:
    """MATH-style answer checked by math-verify (``\\boxed{}`` / LaTeX), with a working timeout.

    Score 1.0 when math-verify finds the completion's answer equal to the gold. ``correct=None``
    with reason ``bad_gold`` or ``timeout`` when it could not be scored. See the module docstring.
    """
    if not isinstance(completion, str):
        completion = "" if completion is None else str(completion)
    details: dict[str, Any] = {}
    if answer is None or not str(answer).strip():
        return Verdict(0.0, None, None, BAD_GOLD, details)
    answer = str(answer)
    if len(completion) > MAX_CHARS:
        completion = completion[-MAX_CHARS:]
        details["truncated"] = True
    if timeout is None or timeout <= 0:
        res, how = _score_unbounded(completion, answer), "unbounded"
    elif _can_use_alarm():
        _math_verify()  # the one-time import (~1 s) is not charged to the deadline
        res, how = _score_with_alarm(completion, answer, float(timeout)), "alarm"
        if res is _NO_SIGNALS:
            res, how = _score_in_worker(completion, answer, float(timeout)), "worker"
    else:
        res, how = _score_in_worker(completion, answer, float(timeout)), "worker"
    details["deadline"] = how
    if res is None:
        details["timeout_s"] = timeout
        return Verdict(0.0, None, None, TIMEOUT, details)
    correct, extracted, reason, extra = res
    details.update(extra)
    return Verdict(1.0 if correct else 0.0, correct, extracted, reason, details)


register("math", verify_math, fields=("answer",),
         description="MATH-style LaTeX / \\boxed{} answer checked by math-verify, with thread-safe timeouts")
