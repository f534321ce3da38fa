"""Benchmark: exprlmm pre-ranked GSEA vs gseapy on the same input, side by side.

20,000 genes, 1,333 gene sets whose sizes are drawn from the real MSigDB C2:CP (Reactome +
WikiPathways) size distribution within 15–500, 10,000 permutations. Each engine runs in its
own subprocess so that its peak resident memory (ru_maxrss of the child) is measured cleanly.

gseapy is run from a separate environment (it is not a dependency of exprlmm):

    python3 -m venv /tmp/gseaenv && /tmp/gseaenv/bin/pip install gseapy psutil
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_gsea.py \
        --gseapy-python /tmp/gseaenv/bin/python --gseapy-permutations 1000

gseapy's time is linear in the number of permutations, so a run with fewer permutations is
extrapolated linearly to the target (printed as such).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

N_GENES = 20_000
N_SETS = 1_333


def make_inputs(folder: Path, seed: int = 2019) -> tuple[Path, Path]:
    """Write bench.rnk and bench.gmt (synthetic scores, realistic set sizes)."""
    from exprlmm.io.gmt import builtin_gene_sets

    rng = np.random.default_rng(seed)
    real_sizes = [
        len(g)
        for coll in ("reactome", "wikipathways")
        for g in builtin_gene_sets(coll).values()
        if 15 <= len(g) <= 500
    ]
    sizes = rng.choice(real_sizes, size=N_SETS, replace=False)
    genes = np.array([f"GENE{i:05d}" for i in range(N_GENES)])
    scores = rng.standard_t(df=4, size=N_GENES) + np.linspace(0, 1e-7, N_GENES)
    order = genes[np.argsort(-scores)]
    rnk = folder / "bench.rnk"
    rnk.write_text("".join(f"{g}\t{s:.8f}\n" for g, s in zip(genes, scores, strict=True)))
    gmt = folder / "bench.gmt"
    with gmt.open("w") as f:
        for j, k in enumerate(sizes):
            if j % 20 == 0:  # 5 % of sets with signal: drawn from the top or bottom 3,000
                pool = order[:3000] if j % 40 == 0 else order[-3000:]
                members = np.concatenate(
                    [rng.choice(pool, size=k // 2, replace=False), rng.choice(genes, size=k)]
                )
                members = list(dict.fromkeys(members.tolist()))[:k]
            else:
                members = rng.choice(genes, size=k, replace=False).tolist()
            f.write(f"SET_{j:04d}\tbench\t" + "\t".join(members) + "\n")
    return rnk, gmt


OURS = """
import json, sys, time, resource
from threadpoolctl import threadpool_limits
from exprlmm.gsea import GseaSettings, prerank
from exprlmm.io.gmt import read_gmt
from exprlmm.io.rnk import read_rnk
rnk, gmt, perms, tail = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
scores, sets = read_rnk(rnk), read_gmt(gmt)
tail_seconds = [0.0]
import_seconds = 0.0
if tail == "multilevel":  # time the tail step itself (numba kernels loaded from cache included)
    t = time.perf_counter()
    import exprlmm.gsea.multilevel as ml  # imports numba; prerank would import it otherwise
    import_seconds = time.perf_counter() - t
    untimed = ml.tail_pvalues
    def timed(*a, **kw):
        t = time.perf_counter()
        out = untimed(*a, **kw)
        tail_seconds[0] += time.perf_counter() - t
        return out
    ml.tail_pvalues = timed
with threadpool_limits(int(sys.argv[6])):
    t0 = time.perf_counter()
    res = prerank(scores, sets, GseaSettings(permutations=perms, seed=149, tail=tail))
    dt = time.perf_counter() - t0 + import_seconds
res.table.to_csv(sys.argv[5], sep="\\t", index=False)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": dt, "peak_mb": peak, "n_sets": len(res.table),
                  "tail_pvalues_seconds": tail_seconds[0], "tail_import_seconds": import_seconds,
                  "threads": int(sys.argv[6]),
                  "n_tail_below_1_over_perms": int((res.table["pvalue_tail"] < 1 / perms).sum())}))
