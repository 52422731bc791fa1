"""Writing a benchmark's recorded result: ``STEM.json`` (the figures) and ``STEM.md`` (the table), side by side.

Used by the scripts next to it, so that every recorded result is written the same way and only by
the script that measured it.
"""
from __future__ import annotations

import json
from pathlib import Path


def path(stem: Path, ext: str) -> Path:
    """``stem`` + ``ext``. Not ``with_suffix``: a stem like ``learning-beta0.04`` keeps its ``.04``."""
    stem = Path(stem)
    return stem.with_name(stem.name + ext)


def write(stem: Path, record: dict, md_lines: list[str]) -> Path:
    """Write ``record`` as JSON and ``md_lines`` as Markdown next to each other; returns the .md path."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    path(stem, ".json").write_text(json.dumps(record, indent=2) + "\n")
    md = path(stem, ".md")
    md.write_text("\n".join(md_lines) + "\n")
    print(f"recorded {md}")
    return md


def cpu_model(default: str = "") -> str:
    """The CPU's model name from /proc/cpuinfo; ``default`` where there is none (hosts differ, so
    every record names its CPU)."""
    try:
        with open("/proc/cpuinfo") as fh:
            return next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), default)
    except OSError:
        return default
