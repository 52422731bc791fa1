"""How responsive the run viewer (``reasonkit view``) stays on a large run, in headless Chromium.

Generates synthetic eval runs (GSM8K-shaped completions of ~600 characters, two verifiers with
reasons, a share of hack shapes: invented turns, hedges, empty think blocks, truncations) with
``--samples`` samples in all (half base, half an adapter: two columns side by side), writes the report
with :func:`reasonkit.view.write_report`, opens it in Debian's Chromium through selenium and measures,
over ``--rounds`` page loads (median, with min-max):

* ``load``: navigation start to the first page of the item table built (the page's own
  ``performance.now()`` when its script finished; the JSON parse, summary, filter menus and 50 rows);
* ``filter``: one filter change (the hack class ``invented_turn``; then "runs disagree"; then a search
  for a word) to the new table laid out (``performance.now()`` around the event and a forced layout);
* ``write``: seconds for ``reasonkit view`` to read the run and write the file, and the file's size.

Full run: ``python benchmarks/bench_view.py --record`` (10,000 and 40,000 samples, 5 rounds; records
``benchmarks/results/view.{md,json}``, ``benchmarks/harness.py``). Smoke: ``--quick`` (1,000 samples,
2 rounds, prints only).
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import harness  # benchmarks/harness.py

WORDS = ("eggs", "dollars", "apples", "minutes", "miles", "pages", "boxes", "tickets", "cookies", "students")


def completion(rng: random.Random, gold: int, right: bool) -> tuple[str, str]:
    """A GSM8K-shaped completion and its finish reason; a share of them in hack shapes."""
    steps = "\n".join(f"Step {k}: {rng.randint(2, 90)} {rng.choice(WORDS)} times {rng.randint(2, 9)} is "
                      f"{rng.randint(10, 900)} {rng.choice(WORDS)}, so we carry on with the rest." for k in range(1, 7))
    ans = gold if right else gold + rng.randint(1, 9)
    shape = rng.random()
    if shape < 0.05:
        return f"<think>\n{steps}\nStep 7: then the", "length"
    if shape < 0.10:
        return f"<think>\n{steps}\n</think>\n<answer>{ans}</answer>\nHuman: and how many {rng.choice(WORDS)}?", "stop"
    if shape < 0.15:
        return f"<think> </think>\n<answer>{ans} or {ans + 2}</answer>", "stop"
    return f"<think>\n{steps}\n</think>\n<answer>{ans}</answer>", "stop"


def synthetic_run(out: Path, samples: int, seed: int = 0) -> Path:
    """An eval run directory with ``samples`` rows: ``samples // 2`` items, base and adapter ``tuned``."""
    rng = random.Random(seed)
    out.mkdir(parents=True)
    items = samples // 2
    rows = []
    for adapter, p_right in (("base", 0.3), ("tuned", 0.6)):
        for i in range(items):
            gold = (i * 37) % 1000 + 1
            right = rng.random() < p_right
            text, finish = completion(rng, gold, right)
            ok = right and finish == "stop" and " or " not in text
            rows.append({"benchmark": "gsm8k", "item_id": str(i), "model": "synthetic", "adapter": adapter,
                         "sample": 0, "prompt": f"<|user|>Item {i}: a shop sells {gold} {rng.choice(WORDS)} "
                         f"a day. How many are sold? Give the answer inside <answer> </answer>.\n<|assistant|>",
                         "completion": text, "num_tokens": len(text.split()), "finish_reason": finish,
                         "reference": {"answer": str(gold)},
                         "gsm8k.score": float(ok), "gsm8k.correct": ok,
                         "gsm8k.reason": "correct" if ok else "truncated" if finish == "length" else "not_equal",
                         "format.score": float(finish == "stop"), "format.correct": finish == "stop",
                         "format.reason": "correct" if finish == "stop" else "truncated"})
    (out / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def open_browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)


