"""Wall-time deadlines for CPU-bound verifier work that cannot be asked to stop (sympy, ANTLR).

Two ways, chosen by the caller (:mod:`.math` uses :func:`can_use_alarm` to pick):

* :func:`call_with_alarm` -- in the main thread of a process: ``signal.setitimer`` with our own
  handler, which raises :class:`Deadline` (a ``BaseException``, so the ``except Exception`` blocks of
  math-verify, latex2sympy and sympy cannot catch it). The timer repeats every :data:`REFIRE_S`
  until the call ends, and a result that comes back after the deadline is a timeout whatever it
  says: when the signal lands at a deep recursion level, *calling the handler* raises
  ``RecursionError``, an ``Exception`` that those blocks do swallow, and the work then "fails"
  quietly at the deadline. Any outer ``SIGALRM`` handler and timer are restored (the outer timer is
  re-armed with its remaining time).
* :func:`call_in_worker` -- anywhere else (other threads, where ``signal`` cannot be used): the job
  goes as one JSON line to a pooled helper process (``python -m <module>``, which answers
  ``"ready"`` once, then one JSON line per job) that is killed when the deadline passes. At most
  :data:`MAX_WORKERS` helpers at once; more callers wait their turn (not charged to their deadline).
  The first call, and the first after a helper was killed, pays a helper's start-up (~1-2 s, not
  charged to the deadline either).

Known limit of both: a single non-interruptible C call delays the verdict by its own length.
"""
from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable

__all__ = ["Deadline", "NO_SIGNALS", "REFIRE_S", "MAX_WORKERS", "can_use_alarm", "call_with_alarm",
           "call_in_worker", "shutdown_workers"]

REFIRE_S = 0.02  # the deadline signal repeats this often until the call returns
_WORKER_START_TIMEOUT = 120.0
#: Returned by :func:`call_with_alarm` when signals cannot be used in this thread/interpreter.
NO_SIGNALS = object()
_armed = False  # True while our timer runs: a signal delivered after the call ended is ignored


class Deadline(BaseException):
    """Raised by our SIGALRM handler; a BaseException so that ``except Exception`` cannot swallow it."""


def _on_alarm(signum, frame):
    if _armed:
        raise Deadline


def can_use_alarm() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def call_with_alarm(fn: Callable[[float], Any], timeout: float, on_cut: Callable[[], None] | None = None):
    """``fn(deadline)`` (``deadline`` on the ``time.monotonic`` clock) bounded by ``timeout`` seconds.

    Returns its result, None when the deadline passed (``on_cut()`` is then called: e.g. to drop
    caches a cut-short call may have left half-filled), or :data:`NO_SIGNALS`.
    """
    global _armed
    try:
        old_handler = signal.signal(signal.SIGALRM, _on_alarm)
    except ValueError:  # e.g. the main thread of a sub-interpreter
        return NO_SIGNALS
    start = time.monotonic()
    deadline = start + timeout
    old_delay = old_interval = 0.0
    res = finished = None
    try:
        try:
            _armed = True
            old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, timeout, REFIRE_S)
            res = fn(deadline)
            finished = time.monotonic()
        finally:
            _armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)
    except Deadline:
        pass
    except RecursionError:  # the handler called at the recursion limit, and nothing caught it
        if time.monotonic() < deadline:
            raise
    finally:
        _armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        if old_delay > 0:  # give an outer timer (e.g. pytest-timeout) back what it had left
            signal.setitimer(signal.ITIMER_REAL, max(old_delay - (time.monotonic() - start), 0.001), old_interval)
    if finished is None or finished >= deadline:
        # cut short, whether or not our exception got through: the result (if any) cannot be trusted
        if on_cut is not None:
            on_cut()
        return None
    return res


# --------------------------------------------------------------------------- worker-process deadline
class _Worker:
    """One helper process running ``python -m module``; line-delimited JSON over pipes."""

    def __init__(self, module: str) -> None:
        self.module = module
        self.proc = subprocess.Popen([sys.executable, "-m", module], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.buf = b""
        if self._readline(time.monotonic() + _WORKER_START_TIMEOUT) != b'"ready"':
            self.kill()
            raise RuntimeError(f"the helper process {module} did not start "
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
                raise RuntimeError(f"the helper process {self.module} exited (code {self.proc.poll()})")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def run(self, job: dict, timeout: float):
        self.proc.stdin.write(json.dumps(job).encode() + b"\n")
        self.proc.stdin.flush()
        line = self._readline(time.monotonic() + timeout)
        if line is None:
            return None
        res = json.loads(line)
        if res and res[0] == "__error__":
            raise RuntimeError(f"{self.module} failed in the helper process: {res[1]}")
        return res

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
#: At most this many helper processes at once (each holds sympy: ~100 MB).
MAX_WORKERS = max(2, min(8, os.cpu_count() or 2))
_slots = threading.BoundedSemaphore(MAX_WORKERS)


def call_in_worker(module: str, job: dict, timeout: float):
    """The helper's JSON answer to ``job``, or None when ``timeout`` seconds passed (helper killed)."""
    with _slots:
        with _idle_lock:
            i = next((k for k, w in enumerate(_idle) if w.module == module), None)
            worker = _idle.pop(i) if i is not None else None
        if worker is None or worker.proc.poll() is not None:
            worker = _Worker(module)
        try:
            res = worker.run(job, timeout)
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
