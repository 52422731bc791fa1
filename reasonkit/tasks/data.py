"""Reading benchmark rows from a local JSONL / parquet / JSON file, a Hugging Face hub data set, or
the offline copies that ship in ``reasonkit/data``.

Hub access is tried only when the hub answers quickly: ``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE``
skip it, and otherwise a TCP connect to the hub with a short timeout (2 s) decides. A data set that
fails to load from the hub falls back to the offline copy when one exists, with a note on stderr.
"""
from __future__ import annotations

import json
import os
import socket
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..errors import ReasonkitError
from ..files import read_text
from ..jsonl import parse_jsonl

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
HUB_TIMEOUT_S = 2.0


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@lru_cache(maxsize=1)
def hub_reachable() -> bool:
    """False when offline mode is set or the hub does not accept a connection within 2 s."""
    if _truthy(os.environ.get("HF_HUB_OFFLINE")) or _truthy(os.environ.get("HF_DATASETS_OFFLINE")):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=HUB_TIMEOUT_S):
            return True
    except OSError:
        return False


def read_local(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a ``.jsonl`` / ``.json`` / ``.parquet`` / ``.csv`` file; bad input is one clear line."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ReasonkitError(f"--data {p}: no such file")
    if p.is_dir():
        raise ReasonkitError(f"--data {p}: is a directory; pass a .jsonl, .json, .parquet or .csv file")
    suffix = p.suffix.lower()
    if suffix in (".parquet", ".csv"):
        import pandas as pd

        try:
            df = pd.read_parquet(p) if suffix == ".parquet" else pd.read_csv(p)
        except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file
            raise ReasonkitError(f"--data {p}: cannot read {suffix[1:]} ({type(exc).__name__}: {exc})") from None
        return [{k: _plain(v) for k, v in row.items()} for row in df.to_dict(orient="records")]
    text = read_text(p, label="--data ")
    if suffix == ".json":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ReasonkitError(f"--data {p}: malformed JSON ({exc.msg} at line {exc.lineno})") from None
        if isinstance(rows, dict) and len(rows) == 1 and isinstance(next(iter(rows.values())), list):
            rows = next(iter(rows.values()))
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ReasonkitError(f"--data {p}: expected a JSON list of objects")
        return rows
    rows = [row for _, row in parse_jsonl(text, f"--data {p}")]
    if not rows:
        raise ReasonkitError(f"--data {p}: no rows")
    return rows


def _plain(v: Any) -> Any:
    """numpy scalars / arrays from pandas into plain Python (JSON-able) values."""
    if hasattr(v, "tolist"):
        return v.tolist()
    if hasattr(v, "item"):
        return v.item()
    return v


def read_hub(repo: str, config: str | None, split: str) -> list[dict[str, Any]]:
    import datasets

    ds = datasets.load_dataset(repo, config, split=split)
    return [dict(r) for r in ds]


def looks_like_hub_id(source: str) -> bool:
    return source.count("/") == 1 and not Path(source).expanduser().exists() and \
        not source.startswith((".", "/", "~")) and Path(source).suffix == ""


def load_rows(data: str | None, hub: tuple[str, str | None] | None, split: str,
              offline: str | None) -> tuple[list[dict[str, Any]], str]:
    """Rows plus a description of where they came from.

    ``data`` (a file, or ``hub:org/name`` / ``org/name``) wins; else the hub (``repo``, ``config``)
    when reachable; else the offline file ``reasonkit/data/<offline>``.
    """
    if data:
        if data.startswith("hub:") or looks_like_hub_id(data):
            repo = data[4:] if data.startswith("hub:") else data
            repo, _, cfg = repo.partition(":")
            try:
                return read_hub(repo, cfg or None, split), f"hub:{repo}" + (f":{cfg}" if cfg else "")
            except Exception as exc:  # noqa: BLE001 - network / missing data set
                raise ReasonkitError(f"--data {data}: cannot load from the hub ({type(exc).__name__}: "
                                     f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
        return read_local(data), str(Path(data).expanduser())
    if hub is not None and hub_reachable():
        try:
            return read_hub(hub[0], hub[1], split), f"hub:{hub[0]}" + (f":{hub[1]}" if hub[1] else "")
        except Exception as exc:  # noqa: BLE001 - fall back to the shipped copy
            if offline is None:
                raise ReasonkitError(f"cannot load {hub[0]} from the hub: {type(exc).__name__}") from None
            print(f"reasonkit: hub load of {hub[0]} failed ({type(exc).__name__}); using the offline copy",
                  file=sys.stderr)
    if offline is None:
        raise ReasonkitError(f"no offline copy of the {split} split; pass --data PATH")
    return read_local(DATA_DIR / offline), f"offline:{offline}"
