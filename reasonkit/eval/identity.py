"""What makes two eval runs the same run: the identity a resume must match, and item fingerprints.

**Run identity** (issue 23, item 4). Every :class:`~reasonkit.eval.config.EvalConfig` field says in
its dataclass metadata whether it is part of the run's identity (``identity=True``), folded into a
resolved record key (``identity="template"``: ``--system`` / ``--prefill`` / ``--raw`` /
``--few-shot`` end up in the resolved template), or not (``identity=False``: ``--limit``,
``--output``, chunk size, server URLs, concurrency...). A field without the metadata is a
programming error (:func:`identity_keys` raises), so a new option cannot be forgotten. To those,
:data:`DERIVED_KEYS` adds what the runner resolves: the benchmark version, the backend that
``--backend auto`` chose (kept for the whole run: a resume reuses it instead of choosing again by the
tokens left), and the engine options that change a completion (:func:`engine_identity`: every
backend option except :data:`NON_IDENTITY_OPTIONS`, the ones that only change speed, retries or
logging; an option not listed there counts). On resume, :func:`first_difference` names the first
setting that differs, as ``key`` or ``key.subkey`` (``engine_options.dtype``), with both values.

**Item seeds** (issue 23, b): :func:`item_seed` gives each item its own sampling seed from the run's
seed and the item's identity, so resuming or retrying an item does not change its samples.

**Item fingerprints** (issue 23, items 5 and c). :func:`item_fingerprint` is a short SHA-256 of an
item's content (every field but ``id``, JSON with sorted keys). Each sample row carries it
(``item_fingerprint``), so a resume or ``--rescore`` can tell that the data file was edited in place
(same ids, other rows: refused), and ``reasonkit report`` pairs two runs' items only when id *and*
content agree. Rows written before this carry none; :func:`row_fingerprint` then falls back to a
fingerprint of the row's saved reference fields.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import fields
from typing import Any, Iterable

# Record keys the runner fills in (not config fields) that are part of the identity.
DERIVED_KEYS = ("benchmark_version", "resolved_backend", "engine_options")

# Backend options that never change a completion (speed, memory, retries, logging, checks).
NON_IDENTITY_OPTIONS = frozenset({
    "threads", "check_base", "use_tqdm", "gpu_memory_utilization", "kv_cache_space_gib", "max_loras",
    "timeout", "max_retries", "backoff_base", "backoff_cap", "cooldown", "eject_after", "check_models",
    "concurrency",
})


def identity_keys(config_cls) -> tuple[str, ...]:
    """The record keys a resume compares, in field order, then :data:`DERIVED_KEYS`."""
    keys: list[str] = []
    for f in fields(config_cls):
        if "identity" not in f.metadata:
            raise TypeError(f"{config_cls.__name__}.{f.name}: say in its metadata whether it is part of the run's "
                            "identity (identity=True, False or the record key it is folded into)")
        mark = f.metadata["identity"]
        key = f.name if mark is True else mark
        if mark is not False and key not in keys:
            keys.append(key)
    return tuple(keys) + tuple(k for k in DERIVED_KEYS if k not in keys)


def engine_identity(options: dict[str, Any]) -> dict[str, Any]:
    """The backend options that can change a completion (unset ones dropped)."""
    return {k: v for k, v in sorted(options.items()) if v is not None and k not in NON_IDENTITY_OPTIONS}


def first_difference(old: dict[str, Any], new: dict[str, Any], keys: Iterable[str]) -> tuple[str, Any, Any] | None:
    """``(setting, old value, new value)`` of the first identity key that differs, else None.

    A key the old record lacks (a run made by an older reasonkit) is not compared. Mappings are
    compared entry by entry, so the setting named is ``key.entry``.
    """
    for key in keys:
        if key not in old:
            continue
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            for sub in sorted(set(a) | set(b), key=str):
                if a.get(sub) != b.get(sub):
                    return f"{key}.{sub}", a.get(sub), b.get(sub)
        return key, a, b
    return None


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def item_fingerprint(item: dict[str, Any]) -> str:
    """A short hash of an item's content (every field but ``id``)."""
    return _digest({k: v for k, v in item.items() if k != "id"})


def row_fingerprint(row: dict[str, Any]) -> str:
    """The item fingerprint a sample row carries, or (older rows) one of its saved reference fields."""
    saved = row.get("item_fingerprint")
    return saved if saved else "ref:" + _digest(row.get("reference") or {})


def item_seed(seed: int, item: dict[str, Any]) -> int:
    """The sampling seed of an item (its first sample; sample ``j`` gets ``+ j``): a hash of the run's
    seed, the item's id and its content, in [0, 2**31 - 2**16). The same item gets the same seed in an
    uninterrupted run, a resumed one and a retry, whatever chunk or position it lands in (issue 23, b).
    """
    text = f"{seed}\0{item.get('id')}\0{item_fingerprint(item)}"
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16) % (2 ** 31 - 2 ** 16)


def changed_items(rows: Iterable[dict[str, Any]], items: Iterable[dict[str, Any]]) -> list[str]:
    """Ids of items whose saved rows carry another fingerprint than the item has now."""
    now = {it["id"]: item_fingerprint(it) for it in items}
    out = []
    for r in rows:
        saved = r.get("item_fingerprint")
        if saved and r["item_id"] in now and now[r["item_id"]] != saved and r["item_id"] not in out:
            out.append(r["item_id"])
    return out
