"""The check of a checkpoint before ``reasonkit train --resume`` loads anything heavy.

A checkpoint directory is complete when ``trainer_state.json`` is in it (it is written last, and the
directory is renamed into place only then: see :mod:`reasonkit.grpo.checkpoint`). A complete
directory can still be damaged afterwards (a disk filling up, a copy cut short, a hand edit). Before
the model is built, :func:`check_checkpoint` reads every file that resuming reads, cheaply:

* ``trainer_state.json``: parsed, must be a mapping with a ``step``;
* ``*.safetensors`` (adapter or model weights): the header is parsed and must cover the whole file
  (a truncated file fails here), without loading the tensors;
* ``*.pt`` / ``*.pth`` (optimiser, scheduler, RNG states): ``torch.save`` writes zip archives, whose
  member CRCs are checked (a truncated or bit-flipped file fails here), without unpickling;
* ``*.json`` (adapter and tokenizer configs): parsed.

A file that fails is one line, exit 2, naming the file and the previous complete checkpoint of the
same run (or saying there is none), so that the user can resume from it (:func:`damaged`).
"""
from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

from reasonkit.errors import ReasonkitError

STATE_FILE = "trainer_state.json"
_CKPT_RE = re.compile(r"^checkpoint-(\d+)$")


def _step(path: Path) -> int | None:
    m = _CKPT_RE.match(path.name)
    return int(m.group(1)) if m else None


def previous_checkpoint(path: str | Path) -> Path | None:
    """The newest complete ``checkpoint-N`` next to ``path`` with a smaller N, or None."""
    path = Path(path)
    step = _step(path)
    if step is None or not path.parent.is_dir():
        return None
    older = [(s, p) for p in path.parent.iterdir()
             if (s := _step(p)) is not None and s < step and (p / STATE_FILE).is_file()]
    return max(older)[1] if older else None


def damaged(checkpoint: str | Path, file: str | Path, why: str, verb: str = "cannot be read") -> ReasonkitError:
    """The one-line error for an unreadable ``file`` of ``checkpoint`` (names the previous one)."""
    prev = previous_checkpoint(checkpoint)
    hint = (f"the previous complete checkpoint is {prev}: resume from it with --resume {prev}" if prev
            else f"there is no earlier complete checkpoint in {Path(checkpoint).parent}")
    return ReasonkitError(f"--resume: {file} {verb} ({why}); {hint}")


def _check_file(f: Path) -> str | None:
    """Why ``f`` cannot be read, or None."""
    suffix = f.suffix.lower()
    try:
        if suffix == ".json":
            data = json.loads(f.read_text(encoding="utf-8"))
            if f.name == STATE_FILE and not (isinstance(data, dict) and "step" in data):
                return "not a trainer state: no 'step'"
        elif suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(f), framework="numpy") as st:
                st.keys()
        elif suffix in (".pt", ".pth"):
            with zipfile.ZipFile(f) as zf:
                bad = zf.testzip()
            if bad is not None:
                return f"member {bad} fails its CRC check"
    except json.JSONDecodeError as exc:
        return f"malformed JSON: {exc.msg} at line {exc.lineno}"
    except UnicodeDecodeError:
        return "not UTF-8 text"
    except zipfile.BadZipFile:
        return "truncated or not a torch.save file"
    except OSError as exc:
        return exc.strerror or str(exc)
    except Exception as exc:  # noqa: BLE001 - safetensors' SafetensorError and the like: a damaged file
        return f"{type(exc).__name__}: {str(exc)[:120]}"
    return None


def check_checkpoint(path: str | Path) -> None:
    """Raise ``ReasonkitError`` (see :func:`damaged`) for the first file of ``path`` that a resume
    would fail to read; the trainer state file must exist."""
    path = Path(path)
    state = path / STATE_FILE
    if not state.is_file():
        raise damaged(path, state, "missing")
    files = [state] + sorted(p for p in path.iterdir() if p.is_file() and p != state)
    for f in files:
        why = _check_file(f)
        if why:
            raise damaged(path, f, why)
