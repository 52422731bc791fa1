"""The thread count and OpenMP wait policy for a busy machine (issue 28, item 6; policy in
reasonkit/threads.py)."""
from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from reasonkit import threads
from reasonkit.cli import main


@pytest.mark.parametrize("cpus, free, expected", [
    (2, 2.0, 2),    # quiet 2-core machine: both cores
    (2, 1.6, 2),
    (2, 1.0, 1),    # one competing busy process: one thread, no barrier waits on a descheduled thread
    (2, 0.9, 1),
    (2, 0.0, 1),    # fully loaded: still one thread
    (4, 2.6, 3),
    (2, 3.5, 2),    # never more than the CPUs we may run on
    (16, 15.7, 16),
])
def test_thread_count_follows_the_idle_cores(monkeypatch, cpus, free, expected):
    monkeypatch.delenv("REASONKIT_THREADS", raising=False)
    assert threads.choose_threads(cpus=cpus, free=free) == expected


def test_reasonkit_threads_fixes_the_count(monkeypatch):
    monkeypatch.setenv("REASONKIT_THREADS", "3")
    assert threads.choose_threads(cpus=2, free=0.0) == 3


def test_idle_capacity_is_within_the_allowed_cpus():
    cpus = threads.allowed_cpus()
    free = threads.idle_cpus(cpus, sample_s=0.05)
    assert cpus and 0.0 <= free <= len(cpus) + 1e-9


@pytest.mark.parametrize("preset, expected", [
    ({}, {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}),
    ({"OMP_WAIT_POLICY": "ACTIVE"}, {"OMP_WAIT_POLICY": "ACTIVE", "KMP_BLOCKTIME": "0"}),   # the user wins
    ({"KMP_BLOCKTIME": "200", "OMP_WAIT_POLICY": "active"}, {"OMP_WAIT_POLICY": "active", "KMP_BLOCKTIME": "200"}),
])
def test_wait_policy_is_set_only_where_unset(preset, expected):
    env = dict(preset)
    added = threads.prepare_env(env)
    assert env == expected and added == {k: v for k, v in expected.items() if k not in preset}


def test_the_command_sets_the_wait_policy_before_any_command_runs(monkeypatch):
    for key in threads.WAIT_POLICY:
        monkeypatch.delenv(key, raising=False)
    res = CliRunner().invoke(main, ["verify", "--help"])
    assert res.exit_code == 0, res.output
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE" and os.environ["KMP_BLOCKTIME"] == "0"


def test_apply_sets_torch_threads_unless_the_user_chose(monkeypatch):
    import torch

    before = torch.get_num_threads()
    try:
        assert threads.apply_torch_threads(1) == 1 and torch.get_num_threads() == 1
        monkeypatch.setattr(threads, "_USER_SET_OMP", True)
        monkeypatch.delenv("REASONKIT_THREADS", raising=False)
        torch.set_num_threads(2)
        assert threads.apply_torch_threads() is None and torch.get_num_threads() == 2  # OMP_NUM_THREADS given
        monkeypatch.setattr(threads, "_USER_SET_OMP", False)
        monkeypatch.setattr(threads, "idle_cpus", lambda *a, **k: 0.7)
        assert threads.apply_torch_threads() == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)

