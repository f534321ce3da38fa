"""Time the LMM scan on one array-API backend against numpy, and check they agree.

    python benchmarks/bench_backends.py --backend torch --device cuda --samples 1090 --genes 20000

Synthetic cohort (10 latent factors), K from all genes. Reports wall time of the eigensystem,
the null-δ scan and the per-gene refit on the chosen backend (after one warm-up run), the
numpy times in the same process (unless --skip-numpy), and the largest difference in −log10 p.
``--precision float32`` runs the backend in float32 (the numpy reference stays float64, so
the difference is float32's accuracy on that device):

    python benchmarks/bench_backends.py --backend torch --device cuda --precision float32
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from threadpoolctl import threadpool_limits

from exprlmm.assoc import lmm_scan
from exprlmm.kinship import eigensystem_from_expression


def synthetic(n: int, g: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 10))
    expression = latent @ rng.normal(size=(10, g)) + rng.normal(size=(n, g))
    trait = latent[:, 0] + rng.normal(size=n)
    return expression, trait


def _timed(fn, sync, repeats: int = 2):
    """Best of ``repeats`` wall times (the first run also loads kernels and plans)."""
    best = float("inf")
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        out = fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return out, best


def run(expression, trait, convert, sync, chunk_size, precision="float64"):
    x = convert(expression)
    kw = {"chunk_size": chunk_size, "precision": precision}
    eig, t_eig = _timed(lambda: eigensystem_from_expression(x, precision=precision), sync)
    null, t_null = _timed(lambda: lmm_scan(x, trait, eigensystem=eig, **kw), sync)
    refit, t_refit = _timed(lambda: lmm_scan(x, trait, eigensystem=eig, delta="refit", **kw), sync)
    return {"eig_s": t_eig, "null_s": t_null, "refit_s": t_refit}, null, refit


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["numpy", "torch", "cupy"], default="torch")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--samples", type=int, default=1090)
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--chunk-size", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads for the numpy run")
    parser.add_argument("--skip-numpy", action="store_true")
    parser.add_argument("--precision", choices=["float64", "float32"], default="float64")
    args = parser.parse_args()
    expression, trait = synthetic(args.samples, args.genes)
    if args.backend == "torch":
        import torch

        def convert(a):
            return torch.asarray(a, dtype=torch.float64, device=args.device)

        def sync():
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()

        card = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    elif args.backend == "cupy":
        import cupy

        def convert(a):
            return cupy.asarray(a, dtype=cupy.float64)

        def sync():
            cupy.cuda.Device().synchronize()

        card = "cupy device 0"
    else:

        def convert(a):
            return a

        def sync():
            return None

        card = "cpu"
    timings, null, refit = run(expression, trait, convert, sync, args.chunk_size, args.precision)
    report = {
        "backend": args.backend,
        "precision": args.precision,
        "device": card,
        "samples": args.samples,
        "genes": args.genes,
        **timings,
    }
    if not args.skip_numpy:
        with threadpool_limits(args.threads):
            ref_t, ref_null, ref_refit = run(
                expression, trait, lambda a: a, lambda: None, args.chunk_size
            )
        report["numpy"] = {**ref_t, "threads": args.threads}
        for name, a, b in (("null", null, ref_null), ("refit", refit, ref_refit)):
            diff = np.abs(np.log10(a.pvalue.to_numpy()) - np.log10(b.pvalue.to_numpy()))
            report[f"max_abs_diff_neglog10p_{name}"] = float(np.nanmax(diff))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
