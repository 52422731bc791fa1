"""Worker process for the math verifier when it is called off the main thread.

math-verify bounds its own work with ``signal.alarm``, which only works in the main thread. When
``reasonkit.verifiers.math`` is called from another thread it sends the job to this process (started
with ``python -m reasonkit.verifiers._math_worker``) and kills it if the deadline passes. Protocol:
one JSON object per line on stdin (``{"texts": [...], "answer": ...}``: the answer spans the parent
chose with ``prediction_spans`` and the gold), one JSON line back
(``[correct, extracted, reason, details]``); the first line written is ``"ready"``. No signals are
used here: nothing interrupts the work, so every gold parse finishes and is cached.
"""
from __future__ import annotations

import json
import sys

from reasonkit.verifiers.math import _math_verify, _score_unbounded


def main() -> None:
    # import math-verify / sympy and warm the LaTeX parser before "ready", so the first job's
    # deadline is not spent on start-up
    _math_verify()

    out = sys.stdout
    out.write('"ready"\n')
    out.flush()
    for line in sys.stdin:
        try:
            job = json.loads(line)
            res = list(_score_unbounded(list(job["texts"]), job["answer"]))
        except Exception as e:  # noqa: BLE001 - reported to the parent, which raises it
            res = ["__error__", f"{type(e).__name__}: {e}"]
        out.write(json.dumps(res) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
