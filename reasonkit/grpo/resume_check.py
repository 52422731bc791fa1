"""What a checkpoint must agree on with the run that resumes it: the training config and the data.

A checkpoint records the run's identity in ``trainer_state.json`` (:func:`run_identity`): every
config field that changes what is trained, and a fingerprint of the training data (SHA-256 of the
items and rendered prompts, in order). ``--resume`` refuses, in one line naming the field, a
resumed run whose identity differs (:func:`check_resume`), since the result would be neither run:
another seed draws other completions and data order, another learning rate, loss, reward or model
trains something else, and a data file edited in place would keep the old rows' positions with new
contents (issue 23, lower-impact items b and f).

Fields that may change on resume (:data:`FREE_ON_RESUME`) are those that do not change a
completion, a reward or an update: where the run writes and how often (``output``,
``save_steps``, ``save_total_limit``, ``logging_steps``, ``log_completions_steps``,
``report_to``), the periodic evaluation (``eval_steps``, ``eval_limit``, ``eval_split``), where a
vLLM server is and how it is sized (``base_url``, ``backend_options``), gradient checkpointing (the
same update, recomputed) and ``max_steps`` (a run may be extended; a schedule that decays over
``max_steps`` then follows the new length, as in TRL). A checkpoint written before this check has
no identity and is resumed as before. Fields are compared as they are in force: ``rewards`` as the
reward expression used (a data set's default written out is the same run), ``prompts_per_step``
whether given directly or through ``batch_size``.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Sequence

from reasonkit.errors import ReasonkitError

FREE_ON_RESUME = frozenset({
    "max_steps", "output", "resume", "save_steps", "save_total_limit", "logging_steps", "log_completions_steps",
    "report_to", "eval_steps", "eval_limit", "eval_split", "base_url", "backend_options", "gradient_checkpointing",
})


def _plain(value: Any) -> Any:
    """JSON round trip: tuples become lists, so a saved and a live config compare equal."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def data_fingerprint(items: Sequence[dict], prompts: Sequence[str]) -> str:
    """SHA-256 of the training items and their prompts, in order."""
    h = hashlib.sha256()
    for item, prompt in zip(items, prompts):
        h.update(json.dumps(item, sort_keys=True, default=str).encode())
        h.update(b"\0")
        h.update(prompt.encode())
        h.update(b"\1")
    h.update(str(len(items)).encode())
    return h.hexdigest()


def run_identity(cfg, items: Sequence[dict], prompts: Sequence[str]) -> dict[str, Any]:
    """``{"config": {field: value}, "data_fingerprint": hex}`` to store in a checkpoint."""
    config = {k: v for k, v in cfg.to_dict().items() if k not in FREE_ON_RESUME}
    # the values in force, not how they were given (a default reward spelled out, batch_size vs prompts)
    config.update(rewards=cfg.reward_spec, prompts_per_step=cfg.num_prompts_per_step)
    config.pop("batch_size", None)
    return {"config": _plain(config), "data_fingerprint": data_fingerprint(items, prompts)}


def check_resume(path, saved: dict[str, Any], identity: dict[str, Any]) -> None:
    """Raise :class:`ReasonkitError` (one line, exit 2) when ``saved`` (a checkpoint's state) disagrees."""
    old_cfg = saved.get("config")
    if isinstance(old_cfg, dict):
        new_cfg = identity["config"]
        for key in sorted(set(old_cfg) | set(new_cfg)):
            if key in FREE_ON_RESUME or old_cfg.get(key) == new_cfg.get(key):
                continue
            raise ReasonkitError(f"--resume {path}: {key} was {old_cfg.get(key)!r} in the checkpoint's run and is "
                                 f"{new_cfg.get(key)!r} now; it changes what is trained, so set it back (or "
                                 f"start a new --output)")
    old_data = saved.get("data_fingerprint")
    if old_data is not None and old_data != identity["data_fingerprint"]:
        raise ReasonkitError(f"--resume {path}: the training data differ from the checkpoint's (same rows "
                             f"expected, in the same order; was the data file edited?); resume with the same "
                             f"data or start a new --output")
