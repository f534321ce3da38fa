"""Scale options of the LMM scan at TCGA-BRCA size: dask LocalCluster, float32, low-rank K.

A synthetic cohort (:func:`exprlmm.datasets.confounded_cohort`, seed 0, N = 1,090 samples x
G = 20,000 genes) is simulated once; the kinship's eigensystem (exact, float64) is computed
once and given to every scan, so that the rows compare the scans themselves. Sections:

- ``dask``: :func:`exprlmm.assoc.lmm_scan` in this process against
  :func:`exprlmm.assoc.distributed.scan_distributed` on a ``LocalCluster`` of 2 (and 1)
  worker processes, 1 thread each, same run, same BLAS threads (1); null δ and refit. The
  cluster start-up is timed separately. Also the cost of one gene chunk
  (:func:`exprlmm.assoc.lmm.lmm_block`), from which the N = 10,000 x 100 traits on
  32 workers estimate is derived *on paper* (flop scaling, stated in the output).
- ``float32``: ``precision="float32"`` against float64 (max |Δ -log10 p|, Spearman rank
  correlation of the p-values, overlap of the top 100 genes), null δ and refit.
- ``rank``: the eigensystem from a randomized SVD of rank R (``eigensystem_from_expression(
  rank=R)``) against the exact one: time, and the scan's max |Δ -log10 p| (null δ).
- ``study``: :func:`exprlmm.study.run_study` on the cohort's first ``--study-genes`` genes
  (written as TSV), SLR + LMM, GSEA of 300 random sets (15-200 genes, 10,000 permutations),
  subsamples of N/4 and N/2 samples x 4 repeats (1,000 permutations), in this process
  and with a 2-worker ``LocalCluster`` (scans in gene chunks, one task per GSEA ranking and
  per subset): the steps' times and whether the subsample tables are byte-identical.

Usage::

    python benchmarks/bench_dask.py                     # all sections, full size
    python benchmarks/bench_dask.py --quick             # N=200, G=2,000 smoke run
    python benchmarks/bench_dask.py --sections dask --json benchmarks/out/bench_dask.json

The machine is shared: the load average is printed before and after; run it when the
1-minute load is below 1.2.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from exprlmm.assoc import lmm_scan  # noqa: E402
from exprlmm.assoc.lmm import lmm_block, prepare_lmm  # noqa: E402
from exprlmm.datasets import confounded_cohort  # noqa: E402
from exprlmm.kinship import eigensystem_from_expression  # noqa: E402


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _best(fn, repeat: int):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def _neglog(table) -> np.ndarray:
    return -np.log10(table.pvalue.to_numpy())


def _compare(ref, got) -> dict:
    a, b = _neglog(ref), _neglog(got)
    top_a = set(np.argsort(-a)[:100])
    top_b = set(np.argsort(-b)[:100])
    return {
        "max_abs_diff_neglog10p": float(np.max(np.abs(a - b))),
        "spearman": float(stats.spearmanr(a, b).statistic),
        "top100_overlap": len(top_a & top_b),
    }


def section_dask(expr, trait, eig, repeat, out):
    from exprlmm.assoc.distributed import open_client, scan_distributed

    n = expr.shape[0]
    for delta in ("null", "refit"):
        t_single, ref = _best(
            lambda d=delta: lmm_scan(expr, trait, eigensystem=eig, delta=d), repeat
        )
        row = {"single_process_s": t_single}
        for workers in (2, 1):
            t0 = time.perf_counter()
            with open_client(workers=workers) as client:
                start = time.perf_counter() - t0
                t_dask, tables = _best(
                    lambda d=delta, c=client: scan_distributed(
                        expr, trait, client=c, eigensystem=eig, delta=d
                    ),
                    repeat,
                )
            row[f"workers{workers}_s"] = t_dask
            row[f"workers{workers}_ratio"] = t_dask / t_single
            row[f"workers{workers}_cluster_start_s"] = start
            row[f"workers{workers}_max_abs_diff_neglog10p"] = _compare(ref, tables["lmm"])[
                "max_abs_diff_neglog10p"
            ]
        row["n_chunks"] = tables["lmm"].attrs["chunks"]["n_chunks"]
        row["chunk_size"] = tables["lmm"].attrs["chunks"]["chunk_size"]
        out[f"dask_{delta}"] = row
        print(f"dask {delta}: {json.dumps(row)}  load {_load()}", flush=True)

    # per-chunk cost in one process (the unit of work a worker does)
    chunk = 2048
    costs = {}
    for delta in ("null", "refit"):
        t0 = time.perf_counter()
        plan = prepare_lmm(trait, eig, delta=delta)
        setup = time.perf_counter() - t0
        block = np.ascontiguousarray(expr[:, :chunk])
        t_chunk, _ = _best(lambda p=plan, b=block: lmm_block(p, b), repeat)
        costs[delta] = {"plan_s": setup, "chunk_s": t_chunk, "per_gene_us": 1e6 * t_chunk / chunk}
    out["chunk_cost"] = {"chunk_genes": chunk, "n_samples": n, **costs}
    print(f"chunk cost ({chunk} genes, N={n}): {json.dumps(costs)}", flush=True)

    # on paper: N = 10,000, G = 20,000, 100 traits, 32 workers (1 thread each)
    t0 = time.perf_counter()
    eigensystem_from_expression(expr)
    t_eig = time.perf_counter() - t0
    scale2, scale3 = (10_000 / n) ** 2, (10_000 / n) ** 3
    est = {}
    for delta in ("null", "refit"):
        per_gene = costs[delta]["per_gene_us"] * 1e-6 * scale2  # whitening / rotation ∝ N²
        plan = costs[delta]["plan_s"] * scale3  # Cholesky of K + δI (null δ) ∝ N³
        per_trait = plan + per_gene * 20_000
        eig_once = t_eig * scale3  # K = ZZᵀ (∝ N²G) and eigh (∝ N³): bounded by N³ scaling
        est[delta] = {
            "per_gene_s": per_gene,
            "plan_per_trait_s": plan,
            "per_trait_1_worker_s": per_trait,
            "kinship_eig_once_s": eig_once,
            "100_traits_32_workers_s": eig_once + np.ceil(100 / 32) * per_trait,
        }
    out["estimate_N10000_100traits_32workers"] = {
        "method": "on paper: measured N=1,090 costs scaled by (10,000/1,090)^2 per gene and "
        "^3 for Cholesky/eigh; 1 BLAS thread per worker; data transfer not included",
        **est,
    }
    print(f"estimate N=10,000 x 100 traits, 32 workers: {json.dumps(est)}", flush=True)


def section_float32(expr, trait, repeat, out):
    for delta in ("null", "refit"):
        row = {}
        t64, ref = _best(lambda d=delta: lmm_scan(expr, trait, delta=d), repeat)
        t32, got = _best(
            lambda d=delta: lmm_scan(expr, trait, delta=d, precision="float32"), repeat
        )
        row.update({"float64_s": t64, "float32_s": t32, **_compare(ref, got)})
        out[f"float32_{delta}"] = row
        print(f"float32 {delta} (K built inside): {json.dumps(row)}  load {_load()}", flush=True)


def section_rank(expr, trait, eig, ranks, out):
    exact = lmm_scan(expr, trait, eigensystem=eig)
    t0 = time.perf_counter()
    eigensystem_from_expression(expr)
    t_exact = time.perf_counter() - t0
    rows = {"exact_eig_s": t_exact}
    for rank in ranks:
        t0 = time.perf_counter()
        low = eigensystem_from_expression(expr, rank=rank)
        t_rank = time.perf_counter() - t0
        got = lmm_scan(expr, trait, eigensystem=low)
        rows[str(rank)] = {
            "eig_s": t_rank,
            "h2": got.attrs["null_model"].h2,
            **_compare(exact, got),
        }
        print(f"rank {rank}: {json.dumps(rows[str(rank)])}  load {_load()}", flush=True)
    rows["exact_h2"] = exact.attrs["null_model"].h2
    out["kinship_rank"] = rows


def section_study(cohort, genes: int, out):
    """`exprlmm study`'s subsample steps: single process vs a 2-worker LocalCluster."""
    import tempfile

    from exprlmm.assoc.distributed import open_client
    from exprlmm.study import run_study, study_config_from_dict

    folder = Path(tempfile.mkdtemp(prefix="bench_study_dask_"))
    expression = cohort.expression.iloc[:, :genes]
    expression.to_csv(folder / "expression.tsv", sep="\t")
    sheet = pd.DataFrame({"trait": cohort.trait, "purity": cohort.purity})
    sheet.to_csv(folder / "samples.tsv", sep="\t", index_label="sample")
    rng = np.random.default_rng(0)
    names = expression.columns.to_numpy()
    (folder / "sets.gmt").write_text(
        "".join(
            f"SET_{i}\tx\t"
            + "\t".join(rng.choice(names, size=int(rng.integers(15, 200)), replace=False))
            + "\n"
            for i in range(300)
        )
    )
    n = len(expression)
    sizes = [n // 4, n // 2]
    config = {
        "trait": "trait",
        "models": ["slr", "lmm"],
        "seed": 1,
        "gsea": {
            "gene_sets": ["sets.gmt"],
            "permutations": 10_000,
            "tail": "none",
            "highlight": ["SET_0"],
        },
        "subsample": {"sizes": sizes, "repeats": 4, "terms": ["SET_0"], "permutations": 1000},
        "cohorts": [{"name": "SIM", "expression": "expression.tsv", "samples": "samples.tsv"}],
    }
    row = {"n_samples": n, "n_genes": genes, "subsample_sizes": sizes, "repeats": 4}
    tables = {}
    for label in ("single", "workers2"):
        data = {**config, "output": f"out_{label}"}
        cfg = study_config_from_dict(data, base=folder)
        if label == "single":
            result = run_study(cfg, progress=False, report=False)
        else:
            t0 = time.perf_counter()
            with open_client(workers=2) as client:
                row["cluster_start_s"] = time.perf_counter() - t0
                result = run_study(cfg, progress=False, report=False, client=client)
        steps = {k.split("/")[1]: v for k, v in result.timings.items() if "/" in k}
        # on the cluster the GSEA and subset tasks run before their steps, which then only
        # write: compare those through the total
        kinds = ("subsample", "assoc_", "gsea_") if label == "single" else ("assoc_",)
        for kind in kinds:
            name = {"subsample": "subsample", "assoc_": "scans", "gsea_": "gsea"}[kind]
            row[f"{label}_{name}_s"] = sum(v for k, v in steps.items() if k.startswith(kind))
        row[f"{label}_total_s"] = result.timings["total_s"]
        tables[label] = (result.output / "cohorts" / "SIM" / "subsample_gsea.tsv").read_bytes()
    row["scans_ratio"] = row["workers2_scans_s"] / row["single_scans_s"]
    row["total_ratio"] = row["workers2_total_s"] / row["single_total_s"]
    row["identical_subsample_tables"] = tables["single"] == tables["workers2"]
    out["study"] = row
    print(f"study: {json.dumps(row)}  load {_load()}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N=200, G=2,000")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--sections", default="dask,float32,rank,study")
    parser.add_argument("--study-genes", type=int, default=5000, help="genes in the study section")
    parser.add_argument("--ranks", default="10,50,200,500")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    n, g = (200, 2000) if args.quick else (1090, 20_000)
    print(f"load before: {_load()}", flush=True)
    cohort = confounded_cohort(0, n_samples=n, n_genes=g)
    expr = np.ascontiguousarray(cohort.expression.to_numpy(dtype=np.float64))
    trait = cohort.trait.to_numpy(dtype=np.float64)
    eig = eigensystem_from_expression(expr)
    out: dict = {"n_samples": n, "n_genes": g, "load_before": _load()}
    sections = args.sections.split(",")
    if "dask" in sections:
        section_dask(expr, trait, eig, args.repeat, out)
    if "float32" in sections:
        section_float32(expr, trait, args.repeat, out)
    if "rank" in sections:
        ranks = [r for r in (int(x) for x in args.ranks.split(",")) if r <= min(n, g)]
        section_rank(expr, trait, eig, ranks, out)
    if "study" in sections:
        section_study(cohort, min(args.study_genes, g), out)
    out["load_after"] = _load()
    print(f"load after: {out['load_after']}", flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