# one filter change, timed inside the page up to a forced layout of the new table
_FILTER_JS = """
const [id, value] = arguments; const el = document.getElementById(id); const t0 = performance.now();
if (el.type === 'checkbox') { el.checked = value; el.dispatchEvent(new Event('change')); }
else if (el.tagName === 'SELECT') { el.value = value; el.dispatchEvent(new Event('change')); }
else { el.value = value; el.dispatchEvent(new Event('change')); }
void document.getElementById('items').offsetHeight;
return [performance.now() - t0, document.getElementById('count').textContent];
"""


def measure(driver, report: Path, rounds: int) -> dict:
    from selenium.webdriver.support.ui import WebDriverWait

    load, filt, counts = [], {"hack": [], "disagree": [], "search": []}, {}
    hack = None
    for _ in range(rounds):
        driver.get(report.as_uri())
        WebDriverWait(driver, 120).until(lambda d: d.execute_script("return window.__rk && window.__rk.readyMs"))
        load.append(driver.execute_script("return window.__rk.readyMs"))
        hack = hack or driver.execute_script(
            "return [...document.getElementById('f-hack').options].find(o => o.text === 'invented_turn').value")
        for key, (el, value, reset) in {"hack": ("f-hack", hack, ""), "disagree": ("f-disagree", True, False),
                                        "search": ("f-search", "how many tickets", "")}.items():
            ms, count = driver.execute_script(_FILTER_JS, el, value)
            filt[key].append(ms)
            counts[key] = count
            driver.execute_script(_FILTER_JS, el, reset)
    med = harness.spread
    return {"load_ms": med(load), "filter_ms": {k: med(v) for k, v in filt.items()}, "counts": counts}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, nargs="+", default=None, help="run sizes (default 10000 40000)")
    ap.add_argument("--rounds", type=int, default=None, help="page loads per size (default 5; 2 with --quick)")
    harness.common_args(ap, quick="1,000 samples, 2 rounds, print only")
    args = ap.parse_args(argv)
    bench = harness.start(__file__, args, argv)
    sizes = args.samples or ([1000] if args.quick else [10000, 40000])
    rounds = args.rounds or (2 if args.quick else 5)
    from reasonkit.view import PAGE, write_report

    results = []
    driver = open_browser()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for n in sizes:
                run = synthetic_run(Path(tmp) / f"run-{n}", n)
                report = Path(tmp) / f"report-{n}.html"
                t0 = time.perf_counter()
                write_report([run], report)
                write_s = time.perf_counter() - t0
                got = measure(driver, report, rounds)
                results.append({"samples": n, "items": n // 2, "write_s": round(write_s, 2),
                                "html_mb": round(report.stat().st_size / 2**20, 1), **got})
            version = driver.capabilities.get("browserVersion")
    finally:
        driver.quit()

    fmt = lambda m: f"{m['median']:.0f} [{m['min']:.0f}-{m['max']:.0f}]"  # noqa: E731
    lines = ["# Run viewer responsiveness (`benchmarks/bench_view.py`)", "",
             f"Headless Chromium {version}, {bench.machine['cpu']}, "
             f"{datetime.now(timezone.utc):%Y-%m-%d}; {rounds} page loads per size, median [min-max] in ms; "
             f"{PAGE} items a page; two columns (base and an adapter), one sample each.", "",
             "| samples | items | HTML MB | `reasonkit view` s | load to table | filter: hack class | "
             "filter: runs disagree | search |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        f = r["filter_ms"]
        lines.append(f"| {r['samples']:,} | {r['items']:,} | {r['html_mb']} | {r['write_s']} | {fmt(r['load_ms'])} | "
                     f"{fmt(f['hack'])} | {fmt(f['disagree'])} | {fmt(f['search'])} |")
    lines += ["", "Load to table: navigation start to the page's script done (JSON parsed, summary and "
              f"filter menus built, first {PAGE} rows in the DOM). Filter: the change event to the new table "
              "laid out. Counts after each filter: " + "; ".join(f"{r['samples']:,}: {r['counts']}" for r in results)]
    lines += ["", harness.machine_line(bench.machine)]
    print("\n".join(lines))
    bench.record({"browser": version, "rounds": rounds, "page": PAGE, "sizes": results}, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
