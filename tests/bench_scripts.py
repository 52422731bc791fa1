"""Loading the scripts of ``benchmarks/`` in tests (a helper module, not a test module).

The scripts are run as ``python benchmarks/<script>.py``, where Python puts ``benchmarks/`` first on
``sys.path`` so that ``import harness`` finds the shared harness; ``load`` gives a test the same view.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str):
    """The module ``benchmarks/<name>.py``, imported as the script sees its neighbours."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module(name)
