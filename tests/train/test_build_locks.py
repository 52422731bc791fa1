"""A torch extension build killed midway leaves its ``lock`` file, and every later DeepSpeed launch on
CPU would poll it forever (reasonkit.grpo.distributed.check_build_locks): such a launch stops in one
line naming the file, exit code 2; a build in progress (a fresh lock) is waited for as before."""
from __future__ import annotations

import os
import time

import pytest

from reasonkit.errors import ReasonkitError
from reasonkit.grpo.distributed import STALE_LOCK_SECONDS, check_build_locks, make_accelerator


def _lock(root, age_seconds: float, *, env_dir: bool = False):
    # torch builds in <root>/<python-and-device>/<name>/, or in $TORCH_EXTENSIONS_DIR/<name>/
    lock = (root if env_dir else root / "py311_cpu") / "deepspeed_shm_comm" / "lock"
    lock.parent.mkdir(parents=True)
    lock.touch()
    then = time.time() - age_seconds
    os.utime(lock, (then, then))
    return lock


@pytest.mark.parametrize("age, stale", [
    (5.0, False),                       # a build running now: the launch waits for it, as torch does
    (STALE_LOCK_SECONDS - 60, False),
    (STALE_LOCK_SECONDS + 60, True),
    (3 * 3600, True),                   # left by a launch killed hours ago
])
def test_only_a_stale_lock_stops_the_launch(tmp_path, age, stale):
    lock = _lock(tmp_path, age)
    if not stale:
        check_build_locks(tmp_path)
        return
    with pytest.raises(ReasonkitError) as err:
        check_build_locks(tmp_path)
    msg = err.value.format_message()
    assert str(lock) in msg and "delete it" in msg and "\n" not in msg
    assert err.value.exit_code == 2


def test_no_build_directory_and_finished_builds_pass(tmp_path):
    check_build_locks(tmp_path / "never-built")
    (tmp_path / "py311_cpu" / "deepspeed_shm_comm").mkdir(parents=True)  # built, lock released
    (tmp_path / "py311_cpu" / "deepspeed_shm_comm" / "deepspeed_shm_comm.so").touch()
    check_build_locks(tmp_path)


def test_deepspeed_launch_on_cpu_checks_torch_extensions_dir(tmp_path, monkeypatch):
    """The check runs where a DeepSpeed launch on CPU builds its accelerator, on the directory torch
    builds in ($TORCH_EXTENSIONS_DIR), before DeepSpeed starts waiting."""
    lock = _lock(tmp_path, 2 * STALE_LOCK_SECONDS, env_dir=True)
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr("reasonkit.grpo.distributed._has_device", lambda: False)
    with pytest.raises(ReasonkitError, match=str(lock)):
        make_accelerator()
