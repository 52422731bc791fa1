"""The CPU matmul kernels behind ``hf_linear`` and ``engine.frozen_linear``, side by side on this host.

For each weight shape of the embedded SmolLM2-135M (q/o 576x576, k/v 192x576, gate/up 1536x576,
down 576x1536, the 49152x576 output layer), enough distinct matrices that the weights come from
memory (at least 64 MB per pass), and each row count: the time per matrix of ``F.linear`` (MKL's
GEMM), ``W @ x^T``, and oneDNN's matmul on a weight reordered once (``torch.ops.mkldnn``), the
fastest of ``--rounds`` passes, the kernels interleaved (``benchmarks/harness.py``; the median is kept
beside it). Rows 8 is a decode step of the GRPO benchmark's
rollout, 512 a training forward. Also a ``sum`` over 1 GB, for the memory system's streaming rate.
GB/s counts the weight bytes read; GFLOP/s is 2 x rows x weight elements per second.

    python benchmarks/bench_linear_kernels.py --record      # fp32 and bf16, rows 8 and 512
    python benchmarks/bench_linear_kernels.py --quick       # print only, record nothing

Results (with ``--record``): ``benchmarks/results/linear_kernels.md`` / ``.json``.
"""
from __future__ import annotations

import argparse
import time

import harness  # benchmarks/harness.py

SHAPES = ((576, 576), (192, 576), (1536, 576), (576, 1536), (49152, 576))
PASS_BYTES = 64 * 2**20


def _best(fn, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> None:
    import torch
    import torch.nn.functional as F

    from reasonkit.engine import hf_linear

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[8, 512])
    ap.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
    harness.common_args(ap, rounds=4)
    args = ap.parse_args(argv)
    if any(r < 1 for r in args.rows):
        harness.fail(f"--rows {' '.join(map(str, args.rows))}: every row count must be at least 1")
    bench = harness.start(__file__, args, argv)
    gen = torch.Generator().manual_seed(0)
    big = torch.randn(2**28, generator=gen)  # 1 GiB of fp32
    sum_gbs = big.numel() * 4 / _best(lambda: big.sum(), args.rounds) / 1e9
    del big
    rows_out = []
    for dtype_name in args.dtypes:
        dtype = getattr(torch, dtype_name)
        packable = hf_linear.can_pack(dtype)
        for shape in SHAPES:
            size = shape[0] * shape[1] * torch.finfo(dtype).bits // 8
            weights = [torch.randn(*shape, generator=gen).to(dtype) for _ in range(max(2, -(-PASS_BYTES // size)))]
            packed = [hf_linear.reorder(w) for w in weights] if packable else []
            for rows in args.rows:
                x = torch.randn(rows, shape[1], generator=gen).to(dtype)
                kernels = {"F.linear": lambda: [F.linear(x, w) for w in weights],
                           "W @ x^T": lambda: [hf_linear._transposed(x, w, None) for w in weights]}
                if packable:
                    kernels["oneDNN packed"] = lambda: [hf_linear.matmul_packed(x, p, None) for p in packed]
                with torch.no_grad():
                    summary = harness.rounds(kernels, args.rounds)
                times = {k: v["min"] / len(weights) for k, v in summary.items()}  # the fastest pass
                for kernel, t in times.items():
                    rows_out.append({"dtype": dtype_name, "shape": list(shape), "rows": rows, "kernel": kernel,
                                     "us_per_matrix": t * 1e6, "us_median": summary[kernel]["median"] / len(weights) * 1e6,
                                     "gb_per_s": size / t / 1e9,
                                     "gflop_per_s": 2 * rows * shape[0] * shape[1] / t / 1e9,
                                     "vs_f_linear": t / times["F.linear"]})
                print(f"{dtype_name} {shape[0]}x{shape[1]} rows {rows}: "
                      + ", ".join(f"{k} {t * 1e6:.0f} us" for k, t in times.items()), flush=True)
    env = f"{harness.machine_line(bench.machine)} `sum` over 1 GiB fp32: {sum_gbs:.1f} GB/s."
    lines = ["| dtype | weight | rows | kernel | us per matrix | GB/s (weights) | GFLOP/s | vs F.linear |",
             "|---|---|---:|---|---:|---:|---:|---:|"]
    lines += [f"| {r['dtype']} | {r['shape'][0]}x{r['shape'][1]} | {r['rows']} | {r['kernel']} | "
              f"{r['us_per_matrix']:.0f} | {r['gb_per_s']:.1f} | {r['gflop_per_s']:.0f} | {r['vs_f_linear']:.2f}x |"
              for r in rows_out]
    print(env)
    print("\n".join(lines))
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    md = ["# CPU matmul kernels: F.linear (MKL) vs W @ x^T vs oneDNN on a reordered weight", "",
          f"Command: `{bench.command}` ({stamp})", "", env, "",
          f"Each figure: the fastest of {args.rounds} interleaved passes over distinct matrices of one shape (at least "
          f"{PASS_BYTES // 2**20} MB of weights, so they come from memory), per matrix. Rows 8: a decode step of the "
          "GRPO benchmark's rollout; 512: a training forward. `hf_linear` and `engine.frozen_linear` make the same "
          "comparison at run time and use the winner.", ""] + lines
    bench.record({"sum_gb_per_s": sum_gbs, "rows": rows_out}, md)


if __name__ == "__main__":
    main()
