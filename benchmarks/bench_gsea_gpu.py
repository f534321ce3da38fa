"""Benchmark: the fast-mode GSEA null on numpy vs torch (GPU by default), same input.

Input as `bench_gsea.py` (its `make_inputs`): 20,000 genes, 1,333 sets with MSigDB C2:CP
sizes in 15–500, 10,000 permutations, seed 149, no tail p-values. Times, best of
``--repeats`` after one untimed warm-up per backend (CUDA context, kernels, torch import):

* ``null``: the permutation null alone (all chunks, copied to the host as float32);
* ``stats``: NES, nominal p, FDR and FWER from that null (numpy: `permutation_stats` on the
  host; torch: `permutation_stats_torch` on the device, the null already there);
* ``end_to_end``: `exprlmm.gsea.prerank` (ranking, sets, observed ES, null, statistics,
  table), ``tail="none"``.

The device is synchronised before each clock read. Also reports the torch null alone at
``--extra-null-permutations`` (100,000 on CUDA by default), NES agreement between the two
backends (independent random streams: within permutation noise, not equal), the load
average, the card and versions. Prints one JSON line (and writes it to ``--json``).

One command on a machine with a CUDA GPU and torch installed (``pip install -e '.[gpu]'``):

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_gsea_gpu.py --device cuda

``--device cpu`` runs CPU torch instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _best(fn, repeats: int, device: str | None = None) -> float:
    best = np.inf
    for _ in range(repeats):
        if device:
            _sync(device)
        t0 = time.perf_counter()
        fn()
        if device:
            _sync(device)
        best = min(best, time.perf_counter() - t0)
    return float(best)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda", help="torch device (cuda, cuda:1, cpu)")
    ap.add_argument("--permutations", type=int, default=10_000)
    ap.add_argument("--extra-null-permutations", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="numpy/BLAS and CPU-torch threads")
    ap.add_argument("--skip-numpy", action="store_true")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--json", default=None, help="also write the JSON result here")
    args = ap.parse_args()
    extra = args.extra_null_permutations
    if extra is None:
        extra = 100_000 if args.device.startswith("cuda") else 0

    from threadpoolctl import threadpool_limits

    from bench_gsea import N_GENES, N_SETS, make_inputs
    from exprlmm.gsea import GseaSettings, prepare_ranking, prepare_sets, prerank
    from exprlmm.gsea.enrichment import enrichment_scores
    from exprlmm.gsea.null import CHUNK, null_es_chunk
    from exprlmm.gsea.stats import permutation_stats
    from exprlmm.io.gmt import read_gmt
    from exprlmm.io.rnk import read_rnk

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_gsea_gpu_"))
    work.mkdir(parents=True, exist_ok=True)
    rnk, gmt = make_inputs(work)
    scores, sets = read_rnk(str(rnk)), read_gmt(str(gmt))
    seed, perms = 149, args.permutations
    base = GseaSettings(permutations=perms, seed=seed, tail="none")
    rl = prepare_ranking(scores)
    prepared = prepare_sets(rl, sets, min_size=base.min_size, max_size=base.max_size)
    weights = rl.weights(base.weight)
    sizes, rows = np.unique(prepared.sizes, return_inverse=True)
    es = np.array([enrichment_scores(p[None, :], weights, rl.n).es[0] for p in prepared.positions])
    res: dict = {
        "bench": "gsea_null_gpu",
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "n_genes": N_GENES,
        "n_sets": len(prepared.names),
        "n_sets_input": N_SETS,
        "n_distinct_sizes": int(sizes.size),
        "permutations": perms,
        "repeats": args.repeats,
        "threads": args.threads,
        "load_1min_before": os.getloadavg()[0],
    }

    with threadpool_limits(args.threads):
        tables = {}
        if not args.skip_numpy:

            def numpy_null() -> None:
                for c in range(-(-perms // CHUNK)):
                    m = min(CHUNK, perms - c * CHUNK)
                    null_es_chunk(weights, sizes, seed=seed, chunk=c, n_perm=m)

            def numpy_e2e() -> None:
                tables["numpy"] = prerank(scores, sets, base).table

            numpy_e2e()  # warm-up
            res["numpy_null_seconds"] = _best(numpy_null, args.repeats)
            host = [
                null_es_chunk(
                    weights, sizes, seed=seed, chunk=c, n_perm=min(CHUNK, perms - c * CHUNK)
                )
                for c in range(-(-perms // CHUNK))
            ]
            res["numpy_stats_seconds"] = _best(
                lambda: permutation_stats(es, rows, lambda: iter(host), shift=True), args.repeats
            )
            res["numpy_end_to_end_seconds"] = _best(numpy_e2e, args.repeats)

        t0 = time.perf_counter()
        import torch

        from exprlmm._xp import to_backend
        from exprlmm.gsea.null_torch import null_es_torch, torch_memory_budget
        from exprlmm.gsea.stats_torch import permutation_stats_torch

        res["torch_import_seconds"] = time.perf_counter() - t0
        torch.set_num_threads(args.threads)
        dev = args.device
        res["torch_version"] = torch.__version__
        res["device"] = dev
        if dev.startswith("cuda"):
            res["card"] = torch.cuda.get_device_name(torch.device(dev))
        tset = GseaSettings(permutations=perms, seed=seed, tail="none", backend="torch", device=dev)

        def torch_null(n_perm: int = perms) -> None:
            w = to_backend(weights, "torch", device_name=dev)
            budget = torch_memory_budget(w.device, tset.memory_limit_mb)
            for _chunk in null_es_torch(w, sizes, seed=seed, n_perm=n_perm, budget_bytes=budget):
                pass

        def torch_e2e() -> None:
            tables["torch"] = prerank(scores, sets, tset).table

        _sync(dev)
        t0 = time.perf_counter()
        torch_e2e()  # warm-up: CUDA context, kernel loading
        _sync(dev)
        res["torch_first_call_seconds"] = time.perf_counter() - t0
        res["torch_null_seconds"] = _best(torch_null, args.repeats, dev)
        w_dev = to_backend(weights, "torch", device_name=dev)
        budget = torch_memory_budget(w_dev.device, tset.memory_limit_mb)
        on_device = list(
            null_es_torch(w_dev, sizes, seed=seed, n_perm=perms, budget_bytes=budget, to_host=False)
        )
        res["torch_stats_seconds"] = _best(
            lambda: permutation_stats_torch(
                es, rows, lambda: iter(on_device), shift=True, device=w_dev.device
            ),
            args.repeats,
            dev,
        )
        res["torch_end_to_end_seconds"] = _best(torch_e2e, args.repeats, dev)
        if extra:
            res["extra_null_permutations"] = extra
            res["torch_null_extra_seconds"] = _best(lambda: torch_null(extra), 1, dev)
        if dev.startswith("cuda"):
            res["torch_peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20

    if "numpy" in tables:
        from scipy.stats import spearmanr

        a = tables["numpy"].set_index("term")
        b = tables["torch"].set_index("term").loc[a.index]
        ok = a["nes"].notna() & b["nes"].notna()
        res["agreement"] = {
            "max_abs_es_diff": float(np.max(np.abs(a["es"] - b["es"]))),
            "nes_spearman": float(spearmanr(a.loc[ok, "nes"], b.loc[ok, "nes"])[0]),
            "max_abs_nes_diff": float(np.max(np.abs(a.loc[ok, "nes"] - b.loc[ok, "nes"]))),
            "max_abs_pvalue_diff": float(np.max(np.abs(a["pvalue"] - b["pvalue"]))),
        }
        res["speedup_null"] = res["numpy_null_seconds"] / res["torch_null_seconds"]
        res["speedup_end_to_end"] = (
            res["numpy_end_to_end_seconds"] / res["torch_end_to_end_seconds"]
        )
    res["load_1min_after"] = os.getloadavg()[0]
    line = json.dumps(res)
    print(line, flush=True)
    if args.json:
        Path(args.json).write_text(line + "\n")


if __name__ == "__main__":
    main()
