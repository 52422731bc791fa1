"""reasoning-gym tasks as verifiers (``rg:<task>``) and as item generators for benchmarks / training.

`reasoning-gym <https://github.com/open-thought/reasoning-gym>`_ generates procedural tasks offline,
each with its own ``score_answer(answer, entry) -> float in [0, 1]``. This module exposes:

* the verifier family ``rg:<task>`` (``rg:chain_sum``, ``rg:basic_arithmetic``, ...): the text of the
  reply's last ``<answer> </answer>`` pair is passed to the task's ``score_answer`` (the reply: the
  completion normalised and cut by the think-block contract of :mod:`._reply`, so an answer inside
  a closed reasoning block is not read and a block that never closes is ``unclosed_reasoning``); the
  verdict's score is that value, ``correct`` is ``score == 1``. It composes like every verifier
  (``rg:chain_sum+0.2*format``). The scorer is the one of the task's default configuration (the
  entries carry what the scorers read: question, answer, metadata).
* ``rg:<task>.exact`` (e.g. ``rg:products.exact``): the same verdict with partial credit dropped,
  score 1 when the task's scorer gives 1 and 0 otherwise. Policy: reasoning-gym's numeric scorers
  pay part of the reward for an answer that merely holds the number among other text (``products``
  gives 1/3 for ``3*8=24``); a GRPO run rewarded with that collapsed to writing the expression in
  every sample (every group the same 1/3, no signal left, held-out strict accuracy unmoved), so a
  reward that should pay for the answer alone uses ``.exact``. ``correct`` is the same in both.
* Bounded in time: ``score_answer`` gets :data:`DEFAULT_TIMEOUT` seconds (SIGALRM on the main
  thread; elsewhere the call runs to its end and an overrun is reported the same way). A timeout or
  a crash of ``score_answer`` is ``correct=None`` (reasons ``timeout`` / ``verifier_error:<Type>``, the message in
  ``details``), never a reward of 0: the trainer leaves such completions out of the loss.
* :func:`parse_task` / :func:`generate_items`: ``chain_sum:difficulty=1,size=2000,max_terms=3`` ->
  items. ``difficulty`` is the task curriculum's global level (0 = easiest), ``size`` the number of
  train items (default 10,000), ``test_size`` the number of test items (default 500); every other
  key is a field of the task's config dataclass and overrides the curriculum's value.

Seeds: item ``i`` of a split is reasoning-gym's item ``i`` of a dataset seeded with
``(2 * seed + split) * SEED_STRIDE`` (split 0 = test, 1 = train). reasoning-gym draws item ``i``
from ``Random(dataset_seed + i)``, so test and train draw from disjoint seed ranges for any seed
as long as a split has fewer than ``SEED_STRIDE`` items; on top of that, train items whose
question also occurs among the test items are dropped (small task spaces repeat questions).

``reasoning_gym`` is imported on first use only (it takes ~2 s to import).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import signal
import threading
import time
from typing import Any

from ._extract import last_tag_content
from ._reply import normalize, split_reasoning
from .base import CORRECT, ERROR, NO_ANSWER, NOT_EQUAL, TIMEOUT, Verdict, VerifierSpec, did_you_mean
from .policy import crash_verdict

DEFAULT_TIMEOUT = 2.0
SEED_STRIDE = 10_000_000
SIZES = {"test": 500, "train": 10_000}
_RESERVED = ("difficulty", "size", "test_size")


def _rg():
    import reasoning_gym

    return reasoning_gym


def task_names() -> list[str]:
    from reasoning_gym.factory import DATASETS

    return sorted(DATASETS)


def check_task(task: str) -> str:
    if task not in task_names():
        raise did_you_mean(task, task_names(), "reasoning-gym task")
    return task


def parse_task(spec: str) -> tuple[str, dict[str, Any]]:
    """``"chain_sum:difficulty=1,max_terms=3"`` -> ``("chain_sum", {"difficulty": 1, "max_terms": 3})``.

    Values are read as YAML scalars (numbers, booleans, strings). ValueError / UnknownNameError on
    bad input.
    """
    import yaml

    task, _, rest = spec.partition(":")
    check_task(task.strip())
    options: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"reasoning-gym option {part!r} in {spec!r}: write KEY=VALUE, e.g. difficulty=1")
        options[key.strip()] = yaml.safe_load(value.strip())
    return task.strip(), options


def make_config(task: str, options: dict[str, Any], seed: int, size: int):
    """The task's config dataclass: curriculum level ``difficulty`` (if the task has one), then overrides."""
    from reasoning_gym.factory import DATASETS, create_curriculum, has_curriculum

    _, config_cls = DATASETS[task]
    level = options.get("difficulty")
    extra = {k: v for k, v in options.items() if k not in _RESERVED}
    names = {f.name for f in dataclasses.fields(config_cls)}
    for key in extra:
        if key not in names - {"seed", "size"}:
            raise ValueError(f"reasoning-gym task {task!r} has no option {key!r} (options: difficulty, size, "
                             f"test_size, {', '.join(sorted(names - {'seed', 'size'}))})")
    if level is not None:
        if not has_curriculum(task):
            raise ValueError(f"reasoning-gym task {task!r} has no curriculum, so no difficulty levels; "
                             "set its config fields instead")
        curriculum = create_curriculum(task)
        if not isinstance(level, int) or not 0 <= level <= curriculum.get_max_level():
            raise ValueError(f"difficulty {level!r} for {task!r}: choose a level 0..{curriculum.get_max_level()}")
        curriculum.set_global_level(level)
        config = curriculum.generate_configuration({"seed": seed, "size": size})
        config = dataclasses.replace(config, **extra)
    else:
        config = config_cls(seed=seed, size=size, **extra)
    if hasattr(config, "validate"):
        config.validate()
    return config


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _items(task: str, options: dict[str, Any], split: str, seed: int, limit: int | None) -> list[dict[str, Any]]:
    from reasoning_gym.factory import DATASETS

    key = "test_size" if split == "test" else "size"
    size = int(options.get(key, SIZES[split]))
    if limit is not None:
        size = min(size, limit)
    if not 0 < size < SEED_STRIDE:
        raise ValueError(f"{key} {size}: choose 1..{SEED_STRIDE - 1} items")
    base = (2 * seed + (0 if split == "test" else 1)) * SEED_STRIDE
    dataset_cls, _ = DATASETS[task]
    dataset = dataset_cls(config=make_config(task, options, base, size))
    out = []
    for i in range(size):
        entry = dataset[i]
        out.append({"id": str(i), "question": entry["question"], "answer": str(entry["answer"]),
                    "rg_metadata": _json_safe(entry.get("metadata", {}))})
    return out