"""

GSEAPY = """
import json, sys, time, resource
import pandas as pd, gseapy
rnk, gmt, perms, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
r = pd.read_csv(rnk, sep="\\t", header=None)
t0 = time.perf_counter()
pre = gseapy.prerank(rnk=r, gene_sets=gmt, permutation_num=perms, min_size=15, max_size=500,
                     seed=149, threads=int(sys.argv[5]), outdir=None, no_plot=True)
dt = time.perf_counter() - t0
pre.res2d.to_csv(out, sep="\\t", index=False)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": dt, "peak_mb": peak, "n_sets": len(pre.res2d),
                  "version": gseapy.__version__}))
"""


def _run(python: str, code: str, *args: str) -> dict:
    load = os.getloadavg()[0]
    out = subprocess.run(
        [python, "-c", code, *args], capture_output=True, text=True, check=True
    ).stdout
    res = json.loads(out.strip().splitlines()[-1])
    res["load_1min_before"] = load
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--permutations", type=int, default=10_000)
    ap.add_argument("--gseapy-python", default=None, help="python of a venv with gseapy")
    ap.add_argument("--gseapy-permutations", type=int, default=1000)
    ap.add_argument("--gseapy-threads", type=int, default=1)
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_gsea_"))
    work.mkdir(parents=True, exist_ok=True)
    rnk, gmt = make_inputs(work)
    results: dict[str, dict] = {}
    print(f"inputs: {N_GENES} genes, {N_SETS} sets, in {work}", flush=True)

    results["date_utc"] = datetime.now(UTC).isoformat(timespec="seconds")
    for threads in (1, 2):
        key = "exprlmm_fast_no_tail" + ("" if threads == 1 else "_2threads")
        results[key] = _run(
            sys.executable,
            OURS,
            str(rnk),
            str(gmt),
            str(args.permutations),
            "none",
            str(work / "ours_notail.tsv"),
            str(threads),
        )
        print(f"exprlmm fast, no tail ({threads} thread(s)):", results[key], flush=True)
    results["exprlmm_fast_with_tail"] = _run(
        sys.executable,
        OURS,
        str(rnk),
        str(gmt),
        str(args.permutations),
        "multilevel",
        str(work / "ours_tail.tsv"),
        "1",
    )
    results["tail_seconds"] = (
        results["exprlmm_fast_with_tail"]["seconds"] - results["exprlmm_fast_no_tail"]["seconds"]
    )
    print("exprlmm fast + multilevel tails:", results["exprlmm_fast_with_tail"], flush=True)

    if args.gseapy_python:
        g = _run(
            args.gseapy_python,
            GSEAPY,
            str(rnk),
            str(gmt),
            str(args.gseapy_permutations),
            str(work / "gseapy.tsv"),
            str(args.gseapy_threads),
        )
        g["extrapolated_seconds"] = g["seconds"] * args.permutations / args.gseapy_permutations
        results["gseapy"] = g
        print("gseapy:", g, flush=True)
        import pandas as pd

        ours = pd.read_csv(work / "ours_notail.tsv", sep="\t").set_index("term")
        gp = pd.read_csv(work / "gseapy.tsv", sep="\t").set_index("Term")
        common = ours.index.intersection(gp.index)
        es_diff = float(np.max(np.abs(ours.loc[common, "es"] - gp.loc[common, "ES"])))
        nes_rho = float(
            pd.Series(ours.loc[common, "nes"]).corr(gp.loc[common, "NES"], method="spearman")
        )
        results["agreement"] = {
            "n_common": len(common),
            "max_abs_es_diff": es_diff,
            "nes_spearman": nes_rho,
        }
        speedup = g["extrapolated_seconds"] / results["exprlmm_fast_no_tail"]["seconds"]
        results["speedup_vs_gseapy"] = speedup
        print("agreement:", results["agreement"], f"speed-up ×{speedup:.0f}", flush=True)
    (work / "bench_gsea.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {work / 'bench_gsea.json'}")


if __name__ == "__main__":
    main()
