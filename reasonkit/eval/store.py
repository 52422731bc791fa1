"""The run directory: ``config.json`` (written first), ``samples.jsonl`` (appended and flushed chunk by
chunk as completions arrive) and ``summary.json`` (written last).

Resume rule: the saved ``config.json`` must match the new run's on every identity key
(:mod:`reasonkit.eval.identity`; the first that differs is named). A sample group is ``(item_id, adapter)`` with all ``n`` samples. On restart, complete
groups without an error row (a request that failed, ``finish_reason="error"``) are kept and never
regenerated; groups with an error row are dropped and generated again; a torn last line (killed mid-write) and the rows of incomplete
groups are dropped, the file being rewritten atomically (temp file + rename) first.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from ..errors import ReasonkitError
from .identity import first_difference
from ..files import read_json, to_json, write_json, write_lines
from ..records import SAMPLES, SUMMARY, Row, Summary, read_samples, read_summary  # noqa: F401 (re-exported)

CONFIG = "config.json"


def dumps(row: dict[str, Any]) -> str:
    """One samples.jsonl line (NaN-safe, see :func:`reasonkit.files.to_json`)."""
    return to_json(row)


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.samples_path = self.path / SAMPLES
        self._fh = None

    def exists(self) -> bool:
        return (self.path / CONFIG).exists() or self.samples_path.exists()

    def prepare(self, config: dict[str, Any], keys: Iterable[str], n: int) -> list[dict[str, Any]]:
        """Create the directory or check it for resuming; return the kept (complete-group) rows."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file of that name, no permission, ...
            raise ReasonkitError(f"--output {self.path}: {exc.strerror or exc}") from None
        cfg_path = self.path / CONFIG
        if cfg_path.exists():
            diff = first_difference(read_json(cfg_path), config, keys)
            if diff is not None:
                key, was, now = diff
                raise ReasonkitError(
                    f"{self.path}: existing run has {key}={was!r}, this command has "
                    f"{key}={now!r}; use another --output or delete the directory")
        rows, torn = read_samples(self.samples_path)
        counts = Counter((r.get("item_id"), r.get("adapter")) for r in rows)
        failed = {(r.get("item_id"), r.get("adapter")) for r in rows
                  if r.get("finish_reason") == "error" or r.get("error")}
        kept = [r for r in rows if counts[(r.get("item_id"), r.get("adapter"))] >= n
                and (r.get("item_id"), r.get("adapter")) not in failed]
        if torn or len(kept) != len(rows):
            self._rewrite(kept)
        write_json(cfg_path, config)
        return kept

    def _rewrite(self, rows: list[dict[str, Any]]) -> None:
        write_lines((dumps(r) for r in rows), self.samples_path)

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Append rows and flush them to disk before returning (a kill loses at most this chunk)."""
        if self._fh is None:
            self._fh = open(self.samples_path, "a", encoding="utf-8")
        self._fh.write("".join(dumps(r) + "\n" for r in rows))
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def replace_all(self, rows: list[dict[str, Any]]) -> None:
        self.close()
        self._rewrite(rows)

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json(self.path / SUMMARY, summary)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