def generate_items(spec: str, split: str, seed: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
    """Items ``{"id", "question", "answer", "rg_metadata"}`` of ``split`` for a task spec (see module doc)."""
    task, options = parse_task(spec)
    items = _items(task, options, split, seed, limit)
    if split == "train":  # held-out questions never reach training
        held_out = {it["question"] for it in _items(task, options, "test", seed, None)}
        items = [it for it in items if it["question"] not in held_out]
    return items


# ------------------------------------------------------------------------------------------ scoring

class _Deadline(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Deadline()


def _bounded(fn, timeout: float | None):
    """``fn()`` with a wall-clock bound; returns (value, elapsed) or raises _Deadline."""
    start = time.monotonic()
    use_alarm = bool(timeout) and threading.current_thread() is threading.main_thread()
    if not use_alarm:
        value = fn()
        elapsed = time.monotonic() - start
        if timeout and elapsed > timeout:
            raise _Deadline()
        return value, elapsed
    old_handler = signal.signal(signal.SIGALRM, _on_alarm)
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        value = fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        if old_delay > 0:  # give an outer timer what it had left
            signal.setitimer(signal.ITIMER_REAL, max(old_delay - (time.monotonic() - start), 0.001), old_interval)
    return value, time.monotonic() - start


UNCLOSED_REASONING = "unclosed_reasoning"


@functools.lru_cache(maxsize=None)
def _scorer(task: str):
    return _rg().get_score_answer_fn(task)


def task_scorer(task: str):
    """reasoning-gym's own ``score_answer(answer=..., entry=...)`` of ``task`` (built once per task)."""
    return _scorer(task)


def verify_rg(completion: str, *, answer: str, question: str = "", rg_metadata: Any = None, task: str,
              timeout: float | None = DEFAULT_TIMEOUT, exact: bool = False) -> Verdict:
    """Score the last ``<answer>`` of ``completion`` with reasoning-gym task ``task``'s own scorer
    (``exact``: 1 for a full score, else 0; the scorer's own value stays in ``details["task_score"]``)."""
    split = split_reasoning(normalize(completion))
    if split.reply is None:
        return Verdict(0.0, False, None, UNCLOSED_REASONING, {"reasoning": "unclosed"})
    extracted = last_tag_content(split.reply, "answer")
    if extracted is None:
        return Verdict(0.0, False, None, NO_ANSWER)
    extracted = extracted.strip()
    entry = {"question": question, "answer": answer, "metadata": rg_metadata or {}}
    try:
        score = _scorer(task)
        value, _ = _bounded(lambda: score(answer=extracted, entry=entry), timeout)
        value = float(value)
    except _Deadline:
        return Verdict(0.0, None, extracted, TIMEOUT, {"timeout_s": timeout})
    except Exception as exc:  # the task's scorer crashed: unscored, not wrong (verifiers.policy's crash verdict)
        crash = crash_verdict(exc)
        return Verdict(0.0, None, extracted, crash.reason, crash.details)
    if not 0.0 <= value <= 1.0:
        return Verdict(0.0, None, extracted, ERROR, {"error": f"score_answer returned {value!r}, not in [0, 1]"})
    if exact:
        return Verdict(1.0 if value >= 1.0 else 0.0, value >= 1.0, extracted, CORRECT if value >= 1.0 else NOT_EQUAL,
                       {"task_score": value})
    return Verdict(value, value >= 1.0, extracted, CORRECT if value >= 1.0 else NOT_EQUAL)


@functools.lru_cache(maxsize=None)
def rg_verifier(task: str) -> VerifierSpec:
    """The :class:`VerifierSpec` named ``rg:<task>`` or ``rg:<task>.exact`` (the ``rg`` family calls this)."""
    base, dot, mode = task.partition(".")
    if dot and mode != "exact":
        raise did_you_mean(task, [base, base + ".exact"], "reasoning-gym verifier")
    check_task(base)
    if mode:
        return VerifierSpec(f"rg:{task}", verify_rg, ("answer", "question", "rg_metadata"),
                            f"reasoning-gym {base}: 1 when its score_answer gives 1, else 0", {"task": base, "exact": True})
    return VerifierSpec(f"rg:{task}", verify_rg, ("answer", "question", "rg_metadata"),
                        f"reasoning-gym {task}: the task's score_answer on the last <answer>", {"task": task})
