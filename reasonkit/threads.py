"""CPU threads and OpenMP wait policy that hold up on a machine shared with other work.

Why: torch's CPU kernels run on an OpenMP pool with one thread per core and a barrier after every
operator. When another process competes for a core, the pool thread on that core is descheduled for
a whole scheduler slice and every other pool thread waits at the barrier; with the default *active*
wait policy the waiting threads also spin, taking the very cycles the straggler needs. Decoding a
small model runs thousands of microsecond-sized operators per token, so one competing busy process
on 2 cores made ``make demo`` 4-5x slower instead of about 1.5x (issue 28).

Policy (applied by :func:`prepare_env` and :func:`apply_torch_threads`):

* **wait policy**: ``OMP_WAIT_POLICY=PASSIVE`` (GNU and LLVM OpenMP: an idle pool thread sleeps
  instead of spinning) and ``KMP_BLOCKTIME=0`` (Intel OpenMP: no spin before sleeping), each only
  when the user has not set it. OpenMP reads them once, when torch loads its runtime, so
  :func:`prepare_env` runs when the ``reasonkit`` command starts, before any command imports torch.
* **thread count**: ``n = clamp(round(free), 1, len(os.sched_getaffinity(0)))`` where ``free`` is
  the idle capacity of the CPUs this process may run on, sampled from ``/proc/stat`` over
  ``SAMPLE_S`` seconds (falling back to ``cpus - loadavg_1min`` where ``/proc/stat`` is missing). A
  pool no larger than the idle cores never waits at a barrier for a descheduled thread; other load
  then slows the job in proportion (it shares cores) instead of collapsing it.
* **the user wins**: ``REASONKIT_THREADS=N`` fixes the count; an ``OMP_NUM_THREADS`` set by the user,
  or an explicit ``threads`` backend option, is left as it is (torch already honours it).

The test command sets ``OMP_NUM_THREADS=1`` unless the user set it (``tests/conftest.py``): pytest runs
many tiny models one after another, where a pool only adds barrier cost.
"""
from __future__ import annotations

import os
import time

SAMPLE_S = 0.2
WAIT_POLICY = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}
_USER_SET_OMP = "OMP_NUM_THREADS" in os.environ  # read at import: before this module sets anything


def prepare_env(environ: dict | None = None) -> dict[str, str]:
    """Set the passive OpenMP wait policy in ``environ`` (default ``os.environ``) where unset;
    returns what was set. Call before torch is imported."""
    env = os.environ if environ is None else environ
    added = {k: v for k, v in WAIT_POLICY.items() if k not in env}
    env.update(added)
    return added


def allowed_cpus() -> list[int]:
    """The CPUs this process may run on (its affinity mask; all CPUs where there is none)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def _cpu_times(cpus: list[int]) -> dict[int, tuple[int, int]] | None:
    """``cpu -> (idle, total)`` jiffies from /proc/stat for ``cpus``; None where unreadable."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    out = {}
    for line in lines:
        name, _, rest = line.partition(" ")
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            values = [int(v) for v in rest.split()]
            out[int(name[3:])] = (values[3] + (values[4] if len(values) > 4 else 0), sum(values[:8]))
    return out or None


def idle_cpus(cpus: list[int] | None = None, sample_s: float = SAMPLE_S) -> float:
    """Idle capacity (in CPUs) of ``cpus`` over the next ``sample_s`` seconds (see module doc)."""
    cpus = allowed_cpus() if cpus is None else cpus
    first = _cpu_times(cpus)
    if first is None:
        try:
            return max(0.0, len(cpus) - os.getloadavg()[0])
        except OSError:
            return float(len(cpus))
    time.sleep(sample_s)
    second = _cpu_times(cpus) or first
    free = 0.0
    for cpu, (idle0, total0) in first.items():
        idle1, total1 = second.get(cpu, (idle0, total0))
        free += (idle1 - idle0) / (total1 - total0) if total1 > total0 else 1.0
    return free


def choose_threads(cpus: int | None = None, free: float | None = None) -> int:
    """The thread count of the policy: ``REASONKIT_THREADS`` if set, else ``clamp(round(free), 1,
    cpus)`` (``cpus`` and ``free`` measured when not given)."""
    fixed = os.environ.get("REASONKIT_THREADS", "").strip()
    if fixed.isdigit() and int(fixed) > 0:
        return int(fixed)
    cpus = len(allowed_cpus()) if cpus is None else cpus
    free = idle_cpus() if free is None else free
    return max(1, min(cpus, int(free + 0.5)))


def apply_torch_threads(requested: int | None = None) -> int | None:
    """Set torch's intra-op threads: ``requested`` if given, else :func:`choose_threads` unless the
    user set ``OMP_NUM_THREADS``. Returns the count set, or None when left to the user's setting."""
    import torch

    if requested:
        torch.set_num_threads(int(requested))
        return int(requested)
    if _USER_SET_OMP and not os.environ.get("REASONKIT_THREADS"):
        return None
    n = choose_threads()
    torch.set_num_threads(n)
    return n
